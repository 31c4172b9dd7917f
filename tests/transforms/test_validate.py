"""transforms/validate.py: ParseAndValidate on Beam's TestPipeline: valid records and
failures apart, the messages' ids and times kept, and its counters in Beam's metrics."""

import dataclasses
import datetime

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from google.api_core.datetime_helpers import DatetimeWithNanoseconds

from domain.schemas import SchemaRegistry
from helpers.examples import EXAMPLES
from helpers.pubsub_messages import proto_messages, sample_messages
from transforms.validate import ParseAndValidate, _plain_datetime

UTC = datetime.timezone.utc


def test_parse_and_validate_splits_valid_records_from_failures(catalog):
    with TestPipeline() as p:
        results = p | beam.Create(sample_messages()) | ParseAndValidate(catalog)
        assert_that(
            results.valid | beam.Map(lambda r: r.dataset) | beam.combiners.Count.PerElement(),
            equal_to([("crm-profiles", 5), ("web-events", 13), ("web-events-archive", 3)]),
            label="valid per dataset",
        )
        assert_that(
            results.failed | beam.Map(lambda f: (f.error_class, f.attributes["n"], f.step)),
            equal_to(
                [
                    ("not_json", "18", "parse_and_validate"),
                    ("not_object", "19", "parse_and_validate"),
                    ("unknown_dataset", "20", "parse_and_validate"),
                    ("schema_violation", "21", "parse_and_validate"),
                    ("schema_violation", "22", "parse_and_validate"),
                    ("identity", "23", "parse_and_validate"),
                ]
            ),
            label="failures with their class and attributes",
        )


def test_records_and_failures_keep_the_messages_id_payload_and_publish_time(catalog):
    published = DatetimeWithNanoseconds(2026, 11, 30, 12, 0, 0, nanosecond=123456789, tzinfo=UTC)
    plain = datetime.datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    good = (EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0]
    messages = [
        PubsubMessage(good, {"dataset": "web-events"}, message_id="m-good", publish_time=published),
        PubsubMessage(
            b"\xff{",
            {"dataset": "web-events", "k": "v"},
            message_id="m-bad",
            publish_time=published,
        ),
        PubsubMessage(b"", {"dataset": "web-events"}),
    ]  # no id, no time, no data
    with TestPipeline() as p:
        results = p | beam.Create(messages) | ParseAndValidate(catalog)
        assert_that(
            results.valid
            | beam.Map(
                lambda r: (
                    r.message_id,
                    r.publish_time,
                    type(r.publish_time),
                    r.payload,
                    r.attributes,
                )
            ),
            equal_to([("m-good", plain, datetime.datetime, good, {"dataset": "web-events"})]),
            label="the record",
        )
        assert_that(
            results.failed
            | beam.Map(
                lambda f: (
                    f.message_id,
                    f.publish_time,
                    f.payload,
                    f.attributes,
                    f.error_class,
                    f.dataset,
                )
            ),
            equal_to(
                [
                    (
                        "m-bad",
                        plain,
                        b"\xff{",
                        {"dataset": "web-events", "k": "v"},
                        "not_utf8",
                        "web-events",
                    ),
                    ("", None, b"", {"dataset": "web-events"}, "not_json", "web-events"),
                ]
            ),
            label="the failures",
        )


class RefusingFastValidator:
    def is_valid(self, instance, numbers_finite=False):
        return False


class RegistryWithARefusingFastPath(SchemaRegistry):
    """The registry whose fast path accepts nothing: every record is a disagreement the
    reference settles (the fast path has no known disagreement left to use here)."""

    def fast_validator(self, schema_id):
        return RefusingFastValidator()


def test_the_disagreement_counter_reaches_beam_metrics(catalog):
    refusing = dataclasses.replace(
        catalog, registry=RegistryWithARefusingFastPath(catalog.registry.schemas)
    )
    plain_payload = (EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0]
    invalid_payload = b'{"timestamp": 5}'
    pipeline = TestPipeline(runner="BundleBasedDirectRunner")
    _ = (
        pipeline
        | beam.Create(
            [
                PubsubMessage(invalid_payload, {"dataset": "web-events"}),
                PubsubMessage(plain_payload, {"dataset": "web-events"}),
            ]
        )
        | ParseAndValidate(refusing)
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(
        MetricsFilter().with_namespace("validation").with_name("fast_path_disagreement")
    )
    counters = counters["counters"]
    assert sum(counter.committed for counter in counters) == 1


def test_valid_records_are_counted_per_dataset(catalog):
    pipeline = TestPipeline(runner="BundleBasedDirectRunner")
    _ = pipeline | beam.Create(sample_messages()) | ParseAndValidate(catalog)
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace("valid"))["counters"]
    assert {c.key.metric.name: c.committed for c in counters} == {
        "crm-profiles": 5,
        "web-events": 13,
        "web-events-archive": 3,
    }


def test_a_plain_utc_publish_time_is_kept_as_it_is():
    for encoded in proto_messages():
        publish_time = PubsubMessage._from_proto_str(encoded).publish_time
        if publish_time is not None:
            plain = _plain_datetime(publish_time)
            assert type(plain) is datetime.datetime and plain.tzinfo is datetime.timezone.utc
            assert _plain_datetime(plain) is plain


def test_a_publish_time_becomes_the_same_moment_as_a_plain_utc_datetime():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    for moment, expected in [
        (
            datetime.datetime(2026, 11, 30, 13, 0, 0, 1, tzinfo=paris),
            datetime.datetime(2026, 11, 30, 12, 0, 0, 1, tzinfo=UTC),
        ),
        (
            DatetimeWithNanoseconds(2026, 11, 30, 12, 0, 0, nanosecond=999999999, tzinfo=UTC),
            datetime.datetime(2026, 11, 30, 12, 0, 0, 999999, tzinfo=UTC),
        ),
    ]:
        plain = _plain_datetime(moment)
        assert plain == expected and type(plain) is datetime.datetime and plain.tzinfo is UTC
    assert _plain_datetime(None) is None
