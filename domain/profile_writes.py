"""From records to the profile table's cells and mutations (the layout:
domain/profile_table.py). Blind writes: nothing is read, and the cells of a record are a
function of the record alone, so a redelivery writes the same cells again."""

from google.cloud.bigtable.data.mutations import SetCell
from google.cloud.bigtable.row import DirectRow

from domain import merge
from domain.identity_graph import UNPROVEN
from domain.profile_table import (
    delete_cell,
    event_cell,
    events_family,
    link_cell,
    record_cell,
    row_key,
)
from domain.records import pointer_token
from domain.times import micros

MAX_MUTATIONS_PER_CALL = 50_000  # Bigtable's limit is 100,000 per MutateRows call
# Record metadata, not a person's attributes.
METADATA_POINTERS = ("/identityMap", "/_id", "/_repo")


def fragment_cells(record, retention_days):
    """[(row key, Cell)] of a record of a profile-enabled dataset whose primary identity
    was accepted: its fragment in its primary identity's row, and a link in the row of
    each of its identities (with the person identities it may not link, if any).
    `retention_days`: of the dataset's events."""
    entity = record.entity
    time_us = micros(record.record_time)
    order = merge.order_key(time_us, record.dataset, entity, record.operation)
    primary_key = row_key(*record.primary_identity)
    record_id = entity.get("_id")
    record_id = record_id if isinstance(record_id, str) else ""
    cells = []
    if record.kind == "event":
        cells.append(
            (primary_key, event_cell(order, events_family(retention_days), record.dataset, entity))
        )
    else:
        attributes = [
            [pointer, value]
            for pointer, value in leaf_attributes(entity)
            if not _is_metadata(pointer)
        ]
        cells.append(
            (
                primary_key,
                record_cell(order, record.dataset, record.operation, attributes, record_id),
            )
        )
    if record.operation == "delete":
        cells.append((primary_key, delete_cell(order)))
    else:
        # Person identities it may not link: kept on its link, only in the rows of those it
        # does link, to be shown (never walked to nor joined).
        unproven = sorted({(ns, i) for ns, i, why in record.refused_identities if why == UNPROVEN})
        if len(record.identities) > 1 or unproven:
            identities = [list(identity) for identity in record.identities]
            cell = link_cell(order, identities, record.dataset, record_id, unproven)
            cells.extend((row_key(*identity), cell) for identity in record.identities)
    return cells


def _is_metadata(pointer):
    return any(pointer == p or pointer.startswith(p + "/") for p in METADATA_POINTERS)


def leaf_attributes(entity):
    """[(JSON pointer, value)] for every leaf of a record; an array is one leaf, and so is
    an empty object."""
    leaves = []
    _collect_leaves(entity, "", leaves)
    return leaves


def _collect_leaves(value, pointer, leaves):
    for key, child in value.items():
        # Most keys need no escaping: the check is cheaper than escaping every one.
        token = pointer_token(key) if "~" in key or "/" in key else key
        child_pointer = pointer + "/" + token
        if isinstance(child, dict) and child:
            _collect_leaves(child, child_pointer, leaves)
        else:
            leaves.append((child_pointer, child))


class PendingRows:
    """The cells of a batch of records not yet written, a DirectRow per row key, in the
    order first touched: one entry per row in a MutateRows call."""

    def __init__(self):
        self.rows = {}

    def add(self, key, cell):
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = DirectRow(key)
        # The mutation row.set_cell adds, made directly: set_cell wants a datetime and
        # turns it back into microseconds, at a cost paid for every cell.
        row._get_mutations().append(
            SetCell(cell.family, cell.column, cell.value, cell.time_us - cell.time_us % 1000)
        )

    def __len__(self):
        return len(self.rows)

    def take(self):
        rows, self.rows = list(self.rows.values()), {}
        return rows


def mutation_batches(rows, limit=MAX_MUTATIONS_PER_CALL):
    """The rows in order, in lists of at most `limit` mutations: one MutateRows call takes
    at most 100,000, and a bundle of large profile records can hold more."""
    batch, size = [], 0
    for row in rows:
        count = len(row._get_mutations())
        if batch and size + count > limit:
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += count
    if batch:
        yield batch
