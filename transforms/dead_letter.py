"""Dead letter: every message that fails, at any step, kept in two places with its reason.

- the dead-letter Pub/Sub topic: the payload unchanged, the reason in `error_*`
  attributes, for replay (`ingest replay`);
- the lake's `_errors` dataset: payload, attributes, dataset, error class, errors, step,
  publish and processing time, for diagnosis with SQL.
"""
import datetime
import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.transforms import window

from transforms.lake import WriteParquetPartitions

ERRORS_DATASET = "_errors"
MAX_ATTRIBUTE_VALUE_BYTES = 1024  # Pub/Sub's limit on an attribute value
# The attributes the pipeline adds; `ingest replay` takes them off again.
ERROR_ATTRIBUTES = ("error_class", "error_message", "error_pointer", "error_step",
                    "error_dataset")
_TIME = pa.timestamp("us", tz="UTC")
ERRORS_SCHEMA = pa.schema([
    ("payload", pa.binary()),
    ("attributes", pa.map_(pa.string(), pa.string())),
    ("dataset", pa.string()),
    ("error_class", pa.string()),
    ("error_message", pa.string()),
    ("error_pointer", pa.string()),
    ("errors", pa.list_(pa.struct(
        [("pointer", pa.string()), ("keyword", pa.string()), ("message", pa.string())]))),
    ("step", pa.string()),
    ("_publish_time", _TIME),
    ("_ingested_at", _TIME),
    ("_message_id", pa.string()),
])


class DeadLetter(beam.PTransform):
    """Publishes each FailedMessage to the topic and writes it to the lake's `_errors`."""

    def __init__(self, topic, lake_path, window_seconds):
        super().__init__()
        self.topic = topic
        self.lake_path = lake_path
        self.window_seconds = window_seconds

    def expand(self, failed_messages):
        counted = failed_messages | "CountFailures" >> beam.Map(_count)
        _ = (counted
             | "ToPubsubMessages" >> beam.Map(to_pubsub_message)
             | "PublishToDeadLetterTopic" >> WriteToPubSub(self.topic, with_attributes=True))
        return (counted
                | "ToErrorRows" >> beam.Map(to_error_row)
                | "WriteErrorFiles" >> WriteParquetPartitions(
                    self.lake_path, {ERRORS_DATASET: ERRORS_SCHEMA}, self.window_seconds))


def to_pubsub_message(failed):
    reason = dict(zip(ERROR_ATTRIBUTES, (failed.error_class, failed.error_message,
                                         failed.error_pointer, failed.step, failed.dataset)))
    attributes = dict(failed.attributes)
    attributes.update({k: _truncate(v) for k, v in reason.items() if v})
    return PubsubMessage(failed.payload, attributes)


def to_error_row(failed):
    """((`_errors`, shard 0), row), stamped with the time the dead letter took it in."""
    ingested_at = time.time()
    row = {
        "payload": failed.payload,
        "attributes": sorted(failed.attributes.items()),
        "dataset": failed.dataset,
        "error_class": failed.error_class,
        "error_message": failed.error_message,
        "error_pointer": failed.error_pointer,
        "errors": [vars(v) for v in failed.violations],
        "step": failed.step,
        "_publish_time": failed.publish_time,
        "_ingested_at": datetime.datetime.fromtimestamp(ingested_at, datetime.timezone.utc),
        "_message_id": failed.message_id,
    }
    return window.TimestampedValue(((ERRORS_DATASET, 0), row), ingested_at)


def _count(failed):
    Metrics.counter("dead_letter", failed.error_class).inc()
    return failed


def _truncate(text):
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_ATTRIBUTE_VALUE_BYTES:
        return text
    return encoded[:MAX_ATTRIBUTE_VALUE_BYTES - 3].decode("utf-8", errors="ignore") + "..."
