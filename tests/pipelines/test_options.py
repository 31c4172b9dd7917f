"""pipelines/options.py: the pipeline's options and the checks that stop a run before it
starts (their agreement with the flex template's metadata.json:
tests/pipelines/test_dataflow_template.py)."""
import pytest

from helpers.pipeline_arguments import VALID, argv_of
from pipelines.options import LocalRunOptions, parse_options


# -- the backlog pull (transforms/read.py) ------------------------------------------------

def pull_size(argv):
    return parse_options(argv_of(VALID) + argv).view_as(LocalRunOptions).backlog_pull_size


def test_the_backlog_pull_is_on_locally_and_off_on_dataflow():
    assert pull_size([]) == 1000
    assert pull_size(["--runner=DirectRunner", "--backlog_pull_size=50"]) == 50
    assert pull_size(["--backlog_pull_size=0"]) == 0
    assert pull_size(["--runner=DataflowRunner"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--runner=DataflowRunner", "--backlog_pull_size=100"],
     "--backlog_pull_size is for the DirectRunner only"),
    (["--backlog_pull_size=-1"], "--backlog_pull_size must be 0 or more"),
])
def test_a_wrong_backlog_pull_size_is_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv_of(VALID) + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
