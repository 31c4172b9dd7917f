"""Profile branch: each record of a profile-enabled dataset written to Bigtable as a
fragment of its person, with its identities as links (domain/profile_writes.py).

The writes are blind: no read, no state, no shuffle to a per-person step, so a record is
written in the bundle that parsed it. Who is one person and what their profile says is
resolved when it is read (domain/profile_lookup.py). A bundle's cells go in one
MutateRows call per MAX_MUTATIONS_PER_CALL mutations, all the cells of a row in one
entry; a retried bundle writes the same cells again.

A record whose cells cannot be made, or one of whose rows Bigtable refuses for good
(PERMANENT_CODES), is a dead letter of class `internal` at step `write_profiles` (output
`failed`); the rest of the bundle is written. A transient failure (Bigtable unreachable,
frozen, overloaded) is waited out here, with back-off and a WARNING each time, for as long
as it lasts: the rows it failed are written again, never dropped. It must not fail the
bundle: the DirectRunner retries a failed bundle 4 times and then fails the pipeline, and
an outage of minutes would outlast that.
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
# One MutateRows call: the client's own retries of it end after CALL_DEADLINE_SECONDS, each
# attempt after ATTEMPT_TIMEOUT_SECONDS (a frozen server never answers), so that an outage
# is seen, and logged, within a minute.
CALL_DEADLINE_SECONDS = 60
ATTEMPT_TIMEOUT_SECONDS = 20
MAX_BACKOFF_SECONDS = 30
_GLOBAL_WINDOWS = (window.GlobalWindow(),)
_LOG = logging.getLogger(__name__)


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
        it is a dead letter (in self.refused); any other failure is tried again until it
        works (_mutate)."""
        sources, self.sources = self.sources, {}
        refused = {}
        for batch in mutation_batches(self.pending.take()):
            for row, status in zip(batch, self._mutate(batch), strict=True):
                if status.code == 0:
                    continue
                for record in sources.get(row.row_key, ()):
                    refused.setdefault(id(record), (record, row.row_key, status))
        stamp = time.time()
        for record, key, status in refused.values():
            error = RuntimeError(f"Bigtable refused row {key!r}: {status.code} {status.message}")
            logging.error("record %s not in the profile store: %s", record.message_id, error)
            failure = WindowedValue(_failure(record, error), stamp, _GLOBAL_WINDOWS)
            self.refused.append(beam.pvalue.TaggedOutput(FAILED, failure))

    def _mutate(self, batch):
        """The status of each row of `batch`, each 0 or a permanent refusal: rows that fail
        otherwise, or a call that fails as a whole, are sent again, backing off, until
        Bigtable answers. A call refused for good (a permanent code) still raises."""
        from google.api_core import exceptions
        from google.cloud.bigtable.table import DEFAULT_RETRY

        retry = DEFAULT_RETRY.with_deadline(CALL_DEADLINE_SECONDS)
        statuses = [None] * len(batch)
        waiting = list(range(len(batch)))  # indexes of the rows not yet written or refused
        failures = 0
        while True:
            try:
                answers = self.table.mutate_rows(
                    [batch[i] for i in waiting], retry=retry, timeout=ATTEMPT_TIMEOUT_SECONDS
                )
                problem = None
            except exceptions.GoogleAPICallError as error:
                code = error.grpc_status_code
                if code is not None and code.value[0] in PERMANENT_CODES:
                    raise
                answers, problem = None, f"{type(error).__name__}: {error}"
            except Exception as error:  # unreachable, a broken channel: waited out too
                answers, problem = None, f"{type(error).__name__}: {error}"
            if answers is not None:
                left = []
                for index, status in zip(waiting, answers, strict=True):
                    if status.code == 0 or status.code in PERMANENT_CODES:
                        statuses[index] = status
                    else:
                        left.append((index, status))
                if not left:
                    if failures:
                        _LOG.warning(
                            "Bigtable took the profile rows again after %d failures", failures
                        )
                    return statuses
                waiting = [index for index, _ in left]
                problem = f"{len(left)} row mutations failed, first: {left[0][1].message}"
            failures += 1
            backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(failures, 8))
            _LOG.warning(
                "writing %d profile rows to Bigtable failed (%s), %d in a row; "
                "trying again in %.1f s",
                len(waiting),
                problem,
                failures,
                backoff,
            )
            time.sleep(backoff)

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
