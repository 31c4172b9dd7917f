"""Dead letter: every message that fails, at any step, published unchanged with its reason."""
import dataclasses

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, WriteToPubSub
from apache_beam.metrics import Metrics

MAX_ATTRIBUTE_VALUE_BYTES = 1024  # Pub/Sub's limit on an attribute value


@dataclasses.dataclass
class FailedMessage:
    payload: bytes  # the message exactly as received
    attributes: dict  # the message's own attributes
    error_class: str  # stable, e.g. not_json, unknown_dataset, schema_violation
    error_message: str
    error_pointer: str  # JSON pointer of the failing field, "" when none applies
    step: str  # the pipeline step that failed it
    dataset: str = ""


class PublishDeadLetters(beam.PTransform):
    """Publishes each FailedMessage to the dead-letter topic, with `error_*` attributes."""

    def __init__(self, topic):
        super().__init__()
        self.topic = topic

    def expand(self, failed_messages):
        return (
            failed_messages
            | "CountFailures" >> beam.Map(_count)
            | "ToPubsubMessages" >> beam.Map(to_pubsub_message)
            | "PublishToDeadLetterTopic" >> WriteToPubSub(self.topic, with_attributes=True))


def to_pubsub_message(failed):
    reason = {
        "error_class": failed.error_class,
        "error_message": failed.error_message,
        "error_pointer": failed.error_pointer,
        "error_step": failed.step,
        "error_dataset": failed.dataset,
    }
    attributes = dict(failed.attributes)
    attributes.update({k: _truncate(v) for k, v in reason.items() if v})
    return PubsubMessage(failed.payload, attributes)


def _count(failed):
    Metrics.counter("dead_letter", failed.error_class).inc()
    return failed


def _truncate(text):
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_ATTRIBUTE_VALUE_BYTES:
        return text
    return encoded[:MAX_ATTRIBUTE_VALUE_BYTES - 3].decode("utf-8", errors="ignore") + "..."
