"""Profile branch: each record of a profile-enabled dataset written to Bigtable as a
fragment of its person, with its identities as links (domain/profile_writes.py).

The writes are blind: no read, no state, no shuffle to a per-person step, so a record is
written in the bundle that parsed it. Who is one person and what their profile says is
resolved when it is read (domain/profile_lookup.py). A bundle's cells go in one
MutateRows call per MAX_MUTATIONS_PER_CALL mutations, all the cells of a row in one
entry; a retried bundle writes the same cells again.

A record whose cells cannot be made, or one of whose rows Bigtable refuses for good
(PERMANENT_CODES), is a dead letter of class `internal` at step `write_profiles` (output
`failed`); the rest of the bundle is written. A transient refusal fails the bundle, which
is retried.
"""

import functools
import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from domain.profile_writes import PendingRows, fragment_cells, mutation_batches
from domain.records import FailedMessage
from transforms.per_process import PerProcess

MAX_ROWS_UNWRITTEN = 10_000  # rows of a bundle held before they are written
FAILED = "failed"
STEP = "write_profiles"
# gRPC codes a retry does not change: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
# PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED
PERMANENT_CODES = frozenset({3, 5, 6, 7, 9, 11, 12})
_GLOBAL_WINDOWS = (window.GlobalWindow(),)


class WriteProfiles(beam.PTransform):
    """Writes the records of profile-enabled datasets into the profile table."""

    def __init__(self, project, instance, table, catalog):
        super().__init__()
        self.project, self.instance, self.table = project, instance, table
        self.retention = {d.id: d.retention_days for d in catalog.datasets.values()}

    def expand(self, records):
        """Returns {"failed": FailedMessages}."""
        written = records | "WriteFragments" >> beam.ParDo(
            _WriteFragmentsFn(self.project, self.instance, self.table, self.retention)
        ).with_outputs(FAILED, main="written")
        return {FAILED: written[FAILED]}


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
        self.sources = {}  # row key -> the records of the bundle with cells in it
        self.refused = []  # the dead letters of rows refused for good, not yet output

    def process(self, record):
        try:
            if not record.feeds_profile:
                return
            for _, _, why in record.refused_identities:
                _counter("identity_refused", why).inc()
            if record.primary_identity is None:  # its primary value is refused: lake only
                _counter("profiles", "primary_identity_refused").inc()
                return
            cells = fragment_cells(record, self.retention[record.dataset])
        except Exception as error:  # a bug of ours: this record's dead letter, no more
            logging.exception("unexpected error making the cells of %s", record.message_id)
            yield beam.pvalue.TaggedOutput(FAILED, _failure(record, error))
            return
        for key, cell in cells:
            self.pending.add(key, cell)
            self.sources.setdefault(key, []).append(record)
        _counter("profiles", record.operation).inc()
        if len(self.pending) >= MAX_ROWS_UNWRITTEN:
            self.write_rows()
            yield from self._take_refused()

    def finish_bundle(self):
        self.write_rows()
        return self._take_refused()

    def write_rows(self):
        """Writes the rows made so far. A row refused for good: each record with cells in
        it is a dead letter (in self.refused); any other refusal fails the bundle, which
        is retried."""
        sources, self.sources = self.sources, {}
        refused, transient = {}, []
        for batch in mutation_batches(self.pending.take()):
            for row, status in zip(batch, self.table.mutate_rows(batch), strict=True):
                if status.code == 0:
                    continue
                if status.code not in PERMANENT_CODES:
                    transient.append(status)
                    continue
                for record in sources.get(row.row_key, ()):
                    refused.setdefault(id(record), (record, row.row_key, status))
        if transient:
            raise RuntimeError(
                f"{len(transient)} Bigtable row mutations failed, first: {transient[0].message}"
            )
        stamp = time.time()
        for record, key, status in refused.values():
            error = RuntimeError(f"Bigtable refused row {key!r}: {status.code} {status.message}")
            logging.error("record %s not in the profile store: %s", record.message_id, error)
            failure = WindowedValue(_failure(record, error), stamp, _GLOBAL_WINDOWS)
            self.refused.append(beam.pvalue.TaggedOutput(FAILED, failure))

    def _take_refused(self):
        refused, self.refused = self.refused, []
        return refused


def _failure(record, error):
    return FailedMessage.internal(
        error,
        STEP,
        record.payload,
        record.attributes,
        record.message_id,
        record.publish_time,
        record.dataset,
    )


@functools.cache  # a few names; making a counter costs µs
def _counter(namespace, name):
    return Metrics.counter(namespace, name)
