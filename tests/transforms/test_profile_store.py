"""transforms/profile_store.py: WriteProfiles on Beam's TestStream against the real
Bigtable emulator, read back with domain/profile_lookup.read_profile.

The table must hold exactly the records' fragments (domain/profile_writes.fragment_cells),
whatever the order and however often a record is redelivered, equal times included; a
lookup by every identity of a person must give one and the same unified profile, the one
the pure merge gives over the cells; a refused primary must write nothing.
The lookup's bounds: test_profile_lookup_bounds.py.
"""

import random

import pytest

from domain import merge
from domain.parsing import RecordParser
from domain.profile_lookup import graph_summary, read_profile
from helpers.profile_streams import profile_record, sample_stream
from tests.domain import graph_strategies as gs
from tests.transforms.emulator_writes import (
    cells_of,
    crm_record,
    expected_cells,
    identities_of,
    parse_all,
    web_event,
    write,
)

pytestmark = pytest.mark.integration

ADA = ("Email", "ada@example.com")
ADA_ECID = ("ECID", "71093246781113257349180312436890116545")
ADA_CRMID = ("CRMID", "CRM-000815")


def profiles_by_identity(table, catalog, identities):
    return {identity: read_profile(table, catalog, *identity) for identity in identities}


def without_lookup(profile):
    """The profile but what the lookup read (which depends on where it started)."""
    return {k: v for k, v in profile.items() if k != "lookup"}


@pytest.fixture(scope="module")
def sample(emulators, catalog):
    """The sample stream written once, in one bundle (so that its counters are whole):
    (records, table, cells, counters)."""
    records = sample_stream(catalog)
    table, counters = write(records, catalog, bundle=len(records))
    return records, table, cells_of(table), counters


def test_the_table_holds_exactly_the_records_fragments(sample, catalog):
    records, _, cells, counters = sample
    assert cells == expected_cells(records, catalog)
    stored = [r for r in records if r.feeds_profile]
    assert counters["profiles/merge"] == sum(r.operation == "merge" for r in stored)
    assert counters["profiles/create"] == counters["profiles/delete"] == 1
    families = {family for row in cells.values() for family in row}
    assert families == {"rec", "link", "del", "events_90d"}


def test_every_identity_of_a_person_finds_one_and_the_same_profile(sample, catalog):
    _, table, cells, _ = sample
    profiles = profiles_by_identity(table, catalog, identities_of(cells))
    for start, profile in profiles.items():
        members = [(i["namespace"], i["id"]) for i in profile["identities"]]
        assert start in members
        for member in members:
            assert without_lookup(profiles[member]) == without_lookup(profile), (start, member)
        # What the pure functions give over the cells, walked without bounds.
        pure = gs.lookup(cells, start, catalog.identity_rules, catalog.dataset_precedence)
        assert {
            k: profile[k] for k in ("attributes", "identities", "events", "removed_by_delete")
        } == pure.profile
        assert profile["graph"] == graph_summary(pure.graph)
        assert profile["lookup"]["complete"] is True


def test_ada_by_every_identity(sample, catalog):
    _, table, _, _ = sample
    for identity in (ADA, ADA_ECID, ADA_CRMID):
        ada = read_profile(table, catalog, *identity)
        assert [(i["namespace"], i["id"]) for i in ada["identities"]] == [ADA_CRMID, ADA_ECID, ADA]
        attributes = {p: a["value"] for p, a in ada["attributes"].items()}
        assert attributes["/loyalty/points"] == 1650  # the newest of her three records
        assert attributes["/homeAddress/city"] == "Cambridge"
        assert attributes["/mobilePhone/number"] == "+447700900815"  # only the second had it
        assert not [p for p in attributes if p.startswith(("/_id", "/_repo", "/identityMap"))]
        points = ada["attributes"]["/loyalty/points"]
        assert (points["dataset"], points["identity"]) == ("crm-profiles", list(ADA))
        assert points["time"] == "2026-11-09T16:30:00+00:00"
        # Her events, whichever identity keyed them: ECID (1, 2) or Email (3, 4, 5).
        assert [e["_id"] for e in ada["events"]] == [f"evt-ada-000{n}" for n in (5, 4, 3, 2, 1)]
        assert ada["lookup"]["complete"] is True


def tiebreak_of(catalog, record_id, tier):
    record = RecordParser(catalog).parse(
        profile_record(
            record_id, "2026-11-20T00:00:00Z", "grace@example.com", loyalty={"tier": tier}
        )
    )
    return merge.order_key(0, record.dataset, record.entity).tiebreak


def test_equal_times_creates_and_deletes(sample, catalog):
    _, table, _, _ = sample
    grace = read_profile(table, catalog, "Email", "grace@example.com")
    winner = max(
        [("tie-1", "silver"), ("tie-2", "platinum")], key=lambda t: tiebreak_of(catalog, *t)
    )
    assert grace["attributes"]["/loyalty/tier"]["value"] == winner[1]

    # A create replaces what Alan's Email had; a later merge adds to it. Exactly these:
    # no record metadata.
    alan = read_profile(table, catalog, "Email", "alan@example.com")
    assert {p: a["value"] for p, a in alan["attributes"].items()} == {
        "/person/name/firstName": "Alan",
        "/loyalty/points": 7,
    }
    # A delete removes what came before it; the record after it starts anew.
    gone = read_profile(table, catalog, "Email", "gone@example.com")
    assert {p: a["value"] for p, a in gone["attributes"].items()} == {"/loyalty/points": 3}


def test_order_and_redelivery_change_no_cell_and_no_profile(emulators, catalog, sample):
    records, _, in_order, _ = sample
    expected = profiles_by_identity(sample[1], catalog, identities_of(in_order))
    for seed in (1, 2):
        rng = random.Random(seed)
        shuffled = records + rng.sample(records, len(records) // 3)  # redeliveries
        rng.shuffle(shuffled)
        table, counters = write(shuffled, catalog, bundle=rng.choice([1, 3, 7]))
        assert cells_of(table) == in_order  # every cell, its value and its time
        got = profiles_by_identity(table, catalog, identities_of(in_order))
        assert {i: without_lookup(p) for i, p in got.items()} == {
            i: without_lookup(p) for i, p in expected.items()
        }


def test_writing_within_a_bundle_leaves_the_same_cells(emulators, catalog, sample, monkeypatch):
    from transforms import profile_store

    records, _, in_order, _ = sample
    monkeypatch.setattr(profile_store, "MAX_ROWS_UNWRITTEN", 2)
    table, _ = write(records, catalog, bundle=len(records))
    assert cells_of(table) == in_order


def test_a_refused_primary_writes_nothing_and_is_counted(emulators, catalog):
    payloads = [
        # An anonymous primary: the accepted ECID is not linked either.
        crm_record("r1", "2026-11-02T08:00:00Z", ("Email", "anonymous"), ("ECID", "111")),
        # The catalog's own pattern, on an event.
        web_event("e1", "2026-11-02T08:00:00Z", ("Email", "Test@Example.com"), ("ECID", "111")),
        # An all-zero device, with a refused email beside it.
        web_event("e2", "2026-11-02T08:00:01Z", ("ECID", "0000-0000"), ("Email", "null")),
    ]
    refused = parse_all(catalog, payloads)
    assert [r.primary_identity for r in refused] == [None, None, None]
    table, counters = write(refused, catalog, bundle=3)
    assert cells_of(table) == {}
    assert counters["profiles/primary_identity_refused"] == 3
    assert counters["identity_refused/blocked"] == 4
    assert "profiles/merge" not in counters

    # Beside a good record, in the same bundles: only the good one is written.
    good = parse_all(catalog, [crm_record("r2", "2026-11-02T09:00:00Z", ("Email", "a@x.org"))])
    table, counters = write(refused + good, catalog, bundle=4)
    assert cells_of(table) == expected_cells(good, catalog)
    assert identities_of(cells_of(table)) == [("Email", "a@x.org")]
    assert counters["profiles/primary_identity_refused"] == 3 and counters["profiles/merge"] == 1
    table, _ = write(good + refused, catalog, bundle=1)  # in bundles of their own
    assert cells_of(table) == expected_cells(good, catalog)
    assert read_profile(table, catalog, "ECID", "111") is None
    assert read_profile(table, catalog, "Email", "anonymous") is None


def test_a_refused_identity_beside_an_accepted_primary_is_not_linked(emulators, catalog):
    records = parse_all(
        catalog,
        [
            crm_record(
                "r1",
                "2026-11-02T08:00:00Z",
                ("Email", "a@x.org"),
                ("ECID", "undefined"),
                loyalty={"points": 1},
            ),
            web_event(
                "e1", "2026-11-02T08:00:01Z", ("ECID", "222"), ("Email", "a@x.org"), ("Phone", "0")
            ),
        ],
    )
    table, counters = write(records, catalog, bundle=2)
    assert identities_of(cells_of(table)) == [("ECID", "222"), ("Email", "a@x.org")]
    assert counters["identity_refused/blocked"] == 2
    profile = read_profile(table, catalog, "ECID", "222")
    assert [(i["namespace"], i["id"]) for i in profile["identities"]] == [
        ("ECID", "222"),
        ("Email", "a@x.org"),
    ]
    assert {p: a["value"] for p, a in profile["attributes"].items()} == {"/loyalty/points": 1}
    assert [e["_id"] for e in profile["events"]] == ["e1"]


def test_an_identity_whose_every_link_a_rule_dropped_still_has_its_profile(emulators, catalog):
    """Two Emails on one CRMID (Email is unique in the example catalog): the older email's
    only link is dropped. Something is stored of it (that link), so its lookup is its own
    graph, with the dropped link shown, not "nothing stored"."""
    records = parse_all(
        catalog,
        [
            crm_record("r1", "2026-11-02T08:00:00Z", ("CRMID", "C1"), ("Email", "old@x.org")),
            crm_record("r2", "2026-11-03T08:00:00Z", ("CRMID", "C1"), ("Email", "new@x.org")),
        ],
    )
    table, _ = write(records, catalog)
    assert read_profile(table, catalog, "Email", "new@x.org")["identities"] == [
        {"namespace": "CRMID", "id": "C1"},
        {"namespace": "Email", "id": "new@x.org"},
    ]
    old = read_profile(table, catalog, "Email", "old@x.org")
    assert old is not None, "read_profile says nothing is stored of an identity with a link"
    assert old["identities"] == [{"namespace": "Email", "id": "old@x.org"}]
    assert [(d["to"], d["rule"]) for d in old["graph"]["dropped"]] == [
        (["Email", "old@x.org"], "unique_namespace")
    ]
