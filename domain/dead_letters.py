"""The dead letter's two stored forms, one owner for both writer and readers.

- on the dead-letter Pub/Sub topic: the payload unchanged, its own attributes, and the
  reason in ERROR_ATTRIBUTES (which `ingest replay` takes off again);
- in the lake's `_errors` dataset: a row of ERRORS_SCHEMA, for diagnosis with SQL.

Both are total: whatever a FailedMessage holds (a lone surrogate, a number where a text
belongs, more or longer attributes than Pub/Sub takes), its forms can be published and
written. On the topic, the message's own attributes that Pub/Sub's limits leave no room
for are in the ORIGINAL_ATTRIBUTES attribute, a JSON object of as many as fit whole
(TRUNCATED_FLAG says when some did not); the lake's row has them all.
"""

import datetime
import json

import pyarrow as pa

from domain.lake_dedup import KEY_COLUMN, message_key
from domain.records import printable
from domain.times import UTC

ERRORS_DATASET = "_errors"
MAX_ATTRIBUTE_VALUE_BYTES = 1024  # Pub/Sub's limits on an attribute value, a key, and
MAX_ATTRIBUTE_KEY_BYTES = 256  # the number of attributes of a message
MAX_ATTRIBUTES = 100
ERROR_ATTRIBUTES = ("error_class", "error_message", "error_pointer", "error_step", "error_dataset")
ORIGINAL_ATTRIBUTES = "error_attributes"  # {key: value} of those not kept as they were
TRUNCATED_FLAG = "error_attributes_truncated"  # "true": ORIGINAL_ATTRIBUTES is not all of them
# Kept as they were before any other: what the pipeline and `ingest replay` read.
_FIRST = ("dataset", "operation")
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
        (KEY_COLUMN, pa.uint64()),
    ]
)


def dead_letter_attributes(failed):
    """The FailedMessage's own attributes with the reason added, within Pub/Sub's limits:
    at most MAX_ATTRIBUTES, each key and value within its bytes. The message's own that do
    not fit as they are (too long, too many, or named like a reason's) go, as many as fit,
    into ORIGINAL_ATTRIBUTES."""
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
    attributes = {k: _truncate(_text(v)) for k, v in reason.items() if v}
    own = _own_attributes(failed.attributes)
    room = MAX_ATTRIBUTES - len(attributes) - 2  # the two of ORIGINAL_ATTRIBUTES
    kept, left = {}, {}
    for key in sorted(own, key=lambda k: (k not in _FIRST, k)):
        value = own[key]
        fits = (
            len(key.encode("utf-8")) <= MAX_ATTRIBUTE_KEY_BYTES
            and len(value.encode("utf-8")) <= MAX_ATTRIBUTE_VALUE_BYTES
            and key not in _RESERVED
        )
        if fits and len(kept) < room:
            kept[key] = value
        else:
            left[key] = value
    if left:
        attributes[ORIGINAL_ATTRIBUTES], truncated = _json_within_limit(left)
        if truncated:
            attributes[TRUNCATED_FLAG] = "true"
    return {**kept, **attributes}


def without_error_attributes(attributes):
    """A dead letter's attributes as the message had them before it failed (those kept in
    ORIGINAL_ATTRIBUTES back where they were, as far as it holds them)."""
    restored = {k: v for k, v in attributes.items() if k not in _RESERVED}
    try:
        original = json.loads(attributes.get(ORIGINAL_ATTRIBUTES, "{}"))
    except ValueError:
        original = {}
    if isinstance(original, dict):
        restored.update((k, v) for k, v in original.items() if isinstance(v, str))
    return restored


def error_row(failed, ingested_at):
    """The FailedMessage as a row of ERRORS_SCHEMA; `ingested_at`: seconds since the epoch.
    Every text is made one Parquet can hold (lone surrogates as their escapes)."""
    publish_time = failed.publish_time
    return {
        "payload": failed.payload if isinstance(failed.payload, bytes) else b"",
        "attributes": sorted(_own_attributes(failed.attributes).items()),
        "dataset": _text(failed.dataset),
        "error_class": _text(failed.error_class),
        "error_message": _text(failed.error_message),
        "error_pointer": _text(failed.error_pointer),
        "errors": [
            {name: _text(getattr(v, name, "")) for name in ("pointer", "keyword", "message")}
            for v in failed.violations or ()
        ],
        "step": _text(failed.step),
        "_publish_time": publish_time if isinstance(publish_time, datetime.datetime) else None,
        "_ingested_at": datetime.datetime.fromtimestamp(ingested_at, UTC),
        "_message_id": _text(failed.message_id),
        # Of the failure, not only the payload: one message may fail at two steps (a dead
        # letter the topic refused has a second row), and each row is written once.
        KEY_COLUMN: message_key(
            f"{ERRORS_DATASET}/{failed.dataset}/{failed.step}/{failed.error_class}",
            failed.payload,
        ),
    }


_RESERVED = (*ERROR_ATTRIBUTES, ORIGINAL_ATTRIBUTES, TRUNCATED_FLAG)


def _text(value):
    """Any value as a text Pub/Sub and Parquet take: None as "", others as str()."""
    if value is None:
        return ""
    return printable(value if isinstance(value, str) else str(value))


def _own_attributes(attributes):
    """The message's own attributes as texts ({} for what is no mapping)."""
    try:
        return {_text(k): _text(v) for k, v in dict(attributes or {}).items()}
    except (TypeError, ValueError):
        return {}


def _json_within_limit(attributes):
    """(JSON object of as many of the attributes as fit whole in an attribute value,
    whether any was left out). Each entry is exact: `ingest replay` puts them back."""
    parts, size, truncated = [], 2, False  # the braces
    for key, value in attributes.items():
        entry = json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]
        length = len(entry.encode("utf-8")) + (1 if parts else 0)  # and its comma
        if size + length > MAX_ATTRIBUTE_VALUE_BYTES:
            truncated = True
            continue  # a shorter one after it may fit
        parts.append(entry)
        size += length
    return "{" + ",".join(parts) + "}", truncated


def _truncate(text):
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_ATTRIBUTE_VALUE_BYTES:
        return text
    return encoded[: MAX_ATTRIBUTE_VALUE_BYTES - 3].decode("utf-8", errors="ignore") + "..."
