"""Lake branch: every valid record as typed Parquet, one folder per dataset and hour.

Partitions follow ingestion time: each record is stamped with the time the pipeline took
it in, so a record whose own timestamp is hours old is never late for its window (the
DirectRunner's Pub/Sub watermark is wall-clock time, and windows drop late data without a
word). The record's own time is the `_record_time` column. Rows: domain/lake_schema.py;
files: domain/lake_files.py.
"""

import datetime
import logging
import time
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.windowed_value import WindowedValue

from domain.lake_dedup import KEY_COLUMN, SeenKeys, message_key
from domain.lake_files import (
    arrow_ipc_bytes,
    partition_file_path,
    read_column,
    shard_files,
    table_in_schema,
    write_atomically,
)
from domain.lake_schema import arrow_schema, row_converter
from domain.records import FailedMessage
from domain.times import UTC
from transforms.per_process import PerProcess, PinnedDict

FAILED = "failed"
_GLOBAL_WINDOWS = (window.GlobalWindow(),)


class WriteToLake(beam.PTransform):
    """Returns outputs `files` (paths written) and `failed` (FailedMessages)."""

    def __init__(self, lake_path, catalog, window_seconds, dedup_seconds, shards=1):
        super().__init__()
        self.lake_path = lake_path
        self.schemas = PinnedDict({d: arrow_schema(catalog, d) for d in catalog.datasets})
        self.window_seconds = window_seconds
        self.dedup_seconds = dedup_seconds
        self.shards = shards

    def expand(self, records):
        rows = records | "ToLakeRows" >> beam.ParDo(
            _ToLakeRowFn(self.schemas, self.shards)
        ).with_outputs(FAILED, main="rows")
        files = rows.rows | "WriteParquetFiles" >> WriteParquetPartitions(
            self.lake_path, self.schemas, self.window_seconds, self.dedup_seconds
        )
        return {"files": files, FAILED: rows[FAILED]}


class WriteParquetPartitions(beam.PTransform):
    """((dataset, shard), table of rows as Arrow IPC bytes (arrow_ipc_bytes)), stamped with
    ingestion time -> a Parquet file per window, dataset and shard, without the copies of
    a message written within `dedup_seconds` (domain/lake_dedup.py). Returns the paths
    written."""

    def __init__(self, lake_path, schemas, window_seconds, dedup_seconds):
        super().__init__()
        self.lake_path = lake_path.rstrip("/")
        self.schemas = schemas  # dataset -> pyarrow schema
        self.window_seconds = window_seconds
        self.dedup_seconds = dedup_seconds

    def expand(self, keyed_rows):
        return (
            keyed_rows
            | "WindowByIngestionTime"
            >> beam.WindowInto(
                window.FixedWindows(self.window_seconds),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=self.window_seconds,
            )
            | "GroupIntoFiles" >> beam.GroupByKey()
            | "WriteFiles"
            >> beam.ParDo(_WriteParquetFn(self.lake_path, self.schemas, self.dedup_seconds))
        )


class _ToLakeRowFn(beam.DoFn):
    """Records -> ((dataset, shard), Arrow table of rows), stamped with the time the lake
    took them in.

    Rows travel in Arrow tables of up to BATCH rows (a bundle's rows of a dataset and
    shard), not one by one: the per-element cost of the shuffle and the windowing is paid
    per batch. A table travels as Arrow IPC bytes: Beam's fallback coder would pickle it,
    at a far higher cost per row. A row that pyarrow
    cannot convert goes to the dead letter alone: only a batch that fails to convert is
    tried row by row.
    """

    BATCH = 500

    def __init__(self, schemas, shards):
        self.schemas = schemas
        self.shards = shards

    def setup(self):
        self.converters = {}  # dataset -> row_converter

    def start_bundle(self):
        self.pending = {}  # (dataset, shard) -> [(record, row)]
        self.pending_count = 0
        self.first_ingested_at = None

    def process(self, record):
        ingested_at = time.time()
        try:
            if record.dataset not in self.converters:
                self.converters[record.dataset] = row_converter(self.schemas[record.dataset])
            row = self.converters[record.dataset](record.entity)
            row.update(
                _record_time=record.record_time,
                _publish_time=record.publish_time,
                _message_id=record.message_id,
                _ingested_at=datetime.datetime.fromtimestamp(ingested_at, UTC),
            )
            row[KEY_COLUMN] = key = message_key(record.dataset, record.payload)
        except Exception as error:
            yield beam.pvalue.TaggedOutput(FAILED, _lake_write_failure(record, error))
            return
        shard = key % self.shards  # by key, so that copies of a message meet in one shard
        self.pending.setdefault((record.dataset, shard), []).append((record, row))
        self.pending_count += 1
        if self.first_ingested_at is None:
            self.first_ingested_at = ingested_at
        if self.pending_count >= self.BATCH:
            yield from self._batches()

    def finish_bundle(self):
        yield from self._batches()

    def _batches(self):
        # A batch belongs to the window of its first row's ingestion time (rows of one
        # batch were taken in within the same bundle, milliseconds apart). Its window here
        # is the global one: WriteParquetPartitions windows by the time stamped, and the
        # dead letter does too. (Asking Beam for each record's window costs µs a record.)
        stamp = self.first_ingested_at
        for (dataset, shard), entries in self.pending.items():
            try:
                yield from self._batch(dataset, shard, entries, stamp)
            except Exception as error:  # a bug of ours: these records' dead letters, no more
                logging.exception("unexpected error making a lake batch of %s", dataset)
                for record, _ in entries:
                    failure = _internal_failure(record, error)
                    yield beam.pvalue.TaggedOutput(
                        FAILED, WindowedValue(failure, stamp, _GLOBAL_WINDOWS)
                    )
        self.pending = {}
        self.pending_count = 0
        self.first_ingested_at = None

    def _batch(self, dataset, shard, entries, stamp):
        schema = self.schemas[dataset]
        rows = [row for _, row in entries]
        failures = []
        try:
            table = pa.Table.from_pylist(rows, schema=schema)
        except Exception:
            rows = []
            for record, row in entries:
                try:
                    pa.Table.from_pylist([row], schema=schema)
                    rows.append(row)
                except Exception as error:
                    failures.append(_lake_write_failure(record, error))
            table = pa.Table.from_pylist(rows, schema=schema)
        # Made whole before any is output: a failure above dead-letters the batch once.
        out = [WindowedValue(f, stamp, _GLOBAL_WINDOWS) for f in failures]
        out = [beam.pvalue.TaggedOutput(FAILED, f) for f in out]
        if table.num_rows:
            encoded = arrow_ipc_bytes(table)
            out.append(WindowedValue(((dataset, shard), encoded), stamp, _GLOBAL_WINDOWS))
        return out


def _internal_failure(record, error):
    return FailedMessage.internal(
        error,
        "write_to_lake",
        record.payload,
        record.attributes,
        record.message_id,
        record.publish_time,
        record.dataset,
    )


def _lake_write_failure(record, error):
    return FailedMessage(
        payload=record.payload,
        attributes=record.attributes,
        error_class="lake_write",
        error_message=f"cannot write the record as Parquet: {error!r}"[:1000],
        error_pointer="",
        step="write_to_lake",
        dataset=record.dataset,
        message_id=record.message_id,
        publish_time=record.publish_time,
    )


def _first_copies(table, seen, dataset):
    """The table without the copies of messages `seen` holds, and its rows' keys."""
    column = table.column(KEY_COLUMN)
    keys = column.fill_null(0).to_numpy()
    first = seen.first_copies(keys)
    if column.null_count:  # rows made before the key existed (a --update): all kept
        first = np.union1d(first, np.flatnonzero(column.is_null().to_numpy()))
    if len(first) < table.num_rows:
        Metrics.counter("lake_copies_dropped", dataset).inc(table.num_rows - len(first))
        return table.take(first), keys[first]
    return table, keys


class _SeenByShard(dict):
    """(dataset, shard) -> SeenKeys (a dict subclass: Beam's Shared holds a weak reference)."""


class _WriteParquetFn(beam.DoFn):
    def __init__(self, lake_path, schemas, dedup_seconds):
        self.lake_path = lake_path
        self.schemas = schemas
        self.dedup_seconds = dedup_seconds
        # Made when the pipeline is built, so the same in every retry of a bundle but new
        # in every run: a restarted pipeline must not overwrite the files of the run before
        # it that fell in the same window.
        self.run_id = uuid.uuid4().hex[:8]
        self.seen_handle = PerProcess()  # (dataset, shard) -> SeenKeys, for the process

    def setup(self):
        self.seen = self.seen_handle.acquire(_SeenByShard)

    def process(self, element, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (dataset, shard), tables = element
        start = window.start.to_utc_datetime(has_tz=True)
        path = partition_file_path(
            self.lake_path,
            dataset,
            start,
            window.end.to_utc_datetime(has_tz=True),
            shard,
            pane.index,
            self.run_id,
        )
        table = table_in_schema(tables, self.schemas[dataset])
        seen = self._seen_keys(dataset, shard, start)
        keys = None
        if KEY_COLUMN in table.column_names:  # every schema of the pipeline's has it
            table, keys = _first_copies(table, seen, dataset)
        if not table.num_rows:
            return
        write_atomically(path, table)
        if keys is not None:
            seen.add(path, start.timestamp(), keys)
        Metrics.counter("lake_rows", dataset).inc(table.num_rows)
        yield path

    def _seen_keys(self, dataset, shard, start):
        """The keys of the horizon's files of this dataset and shard, the files of other
        runs and workers read from the lake (once each), this process's own kept."""
        seen = self.seen.get((dataset, shard))
        if seen is None:
            seen = self.seen[(dataset, shard)] = SeenKeys(self.dedup_seconds)
        seen.expire(start.timestamp())
        since = start - datetime.timedelta(seconds=self.dedup_seconds)
        for path, file_start in shard_files(self.lake_path, dataset, shard, since, start):
            if not seen.known(path):
                try:
                    keys = read_column(path, KEY_COLUMN)
                except Exception as error:  # not a Parquet file of ours: no keys, no stop
                    logging.warning(
                        "lake dedup: %s is unreadable, its keys unknown: %r", path, error
                    )
                    keys = None
                seen.add(path, file_start, [] if keys is None else keys.fill_null(0).to_numpy())
        return seen
