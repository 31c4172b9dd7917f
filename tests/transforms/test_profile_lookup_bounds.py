"""domain/profile_lookup.py's bounds, on the real Bigtable emulator: an identity seen with
thousands of others (a junk value, a shared kiosk) and a long chain of links cost no
more than MAX_GRAPH_ROWS rows and MAX_ROUNDS round trips, and say they are incomplete;
and the emulator applies the row filters the lookup reads with (a union of chains with a
cells-per-row limit) as Bigtable documents them.
"""

import dataclasses

import pytest
from google.cloud.bigtable import row_filters
from google.cloud.bigtable.row_set import RowSet

from domain import merge
from domain.identity_graph import IdentityRules
from domain.profile_lookup import (
    MAX_GRAPH_ROWS,
    MAX_LINKS_PER_ROW,
    MAX_ROUNDS,
    _fragment_filter,
    read_graph,
    read_profile,
)
from domain.profile_table import (
    DELETES_FAMILY,
    LINKS_FAMILY,
    delete_cell,
    event_cell,
    link_cell,
    record_cell,
    row_key,
)
from domain.profile_writes import PendingRows
from tests.transforms.emulator_writes import crm_record, new_table, parse_all, write

pytestmark = pytest.mark.integration

JUNK = ("ECID", "junk-device")
HUB_SIZE = 1000


def hub_time(n):
    return f"2026-11-02T08:{n // 60:02d}:{n % 60:02d}Z"


@pytest.fixture(scope="module")
def hub(emulators, catalog):
    """One ECID linked with 1,000 distinct Emails by 1,000 records, each at its own time:
    (table, the emails newest first)."""
    payloads = [
        crm_record(f"h{n}", hub_time(n), ("Email", f"p{n}@x.org"), JUNK, loyalty={"points": n})
        for n in range(HUB_SIZE)
    ]
    table, _ = write(parse_all(catalog, payloads), catalog, bundle=250)
    return table, [("Email", f"p{n}@x.org") for n in reversed(range(HUB_SIZE))]


def assert_within_bounds(profile):
    lookup, size = profile["lookup"], len(profile["identities"])
    assert lookup["rows_read"] <= MAX_GRAPH_ROWS + size, lookup
    assert lookup["round_trips"] <= MAX_ROUNDS + 1, lookup


def test_a_junk_hub_is_read_within_the_bounds_and_says_it_is_incomplete(hub, catalog):
    """Email is unique in the example catalog: the device follows the newest email, which
    is among the newest MAX_LINKS_PER_ROW links of the device's row."""
    table, newest_first = hub
    profile = read_profile(table, catalog, *JUNK)
    assert_within_bounds(profile)
    assert profile["lookup"]["complete"] is False
    assert profile["lookup"]["rows_read"] == 1 + MAX_LINKS_PER_ROW + 2  # the hub, 200, the graph
    assert [(i["namespace"], i["id"]) for i in profile["identities"]] == [JUNK, newest_first[0]]
    assert profile["attributes"]["/loyalty/points"]["value"] == HUB_SIZE - 1
    by_email = read_profile(table, catalog, *newest_first[0])
    assert_within_bounds(by_email)
    assert by_email["lookup"]["complete"] is False
    assert by_email["identities"] == profile["identities"]
    assert by_email["attributes"] == profile["attributes"]
    # An older email: the unique rule kept it out of the device's graph.
    old = read_profile(table, catalog, "Email", "p3@x.org")
    assert_within_bounds(old)
    assert [(i["namespace"], i["id"]) for i in old["identities"]] == [("Email", "p3@x.org")]
    assert old["attributes"]["/loyalty/points"]["value"] == 3


def test_a_junk_hub_without_the_unique_rule_stops_at_the_cap(hub, catalog):
    table, newest_first = hub
    loose = dataclasses.replace(catalog, identity_rules=IdentityRules(max_identities=50))
    profile = read_profile(table, loose, *JUNK)
    assert_within_bounds(profile)
    assert profile["lookup"]["complete"] is False
    found = {(i["namespace"], i["id"]) for i in profile["identities"]}
    assert found == {JUNK} | set(newest_first[:49])  # the newest links, up to the cap
    assert {d["rule"] for d in profile["graph"]["dropped"]} == {"max_identities"}


def test_a_hub_of_hubs_reads_at_most_max_graph_rows(emulators, catalog):
    """A device seen with 250 emails, each record also naming 5 devices of its own: the
    walk reaches 1,500 identities but reads at most MAX_GRAPH_ROWS rows."""
    payloads = [
        crm_record(
            f"g{n}",
            hub_time(n),
            ("Email", f"g{n}@x.org"),
            JUNK,
            *(("ECID", f"g{n}-{k}") for k in range(5)),
        )
        for n in range(250)
    ]
    table, _ = write(parse_all(catalog, payloads), catalog, bundle=125)
    loose = dataclasses.replace(catalog, identity_rules=IdentityRules(max_identities=50))
    for start in (JUNK, ("Email", "g249@x.org"), ("ECID", "g3-1")):
        read = read_graph(table, *start, loose.identity_rules)
        assert read.rows_read <= MAX_GRAPH_ROWS and read.round_trips <= MAX_ROUNDS
        assert read.complete is False
        profile = read_profile(table, loose, *start)
        assert_within_bounds(profile)
        assert len(profile["identities"]) <= 50


def chain_records(catalog, length, prefix):
    """ECIDs c0 - c1 - ... - c<length>, each pair linked by a record of its own."""
    return parse_all(
        catalog,
        [
            crm_record(
                f"{prefix}{n}", hub_time(n), ("ECID", f"{prefix}{n}"), ("ECID", f"{prefix}{n + 1}")
            )
            for n in range(length)
        ],
    )


def test_a_long_chain_stops_after_max_rounds(emulators, catalog):
    """A lookup walks one hop a round: a chain longer than MAX_ROUNDS is cut there."""
    table, _ = write(chain_records(catalog, 20, "c") + chain_records(catalog, 4, "s"), catalog)
    profile = read_profile(table, catalog, "ECID", "c0")
    assert profile["lookup"] == {
        "rows_read": MAX_ROUNDS + (MAX_ROUNDS + 1),  # a row a round, then the graph's
        "round_trips": MAX_ROUNDS + 1,
        "complete": False,
    }
    assert [i["id"] for i in profile["identities"]] == sorted(f"c{n}" for n in range(9))
    short = read_profile(table, catalog, "ECID", "s2")
    assert [i["id"] for i in short["identities"]] == ["s0", "s1", "s2", "s3", "s4"]
    assert short["lookup"]["complete"] is True and short["lookup"]["round_trips"] <= 4 + 1
    graph = read_graph(table, "ECID", "s0", catalog.identity_rules)
    assert (graph.round_trips, graph.rows_read, graph.complete) == (5, 5, True)


# The filters, on cells written directly


def order(n):
    return merge.OrderKey(1_793_606_400_000_000 + n * 1000, f"{n:064x}")


def delete_order(n):
    """A delete at the time of link n, after it (a greater tie-break)."""
    return merge.OrderKey(order(n).time_us, "f" * 64)


DELETES = (5, 150, 299)


@pytest.fixture(scope="module")
def busy_row(emulators, catalog):
    """One row with 300 links, 3 deletes (each its `del` and its `rec` cell, as a delete
    writes them), 5 records and 40 events, and a second row with a few links and events:
    (table, key, other key)."""
    _, table = new_table(catalog)
    key, other = row_key(*JUNK), row_key("Email", "a@x.org")
    pending = PendingRows()
    for n in range(300):
        pending.add(key, link_cell(order(n), [list(JUNK), ["Email", f"p{n}"]], "crm", ""))
    for n in DELETES:
        pending.add(key, delete_cell(delete_order(n)))
        pending.add(key, record_cell(delete_order(n), "crm", "delete", [], f"d{n}"))
    for n in range(5):
        pending.add(key, record_cell(order(n), "crm", "merge", [["/a", n]], f"r{n}"))
    for n in range(40):
        pending.add(key, event_cell(order(n), "events_90d", "web", {"_id": f"e{n}"}))
    for n in range(3):
        pending.add(other, link_cell(order(n), [list(JUNK), ["Email", "a@x.org"]], "crm", ""))
        pending.add(other, event_cell(order(n), "events_90d", "web", {"_id": f"o{n}"}))
    for status in table.mutate_rows(pending.take()):
        assert status.code == 0, status
    return table, key, other


def read(table, keys, row_filter):
    rows = RowSet()
    for key in keys:
        rows.add_row_key(key)
    return {row.row_key: row.cells for row in table.read_rows(row_set=rows, filter_=row_filter)}


def test_the_emulator_applies_the_walks_filter_a_union_of_a_limited_chain(busy_row):
    """The filter read_graph reads with: a row's first MAX_LINKS_PER_ROW `link` cells (the
    newest) and all its `del` cells, row by row."""
    table, key, other = busy_row
    walk = row_filters.RowFilterUnion(
        [
            row_filters.RowFilterChain(
                [
                    row_filters.FamilyNameRegexFilter(f"^{LINKS_FAMILY}$"),
                    row_filters.CellsRowLimitFilter(MAX_LINKS_PER_ROW),
                ]
            ),
            row_filters.FamilyNameRegexFilter(f"^{DELETES_FAMILY}$"),
        ]
    )
    rows = read(table, [key, other], walk)
    assert set(rows[key]) == {"link", "del"} and set(rows[other]) == {"link"}
    links = sorted(rows[key]["link"])
    assert len(links) == MAX_LINKS_PER_ROW == 200
    newest = sorted(link_cell(order(n), [], "", "").column for n in range(100, 300))
    assert links == newest
    assert sorted(rows[key]["del"]) == sorted(delete_cell(delete_order(n)).column for n in DELETES)
    assert len(rows[other]["link"]) == 3  # the limit is per row


def test_the_emulator_applies_the_fragments_filter(busy_row, catalog):
    table, key, other = busy_row
    rows = read(table, [key, other], _fragment_filter(catalog, 20))
    assert set(rows[key]) == {"rec", "events_90d"}
    assert len(rows[key]["rec"]) == 5 + len(DELETES)  # every record, however many
    events = sorted(rows[key]["events_90d"])
    assert events == sorted(
        event_cell(order(n), "events_90d", "web", {"_id": f"e{n}"}).column for n in range(20, 40)
    )
    assert len(rows[other]["events_90d"]) == 3


def test_the_lookup_over_the_busy_row(busy_row, catalog):
    """Its newest links are past its last delete's: those hold, the older ones do not."""
    table, _, _ = busy_row
    read = read_graph(table, *JUNK, IdentityRules())
    assert read.complete is False  # 300 links, 200 read
    assert read.rows_read == 1 + MAX_LINKS_PER_ROW and read.round_trips == 2
    assert read.graph.identities == {JUNK}  # every link read is older than the delete at 299
    assert {rule for _, rule in read.graph.dropped} == {"deleted"}
    profile = read_profile(table, catalog, *JUNK, max_events=7)
    assert profile["attributes"] == {}  # its records are before the delete
    assert [e["_id"] for e in profile["events"]] == []  # and so are its events
