"""The unified profile of a graph (domain/unified_profile.py), from real records written as
cells into a plain dict laid out as the profile table and read back with the layout's
readers: against a plain oracle, by hand, and through merges and splits.
"""

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.identity_graph import IdentityRules
from tests.domain import graph_oracles as go
from tests.domain import graph_strategies as gs

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RULES = IdentityRules(("CRMID", "Email", "Phone", "ECID"), frozenset({"CRMID"}))
TIMESTAMP = ()
PRECEDENCE = ("loyalty", "crm")


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    return gs.load_parser(tmp_path_factory.mktemp("catalog"))


def iso(offset_us):
    return gs.iso_of(gs.BASE_US + offset_us)


# 4. The profile equals a plain oracle computed from the generated records.


@pytest.mark.parametrize(
    "policy", gs.POLICIES, ids=["timestamp", "loyalty>crm", "crm>rest", "loyalty>rest"]
)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    records=gs.record_sets(max_size=12),
    rules=gs.rules_strategy(),
    max_events=st.sampled_from([2, 20]),
)
def test_profile_is_the_plain_merge_of_its_fragments(parser, policy, records, rules, max_events):
    table = gs.ingest_specs(parser, records)
    facts = gs.stored_facts(records)
    graphs = go.oracle_graphs(facts, rules)
    for start in gs.POOL:
        found = gs.lookup(table, start, rules, policy, max_events)
        assert found.graph.identities == graphs.graph(start)
        assert found.profile == go.oracle_profile(graphs.graph(start), facts, policy, max_events), (
            start
        )


# By hand: one person's three fragments under both policies.


def ada_records():
    return [
        gs.Spec(
            "crm-1",
            "crm",
            (("Email", "ada@x.org"),),
            attributes=(("/person/firstName", "Ada"), ("/loyalty/tier", "silver")),
            offset_us=1_000,
        ),
        gs.Spec(
            "loy-1",
            "loyalty",
            (("Email", "ada@x.org"), ("CRMID", "C1")),
            primary=1,
            attributes=(("/loyalty/tier", "gold"), ("/loyalty/points", 10)),
            offset_us=2_000,
        ),
        gs.Spec(
            "crm-2",
            "crm",
            (("ECID", "11"), ("Email", "ada@x.org")),
            attributes=(("/person/firstName", "Adelaide"), ("/loyalty/tier", "platinum")),
            offset_us=3_000,
        ),
        gs.Spec("web-1", "web", (("ECID", "11"),), event_type="click", offset_us=4_000),
        gs.Spec("web-2", "web", (("CRMID", "C1"), ("ECID", "11")), offset_us=500),
    ]


def attribute(value, dataset, offset_us, identity):
    return {"value": value, "dataset": dataset, "time": iso(offset_us), "identity": list(identity)}


ADA = ("Email", "ada@x.org")
C1 = ("CRMID", "C1")
ECID_11 = ("ECID", "11")


def test_by_hand_timestamp_policy(parser):
    table = gs.ingest_specs(parser, ada_records())
    profile = gs.lookup(table, ECID_11, RULES, TIMESTAMP).profile
    assert profile["identities"] == [
        {"namespace": "CRMID", "id": "C1"},
        {"namespace": "ECID", "id": "11"},
        {"namespace": "Email", "id": "ada@x.org"},
    ]
    assert profile["attributes"] == {
        "/loyalty/points": attribute(10, "loyalty", 2_000, C1),
        "/loyalty/tier": attribute("platinum", "crm", 3_000, ECID_11),
        "/loyaltyId": attribute("C1", "loyalty", 2_000, C1),
        "/person/firstName": attribute("Adelaide", "crm", 3_000, ECID_11),
    }
    assert [(e["_id"], e["time"], e["eventType"]) for e in profile["events"]] == [
        ("web-1", iso(4_000), "click"),
        ("web-2", iso(500), "view"),
    ]  # time to the µs


def test_by_hand_dataset_precedence(parser):
    table = gs.ingest_specs(parser, ada_records()[::-1])
    profile = gs.lookup(table, ADA, RULES, PRECEDENCE).profile
    assert profile["attributes"] == {
        "/loyalty/points": attribute(10, "loyalty", 2_000, C1),
        "/loyalty/tier": attribute("gold", "loyalty", 2_000, C1),  # loyalty first
        "/loyaltyId": attribute("C1", "loyalty", 2_000, C1),
        "/person/firstName": attribute("Adelaide", "crm", 3_000, ECID_11),  # newest of crm
    }


def test_a_create_resets_only_its_own_fragment(parser):
    """A create on ECID 11 replaces what 11's own records said; Ada's email fragment keeps
    its attributes, and they now win where 11's are gone."""
    create = gs.Spec(
        "crm-3",
        "crm",
        (("ECID", "11"),),
        operation="create",
        attributes=(("/person/lastName", "Lovelace"),),
        offset_us=5_000,
    )
    table = gs.ingest_specs(parser, ada_records() + [create])
    profile = gs.lookup(table, ADA, RULES, TIMESTAMP).profile
    assert profile["attributes"] == {
        "/loyalty/points": attribute(10, "loyalty", 2_000, C1),
        "/loyalty/tier": attribute("gold", "loyalty", 2_000, C1),
        "/loyaltyId": attribute("C1", "loyalty", 2_000, C1),
        "/person/firstName": attribute("Ada", "crm", 1_000, ADA),
        "/person/lastName": attribute("Lovelace", "crm", 5_000, ECID_11),
    }
    # The create keeps 11's links and events.
    assert len(profile["identities"]) == 3 and len(profile["events"]) == 2


def test_a_delete_hides_its_fragments_records_and_the_events_before_it(parser):
    """A delete of ECID 11 at 4.2 ms: 11's records before it go, and its events before it
    by order key, to the µs (web-1 at 4.0 ms goes; web-3 at 4.6 ms, in the same
    millisecond but after it, stays, as does web-4 at 5 ms); 11's links before it go too,
    so 11 stands alone; C1's events (web-2, which also named 11, and web-5) stay with C1."""
    delete = gs.Spec("del-11", "crm", (("ECID", "11"),), operation="delete", offset_us=4_200)
    later = [
        gs.Spec("web-3", "web", (("ECID", "11"),), offset_us=4_600),
        gs.Spec("web-4", "web", (("ECID", "11"),), offset_us=5_000),
        gs.Spec("web-5", "web", (("CRMID", "C1"),), offset_us=1_000),
    ]
    table = gs.ingest_specs(parser, ada_records() + [delete] + later)
    eleven = gs.lookup(table, ECID_11, RULES, TIMESTAMP).profile
    assert eleven["identities"] == [{"namespace": "ECID", "id": "11"}]
    assert eleven["attributes"] == {}
    assert [e["_id"] for e in eleven["events"]] == ["web-4", "web-3"]
    ada = gs.lookup(table, ADA, RULES, TIMESTAMP).profile
    assert [(i["namespace"], i["id"]) for i in ada["identities"]] == [C1, ADA]
    assert ada["attributes"]["/loyalty/tier"] == attribute("gold", "loyalty", 2_000, C1)
    assert ada["attributes"]["/person/firstName"] == attribute("Ada", "crm", 1_000, ADA)
    assert [e["_id"] for e in ada["events"]] == ["web-5", "web-2"]


def test_an_event_and_a_delete_at_the_same_microsecond_are_ordered_by_their_keys(parser):
    """An event and a delete of its identity at the very same time: the event is hidden
    when its order key (time, tie-break) is before the delete's, shown when after; both
    sides are seen over a few tie-breaks."""
    outcomes = set()
    for salt in "abcdefgh":
        event = gs.Spec(f"web-{salt}", "web", (ECID_11,), offset_us=1_000)
        delete = gs.Spec(f"del-{salt}", "crm", (ECID_11,), operation="delete", offset_us=1_000)
        after = gs.facts_of(event).order > gs.facts_of(delete).order
        outcomes.add(after)
        for order in ([event, delete], [delete, event]):
            profile = gs.lookup(gs.ingest_specs(parser, order), ECID_11, RULES).profile
            assert [e["_id"] for e in profile["events"]] == ([f"web-{salt}"] if after else [])
    assert outcomes == {True, False}


def test_max_events_keeps_the_newest(parser):
    events = [gs.Spec(f"e{n}", "web", (("ECID", "11"),), offset_us=n * 1_000) for n in range(6)]
    table = gs.ingest_specs(parser, events[::-1])
    profile = gs.lookup(table, ECID_11, RULES, TIMESTAMP, max_events=4).profile
    assert [e["_id"] for e in profile["events"]] == ["e5", "e4", "e3", "e2"]


# 5. Merges and splits.

POOL_A = (("CRMID", "C1"), ("ECID", "11"), ("Phone", "+441"))  # anchor first
POOL_B = (("Email", "ada@x.org"), ("ECID", "22"), ("Phone", "+442"))
BRIDGE = ("ECID", "33")


@st.composite
def person_records(draw, pool, prefix):
    """Records of one person: each carries the anchor identity (so they form one graph),
    merges and creates only (no delete splits them)."""
    anchor, others = pool[0], pool[1:]
    records = []
    for n in range(draw(st.integers(1, 5))):
        identities = [anchor] + draw(st.lists(st.sampled_from(others), unique=True))
        datasets = gs.DATASETS if anchor[0] == "CRMID" else ("crm", "web")
        dataset = draw(st.sampled_from(datasets))
        if dataset == "loyalty":
            primary = 0
        else:
            primary = draw(st.integers(0, len(identities) - 1))
        kind = "event" if dataset == gs.EVENT_DATASET else "profile"
        records.append(
            gs.Spec(
                f"{prefix}{n}",
                dataset,
                tuple(identities),
                primary=primary,
                operation="merge"
                if kind == "event"
                else draw(st.sampled_from(["merge", "merge", "create"])),
                offset_us=draw(st.sampled_from(gs.OFFSETS_US)),
                attributes=draw(gs.attribute_lists()) if kind == "profile" else (),
                placement=draw(st.sampled_from(["entity", "xdmMeta", "bare"])),
            )
        )
    return records


def rank(policy, attribute_):
    """What the profile shows of an attribute's rank: dataset position, then time (to the
    µs). Two equal ranks may still differ by tie-break, which the profile does not show."""
    position = (
        (policy.index(attribute_["dataset"]) if attribute_["dataset"] in policy else len(policy))
        if policy
        else 0
    )
    return (-position, datetime.datetime.fromisoformat(attribute_["time"]))


def newest_first(event):
    """The documented order of a profile's events: newest first, then by the record's
    tie-break (equal times), then `_id`."""
    time_ = datetime.datetime.fromisoformat(event["time"])
    return (-gs.micros_of(time_), gs.tiebreak(event["dataset"], event["event"]), event["_id"])


def ends_of(data, a, b):
    """One identity that each part's records carry."""
    return tuple(
        data.draw(st.sampled_from(sorted({i for r in part for i in r.identities})))
        for part in (a, b)
    )


@SETTINGS
@given(
    data=st.data(),
    a=person_records(POOL_A, "a"),
    b=person_records(POOL_B, "b"),
    policy=st.sampled_from(gs.POLICIES),
    offset=st.sampled_from(gs.OFFSETS_US),
)
def test_a_record_linking_two_graphs_shows_their_union_at_once(parser, data, a, b, policy, offset):
    ends = ends_of(data, a, b)
    table = gs.ingest_specs(parser, a + b)
    one = gs.lookup(table, POOL_A[0], RULES, policy).profile
    two = gs.lookup(table, POOL_B[0], RULES, policy).profile
    ids_a = {(i["namespace"], i["id"]) for i in one["identities"]}
    ids_b = {(i["namespace"], i["id"]) for i in two["identities"]}
    assert not ids_a & ids_b
    bridge = gs.Spec("bridge", "crm", ends, primary=0, offset_us=offset)  # no attributes
    table = gs.ingest_specs(parser, [bridge], table)
    for start in sorted(ids_a | ids_b):
        merged = gs.lookup(table, start, RULES, policy).profile
        assert {(i["namespace"], i["id"]) for i in merged["identities"]} == ids_a | ids_b
        attributes = merged["attributes"]
        assert set(attributes) == set(one["attributes"]) | set(two["attributes"])
        for pointer, shown in attributes.items():
            mine, theirs = one["attributes"].get(pointer), two["attributes"].get(pointer)
            assert shown in (mine, theirs)
            if mine is None or theirs is None:
                assert shown == (mine or theirs)
            elif rank(policy, mine) != rank(policy, theirs):
                assert shown == max(mine, theirs, key=lambda x: rank(policy, x))
        union = sorted(one["events"] + two["events"], key=newest_first)
        assert merged["events"] == union[:20]


@st.composite
def bridge_times(draw):
    """(time of the link to part a, of the link to part b, of the delete): the delete last."""
    delete = draw(st.sampled_from(gs.OFFSETS_US[1:]))
    before = [t for t in gs.OFFSETS_US if t < delete]
    return draw(st.sampled_from(before)), draw(st.sampled_from(before)), delete


@SETTINGS
@given(
    data=st.data(),
    a=person_records(POOL_A, "a"),
    b=person_records(POOL_B, "b"),
    policy=st.sampled_from(gs.POLICIES),
    times=bridge_times(),
    delete_first=st.booleans(),
)
def test_a_delete_of_the_bridge_splits_the_graph_back_into_its_parts(
    parser, data, a, b, policy, times, delete_first
):
    """Two people's records, and two records of a third identity, one linking it to an
    identity of each: one graph. A later delete of that third identity undoes its links:
    each part is again exactly what its own records make, in graph and in profile."""
    ends = ends_of(data, a, b)
    to_a, to_b, delete_time = times
    bridges = [
        gs.Spec(
            "bridge-a",
            "crm",
            (BRIDGE, ends[0]),
            primary=0,
            attributes=(("/person/firstName", "Bridget"),),
            offset_us=to_a,
        ),
        gs.Spec("bridge-b", "web", (BRIDGE, ends[1]), primary=0, offset_us=to_b),
    ]
    delete = gs.Spec("bridge-delete", "crm", (BRIDGE,), operation="delete", offset_us=delete_time)
    joined = gs.ingest_specs(parser, a + b + bridges)
    everyone = gs.lookup(joined, BRIDGE, RULES, policy).graph.identities
    assert set(POOL_A[:1] + POOL_B[:1] + ends) <= everyone, everyone
    split = gs.ingest_specs(
        parser,
        ([delete] if delete_first else []) + a + b + bridges + ([] if delete_first else [delete]),
    )
    alone = {"a": gs.ingest_specs(parser, a), "b": gs.ingest_specs(parser, b)}
    for part, pool in (("a", POOL_A), ("b", POOL_B)):
        for start in pool:
            got = gs.lookup(split, start, RULES, policy)
            expected = gs.lookup(alone[part], start, RULES, policy)
            assert got.graph.identities == expected.graph.identities, start
            assert got.profile == expected.profile, start
    bridge_alone = gs.lookup(split, BRIDGE, RULES, policy)
    assert bridge_alone.graph.identities == {BRIDGE}
    assert bridge_alone.profile["attributes"] == {} and bridge_alone.profile["events"] == []


def test_a_delete_undoes_the_deleted_identitys_pairs_not_the_others_of_its_records(parser):
    """A record linking three identities makes three pairs; a later delete of one of them
    undoes its two pairs, and the pair of the other two, which it is not part of, holds
    (the rule is per pair: "one older than a delete of either of its identities")."""
    record = gs.Spec(
        "three",
        "crm",
        (BRIDGE, ("CRMID", "C1"), ("Email", "ada@x.org")),
        primary=0,
        offset_us=1_000,
    )
    delete = gs.Spec("del", "crm", (BRIDGE,), operation="delete", offset_us=2_000)
    table = gs.ingest_specs(parser, [record, delete])
    assert gs.lookup(table, BRIDGE, RULES).graph.identities == {BRIDGE}
    assert gs.lookup(table, ADA, RULES).graph.identities == {ADA, C1}


# 5. What a delete makes irrelevant is listed, not gone without a word (issue #17).


def test_what_a_delete_made_irrelevant_is_listed_for_the_explain_view():
    from domain.merge import MergePolicy, OrderKey
    from domain.profile_table import StoredEvent, StoredRecord
    from domain.unified_profile import Fragment, unified_profile

    def record(time_us, operation, record_id, points):
        return StoredRecord(
            OrderKey(time_us, record_id), "crm", operation, [["/points", points]], record_id
        )

    def event(time_us, event_id):
        return StoredEvent(
            f"{-time_us}".encode(), OrderKey(time_us, event_id), "web", {"_id": event_id}
        )

    email = ("Email", "ada@example.com")
    fragment = Fragment(
        records=(
            record(3_000_000, "merge", "after", 3),
            record(1_000_000, "merge", "before", 1),
            record(2_000_000, "delete", "the-delete", None),
        ),
        events=(event(500_000, "old-event"), event(4_000_000, "new-event")),
    )
    profile = unified_profile([email], {email: fragment}, MergePolicy(()))
    assert profile["attributes"]["/points"]["value"] == 3
    assert [e["_id"] for e in profile["events"]] == ["new-event"]
    (removed,) = profile["removed_by_delete"]
    assert removed["identity"] == list(email) and removed["events"] == 1
    assert removed["deleted_at"].startswith("1970-01-01T00:00:02")
    assert [r["_id"] for r in removed["records"]] == ["before"]
    untouched = unified_profile(
        [email], {email: Fragment(records=fragment.records[:2])}, MergePolicy(())
    )
    assert untouched["removed_by_delete"] == []
