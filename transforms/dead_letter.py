"""Dead letter: every message that fails, at any step, kept in two places with its reason
(the forms: domain/dead_letters.py): the dead-letter topic, for replay, and the lake's
`_errors` dataset, for SQL."""

import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.transforms import window

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
            | "ToErrorRows" >> beam.Map(to_error_row)
            | "WriteErrorFiles"
            >> WriteParquetPartitions(
                self.lake_path, {ERRORS_DATASET: ERRORS_SCHEMA}, self.window_seconds
            )
        )


def to_pubsub_message(failed):
    return PubsubMessage(failed.payload, dead_letter_attributes(failed))


def to_error_row(failed):
    """((`_errors`, shard 0), a one-row table as IPC bytes), stamped with the time the
    dead letter took it in: the lake writer's one input form."""
    ingested_at = time.time()
    table = pa.Table.from_pylist([error_row(failed, ingested_at)], schema=ERRORS_SCHEMA)
    return window.TimestampedValue(((ERRORS_DATASET, 0), arrow_ipc_bytes(table)), ingested_at)


def _count(failed):
    Metrics.counter("dead_letter", failed.error_class).inc()
    return failed
