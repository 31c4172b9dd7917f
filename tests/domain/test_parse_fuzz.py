"""Fuzz: arbitrary bytes, JSON and attributes at RecordParser.parse_or_fail (what the
pipeline's ParseAndValidate runs). Nothing raises; each message is a Record or a
FailedMessage of a known class whose two dead-letter forms can be stored."""

import json

import pyarrow as pa
from hypothesis import HealthCheck, event, given, settings

from domain.dead_letters import ERRORS_SCHEMA, dead_letter_attributes, error_row
from domain.records import FailedMessage, Record
from helpers.examples import PUBLISH_TIME
from helpers.fuzz_strategies import attributes, payloads

KNOWN_CLASSES = {
    "too_large",
    "not_utf8",
    "not_json",
    "too_deep",
    "not_object",
    "unknown_dataset",
    "unknown_schema",
    "bad_operation",
    "schema_violation",
    "too_many_identities",
    "identity",
    "identity_too_long",
    "bad_timestamp",
}  # and `internal`, a bug of ours: counted apart below, so that it shows


def assert_storable(failed):
    attributes = dead_letter_attributes(failed)
    assert len(attributes) <= 100
    for key, value in attributes.items():
        assert 0 < len(key.encode("utf-8")) <= 256 and len(value.encode("utf-8")) <= 1024
    pa.Table.from_pylist([error_row(failed, 0)], schema=ERRORS_SCHEMA)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payloads(), message_attributes=attributes)
def test_no_message_raises_and_each_is_a_record_or_a_dead_letter_of_a_known_class(
    parser, payload, message_attributes
):
    outcome = parser.parse_or_fail(payload, message_attributes, "m", PUBLISH_TIME, "parse")
    event("valid" if isinstance(outcome, Record) else outcome.error_class)
    if isinstance(outcome, Record):
        assert (
            isinstance(outcome.dataset, str)
            and outcome.record_time.utcoffset().total_seconds() == 0
        )
        json.dumps(outcome.entity, allow_nan=False).encode("utf-8")  # JSON the stores keep
        return
    assert isinstance(outcome, FailedMessage)
    assert outcome.error_class in KNOWN_CLASSES, (outcome.error_class, outcome.error_message)
    assert outcome.payload == payload
    assert_storable(outcome)
