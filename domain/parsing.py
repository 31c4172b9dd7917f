"""From a Pub/Sub message to a validated record, or to the reason it cannot be one.

The pipeline's ParseAndValidate and the CLI's checks share it. Validation: the fast
validator (jsonschema-rs) accepts most records; a record it does not accept goes to the
reference validator (python-jsonschema), which says what is wrong and has the last word:
where it finds nothing wrong, the record is valid and the disagreement is counted
(`fast_path_disagreements`, and the optional callback, which the pipeline points at a
metric).
"""

import datetime
import json
import logging
import math
import re

from domain import json_codec
from domain.identity import IdentityError, identities, record_identities
from domain.identity_proof import source_trusted
from domain.records import (
    OPERATIONS,
    FailedMessage,
    Record,
    RecordError,
    Violation,
    json_pointer,
    printable,
)
from domain.times import EPOCH

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1_000_000  # Adobe's streaming limit per request
MAX_NESTING = 64  # levels of objects and arrays; XDM records use about 10
MAX_IDENTITIES_PER_RECORD = 20  # Adobe's limit
MAX_ERRORS_PER_RECORD = 5
MAX_ERROR_TEXT = 300


class RecordParser:
    """Parses and validates messages against a catalog; build once, use for many.

    `fast_validation=False` validates with the reference validator only, as before the
    fast path existed. Pickles as its catalog and options; validators are rebuilt."""

    def __init__(
        self,
        catalog,
        max_errors=MAX_ERRORS_PER_RECORD,
        *,
        fast_validation=True,
        on_fast_path_disagreement=None,
    ):
        self.catalog = catalog
        self.max_errors = max_errors
        self.fast_validation = fast_validation
        self.on_fast_path_disagreement = on_fast_path_disagreement
        self._build_validators()

    def _build_validators(self):
        catalog = self.catalog
        self.validators = {d: catalog.validator(d) for d in catalog.datasets}
        self.fast_validators = {
            d: catalog.registry.fast_validator(dataset.schema_id) if self.fast_validation else None
            for d, dataset in catalog.datasets.items()
        }
        self.fast_path_disagreements = 0  # fast path said no, the reference found nothing

    def __getstate__(self):  # jsonschema-rs validators do not pickle: rebuilt on arrival
        return {
            "catalog": self.catalog,
            "max_errors": self.max_errors,
            "fast_validation": self.fast_validation,
            "on_fast_path_disagreement": self.on_fast_path_disagreement,
        }

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build_validators()

    def parse_or_fail(self, payload, attributes=None, message_id="", publish_time=None, step=""):
        """A Record, or the FailedMessage that says why not: never raises. A failure that
        is no RecordError is a bug of ours: class `internal`, logged with its traceback."""
        try:
            attributes = dict(attributes or {})
            return self.parse(payload, attributes, message_id, publish_time)
        except RecordError as error:
            return FailedMessage.of(error, step, payload, attributes, message_id, publish_time)
        except Exception as error:
            logger.exception("unexpected error parsing message %s", message_id)
            return FailedMessage.internal(
                error, step, payload, attributes, message_id, publish_time
            )

    def parse(self, payload, attributes=None, message_id="", publish_time=None):
        """Returns a Record, or raises RecordError."""
        attributes = dict(attributes or {})
        if len(payload) > MAX_MESSAGE_BYTES:
            raise RecordError(
                "too_large", f"message is {len(payload)} bytes; the limit is {MAX_MESSAGE_BYTES}"
            )
        document, numbers_finite = _decode_json(payload)
        # Each level opens with a bracket of its own: with few brackets in the text, no walk.
        may_be_deep = payload.count(b"{") + payload.count(b"[") > MAX_NESTING
        if may_be_deep and _nesting(document) > MAX_NESTING:
            raise RecordError("too_deep", f"JSON nested deeper than {MAX_NESTING} levels")
        if _SURROGATE_ESCAPE.search(payload):
            pointer = _lone_surrogate(document)
            if pointer is not None:
                raise RecordError(
                    "not_utf8",
                    f"the string at {pointer or '/'} holds a lone UTF-16 "
                    "surrogate (a \\ud800-\\udfff escape with no pair): it has no UTF-8 "
                    "form, so neither Bigtable nor Parquet can store it",
                    pointer,
                )
        if not isinstance(document, dict):
            raise RecordError(
                "not_object", f"a record is a JSON object, not {_json_type(document)}"
            )

        header = document.get("header")
        if isinstance(header, dict) and "body" in document:
            dataset_id, schema_ref, entity = _open_envelope(document)
            xdm_meta = document["body"].get("xdmMeta")
        else:
            dataset_id, schema_ref, entity = attributes.get("dataset"), None, document
            xdm_meta = None
        if dataset_id is not None and not isinstance(dataset_id, str):
            raise RecordError(
                "unknown_dataset",
                f"header.datasetId must be a string, not {_json_type(dataset_id)}",
                "/header/datasetId",
            )
        if not dataset_id:
            raise RecordError(
                "unknown_dataset",
                "no dataset: a bare record needs a 'dataset' attribute, an envelope "
                "needs header.datasetId",
                "/header/datasetId",
            )
        try:
            return self._record(
                dataset_id,
                schema_ref,
                entity,
                header,
                message_id,
                publish_time,
                payload,
                attributes,
                numbers_finite,
                xdm_meta,
            )
        except RecordError as error:
            error.dataset = dataset_id
            raise

    def _record(
        self,
        dataset_id,
        schema_ref,
        entity,
        header,
        message_id,
        publish_time,
        payload,
        attributes,
        numbers_finite=False,
        xdm_meta=None,
    ):
        dataset = self.catalog.datasets.get(dataset_id)
        if dataset is None:
            raise RecordError("unknown_dataset", f"dataset {dataset_id!r} is not in the catalog")
        if schema_ref is not None and not dataset.accepts_schema_ref(schema_ref):
            raise RecordError(
                "unknown_schema",
                f"header.schemaRef.id {schema_ref!r} is not the schema of dataset "
                f"{dataset_id!r} ({dataset.schema_id})",
                "/header/schemaRef/id",
            )

        operation = _operation(header, attributes)
        if operation != "merge" and dataset.kind != "profile":
            raise RecordError(
                "bad_operation",
                f"operation {operation!r} applies to profile "
                f"records; dataset {dataset_id!r} holds events",
            )
        self._validate(dataset_id, entity, numbers_finite)
        found = identities(entity, xdm_meta, dataset.identity_fields)
        if len(found) > MAX_IDENTITIES_PER_RECORD:
            raise RecordError(
                "too_many_identities",
                f"{len(found)} identities in the record; the limit is {MAX_IDENTITIES_PER_RECORD}",
                "/identityMap",
            )
        checked = None
        if dataset.feeds_profile:
            try:
                trusted = source_trusted(dataset, attributes, self.catalog.connections)
                needs_proof = self.catalog.link_trust.needs_proof(trusted, entity, xdm_meta)
                checked = record_identities(
                    found, self.catalog.blocked_identities, needs_proof=needs_proof
                )
            except IdentityError as error:
                raise RecordError(error.error_class, str(error), "/identityMap") from None
        time = record_time(dataset.kind, entity, header, publish_time)
        taken_in = publish_time or datetime.datetime.now(datetime.timezone.utc)
        ahead = (time - taken_in).total_seconds()
        if ahead > self.catalog.max_future_seconds:
            raise RecordError(
                "bad_timestamp",
                f"record time {time.isoformat()} is {ahead:,.0f} s after the message was taken "
                f"in ({taken_in.isoformat()}); the catalog allows "
                f"{self.catalog.max_future_seconds:,} s (max_future_seconds)",
            )
        if dataset.feeds_profile and time < EPOCH:
            raise RecordError(
                "bad_timestamp",
                f"record time {time.isoformat()} is before 1970: "
                "Bigtable cell times cannot be negative",
            )
        return Record(
            dataset=dataset_id,
            kind=dataset.kind,
            feeds_profile=dataset.feeds_profile,
            entity=entity,
            record_time=time,
            primary_identity=checked.primary if checked else None,
            message_id=message_id,
            publish_time=publish_time,
            payload=payload,
            attributes=attributes,
            operation=operation,
            identities=checked.linked if checked else (),
            refused_identities=checked.refused if checked else (),
        )

    def _validate(self, dataset_id, entity, numbers_finite=False):
        fast = self.fast_validators[dataset_id]
        if fast is not None and fast.is_valid(entity, numbers_finite):
            return
        errors = sorted(
            self.validators[dataset_id].iter_errors(entity),
            key=lambda e: list(map(str, e.absolute_path)),
        )
        if not errors and fast is not None:  # the reference has the last word
            self.fast_path_disagreements += 1
            if self.on_fast_path_disagreement is not None:
                self.on_fast_path_disagreement()
        if errors:
            shown = [
                Violation(json_pointer(e.absolute_path), str(e.validator), _shorten(e.message))
                for e in errors[: max(1, self.max_errors)]
            ]
            text = "; ".join(map(str, shown))
            if len(errors) > len(shown):
                text += f"; and {len(errors) - len(shown)} more"
            raise RecordError("schema_violation", text, shown[0].pointer, violations=shown)


def record_time(kind, entity, header, publish_time):
    """The time a record speaks of: an event's `timestamp`; a profile's `_repo.modifyDate`,
    else the envelope's header.timestamp, else the time Pub/Sub received it."""
    if kind == "event":
        candidates = [entity.get("timestamp")]
    else:
        repo = entity.get("_repo")
        candidates = [
            repo.get("modifyDate") if isinstance(repo, dict) else None,
            header.get("timestamp") if isinstance(header, dict) else None,
        ]
    for value in candidates:
        if value is None:
            continue
        try:
            parsed = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            raise RecordError("bad_timestamp", f"{value!r} is not an RFC 3339 date-time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        try:
            return parsed.astimezone(datetime.timezone.utc)
        except OverflowError:  # 9999-12-31T23:59:59-01:00, 0001-01-01T00:00:00+01:00
            raise RecordError(
                "bad_timestamp",
                f"{value!r} is outside the years 1 to 9999 once converted to UTC",
            ) from None
    return publish_time or datetime.datetime.now(datetime.timezone.utc)


def _operation(header, attributes):
    """An envelope's header.operations.data (as Adobe's streaming upserts), else the
    `operation` attribute; `merge` when neither says."""
    operations = (header or {}).get("operations") if isinstance(header, dict) else None
    operation = (
        (operations.get("data") if isinstance(operations, dict) else None)
        or attributes.get("operation")
        or "merge"
    )
    if operation not in OPERATIONS:
        raise RecordError(
            "bad_operation",
            f"operation {operation!r} is not one of {OPERATIONS}",
            "/header/operations/data",
        )
    return operation


def _open_envelope(document):
    header, body = document["header"], document["body"]
    schema_ref = header.get("schemaRef")
    schema_id = schema_ref.get("id") if isinstance(schema_ref, dict) else None
    entity = body.get("xdmEntity") if isinstance(body, dict) else None
    if not isinstance(entity, dict):
        raise RecordError(
            "not_object", "an envelope's body.xdmEntity must be a JSON object", "/body/xdmEntity"
        )
    return header.get("datasetId"), schema_id, entity


def _decode_json(payload):
    """(document, True: every number in it is finite). json.loads also reads NaN, Infinity
    and -Infinity, which RFC 8259 does not allow, and turns a number too large for a
    float (1e999) into infinity, which no store can keep as JSON: all are not_json."""
    decoded = json_codec.decode(payload)  # orjson, where it gives what json gives
    if decoded is not None:
        return decoded
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError("not_utf8", f"message is not UTF-8: {error}") from None

    try:
        document = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
        return document, True
    except RecursionError:
        raise RecordError("too_deep", f"JSON nested deeper than {MAX_NESTING} levels") from None
    except ValueError as error:
        raise RecordError("not_json", f"message is not JSON: {error}") from None


def _finite_float(literal):
    value = float(literal)  # what json.loads does by default
    if not math.isfinite(value):
        raise RecordError(
            "not_json",
            f"message is not JSON the stores can keep: the number {_shorten(literal)} is "
            "beyond the range of a 64-bit float",
        )
    return value


def _no_constant(name):  # NaN, Infinity, -Infinity: what json.loads reads and JSON is not
    raise RecordError("not_json", f"message is not JSON: {name} is not a JSON value (RFC 8259)")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # only an escape can make one


def _lone_surrogate(value, path=()):
    """The JSON pointer of the first key or string holding an unpaired surrogate, or None
    (json.loads joins a pair of escapes into one character)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return printable(json_pointer(path))  # its keys may hold surrogates too
        return None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return printable(json_pointer(path + (key,)))
        found = _lone_surrogate(child, path + (key,))
        if found is not None:
            return found
    return None


def _nesting(document):
    """How many levels of objects and arrays the document has (iterative: no recursion)."""
    if not isinstance(document, (dict, list)):
        return 0
    deepest, level = 0, [(document, 1)]
    while level:
        value, depth = level.pop()
        children = value.values() if isinstance(value, dict) else value
        deepest = max(deepest, depth)
        level.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _json_type(value):
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else "a number")


def _shorten(text):
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."
