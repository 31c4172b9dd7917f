"""Parsing and validation of single messages: envelope, bare, and every way to fail."""
import json
import pathlib

import pytest

from domain.catalog import Catalog, CatalogError
from domain.profile_table import row_key
from domain.records import RecordError
from domain.parsing import MAX_MESSAGE_BYTES, RecordParser

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def parser():
    return RecordParser(Catalog.load(str(EXAMPLES / "catalog.yaml")))


def example_lines(name):
    return [line.rstrip(b"\n") for line in (EXAMPLES / name).read_bytes().splitlines() if line]


def error_of(parser, payload, **attributes):
    with pytest.raises(RecordError) as caught:
        parser.parse(payload, attributes)
    return caught.value


def test_sample_stream_is_18_valid_records_and_6_failures_each_with_its_class(parser):
    valid, failed = [], []
    for line in example_lines("records.jsonl"):
        try:
            valid.append(parser.parse(line))
        except RecordError as error:
            failed.append(error.error_class)
    assert sorted(r.dataset for r in valid).count("crm-profiles") == 5
    assert len(valid) == 18
    assert failed == ["not_json", "not_object", "unknown_dataset", "schema_violation",
                      "schema_violation", "identity"]


def test_envelope_record_keeps_entity_kind_identity_and_time(parser):
    record = parser.parse(example_lines("records.jsonl")[0], {"origin": "crm"}, "m1")
    assert record.dataset == "crm-profiles" and record.kind == "profile"
    assert record.entity["_id"] == "prof-ada-0001"
    assert record.primary_identity == ("Email", "ada@example.com")
    assert record.record_time.isoformat() == "2026-11-02T08:00:00+00:00"  # _repo.modifyDate
    assert record.attributes == {"origin": "crm"} and record.message_id == "m1"


def test_bare_record_takes_its_dataset_from_the_attribute(parser):
    line = example_lines("records-bare.jsonl")[0]
    record = parser.parse(line, {"dataset": "web-events"})
    assert record.dataset == "web-events" and record.kind == "event"
    assert record.record_time == record.record_time.fromisoformat(
        json.loads(line)["timestamp"].replace("Z", "+00:00"))
    assert error_of(parser, line).error_class == "unknown_dataset"


def test_lake_only_dataset_needs_no_primary_identity(parser):
    entity = json.loads(example_lines("records-bare.jsonl")[0])
    for identity in entity["identityMap"]["ECID"]:
        identity.pop("primary", None)
    entity["identityMap"]["Phone"] = [{"id": "+441234"}]
    payload = json.dumps(entity).encode()
    assert parser.parse(payload, {"dataset": "web-events-archive"}).primary_identity is None
    assert error_of(parser, payload, dataset="web-events").error_class == "identity"


def test_schema_violation_names_the_field_by_json_pointer(parser):
    error = error_of(parser, example_lines("records.jsonl")[21])
    assert error.error_class == "schema_violation"
    assert error.pointer == "/loyalty/points"
    assert "is not of type 'integer'" in error.message
    assert error.dataset == "crm-profiles"


def test_date_time_format_is_checked(parser):
    entity = json.loads(example_lines("records-bare.jsonl")[0])
    entity["timestamp"] = "yesterday"
    error = error_of(parser, json.dumps(entity).encode(), dataset="web-events")
    assert (error.error_class, error.pointer) == ("schema_violation", "/timestamp")


def test_schema_ref_must_match_the_dataset(parser):
    document = json.loads(example_lines("records.jsonl")[0])
    document["header"]["schemaRef"]["id"] = "https://ns.example.com/xdm/experience-event"
    assert error_of(parser, json.dumps(document).encode()).error_class == "unknown_schema"


@pytest.mark.parametrize("payload, error_class", [
    (b"\xff\xfe not utf-8", "not_utf8"),
    (b"", "not_json"),
    (b'"just a string"', "not_object"),
    (b'42', "not_object"),
    (b'true', "not_object"),
    (b'null', "not_object"),
    (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    (b'{"a":' * 65 + b"1" + b"}" * 65, "too_deep"),
    (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
    (b'{"header": {"datasetId": "crm-profiles"}, "body": {"xdmEntity": 3}}', "not_object"),
])
def test_malformed_messages_fail_with_their_class(parser, payload, error_class):
    assert error_of(parser, payload).error_class == error_class


def test_nesting_up_to_the_limit_is_fine(parser):
    entity = json.loads(example_lines("records-bare.jsonl")[0])
    entity["web"]["webPageDetails"]["name"] = json.loads('{"a":' * 61 + "1" + "}" * 61)
    error = error_of(parser, json.dumps(entity).encode(), dataset="web-events")
    assert error.error_class == "schema_violation"  # not too_deep: 64 levels in all


def test_identity_too_long_for_a_row_key(parser):
    entity = {"_id": "x", "identityMap": {"Email": [{"id": "a" * 5000, "primary": True}]}}
    error = error_of(parser, json.dumps(entity).encode(), dataset="crm-profiles")
    assert error.error_class == "identity_too_long"


def test_a_secondary_identity_too_long_for_a_row_key_is_refused_too(parser):
    entity = {"_id": "x", "identityMap": {"Email": [{"id": "a@b.c", "primary": True}],
                                          "ECID": [{"id": "9" * 5000}]}}
    error = error_of(parser, json.dumps(entity).encode(), dataset="crm-profiles")
    assert error.error_class == "identity_too_long"


def test_row_keys_do_not_collide_when_namespace_or_id_hold_the_separator():
    pairs = [("a#b", "c"), ("a", "b#c"), ("a%23b", "c"), ("a", "b%23c"), ("", "a#b#c")]
    assert len({row_key(*pair) for pair in pairs}) == len(pairs)


def test_catalog_naming_a_missing_schema_is_refused(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "s.json").write_text('{"$id": "https://x/s", "type": "object"}')
    (tmp_path / "catalog.yaml").write_text(
        "schemas: schemas\ndatasets:\n  d: {schema: https://x/missing, kind: event}\n")
    with pytest.raises(CatalogError, match="https://x/missing"):
        Catalog.load(str(tmp_path / "catalog.yaml"))


def test_profile_time_before_1970_is_refused_as_a_bigtable_cell_time(parser):
    document = json.loads(example_lines("records.jsonl")[0])
    document["body"]["xdmEntity"]["_repo"]["modifyDate"] = "1969-12-31T23:59:59Z"
    assert error_of(parser, json.dumps(document).encode()).error_class == "bad_timestamp"


def with_first_name(escaped_name):
    """The first example profile record, its first name replaced by a JSON string body."""
    line = example_lines("records.jsonl")[0]
    document = json.loads(line)
    document["body"]["xdmEntity"]["person"]["name"]["firstName"] = "PLACEHOLDER"
    return json.dumps(document).replace('"PLACEHOLDER"', f'"{escaped_name}"').encode()


@pytest.mark.parametrize("escaped", ["\\ud800", "x\\uDFFF", "\\ude00\\ud83d"])
def test_a_lone_surrogate_escape_is_refused_with_where_it_is(parser, escaped):
    error = error_of(parser, with_first_name(escaped))
    assert error.error_class == "not_utf8"
    assert error.pointer == "/body/xdmEntity/person/name/firstName"
    assert "lone UTF-16 surrogate" in str(error)


def test_a_surrogate_pair_escape_is_a_character_like_any_other(parser):
    record = parser.parse(with_first_name("Ada \\ud83d\\ude00"))
    assert record.entity["person"]["name"]["firstName"] == "Ada \U0001F600"


def test_a_lone_surrogate_in_a_key_is_refused_too(parser):
    payload = with_first_name("Ada").replace(b'"firstName"', b'"first\\udc00Name"')
    assert error_of(parser, payload).error_class == "not_utf8"
