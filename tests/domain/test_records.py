"""domain/records.py: what every step passes on: failed messages built from a RecordError,
violations as users read them, and JSON pointers (RFC 6901) to the failing field."""

import datetime

import pytest

from domain.records import FailedMessage, RecordError, Violation, json_pointer, pointer_token


@pytest.mark.parametrize(
    "key, token",
    [
        ("a", "a"),
        ("a/b", "a~1b"),
        ("m~n", "m~0n"),
        ("~1", "~01"),
        ("/~", "~1~0"),
        ("", ""),
        ("é ", "é "),
    ],
)
def test_a_key_is_escaped_as_one_pointer_token(key, token):
    assert pointer_token(key) == token


def test_a_pointer_names_each_step_of_the_path():
    assert json_pointer([]) == ""
    assert json_pointer(["person", "name", "firstName"]) == "/person/name/firstName"
    assert json_pointer(["items", 0, "a/b", "~"]) == "/items/0/a~1b/~0"
    assert json_pointer(["", ""]) == "//"  # an empty key is a step too


def test_a_violation_reads_pointer_message_and_keyword():
    assert (
        str(Violation("/loyalty/points", "type", "'5' is not of type 'integer'"))
        == "/loyalty/points: '5' is not of type 'integer' (type)"
    )
    assert (
        str(Violation("", "required", "'_id' is a required property"))
        == "/: '_id' is a required property (required)"
    )


def test_a_failed_message_keeps_the_error_and_the_message_as_received():
    violations = [Violation("/a", "type", "bad")]
    error = RecordError("schema_violation", "bad", "/a", "crm-profiles", violations)
    moment = datetime.datetime(2026, 11, 30, 12, tzinfo=datetime.timezone.utc)
    failed = FailedMessage.of(error, "parse_and_validate", b"\xff raw", {"k": "v"}, "m-1", moment)
    assert failed == FailedMessage(
        payload=b"\xff raw",
        attributes={"k": "v"},
        error_class="schema_violation",
        error_message="bad",
        error_pointer="/a",
        step="parse_and_validate",
        dataset="crm-profiles",
        violations=violations,
        message_id="m-1",
        publish_time=moment,
    )


def test_a_failed_message_takes_its_dataset_from_the_attribute_when_the_error_has_none():
    error = RecordError("not_json", "message is not JSON")
    failed = FailedMessage.of(error, "parse_and_validate", b"{", {"dataset": "web-events"})
    assert (failed.dataset, failed.error_pointer, failed.violations) == ("web-events", "", [])
    assert (failed.message_id, failed.publish_time) == ("", None)
    error.dataset = "crm-profiles"  # the error's own dataset comes first
    assert FailedMessage.of(error, "s", b"{", {"dataset": "web-events"}).dataset == "crm-profiles"


def test_a_record_error_keeps_its_own_list_of_violations():
    violations = (Violation("/a", "type", "bad"),)
    error = RecordError("schema_violation", "bad", violations=violations)
    assert error.violations == list(violations) and str(error) == "bad"
    assert (
        RecordError("x", "y").violations == []
        and RecordError("x", "y").violations is not RecordError("x", "y").violations
    )
