"""From records to the profile table's mutations: what the merge needs of a record
(ProfileUpdate), and the cells that change when it is folded into a person's state.

Within a batch, all the mutations of a row go in one entry of one MutateRows call, in
order: Bigtable applies the entries of a call in any order, but the mutations of one
entry in the order given.
"""

import typing

from google.cloud.bigtable.row import DirectRow
from google.cloud.bigtable.row_filters import TimestampRange

from domain import merge
from domain.identity import identities
from domain.profile_table import (
    ATTRIBUTES_FAMILY,
    DELETED_COLUMN,
    IDENTITY_FAMILY,
    LINKED_FAMILY,
    META_FAMILY,
    RESET_COLUMN,
    attribute_cell,
    event_cell,
    event_column,
    events_family,
    identity_column,
    is_events_family,
    replace_cell,
    row_key,
    set_cell,
)
from domain.records import pointer_token
from domain.times import from_micros, micros

MAX_MUTATIONS_PER_CALL = 50_000  # Bigtable's limit is 100,000 per MutateRows call
IGNORED_OLDER_THAN_DELETE = "older_than_delete_ignored"


class ProfileUpdate(typing.NamedTuple):
    """What the merge needs of a record, worked out before the shuffle to the person's
    step, so that the record's dict does not travel."""

    dataset: str
    kind: str
    operation: str
    order: merge.OrderKey
    attributes: tuple  # a profile record's (JSON pointer, value), identityMap left out
    identities: tuple  # (namespace, id), sorted
    event: tuple  # an event's (Bigtable column, cell JSON); () for a profile record

    @classmethod
    def of(cls, record):
        time_us = micros(record.record_time)
        entity = record.entity
        if record.kind == "event":
            attributes = ()
            event = (
                event_column(time_us, entity.get("_id", "")),
                event_cell(record.dataset, entity),
            )
        else:
            attributes = tuple(
                (pointer, value)
                for pointer, value in leaf_attributes(entity)
                if not pointer.startswith("/identityMap/")
            )
            event = ()
        return cls(
            record.dataset,
            record.kind,
            record.operation,
            merge.order_key(time_us, record.dataset, entity),
            attributes,
            tuple(identities_of(entity)),
            event,
        )


def person_key(record):
    """The row key the record's person is merged under: its primary identity's."""
    return row_key(*record.primary_identity)


def identities_of(entity):
    """The record's identities; primary_identity() has checked each when it was parsed."""
    return sorted({(namespace, identity_id) for namespace, identity_id, _ in identities(entity)})


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
    """The mutations of the updates folded so far and not yet written, per row, in order."""

    def __init__(self, policy, retention):
        self.policy = policy  # merge.MergePolicy
        self.retention = retention  # dataset -> days its events are kept
        self.rows = {}  # row key -> DirectRow

    def fold(self, key, update, state, read_row):
        """Folds the update into the person's state (changed in place) and adds the
        mutations of the cells that change. `read_row(key)` reads a stored row (a delete
        needs the person's stored events). Returns what happened, for a counter: the
        operation, or IGNORED_OLDER_THAN_DELETE."""
        order = update.order
        time_us = order.time_us
        if merge.is_deleted_before(state, order):
            return IGNORED_OLDER_THAN_DELETE
        before_identities = dict(state.identities)
        before, after = merge.apply(
            state,
            self.policy,
            order,
            update.dataset,
            update.operation,
            update.attributes,
            update.identities,
        )
        row = self._row(key)
        if state.reset == order:
            replace_cell(row, META_FAMILY, RESET_COLUMN, str(time_us), time_us)
        if state.deleted == order:
            self._delete_events_until(key, row, time_us, read_row)
            replace_cell(row, META_FAMILY, DELETED_COLUMN, str(time_us), time_us)
        for pointer in before.keys() | after.keys():
            if before.get(pointer) != after.get(pointer):
                column = pointer.encode("utf-8")
                if pointer in after:
                    winner = after[pointer]
                    replace_cell(
                        row,
                        ATTRIBUTES_FAMILY,
                        column,
                        attribute_cell(winner.value, winner.dataset),
                        winner.key.time_us,
                    )
                else:
                    row.delete_cell(ATTRIBUTES_FAMILY, column)
        for identity in before_identities.keys() | state.identities.keys():
            linked = state.identities.get(identity)
            if linked == before_identities.get(identity):
                continue
            identity_key = row_key(*identity)
            identity_row = None if identity_key == key else self._row(identity_key)
            if linked is None:
                row.delete_cell(IDENTITY_FAMILY, identity_column(*identity))
                if identity_row:
                    identity_row.delete_cell(LINKED_FAMILY, key)
            else:
                replace_cell(row, IDENTITY_FAMILY, identity_column(*identity), b"", linked.time_us)
                if identity_row:
                    replace_cell(identity_row, LINKED_FAMILY, key, b"", linked.time_us)
        if update.kind == "event" and update.operation != "delete":
            column, cell = update.event
            set_cell(row, events_family(self.retention[update.dataset]), column, cell, time_us)
        return update.operation

    def take(self):
        """The rows that have mutations, in the order first touched; empties the batch."""
        rows = [row for row in self.rows.values() if row._get_mutations()]
        self.rows = {}
        return rows

    def _row(self, key):
        if key not in self.rows:
            self.rows[key] = DirectRow(key)
        return self.rows[key]

    def _delete_events_until(self, key, row, time_us, read_row):
        """On delete: the person's events up to the delete's time go too."""
        columns = {}  # family -> event columns, stored or written earlier in this batch
        stored = read_row(key)
        for family, cells in stored.cells.items() if stored else []:
            columns.setdefault(family, set()).update(cells)
        for mutation in row._get_mutations():
            if is_events_family(getattr(mutation, "family", "")):
                columns.setdefault(mutation.family, set()).add(mutation.qualifier)
        until = TimestampRange(end=from_micros(time_us + 1000))
        for family, qualifiers in columns.items():
            if is_events_family(family):
                row.delete_cells(family, sorted(qualifiers), time_range=until)


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
