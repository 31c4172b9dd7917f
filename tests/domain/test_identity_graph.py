"""The identity graph (domain/identity_graph.py) from real records: payloads parsed by
RecordParser, written as cells with fragment_cells into a plain dict laid out as the
profile table, read back with the layout's readers and resolved.

Properties over a small universe (few ids per namespace, few times: collisions and equal
times are common), then the guardrails by example: the shared device, the 50 cap, equal
times ordered by namespace priority, deletes.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.identity_graph import DELETED, MAX_IDENTITIES, UNIQUE_NAMESPACE, IdentityRules, resolve
from domain.profile_table import identity_of_row_key, row_key
from tests.domain import graph_oracles as go
from tests.domain import graph_strategies as gs

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RULES_OF_CATALOG = IdentityRules(("CRMID", "Email", "Phone", "ECID"), frozenset({"CRMID"}))


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    return gs.load_parser(tmp_path_factory.mktemp("catalog"))


def lookups(table, rules, policy=(), max_events=20):
    return {identity: gs.lookup(table, identity, rules, policy, max_events) for identity in gs.POOL}


# 1. The same set of records, in any order and however often delivered: same cells, same
# graphs, same profiles.


@SETTINGS
@given(
    data=st.data(),
    records=gs.record_sets(),
    rules=gs.rules_strategy(),
    policy=st.sampled_from(gs.POLICIES),
)
def test_order_and_redeliveries_change_nothing(parser, data, records, rules, policy):
    first = gs.ingest_specs(parser, records)
    second = gs.ingest_specs(parser, data.draw(gs.deliveries(records)))
    assert second == first  # cell for cell
    for identity, expected in lookups(first, rules, policy).items():
        got = gs.lookup(second, identity, rules, policy)
        assert got.graph == expected.graph, identity
        assert got.profile == expected.profile, identity


# 2. Lookup by any identity of a graph gives the same graph and the same profile.


@SETTINGS
@given(records=gs.record_sets(), rules=gs.rules_strategy(), policy=st.sampled_from(gs.POLICIES))
def test_every_identity_of_a_graph_finds_the_same_graph_and_profile(parser, records, rules, policy):
    table = gs.ingest_specs(parser, records)
    for start, found in lookups(table, rules, policy).items():
        assert start in found.graph.identities
        for member in found.graph.identities:
            other = gs.lookup(table, member, rules, policy)
            assert other.graph == found.graph, (start, member)
            assert other.profile == found.profile, (start, member)


@SETTINGS
@given(records=gs.record_sets(), rules=gs.rules_strategy())
def test_more_links_than_those_reachable_do_no_harm(parser, records, rules):
    table = gs.ingest_specs(parser, records)
    links, deleted = gs.all_links(table)
    for start in gs.POOL:
        assert resolve(start, links, rules, deleted) == gs.lookup(table, start, rules).graph


# 3. Invariants.


@SETTINGS
@given(records=gs.record_sets(max_size=12), rules=gs.rules_strategy(caps=(2, 3, 4)))
def test_invariants(parser, records, rules):
    table = gs.ingest_specs(parser, records)
    found = {start: gs.lookup(table, start, rules) for start in gs.POOL}
    graphs = {start: f.graph for start, f in found.items()}
    for start, graph in graphs.items():
        members = graph.identities
        assert start in members
        # No graph holds two identities of a unique namespace, nor more than the cap.
        for namespace in rules.unique:
            assert len([i for i in members if i[0] == namespace]) <= 1, (namespace, members)
        assert len(members) <= rules.max_identities
        # Graphs are a partition: another identity's graph is this one or disjoint.
        for other in graphs.values():
            assert other.identities == members or not (other.identities & members)
        # Kept edges lie in the graph and connect it.
        reached, frontier = {start}, [start]
        while frontier:
            here = frontier.pop()
            for edge in graph.kept:
                assert edge.a in members and edge.b in members
                for one, two in ((edge.a, edge.b), (edge.b, edge.a)):
                    if one == here and two not in reached:
                        reached.add(two)
                        frontier.append(two)
        assert reached == members
        # Every dropped edge touches the graph, has a rule, and the rule holds.
        for edge, rule in graph.dropped:
            assert edge.a in members or edge.b in members
            order = (edge.link.time_us, edge.link.tiebreak)
            graph_a = gs.lookup(table, edge.a, rules).graph.identities
            graph_b = gs.lookup(table, edge.b, rules).graph.identities
            if rule == DELETED:
                _, deletes = gs.links_and_deletes(table, [edge.a, edge.b])
                assert any(order < d for d in deletes.values()), edge
            elif rule == UNIQUE_NAMESPACE:
                assert graph_a != graph_b
                union = graph_a | graph_b
                assert any(len([i for i in union if i[0] == n]) > 1 for n in rules.unique)
            else:
                assert rule == MAX_IDENTITIES, rule
                assert graph_a != graph_b
                assert len(graph_a) + len(graph_b) > rules.max_identities
        # Each pair of each link that touches the graph is either kept or dropped, once.
        decided = [(e.a, e.b, e.link) for e in graph.kept] + [
            (e.a, e.b, e.link) for e, _ in graph.dropped
        ]
        assert len(decided) == len(set(decided))
        touching = {
            (a, b, link)
            for link in found[start].links
            for a, b in itertools.combinations(sorted(set(link.identities)), 2)
            if a in members or b in members
        }
        assert set(decided) == touching


# The graph equals a plain replay of the records' links (sets, no union-find), computed
# from the generated records alone.


@SETTINGS
@given(records=gs.record_sets(max_size=12), rules=gs.rules_strategy())
def test_graph_is_the_plain_replay_of_the_records(parser, records, rules):
    table = gs.ingest_specs(parser, records)
    oracle = go.oracle_graphs(gs.stored_facts(records), rules)
    for start in gs.POOL:
        identities, kept, dropped = go.graph_as_plain(gs.lookup(table, start, rules).graph)
        assert identities == oracle.graph(start), start
        assert kept == oracle.kept(start), start
        assert dropped == oracle.dropped(start), start


# 5. Guardrails, by example and by property.


def sign_in(record_id, crmid, device, offset_us, email=None, dataset="crm"):
    identities = [("CRMID", crmid), ("ECID", device)] + ([("Email", email)] if email else [])
    return gs.Spec(record_id, dataset, tuple(identities), primary=0, offset_us=offset_us)


def test_shared_device_by_hand(parser):
    """Ada signs in on the kiosk at t=1ms, Bob at t=2ms: the kiosk is Bob's; then Ada
    again at t=3ms: it is hers. Never one graph of both."""
    ada = sign_in("ada-1", "C1", "kiosk", 1_000, email="ada@x.org")
    bob = sign_in("bob-1", "C2", "kiosk", 2_000, email="bob@x.org")
    table = gs.ingest_specs(parser, [bob, ada])
    kiosk = gs.lookup(table, ("ECID", "kiosk"), RULES_OF_CATALOG).graph
    assert kiosk.identities == {("ECID", "kiosk"), ("CRMID", "C2"), ("Email", "bob@x.org")}
    assert gs.lookup(table, ("CRMID", "C1"), RULES_OF_CATALOG).graph.identities == {
        ("CRMID", "C1"),
        ("Email", "ada@x.org"),
    }
    # Ada's link to the kiosk is refused by the unique rule; Ada's email stays hers.
    refused = {(e.a, e.b): rule for e, rule in kiosk.dropped}
    assert refused[(("CRMID", "C1"), ("ECID", "kiosk"))] == UNIQUE_NAMESPACE
    assert refused[(("ECID", "kiosk"), ("Email", "ada@x.org"))] == UNIQUE_NAMESPACE

    table = gs.ingest_specs(parser, [sign_in("ada-2", "C1", "kiosk", 3_000)], table)
    kiosk = gs.lookup(table, ("ECID", "kiosk"), RULES_OF_CATALOG).graph
    assert kiosk.identities == {("ECID", "kiosk"), ("CRMID", "C1"), ("Email", "ada@x.org")}
    assert gs.lookup(table, ("CRMID", "C2"), RULES_OF_CATALOG).graph.identities == {
        ("CRMID", "C2"),
        ("Email", "bob@x.org"),
    }


@SETTINGS
@given(data=st.data(), people=st.integers(2, 4), count=st.integers(2, 8))
def test_shared_device_follows_the_last_sign_in(parser, data, people, count):
    """Sign-ins of several people (each a CRMID, sometimes with their own email) on one
    device, at distinct times: the device's graph is the last one's; each other person's
    graph is their own CRMID and email; no graph holds two CRMIDs."""
    times = data.draw(
        st.lists(
            st.integers(0, 50).map(lambda t: t * 1000), min_size=count, max_size=count, unique=True
        )
    )
    who = data.draw(st.lists(st.integers(0, people - 1), min_size=count, max_size=count))
    with_email = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    records = [
        sign_in(f"s{n}", f"P{p}", "kiosk", t, email=f"p{p}@x.org" if e else None)
        for n, (p, t, e) in enumerate(zip(who, times, with_email, strict=True))
    ]
    table = gs.ingest_specs(parser, data.draw(st.permutations(records)))
    last = who[times.index(max(times))]

    def own(p):
        emails = {
            ("Email", f"p{p}@x.org") for q, e in zip(who, with_email, strict=True) if q == p and e
        }
        return {("CRMID", f"P{p}")} | emails

    assert gs.lookup(table, ("ECID", "kiosk"), RULES_OF_CATALOG).graph.identities == own(last) | {
        ("ECID", "kiosk")
    }
    for p in set(who) - {last}:
        graph = gs.lookup(table, ("CRMID", f"P{p}"), RULES_OF_CATALOG).graph.identities
        assert graph == own(p)
        for email in own(p) - {("CRMID", f"P{p}")}:
            assert gs.lookup(table, email, RULES_OF_CATALOG).graph.identities == own(p)


def hub_records(count, offsets):
    """One Email seen with `count` devices, each in a record of its own."""
    return [
        gs.Spec(f"h{n}", "crm", (("Email", "hub@x.org"), ("ECID", f"dev{n:02d}")), offset_us=offset)
        for n, offset in zip(range(count), offsets, strict=True)
    ]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_cap_of_50_drops_the_oldest_links(parser, data):
    """59 devices with one email (60 identities), default rules: the email's graph is the
    email and the 49 devices of the newest links; the other 10 stand alone; the same in any
    order."""
    offsets = data.draw(st.permutations([n * 1000 for n in range(59)]))
    records = hub_records(59, offsets)
    table = gs.ingest_specs(parser, data.draw(st.permutations(records)))
    rules = IdentityRules()
    assert rules.max_identities == 50
    newest = sorted(records, key=lambda r: r.offset_us, reverse=True)
    graph = gs.lookup(table, ("Email", "hub@x.org"), rules).graph
    assert graph.identities == {("Email", "hub@x.org")} | {r.identities[1] for r in newest[:49]}
    assert len(graph.identities) == 50
    assert sorted(e.a for e, rule in graph.dropped if rule == MAX_IDENTITIES) == sorted(
        r.identities[1] for r in newest[49:]
    )
    assert {rule for _, rule in graph.dropped} == {MAX_IDENTITIES}
    for record in newest[49:]:
        assert gs.lookup(table, record.identities[1], rules).graph.identities == {
            record.identities[1]
        }


def test_the_cap_at_one_time_keeps_the_first_by_tiebreak(parser):
    """All 59 links at one time: the replay order is the tie-break (the SHA-256 of the
    record), so the 49 smallest tie-breaks stay."""
    records = hub_records(59, [0] * 59)
    table = gs.ingest_specs(parser, records[::-1])
    graph = gs.lookup(table, ("Email", "hub@x.org"), IdentityRules()).graph
    by_tiebreak = sorted(records, key=lambda r: gs.facts_of(r).order[1])
    assert graph.identities == {("Email", "hub@x.org")} | {
        r.identities[1] for r in by_tiebreak[:49]
    }


@pytest.mark.parametrize(
    "priority, device_goes_to",
    [
        (("CRMID", "Email", "ECID"), "C1"),  # (CRMID, ECID) before (Email, ECID)
        (("Email", "CRMID", "ECID"), "C2"),  # (Email, ECID) before (CRMID, ECID)
    ],
)
@pytest.mark.parametrize("salt", ["a", "b", "c", "d"])  # other tie-breaks
def test_equal_times_are_ordered_by_namespace_priority(parser, priority, device_goes_to, salt):
    """At t=1ms the device is seen with CRMID C1 and, in another record, with an email that
    C2 holds since t=2ms. CRMID is unique, so one of the two links must go: the one of the
    lower-priority pair, whatever the tie-breaks."""
    records = [
        gs.Spec(f"bob-{salt}", "crm", (("CRMID", "C2"), ("Email", "bob@x.org")), offset_us=2_000),
        gs.Spec(f"one-{salt}", "crm", (("CRMID", "C1"), ("ECID", "11")), offset_us=1_000),
        gs.Spec(f"two-{salt}", "crm", (("Email", "bob@x.org"), ("ECID", "11")), offset_us=1_000),
    ]
    rules = IdentityRules(priority, frozenset({"CRMID"}))
    for order in itertools.permutations(records):
        table = gs.ingest_specs(parser, order)
        graph = gs.lookup(table, ("ECID", "11"), rules).graph
        expected = {("ECID", "11"), ("CRMID", device_goes_to)}
        if device_goes_to == "C2":
            expected.add(("Email", "bob@x.org"))
        assert graph.identities == expected
        assert [rule for _, rule in graph.dropped] == [UNIQUE_NAMESPACE]


def test_a_namespace_not_in_priority_comes_after_those_listed(parser):
    """(Phone, ECID) with Phone listed beats (Email, ECID) with Email unlisted, at one time."""
    records = [
        gs.Spec("p", "crm", (("CRMID", "C1"), ("Phone", "+441")), offset_us=5_000),
        gs.Spec("q", "crm", (("CRMID", "C2"), ("Email", "bob@x.org")), offset_us=5_000),
        gs.Spec("r", "crm", (("Phone", "+441"), ("ECID", "11")), offset_us=1_000),
        gs.Spec("s", "crm", (("Email", "bob@x.org"), ("ECID", "11")), offset_us=1_000),
    ]
    rules = IdentityRules(("CRMID", "Phone", "ECID"), frozenset({"CRMID"}))
    graph = gs.lookup(gs.ingest_specs(parser, records), ("ECID", "11"), rules).graph
    assert graph.identities == {("ECID", "11"), ("Phone", "+441"), ("CRMID", "C1")}


def test_a_delete_undoes_only_older_links(parser):
    """A delete of the email at t=2ms: the link of t=1ms goes (rule `deleted`); a link made
    after the delete holds; the delete's own identities are not linked."""
    old = gs.Spec("old", "crm", (("Email", "ada@x.org"), ("ECID", "11")), offset_us=1_000)
    delete = gs.Spec(
        "del",
        "crm",
        (("Email", "ada@x.org"), ("Phone", "+441")),
        operation="delete",
        offset_us=2_000,
    )
    new = gs.Spec("new", "crm", (("Email", "ada@x.org"), ("ECID", "22")), offset_us=3_000)
    table = gs.ingest_specs(parser, [new, delete, old])
    graph = gs.lookup(table, ("Email", "ada@x.org"), RULES_OF_CATALOG).graph
    assert graph.identities == {("Email", "ada@x.org"), ("ECID", "22")}
    assert [(e.a, e.b, rule) for e, rule in graph.dropped] == [
        (("ECID", "11"), ("Email", "ada@x.org"), DELETED)
    ]
    assert gs.lookup(table, ("ECID", "11"), RULES_OF_CATALOG).graph.identities == {("ECID", "11")}
    assert gs.lookup(table, ("Phone", "+441"), RULES_OF_CATALOG).graph.identities == {
        ("Phone", "+441")
    }


def test_a_delete_of_the_other_identity_also_undoes_the_link(parser):
    old = gs.Spec("old", "crm", (("Email", "ada@x.org"), ("ECID", "11")), offset_us=1_000)
    delete = gs.Spec("del", "crm", (("ECID", "11"),), operation="delete", offset_us=2_000)
    table = gs.ingest_specs(parser, [old, delete])
    graph = gs.lookup(table, ("Email", "ada@x.org"), RULES_OF_CATALOG).graph
    assert graph.identities == {("Email", "ada@x.org")}


@pytest.mark.parametrize(
    "operations", [("merge", "delete"), ("create", "delete"), ("merge", "create")]
)
def test_records_differing_only_in_operation_do_not_depend_on_order(parser, operations):
    """Two records of one dataset with the same entity and time but another operation (a
    sender's upsert, then its delete, stamped alike) are two records: the set of them must
    give the same cells, graph and profile in either order. With an older record on the
    same identity, so that a create's reset shows."""
    older = gs.Spec(
        "base",
        "crm",
        (("Email", "ada@x.org"),),
        attributes=(("/loyalty/tier", "gold"),),
        offset_us=0,
    )
    twins = [
        gs.Spec(
            "same",
            "crm",
            (("Email", "ada@x.org"), ("ECID", "11")),
            operation=op,
            attributes=(("/person/firstName", "Ada"),),
            offset_us=1_000,
        )
        for op in operations
    ]
    first = gs.ingest_specs(parser, [older] + twins)
    second = gs.ingest_specs(parser, [older] + twins[::-1])
    for start in (("Email", "ada@x.org"), ("ECID", "11")):
        one = gs.lookup(first, start, RULES_OF_CATALOG)
        two = gs.lookup(second, start, RULES_OF_CATALOG)
        assert (one.graph.identities, one.profile) == (two.graph.identities, two.profile)
    assert first == second


def test_a_delete_at_the_same_time_undoes_the_links_its_order_key_follows(parser):
    """A link and a delete of one of its identities at the same microsecond: the order key
    decides (the link goes when its tie-break is below the delete's), as it does for the
    fragment's records."""
    outcomes = set()
    for salt in "abcdefgh":
        link = gs.Spec(
            f"link-{salt}",
            "crm",
            (("Email", "ada@x.org"), ("ECID", "11")),
            attributes=(("/person/firstName", salt),),
            offset_us=1_000,
        )
        delete = gs.Spec(
            f"del-{salt}", "crm", (("Email", "ada@x.org"),), operation="delete", offset_us=1_000
        )
        after = gs.facts_of(link).order > gs.facts_of(delete).order
        outcomes.add(after)
        table = gs.ingest_specs(parser, [delete, link])
        found = gs.lookup(table, ("ECID", "11"), RULES_OF_CATALOG)
        assert (("Email", "ada@x.org") in found.graph.identities) == after, salt
        assert [rule for _, rule in found.graph.dropped] == ([] if after else [DELETED])
        assert ("/person/firstName" in found.profile["attributes"]) == after, salt
    assert outcomes == {True, False}  # both sides of the boundary were seen


@SETTINGS
@given(
    namespace=st.text(st.characters(exclude_categories=("Cs",)), min_size=1),
    identity_id=st.text(st.characters(exclude_categories=("Cs",))),
)
def test_row_keys_give_back_their_identity(namespace, identity_id):
    key = row_key(namespace, identity_id)
    assert identity_of_row_key(key) == (namespace, identity_id)


def test_records_differing_only_in_operation_leave_one_graph_for_all_its_identities(parser):
    """The same two records (a merge, then a delete of the same entity at the same time), in
    one table: a lookup by either identity must find the same graph."""
    twins = [
        gs.Spec(
            "same",
            "crm",
            (("Email", "ada@x.org"), ("ECID", "11")),
            operation=op,
            attributes=(("/person/firstName", "Ada"),),
            offset_us=1_000,
        )
        for op in ("merge", "delete")
    ]
    table = gs.ingest_specs(parser, twins)
    by_email = gs.lookup(table, ("Email", "ada@x.org"), RULES_OF_CATALOG).graph
    by_device = gs.lookup(table, ("ECID", "11"), RULES_OF_CATALOG).graph
    assert by_email == by_device
