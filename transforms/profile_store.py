"""Profile branch: merges records into one Bigtable row per person, exactly.

Records are keyed by their primary identity's row key, so one stateful step sees every
record of a person, one at a time. It folds each into the person's ProfileState
(domain/merge.py), which makes the result a pure function of the set of records, and
writes only what changed (domain/profile_writes.py; the layout: domain/profile_table.py).
"""

import functools

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from domain import merge
from domain.profile_table import state_from_row
from domain.profile_writes import PendingRows, ProfileUpdate, mutation_batches, person_key
from transforms.per_process import PerProcess

MAX_UPDATES_UNWRITTEN = 10_000  # records folded before their mutations are written


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
            | "MergeIntoBigtable"
            >> beam.ParDo(
                _MergeIntoBigtableFn(
                    self.project, self.instance, self.table, self.policy, self.retention
                )
            )
        )


class ProfileUpdateCoder(beam.coders.Coder):
    """A ProfileUpdate as a plain tuple in Beam's own coder of Python values, much
    cheaper than pickling the NamedTuples."""

    def __init__(self):
        self._values = beam.coders.FastPrimitivesCoder().get_impl()

    def encode(self, update):
        return self._values.encode(
            (
                update.dataset,
                update.kind,
                update.operation,
                tuple(update.order),
                update.attributes,
                update.identities,
                update.event,
            )
        )

    def decode(self, encoded):
        dataset, kind, operation, order, attributes, identities, event = self._values.decode(
            encoded
        )
        return ProfileUpdate(
            dataset, kind, operation, merge.OrderKey(*order), attributes, identities, event
        )

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
    return beam.FlatMap(keyed_by_person).with_output_types(tuple[bytes, ProfileUpdate])


def keyed_by_person(record):
    """(row key of the person, ProfileUpdate) for a record of a profile-enabled dataset."""
    if record.feeds_profile:
        yield person_key(record), ProfileUpdate.of(record)


class _MergeIntoBigtableFn(beam.DoFn):
    PROFILE = ReadModifyWriteStateSpec("profile", PickleCoder())

    def __init__(self, project, instance, table, policy, retention):
        self.project, self.instance, self.table_id = project, instance, table
        self.policy = policy
        self.retention = retention
        self.table_handle = PerProcess()  # a client does not pickle: made on the worker

    def setup(self):
        self.table = self.table_handle.acquire(self._open_table)

    def _open_table(self):
        from google.cloud import bigtable

        return bigtable.Client(project=self.project).instance(self.instance).table(self.table_id)

    def start_bundle(self):
        self.pending = PendingRows(self.policy, self.retention)
        self.updates_unwritten = 0

    def process(self, element, stored=beam.DoFn.StateParam(PROFILE)):
        key, update = element
        state = stored.read()
        if state is None:
            state = self.stored_profile(key)
        _profiles_counter(self.pending.fold(key, update, state, self.read_row)).inc()
        stored.write(state)
        self.updates_unwritten += 1
        if self.updates_unwritten >= MAX_UPDATES_UNWRITTEN:
            self.write_rows()

    def read_row(self, key):
        return self.table.read_row(key)

    def stored_profile(self, key):
        """The person's ProfileState as the table has it (the first record of a person
        this worker sees, or the first after a restart)."""
        return state_from_row(self.table.read_row(key))

    def finish_bundle(self):
        self.write_rows()

    def write_rows(self):
        """Writes the mutations made so far. Within a large bundle this runs every
        MAX_UPDATES_UNWRITTEN updates: held to the bundle's end, a backlog's mutations
        grow without bound, and the garbage collector walks them all, again and again.
        Should the bundle fail after, its retry folds the same records into the same
        state and writes the same cells again."""
        for batch in mutation_batches(self.pending.take()):
            failed = [s for s in self.table.mutate_rows(batch) if s.code != 0]
            if failed:  # the bundle is retried, state included
                raise RuntimeError(
                    f"{len(failed)} of {len(batch)} Bigtable row mutations "
                    f"failed, first: {failed[0].message}"
                )
        self.updates_unwritten = 0


@functools.cache  # one per operation; making a counter costs µs
def _profiles_counter(name):
    return Metrics.counter("profiles", name)
