"""Dead letter: every message that fails, at any step, kept in two places with its reason
(the forms: domain/dead_letters.py): the dead-letter topic, for replay, and the lake's
`_errors` dataset, for SQL."""

import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA, dead_letter_attributes, error_row
from domain.lake_files import arrow_ipc_bytes
from transforms.lake import WriteParquetPartitions


class DeadLetter(beam.PTransform):
    """Publishes each FailedMessage to the topic and writes it to the lake's `_errors`."""

    def __init__(self, topic, lake_path, window_seconds):
        super().__init__()
        self.topic = topic
        self.lake_path = lake_path
        self.window_seconds = window_seconds

    def expand(self, failed_messages):
        counted = failed_messages | "CountFailures" >> beam.Map(_count)
        _ = (
            counted
            | "ToPubsubMessages" >> beam.Map(to_pubsub_message)
            | "PublishToDeadLetterTopic" >> WriteToPubSub(self.topic, with_attributes=True)
        )
        return (
            counted
            | "ToErrorRows" >> error_tables()
            | "WriteErrorFiles"
            >> WriteParquetPartitions(
                self.lake_path, {ERRORS_DATASET: ERRORS_SCHEMA}, self.window_seconds
            )
        )


def to_pubsub_message(failed):
    return PubsubMessage(failed.payload, dead_letter_attributes(failed))


def error_tables():
    """FailedMessages -> ((`_errors`, shard 0), Arrow table of their rows as IPC bytes): the
    lake writer's one input form, a table per bundle (or per BATCH messages) rather than
    per message, stamped with the time the first of them was taken in."""
    return beam.ParDo(_ErrorTablesFn())


class _ErrorTablesFn(beam.DoFn):
    BATCH = 500
    _GLOBAL_WINDOWS = (window.GlobalWindow(),)  # WriteParquetPartitions windows by the stamp

    def start_bundle(self):
        self.rows, self.first_taken_in = [], None

    def process(self, failed):
        taken_in = time.time()
        if self.first_taken_in is None:
            self.first_taken_in = taken_in
        self.rows.append(error_row(failed, taken_in))
        if len(self.rows) >= self.BATCH:
            yield self._table()

    def finish_bundle(self):
        if self.rows:
            yield self._table()

    def _table(self):
        table = pa.Table.from_pylist(self.rows, schema=ERRORS_SCHEMA)
        stamped = WindowedValue(
            ((ERRORS_DATASET, 0), arrow_ipc_bytes(table)), self.first_taken_in, self._GLOBAL_WINDOWS
        )
        self.rows, self.first_taken_in = [], None
        return stamped


def _count(failed):
    Metrics.counter("dead_letter", failed.error_class).inc()
    return failed
