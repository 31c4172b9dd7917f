"""Parse and validate: Pub/Sub messages in, valid Records and FailedMessages out."""
import datetime
import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.dead_letter import FailedMessage
from transforms.records import RecordError, RecordParser

VALID = "valid"
FAILED = "failed"


class ParseAndValidate(beam.PTransform):
    """Returns outputs `valid` (Records) and `failed` (FailedMessages); never raises."""

    def __init__(self, catalog):
        super().__init__()
        self.catalog = catalog

    def expand(self, messages):
        return messages | "Parse" >> beam.ParDo(_ParseFn(self.catalog)).with_outputs(
            FAILED, main=VALID)


class _ParseFn(beam.DoFn):
    def __init__(self, catalog):
        self.catalog = catalog

    def setup(self):
        self.parser = RecordParser(self.catalog)

    def process(self, message):
        attributes = dict(message.attributes or {})
        try:
            record = self.parser.parse(
                message.data, attributes, message.message_id or "",
                _plain_datetime(message.publish_time))
        except RecordError as error:
            yield self._failed(message, attributes, error.error_class, error.message,
                               error.pointer, error.dataset)
            return
        except Exception as error:  # a bug of ours must not stop the pipeline either
            logging.exception("unexpected error parsing message %s", message.message_id)
            yield self._failed(message, attributes, "internal", repr(error), "", "")
            return
        Metrics.counter("valid", record.dataset).inc()
        yield record

    @staticmethod
    def _failed(message, attributes, error_class, text, pointer, dataset):
        return beam.pvalue.TaggedOutput(FAILED, FailedMessage(
            payload=message.data or b"", attributes=attributes, error_class=error_class,
            error_message=text, error_pointer=pointer, step="parse_and_validate",
            dataset=dataset or attributes.get("dataset", "")))


def _plain_datetime(publish_time):
    """Pub/Sub's DatetimeWithNanoseconds as a plain UTC datetime (it pickles smaller)."""
    if publish_time is None:
        return None
    return datetime.datetime.fromtimestamp(publish_time.timestamp(), datetime.timezone.utc)
