"""`ingest publish` of JSON Lines files and of generated messages, against the real Pub/Sub
emulator."""

import io
import pathlib
import re
import time

import pytest

from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.records import RecordError
from ingest import cli
from pubsub_helpers import pull_messages

EXAMPLE_CATALOG = pathlib.Path(__file__).parents[2] / "examples" / "catalog.yaml"


@pytest.fixture(scope="module")
def parser():
    return RecordParser(Catalog.load(str(EXAMPLE_CATALOG)))


def test_publish_sends_every_line_byte_for_byte_with_the_dataset_attribute(
    pubsub_resources, tmp_path, capsys
):
    lines = [
        b'{"identityMap": {"email": [{"id": "ada@example.com"}]}, "name": "Ada"}',
        b'{"broken": ',  # invalid JSON is published as it is
        '{"city": "Zürich"}'.encode(),
        b'{"spaces": 1}   ',
        b"\xff\xfe not UTF-8",
    ]
    jsonl = tmp_path / "records.jsonl"
    # A blank line, a whitespace-only line, a CRLF ending and no final newline.
    jsonl.write_bytes(
        lines[0] + b"\n\n" + lines[1] + b"\r\n" + lines[2] + b"\n  \n" + lines[3] + b"\n" + lines[4]
    )

    exit_code = cli.main(
        [
            "publish",
            "--topic",
            pubsub_resources.topic,
            "--dataset",
            "profiles",
            "--attribute",
            "source=unit-test",
            str(jsonl),
        ]
    )

    assert exit_code == 0
    assert "Published 5 messages" in capsys.readouterr().out
    messages = pull_messages(pubsub_resources.subscription_path, expected_count=5)
    assert sorted(message.data for message in messages) == sorted(lines)
    for message in messages:
        assert dict(message.attributes) == {"dataset": "profiles", "source": "unit-test"}


def test_publish_reads_standard_input_and_takes_a_full_topic_path(
    pubsub_resources, monkeypatch, capsys
):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n{"b": 2}\n')))

    exit_code = cli.main(["publish", "--topic", pubsub_resources.topic_path, "-"])

    assert exit_code == 0
    assert "Published 2 messages" in capsys.readouterr().out
    messages = pull_messages(pubsub_resources.subscription_path, expected_count=2)
    assert sorted(message.data for message in messages) == [b'{"a": 1}', b'{"b": 2}']
    assert all(not message.attributes for message in messages)


def test_publish_to_a_topic_that_does_not_exist_fails_clearly(emulators, tmp_path, capsys):
    jsonl = tmp_path / "one.jsonl"
    jsonl.write_text('{"a": 1}\n')

    exit_code = cli.main(["publish", "--topic", "no-such-topic", str(jsonl)])

    assert exit_code == 1
    assert (
        "topic projects/demo-project/topics/no-such-topic does not exist" in capsys.readouterr().err
    )


def test_publish_wants_files_or_generate_but_not_both(capsys):
    assert cli.main(["publish", "--topic", "input"]) == 2
    assert cli.main(["publish", "--topic", "input", "--generate", "5", "records.jsonl"]) == 2
    assert "error: give either FILE... or --generate N, not both" in capsys.readouterr().err


def test_publish_generate_publishes_exactly_n_messages_and_says_what_it_made(
    pubsub_resources, parser, capsys
):
    exit_code = cli.main(
        [
            "publish",
            "--topic",
            pubsub_resources.topic,
            "--generate",
            "200",
            "--rate",
            "0",
            "--seed",
            "1",
            "--invalid-share",
            "0.1",
            "--duplicate-share",
            "0.05",
            "--attribute",
            "source=generator",
        ]
    )

    assert exit_code == 0
    output = capsys.readouterr().out
    assert re.search(
        rf"^Published 200 messages to {pubsub_resources.topic_path} with attributes "
        r"source=generator, 0 refused, 0 unknown, in [\d.]+ s \([\d,]+ messages/s\)\.$",
        output,
        re.MULTILINE,
    )
    counts = re.search(
        r"^Generated with seed 1: (\d+) valid, (\d+) invalid \(.*\), "
        r"(\d+) duplicates?\.$",
        output,
        re.MULTILINE,
    )
    valid, invalid, duplicates = map(int, counts.groups())
    assert valid + invalid + duplicates == 200

    messages = pull_messages(pubsub_resources.subscription_path, expected_count=200)
    assert len(messages) == 200
    assert all(dict(message.attributes) == {"source": "generator"} for message in messages)
    distinct_payloads = {message.data for message in messages}
    assert len(distinct_payloads) == 200 - duplicates
    assert sum(_parses(parser, payload) for payload in distinct_payloads) == valid


def _parses(parser, payload):
    try:
        parser.parse(payload)
        return True
    except RecordError:
        return False


def test_publish_generate_keeps_to_the_rate(pubsub_resources, capsys):
    started_at = time.monotonic()
    exit_code = cli.main(
        ["publish", "--topic", pubsub_resources.topic, "--generate", "100", "--rate", "100"]
    )
    elapsed = time.monotonic() - started_at

    assert exit_code == 0
    assert "Published 100 messages" in capsys.readouterr().out
    # Message n goes n / 100 s after the first: the 100th at 0.99 s. A loose bound: not a speed
    # test.
    assert elapsed >= 0.8
    assert len(pull_messages(pubsub_resources.subscription_path, expected_count=100)) == 100


def test_a_message_pubsub_refuses_is_counted_as_refused_not_unknown(
    pubsub_resources, tmp_path, capsys
):
    """A line over Pub/Sub's 10 MB cannot be on the topic: refused. Only a publish that got
    no answer is unknown (it may have arrived), and a retry of those may write twice."""
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_bytes(b'{"ok": 1}\n' + b'{"pad": "' + b"x" * 10_500_000 + b'"}\n')
    exit_code = cli.main(
        ["publish", "--topic", pubsub_resources.topic, "--dataset", "web-events", str(jsonl)]
    )
    captured = capsys.readouterr()
    assert exit_code == 1
    assert "Published 1 message" in captured.out and ", 1 refused, 0 unknown," in captured.out
    assert "1 message refused, not on the topic" in captured.err
    assert "unknown" not in captured.err
    assert len(pull_messages(pubsub_resources.subscription_path, 1)) == 1


def test_only_an_answer_that_says_no_counts_as_refused():
    from google.api_core import exceptions

    from ingest.commands.publish import publish_refused

    assert publish_refused(exceptions.InvalidArgument("too large"))
    assert publish_refused(exceptions.NotFound("no topic"))
    assert publish_refused(ValueError("over the client's own limit"))  # never sent
    assert not publish_refused(exceptions.DeadlineExceeded("no answer in time"))
    assert not publish_refused(exceptions.ServiceUnavailable("emulator frozen"))
    assert not publish_refused(exceptions.RetryError("gave up", cause=None))
