"""domain/dead_letters.py: the dead letter's two stored forms, the topic's attributes and
the lake's `_errors` row."""

import datetime

import pyarrow as pa
import pytest

from domain.dead_letters import (
    ERROR_ATTRIBUTES,
    ERRORS_SCHEMA,
    MAX_ATTRIBUTE_VALUE_BYTES,
    dead_letter_attributes,
    error_row,
    without_error_attributes,
)
from domain.records import FailedMessage, Violation

UTC = datetime.timezone.utc


def failed(**changes):
    fields = dict(
        payload=b"\xff raw",
        attributes={"dataset": "d", "k": "v"},
        error_class="schema_violation",
        error_message="bad",
        error_pointer="/a/b",
        step="parse_and_validate",
        dataset="d",
    )
    return FailedMessage(**{**fields, **changes})


def test_the_reason_is_added_to_the_messages_own_attributes():
    assert dead_letter_attributes(failed()) == {
        "dataset": "d",
        "k": "v",
        "error_class": "schema_violation",
        "error_message": "bad",
        "error_pointer": "/a/b",
        "error_step": "parse_and_validate",
        "error_dataset": "d",
    }


def test_a_part_of_the_reason_that_is_empty_is_left_out():
    attributes = dead_letter_attributes(failed(error_pointer="", dataset=""))
    assert "error_pointer" not in attributes and "error_dataset" not in attributes
    assert attributes["error_class"] == "schema_violation"


def test_the_attributes_without_the_reason_are_the_messages_own_again():
    message = failed(attributes={"dataset": "d", "origin": "crm", "error": "kept"})
    attributes = dead_letter_attributes(message)
    assert set(attributes) - set(message.attributes) == set(ERROR_ATTRIBUTES)
    assert without_error_attributes(attributes) == message.attributes


@pytest.mark.parametrize(
    "text, kept_whole",
    [
        ("x" * MAX_ATTRIBUTE_VALUE_BYTES, True),
        ("x" * (MAX_ATTRIBUTE_VALUE_BYTES + 1), False),
        ("é" * (MAX_ATTRIBUTE_VALUE_BYTES // 2), True),  # 1,024 bytes in 512 characters
        ("é" * 1000, False),  # 2,000 bytes
        ("ab" + "€" * 600, False),  # 3-byte characters: the cut falls inside one
        ("x" * 5000, False),
    ],
)
def test_each_value_of_the_reason_fits_pub_subs_limit_of_1024_bytes(text, kept_whole):
    attributes = dead_letter_attributes(failed(error_message=text, error_pointer=text))
    for name in ("error_message", "error_pointer"):
        value = attributes[name]
        encoded = value.encode("utf-8")  # whole characters: it encodes
        assert len(encoded) <= MAX_ATTRIBUTE_VALUE_BYTES
        if kept_whole:
            assert value == text
        else:
            assert value.endswith("...") and text.startswith(value[:-3])
            assert len(encoded) > MAX_ATTRIBUTE_VALUE_BYTES - 6  # cut at the limit, not before


def test_the_error_row_is_a_row_of_the_errors_schema():
    moment = datetime.datetime(2026, 11, 30, 12, 0, 0, 250000, tzinfo=UTC)
    message = failed(
        violations=[Violation("/a/b", "type", "bad"), Violation("/c", "required", "gone")],
        message_id="m-1",
        publish_time=moment,
        attributes={"k": "v", "dataset": "d"},
    )
    row = error_row(message, ingested_at=1_796_040_000.5)
    assert row == {
        "payload": b"\xff raw",
        "attributes": [("dataset", "d"), ("k", "v")],
        "dataset": "d",
        "error_class": "schema_violation",
        "error_message": "bad",
        "error_pointer": "/a/b",
        "errors": [
            {"pointer": "/a/b", "keyword": "type", "message": "bad"},
            {"pointer": "/c", "keyword": "required", "message": "gone"},
        ],
        "step": "parse_and_validate",
        "_publish_time": moment,
        "_ingested_at": datetime.datetime(2026, 11, 30, 12, 0, 0, 500000, tzinfo=UTC),
        "_message_id": "m-1",
    }
    stored = pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).to_pylist()[0]
    assert stored == row


def test_a_message_that_failed_outside_pub_sub_has_no_publish_time():
    row = error_row(failed(), ingested_at=0)
    assert row["_publish_time"] is None and row["_message_id"] == "" and row["errors"] == []
    assert row["_ingested_at"] == datetime.datetime(1970, 1, 1, tzinfo=UTC)
    assert pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).num_rows == 1
