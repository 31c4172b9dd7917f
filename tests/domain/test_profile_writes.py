"""domain/profile_writes.py: from a record to its fragment's cells (blind: a function of
the record alone), and from cells to the entries of MutateRows calls.

A record whose primary identity is refused never reaches fragment_cells: the write step
skips it (tests/transforms/test_profile_store.py)."""

import datetime
import json

import pytest
from google.cloud.bigtable.row import DirectRow

from domain import merge
from domain.profile_table import (
    Cell,
    delete_cell,
    event_cell,
    events_of,
    last_delete_of,
    link_cell,
    links_of,
    record_cell,
    records_of,
    row_key,
)
from domain.profile_writes import PendingRows, fragment_cells, leaf_attributes, mutation_batches
from domain.times import micros
from tests.domain import graph_strategies as gs

MODIFIED = "2026-11-02T08:00:00.123456Z"
MODIFIED_US = 1_793_606_400_123_456
EMAIL, CRMID, ECID = ("Email", "a@b.c"), ("CRMID", "C-1"), ("ECID", "123")


def envelope(dataset, entity, operation=None):
    header = {"datasetId": dataset, **({"operations": {"data": operation}} if operation else {})}
    return json.dumps({"header": header, "body": {"xdmEntity": entity}}).encode()


def crm_record(parser, operation=None, identity_map=None, **fields):
    entity = {
        "_id": "p1",
        "_repo": {"modifyDate": MODIFIED},
        "identityMap": identity_map
        or {
            "Email": [{"id": "a@b.c", "primary": True}],
            "CRMID": [{"id": "C-1"}],
            "ECID": [{"id": "123"}, {"id": "anonymous"}],  # refused: never linked
        },
        "loyalty": {"points": 5, "tier": "gold"},
        **fields,
    }
    return parser.parse(envelope("crm-profiles", entity, operation))


def web_event(parser, identity_map=None):
    entity = {
        "_id": "e#1",
        "timestamp": "2026-11-02T08:00:00.123Z",
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": identity_map
        or {"ECID": [{"id": "123", "primary": True}], "Email": [{"id": "a@b.c"}]},
    }
    return parser.parse(envelope("web-events", entity))


def test_a_profile_record_is_a_rec_cell_in_its_primary_row_and_a_link_in_each_row(parser):
    record = crm_record(parser)
    order = merge.order_key(MODIFIED_US, "crm-profiles", record.entity, "merge")
    link = link_cell(order, [list(CRMID), list(ECID), list(EMAIL)], "crm-profiles", "p1")
    assert fragment_cells(record, 90) == [
        (
            row_key(*EMAIL),
            record_cell(
                order,
                "crm-profiles",
                "merge",
                [["/loyalty/points", 5], ["/loyalty/tier", "gold"]],  # no /_id, /_repo, ...
                "p1",
            ),
        ),
        (row_key(*CRMID), link),
        (row_key(*ECID), link),
        (row_key(*EMAIL), link),
    ]
    (_, rec), (_, link) = fragment_cells(record, 90)[:2]
    assert rec.time_us == link.time_us == MODIFIED_US  # to the µs; PendingRows cuts it
    assert links_of({"link": {link.column: [(link.value, 0)]}})[0].identities == (
        CRMID,
        ECID,
        EMAIL,
    )


def test_an_event_is_an_event_cell_in_its_primary_row_and_links(parser):
    record = web_event(parser)
    order = merge.order_key(micros(record.record_time), "web-events", record.entity)
    assert order.time_us == 1_793_606_400_123_000
    link = link_cell(order, [list(ECID), list(EMAIL)], "web-events", "e#1")
    assert fragment_cells(record, 30) == [
        (row_key(*ECID), event_cell(order, "events_30d", "web-events", record.entity)),
        (row_key(*ECID), link),
        (row_key(*EMAIL), link),
    ]
    (_, cell), *_ = fragment_cells(record, 30)
    (stored,) = events_of({cell.family: {cell.column: [(cell.value, cell.time_us)]}})
    assert (stored.order, stored.dataset, stored.event) == (order, "web-events", record.entity)
    assert cell.column.endswith(b"#e#1")


def test_a_delete_is_its_rec_cell_and_a_del_cell_and_links_nothing(parser):
    record = crm_record(parser, "delete")
    order = merge.order_key(MODIFIED_US, "crm-profiles", record.entity, "delete")
    cells = fragment_cells(record, 90)
    assert cells == [
        (
            row_key(*EMAIL),
            record_cell(
                order,
                "crm-profiles",
                "delete",
                [["/loyalty/points", 5], ["/loyalty/tier", "gold"]],
                "p1",
            ),
        ),
        (row_key(*EMAIL), delete_cell(order)),
    ]
    assert last_delete_of({"del": {cells[1][1].column: [(b"", 0)]}}) == order


def test_a_record_with_one_identity_is_its_rec_cell_alone(parser):
    record = crm_record(parser, identity_map={"Email": [{"id": "a@b.c"}]})
    assert [(key, cell.family) for key, cell in fragment_cells(record, 90)] == [
        (row_key(*EMAIL), "rec")
    ]
    event = web_event(parser, {"ECID": [{"id": "123", "primary": True}], "Email": [{"id": "null"}]})
    assert [(key, cell.family) for key, cell in fragment_cells(event, 90)] == [
        (row_key(*ECID), "events_90d")
    ]


def test_a_create_is_a_rec_cell_of_its_own_operation_with_links(parser):
    create, upsert = crm_record(parser, "create"), crm_record(parser)
    cells, upsert_cells = fragment_cells(create, 90), fragment_cells(upsert, 90)
    ((_, rec),) = [c for c in cells if c[1].family == "rec"]
    (stored,) = records_of({"rec": {rec.column: [(rec.value, rec.time_us)]}})
    assert stored.operation == "create"
    assert stored.order == merge.order_key(MODIFIED_US, "crm-profiles", create.entity, "create")
    assert [c.family for _, c in cells] == ["rec", "link", "link", "link"]
    # The same entity upserted: another record, in other columns.
    assert not {c.column for _, c in cells} & {c.column for _, c in upsert_cells}


def test_the_same_record_gives_the_same_cells_and_another_one_other_columns(parser):
    assert fragment_cells(crm_record(parser), 90) == fragment_cells(crm_record(parser), 90)
    other = crm_record(parser, loyalty={"points": 6})  # same time, another record
    assert {c.column for _, c in fragment_cells(other, 90)}.isdisjoint(
        {c.column for _, c in fragment_cells(crm_record(parser), 90)}
    )


def test_record_metadata_is_not_an_attribute(tmp_path):
    entity = {
        "_id": "p1",
        "_repo": {"modifyDate": MODIFIED, "createDate": "2026-01-01T00:00:00Z"},
        "identityMap": {"Email": [{"id": "a@b.c", "primary": True}], "ECID": [{"id": "1"}]},
        "_idx": "kept",  # only /_id itself, /_repo/... and /identityMap/... are metadata
        "_repository": {"name": "kept"},
        "identityMapped": True,
        "loyalty": {"_id": "kept too", "_repo": 1},
    }
    record = gs.load_parser(tmp_path).parse(envelope("crm", entity))
    ((_, rec), *_) = fragment_cells(record, 90)
    (stored,) = records_of({"rec": {rec.column: [(rec.value, 0)]}})
    assert dict(stored.attributes) == {
        "/_idx": "kept",
        "/_repository/name": "kept",
        "/identityMapped": True,
        "/loyalty/_id": "kept too",
        "/loyalty/_repo": 1,
    }
    assert stored.record_id == "p1"


def test_an_identity_field_is_linked_and_stays_an_attribute(tmp_path):
    """Adobe's tutorial record: its primary identity is a field, not identityMap."""
    from domain.catalog import Catalog
    from domain.parsing import RecordParser
    from helpers.examples import EXAMPLES

    catalog = Catalog.load(str(EXAMPLES / "adobe" / "catalog.yaml"))
    record = RecordParser(catalog).parse((EXAMPLES / "adobe" / "record.json").read_bytes())
    ((key, rec),) = fragment_cells(record, 90)
    assert key == row_key("Email", "janedoe@example.com")
    (stored,) = records_of({"rec": {rec.column: [(rec.value, 0)]}})
    assert ["/workEmail/address", "janedoe@example.com"] in stored.attributes
    assert ["/person/name/firstName", "Jane"] in stored.attributes
    assert stored.record_id == ""  # it has no _id


def test_leaf_attributes_name_each_leaf_by_its_json_pointer():
    entity = {
        "person": {"name": {"first": "Ada", "last": None}, "tags": ["a", {"b": 1}]},
        "a/b": {"c~d": 1.5},
        "empty": {},
        "": {"x": True},
        "identityMap": {"email": [{"id": "a@b.c"}]},
    }
    assert leaf_attributes(entity) == [
        ("/person/name/first", "Ada"),
        ("/person/name/last", None),
        ("/person/tags", ["a", {"b": 1}]),
        ("/a~1b/c~0d", 1.5),
        ("/empty", {}),
        ("//x", True),
        ("/identityMap/email", [{"id": "a@b.c"}]),
    ]


# PendingRows and mutation_batches


def utc(time_us):
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        microseconds=time_us
    )


def test_pending_rows_group_a_rows_cells_in_one_direct_row_in_order():
    a, b = row_key("Email", "a"), row_key("ECID", "b")
    cells = [
        (a, Cell("rec", b"1#x", b'{"v": "\xc3\xa9"}', 1_000_123)),
        (b, Cell("link", b"9#y", b"{}", 2_000_999)),
        (a, Cell("link", b"9#y", b"{}", 2_000_999)),
        (a, Cell("del", b"1#x", b"", 1_000_123)),
        (b, Cell("events_30d", b"8#z#e", b"{}", 0)),
    ]
    pending = PendingRows()
    for key, cell in cells:
        pending.add(key, cell)
    assert len(pending) == 2
    rows = pending.take()
    assert [row.row_key for row in rows] == [a, b]  # in the order first touched
    for row in rows:
        expected = DirectRow(row.row_key)
        for key, cell in cells:
            if key == row.row_key:  # set_cell cuts a datetime to the millisecond
                expected.set_cell(cell.family, cell.column, cell.value, timestamp=utc(cell.time_us))
        assert [m._to_dict() for m in row._get_mutations()] == [
            m._to_dict() for m in expected._get_mutations()
        ]
    assert rows[0]._get_mutations()[0].timestamp_micros == 1_000_000
    assert pending.take() == [] and len(pending) == 0  # taken: empty again


def test_a_bundles_fragments_share_rows():
    """Two records of one person in a bundle: one entry per row key."""
    pending = PendingRows()
    for time_us in (1_000, 2_000):
        order = merge.OrderKey(time_us, f"{time_us:064x}")
        cells = [(row_key(*EMAIL), record_cell(order, "crm", "merge", [], ""))]
        cells += [(row_key(*i), link_cell(order, [EMAIL, ECID], "crm", "")) for i in (EMAIL, ECID)]
        for key, cell in cells:
            pending.add(key, cell)
    rows = pending.take()
    assert [row.row_key for row in rows] == [row_key(*EMAIL), row_key(*ECID)]
    assert [len(row._get_mutations()) for row in rows] == [4, 2]


def rows_of(counts):
    rows = []
    for number, cells in enumerate(counts):
        row = DirectRow(f"row-{number}".encode())
        for cell in range(cells):
            row.set_cell("rec", f"c{cell}".encode(), b"v")
        rows.append(row)
    return rows


def test_a_bundle_with_more_mutations_than_one_call_takes_is_written_in_several():
    batches = list(mutation_batches(rows_of([3, 4, 2, 6, 1]), limit=7))
    assert [[r.row_key for r in batch] for batch in batches] == [
        [b"row-0", b"row-1"],
        [b"row-2"],
        [b"row-3", b"row-4"],
    ]
    assert all(sum(len(r._get_mutations()) for r in batch) <= 7 for batch in batches)


def test_a_row_larger_than_a_call_goes_alone_and_none_is_lost():
    batches = list(mutation_batches(rows_of([2, 9, 2]), limit=5))
    assert [[r.row_key for r in batch] for batch in batches] == [[b"row-0"], [b"row-1"], [b"row-2"]]
    assert list(mutation_batches([], limit=5)) == []


@pytest.mark.parametrize(
    "counts, sizes",
    [([1] * 7, [7]), ([7], [7]), ([3, 3, 1], [7]), ([6, 1, 6, 1], [7, 7]), ([1] * 8, [7, 1])],
)
def test_batches_are_filled_up_to_the_limit_exactly(counts, sizes):
    batches = list(mutation_batches(rows_of(counts), limit=7))
    assert [sum(len(r._get_mutations()) for r in batch) for batch in batches] == sizes


def test_the_default_limit_is_half_of_bigtables():
    from domain.profile_writes import MAX_MUTATIONS_PER_CALL

    assert MAX_MUTATIONS_PER_CALL == 50_000
    batches = list(mutation_batches(rows_of([30_000, 20_000, 1])))
    assert [len(b) for b in batches] == [2, 1]
