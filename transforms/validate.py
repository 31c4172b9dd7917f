"""Parse and validate: Pub/Sub messages in, valid Records and FailedMessages out."""

import datetime
import functools
import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from domain.parsing import RecordParser
from domain.records import FailedMessage
from transforms.per_process import PerProcess

VALID = "valid"
FAILED = "failed"
STEP = "parse_and_validate"
FAST_PATH_DISAGREEMENTS = Metrics.counter("validation", "fast_path_disagreement")


class ParseAndValidate(beam.PTransform):
    """Returns outputs `valid` (Records) and `failed` (FailedMessages); never raises."""

    def __init__(self, catalog):
        super().__init__()
        self.catalog = catalog

    def expand(self, messages):
        return messages | "Parse" >> beam.ParDo(_ParseFn(self.catalog)).with_outputs(
            FAILED, main=VALID
        )


class _ParseFn(beam.DoFn):
    def __init__(self, catalog):
        self.catalog = catalog
        self.parser_handle = PerProcess()  # the parser compiles a validator per dataset

    def setup(self):
        self.parser = self.parser_handle.acquire(
            lambda: RecordParser(
                self.catalog, on_fast_path_disagreement=FAST_PATH_DISAGREEMENTS.inc
            )
        )

    def process(self, message):
        try:
            attributes = dict(message.attributes or {})
            payload = message.data or b""
            message_id = message.message_id or ""
            publish_time = _plain_datetime(message.publish_time)
            outcome = self.parser.parse_or_fail(payload, attributes, message_id, publish_time, STEP)
        except Exception as error:  # no message as Pub/Sub gives one: a bug of ours
            logging.exception("unexpected error reading a message")
            outcome = FailedMessage.internal(
                error,
                STEP,
                getattr(message, "data", b""),
                getattr(message, "attributes", {}),
                getattr(message, "message_id", ""),
            )
        if isinstance(outcome, FailedMessage):
            yield beam.pvalue.TaggedOutput(FAILED, outcome)
            return
        _valid_counter(outcome.dataset).inc()
        yield outcome


@functools.cache  # one per catalog dataset; making one costs µs
def _valid_counter(dataset):
    return Metrics.counter("valid", dataset)


def _plain_datetime(publish_time):
    """Pub/Sub's DatetimeWithNanoseconds as a plain UTC datetime (it pickles smaller)."""
    if publish_time is None:
        return None
    if type(publish_time) is datetime.datetime and publish_time.tzinfo is datetime.timezone.utc:
        return publish_time  # what the conversion below would give: read.message_from_proto's
    return datetime.datetime.fromtimestamp(publish_time.timestamp(), datetime.timezone.utc)
