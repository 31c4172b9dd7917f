"""Issue #16's poison messages through the Beam steps, on the DirectRunner: none stops a
bundle, each is a dead letter of its class, the messages around it go on; the dead letter
publishes to the real Pub/Sub emulator within Pub/Sub's limits, and a dead letter the topic
refuses is logged, counted and kept in the lake's `_errors` (the domain's side:
tests/domain/test_poison_messages.py)."""

import dataclasses
import glob
import json
import uuid

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from domain.records import FailedMessage
from helpers.beam_testing import streaming_pipeline
from helpers.examples import example_lines
from pubsub_helpers import pull_messages
from tests.transforms.emulator_writes import cells_of, new_table, parse_all
from transforms.dead_letter import REFUSED_TAG, DeadLetter, _CheckFn, _PublishFn, to_pubsub_message
from transforms.profile_store import WriteProfiles
from transforms.validate import ParseAndValidate

PROFILE_LINE = example_lines("records.jsonl")[0]
EVENT_LINE = example_lines("records-bare.jsonl")[0]
MANY = {f"attribute-{n:03}": f"value {n}" for n in range(100)}


def envelope_with(**header):
    document = json.loads(PROFILE_LINE)
    document["header"].update(header)
    return json.dumps(document).encode()


def event_at(timestamp):
    return json.dumps({**json.loads(EVENT_LINE), "timestamp": timestamp}).encode()


def profile_modified_at(date):
    document = json.loads(PROFILE_LINE)
    document["body"]["xdmEntity"]["_repo"] = {"modifyDate": date}
    return json.dumps(document).encode()


# (payload, attributes, the class it must have)
POISON = [
    (b'{"\\ud800": 1}', {"dataset": "web-events"}, "not_utf8"),
    (envelope_with(datasetId=5), {}, "unknown_dataset"),
    (envelope_with(datasetId=True), {}, "unknown_dataset"),
    (envelope_with(datasetId=["crm-profiles"]), {}, "unknown_dataset"),
    (b"{not json", MANY, "not_json"),
    (b"{not json", {"dataset": "web-events", "note": "x" * 5000}, "not_json"),
    (event_at("9999-12-31T23:59:59-01:00"), {"dataset": "web-events"}, "bad_timestamp"),
    (profile_modified_at("0001-01-01T00:00:00+01:00"), {}, "bad_timestamp"),
    (b'{"a": NaN}', {"dataset": "web-events"}, "not_json"),
    (b'{"a": Infinity}', {"dataset": "web-events"}, "not_json"),
    (b'{"a": -Infinity}', {"dataset": "web-events"}, "not_json"),
]


def poison_stream():
    """Each poison message followed by a valid one, all in one bundle: [PubsubMessage]."""
    messages = []
    for number, (payload, attributes, _) in enumerate(POISON):
        messages.append(PubsubMessage(payload, {**attributes, "n": f"poison-{number}"}))
        messages.append(PubsubMessage(EVENT_LINE, {"dataset": "web-events", "n": f"ok-{number}"}))
    return messages


def failures_of(catalog, messages):
    from domain.parsing import RecordParser

    parser = RecordParser(catalog)
    outcomes = [parser.parse_or_fail(m.data, m.attributes, "", None, "parse") for m in messages]
    return [o for o in outcomes if isinstance(o, FailedMessage)]


class NotAMessage:
    """What no Pub/Sub read gives: no attributes attribute at all."""

    data = b"{}"


def test_poison_messages_are_dead_letters_of_their_class_and_the_bundle_goes_on(catalog):
    with TestPipeline(runner="BundleBasedDirectRunner") as p:
        results = (
            p
            | beam.Create([*poison_stream(), NotAMessage()], reshuffle=False)
            | ParseAndValidate(catalog)
        )
        assert_that(
            results.valid | beam.Map(lambda r: r.attributes["n"]),
            equal_to([f"ok-{number}" for number in range(len(POISON))]),
            label="every valid one",
        )
        assert_that(
            results.failed
            | beam.Map(lambda f: (f.attributes.get("n", "?"), f.error_class, f.step)),
            equal_to(
                [(f"poison-{n}", c, "parse_and_validate") for n, (_, _, c) in enumerate(POISON)]
                + [("?", "internal", "parse_and_validate")]
            ),
            label="every poison one, with its class",
        )


def test_an_unexpected_error_is_internal_with_the_exceptions_type_and_message(catalog):
    with TestPipeline(runner="BundleBasedDirectRunner") as p:
        failed = p | beam.Create([NotAMessage()]) | ParseAndValidate(catalog)
        assert_that(
            failed.failed | beam.Map(lambda f: f.error_message.split(":")[0]),
            equal_to(["AttributeError"]),
        )


def n_of(message):
    """The message's `n`, kept as it was or among the attributes that did not fit."""
    attributes = message.attributes
    return attributes.get("n") or json.loads(attributes["error_attributes"])["n"]


def error_rows(lake):
    files = glob.glob(f"{lake}/_errors/date=*/hour=*/part-*.parquet")
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def run_dead_letter(failures, topic, lake):
    stream = TestStream().add_elements(failures).advance_watermark_to_infinity()
    pipeline = streaming_pipeline()
    _ = pipeline | stream | DeadLetter(topic, str(lake), 60, 600)
    result = pipeline.run()
    result.wait_until_finish()
    return {
        f"{c.key.metric.namespace}/{c.key.metric.name}": c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
    }


@pytest.mark.integration
def test_every_poison_dead_letter_is_published_within_pub_subs_limits(
    catalog, pubsub_resources, tmp_path
):
    failures = failures_of(catalog, poison_stream())
    assert len(failures) == len(POISON)
    counters = run_dead_letter(failures, pubsub_resources.dead_letter_topic_path, tmp_path)
    published = pull_messages(pubsub_resources.dead_letter_subscription_path, len(POISON))
    assert sorted(n_of(m) for m in published) == sorted(f"poison-{n}" for n in range(len(POISON)))
    for message in published:
        assert len(message.attributes) <= 100
        for key, value in message.attributes.items():
            assert len(key.encode()) <= 256 and len(value.encode()) <= 1024
    many = next(m for m in published if n_of(m) == "poison-4")
    assert 98 <= len(many.attributes) <= 100 and many.data == b"{not json"
    kept = {k: v for k, v in many.attributes.items() if k in MANY}
    moved = json.loads(many.attributes["error_attributes"])
    assert {**kept, **moved} == {**MANY, "n": "poison-4"}
    long = next(m for m in published if n_of(m) == "poison-5")
    assert long.attributes["error_attributes_truncated"] == "true"
    rows = error_rows(tmp_path)
    assert sorted(r["error_class"] for r in rows) == sorted(c for _, _, c in POISON)
    long_row = next(r for r in rows if dict(r["attributes"]).get("n") == "poison-5")
    assert dict(long_row["attributes"])["note"] == "x" * 5000  # the lake keeps it all
    assert counters.get("dead_letter_publish/refused", 0) == 0


@pytest.mark.integration
def test_a_topic_that_refuses_them_all_stops_nothing_and_the_lake_keeps_each_twice(
    catalog, emulators, tmp_path
):
    failures = failures_of(catalog, poison_stream()[:6:2])  # three
    missing = f"projects/{emulators.project}/topics/no-such-topic-{uuid.uuid4().hex[:8]}"
    counters = run_dead_letter(failures, missing, tmp_path)
    rows = error_rows(tmp_path)
    refusals = [r for r in rows if r["step"] == "dead_letter"]
    assert sorted(r["error_class"] for r in rows if r["step"] != "dead_letter") == sorted(
        f.error_class for f in failures
    )
    assert [r["error_class"] for r in refusals] == ["internal"] * 3
    assert all("NotFound" in r["error_message"] for r in refusals), refusals[0]["error_message"]
    assert sorted(r["payload"] for r in refusals) == sorted(f.payload for f in failures)
    assert counters["dead_letter_publish/refused"] == 3


@dataclasses.dataclass
class EmptyMessage:  # what the topic refuses: no data, no attributes
    data: bytes = b""
    attributes: dict = dataclasses.field(default_factory=dict)


def empty_for_the_second(failed):
    return EmptyMessage() if failed.message_id == "m-1" else to_pubsub_message(failed)


@pytest.mark.integration
def test_one_message_the_topic_refuses_holds_none_of_the_others_back(catalog, pubsub_resources):
    failures = [
        dataclasses.replace(f, message_id=f"m-{n}")
        for n, f in enumerate(failures_of(catalog, poison_stream()[:8:2]))
    ]
    topic = pubsub_resources.dead_letter_topic_path
    with TestPipeline(runner="BundleBasedDirectRunner") as p:
        refused = (
            p
            | beam.Create(failures, reshuffle=False)
            | beam.ParDo(_PublishFn(topic, to_message=empty_for_the_second))
        )
        assert_that(
            refused | beam.Map(lambda f: (f.message_id, f.error_class, f.step)),
            equal_to([("m-1", "internal", "dead_letter")]),
        )
    published = pull_messages(pubsub_resources.dead_letter_subscription_path, 3)
    assert sorted(n_of(m) for m in published) == ["poison-0", "poison-2", "poison-3"]


@pytest.mark.integration
def test_a_record_whose_cells_cannot_be_made_is_a_dead_letter_and_the_rest_is_written(
    catalog, emulators
):
    good = parse_all(catalog, [PROFILE_LINE])[0]
    broken = dataclasses.replace(good, primary_identity=("Email",), message_id="m-broken")
    table_id, table = new_table(catalog)
    stream = TestStream().add_elements([broken, good]).advance_watermark_to_infinity()
    with streaming_pipeline() as p:
        written = p | stream | WriteProfiles("demo-project", "test-instance", table_id, catalog)
        assert_that(
            written["failed"]
            | beam.Map(lambda f: (f.message_id, f.error_class, f.step, f.dataset)),
            equal_to([("m-broken", "internal", "write_profiles", "crm-profiles")]),
        )
    assert cells_of(table)  # the good record's fragment and links are there


def test_on_dataflow_a_dead_letter_too_large_for_pub_sub_is_kept_from_its_native_sink(catalog):
    ok, big = failures_of(catalog, poison_stream()[:4:2])
    big = dataclasses.replace(big, payload=b"x" * 9_999_990)  # with its attributes: > 10 MB
    with TestPipeline(runner="BundleBasedDirectRunner") as p:
        checked = (
            p
            | beam.Create([ok, big], reshuffle=False)
            | beam.ParDo(_CheckFn()).with_outputs(REFUSED_TAG, main="publishable")
        )
        assert_that(
            checked.publishable | beam.Map(lambda f: f.error_class),
            equal_to([ok.error_class]),
            label="publishable",
        )
        assert_that(
            checked[REFUSED_TAG] | beam.Map(lambda f: (len(f.payload), f.error_class, f.step)),
            equal_to([(9_999_990, "internal", "dead_letter")]),
            label="refused",
        )
