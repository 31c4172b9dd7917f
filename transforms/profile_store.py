"""Profile branch: merges records into one Bigtable row per person, exactly.

Records are keyed by their primary identity's row key, so one stateful step sees every
record of a person, one at a time. It folds each into the person's ProfileState (see
transforms/merge.py), which makes the result a pure function of the set of records,
and writes only what changed. Within a bundle, all the mutations of a row go in one
entry of one MutateRows call, in order: Bigtable applies the entries of a call in any
order, but the mutations of one entry in the order given.

Layout, one table (README, "The profile store"):
- row key: transforms/identity.py.
- `attr`: a column per attribute, named by JSON pointer; the value is
  `{"value": ..., "dataset": ...}`, the cell time the winning record's time.
- `meta`: columns `reset` (the last create or delete) and `deleted` (the last delete),
  each the record's time in microseconds.
- `identity`: in a profile's row, a column per linked identity, `<namespace>#<id>`.
- `linked`: in an identity's own row, a column per profile it belongs to (its row key).
- `events_<N>d`: experience events kept N days (the dataset's `retention_days`), a column
  per event named `<9999999999999 - time in ms>#<_id>`, so a row reads newest first.
"""
import datetime
import functools
import json
import typing
import urllib.parse

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from google.cloud.bigtable import column_family
from google.cloud.bigtable.data.mutations import DeleteRangeFromColumn, SetCell
from google.cloud.bigtable.row import DirectRow
from google.cloud.bigtable.row_filters import TimestampRange

from transforms import merge
from transforms.identity import identities, row_key

ATTRIBUTES_FAMILY = "attr"
META_FAMILY = "meta"
IDENTITY_FAMILY = "identity"
LINKED_FAMILY = "linked"
RESET_COLUMN = b"reset"
DELETED_COLUMN = b"deleted"
MAX_EVENT_MS = 9_999_999_999_999
MAX_MUTATIONS_PER_CALL = 50_000  # Bigtable's limit is 100,000 per MutateRows call
MAX_UPDATES_UNWRITTEN = 10_000  # records folded before their mutations are written
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# The cells' JSON, as json.dumps(..., ensure_ascii=False) writes it, one encoder for all.
_CELL_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def events_family(retention_days):
    return f"events_{retention_days}d"


def column_families(catalog=None):
    """The table's column families and their garbage-collection rules."""
    families = {
        ATTRIBUTES_FAMILY: column_family.MaxVersionsGCRule(1),
        META_FAMILY: column_family.MaxVersionsGCRule(1),
        IDENTITY_FAMILY: column_family.MaxVersionsGCRule(1),
        LINKED_FAMILY: column_family.MaxVersionsGCRule(1),
    }
    for days in sorted({d.retention_days for d in (catalog.datasets.values() if catalog else [])
                        if d.feeds_profile and d.kind == "event"}):
        families[events_family(days)] = column_family.GCRuleUnion([
            column_family.MaxVersionsGCRule(1),
            column_family.MaxAgeGCRule(datetime.timedelta(days=days))])
    return families


def identity_column(namespace, identity_id):
    return f"{_quoted_namespace(namespace)}#{identity_id}".encode("utf-8")


@functools.lru_cache(maxsize=1024)  # a handful of namespaces; quote costs µs a call
def _quoted_namespace(namespace):
    return urllib.parse.quote(namespace, safe="")


def event_column(time_us, event_id):
    return f"{MAX_EVENT_MS - time_us // 1000:013d}#{event_id}".encode("utf-8")


class WriteProfiles(beam.PTransform):
    """Merges the records of profile-enabled datasets into the profile table."""

    def __init__(self, project, instance, table, catalog):
        super().__init__()
        self.project, self.instance, self.table = project, instance, table
        self.policy = merge.MergePolicy(tuple(catalog.dataset_precedence))
        self.retention = {d.id: d.retention_days for d in catalog.datasets.values()}

    def expand(self, records):
        return (
            records
            | "KeyByPerson" >> key_by_person()
            | "MergeIntoBigtable" >> beam.ParDo(_MergeIntoBigtableFn(
                self.project, self.instance, self.table, self.policy, self.retention)))


class ProfileUpdate(typing.NamedTuple):
    """What the merge needs of a record, worked out before the shuffle to the person's
    step, so that the record's dict does not travel: pickling it there and back cost
    about 10 µs a record, and these are made once either way."""
    dataset: str
    kind: str
    operation: str
    order: merge.OrderKey
    attributes: tuple  # a profile record's (JSON pointer, value), identityMap left out
    identities: tuple  # (namespace, id), sorted
    event: tuple  # an event's (Bigtable column, cell JSON); () for a profile record

    @classmethod
    def of(cls, record):
        time_us = _micros(record.record_time)
        entity = record.entity
        if record.kind == "event":
            attributes = ()
            event = (event_column(time_us, entity.get("_id", "")),
                     _CELL_JSON.encode({"dataset": record.dataset, "event": entity}))
        else:
            attributes = tuple((pointer, value) for pointer, value in leaf_attributes(entity)
                               if not pointer.startswith("/identityMap/"))
            event = ()
        return cls(record.dataset, record.kind, record.operation,
                   merge.order_key(time_us, record.dataset, entity), attributes,
                   tuple(identities_of(entity)), event)


class ProfileUpdateCoder(beam.coders.Coder):
    """A ProfileUpdate as a plain tuple in Beam's own coder of Python values. The default,
    pickling the NamedTuples, cost about 19 µs an update encoded and decoded; this, 5."""

    def __init__(self):
        self._values = beam.coders.FastPrimitivesCoder().get_impl()

    def encode(self, update):
        return self._values.encode(
            (update.dataset, update.kind, update.operation, tuple(update.order),
             update.attributes, update.identities, update.event))

    def decode(self, encoded):
        dataset, kind, operation, order, attributes, identities, event = \
            self._values.decode(encoded)
        return ProfileUpdate(dataset, kind, operation, merge.OrderKey(*order), attributes,
                             identities, event)

    def is_deterministic(self):
        return False  # dict values keep their order: fine for a value, not for a key

    def to_type_hint(self):
        return ProfileUpdate

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


beam.coders.registry.register_coder(ProfileUpdate, ProfileUpdateCoder)


def key_by_person():
    """The step that keys the records of profile-enabled datasets by person: the key's
    coder is bytes (deterministic, as the state's key must be), the value's ours."""
    return beam.FlatMap(keyed_by_person).with_output_types(typing.Tuple[bytes, ProfileUpdate])


def keyed_by_person(record):
    """(row key of the person, ProfileUpdate) for a record of a profile-enabled dataset."""
    if record.feeds_profile:
        yield row_key(*record.primary_identity), ProfileUpdate.of(record)


class _MergeIntoBigtableFn(beam.DoFn):
    PROFILE = ReadModifyWriteStateSpec("profile", PickleCoder())

    def __init__(self, project, instance, table, policy, retention):
        self.project, self.instance, self.table_id = project, instance, table
        self.policy = policy
        self.retention = retention

    def setup(self):
        self.table = _profile_table(self.project, self.instance, self.table_id)

    def start_bundle(self):
        self.rows = {}  # row key -> DirectRow holding the mutations not written yet, in order
        self.updates_unwritten = 0

    def process(self, element, stored=beam.DoFn.StateParam(PROFILE)):
        key, update = element
        state = stored.read()
        if state is None:
            state = self.stored_profile(key)
        self.fold(key, update, state)
        stored.write(state)
        self.updates_unwritten += 1
        if self.updates_unwritten >= MAX_UPDATES_UNWRITTEN:
            self.write_rows()

    def stored_profile(self, key):
        """The person's ProfileState as the table has it (the first record of a person
        this worker sees, or the first after a restart)."""
        return state_from_row(self.table.read_row(key))

    def fold(self, key, update, state):
        order = update.order
        time_us = order.time_us
        if merge.is_deleted_before(state, order):
            _profiles_counter("older_than_delete_ignored").inc()
            return
        before_identities = dict(state.identities)
        before, after = merge.apply(state, self.policy, order, update.dataset,
                                    update.operation, update.attributes, update.identities)
        row = self._row(key)
        if state.reset == order:
            _replace_cell(row, META_FAMILY, RESET_COLUMN, str(time_us), time_us)
        if state.deleted == order:
            self._delete_events_until(key, row, time_us)
            _replace_cell(row, META_FAMILY, DELETED_COLUMN, str(time_us), time_us)
        for pointer in before.keys() | after.keys():
            if before.get(pointer) != after.get(pointer):
                column = pointer.encode("utf-8")
                if pointer in after:
                    winner = after[pointer]
                    _replace_cell(row, ATTRIBUTES_FAMILY, column, _CELL_JSON.encode(
                        {"value": winner.value, "dataset": winner.dataset}), winner.key.time_us)
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
                _replace_cell(row, IDENTITY_FAMILY, identity_column(*identity), b"",
                              linked.time_us)
                if identity_row:
                    _replace_cell(identity_row, LINKED_FAMILY, key, b"", linked.time_us)
        if update.kind == "event" and update.operation != "delete":
            column, cell = update.event
            _set_cell(row, events_family(self.retention[update.dataset]), column, cell, time_us)
        _profiles_counter(update.operation).inc()

    def finish_bundle(self):
        self.write_rows()

    def write_rows(self):
        """Writes the mutations made so far. Within a large bundle this runs every
        MAX_UPDATES_UNWRITTEN updates: held to the bundle's end, a backlog's mutations
        grew without bound, and the garbage collector walked them all, again and again.
        Should the bundle fail after, its retry folds the same records into the same
        state and writes the same cells again."""
        rows = [row for row in self.rows.values() if row._get_mutations()]
        for batch in mutation_batches(rows):
            failed = [s for s in self.table.mutate_rows(batch) if s.code != 0]
            if failed:  # the bundle is retried, state included
                raise RuntimeError(f"{len(failed)} of {len(batch)} Bigtable row mutations "
                                   f"failed, first: {failed[0].message}")
        self.rows = {}
        self.updates_unwritten = 0

    def _row(self, key):
        if key not in self.rows:
            self.rows[key] = DirectRow(key)
        return self.rows[key]

    def _delete_events_until(self, key, row, time_us):
        """On delete: the person's events up to the delete's time go too."""
        columns = {}  # family -> event columns, stored or written earlier in this bundle
        stored = self.table.read_row(key)
        for family, cells in (stored.cells.items() if stored else []):
            columns.setdefault(family, set()).update(cells)
        for mutation in row._get_mutations():
            if getattr(mutation, "family", "").startswith("events_"):
                columns.setdefault(mutation.family, set()).add(mutation.qualifier)
        until = TimestampRange(end=_datetime(time_us + 1000))
        for family, qualifiers in columns.items():
            if family.startswith("events_"):
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


@functools.lru_cache(maxsize=None)
def _profile_table(project, instance, table):
    # Made on the worker (a client does not pickle), once per process: the DirectRunner
    # sets a DoFn up again for every bundle.
    from google.cloud import bigtable
    return bigtable.Client(project=project).instance(instance).table(table)


def _replace_cell(row, family, column, value, time_us):
    """Deletes every version first: the new cell may be older than the one it replaces.
    The mutations are those of row.delete_cell and row.set_cell, made directly: those
    methods cost several microseconds a cell in argument handling."""
    mutations = row._get_mutations()
    mutations.append(DeleteRangeFromColumn(family, column))
    mutations.append(SetCell(family, column, value, time_us - time_us % 1000))


def _set_cell(row, family, column, value, time_us):
    """The mutation row.set_cell(family, column, value, timestamp=...) adds, Bigtable's
    millisecond cell time included, made from the microseconds themselves: set_cell wants
    a datetime and turns it back into microseconds, several microseconds a cell."""
    row._get_mutations().append(SetCell(family, column, value, time_us - time_us % 1000))


def state_from_row(row):
    """A ProfileState rebuilt from a stored row (after a restart the state is empty).
    Stored cells carry no tie-break: records with equal times may then merge otherwise."""
    state = merge.ProfileState()
    if row is None:
        return state
    cells = row.cells
    for qualifier, versions in cells.get(ATTRIBUTES_FAMILY, {}).items():
        stored = json.loads(versions[0].value)
        key = merge.OrderKey(_micros(versions[0].timestamp), "")
        state.candidates[qualifier.decode()] = {
            stored["dataset"]: merge.Candidate(key, stored["dataset"], stored["value"])}
    meta = cells.get(META_FAMILY, {})
    if RESET_COLUMN in meta:
        state.reset = merge.OrderKey(int(meta[RESET_COLUMN][0].value), "")
    if DELETED_COLUMN in meta:
        state.deleted = merge.OrderKey(int(meta[DELETED_COLUMN][0].value), "")
    for qualifier, versions in cells.get(IDENTITY_FAMILY, {}).items():
        namespace, _, identity_id = qualifier.decode().partition("#")
        state.identities[(urllib.parse.unquote(namespace), identity_id)] = merge.OrderKey(
            _micros(versions[0].timestamp), "")
    return state


def identities_of(entity):
    """The record's identities; primary_identity() has checked each when it was parsed."""
    return sorted({(namespace, identity_id)
                   for namespace, identity_id, _ in identities(entity)})


@functools.lru_cache(maxsize=None)  # one per operation; making a counter costs µs
def _profiles_counter(name):
    return Metrics.counter("profiles", name)


def leaf_attributes(entity):
    """[(JSON pointer, value)] for every leaf of a record; an array is one leaf, and so is
    an empty object."""
    leaves = []
    _collect_leaves(entity, "", leaves)
    return leaves


def _collect_leaves(value, pointer, leaves):
    for key, child in value.items():
        child_pointer = pointer + "/" + key.replace("~", "~0").replace("/", "~1")
        if isinstance(child, dict) and child:
            _collect_leaves(child, child_pointer, leaves)
        else:
            leaves.append((child_pointer, child))


def _micros(moment):
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1)


def _datetime(micros):
    return datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.timezone.utc)
