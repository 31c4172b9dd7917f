"""domain/dead_letters.py: the dead letter's two stored forms, the topic's attributes and
the lake's `_errors` row."""

import datetime
import json

import pyarrow as pa
import pytest

from domain.dead_letters import (
    ERROR_ATTRIBUTES,
    ERRORS_SCHEMA,
    MAX_ATTRIBUTE_KEY_BYTES,
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_ATTRIBUTES,
    ORIGINAL_ATTRIBUTES,
    TRUNCATED_FLAG,
    dead_letter_attributes,
    error_row,
    without_error_attributes,
)
from domain.lake_dedup import message_key
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
        "_message_key": message_key("_errors/d/parse_and_validate/schema_violation", b"\xff raw"),
    }
    stored = pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).to_pylist()[0]
    assert stored == row
    # One message failing at two steps is two rows, each written once.
    again = error_row(failed(step="dead_letter", error_class="internal"), ingested_at=0)
    assert again["_message_key"] != row["_message_key"]


def test_a_message_that_failed_outside_pub_sub_has_no_publish_time():
    row = error_row(failed(), ingested_at=0)
    assert row["_publish_time"] is None and row["_message_id"] == "" and row["errors"] == []
    assert row["_ingested_at"] == datetime.datetime(1970, 1, 1, tzinfo=UTC)
    assert pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).num_rows == 1


# ---------------------------------------------------------------------------
# Pub/Sub's limits: 100 attributes, keys of 256 bytes, values of 1,024 (issue #16)


def assert_within_pub_subs_limits(attributes):
    assert len(attributes) <= MAX_ATTRIBUTES
    for key, value in attributes.items():
        assert len(key.encode("utf-8")) <= MAX_ATTRIBUTE_KEY_BYTES
        assert len(value.encode("utf-8")) <= MAX_ATTRIBUTE_VALUE_BYTES


def test_with_100_attributes_of_its_own_the_reason_still_fits_and_the_rest_is_in_json():
    own = {f"a{n:03}": f"v{n}" for n in range(100)} | {"dataset": "d"}
    attributes = dead_letter_attributes(failed(attributes=own))
    assert_within_pub_subs_limits(attributes)
    assert attributes["error_class"] == "schema_violation" and attributes["dataset"] == "d"
    kept = {k: v for k, v in attributes.items() if k in own}
    moved = json.loads(attributes[ORIGINAL_ATTRIBUTES])
    assert len(kept) == MAX_ATTRIBUTES - 7  # five of the reason, two of the rest
    assert kept.keys().isdisjoint(moved) and {**kept, **moved} == own  # all of them, exact
    assert TRUNCATED_FLAG not in attributes
    assert without_error_attributes(attributes) == own


def test_an_attribute_of_5000_bytes_is_left_out_on_the_topic_and_flagged():
    own = {"dataset": "d", "note": "x" * 5000, "k": "v"}
    attributes = dead_letter_attributes(failed(attributes=own))
    assert_within_pub_subs_limits(attributes)
    assert attributes["k"] == "v" and "note" not in attributes
    assert json.loads(attributes[ORIGINAL_ATTRIBUTES]) == {}
    assert attributes[TRUNCATED_FLAG] == "true"
    assert without_error_attributes(attributes) == {"dataset": "d", "k": "v"}
    assert dict(error_row(failed(attributes=own), 0)["attributes"]) == own  # the lake: all


def test_a_key_too_long_and_many_long_values_go_to_the_json_as_far_as_they_fit_whole():
    own = {"k" * 300: "v"} | {f"n{n}": "y" * 1000 for n in range(3)} | {"z": "x" * 1025}
    attributes = dead_letter_attributes(failed(attributes=own))
    assert_within_pub_subs_limits(attributes)
    moved = json.loads(attributes[ORIGINAL_ATTRIBUTES])
    assert moved == {"k" * 300: "v"}  # whole entries only: each is exact
    assert attributes[TRUNCATED_FLAG] == "true"
    assert {k for k in own if k in attributes} == {"n0", "n1", "n2"}


def test_an_attribute_of_its_own_named_like_the_reason_is_kept_not_overwritten():
    own = {"error_class": "mine", "error_attributes": "also mine"}
    attributes = dead_letter_attributes(failed(attributes=own))
    assert attributes["error_class"] == "schema_violation"
    assert json.loads(attributes[ORIGINAL_ATTRIBUTES]) == own
    assert without_error_attributes(attributes) == own


def test_both_forms_take_lone_surrogates_and_values_that_are_not_text():
    message = failed(
        error_message="bad \ud800",
        error_pointer="/x\udfff",
        dataset=5,
        attributes={"k": None, "n": 7},
        violations=[Violation("/\ud800", "type", "x")],
    )
    attributes = dead_letter_attributes(message)
    assert attributes["error_message"] == "bad \\ud800" and attributes["error_dataset"] == "5"
    assert attributes["k"] == "" and attributes["n"] == "7"
    for value in attributes.values():
        value.encode("utf-8")
    row = error_row(message, 0)
    assert row["errors"][0]["pointer"] == "/\\ud800" and row["dataset"] == "5"
    assert pa.Table.from_pylist([row], schema=ERRORS_SCHEMA).num_rows == 1
