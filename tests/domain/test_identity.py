"""Where a record's identities are found, which are refused, which is primary
(domain/identity.py), as the parser puts them on a Record (domain/parsing.py). The
catalog's identity section and identity fields: test_identity_catalog.py."""

import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identity import (
    BLOCKED,
    TOO_LONG,
    IdentityError,
    IdentityField,
    identities,
    record_identities,
    refusal,
)
from domain.profile_table import row_key
from domain.records import RecordError
from tests.domain import graph_strategies as gs

CATALOG_PATTERN = re.compile(r"(?i)test@example\.com")


# Refused values


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "null",
        "NULL",
        " Null ",
        "undefined",
        "Undefined",
        "anonymous",
        "ANONYMOUS",
        "0",
        "0000",
        "00000000-0000-0000-0000-000000000000",
        "0.0",
        "00_00",
        " 000 ",
    ],
)
def test_built_in_blocked_values_are_refused(value):
    assert refusal(value) == BLOCKED


@pytest.mark.parametrize(
    "value",
    [
        "0001",
        "a0",
        "0x0",
        "null1",
        "not null",
        "anonymous-7",
        "undefinedX",
        "O",
        "ada@x.org",
        "10000000-0000-0000-0000-000000000000",
    ],
)
def test_values_that_only_look_blocked_are_accepted(value):
    assert refusal(value) is None


def test_a_catalog_pattern_refuses_what_it_matches_whole():
    assert refusal("test@example.com", [CATALOG_PATTERN]) == BLOCKED
    assert refusal("TEST@Example.COM", [CATALOG_PATTERN]) == BLOCKED
    assert refusal("test@example.com.au", [CATALOG_PATTERN]) is None
    assert refusal("my-test@example.com", [CATALOG_PATTERN]) is None
    assert refusal("test@example.com") is None  # no pattern, no refusal


ZERO_ID_CHARACTERS = "0-_.: "  # what an all-zero id is made of, as documented


@given(
    st.text(alphabet=ZERO_ID_CHARACTERS, min_size=1, max_size=40).filter(lambda t: "0" in t),
    st.sampled_from(["", " ", "\t", "\n "]),
)
@settings(max_examples=300, deadline=None)
def test_any_all_zero_id_is_refused(value, padding):
    assert refusal(padding + value + padding) == BLOCKED


@given(
    st.text(alphabet=ZERO_ID_CHARACTERS, max_size=20),
    st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")).filter(
        lambda c: c not in ZERO_ID_CHARACTERS and not c.isspace()
    ),
    st.text(alphabet=ZERO_ID_CHARACTERS, max_size=20),
)
@settings(max_examples=300, deadline=None)
def test_one_character_outside_the_zero_set_makes_an_id_accepted(before, other, after):
    """0/0, 0x0, 0,0, a full-width or Arabic-Indic zero: not the all-zero id."""
    assert refusal(before + other + after) is None


def test_the_all_zero_check_is_linear():
    """1,024-character near misses, which a backtracking pattern takes milliseconds over
    each: a thousand of them in well under half a second."""
    near_misses = ["0" * 1023 + "a", "0-" * 511 + "a", "0" * 1023 + "!", ":0" * 511 + "x"]
    start = time.perf_counter()
    for _ in range(250):
        for value in near_misses:
            assert refusal(value) is None
    assert time.perf_counter() - start < 0.5


def test_length_limit_is_1024_characters():
    assert refusal("x" * 1024) is None
    assert refusal("x" * 1025) == TOO_LONG
    assert refusal("é" * 1024) is None  # characters, not bytes
    assert refusal("é" * 1025) == TOO_LONG


# Where identities are found


def test_identity_map_of_the_entity():
    entity = {
        "identityMap": {
            "Email": [{"id": "ada@x.org", "primary": True}, {"id": "ada@y.org"}],
            "ECID": [{"id": "11", "primary": "true"}],  # only the boolean true marks a primary
        }
    }
    assert identities(entity) == [
        ("Email", "ada@x.org", True),
        ("Email", "ada@y.org", False),
        ("ECID", "11", False),
    ]


def test_identity_map_of_xdm_meta_where_the_entity_has_none():
    meta = {"identityMap": {"ECID": [{"id": "11", "primary": True}]}}
    assert identities({"name": "Ada"}, meta) == [("ECID", "11", True)]
    # The entity's own identityMap comes first, and then xdmMeta's is not read.
    own = {"identityMap": {"Email": [{"id": "ada@x.org"}]}}
    assert identities(own, meta) == [("Email", "ada@x.org", False)]


def test_malformed_identity_maps_give_nothing():
    assert identities({"identityMap": ["Email"]}) == []
    assert identities({"identityMap": {"Email": {"id": "ada@x.org"}}}) == []
    assert identities({"identityMap": {"Email": ["ada@x.org"]}}) == []
    assert identities({}, "not a dict") == []


def test_identity_fields_by_json_pointer_with_escapes():
    entity = {
        "workEmail": {"address": "ada@work.org"},
        "a/b": {"c~d": "C1"},
        "phones": ["+441"],
        "deep": {"x": None},
    }
    fields = (
        IdentityField("/workEmail/address", "Email", True),
        IdentityField("/a~1b/c~0d", "CRMID"),
        IdentityField("/phones/0", "Phone"),  # through a list: not followed
        IdentityField("/deep/x", "ECID"),  # null: nothing
        IdentityField("/missing/field", "ECID"),
    )
    assert identities(entity, None, fields) == [
        ("Email", "ada@work.org", True),
        ("CRMID", "C1", False),
    ]


def test_identity_fields_come_after_the_identity_map():
    entity = {"identityMap": {"ECID": [{"id": "11"}]}, "crm": "C1"}
    assert identities(entity, None, (IdentityField("/crm", "CRMID", True),)) == [
        ("ECID", "11", False),
        ("CRMID", "C1", True),
    ]


@given(st.lists(st.text(alphabet="ab01~/", min_size=0, max_size=4), min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_any_key_path_is_reached_by_its_escaped_pointer(keys):
    entity = value = {}
    for key in keys[:-1]:
        value = value.setdefault(key, {})
    value[keys[-1]] = "found"
    pointer = "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in keys)
    assert identities(entity, None, (IdentityField(pointer, "X"),)) == [("X", "found", False)]


# Primary, linked, refused


def test_a_refused_primary_gives_primary_none_and_the_rest_is_linked():
    found = [
        ("Email", "anonymous", True),
        ("ECID", "22", False),
        ("ECID", "11", False),
        ("Phone", "", False),
        ("ECID", "11", False),
    ]
    checked = record_identities(found)
    assert checked.primary is None
    assert checked.linked == (("ECID", "11"), ("ECID", "22"))  # sorted, each once
    assert checked.refused == (("Email", "anonymous", BLOCKED), ("Phone", "", BLOCKED))


def test_an_accepted_primary():
    checked = record_identities(
        [("ECID", "11", False), ("Email", "ada@x.org", True), ("Email", "test@example.com", False)],
        [CATALOG_PATTERN],
    )
    assert checked.primary == ("Email", "ada@x.org")
    assert checked.linked == (("ECID", "11"), ("Email", "ada@x.org"))
    assert checked.refused == (("Email", "test@example.com", BLOCKED),)


def test_a_lone_identity_is_primary_without_a_mark():
    assert record_identities([("ECID", "11", False)]).primary == ("ECID", "11")
    # The same identity twice, once marked, is one primary.
    assert record_identities(
        [("ECID", "11", False), ("ECID", "11", True), ("ECID", "22", False)]
    ).primary == ("ECID", "11")


@pytest.mark.parametrize(
    "found, words",
    [
        ([], "no identities"),
        ([("ECID", "11", False), ("ECID", "22", False)], "none marked primary among 2"),
        ([("ECID", "11", True), ("Email", "ada@x.org", True)], "2 marked primary"),
    ],
)
def test_not_exactly_one_primary_raises(found, words):
    with pytest.raises(IdentityError, match=re.escape(words)) as raised:
        record_identities(found)
    assert raised.value.error_class == "identity"
    record_identities(found, needs_primary=False)  # where no primary is needed: fine


@pytest.mark.parametrize(
    "found",
    [[("ECID", None, True)], [("ECID", 11, True)], [("", "11", True)], [(None, "11", True)]],
)
def test_an_identity_without_a_string_id_or_namespace_raises(found):
    with pytest.raises(IdentityError) as raised:
        record_identities(found)
    assert raised.value.error_class == "identity"


def test_a_namespace_over_256_characters_raises():
    assert record_identities([("N" * 256, "11", True)]).primary == ("N" * 256, "11")
    for namespace in ("N" * 257, "N" * 5000):
        with pytest.raises(IdentityError, match="longer than 256 characters") as raised:
            record_identities([(namespace, "11", True)])
        assert raised.value.error_class == "identity_too_long"
    with pytest.raises(IdentityError) as raised:  # a linked one as much as the primary
        record_identities([("ECID", "11", True), ("é" * 257, "x", False)])
    assert raised.value.error_class == "identity_too_long"


def test_a_value_whose_row_key_would_pass_4_kib_is_refused_as_too_long():
    """1,024 characters at most, and a row key of at most 4,096 bytes (Bigtable's limit):
    a value of 1,023 four-byte characters fits when what is left of the key fits."""
    wide = "\U0001d11e" * 1022  # 4,088 bytes
    fits, passes = wide + "a", wide + "aa"  # row keys of 4,096 and 4,097 bytes
    assert len(row_key("E", fits)) == 4096 and len(row_key("E", passes)) == 4097
    assert refusal(passes) is None  # not by its length in characters
    checked = record_identities([("E", fits, True)])
    assert (checked.primary, checked.refused) == (("E", fits), ())
    checked = record_identities([("E", passes, True), ("ECID", "11", False)])
    assert checked.primary is None  # a refused primary: the record is lake only
    assert checked.linked == (("ECID", "11"),)
    assert checked.refused == (("E", passes, TOO_LONG),)
    checked = record_identities([("ECID", "11", True), ("E", passes, False)])
    assert checked.primary == ("ECID", "11") and checked.refused == (("E", passes, TOO_LONG),)


# Through the parser: what a Record carries


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    return gs.load_parser(tmp_path_factory.mktemp("catalog"))


def envelope(dataset, entity, meta=None):
    body = {"xdmEntity": entity, **({"xdmMeta": meta} if meta else {})}
    return json.dumps({"header": {"datasetId": dataset}, "body": body}).encode()


def test_record_identities_through_the_parser(parser):
    entity = {
        "_id": "r1",
        "loyaltyId": "C1",
        "identityMap": {
            "Email": [{"id": "test@example.com"}, {"id": "ada@x.org"}],
            "ECID": [{"id": "0000"}, {"id": "11"}],
        },
    }
    record = parser.parse(envelope("loyalty", entity), {}, "m", None)
    assert record.primary_identity == ("CRMID", "C1")  # the dataset's primary field
    assert record.identities == (("CRMID", "C1"), ("ECID", "11"), ("Email", "ada@x.org"))
    assert sorted(record.refused_identities) == [
        ("ECID", "0000", BLOCKED),
        ("Email", "test@example.com", BLOCKED),
    ]


def test_a_refused_primary_leaves_the_record_for_the_lake(parser):
    entity = {
        "_id": "r1",
        "identityMap": {"Email": [{"id": "anonymous", "primary": True}], "ECID": [{"id": "11"}]},
    }
    record = parser.parse(envelope("crm", entity), {}, "m", None)
    assert record.primary_identity is None
    assert record.identities == (("ECID", "11"),)


@pytest.mark.parametrize("value", ["x" * 1025, "\U0001d11e" * 1024])
def test_a_primary_too_long_leaves_the_record_for_the_lake(parser, value):
    """Over 1,024 characters, or a row key over 4 KiB: refused, not an error."""
    entity = {
        "_id": "r1",
        "identityMap": {"Email": [{"id": value, "primary": True}], "ECID": [{"id": "11"}]},
    }
    record = parser.parse(envelope("crm", entity), {}, "m", None)
    assert record.primary_identity is None
    assert record.identities == (("ECID", "11"),)
    assert record.refused_identities == (("Email", value, TOO_LONG),)


def test_a_namespace_over_256_characters_is_a_record_error(parser):
    entity = {"_id": "r1", "identityMap": {"N" * 257: [{"id": "11", "primary": True}]}}
    with pytest.raises(RecordError) as raised:
        parser.parse(envelope("crm", entity), {}, "m", None)
    assert (raised.value.error_class, raised.value.pointer) == ("identity_too_long", "/identityMap")


def test_an_event_with_its_identities_in_xdm_meta(parser):
    entity = {"_id": "e1", "timestamp": "2026-03-01T12:00:00Z"}
    meta = {
        "identityMap": {"ECID": [{"id": "11", "primary": True}], "Email": [{"id": "ada@x.org"}]}
    }
    record = parser.parse(envelope("web", entity, meta), {}, "m", None)
    assert record.primary_identity == ("ECID", "11")
    assert record.identities == (("ECID", "11"), ("Email", "ada@x.org"))


def test_two_primaries_make_a_record_error(parser):
    entity = {
        "_id": "r1",
        "loyaltyId": "C1",
        "identityMap": {"ECID": [{"id": "11", "primary": True}]},
    }
    with pytest.raises(RecordError) as raised:
        parser.parse(envelope("loyalty", entity), {}, "m", None)
    assert raised.value.error_class == "identity"
    assert raised.value.pointer == "/identityMap"
