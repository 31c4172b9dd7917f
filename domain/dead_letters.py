"""The dead letter's two stored forms, one owner for both writer and readers.

- on the dead-letter Pub/Sub topic: the payload unchanged, its own attributes, and the
  reason in ERROR_ATTRIBUTES (which `ingest replay` takes off again);
- in the lake's `_errors` dataset: a row of ERRORS_SCHEMA, for diagnosis with SQL.
"""

import datetime

import pyarrow as pa

from domain.times import UTC

ERRORS_DATASET = "_errors"
MAX_ATTRIBUTE_VALUE_BYTES = 1024  # Pub/Sub's limit on an attribute value
ERROR_ATTRIBUTES = ("error_class", "error_message", "error_pointer", "error_step", "error_dataset")
_TIME = pa.timestamp("us", tz="UTC")
ERRORS_SCHEMA = pa.schema(
    [
        ("payload", pa.binary()),
        ("attributes", pa.map_(pa.string(), pa.string())),
        ("dataset", pa.string()),
        ("error_class", pa.string()),
        ("error_message", pa.string()),
        ("error_pointer", pa.string()),
        (
            "errors",
            pa.list_(
                pa.struct(
                    [("pointer", pa.string()), ("keyword", pa.string()), ("message", pa.string())]
                )
            ),
        ),
        ("step", pa.string()),
        ("_publish_time", _TIME),
        ("_ingested_at", _TIME),
        ("_message_id", pa.string()),
    ]
)


def dead_letter_attributes(failed):
    """The FailedMessage's own attributes with the reason added, each value within
    Pub/Sub's limit."""
    reason = dict(
        zip(
            ERROR_ATTRIBUTES,
            (
                failed.error_class,
                failed.error_message,
                failed.error_pointer,
                failed.step,
                failed.dataset,
            ),
            strict=True,
        )
    )
    attributes = dict(failed.attributes)
    attributes.update({k: _truncate(v) for k, v in reason.items() if v})
    return attributes


def without_error_attributes(attributes):
    """A dead letter's attributes as the message had them before it failed."""
    return {k: v for k, v in attributes.items() if k not in ERROR_ATTRIBUTES}


def error_row(failed, ingested_at):
    """The FailedMessage as a row of ERRORS_SCHEMA; `ingested_at`: seconds since the epoch."""
    return {
        "payload": failed.payload,
        "attributes": sorted(failed.attributes.items()),
        "dataset": failed.dataset,
        "error_class": failed.error_class,
        "error_message": failed.error_message,
        "error_pointer": failed.error_pointer,
        "errors": [vars(v) for v in failed.violations],
        "step": failed.step,
        "_publish_time": failed.publish_time,
        "_ingested_at": datetime.datetime.fromtimestamp(ingested_at, UTC),
        "_message_id": failed.message_id,
    }


def _truncate(text):
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_ATTRIBUTE_VALUE_BYTES:
        return text
    return encoded[: MAX_ATTRIBUTE_VALUE_BYTES - 3].decode("utf-8", errors="ignore") + "..."
