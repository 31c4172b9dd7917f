"""Issue #16's poison messages, at the domain: each is a FailedMessage of its class from
RecordParser.parse_or_fail (never an exception), and both of its dead-letter forms can be
stored: the topic's attributes within Pub/Sub's limits, the `_errors` row in its schema.
(The same messages through Beam and the emulators: tests/transforms/test_poison_bundles.py.)
"""

import copy
import json

import pyarrow as pa
import pytest

from domain.dead_letters import ERRORS_SCHEMA, dead_letter_attributes, error_row
from domain.records import FailedMessage, Record
from helpers.examples import PUBLISH_TIME, example_lines

PROFILE = json.loads(example_lines("records.jsonl")[0])  # an envelope of crm-profiles
EVENT = json.loads(example_lines("records-bare.jsonl")[0])  # a bare web-events record


def envelope(**header):
    document = copy.deepcopy(PROFILE)
    document["header"].update(header)
    return json.dumps(document).encode()


def event_at(timestamp):
    return json.dumps({**EVENT, "timestamp": timestamp}).encode()


def profile_modified_at(date):
    document = copy.deepcopy(PROFILE)
    document["body"]["xdmEntity"]["_repo"] = {"modifyDate": date}
    return json.dumps(document).encode()


def assert_storable(failed):
    """Both dead-letter forms of `failed` can be stored (Pub/Sub's limits, in bytes)."""
    attributes = dead_letter_attributes(failed)
    assert len(attributes) <= 100
    for key, value in attributes.items():
        assert isinstance(key, str) and isinstance(value, str)
        assert 0 < len(key.encode("utf-8")) <= 256 and len(value.encode("utf-8")) <= 1024
    row = error_row(failed, 1_796_040_000)
    assert pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).num_rows == 1


def outcome(parser, payload, attributes=None):
    result = parser.parse_or_fail(payload, attributes or {}, "m-1", PUBLISH_TIME, "step")
    if isinstance(result, FailedMessage):
        assert result.step == "step" and result.message_id == "m-1"
        assert result.payload == payload
        assert_storable(result)
    return result


POISON = {
    "a lone surrogate in a bare key": (b'{"\\ud800": 1}', {"dataset": "web-events"}),
    "a lone surrogate in an envelope's key": (
        envelope().replace(b'"person"', b'"per\\udc00son"'),
        {},
    ),
    "a lone surrogate in a header key": (b'{"header": {"\\udbff": 1}, "body": {}}', {}),
    "datasetId a number": (envelope(datasetId=5), {}),
    "datasetId true": (envelope(datasetId=True), {}),
    "datasetId false": (envelope(datasetId=False), {}),
    "datasetId a list": (envelope(datasetId=["crm-profiles"]), {}),
    "datasetId an object": (envelope(datasetId={"id": "crm-profiles"}), {}),
    "an event at 9999-12-31T23:59:59-01:00": (
        event_at("9999-12-31T23:59:59-01:00"),
        {"dataset": "web-events"},
    ),
    "a profile at 0001-01-01T00:00:00+01:00": (
        profile_modified_at("0001-01-01T00:00:00+01:00"),
        {},
    ),
    "NaN": (b'{"a": NaN}', {"dataset": "web-events"}),
    "Infinity": (b'{"a": Infinity}', {"dataset": "web-events"}),
    "-Infinity": (b'{"a": -Infinity}', {"dataset": "web-events"}),
    "1e999": (b'{"a": 1e999}', {"dataset": "web-events"}),
}
CLASSES = {
    "a lone surrogate in a bare key": "not_utf8",
    "a lone surrogate in an envelope's key": "not_utf8",
    "a lone surrogate in a header key": "not_utf8",
    "datasetId a number": "unknown_dataset",
    "datasetId true": "unknown_dataset",
    "datasetId false": "unknown_dataset",
    "datasetId a list": "unknown_dataset",
    "datasetId an object": "unknown_dataset",
    "an event at 9999-12-31T23:59:59-01:00": "bad_timestamp",
    "a profile at 0001-01-01T00:00:00+01:00": "bad_timestamp",
    "NaN": "not_json",
    "Infinity": "not_json",
    "-Infinity": "not_json",
    "1e999": "not_json",
}


@pytest.mark.parametrize("case", POISON)
def test_each_poison_message_is_a_dead_letter_of_its_class(parser, case):
    payload, attributes = POISON[case]
    failed = outcome(parser, payload, attributes)
    assert isinstance(failed, FailedMessage), case
    assert failed.error_class == CLASSES[case], failed.error_message
    assert isinstance(failed.dataset, str)


def test_a_lone_surrogate_in_a_key_is_named_by_its_escape_in_the_pointer(parser):
    failed = outcome(parser, b'{"a": {"x\\ud800y": 1}}', {"dataset": "web-events"})
    assert failed.error_pointer == "/a/x\\ud800y"  # a backslash, a u, four hex digits
    assert failed.error_pointer.encode("utf-8")
    assert "/a/x\\ud800y" in failed.error_message


@pytest.mark.parametrize("dataset_id", [5, True, ["crm-profiles"], 1.5, {"a": 1}])
def test_a_dataset_id_that_is_not_a_string_is_unknown_dataset_with_no_dataset(parser, dataset_id):
    failed = outcome(parser, envelope(datasetId=dataset_id))
    assert failed.error_class == "unknown_dataset"
    assert failed.error_pointer == "/header/datasetId"
    assert failed.dataset == ""  # no dataset to name: not the number, nor "True"
    assert "must be a string" in failed.error_message


def test_the_dataset_attribute_of_a_bare_record_names_the_dead_letters_dataset(parser):
    failed = outcome(parser, event_at("9999-12-31T23:59:59-01:00"), {"dataset": "web-events"})
    assert failed.dataset == "web-events" and "UTC" in failed.error_message


@pytest.mark.parametrize(
    "timestamp",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59+01:00"],
)
def test_a_time_that_overflows_in_utc_is_bad_timestamp_for_events_too(parser, timestamp):
    assert outcome(parser, event_at(timestamp), {"dataset": "web-events"}).error_class == (
        "bad_timestamp"
    )


@pytest.mark.parametrize(
    "timestamp, utc",
    [
        ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00+00:00"),  # the other way: fits
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
    ],
)
def test_the_earliest_times_that_fit_in_utc_are_kept(parser, timestamp, utc):
    # (the latest ones are past the ingestion time: tests/domain/test_future_times.py)
    # web-events-archive feeds no profile: a time before 1970 is fine there
    record = outcome(parser, event_at(timestamp), {"dataset": "web-events-archive"})
    assert isinstance(record, Record) and record.record_time.isoformat() == utc


def test_a_profile_time_before_1970_is_still_refused_as_before(parser):
    failed = outcome(parser, profile_modified_at("0001-01-01T00:00:00-01:00"))
    assert failed.error_class == "bad_timestamp" and "before 1970" in failed.error_message


@pytest.mark.parametrize("repo", [[1], "x", 5])
def test_a_repo_that_is_not_an_object_gives_no_time_and_no_crash(parser, repo):
    document = copy.deepcopy(PROFILE)
    document["body"]["xdmEntity"]["_repo"] = repo
    result = outcome(parser, json.dumps(document).encode())
    assert isinstance(result, Record) or result.error_class != "internal"


def test_an_invalid_body_with_100_attributes_keeps_them_all_in_its_forms(parser):
    attributes = {f"attribute-{n:03}": f"value {n}" for n in range(100)}
    failed = outcome(parser, b"{not json", attributes)
    assert failed.error_class == "not_json" and failed.attributes == attributes
    assert dict(error_row(failed, 0)["attributes"]) == attributes


def test_an_invalid_body_with_an_attribute_of_5000_bytes_keeps_it_whole_in_the_lake(parser):
    attributes = {"dataset": "web-events", "note": "x" * 5000}
    failed = outcome(parser, b"[1, 2", attributes)
    assert failed.error_class == "not_json"
    assert dict(error_row(failed, 0)["attributes"]) == attributes
    assert dead_letter_attributes(failed)["dataset"] == "web-events"


def test_an_unexpected_error_is_internal_with_its_type_message_and_step(catalog):
    from domain.parsing import RecordParser

    class Broken(RecordParser):
        def parse(self, *args, **kwargs):
            raise ValueError("the \ud800 bug")

    failed = Broken(catalog).parse_or_fail(b"{}", {"k": "v"}, "m-9", PUBLISH_TIME, "parse")
    assert failed.error_class == "internal" and failed.step == "parse"
    assert failed.error_message == "ValueError: the \\ud800 bug"
    assert failed.attributes == {"k": "v"} and failed.message_id == "m-9"
    assert_storable(failed)
