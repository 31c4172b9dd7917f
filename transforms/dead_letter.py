"""Dead letter: every message that fails, at any step, kept in two places with its reason
(the forms: domain/dead_letters.py): the dead-letter topic, for replay, and the lake's
`_errors` dataset, for SQL.

Neither can fail a bundle on one message. A dead letter the topic refuses (or that cannot
be published at all) is logged, counted (`dead_letter_publish/refused`) and gets a second
row in `_errors`: class `internal`, step `dead_letter`, with the refusal; its first row,
with its own reason, is written as any other. The publishing is _PublishFn's, but on
Dataflow, whose native sink publishes what _CheckFn lets through (a refusal there by the
service itself is the sink's to retry).
"""

import logging
import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA, dead_letter_attributes, error_row
from domain.lake_files import arrow_ipc_bytes
from domain.records import FailedMessage, describe
from transforms.lake import WriteParquetPartitions
from transforms.per_process import PerProcess

STEP = "dead_letter"
_GLOBAL_WINDOWS = (window.GlobalWindow(),)  # WriteParquetPartitions windows by the stamp
REFUSED = Metrics.counter("dead_letter_publish", "refused")
REFUSED_TAG = "refused"
MAX_MESSAGE_BYTES = 10_000_000  # Pub/Sub's limit on a message (and on a Publish call)


class DeadLetter(beam.PTransform):
    """Publishes each FailedMessage to the topic and writes it to the lake's `_errors`."""

    def __init__(self, topic, lake_path, window_seconds, dedup_seconds):
        super().__init__()
        self.topic = topic
        self.lake_path = lake_path
        self.window_seconds = window_seconds
        self.dedup_seconds = dedup_seconds

    def expand(self, failed_messages):
        counted = failed_messages | "CountFailures" >> beam.Map(_count)
        if _on_dataflow(failed_messages.pipeline):  # its native sink, which --update knows
            checked = counted | "CheckForTopic" >> beam.ParDo(_CheckFn()).with_outputs(
                REFUSED_TAG, main="publishable"
            )
            _ = (
                checked.publishable
                | "ToPubsubMessages" >> beam.Map(to_pubsub_message)
                | "PublishToDeadLetterTopic" >> WriteToPubSub(self.topic, with_attributes=True)
            )
            refused = checked[REFUSED_TAG]
        else:
            refused = counted | "PublishToDeadLetterTopic" >> beam.ParDo(_PublishFn(self.topic))
        return (
            (counted, refused)
            | "WithRefusedPublishes" >> beam.Flatten()
            | "ToErrorRows" >> error_tables()
            | "WriteErrorFiles"
            >> WriteParquetPartitions(
                self.lake_path,
                {ERRORS_DATASET: ERRORS_SCHEMA},
                self.window_seconds,
                self.dedup_seconds,
            )
        )


def to_pubsub_message(failed):
    return PubsubMessage(failed.payload, dead_letter_attributes(failed))


def _on_dataflow(pipeline):
    runner = pipeline.options.view_as(StandardOptions).runner if pipeline.options else None
    return "dataflow" in str(runner or "").lower()


class _CheckFn(beam.DoFn):
    """On Dataflow, before its native sink: a dead letter Pub/Sub could not take (its
    attributes always fit; a payload near 10 MB with them may not) goes to REFUSED_TAG
    as the refusal of _PublishFn would, so that it cannot fail the sink's bundle."""

    def process(self, failed):
        try:
            message = to_pubsub_message(failed)
            size = len(message.data) + sum(
                len(k.encode()) + len(v.encode()) + 8 for k, v in message.attributes.items()
            )
            if size > MAX_MESSAGE_BYTES:
                raise ValueError(f"the dead letter would be {size} bytes; Pub/Sub takes 10 MB")
        except Exception as error:
            for refusal in _refusals(None, [failed], error):
                yield beam.pvalue.TaggedOutput(REFUSED_TAG, refusal)
            return
        yield failed


class _PublishFn(beam.DoFn):
    """FailedMessages -> published to the topic, in Publish calls of up to BATCH messages
    and MAX_BATCH_BYTES; outputs a FailedMessage of class `internal` for each the topic
    did not take. A call the topic refuses as invalid is tried again message by message,
    so one bad message holds none of the others back. Retries of transient errors are the
    client's (up to 10 minutes); a refusal after them is final too: the lake has it.

    `to_message`: FailedMessage -> PubsubMessage (to_pubsub_message)."""

    BATCH = 100
    MAX_BATCH_BYTES = 5_000_000  # Pub/Sub takes 10 MB a call

    def __init__(self, topic, to_message=to_pubsub_message):
        self.topic = topic
        self.to_message = to_message
        self.client_handle = PerProcess()  # a client does not pickle: made on the worker

    def setup(self):
        from google.cloud import pubsub_v1

        self.publisher = self.client_handle.acquire(pubsub_v1.PublisherClient)

    def start_bundle(self):
        self.pending, self.pending_bytes = [], 0

    def process(self, failed):
        from google.cloud.pubsub_v1 import types

        try:
            message = self.to_message(failed)
            proto = types.PubsubMessage(data=message.data, attributes=message.attributes)
        except Exception as error:
            yield from self._refused([failed], error)
            return
        size = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items())
        if self.pending and (
            len(self.pending) >= self.BATCH or self.pending_bytes + size > self.MAX_BATCH_BYTES
        ):
            yield from self._publish()
        self.pending.append((failed, proto))
        self.pending_bytes += size

    def finish_bundle(self):
        yield from self._publish()

    def _publish(self):
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        if pending:
            yield from self._call(pending)

    def _call(self, pending):
        from google.api_core import exceptions

        try:
            self.publisher.api.publish(topic=self.topic, messages=[p for _, p in pending])
        except exceptions.InvalidArgument as error:
            if len(pending) == 1:
                yield from self._refused([pending[0][0]], error)
                return
            for one in pending:  # which of them: each alone
                yield from self._call([one])
        except Exception as error:  # the topic's, not a message's: all of them
            yield from self._refused([failed for failed, _ in pending], error)

    def _refused(self, failures, error):
        yield from _refusals(self.topic, failures, error)


def _refusals(topic, failures, error):
    """Logs and counts dead letters the topic did not take; their second `_errors` rows."""
    logging.error(
        "the dead-letter topic %s did not take %d dead letter(s), kept in the lake's %s only: %s",
        topic or "",
        len(failures),
        ERRORS_DATASET,
        describe(error),
    )
    REFUSED.inc(len(failures))
    stamp = time.time()
    for failed in failures:
        refusal = _internal(failed, f"not published to the dead-letter topic: {describe(error)}")
        yield WindowedValue(refusal, stamp, _GLOBAL_WINDOWS)


def error_tables():
    """FailedMessages -> ((`_errors`, shard 0), Arrow table of their rows as IPC bytes): the
    lake writer's one input form, a table per bundle (or per BATCH messages) rather than
    per message, stamped with the time the first of them was taken in."""
    return beam.ParDo(_ErrorTablesFn())


class _ErrorTablesFn(beam.DoFn):
    BATCH = 500

    def start_bundle(self):
        self.rows, self.first_taken_in = [], None

    def process(self, failed):
        taken_in = time.time()
        if self.first_taken_in is None:
            self.first_taken_in = taken_in
        try:
            row = error_row(failed, taken_in)
        except Exception as error:  # error_row takes anything: a bug of ours
            logging.exception("a dead letter's error row could not be made")
            row = error_row(_internal(failed, f"its error row failed: {describe(error)}"), taken_in)
        self.rows.append(row)
        if len(self.rows) >= self.BATCH:
            yield self._table()

    def finish_bundle(self):
        if self.rows:
            yield self._table()

    def _table(self):
        try:
            table = pa.Table.from_pylist(self.rows, schema=ERRORS_SCHEMA)
        except Exception:  # a bug of ours: which row, and what is left of it
            logging.exception("dead letters' error rows did not convert; each on its own")
            table = pa.Table.from_pylist([_converting(r) for r in self.rows], schema=ERRORS_SCHEMA)
        stamped = WindowedValue(
            ((ERRORS_DATASET, 0), arrow_ipc_bytes(table)), self.first_taken_in, _GLOBAL_WINDOWS
        )
        self.rows, self.first_taken_in = [], None
        return stamped


def _converting(row):
    """The row if it converts, else a row of class `internal` saying so, with its payload."""
    try:
        pa.Table.from_pylist([row], schema=ERRORS_SCHEMA)
        return row
    except Exception as error:
        failed = FailedMessage(
            payload=row.get("payload"),
            attributes={},
            error_class="internal",
            error_message=f"its error row did not convert: {describe(error)}",
            error_pointer="",
            step=STEP,
        )
        return error_row(failed, row["_ingested_at"].timestamp())


def _internal(failed, message):
    """A FailedMessage of class `internal` at this step, for what happened to `failed`."""
    return FailedMessage(
        payload=getattr(failed, "payload", b""),
        attributes=getattr(failed, "attributes", {}),
        error_class="internal",
        error_message=message,
        error_pointer="",
        step=STEP,
        dataset=getattr(failed, "dataset", ""),
        message_id=getattr(failed, "message_id", ""),
        publish_time=getattr(failed, "publish_time", None),
    )


def _count(failed):
    Metrics.counter("dead_letter", getattr(failed, "error_class", "internal")).inc()
    return failed
