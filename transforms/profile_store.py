"""Profile branch: each record of a profile-enabled dataset written to Bigtable as a
fragment of its person, with its identities as links (domain/profile_writes.py).

The writes are blind: no read, no state, no shuffle to a per-person step, so a record is
written in the bundle that parsed it. Who is one person and what their profile says is
resolved when it is read (domain/profile_lookup.py). A bundle's cells go in one
MutateRows call per MAX_MUTATIONS_PER_CALL mutations, all the cells of a row in one
entry; a retried bundle writes the same cells again.
"""

import functools

import apache_beam as beam
from apache_beam.metrics import Metrics

from domain.profile_writes import PendingRows, fragment_cells, mutation_batches
from transforms.per_process import PerProcess

MAX_ROWS_UNWRITTEN = 10_000  # rows of a bundle held before they are written


class WriteProfiles(beam.PTransform):
    """Writes the records of profile-enabled datasets into the profile table."""

    def __init__(self, project, instance, table, catalog):
        super().__init__()
        self.project, self.instance, self.table = project, instance, table
        self.retention = {d.id: d.retention_days for d in catalog.datasets.values()}

    def expand(self, records):
        return records | "WriteFragments" >> beam.ParDo(
            _WriteFragmentsFn(self.project, self.instance, self.table, self.retention)
        )


class _WriteFragmentsFn(beam.DoFn):
    def __init__(self, project, instance, table, retention):
        self.project, self.instance, self.table_id = project, instance, table
        self.retention = retention
        self.table_handle = PerProcess()  # a client does not pickle: made on the worker

    def setup(self):
        self.table = self.table_handle.acquire(self._open_table)

    def _open_table(self):
        from google.cloud import bigtable

        return bigtable.Client(project=self.project).instance(self.instance).table(self.table_id)

    def start_bundle(self):
        self.pending = PendingRows()

    def process(self, record):
        if not record.feeds_profile:
            return
        for _, _, why in record.refused_identities:
            _counter("identity_refused", why).inc()
        if record.primary_identity is None:  # its primary value is refused: lake only
            _counter("profiles", "primary_identity_refused").inc()
            return
        for key, cell in fragment_cells(record, self.retention[record.dataset]):
            self.pending.add(key, cell)
        _counter("profiles", record.operation).inc()
        if len(self.pending) >= MAX_ROWS_UNWRITTEN:
            self.write_rows()

    def finish_bundle(self):
        self.write_rows()

    def write_rows(self):
        """Writes the rows made so far; a failure fails the bundle, which is retried."""
        for batch in mutation_batches(self.pending.take()):
            failed = [s for s in self.table.mutate_rows(batch) if s.code != 0]
            if failed:
                raise RuntimeError(
                    f"{len(failed)} of {len(batch)} Bigtable row mutations "
                    f"failed, first: {failed[0].message}"
                )


@functools.cache  # a few names; making a counter costs µs
def _counter(namespace, name):
    return Metrics.counter(namespace, name)
