"""`ingest dead-letter pull`, against the real Pub/Sub emulator."""

import json

from google.cloud import pubsub_v1

from ingest import cli


def test_dead_letter_pull_prints_attributes_and_payload_and_acks_only_when_asked(
    pubsub_resources, capsys
):
    long_payload = b'{"note": "' + b"x" * 500 + b'"}'
    with pubsub_v1.PublisherClient() as publisher:
        publisher.publish(
            pubsub_resources.dead_letter_topic_path,
            b'{"broken": \nline two',
            error_class="JSONDecodeError",
            error_message="Expecting value: line 1 column 12",
            error_pointer="",
            error_step="parse",
            dataset="profiles",
            pipeline="test",
        ).result()
        publisher.publish(
            pubsub_resources.dead_letter_topic_path,
            long_payload,
            error_class="ValidationError",
            error_step="validate",
        ).result()
    pull = [
        "dead-letter",
        "pull",
        "--subscription",
        pubsub_resources.dead_letter_subscription,
        "--wait",
        "1",
    ]

    assert cli.main(pull) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 2
    broken, long = lines
    assert (
        'error_class=JSONDecodeError error_message="Expecting value: line 1 column 12" '
        'error_pointer="" '
        'error_step=parse dataset=profiles pipeline=test payload={"broken": \\nline two'
    ) in broken
    assert "error_class=ValidationError error_step=validate payload=" in long
    assert long.endswith(f"... ({len(long_payload)} bytes)")
    assert len(long) < 300

    # Without --ack the messages stayed: they come again, here as JSON, and are acked.
    assert cli.main(pull + ["--json", "--ack"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(record["payload"] for record in records) == sorted(
        ['{"broken": \nline two', long_payload.decode()]
    )
    assert {record["attributes"]["error_class"] for record in records} == {
        "JSONDecodeError",
        "ValidationError",
    }

    assert cli.main(pull) == 0
    assert capsys.readouterr().out == ""
