"""domain/profile_writes.py: from records to the profile table's mutations: what the merge
needs of a record, the cells that change when it is folded in, and the batches they are
written in."""

from google.cloud.bigtable.row import DirectRow

from domain import merge
from domain.profile_table import (
    ATTRIBUTES_FAMILY,
    DELETED_COLUMN,
    IDENTITY_FAMILY,
    LINKED_FAMILY,
    META_FAMILY,
    RESET_COLUMN,
    attribute_cell,
    identity_column,
    row_key,
)
from domain.profile_writes import (
    IGNORED_OLDER_THAN_DELETE,
    PendingRows,
    ProfileUpdate,
    leaf_attributes,
    mutation_batches,
)


def test_a_bundle_with_more_mutations_than_one_call_takes_is_written_in_several():
    rows = []
    for number, cells in enumerate([3, 4, 2, 6, 1]):
        row = DirectRow(f"row-{number}".encode())
        for cell in range(cells):
            row.set_cell("attr", f"c{cell}".encode(), b"v")
        rows.append(row)
    batches = list(mutation_batches(rows, limit=7))
    assert [[r.row_key for r in batch] for batch in batches] == [
        [b"row-0", b"row-1"],
        [b"row-2"],
        [b"row-3", b"row-4"],
    ]
    assert all(sum(len(r._get_mutations()) for r in batch) <= 7 for batch in batches)


def test_a_row_larger_than_a_call_goes_alone_and_none_is_lost():
    rows = []
    for number, cells in enumerate([2, 9, 2]):
        row = DirectRow(f"row-{number}".encode())
        for cell in range(cells):
            row.set_cell("attr", f"c{cell}".encode(), b"v")
        rows.append(row)
    batches = list(mutation_batches(rows, limit=5))
    assert [[r.row_key for r in batch] for batch in batches] == [[b"row-0"], [b"row-1"], [b"row-2"]]
    assert list(mutation_batches([], limit=5)) == []


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


def test_a_profile_record_and_an_event_become_the_updates_the_merge_needs(parser):
    profile = parser.parse(
        b'{"header": {"datasetId": "crm-profiles"}, "body": {"xdmEntity": '
        b'{"_id": "p1", "_repo": {"modifyDate": "2026-11-02T08:00:00Z"}, '
        b'"identityMap": {"Email": [{"id": "a@b.c", "primary": true}], '
        b'"CRMID": [{"id": "C-1"}]}, "loyalty": {"points": 5}}}}'
    )
    update = ProfileUpdate.of(profile)
    assert (update.dataset, update.kind, update.operation) == ("crm-profiles", "profile", "merge")
    assert update.order == merge.order_key(1_793_606_400_000_000, "crm-profiles", profile.entity)
    assert update.attributes == (
        ("/_id", "p1"),
        ("/_repo/modifyDate", "2026-11-02T08:00:00Z"),
        ("/loyalty/points", 5),
    )  # identityMap: linked, not stored
    assert update.identities == (("CRMID", "C-1"), ("Email", "a@b.c"))
    assert update.event == ()
    event = parser.parse(
        b'{"_id": "e1", "timestamp": "2026-11-02T08:00:00.123Z", '
        b'"eventType": "web.webpagedetails.pageViews", "identityMap": '
        b'{"ECID": [{"id": "123", "primary": true}]}}',
        {"dataset": "web-events"},
    )
    update = ProfileUpdate.of(event)
    assert (update.kind, update.attributes, update.identities) == ("event", (), (("ECID", "123"),))
    column, cell = update.event
    assert column == b"8206393599876#e1"
    assert '"dataset": "web-events"' in cell and '"_id": "e1"' in cell


def profile_update(
    time_us,
    operation="merge",
    attributes=(("/tier", "gold"),),
    identities=(("Email", "a@b.c"), ("ECID", "123")),
):
    return ProfileUpdate(
        "crm-profiles",
        "profile",
        operation,
        merge.OrderKey(time_us, "t"),
        attributes,
        tuple(sorted(identities)),
        (),
    )


def mutations_of(rows):
    """Row key -> (family, column) -> the mutations of that cell, in order (the order
    between cells does not matter to Bigtable, the order within one does)."""
    written = {}
    for row in rows:
        cells = written.setdefault(row.row_key, {})
        for mutation in row._get_mutations():
            cells.setdefault((mutation.family, mutation.qualifier), []).append(
                (type(mutation).__name__, getattr(mutation, "new_value", None))
            )
    return written


REPLACED = "DeleteRangeFromColumn", None


def test_folding_an_update_writes_the_changed_cells_and_links_each_identity():
    key, ecid = row_key("Email", "a@b.c"), row_key("ECID", "123")
    pending, state = PendingRows(merge.MergePolicy(), {"web-events": 90}), merge.ProfileState()
    assert pending.fold(key, profile_update(2_000), state, lambda k: None) == "merge"
    assert mutations_of(pending.take()) == {
        key: {
            (ATTRIBUTES_FAMILY, b"/tier"): [
                REPLACED,
                ("SetCell", attribute_cell("gold", "crm-profiles").encode()),
            ],
            (IDENTITY_FAMILY, identity_column("Email", "a@b.c")): [REPLACED, ("SetCell", b"")],
            (IDENTITY_FAMILY, identity_column("ECID", "123")): [REPLACED, ("SetCell", b"")],
        },
        ecid: {(LINKED_FAMILY, key): [REPLACED, ("SetCell", b"")]},
    }
    assert pending.take() == []  # taken: the batch is empty again


def test_the_same_update_again_changes_nothing():
    key = row_key("Email", "a@b.c")
    pending, state = PendingRows(merge.MergePolicy(), {}), merge.ProfileState()
    pending.fold(key, profile_update(2_000), state, lambda k: None)
    pending.take()
    assert pending.fold(key, profile_update(2_000), state, lambda k: None) == "merge"
    assert pending.take() == []


def test_a_delete_marks_the_row_and_what_came_before_it_is_ignored():
    key = row_key("Email", "a@b.c")
    pending, state = PendingRows(merge.MergePolicy(), {}), merge.ProfileState()
    pending.fold(key, profile_update(2_000), state, lambda k: None)
    pending.take()
    assert (
        pending.fold(key, profile_update(5_000, "delete", attributes=()), state, lambda k: None)
        == "delete"
    )
    written = mutations_of(pending.take())[key]
    assert written[(META_FAMILY, DELETED_COLUMN)] == [REPLACED, ("SetCell", b"5000")]
    assert written[(META_FAMILY, RESET_COLUMN)] == [REPLACED, ("SetCell", b"5000")]
    assert written[(ATTRIBUTES_FAMILY, b"/tier")] == [REPLACED]  # gone, no new value
    assert written[(IDENTITY_FAMILY, identity_column("ECID", "123"))] == [REPLACED]
    assert state.candidates == {} and state.deleted == merge.OrderKey(5_000, "t")
    assert (
        pending.fold(key, profile_update(4_000), state, lambda k: None) == IGNORED_OLDER_THAN_DELETE
    )
    assert pending.take() == []
