"""The catalog's identity section (the graph's rules, blocked patterns) and its per-dataset
identity fields (domain/catalog.py)."""

import json
import textwrap

import pytest

from domain.catalog import Catalog, CatalogError
from domain.identity import BLOCKED, IdentityField, refusal
from domain.identity_graph import IdentityRules
from tests.domain import graph_strategies as gs


def load(tmp_path, identity=None, fields=None):
    spec = {
        "schemas": "schemas",
        "datasets": {"crm": {"schema": gs.SCHEMA_ID, "kind": "profile", "profile": True}},
    }
    if identity is not None:
        spec["identity"] = identity
    if fields is not None:
        spec["datasets"]["crm"]["identities"] = fields
    return Catalog.load(gs.write_catalog(tmp_path, json.dumps(spec)))


def test_a_good_identity_section(tmp_path):
    text = textwrap.dedent(f"""\
        schemas: schemas
        datasets:
          crm:
            schema: "{gs.SCHEMA_ID}"
            kind: profile
            profile: true
            identities:
              - {{pointer: /workEmail/address, namespace: Email, primary: true}}
              - {{pointer: /crm~1id, namespace: CRMID}}
        identity:
          priority: [CRMID, Email, ECID]
          unique: [CRMID, Email]
          blocked: ["(?i)test@example\\\\.com", "guest-[0-9]+"]
          max_identities: 7
        """)
    catalog = Catalog.load(gs.write_catalog(tmp_path, text))
    assert catalog.identity_rules == IdentityRules(
        ("CRMID", "Email", "ECID"), frozenset({"CRMID", "Email"}), 7
    )
    assert [p.pattern for p in catalog.blocked_identities] == [
        "(?i)test@example\\.com",
        "guest-[0-9]+",
    ]
    assert refusal("guest-12", catalog.blocked_identities) == BLOCKED
    assert refusal("guest-x", catalog.blocked_identities) is None
    assert catalog.datasets["crm"].identity_fields == (
        IdentityField("/workEmail/address", "Email", True),
        IdentityField("/crm~1id", "CRMID", False),
    )


def test_no_identity_section_gives_the_defaults(tmp_path):
    catalog = load(tmp_path)
    assert catalog.identity_rules == IdentityRules((), frozenset(), 50)
    assert catalog.blocked_identities == ()
    assert catalog.datasets["crm"].identity_fields == ()


@pytest.mark.parametrize("cap", [2, 1000])
def test_the_cap_bounds_are_accepted(tmp_path, cap):
    assert load(tmp_path, {"max_identities": cap}).identity_rules.max_identities == cap


@pytest.mark.parametrize(
    "identity, words",
    [
        (
            {"priority": ["CRMID"], "colour": "red", "Unique": []},
            ["identity", "unknown keys", "'Unique'", "'colour'", "priority", "unique", "blocked"],
        ),
        ({"max_identitys": 5}, ["unknown keys", "'max_identitys'", "max_identities"]),
        (["CRMID"], ["identity must be a mapping", "['CRMID']"]),
        ("CRMID", ["identity must be a mapping", "'CRMID'"]),
        ({"priority": "CRMID"}, ["identity.priority", "list"]),
        ({"unique": "CRMID"}, ["identity.unique", "list"]),
        ({"blocked": {"a": "b"}}, ["identity.blocked", "list"]),
        ({"unique": [""]}, ["identity.unique", "list of strings"]),
        ({"priority": ["CRMID", 7]}, ["identity.priority", "list of strings"]),
        ({"blocked": ["ok", "(unclosed"]}, ["identity.blocked", "(unclosed", "regular expression"]),
        ({"max_identities": 1}, ["identity.max_identities", "2", "1000"]),
        ({"max_identities": 1001}, ["identity.max_identities", "2", "1000"]),
        ({"max_identities": "x"}, ["identity.max_identities"]),
        ({"max_identities": True}, ["identity.max_identities"]),
        ({"max_identities": 7.0}, ["identity.max_identities"]),
    ],
)
def test_a_bad_identity_section_is_a_catalog_error_naming_it(tmp_path, identity, words):
    with pytest.raises(CatalogError) as raised:
        load(tmp_path, identity)
    message = str(raised.value)
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    "fields, words",
    [
        (
            [
                {"pointer": "/a", "namespace": "Email", "primary": True},
                {"pointer": "/b", "namespace": "CRMID", "primary": True},
            ],
            ["'crm'", "at most one identity field is primary"],
        ),
        ([{"pointer": "/a"}], ["'crm'", "namespace", "{'pointer': '/a'}"]),
        ([{"pointer": "/a", "namespace": ""}], ["'crm'", "namespace"]),
        ([{"pointer": "a", "namespace": "Email"}], ["'crm'", "pointer", "'a'"]),
        ([{"pointer": "/a", "namespace": "Email", "primary": "yes"}], ["'crm'", "'yes'"]),
        (["/a"], ["'crm'", "'/a'"]),
        ({"pointer": "/a", "namespace": "Email"}, ["'crm'", "'identities' must be a list"]),
    ],
)
def test_a_bad_identity_field_is_a_catalog_error_naming_it(tmp_path, fields, words):
    with pytest.raises(CatalogError) as raised:
        load(tmp_path, fields=fields)
    message = str(raised.value)
    for word in words:
        assert word in message, (word, message)
