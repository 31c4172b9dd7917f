"""pipelines/streaming_ingest.py: the real streaming pipeline on the DirectRunner, against
the Pub/Sub and Bigtable emulators; and a run stopped before it starts.

The pipeline runs as users run it, `python -m pipelines.streaming_ingest`, in its own
process. The sample stream is published before it starts, so it begins with a backlog
whose publish times are older than the read's wall-clock watermark: the trap in which a
windowed write drops data without a word.
"""

import json
import os
import subprocess
import sys
import time

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from google.cloud import bigtable, pubsub_v1

from domain.profile_table import ATTRIBUTES_FAMILY, row_key
from helpers.examples import EXAMPLES, REPO
from helpers.pipeline_arguments import VALID, argv_of
from pipelines.streaming_ingest import run

CATALOG = {
    "crm-profiles": ("profile", True),
    "web-events": ("event", True),
    "web-events-archive": ("event", False),
}
EXPECTED_FAILURES = {  # line of records.jsonl (0-based) -> error class
    18: "not_json",
    19: "not_object",
    20: "unknown_dataset",
    21: "schema_violation",
    22: "schema_violation",
    23: "identity",
}
DEADLINE_SECONDS = 180
WINDOW_SECONDS = 2


def sample_stream():
    """(payload, attributes) of every message the test publishes, and the valid records."""
    messages, valid = [], []
    for number, line in enumerate((EXAMPLES / "records.jsonl").read_bytes().splitlines()):
        messages.append((line, {"line": str(number)}))
        if number not in EXPECTED_FAILURES:
            document = json.loads(line)
            valid.append((document["header"]["datasetId"], document["body"]["xdmEntity"]))
    for number, line in enumerate((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()):
        messages.append((line, {"dataset": "web-events", "line": f"bare-{number}"}))
        valid.append(("web-events", json.loads(line)))
    return messages, valid


def expected_profiles(valid):
    """Row key -> {attribute pointer: value} (newest record wins) and {event ids}."""
    attributes, events, newest = {}, {}, {}
    for dataset, entity in valid:
        kind, feeds_profile = CATALOG[dataset]
        if not feeds_profile:
            continue
        namespace, identity_id = next(
            (ns, i["id"])
            for ns, ids in entity["identityMap"].items()
            for i in ids
            if i.get("primary")
        )
        key = row_key(namespace, identity_id)
        if kind == "event":
            events.setdefault(key, set()).add(entity["_id"])
            continue
        time_ = entity["_repo"]["modifyDate"]
        for pointer, value in flatten(entity):
            if pointer.startswith("/identityMap/"):
                continue  # identities are linked, not attributes
            if time_ >= newest.get((key, pointer), ""):
                newest[(key, pointer)] = time_
                attributes.setdefault(key, {})[pointer] = value
    return attributes, events


def flatten(value, prefix=""):
    for key, item in value.items():
        if isinstance(item, dict):
            yield from flatten(item, f"{prefix}/{key}")
        else:
            yield f"{prefix}/{key}", item


def start_pipeline(resources, lake_path, emulators):
    command = [
        sys.executable,
        "-m",
        "pipelines.streaming_ingest",
        f"--input_subscription={resources.subscription_path}",
        f"--dead_letter_topic={resources.dead_letter_topic_path}",
        f"--catalog={EXAMPLES / 'catalog.yaml'}",
        f"--lake_path={lake_path}",
        f"--bigtable_project={emulators.project}",
        f"--bigtable_instance={resources.instance}",
        f"--bigtable_table={resources.table}",
        f"--window_seconds={WINDOW_SECONDS}",
    ]
    log = open(lake_path.parent / "pipeline.log", "w")
    return subprocess.Popen(
        command, cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
    )


def publish(topic_path, messages):
    publisher = pubsub_v1.PublisherClient()
    for future in [
        publisher.publish(topic_path, payload, **attributes) for payload, attributes in messages
    ]:
        future.result(timeout=30)


def read_profiles(table):
    attributes, events = {}, {}
    for row in table.read_rows():
        cells = row.cells
        if ATTRIBUTES_FAMILY in cells:
            attributes[row.row_key] = {
                q.decode(): json.loads(c[0].value)["value"]
                for q, c in cells[ATTRIBUTES_FAMILY].items()
            }
        for family, columns in cells.items():
            if family.startswith("events_"):
                events.setdefault(row.row_key, set()).update(
                    json.loads(c[0].value)["event"]["_id"] for c in columns.values()
                )
    return attributes, events


def read_lake(lake_path):
    if not any(lake_path.rglob("*.parquet")):
        return []
    dataset = ds.dataset(
        lake_path, format="parquet", partitioning="hive", exclude_invalid_files=False
    )
    return dataset.to_table(columns=["_id"]).column("_id").to_pylist()


def dead_letter_collector(resources, key_attribute, collected, expected):
    """A condition for wait_until: pulls dead letters into `collected`, by the value of
    their `key_attribute`, until there are `expected` of them."""
    subscriber = pubsub_v1.SubscriberClient()
    subscription = resources.dead_letter_subscription_path

    def pull():
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        for received in response.received_messages:
            collected[received.message.attributes[key_attribute]] = received.message
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[r.ack_id for r in response.received_messages]
            )
        return len(collected) >= expected

    return pull


def read_errors(lake_path):
    files = list((lake_path / "_errors").glob("date=*/hour=*/part-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def wait_until(condition, what, pipeline, log_path):
    deadline = time.time() + DEADLINE_SECONDS
    while time.time() < deadline:
        if pipeline.poll() is not None:
            pytest.fail(
                f"the pipeline exited ({pipeline.returncode}) while waiting for {what}:\n"
                + log_path.read_text()[-3000:]
            )
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(
        f"timed out after {DEADLINE_SECONDS} s waiting for {what}:\n" + log_path.read_text()[-3000:]
    )


@pytest.mark.integration
def test_stream_lands_in_bigtable_and_lake_and_failures_in_the_dead_letter(
    emulators, pubsub_resources, tmp_path
):
    lake_path = tmp_path / "lake"
    log_path = tmp_path / "pipeline.log"
    messages, valid = sample_stream()
    publish(pubsub_resources.topic_path, messages)
    time.sleep(3 * WINDOW_SECONDS)  # the backlog is older than a window and its lateness
    pipeline = start_pipeline(pubsub_resources, lake_path, emulators)
    try:
        table = (
            bigtable.Client(project=emulators.project)
            .instance(pubsub_resources.instance)
            .table(pubsub_resources.table)
        )
        want_attributes, want_events = expected_profiles(valid)
        wait_until(
            lambda: read_profiles(table) == (want_attributes, want_events),
            "the merged profiles in Bigtable",
            pipeline,
            log_path,
        )

        dead_letters = {}
        wait_until(
            dead_letter_collector(pubsub_resources, "line", dead_letters, len(EXPECTED_FAILURES)),
            "the dead letters",
            pipeline,
            log_path,
        )
        assert {
            int(line): m.attributes["error_class"] for line, m in dead_letters.items()
        } == EXPECTED_FAILURES
        for line, message in dead_letters.items():
            assert message.data == messages[int(line)][0]  # unchanged
            assert message.attributes["error_message"]
            assert message.attributes["error_step"] == "parse_and_validate"
        assert dead_letters["21"].attributes["error_pointer"] == "/loyalty/points"

        want_ids = sorted(entity["_id"] for _, entity in valid)
        wait_until(
            lambda: len(read_lake(lake_path)) >= len(want_ids), "the lake files", pipeline, log_path
        )
        assert sorted(read_lake(lake_path)) == want_ids  # each once, none lost
        for dataset in CATALOG:  # and as DuckDB reads it, over the Hive partitions
            count = duckdb.sql(f"""SELECT count(DISTINCT _id), count(*) FROM read_parquet(
                '{lake_path}/{dataset}/date=*/hour=*/part-*.parquet', hive_partitioning=true)
                """).fetchall()[0]
            want = sum(1 for d, _ in valid if d == dataset)
            assert count == (want, want)

        # The dead letter's second home: the lake's `_errors` dataset, complete.
        wait_until(
            lambda: len(read_errors(lake_path)) >= len(EXPECTED_FAILURES),
            "the _errors dataset",
            pipeline,
            log_path,
        )
        errors = {int(dict(r["attributes"])["line"]): r for r in read_errors(lake_path)}
        assert {line: r["error_class"] for line, r in errors.items()} == EXPECTED_FAILURES
        assert all(r["payload"] == messages[line][0] for line, r in errors.items())
        assert errors[21]["errors"][0]["pointer"] == "/loyalty/points"
        assert errors[21]["_publish_time"] is not None and errors[21]["_ingested_at"]

        # Still up after every kind of bad message: a new record lands.
        late = {
            "_id": "prof-late-0001",
            "identityMap": {"Email": [{"id": "late@example.com", "primary": True}]},
            "loyalty": {"points": 7},
        }
        publish(
            pubsub_resources.topic_path, [(json.dumps(late).encode(), {"dataset": "crm-profiles"})]
        )
        wait_until(
            lambda: table.read_row(row_key("Email", "late@example.com")) is not None,
            "a record published after the bad ones",
            pipeline,
            log_path,
        )
        assert pipeline.poll() is None
    finally:
        pipeline.terminate()
        pipeline.wait(timeout=30)


def bad_messages_of_every_class():
    """(error class, payload, attributes) for every way a message can fail."""
    bare_event = json.loads((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0])
    profile = json.loads((EXAMPLES / "records.jsonl").read_bytes().splitlines()[0])
    entity = profile["body"]["xdmEntity"]

    def envelope(dataset, **changes):
        document = json.loads(json.dumps(profile))
        document["header"]["datasetId"] = dataset
        document["body"]["xdmEntity"] = {**json.loads(json.dumps(entity)), **changes}
        return json.dumps(document).encode()

    wrong_schema = json.loads(envelope("crm-profiles"))
    wrong_schema["header"]["schemaRef"]["id"] = "https://ns.example.com/xdm/experience-event"
    huge_quantity = {
        **bare_event,
        "_id": "evt-huge",
        "productListItems": [{"SKU": "x", "quantity": 2**70}],
    }
    return [
        ("not_utf8", b"\xff\xfe\xfa", {}),
        ("not_json", b"{oops", {}),
        ("not_object", b"[1, 2]", {}),
        ("too_deep", b'{"a":' * 100 + b"1" + b"}" * 100, {"dataset": "web-events"}),
        ("too_large", b'{"pad": "' + b"x" * 1_000_000 + b'"}', {"dataset": "web-events"}),
        ("unknown_dataset", json.dumps(bare_event).encode(), {}),
        ("unknown_schema", json.dumps(wrong_schema).encode(), {}),
        ("schema_violation", envelope("crm-profiles", loyalty={"points": -5}), {}),
        (
            "identity",
            envelope(
                "crm-profiles",
                identityMap={"Email": [{"id": "a@example.com"}], "ECID": [{"id": "123"}]},
            ),
            {},
        ),
        (
            "identity_too_long",
            envelope(
                "crm-profiles",
                identityMap={"Email": [{"id": "a" * 5000 + "@example.com", "primary": True}]},
            ),
            {},
        ),
        (
            "bad_timestamp",
            envelope("crm-profiles", _repo={"modifyDate": "1969-07-20T20:17:00Z"}),
            {},
        ),
        ("lake_write", json.dumps(huge_quantity).encode(), {"dataset": "web-events-archive"}),
    ]


@pytest.mark.integration
def test_bad_messages_of_every_class_reach_both_dead_letters_and_block_no_valid_one(
    emulators, pubsub_resources, tmp_path
):
    lake_path = tmp_path / "lake"
    log_path = tmp_path / "pipeline.log"
    bad = bad_messages_of_every_class()
    valid_lines = (EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()
    messages = []
    for number, (error_class, payload, attributes) in enumerate(bad):
        messages.append((payload, {**attributes, "case": error_class}))
        valid = valid_lines[number % len(valid_lines)]
        document = {**json.loads(valid), "_id": f"valid-{number}"}
        messages.append((json.dumps(document).encode(), {"dataset": "web-events", "case": "valid"}))
    pipeline = start_pipeline(pubsub_resources, lake_path, emulators)
    try:
        publish(pubsub_resources.topic_path, messages)
        dead_letters = {}
        wait_until(
            dead_letter_collector(pubsub_resources, "case", dead_letters, len(bad)),
            "a dead letter of every class",
            pipeline,
            log_path,
        )
        assert {case: m.attributes["error_class"] for case, m in dead_letters.items()} == {
            error_class: error_class for error_class, _, _ in bad
        }
        payloads = {error_class: payload for error_class, payload, _ in bad}
        assert all(m.data == payloads[case] for case, m in dead_letters.items())
        assert dead_letters["lake_write"].attributes["error_step"] == "write_to_lake"

        wait_until(
            lambda: len(read_errors(lake_path)) >= len(bad),
            "the _errors dataset",
            pipeline,
            log_path,
        )
        errors = {dict(r["attributes"])["case"]: r for r in read_errors(lake_path)}
        assert {case: r["error_class"] for case, r in errors.items()} == {
            error_class: error_class for error_class, _, _ in bad
        }

        want_ids = sorted(f"valid-{number}" for number in range(len(bad)))
        wait_until(
            lambda: len(read_lake(lake_path)) >= len(want_ids),
            "the valid records",
            pipeline,
            log_path,
        )
        assert sorted(read_lake(lake_path)) == want_ids
        assert pipeline.poll() is None
    finally:
        pipeline.terminate()
        pipeline.wait(timeout=30)


def test_an_unreadable_catalog_stops_the_pipeline_before_bigtable(tmp_path):
    missing = tmp_path / "no-catalog.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run(argv_of({**VALID, "catalog": missing, "lake_path": tmp_path / "lake"}))
    assert str(exit_info.value.code).startswith(f"error: cannot read {missing}")
