"""pipelines/streaming_ingest.py: the real streaming pipeline on the DirectRunner, against
the Pub/Sub and Bigtable emulators; and a run stopped before it starts.

The pipeline runs as users run it, `python -m pipelines.streaming_ingest`, in its own
process. The sample stream is published before it starts, so it begins with a backlog
whose publish times are older than the read's wall-clock watermark: the trap in which a
windowed write drops data without a word.
"""

import json
import time

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from domain.catalog import Catalog
from domain.profile_lookup import read_profile
from domain.pubsub_clients import subscriber_client
from helpers.examples import EXAMPLES
from helpers.pipeline_arguments import VALID, argv_of
from pipelines.streaming_ingest import run
from tests.pipelines.running_pipeline import (
    WINDOW_SECONDS,
    profile_table,
    publish,
    shown_by_every_identity,
    start_pipeline,
    stop,
    wait_until,
)

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
METADATA = ("/_id", "/_repo", "/identityMap")  # record metadata: not attributes


def sample_stream():
    """(payload, attributes) of every message the test publishes, and the valid records as
    (dataset, header, entity)."""
    messages, valid = [], []
    for number, line in enumerate((EXAMPLES / "records.jsonl").read_bytes().splitlines()):
        messages.append((line, {"line": str(number)}))
        if number not in EXPECTED_FAILURES:
            document = json.loads(line)
            header = document["header"]
            valid.append((header["datasetId"], header, document["body"]["xdmEntity"]))
    for number, line in enumerate((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()):
        messages.append((line, {"dataset": "web-events", "line": f"bare-{number}"}))
        valid.append(("web-events", {}, json.loads(line)))
    return messages, valid


def leaves(value, prefix=""):
    """(JSON pointer, value) of each leaf: an array is one, and so is an empty object."""
    for key, item in value.items():
        pointer = prefix + "/" + key.replace("~", "~0").replace("/", "~1")
        if isinstance(item, dict) and item:
            yield from leaves(item, pointer)
        else:
            yield pointer, item


def expected_persons(valid):
    """[(identities, what a lookup shows)] of each person of the profile-enabled records,
    plainly: the sample has no guardrail case (one Email and at most one CRMID a person,
    no blocked value, no delete), so a person is a connected set of identities; their
    attributes the newest record's value of each leaf (every profile record of a person
    is keyed by their Email), metadata aside; their events, newest first."""
    records = [(d, h, e) for d, h, e in valid if CATALOG[d][1]]
    persons = []  # [set of identities]
    for _, _, entity in records:
        own = {(ns, i["id"]) for ns, ids in entity["identityMap"].items() for i in ids}
        joined = [p for p in persons if p & own]
        persons = [p for p in persons if not p & own] + [own.union(*joined)]
    expected = []
    for person in persons:
        mine = [
            (d, h, e)
            for d, h, e in records
            if {(ns, i["id"]) for ns, ids in e["identityMap"].items() for i in ids} <= person
        ]
        attributes, newest = {}, {}
        for dataset, header, entity in mine:
            if CATALOG[dataset][0] != "profile":
                continue
            time_ = entity.get("_repo", {}).get("modifyDate") or header.get("timestamp") or ""
            for pointer, value in leaves(entity):
                if pointer in METADATA or pointer.startswith(tuple(m + "/" for m in METADATA)):
                    continue
                if time_ >= newest.get(pointer, ""):
                    newest[pointer] = time_
                    attributes[pointer] = (value, dataset)
        events = sorted(
            (e for d, _, e in mine if CATALOG[d][0] == "event"),
            key=lambda e: e["timestamp"],
            reverse=True,
        )
        expected.append(
            (
                sorted(person),
                {
                    "attributes": attributes,
                    "identities": sorted(person),
                    "events": [e["_id"] for e in events],
                },
            )
        )
    return expected


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
    subscriber = subscriber_client()
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
        table = profile_table(emulators, pubsub_resources)
        catalog = Catalog.load(str(EXAMPLES / "catalog.yaml"))
        persons = expected_persons(valid)
        assert len(persons) == 3  # Ada, Grace and Alan
        want = {i: profile for identities, profile in persons for i in identities}

        def every_profile_by_every_identity():
            return shown_by_every_identity(table, catalog, want) == want

        wait_until(
            every_profile_by_every_identity, "the profiles, by every identity", pipeline, log_path
        )
        assert shown_by_every_identity(table, catalog, want) == want
        ada = read_profile(table, catalog, "ECID", "71093246781113257349180312436890116545")
        assert ada["attributes"]["/loyalty/points"]["value"] == 1650  # the newest of three
        assert [i["namespace"] for i in ada["identities"]] == ["CRMID", "ECID", "Email"]
        assert [e["_id"] for e in ada["events"]] == [
            "bare-ada-0001",
            *(f"evt-ada-000{n}" for n in (5, 4, 3, 2, 1)),
        ]

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

        want_ids = sorted(entity["_id"] for _, _, entity in valid)
        wait_until(
            lambda: len(read_lake(lake_path)) >= len(want_ids), "the lake files", pipeline, log_path
        )
        assert sorted(read_lake(lake_path)) == want_ids  # each once, none lost
        for dataset in CATALOG:  # and as DuckDB reads it, over the Hive partitions
            count = duckdb.sql(f"""SELECT count(DISTINCT _id), count(*) FROM read_parquet(
                '{lake_path}/{dataset}/date=*/hour=*/part-*.parquet', hive_partitioning=true)
                """).fetchall()[0]
            want = sum(1 for d, _, _ in valid if d == dataset)
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
            lambda: read_profile(table, catalog, "Email", "late@example.com") is not None,
            "a record published after the bad ones",
            pipeline,
            log_path,
        )
        late_profile = read_profile(table, catalog, "Email", "late@example.com")
        assert {p: a["value"] for p, a in late_profile["attributes"].items()} == {
            "/loyalty/points": 7
        }
        assert pipeline.poll() is None
    finally:
        stop(pipeline)


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
        # Over gRPC's 4 MiB default for a received message, under Pub/Sub's 10 MB.
        ("too_large", b'{"pad": "' + b"x" * 9_000_000 + b'"}', {"dataset": "web-events"}),
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
            "identity_too_long",  # a namespace over 256 characters (a long id is refused)
            envelope("crm-profiles", identityMap={"N" * 300: [{"id": "a", "primary": True}]}),
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
        stop(pipeline)


def test_an_unreadable_catalog_stops_the_pipeline_before_bigtable(tmp_path):
    missing = tmp_path / "no-catalog.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run(argv_of({**VALID, "catalog": missing, "lake_path": tmp_path / "lake"}))
    assert str(exit_info.value.code).startswith(f"error: cannot read {missing}")
