"""Records, failed messages and the error classes users filter on: what every step passes on."""

import dataclasses
import datetime

OPERATIONS = ("merge", "create", "delete")


@dataclasses.dataclass(frozen=True)
class Violation:
    """One schema error: where (JSON pointer in the record), which keyword, and what."""

    pointer: str
    keyword: str
    message: str

    def __str__(self):
        return f"{self.pointer or '/'}: {self.message} ({self.keyword})"


class RecordError(Exception):
    """Why a message is not a valid record. `error_class` is stable: users filter on it."""

    def __init__(self, error_class, message, pointer="", dataset="", violations=()):
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.pointer = pointer
        self.dataset = dataset
        self.violations = list(violations)  # for schema_violation: the first few


@dataclasses.dataclass
class Record:
    dataset: str
    kind: str  # "profile" or "event"
    feeds_profile: bool
    entity: dict  # the XDM record itself (the envelope's body.xdmEntity)
    record_time: datetime.datetime  # the record's own time, UTC: see record_time()
    primary_identity: tuple  # (namespace, id); None where the dataset feeds no profile or
    # the primary value is refused (domain/identity.py): the record then reaches the lake only
    message_id: str
    publish_time: datetime.datetime  # None outside Pub/Sub
    payload: bytes  # the message as received, for the dead letter
    attributes: dict
    operation: str = "merge"  # merge, create or delete (domain/merge.py)
    identities: tuple = ()  # every accepted (namespace, id), sorted: what the record links
    refused_identities: tuple = ()  # ((namespace, id, why), ...): never linked


@dataclasses.dataclass
class FailedMessage:
    """A message that failed at some step, with why: what the dead letter keeps."""

    payload: bytes  # the message exactly as received
    attributes: dict  # the message's own attributes
    error_class: str  # stable, e.g. not_json, unknown_dataset, schema_violation
    error_message: str
    error_pointer: str  # JSON pointer of the failing field, "" when none applies
    step: str  # the pipeline step that failed it
    dataset: str = ""
    violations: list = dataclasses.field(default_factory=list)  # of Violation
    message_id: str = ""
    publish_time: datetime.datetime = None

    @classmethod
    def of(cls, error, step, payload, attributes, message_id="", publish_time=None):
        """From a RecordError."""
        return cls(
            payload=payload,
            attributes=attributes,
            error_class=error.error_class,
            error_message=error.message,
            error_pointer=error.pointer,
            step=step,
            dataset=error.dataset or attributes.get("dataset", ""),
            violations=error.violations,
            message_id=message_id,
            publish_time=publish_time,
        )

    @classmethod
    def internal(
        cls, error, step, payload, attributes, message_id="", publish_time=None, dataset=""
    ):
        """From an exception that is a bug of ours, or a store's refusal: class `internal`,
        with the exception's type and message and the step it happened in."""
        return cls(
            payload=payload if isinstance(payload, bytes) else b"",
            attributes=attributes if isinstance(attributes, dict) else {},
            error_class="internal",
            error_message=describe(error),
            error_pointer="",
            step=step,
            dataset=dataset if isinstance(dataset, str) else "",
            message_id=message_id if isinstance(message_id, str) else "",
            publish_time=publish_time,
        )


def describe(error, limit=1000):
    """An exception as `Type: message`, printable and at most `limit` characters."""
    try:
        text = f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose __str__ raises
        text = type(error).__name__
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text):
    """A text with every lone surrogate (no UTF-8 form) written as its escape, `\\ud800`:
    what Pub/Sub attributes and Parquet strings can hold."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pointer_token(key):
    """A key as one JSON pointer token (RFC 6901): `~` and `/` escaped."""
    return key.replace("~", "~0").replace("/", "~1")


def json_pointer(path):
    return "".join("/" + pointer_token(str(p)) for p in path)
