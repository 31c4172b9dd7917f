"""The local emulator stack and the `ingest` commands that use it, against the real emulators."""
import io
import json
import pathlib
import shlex
import socket

import pytest
from google.cloud import bigtable, pubsub_v1

from ingest import cli, local_stack
from domain.catalog import Catalog
from domain.profile_table import column_families
from pubsub_helpers import pull_messages

EXAMPLE_CATALOG = pathlib.Path(__file__).parent.parent / "examples" / "catalog.yaml"


def accepts_connections(address):
    host, _, port = address.rpartition(":")
    return local_stack.port_accepts_connections(host, int(port))


@pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")
def test_create_resources_makes_topics_subscriptions_and_table_and_can_run_again(pubsub_resources):
    local_stack.create_resources(
        project=pubsub_resources.project,
        topic=pubsub_resources.topic,
        subscription=pubsub_resources.subscription,
        dead_letter_topic=pubsub_resources.dead_letter_topic,
        dead_letter_subscription=pubsub_resources.dead_letter_subscription,
        instance=pubsub_resources.instance,
        table=pubsub_resources.table,
    )

    with pubsub_v1.PublisherClient() as publisher:
        publisher.get_topic(topic=pubsub_resources.topic_path)
        publisher.get_topic(topic=pubsub_resources.dead_letter_topic_path)
    with pubsub_v1.SubscriberClient() as subscriber:
        subscription = subscriber.get_subscription(subscription=pubsub_resources.subscription_path)
        dead_letter_subscription = subscriber.get_subscription(
            subscription=pubsub_resources.dead_letter_subscription_path
        )
    assert subscription.topic == pubsub_resources.topic_path
    assert subscription.ack_deadline_seconds == 60
    assert dead_letter_subscription.topic == pubsub_resources.dead_letter_topic_path

    table = (
        bigtable.Client(project=pubsub_resources.project, admin=True)
        .instance(pubsub_resources.instance)
        .table(pubsub_resources.table)
    )
    assert table.exists()
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    assert set(table.list_column_families()) == set(column_families(catalog))
    assert "events_90d" in column_families(catalog)  # the example event datasets' retention


def test_create_resources_refuses_real_google_cloud_without_being_told(monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("BIGTABLE_EMULATOR_HOST", raising=False)

    with pytest.raises(local_stack.LocalStackError, match="allow_real_gcp"):
        local_stack.create_resources()


def test_publish_sends_every_line_byte_for_byte_with_the_dataset_attribute(pubsub_resources, tmp_path, capsys):
    lines = [
        b'{"identityMap": {"email": [{"id": "ada@example.com"}]}, "name": "Ada"}',
        b'{"broken": ',  # invalid JSON is published as it is
        '{"city": "Zürich"}'.encode(),
        b'{"spaces": 1}   ',
        b"\xff\xfe not UTF-8",
    ]
    jsonl = tmp_path / "records.jsonl"
    # A blank line, a whitespace-only line, a CRLF ending and no final newline.
    jsonl.write_bytes(lines[0] + b"\n\n" + lines[1] + b"\r\n" + lines[2] + b"\n  \n" + lines[3] + b"\n" + lines[4])

    exit_code = cli.main([
        "publish", "--topic", pubsub_resources.topic, "--dataset", "profiles",
        "--attribute", "source=unit-test", str(jsonl),
    ])

    assert exit_code == 0
    assert "Published 5 messages" in capsys.readouterr().out
    messages = pull_messages(pubsub_resources.subscription_path, expected_count=5)
    assert sorted(message.data for message in messages) == sorted(lines)
    for message in messages:
        assert dict(message.attributes) == {"dataset": "profiles", "source": "unit-test"}


def test_publish_reads_standard_input_and_takes_a_full_topic_path(pubsub_resources, monkeypatch, capsys):
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
    assert "topic projects/demo-project/topics/no-such-topic does not exist" in capsys.readouterr().err


def test_dead_letter_pull_prints_attributes_and_payload_and_acks_only_when_asked(pubsub_resources, capsys):
    long_payload = b'{"note": "' + b"x" * 500 + b'"}'
    with pubsub_v1.PublisherClient() as publisher:
        publisher.publish(
            pubsub_resources.dead_letter_topic_path, b'{"broken": \nline two',
            error_class="JSONDecodeError", error_message="Expecting value: line 1 column 12",
            error_pointer="", error_step="parse", dataset="profiles", pipeline="test",
        ).result()
        publisher.publish(
            pubsub_resources.dead_letter_topic_path, long_payload,
            error_class="ValidationError", error_step="validate",
        ).result()
    pull = ["dead-letter", "pull", "--subscription", pubsub_resources.dead_letter_subscription, "--wait", "1"]

    assert cli.main(pull) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert len(lines) == 2
    broken, long = lines
    assert (
        'error_class=JSONDecodeError error_message="Expecting value: line 1 column 12" error_pointer="" '
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
    assert {record["attributes"]["error_class"] for record in records} == {"JSONDecodeError", "ValidationError"}

    assert cli.main(pull) == 0
    assert capsys.readouterr().out == ""


def test_start_is_idempotent_and_stop_ends_the_emulators(tmp_path):
    first = local_stack.start(tmp_path, pubsub_port=0, bigtable_port=0)
    try:
        assert first.pubsub.port != first.bigtable.port
        assert accepts_connections(first.pubsub.address)
        assert accepts_connections(first.bigtable.address)

        again = local_stack.start(tmp_path, pubsub_port=0, bigtable_port=0)
        assert again.already_running
        assert (again.pubsub.pid, again.bigtable.pid) == (first.pubsub.pid, first.bigtable.pid)
    finally:
        stopped = local_stack.stop(tmp_path)

    assert [emulator.name for emulator in stopped] == ["pubsub", "bigtable"]
    assert not accepts_connections(first.pubsub.address)
    assert not accepts_connections(first.bigtable.address)
    assert not (tmp_path / "stack.json").exists()
    assert local_stack.stop(tmp_path) == []


def test_start_refuses_a_port_that_is_in_use(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy_port = listener.getsockname()[1]

        with pytest.raises(local_stack.LocalStackError, match=f"Port {busy_port} .* already in use"):
            local_stack.start(tmp_path, pubsub_port=busy_port, bigtable_port=0)

    assert not (tmp_path / "stack.json").exists()


def test_start_without_emulators_or_docker_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud, java or docker to be found
    monkeypatch.delenv("CLOUDSDK_ROOT_DIR", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(local_stack, "DEFAULT_SDK_ROOT", str(tmp_path / "no-sdk"))
    local_stack._sdk_root_from_gcloud.cache_clear()
    try:
        with pytest.raises(local_stack.LocalStackError) as raised:
            local_stack.start(tmp_path / "state", pubsub_port=0, bigtable_port=0)
    finally:
        local_stack._sdk_root_from_gcloud.cache_clear()

    message = str(raised.value)
    assert "apt-get install google-cloud-cli-pubsub-emulator google-cloud-cli-bigtable-emulator" in message
    assert "openjdk" in message
    assert "Docker" in message


def test_local_up_prints_exports_of_live_emulators_and_local_down_stops_them(tmp_path, monkeypatch, capsys):
    state_dir = str(tmp_path / "stack")
    up = ["local", "up", "--state-dir", state_dir, "--pubsub-port", "0", "--bigtable-port", "0",
          "--project", "other-project", "--topic", "cli-input"]
    try:
        assert cli.main(up) == 0
        exports = dict(
            shlex.split(line)[1].split("=", 1) for line in capsys.readouterr().out.splitlines()
        )
        assert set(exports) == {"PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST", "PUBSUB_PROJECT_ID",
                                "GOOGLE_CLOUD_PROJECT"}
        assert exports["PUBSUB_PROJECT_ID"] == exports["GOOGLE_CLOUD_PROJECT"] == "other-project"
        assert accepts_connections(exports["PUBSUB_EMULATOR_HOST"])
        assert accepts_connections(exports["BIGTABLE_EMULATOR_HOST"])
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", exports["PUBSUB_EMULATOR_HOST"])
        with pubsub_v1.PublisherClient() as publisher:
            publisher.get_topic(topic="projects/other-project/topics/cli-input")
    finally:
        assert cli.main(["local", "down", "--state-dir", state_dir]) == 0

    assert "Stopped the Pub/Sub emulator" in capsys.readouterr().err
    assert not accepts_connections(exports["PUBSUB_EMULATOR_HOST"])
    assert not accepts_connections(exports["BIGTABLE_EMULATOR_HOST"])
    assert cli.main(["local", "down", "--state-dir", state_dir]) == 0
    assert "No local stack is running" in capsys.readouterr().err
