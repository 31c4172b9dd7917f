"""domain/identity.py: a record's identities and which one is primary; each becomes a row
key, so each must fit one."""

import json

import pytest

from domain.identity import IdentityError, identities, primary_identity
from domain.records import RecordError


def error_of(parser, payload, **attributes):
    with pytest.raises(RecordError) as caught:
        parser.parse(payload, attributes)
    return caught.value


def test_identity_too_long_for_a_row_key(parser):
    entity = {"_id": "x", "identityMap": {"Email": [{"id": "a" * 5000, "primary": True}]}}
    error = error_of(parser, json.dumps(entity).encode(), dataset="crm-profiles")
    assert error.error_class == "identity_too_long"


def test_a_secondary_identity_too_long_for_a_row_key_is_refused_too(parser):
    entity = {
        "_id": "x",
        "identityMap": {"Email": [{"id": "a@b.c", "primary": True}], "ECID": [{"id": "9" * 5000}]},
    }
    error = error_of(parser, json.dumps(entity).encode(), dataset="crm-profiles")
    assert error.error_class == "identity_too_long"


def test_every_identity_of_the_identity_map_is_found_and_the_rest_ignored():
    entity = {
        "identityMap": {
            "Email": [{"id": "a@b.c", "primary": True}, {"id": "d@e.f"}],
            "ECID": [{"id": "1", "primary": "yes"}, "not an identity"],
            "Phone": "not a list",
            "CRMID": [],
        }
    }
    assert identities(entity) == [
        ("Email", "a@b.c", True),
        ("Email", "d@e.f", False),
        ("ECID", "1", False),
    ]  # only `true` marks the primary
    assert identities({}) == identities({"identityMap": None}) == []


@pytest.mark.parametrize(
    "identity_map, primary",
    [
        ({"Email": [{"id": "a@b.c", "primary": True}], "ECID": [{"id": "1"}]}, ("Email", "a@b.c")),
        ({"ECID": [{"id": "1"}]}, ("ECID", "1")),  # the only one there is
        ({"ECID": [{"id": "1"}, {"id": "2", "primary": True}]}, ("ECID", "2")),
    ],
)
def test_the_primary_identity_is_the_one_marked_or_the_only_one(identity_map, primary):
    assert primary_identity({"identityMap": identity_map}) == primary


@pytest.mark.parametrize(
    "identity_map, message",
    [
        ({}, "no identities"),
        ({"ECID": [{"id": "1"}, {"id": "2"}]}, "none marked primary among 2"),
        (
            {"ECID": [{"id": "1", "primary": True}, {"id": "2", "primary": True}]},
            "2 marked primary",
        ),
        ({"ECID": [{"id": ""}]}, "an identity of namespace 'ECID' has no id"),
        ({"ECID": [{"id": 12}]}, "an identity of namespace 'ECID' has no id"),
        ({"ECID": [{"primary": True}]}, "an identity of namespace 'ECID' has no id"),
    ],
)
def test_a_profile_without_exactly_one_good_primary_identity_is_refused(identity_map, message):
    with pytest.raises(IdentityError, match=message) as caught:
        primary_identity({"identityMap": identity_map})
    assert caught.value.error_class == "identity"


def test_an_identity_is_too_long_where_its_row_key_would_pass_4096_bytes():
    # row key: 4 hex digits, '#', the namespace, '#', the id
    longest = "x" * (4096 - len("0000#Email#"))
    assert primary_identity({"identityMap": {"Email": [{"id": longest}]}}) == ("Email", longest)
    with pytest.raises(IdentityError) as caught:
        primary_identity({"identityMap": {"Email": [{"id": longest + "x"}]}})
    assert caught.value.error_class == "identity_too_long"
    with pytest.raises(IdentityError):  # in bytes: é is two
        primary_identity({"identityMap": {"Email": [{"id": "é" * 2043}]}})
