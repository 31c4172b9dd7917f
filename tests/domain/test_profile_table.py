"""domain/profile_table.py: the profile table's layout in Bigtable, both ways: row keys,
families, the cell encoders (`rec`, `link`, `del`, `events_<N>d`) and the readers that
give back what the cells say, from plain cells and from cells as the Bigtable client
reads them."""

import datetime
import json

import pytest
from google.cloud.bigtable import column_family
from google.cloud.bigtable.row_data import Cell as ClientCell
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.catalog import Catalog
from domain.identity_graph import Link
from domain.merge import OrderKey
from domain.profile_table import (
    DELETES_FAMILY,
    EVENTS_FAMILY_PREFIX,
    LINKS_FAMILY,
    MAX_TIME_US,
    RECORDS_FAMILY,
    Cell,
    StoredEvent,
    StoredRecord,
    column_families,
    delete_cell,
    event_cell,
    events_family,
    events_of,
    identity_of_row_key,
    is_events_family,
    last_delete_of,
    link_cell,
    links_of,
    record_cell,
    records_of,
    row_key,
)
from tests.domain import graph_strategies as gs

TIEBREAK = "ab" * 32  # a tie-break is a SHA-256 in hex
OTHER = "0f" * 32
TIME_US = 1_762_070_400_123_456  # 2025-11-02T08:00:00.123456Z


def plain(*cells):
    """A row's cells as {family: {column: [(value, time_us)]}}, one version a column."""
    row = {}
    for cell in cells:
        row.setdefault(cell.family, {})[cell.column] = [(cell.value, cell.time_us)]
    return row


def as_client_reads(row):
    """The same cells as Bigtable's client gives them: row_data.Cell objects, the time cut
    to the millisecond."""
    return {
        family: {
            column: [ClientCell(value, time_us - time_us % 1000) for value, time_us in versions]
            for column, versions in columns.items()
        }
        for family, columns in row.items()
    }


# Row keys


def test_row_keys_do_not_collide_when_namespace_or_id_hold_the_separator():
    pairs = [("a#b", "c"), ("a", "b#c"), ("a%23b", "c"), ("a", "b%23c"), ("x", "a#b#c")]
    assert len({row_key(*pair) for pair in pairs}) == len(pairs)
    for pair in pairs:
        assert identity_of_row_key(row_key(*pair)) == pair


def test_a_row_key_is_a_hash_prefix_then_the_quoted_namespace_then_the_id():
    key = row_key("Email", "ada@example.com")
    prefix, namespace, identity = key.split(b"#", 2)
    assert len(prefix) == 4 and int(prefix, 16) >= 0
    assert (namespace, identity) == (b"Email", b"ada@example.com")
    assert row_key("E#mail", "x").split(b"#", 2)[1:] == [b"E%23mail", b"x"]
    assert row_key("Email", "é#ü").endswith("é#ü".encode())  # UTF-8, the id unquoted
    assert identity_of_row_key(row_key("é mail/x", "ü#1")) == ("é mail/x", "ü#1")
    assert row_key("Email", "a")[:4] != row_key("Email", "b")[:4]  # the hash spreads them


# Families


def test_the_families_are_those_the_catalogs_datasets_need(catalog):
    families = column_families(catalog)
    assert set(families) == {RECORDS_FAMILY, LINKS_FAMILY, DELETES_FAMILY, "events_90d"}
    assert (RECORDS_FAMILY, LINKS_FAMILY, DELETES_FAMILY) == ("rec", "link", "del")
    for family in (RECORDS_FAMILY, LINKS_FAMILY, DELETES_FAMILY):
        assert families[family] == column_family.MaxVersionsGCRule(1)
    rule = families["events_90d"]
    assert isinstance(rule, column_family.GCRuleUnion)
    assert column_family.MaxAgeGCRule(datetime.timedelta(days=90)) in rule.rules
    assert column_family.MaxVersionsGCRule(1) in rule.rules
    assert set(column_families()) == {"rec", "link", "del"}


def test_an_events_family_per_retention_of_the_profile_enabled_event_datasets(tmp_path):
    text = "schemas: schemas\ndatasets:\n" + "".join(
        f'  {name}: {{schema: "{gs.SCHEMA_ID}", kind: {kind}, profile: {profile}'
        + (f", retention_days: {days}" if days else "")
        + "}\n"
        for name, kind, profile, days in [
            ("web", "event", "true", 30),
            ("app", "event", "true", 30),
            ("mail", "event", "true", 7),
            ("archive", "event", "false", 365),  # lake only: no family
            ("crm", "profile", "true", 5),  # a profile dataset keeps no events
            ("pos", "event", "true", None),  # the default, 90
        ]
    )
    families = column_families(Catalog.load(gs.write_catalog(tmp_path, text)))
    assert list(families) == ["rec", "link", "del", "events_7d", "events_30d", "events_90d"]
    assert events_family(7) == "events_7d" and is_events_family("events_7d")
    assert not any(is_events_family(f) for f in ("rec", "link", "del"))
    assert EVENTS_FAMILY_PREFIX == "events_"


# Encoders and readers, both ways

ORDERS = st.builds(
    OrderKey,
    st.one_of(st.integers(0, MAX_TIME_US), st.sampled_from([0, TIME_US, MAX_TIME_US])),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    order=ORDERS,
    dataset=TEXT,
    operation=st.sampled_from(["merge", "create", "delete"]),
    attributes=st.lists(st.tuples(TEXT.map(lambda t: "/" + t), JSON_VALUES).map(list)),
    record_id=TEXT,
)
def test_a_record_cell_reads_back_as_its_record(order, dataset, operation, attributes, record_id):
    cell = record_cell(order, dataset, operation, attributes, record_id)
    assert (cell.family, cell.time_us) == (RECORDS_FAMILY, order.time_us)
    assert cell.column == f"{order.time_us:019d}#{order.tiebreak}".encode()
    expected = StoredRecord(order, dataset, operation, attributes, record_id)
    for row in (plain(cell), as_client_reads(plain(cell))):
        assert records_of(row) == [expected]


def test_a_record_cells_value_is_utf8_json_not_escaped():
    cell = record_cell(OrderKey(TIME_US, TIEBREAK), "crm-é", "merge", [["/name", "Zoë 😀"]], "r#1")
    assert "Zoë 😀".encode() in cell.value and b"\\u" not in cell.value
    assert json.loads(cell.value) == {
        "dataset": "crm-é",
        "operation": "merge",
        "attributes": [["/name", "Zoë 😀"]],
        "id": "r#1",
    }


@settings(max_examples=300, deadline=None)
@given(
    order=ORDERS,
    identities=st.lists(st.tuples(TEXT.filter(bool), TEXT), min_size=2, max_size=5, unique=True),
    dataset=TEXT,
    record_id=TEXT,
)
def test_a_link_cell_reads_back_as_its_link(order, identities, dataset, record_id):
    cell = link_cell(order, [list(i) for i in identities], dataset, record_id)
    assert (cell.family, cell.time_us) == (LINKS_FAMILY, order.time_us)
    assert cell.column == f"{MAX_TIME_US - order.time_us:019d}#{order.tiebreak}".encode()
    expected = Link(order.time_us, order.tiebreak, tuple(sorted(identities)), dataset, record_id)
    for row in (plain(cell), as_client_reads(plain(cell))):
        assert links_of(row) == [expected]


def test_links_of_reads_only_the_link_family_and_every_column_of_it():
    one = link_cell(OrderKey(TIME_US, TIEBREAK), [["Email", "a#b"], ["ECID", "1"]], "crm", "r1")
    two = link_cell(OrderKey(TIME_US, OTHER), [["ECID", "1"], ["CRMID", "é"]], "web", "")
    row = plain(one, two, delete_cell(OrderKey(TIME_US + 5, TIEBREAK)))
    assert sorted(links_of(row)) == sorted(
        [
            Link(TIME_US, TIEBREAK, (("ECID", "1"), ("Email", "a#b")), "crm", "r1"),
            Link(TIME_US, OTHER, (("CRMID", "é"), ("ECID", "1")), "web", ""),
        ]
    )
    assert links_of({}) == [] and links_of(plain(delete_cell(OrderKey(1, TIEBREAK)))) == []


@settings(max_examples=200, deadline=None)
@given(orders=st.lists(ORDERS, max_size=5, unique=True))
def test_the_last_delete_is_the_newest_delete_cell_by_order_key(orders):
    cells = [delete_cell(order) for order in orders]
    for cell, order in zip(cells, orders, strict=True):
        assert (cell.family, cell.value, cell.time_us) == (DELETES_FAMILY, b"", order.time_us)
        assert cell.column == record_cell(order, "d", "delete", [], "").column  # named as in rec
    row = plain(
        *cells, link_cell(OrderKey(MAX_TIME_US, "f" * 64), [["a", "1"], ["b", "2"]], "", "")
    )
    expected = max(orders) if orders else None
    assert last_delete_of(row) == expected
    assert last_delete_of(as_client_reads(row)) == expected


def test_deletes_at_one_time_are_ordered_by_tiebreak():
    row = plain(delete_cell(OrderKey(TIME_US, OTHER)), delete_cell(OrderKey(TIME_US, TIEBREAK)))
    assert last_delete_of(row) == OrderKey(TIME_US, TIEBREAK)  # "ab..." > "0f..."
    later = plain(
        delete_cell(OrderKey(TIME_US + 1, OTHER)), delete_cell(OrderKey(TIME_US, "f" * 64))
    )
    assert last_delete_of(later) == OrderKey(TIME_US + 1, OTHER)  # the µs first


@settings(max_examples=300, deadline=None)
@given(
    order=ORDERS,
    dataset=TEXT,
    event_id=st.one_of(TEXT, st.just("a#b#c"), st.none(), st.integers()),
    fields=st.dictionaries(TEXT.filter(lambda t: t != "_id"), JSON_VALUES, max_size=3),
    days=st.integers(1, 3650),
)
def test_an_event_cell_reads_back_as_its_event(order, dataset, event_id, fields, days):
    event = {**fields, **({} if event_id is None else {"_id": event_id})}
    cell = event_cell(order, events_family(days), dataset, event)
    assert (cell.family, cell.time_us) == (f"events_{days}d", order.time_us)
    suffix = event_id if isinstance(event_id, str) else ""
    assert cell.column == (f"{MAX_TIME_US - order.time_us:019d}#{order.tiebreak}#{suffix}".encode())
    expected = StoredEvent(cell.column, order, dataset, event)
    for row in (plain(cell), as_client_reads(plain(cell))):
        assert events_of(row) == [expected]


def test_events_of_reads_every_events_family_and_nothing_else():
    one = event_cell(OrderKey(TIME_US, TIEBREAK), "events_30d", "web", {"_id": "e1"})
    two = event_cell(OrderKey(TIME_US - 1, OTHER), "events_90d", "app", {"_id": "é#2"})
    record = record_cell(OrderKey(TIME_US, TIEBREAK), "crm", "merge", [], "r")
    events = events_of(plain(one, two, record, delete_cell(OrderKey(1, OTHER))))
    assert sorted(events) == sorted(
        [
            StoredEvent(one.column, OrderKey(TIME_US, TIEBREAK), "web", {"_id": "e1"}),
            StoredEvent(two.column, OrderKey(TIME_US - 1, OTHER), "app", {"_id": "é#2"}),
        ]
    )
    assert records_of(plain(one, two)) == [] and events_of({}) == []


@settings(max_examples=300, deadline=None)
@given(orders=st.lists(ORDERS, min_size=2, max_size=6, unique=True), same_time=st.booleans())
def test_columns_sort_as_the_order_keys_do_equal_times_included(orders, same_time):
    """`rec` and `del` columns sort oldest first, `link` and events columns newest first;
    within one time (equal times are common: Bigtable keeps only milliseconds), by
    tie-break: the column names keep the whole order key."""
    if same_time:
        orders = list({OrderKey(orders[0].time_us, o.tiebreak) for o in orders})
    by_key = sorted(orders)
    newest_first = sorted(orders, key=lambda o: (-o.time_us, o.tiebreak))
    columns = {
        "rec": [record_cell(o, "d", "merge", [], "").column for o in orders],
        "del": [delete_cell(o).column for o in orders],
        "link": [link_cell(o, [["a", "1"], ["b", "2"]], "d", "").column for o in orders],
        "event": [event_cell(o, "events_1d", "d", {"_id": "e"}).column for o in orders],
    }
    rank = {c: o for c, o in zip(columns["rec"], orders, strict=True)}
    assert [rank[c] for c in sorted(columns["rec"])] == by_key
    rank = {c: o for c, o in zip(columns["del"], orders, strict=True)}
    assert [rank[c] for c in sorted(columns["del"])] == by_key
    for name in ("link", "event"):
        rank = {c: o for c, o in zip(columns[name], orders, strict=True)}
        assert [rank[c] for c in sorted(columns[name])] == newest_first, name


def test_records_of_a_row_of_several_with_equal_times():
    cells = [
        record_cell(OrderKey(TIME_US, tiebreak), "crm", operation, [["/a", n]], f"r{n}")
        for n, (tiebreak, operation) in enumerate(
            [(TIEBREAK, "merge"), (OTHER, "delete"), ("c" * 64, "create")]
        )
    ]
    assert sorted(records_of(plain(*cells))) == sorted(
        [
            StoredRecord(OrderKey(TIME_US, TIEBREAK), "crm", "merge", [["/a", 0]], "r0"),
            StoredRecord(OrderKey(TIME_US, OTHER), "crm", "delete", [["/a", 1]], "r1"),
            StoredRecord(OrderKey(TIME_US, "c" * 64), "crm", "create", [["/a", 2]], "r2"),
        ]
    )


def test_a_cell_is_a_family_column_value_and_time():
    assert Cell._fields == ("family", "column", "value", "time_us")


@pytest.mark.parametrize("time_us", [0, 999, 1_000, TIME_US, MAX_TIME_US])
def test_columns_are_ascii_digits_and_hex(time_us):
    order = OrderKey(time_us, TIEBREAK)
    for column in (
        record_cell(order, "d", "merge", [], "").column,
        link_cell(order, [["a", "1"], ["b", "2"]], "d", "").column,
        delete_cell(order).column,
    ):
        digits, tiebreak = column.split(b"#")
        assert len(digits) == 19 and digits.isdigit() and tiebreak == TIEBREAK.encode()
