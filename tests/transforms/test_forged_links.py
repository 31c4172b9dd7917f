"""Issue 17's forged link through WriteProfiles into the Bigtable emulator, read back with
domain/profile_lookup: the victim's profile is untouched and unreachable from the
attacker's device; the dropped link is counted and shown by `ingest identity get`."""

import types

import pytest

from domain.catalog import Catalog
from domain.identity_proof import identity_proof
from domain.parsing import RecordParser
from domain.profile_lookup import read_identity_graph, read_profile
from ingest.commands.identity import graph_text
from tests.domain import graph_strategies as gs
from tests.domain import test_identity_proof as tp
from tests.transforms.emulator_writes import write

pytestmark = pytest.mark.integration


@pytest.fixture
def trust_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv(tp.ENV, tp.SECRET)
    return Catalog.load(gs.write_catalog(tmp_path, tp.CATALOG))


def parsed(catalog, messages):
    parser = RecordParser(catalog)
    return [parser.parse(*m) for m in messages]


def without_lookup(profile):
    return {k: v for k, v in profile.items() if k != "lookup"}


def test_a_forged_link_in_bigtable(emulators, trust_catalog):
    catalog = trust_catalog
    honest, _ = write(parsed(catalog, tp.victim_messages()), catalog, bundle=2)
    records = parsed(catalog, tp.victim_messages() + [tp.forged()])
    table, counters = write(records, catalog, bundle=len(records))
    assert counters["identity_refused/unproven"] == 1

    victim = read_profile(table, catalog, *tp.VICTIM)
    assert without_lookup(victim) == without_lookup(read_profile(honest, catalog, *tp.VICTIM))
    assert victim["graph"]["dropped"] == []

    attacker = read_profile(table, catalog, *tp.ATTACKER)
    assert attacker["identities"] == [{"namespace": "ECID", "id": "attacker-device"}]
    assert attacker["attributes"] == {}
    assert [e["_id"] for e in attacker["events"]] == ["x1"]

    graph = read_identity_graph(table, catalog.identity_rules, *tp.ATTACKER)
    assert graph["links"] == []
    assert [(d["from"], d["to"], d["rule"]) for d in graph["dropped"]] == [
        (list(tp.ATTACKER), list(tp.VICTIM), "unproven")
    ]
    args = types.SimpleNamespace(namespace=tp.ATTACKER[0], id=tp.ATTACKER[1])
    assert "unproven" in graph_text(args, graph) and "without a valid proof" in graph_text(
        args, graph
    )


def test_a_signed_link_and_an_unproven_primary_in_bigtable(emulators, trust_catalog):
    catalog = trust_catalog
    proof = identity_proof(tp.SECRET, *tp.VICTIM)
    unproven_primary = tp.message(
        "loyalty",
        "l1",
        4,
        tp.entry(tp.VICTIM, primary=True),
        tp.entry(tp.ATTACKER),
        attributes="Forged",
    )
    records = parsed(catalog, tp.victim_messages() + [tp.forged(proof), unproven_primary])
    table, counters = write(records, catalog, bundle=len(records))
    assert counters["profiles/primary_identity_refused"] == 1  # lake only
    assert "identity_refused/unproven" in counters
    attacker = read_profile(table, catalog, *tp.ATTACKER)
    assert [i["id"] for i in attacker["identities"]] == [
        "attacker-device",
        "victim-phone",
        "victim@example.com",
    ]
    assert attacker["attributes"]["/person/name"]["value"] == "Victim"  # not "Forged"
