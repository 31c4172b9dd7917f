"""domain/identity_proof.py: a person identity links only from a trusted dataset or with
its HMAC proof; the forged link of issue 17 (an attacker's device beside a victim's Email)
leaves the victim's profile untouched and unreachable. The real parser, fragment_cells and
resolve, over the in-memory table of tests/domain/graph_strategies.py."""

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.catalog import Catalog, CatalogError
from domain.identity_graph import IdentityRules
from domain.identity_proof import identity_proof, proof_holds
from domain.parsing import RecordParser
from tests.domain import graph_strategies as gs

SECRET = "test-secret-not-a-real-one"
ENV = "TEST_IDENTITY_PROOF_SECRET"
RULES = IdentityRules(("CRMID", "Email", "ECID"), frozenset({"CRMID", "Email"}))
CATALOG = f"""\
schemas: schemas
datasets:
  crm: {{schema: "{gs.SCHEMA_ID}", kind: profile, profile: true, trusted: true}}
  web: {{schema: "{gs.SCHEMA_ID}", kind: event, profile: true, retention_days: 30}}
  loyalty: {{schema: "{gs.SCHEMA_ID}", kind: profile, profile: true}}
identity:
  priority: [CRMID, Email, ECID]
  unique: [CRMID, Email]
  person_namespaces: [Email, CRMID]
  proof_secret_env: {ENV}
"""
VICTIM = ("Email", "victim@example.com")
VICTIM_ECID = ("ECID", "victim-phone")
ATTACKER = ("ECID", "attacker-device")


@pytest.fixture
def parser(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, SECRET)
    return RecordParser(Catalog.load(gs.write_catalog(tmp_path, CATALOG)))


def entry(identity, primary=False, proof=None):
    value = {"id": identity[1]}
    if primary:
        value["primary"] = True
    if proof is not None:
        value["proof"] = proof
    return identity[0], value


def signed(identity, primary=False):
    return entry(identity, primary, identity_proof(SECRET, *identity))


def message(dataset, record_id, second, *entries, attributes=None):
    identity_map = {}
    for namespace, value in entries:
        identity_map.setdefault(namespace, []).append(value)
    time = f"2026-11-02T08:00:{second:02d}Z"
    entity = {"_id": record_id, "identityMap": identity_map}
    if dataset == "web":
        entity.update(eventType="web.webpagedetails.pageViews", timestamp=time)
    else:
        entity.update(person={"name": attributes or "Victim"}, _repo={"modifyDate": time})
    header = {"datasetId": dataset, "schemaRef": {"id": gs.SCHEMA_ID}}
    return json.dumps({"header": header, "body": {"xdmEntity": entity}}).encode(), {}


def victim_messages():
    """The victim's CRM record (trusted) and a signed-in event of theirs, signed."""
    return [
        message("crm", "v1", 1, entry(VICTIM, primary=True), entry(VICTIM_ECID)),
        message("web", "v2", 2, entry(VICTIM_ECID, primary=True), signed(VICTIM)),
    ]


def forged(proof=None):
    """Issue 17's forged link: the attacker's device primary, the victim's Email beside."""
    return message("web", "x1", 3, entry(ATTACKER, primary=True), entry(VICTIM, proof=proof))


def identities(lookup):
    return sorted(lookup.graph.identities)


def test_a_forged_link_leaves_the_victim_untouched_and_unreachable(parser):
    honest = gs.ingest(parser, victim_messages())
    attacked = gs.ingest(parser, victim_messages() + [forged()])
    before, after = gs.lookup(honest, VICTIM, RULES), gs.lookup(attacked, VICTIM, RULES)
    assert after.profile == before.profile and after.graph == before.graph
    assert identities(after) == [VICTIM_ECID, VICTIM]
    assert after.graph.dropped == []  # nothing of the attack is in the victim's rows
    assert {k: v for k, v in attacked.items() if k not in honest} == {
        k: v for k, v in gs.ingest(parser, [forged()]).items()
    }  # the forged record wrote only in the attacker's row

    attacker = gs.lookup(attacked, ATTACKER, RULES)
    assert identities(attacker) == [ATTACKER]
    assert attacker.profile["attributes"] == {}
    assert [e["_id"] for e in attacker.profile["events"]] == ["x1"]  # the record still lands
    assert [(e.a, e.b, rule) for e, rule in attacker.graph.dropped] == [
        (ATTACKER, VICTIM, "unproven")
    ]


def test_the_refused_identity_is_unproven_and_the_record_keeps_its_primary(parser):
    record = parser.parse(*forged())
    assert record.primary_identity == ATTACKER
    assert record.identities == (ATTACKER,)
    assert record.refused_identities == ((*VICTIM, "unproven"),)


@pytest.mark.parametrize(
    "proof",
    [
        None,
        "",
        "0" * 64,
        identity_proof("another-secret", *VICTIM),
        identity_proof(SECRET, "Email", "someone-else@example.com"),
        identity_proof(SECRET, "CRMID", VICTIM[1]),
        identity_proof(SECRET, *VICTIM).upper(),
        identity_proof(SECRET, *VICTIM)[:-1],
    ],
)
def test_a_missing_or_wrong_proof_links_nothing(parser, proof):
    table = gs.ingest(parser, victim_messages() + [forged(proof)])
    assert identities(gs.lookup(table, ATTACKER, RULES)) == [ATTACKER]
    assert identities(gs.lookup(table, VICTIM, RULES)) == [VICTIM_ECID, VICTIM]


def test_a_signed_identity_links(parser):
    table = gs.ingest(parser, victim_messages() + [forged(identity_proof(SECRET, *VICTIM))])
    found = gs.lookup(table, ATTACKER, RULES)
    assert identities(found) == [ATTACKER, VICTIM_ECID, VICTIM]
    assert found.graph.dropped == []
    assert found.profile["attributes"]["/person/name"]["value"] == "Victim"


def test_no_proof_holds_without_the_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    parser = RecordParser(Catalog.load(gs.write_catalog(tmp_path, CATALOG)))
    record = parser.parse(*forged(identity_proof(SECRET, *VICTIM)))
    assert record.identities == (ATTACKER,)
    assert not proof_holds(b"", *VICTIM, identity_proof("", *VICTIM))


def test_a_trusted_dataset_links_person_identities_without_proof(parser):
    table = gs.ingest(
        parser,
        [
            message(
                "crm",
                "c1",
                1,
                entry(VICTIM, primary=True),
                entry(("CRMID", "C-1")),
                entry(ATTACKER),
            )
        ],
    )
    assert identities(gs.lookup(table, ATTACKER, RULES)) == [("CRMID", "C-1"), ATTACKER, VICTIM]


def test_an_untrusted_profile_dataset_needs_proof_too(parser):
    record = parser.parse(
        *message("loyalty", "l1", 1, entry(VICTIM, primary=True), entry(ATTACKER))
    )
    assert record.primary_identity is None  # an unproven primary: the record is lake-only
    assert record.refused_identities == ((*VICTIM, "unproven"),)
    proven = parser.parse(
        *message("loyalty", "l2", 1, signed(VICTIM, primary=True), entry(ATTACKER))
    )
    assert proven.primary_identity == VICTIM and proven.identities == (ATTACKER, VICTIM)


def test_without_person_namespaces_everything_links_as_before(tmp_path):
    text = CATALOG.replace("  person_namespaces: [Email, CRMID]\n", "")
    parser = RecordParser(Catalog.load(gs.write_catalog(tmp_path, text)))
    table = gs.ingest(parser, victim_messages() + [forged()])
    assert identities(gs.lookup(table, ATTACKER, RULES)) == [ATTACKER, VICTIM_ECID, VICTIM]


@pytest.mark.parametrize(
    "identity, problem",
    [
        ({"person_namespaces": "Email"}, "person_namespaces must be a list"),
        ({"person_namespaces": ["a:b"]}, "holds ':'"),
        ({"person_namespaces": [""]}, "non-empty string"),
        ({"proof_secret_env": "not a name"}, "must name an environment variable"),
        ({"proof_secret": "abc"}, "unknown keys ['proof_secret']"),
    ],
)
def test_a_bad_trust_setting_is_a_catalog_problem(tmp_path, identity, problem):
    text = gs.CATALOG_YAML.replace("identity:\n", f"identity:\n  {json.dumps(identity)[1:-1]}\n")
    with pytest.raises(CatalogError) as raised:
        Catalog.load(gs.write_catalog(tmp_path, text))
    assert problem in str(raised.value)


def test_trusted_must_be_true_or_false(tmp_path):
    text = CATALOG.replace("trusted: true", "trusted: yes-please")
    with pytest.raises(CatalogError, match="'trusted' must be true or false"):
        Catalog.load(gs.write_catalog(tmp_path, text))


POOL = (VICTIM, VICTIM_ECID, ATTACKER, ("CRMID", "C-1"), ("Email", "other@example.com"))


@st.composite
def trust_records(draw):
    """Records of any dataset, each identity with a good, a wrong or no proof."""
    records = []
    for index in range(draw(st.integers(1, 6))):
        chosen = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
        proofs = [draw(st.sampled_from(("good", "bad", None))) for _ in chosen]
        entries = [
            entry(
                identity,
                primary=i == 0,
                proof={"good": identity_proof(SECRET, *identity), "bad": "ab" * 32}.get(kind),
            )
            for i, (identity, kind) in enumerate(zip(chosen, proofs, strict=True))
        ]
        dataset = draw(st.sampled_from(("crm", "web", "loyalty")))
        records.append(message(dataset, f"r{index}", draw(st.integers(0, 3)), *entries))
    return records


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=trust_records(), seed=st.integers(0, 2**32 - 1))
def test_any_order_of_the_same_records_gives_the_same_graphs(parser, records, seed):
    shuffled = list(records) + random.Random(seed).sample(records, k=len(records) // 2)
    random.Random(seed).shuffle(shuffled)
    table, again = gs.ingest(parser, records), gs.ingest(parser, shuffled)
    assert again == table
    parsed = [parser.parse(*m) for m in records]
    linked = {i for r in parsed if r.primary_identity is not None for i in r.identities}
    for start in POOL:
        found = gs.lookup(table, start, RULES)
        assert gs.lookup(again, start, RULES).graph == found.graph
        assert found.graph.identities <= linked | {start}  # only what some record linked
    for record in parsed:
        unproven = {(ns, i) for ns, i, why in record.refused_identities if why == "unproven"}
        assert not unproven & set(record.identities)
        if record.dataset == "crm":
            assert not unproven


KEY_HASH = "0" * 64
CONNECTIONS = f"""\
connections:
  site: {{kind: client, datasets: [crm, web], origins: ["*"]}}
  sync: {{kind: server, datasets: [crm, web], api_key_sha256: "{KEY_HASH}", trusted: true}}
  other: {{kind: server, datasets: [crm], api_key_sha256: "{KEY_HASH}"}}
"""


@pytest.mark.parametrize(
    "dataset, connection, linked",
    [
        ("crm", None, True),  # straight to Pub/Sub: the dataset decides
        ("crm", "sync", True),
        ("crm", "other", False),  # a server connection not marked trusted
        ("crm", "site", False),  # a public connection: never trusted
        ("crm", "no-such-connection", False),
        ("web", "sync", False),  # a connection adds no trust a dataset lacks
    ],
)
def test_what_the_service_sent_is_trusted_as_far_as_its_connection(
    tmp_path, dataset, connection, linked
):
    catalog = Catalog.load(gs.write_catalog(tmp_path, CATALOG + CONNECTIONS))
    attributes = {} if connection is None else {"connectionId": connection}
    payload, _ = message(dataset, "m1", 1, entry(ATTACKER, primary=True), entry(VICTIM))
    record = RecordParser(catalog).parse(payload, attributes)
    assert (VICTIM in record.identities) is linked
    assert bool(record.refused_identities) is not linked


def test_a_client_connection_is_never_trusted(tmp_path):
    text = CATALOG + CONNECTIONS.replace('origins: ["*"]}', 'origins: ["*"], trusted: true}')
    with pytest.raises(CatalogError, match="never 'trusted'"):
        Catalog.load(gs.write_catalog(tmp_path, text))
