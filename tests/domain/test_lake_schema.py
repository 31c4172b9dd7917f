"""domain/lake_schema.py: a dataset's JSON Schema as an Arrow schema, and a record as a
row of it, on the project's schemas, small ones made here and Adobe's XDM corpus."""

import datetime
import json

import pyarrow as pa
import pytest

from domain.lake_schema import (
    ADDITIONAL,
    JSON_TEXT,
    METADATA_FIELDS,
    arrow_schema,
    arrow_schema_of,
    row_converter,
    to_arrow_row,
)
from helpers.schema_sets import registry_of
from helpers.xdm_corpus import examples_with_their_schema

UTC = datetime.timezone.utc


def test_arrow_schema_is_typed_from_the_json_schema(catalog):
    schema = arrow_schema(catalog, "web-events")
    assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("productListItems").type.value_type.field("quantity").type) == "int64"
    assert schema.field("identityMap").type.key_type == "string"  # a map, from additionalProperties
    profile = arrow_schema(catalog, "crm-profiles")
    assert str(profile.field("person").type.field("birthDate").type) == "date32[day]"


def small_schema():
    return registry_of(
        {
            "$id": "https://x/s",
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "x": {"type": "number"},
                "at": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "open": {},  # no type: JSON text
                "either": {"type": ["string", "integer"]},  # a union: JSON text
                "tags": {"type": "array", "items": {"type": "string"}},
                "scores": {"type": "object", "additionalProperties": {"type": "integer"}},
                "closed": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"a": {"type": "boolean"}},
                },
            },
        }
    )


def test_the_types_follow_the_schema_and_the_open_is_json_text():
    schema = arrow_schema_of(small_schema(), "https://x/s")
    types = {field.name: field.type for field in schema}
    assert types["n"] == pa.int64() and types["x"] == pa.float64()
    assert types["at"] == pa.timestamp("us", tz="UTC") and types["day"] == pa.date32()
    assert types["tags"] == pa.list_(pa.field("item", pa.string()))
    assert types["scores"] == pa.map_(pa.string(), pa.int64())
    assert types["closed"] == pa.struct([("a", pa.bool_())])  # closed: no _additional
    for name in ("open", "either", ADDITIONAL):  # the root is open: it keeps the rest
        assert types[name] == pa.string() and schema.field(name).metadata == JSON_TEXT, name
    assert list(schema)[-len(METADATA_FIELDS) :] == METADATA_FIELDS  # metadata columns last


def test_a_record_becomes_a_row_of_its_schema_and_keeps_what_the_schema_does_not_name():
    schema = arrow_schema_of(small_schema(), "https://x/s")
    entity = {
        "n": 5.0,
        "x": 2,
        "at": "2026-11-30T13:00:00.5+01:00",
        "day": "2026-11-30",
        "open": {"b": [1, "é"]},
        "either": 3,
        "tags": ["a", None],
        "scores": {"a": 1, "b": None},
        "closed": {"a": True},
        "unnamed": {"k": 1},
    }
    row = row_converter(schema)(entity)
    assert row["n"] == 5 and type(row["n"]) is int  # JSON Schema's integer takes 5.0
    assert row["x"] == 2.0 and type(row["x"]) is float
    assert row["at"] == datetime.datetime(2026, 11, 30, 12, 0, 0, 500000, tzinfo=UTC)
    assert row["day"] == datetime.date(2026, 11, 30)
    assert json.loads(row["open"]) == {"b": [1, "é"]} and row["either"] == "3"
    assert json.loads(row[ADDITIONAL]) == {"unnamed": {"k": 1}}
    table = pa.Table.from_pylist([row], schema=schema)
    stored = table.to_pylist()[0]
    assert stored["tags"] == ["a", None] and stored["scores"] == [("a", 1), ("b", None)]
    assert stored["closed"] == {"a": True}


def test_a_record_without_unnamed_properties_has_no_additional_text():
    schema = arrow_schema_of(small_schema(), "https://x/s")
    assert to_arrow_row({"n": 1}, schema) == {"n": 1, ADDITIONAL: None}


def test_a_date_time_without_an_offset_is_taken_as_utc():
    schema = arrow_schema_of(small_schema(), "https://x/s")
    row = to_arrow_row({"at": "2026-11-30T12:00:00"}, schema)
    assert row["at"] == datetime.datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_schema_whose_root_is_not_an_object_is_refused():
    registry = registry_of({"$id": "https://x/s", "type": "array", "items": {"type": "string"}})
    with pytest.raises(ValueError, match="a record must be an object"):
        arrow_schema_of(registry, "https://x/s")


def test_every_example_becomes_a_typed_arrow_row_that_keeps_every_field(corpus, xdm_registry):
    failures = {}
    for example, schema_id in examples_with_their_schema(corpus, xdm_registry):
        instance = json.loads(example.read_text())
        try:
            schema = arrow_schema_of(xdm_registry, schema_id)
            table = pa.Table.from_pylist([to_arrow_row(instance, schema)], schema=schema)
            assert_kept(instance, table.to_pylist()[0], list(schema))
        except Exception as error:
            failures[example.name] = repr(error)[:300]
    assert failures == {}


def assert_kept(original, stored, fields):
    """Every key of the original is in its typed column or in `_additional`, not lost."""
    named = {f.name: f for f in fields}
    additional = json.loads(stored.get(ADDITIONAL) or "{}")
    for key, value in original.items():
        if key not in named:
            assert additional[key] == value, key
        elif value is not None and pa.types.is_struct(named[key].type):
            assert_kept(value, stored[key], list(named[key].type))
        else:
            assert stored[key] is not None or value is None, key
