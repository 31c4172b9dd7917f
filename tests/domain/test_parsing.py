"""domain/parsing.py: from a message to a validated record, or to why it is not one.

Single messages, envelope and bare, and every way to fail; then the same outcome, to the
letter, with and without the fast validation path; and the parser across pickling.
"""

import collections
import json
import pickle

import pytest

from domain.catalog import Catalog
from domain.parsing import MAX_MESSAGE_BYTES, RecordParser
from domain.records import RecordError
from helpers.examples import (
    EXAMPLE_FILES,
    EXAMPLES,
    PUBLISH_TIME,
    example_entities,
    example_lines,
    generated_messages,
)
from helpers.mutations import mutations


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
    assert failed == [
        "not_json",
        "not_object",
        "unknown_dataset",
        "schema_violation",
        "schema_violation",
        "identity",
    ]


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
        json.loads(line)["timestamp"].replace("Z", "+00:00")
    )
    assert error_of(parser, line).error_class == "unknown_dataset"


def test_lake_only_dataset_needs_no_primary_identity(parser):
    entity = json.loads(example_lines("records-bare.jsonl")[0])
    for identity in entity["identityMap"]["ECID"]:
        identity.pop("primary", None)
    entity["identityMap"]["Phone"] = [{"id": "+441234"}]
    payload = json.dumps(entity).encode()
    assert parser.parse(payload, {"dataset": "web-events-archive"}).primary_identity is None
    assert error_of(parser, payload, dataset="web-events").error_class == "identity"


# ---------------------------------------------------------------------------
# identities: where they are found, which are refused, which is primary


def crm_envelope(identity_map=None, meta=None, dataset="crm-profiles", **fields):
    """The first example profile record, its identityMap replaced (None: removed)."""
    document = json.loads(example_lines("records.jsonl")[0])
    document["header"]["datasetId"] = dataset
    entity = document["body"]["xdmEntity"]
    entity.pop("identityMap")
    if identity_map is not None:
        entity["identityMap"] = identity_map
    entity.update(fields)
    if meta is not None:
        document["body"]["xdmMeta"] = meta
    return json.dumps(document).encode()


ADOBE_CATALOG = EXAMPLES / "adobe" / "catalog.yaml"
ADOBE_RECORD = EXAMPLES / "adobe" / "record.json"


@pytest.fixture(scope="module")
def adobe_parser():
    return RecordParser(Catalog.load(str(ADOBE_CATALOG)))


def test_identities_from_the_envelopes_xdm_meta(adobe_parser):
    """Adobe's time-series payloads carry the identityMap in body.xdmMeta; the tutorial's
    envelope has an xdmMeta already."""
    document = json.loads(ADOBE_RECORD.read_bytes())
    del document["body"]["xdmEntity"]["workEmail"]
    meta = document["body"]["xdmMeta"]
    meta["identityMap"] = {"ECID": [{"id": "11", "primary": True}], "Email": [{"id": "a@x.org"}]}
    record = adobe_parser.parse(json.dumps(document).encode())
    assert record.primary_identity == ("ECID", "11")
    assert record.identities == (("ECID", "11"), ("Email", "a@x.org"))
    assert "identityMap" not in record.entity  # the entity as sent
    # The entity's own identityMap wins: xdmMeta's is not read then.
    document["body"]["xdmEntity"]["identityMap"] = {"CRMID": [{"id": "C1", "primary": True}]}
    record = adobe_parser.parse(json.dumps(document).encode())
    assert (record.primary_identity, record.identities) == (("CRMID", "C1"), (("CRMID", "C1"),))
    # A bare record has no envelope: an `xdmMeta` field of it is an attribute like any other.
    bare = {"person": {"name": {"firstName": "Jane"}}, "xdmMeta": meta}
    error = error_of(adobe_parser, json.dumps(bare).encode(), dataset="{DATASET_ID}")
    assert error.message == "a profile needs exactly one primary identity: no identities"


def test_adobes_tutorial_record_parses_unchanged_keyed_by_its_work_email(adobe_parser):
    payload = ADOBE_RECORD.read_bytes()
    record = adobe_parser.parse(payload, {}, "m1", PUBLISH_TIME)
    assert record.dataset == "{DATASET_ID}" and record.kind == "profile" and record.feeds_profile
    assert record.primary_identity == ("Email", "janedoe@example.com")
    assert record.identities == (("Email", "janedoe@example.com"),)
    assert record.refused_identities == ()
    assert record.entity == json.loads(payload)["body"]["xdmEntity"]  # unchanged
    assert record.payload == payload
    assert record.record_time == PUBLISH_TIME  # no modifyDate, no header timestamp


def test_identity_fields_come_beside_the_identity_map(adobe_parser):
    document = json.loads(ADOBE_RECORD.read_bytes())
    document["body"]["xdmEntity"]["identityMap"] = {"ECID": [{"id": "11"}, {"id": "0000"}]}
    record = adobe_parser.parse(json.dumps(document).encode())
    assert record.primary_identity == ("Email", "janedoe@example.com")  # the field is primary
    assert record.identities == (("ECID", "11"), ("Email", "janedoe@example.com"))
    assert record.refused_identities == (("ECID", "0000", "blocked"),)
    # A primary in the identityMap too: two primaries.
    document["body"]["xdmEntity"]["identityMap"] = {"ECID": [{"id": "11", "primary": True}]}
    error = error_of(adobe_parser, json.dumps(document).encode())
    assert (error.error_class, error.pointer) == ("identity", "/identityMap")
    assert error.message == "a profile needs exactly one primary identity: 2 marked primary"
    # No work email: the record has no identity at all.
    del document["body"]["xdmEntity"]["workEmail"]
    del document["body"]["xdmEntity"]["identityMap"]
    error = error_of(adobe_parser, json.dumps(document).encode())
    assert error.message == "a profile needs exactly one primary identity: no identities"


@pytest.mark.parametrize(
    "value, why",
    [("anonymous", "blocked"), ("Null", "blocked"), ("0000", "blocked"), ("x" * 1025, "too_long")],
)
def test_a_refused_primary_value_makes_a_record_for_the_lake_only(parser, value, why):
    identity_map = {
        "Email": [{"id": value, "primary": True}],
        "ECID": [{"id": "11"}, {"id": "null"}],
        "Phone": [{"id": "TEST@example.com"}],  # the example catalog's own pattern
    }
    record = parser.parse(crm_envelope(identity_map))
    assert record.primary_identity is None and record.feeds_profile
    assert record.identities == (("ECID", "11"),)
    assert sorted(record.refused_identities) == sorted(
        [
            ("Email", value, why),
            ("ECID", "null", "blocked"),
            ("Phone", "TEST@example.com", "blocked"),
        ]
    )


def test_a_lake_only_dataset_checks_no_identity(parser):
    """Its identities are not linked, so none is checked nor refused."""
    line = example_lines("records-bare.jsonl")[0]
    entity = json.loads(line)
    entity["identityMap"] = {"ECID": [{"id": "anonymous"}, {"id": "0"}]}
    record = parser.parse(json.dumps(entity).encode(), {"dataset": "web-events-archive"})
    assert (record.primary_identity, record.identities, record.refused_identities) == (
        None,
        (),
        (),
    )


@pytest.mark.parametrize(
    "identity_map, message",
    [
        (
            {"Email": [{"id": "a@x.org"}], "ECID": [{"id": "11"}]},
            "a profile needs exactly one primary identity: none marked primary among 2",
        ),
        (
            {
                "Email": [{"id": "a@x.org", "primary": True}],
                "ECID": [{"id": "11", "primary": True}],
            },
            "a profile needs exactly one primary identity: 2 marked primary",
        ),
        ({}, "a profile needs exactly one primary identity: no identities"),
    ],
)
def test_not_exactly_one_primary_is_an_identity_error(parser, identity_map, message):
    error = error_of(parser, crm_envelope(identity_map))
    assert (error.error_class, error.message, error.pointer) == (
        "identity",
        message,
        "/identityMap",
    )
    assert error.dataset == "crm-profiles"


def test_the_sample_streams_record_without_a_primary_says_so(parser):
    error = error_of(parser, example_lines("records.jsonl")[23])
    assert error.error_class == "identity"
    assert error.message == (
        "a profile needs exactly one primary identity: none marked primary among 2"
    )


def test_identity_too_long_is_a_namespace_over_256_characters(parser):
    error = error_of(parser, crm_envelope({"N" * 257: [{"id": "1", "primary": True}]}))
    assert (error.error_class, error.pointer) == ("identity_too_long", "/identityMap")
    assert "longer than 256 characters" in error.message
    record = parser.parse(crm_envelope({"N" * 256: [{"id": "1", "primary": True}]}))
    assert record.primary_identity == ("N" * 256, "1")


def test_more_than_20_identities_are_too_many_wherever_they_are(adobe_parser):
    document = json.loads(ADOBE_RECORD.read_bytes())
    document["body"]["xdmEntity"]["identityMap"] = {"ECID": [{"id": str(n)} for n in range(20)]}
    error = error_of(adobe_parser, json.dumps(document).encode())  # 20 + the work email
    assert error.error_class == "too_many_identities" and "21 identities" in error.message
    document["body"]["xdmEntity"]["identityMap"]["ECID"].pop()
    assert adobe_parser.parse(json.dumps(document).encode()).primary_identity


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


@pytest.mark.parametrize(
    "payload, error_class",
    [
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b"", "not_json"),
        (b'"just a string"', "not_object"),
        (b"42", "not_object"),
        (b"true", "not_object"),
        (b"null", "not_object"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "too_deep"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
        (b'{"header": {"datasetId": "crm-profiles"}, "body": {"xdmEntity": 3}}', "not_object"),
    ],
)
def test_malformed_messages_fail_with_their_class(parser, payload, error_class):
    assert error_of(parser, payload).error_class == error_class


def test_nesting_up_to_the_limit_is_fine(parser):
    entity = json.loads(example_lines("records-bare.jsonl")[0])
    entity["web"]["webPageDetails"]["name"] = json.loads('{"a":' * 61 + "1" + "}" * 61)
    error = error_of(parser, json.dumps(entity).encode(), dataset="web-events")
    assert error.error_class == "schema_violation"  # not too_deep: 64 levels in all


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
    assert record.entity["person"]["name"]["firstName"] == "Ada \U0001f600"


def test_a_lone_surrogate_in_a_key_is_refused_too(parser):
    payload = with_first_name("Ada").replace(b'"firstName"', b'"first\\udc00Name"')
    assert error_of(parser, payload).error_class == "not_utf8"


# ---------------------------------------------------------------------------
# the record parser: the same outcome, to the letter, with and without the fast path


def outcome(parser, payload, attributes):
    try:  # a Record's repr: NaN is not equal to itself, its repr is
        return ("record", repr(parser.parse(payload, attributes, "m", PUBLISH_TIME)))
    except RecordError as error:
        return (
            "error",
            error.error_class,
            error.message,
            error.pointer,
            error.dataset,
            error.violations,
        )
    except Exception as error:  # e.g. a bare JSON number: _nesting raises TypeError
        return ("raised", type(error), str(error))


def test_the_parser_gives_the_same_records_and_the_same_errors(catalog):
    fast, reference = RecordParser(catalog), RecordParser(catalog, fast_validation=False)
    messages = generated_messages(2000, seed=3)
    for name, attributes in EXAMPLE_FILES:
        messages += [(line, attributes) for line in (EXAMPLES / name).read_bytes().splitlines()]
    for schema_id, entity in example_entities(catalog):
        dataset = "crm-profiles" if "profile" in schema_id else "web-events"
        messages += [
            (json.dumps(m.instance).encode(), {"dataset": dataset}) for m in mutations(entity)
        ]
    classes, declined = collections.Counter(), 0
    for payload, attributes in messages:
        expected = outcome(reference, payload, attributes)
        before = fast.fast_path_disagreements
        assert outcome(fast, payload, attributes) == expected, payload
        declined += fast.fast_path_disagreements - before
        classes[{"record": "valid", "error": expected[1]}.get(expected[0], "raised")] += 1
    print(
        f"\nparser: {len(messages)} messages, {dict(classes)}; the fast path declined "
        f"{declined} the reference accepted"
    )
    assert classes["schema_violation"] >= 3000 and classes["valid"] >= 1900
    assert fast.fast_path_disagreements == declined


class RefusingFastValidator:
    """A fast path that accepts nothing: every record goes to the reference."""

    def is_valid(self, instance, numbers_finite=False):
        return False


def test_a_record_only_the_reference_accepts_is_valid_and_counted(catalog):
    payload = (EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0]
    seen = []
    parser = RecordParser(catalog, on_fast_path_disagreement=lambda: seen.append(1))
    parser.fast_validators["web-events"] = RefusingFastValidator()
    record = parser.parse(payload, {"dataset": "web-events"})
    assert record.dataset == "web-events"
    assert parser.fast_path_disagreements == 1 and seen == [1]


@pytest.mark.parametrize("number", ["NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
def test_a_number_json_has_no_finite_value_for_is_not_json(catalog, number):
    # RFC 8259 has no NaN nor Infinity; json.loads reads them, and 1e999 as infinity,
    # which no store keeps as JSON. The same with and without the fast path.
    entity = json.loads((EXAMPLES / "records-bare.jsonl").read_text().splitlines()[0])
    entity.update({"eventType": "commerce.purchases", "commerce": {"order": {"priceTotal": 0}}})
    payload = json.dumps(entity).replace('"priceTotal": 0', f'"priceTotal": {number}').encode()
    assert number.encode() in payload
    for parser in (RecordParser(catalog), RecordParser(catalog, fast_validation=False)):
        error = error_of(parser, payload, dataset="web-events")
        assert error.error_class == "not_json", error.message
        assert number == "-NaN" or number.lstrip("-") in error.message  # json: no -NaN


@pytest.mark.parametrize("text", ["[NaN]", '{"a": Infinity}', '{"a": [1, -Infinity]}'])
def test_nan_and_infinity_anywhere_are_not_json_before_anything_else(parser, text):
    assert error_of(parser, text.encode(), dataset="web-events").error_class == "not_json"


# ---------------------------------------------------------------------------
# pickling: Beam ships the parser and the registry to its workers


def test_parser_and_registry_pickle_and_rebuild_their_fast_validators(catalog):
    from apache_beam.internal import pickler

    parser = RecordParser(catalog, max_errors=3)
    payload = (EXAMPLES / "records.jsonl").read_bytes().splitlines()[21]  # a schema violation
    for copy in (pickle.loads(pickle.dumps(parser)), pickler.loads(pickler.dumps(parser))):
        assert copy.max_errors == 3 and copy.fast_validation
        assert all(f is not None for f in copy.fast_validators.values())
        assert outcome(copy, payload, {}) == outcome(parser, payload, {})
    registry = pickle.loads(pickle.dumps(catalog.registry))
    assert registry.fast_validator("https://ns.example.com/xdm/experience-event") is not None
    reference_only = pickle.loads(pickle.dumps(RecordParser(catalog, fast_validation=False)))
    assert set(reference_only.fast_validators.values()) == {None}
