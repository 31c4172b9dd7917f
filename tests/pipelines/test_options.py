"""pipelines/options.py: the pipeline's options and the checks that stop a run before it
starts (their agreement with the flex template's metadata.json:
tests/pipelines/test_dataflow_template.py)."""

import pytest
from apache_beam.options.pipeline_options import StandardOptions
from google.cloud import bigtable
from google.cloud.bigtable import column_family

from domain.catalog import Catalog
from helpers.examples import EXAMPLE_CATALOG
from helpers.pipeline_arguments import VALID, argv_of
from pipelines.options import (
    DEFAULT_RUNNER,
    IngestOptions,
    LocalRunOptions,
    check_profile_table,
    parse_options,
)

# -- options that fail fast --------------------------------------------------------------


def assert_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"input_subscription": None}, "--input_subscription is required"),
        ({"dead_letter_topic": None}, "--dead_letter_topic is required"),
        ({"catalog": None}, "--catalog is required"),
        ({"lake_path": None}, "--lake_path is required"),
        (
            {"input_subscription": "demo-project/ingest-input-sub"},
            "--input_subscription 'demo-project/ingest-input-sub': expected "
            "projects/<project>/subscriptions/<name>",
        ),
        (
            {"input_subscription": "projects/p/subscriptions/s"},
            "--input_subscription 'projects/p/subscriptions/s': 'p' is not a project id (6-30 "
            "lowercase letters, digits and hyphens, starting with a letter and not ending with a "
            "hyphen)",
        ),
        (
            {"dead_letter_topic": "projects/demo-project/topics/1-dlq"},
            "--dead_letter_topic 'projects/demo-project/topics/1-dlq': '1-dlq' is not a Pub/Sub "
            "name (3-255 letters, digits and -_.~+%, starting with a letter)",
        ),
        (
            {"bigtable_project": "Demo_Project"},
            "--bigtable_project 'Demo_Project': not a project id (6-30",
        ),
        (
            {"bigtable_instance": "ingst"},
            "--bigtable_instance 'ingst': a Bigtable instance id is 6-33 lowercase letters, "
            "digits and hyphens, starting with a letter and not ending with a hyphen",
        ),
        ({"bigtable_instance": "Ingest-Instance"}, "--bigtable_instance 'Ingest-Instance': a "),
        ({"bigtable_instance": "ingest-instance-"}, "--bigtable_instance 'ingest-instance-': "),
        (
            {"bigtable_table": "profiles/v2"},
            "--bigtable_table 'profiles/v2': a Bigtable table id is 1-50 letters, digits and _-., "
            "not starting with - or .",
        ),
        ({"bigtable_table": "p" * 51}, f"--bigtable_table '{'p' * 51}': a Bigtable table id"),
        ({"window_seconds": "0"}, "--window_seconds must be at least 1"),
        ({"pubsub_readers": "0"}, "--pubsub_readers must be at least 1"),
    ],
)
def test_malformed_options_stop_with_a_clear_message(capsys, changes, message):
    values = {**VALID, **changes}
    assert_refused(capsys, argv_of({k: v for k, v in values.items() if v is not None}), message)


def test_all_problems_are_reported_at_once(capsys):
    argv = argv_of({**VALID, "bigtable_instance": "x", "bigtable_table": "-x"})
    with pytest.raises(SystemExit):
        parse_options(argv)
    err = capsys.readouterr().err
    assert "--bigtable_instance 'x'" in err and "--bigtable_table '-x'" in err


def test_a_lake_path_that_cannot_be_written_stops_the_pipeline(capsys, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    lake = not_a_folder / "lake"
    assert_refused(
        capsys,
        argv_of({**VALID, "lake_path": lake}),
        f"--lake_path '{lake}' is not a folder this process can write to: ",
    )


def test_a_local_lake_path_is_created(tmp_path):
    lake = tmp_path / "new" / "lake"
    parse_options(argv_of({**VALID, "lake_path": lake}))
    assert lake.is_dir() and not list(lake.iterdir())


def test_on_dataflow_the_lake_must_be_in_cloud_storage(capsys, tmp_path):
    assert_refused(
        capsys,
        argv_of({**VALID, "lake_path": tmp_path}) + ["--runner=DataflowRunner"],
        f"--lake_path '{tmp_path}': on Dataflow the lake must be a gs:// path",
    )


def test_a_cloud_storage_lake_is_not_checked_offline():
    options = parse_options(argv_of(VALID))
    assert options.view_as(IngestOptions).lake_path == "gs://demo-bucket/lake"


def test_the_bigtable_project_defaults_to_the_project():
    values = {k: v for k, v in VALID.items() if k != "bigtable_project"}
    options = parse_options(argv_of(values) + ["--project=other-project"])
    assert options.view_as(IngestOptions).bigtable_project == "other-project"


# -- the backlog pull (transforms/read.py) ------------------------------------------------


def pull_size(argv):
    return parse_options(argv_of(VALID) + argv).view_as(LocalRunOptions).backlog_pull_size


def test_the_backlog_pull_is_on_locally_and_off_on_dataflow():
    assert pull_size([]) == 1000
    assert pull_size(["--runner=DirectRunner", "--backlog_pull_size=50"]) == 50
    assert pull_size(["--backlog_pull_size=0"]) == 0
    assert pull_size(["--runner=DataflowRunner"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--runner=DataflowRunner", "--backlog_pull_size=100"],
            "--backlog_pull_size is for the DirectRunner only",
        ),
        (["--backlog_pull_size=-1"], "--backlog_pull_size must be 0 or more"),
    ],
)
def test_a_wrong_backlog_pull_size_is_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv_of(VALID) + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# -- the runner, and streaming always on -----------------------------------------------


def test_the_runner_is_the_local_one_unless_the_template_launcher_runs_it():
    options = parse_options(argv_of(VALID))
    assert options.view_as(StandardOptions).runner == DEFAULT_RUNNER
    assert options.view_as(StandardOptions).streaming is True
    launched = parse_options(argv_of(VALID) + ["--template_location=gs://demo-bucket/t.json"])
    assert launched.view_as(StandardOptions).runner == "DataflowRunner"
    assert launched.view_as(LocalRunOptions).backlog_pull_size == 0
    given = parse_options(argv_of(VALID) + ["--runner=DataflowRunner", "--backlog_pull_size=0"])
    assert given.view_as(StandardOptions).runner == "DataflowRunner"


def test_the_switching_direct_runner_is_the_bundle_based_one():
    """Beam's DirectRunner would try Prism first, which reads no Pub/Sub."""
    given = parse_options(argv_of(VALID) + ["--runner=DirectRunner"])
    assert given.view_as(StandardOptions).runner == "BundleBasedDirectRunner"
    assert given.view_as(LocalRunOptions).backlog_pull_size == 1000


def test_without_a_bigtable_project_or_a_project_the_run_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    values = {k: v for k, v in VALID.items() if k != "bigtable_project"}
    with pytest.raises(SystemExit):
        parse_options(argv_of(values))
    assert "no Bigtable project: give --bigtable_project or --project" in capsys.readouterr().err
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    options = parse_options(argv_of(values))
    assert options.view_as(IngestOptions).bigtable_project == "env-project"


# -- the profile table, on the Bigtable emulator ---------------------------------------


def ingest_options(resources, table):
    return parse_options(
        argv_of(
            {
                **VALID,
                "bigtable_project": resources.project,
                "bigtable_instance": resources.instance,
                "bigtable_table": table,
            }
        )
    ).view_as(IngestOptions)


@pytest.mark.integration
def test_the_profile_table_must_exist_with_the_catalogs_families(pubsub_resources):
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    assert (
        check_profile_table(ingest_options(pubsub_resources, pubsub_resources.table), catalog)
        is None
    )
    problem = check_profile_table(ingest_options(pubsub_resources, "no-such-table"), catalog)
    assert problem == (
        f"the profile table projects/{pubsub_resources.project}/instances/"
        f"{pubsub_resources.instance}/tables/no-such-table does not exist; create it with: "
        f"ingest bootstrap --catalog {EXAMPLE_CATALOG} --project {pubsub_resources.project} "
        f"--instance {pubsub_resources.instance} --table no-such-table"
    )

    older = f"older-{pubsub_resources.table}"  # made before deletes and web-events

    bigtable.Client(project=pubsub_resources.project, admin=True).instance(
        pubsub_resources.instance
    ).table(older).create(
        column_families={name: column_family.MaxVersionsGCRule(1) for name in ("rec", "link")}
    )
    problem = check_profile_table(ingest_options(pubsub_resources, older), catalog)
    assert f"tables/{older} lacks families ['del', 'events_90d']; create it with: " in problem
