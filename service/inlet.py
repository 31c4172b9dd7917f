"""The inlet's rules in Adobe's wire format, without the web framework's routing: reading
a body within its limits, checking a message's envelope against its connection, and the
bodies Adobe answers with (docs/service.md)."""

import asyncio
import json
import time

import orjson

from domain import json_codec
from domain.parsing import MAX_MESSAGE_BYTES
from domain.records import FailedMessage

ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")  # text/plain: sendBeacon
ERROR_TYPE = "urn:streaming-ingest:error:"  # + the error's class (docs/service.md#errors)
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """An answer other than success: its status, a stable error class and the reason."""

    def __init__(self, status, error_class, message, headers=None, cause=None):
        super().__init__(message)
        self.status = status
        self.error_class = error_class
        self.message = message
        self.headers = headers or {}
        self.cause = cause  # report.cause, where there is one
        self.title = TITLES.get(status, "Error")

    def body(self):
        report = {"message": self.message}
        if self.cause is not None:
            report["cause"] = self.cause
        return {
            "type": ERROR_TYPE + self.error_class,
            "status": self.status,
            "title": self.title,
            "report": report,
        }


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def unavailable(reason):
    return Problem(
        503,
        "unavailable",
        f"Pub/Sub did not take the message ({reason}); nothing was published: retry",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def now_ms():
    return int(time.time() * 1000)


def check_content_type(request):
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type and media_type not in ACCEPTED_CONTENT_TYPES:
        raise Problem(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not one of {list(ACCEPTED_CONTENT_TYPES)}",
        )


async def read_body(request, timeout, limit=MAX_MESSAGE_BYTES):
    """The request's body, or a Problem: 413 past `limit` bytes (read no further), 408
    when it does not all come within `timeout` seconds."""
    check_content_type(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(int(length), limit)

    async def collect():
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(size, limit)
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), timeout)
    except asyncio.TimeoutError:
        raise Problem(408, "timeout", f"the body did not come within {timeout:g} s") from None


def too_large(size, limit):
    return Problem(413, "too_large", f"the request is {size} bytes or more; the limit is {limit}")


def decode(payload, what="body"):
    """The JSON document of `payload`, or a 400 that says why not (RFC 8259: no NaN)."""
    fast = json_codec.decode(payload)  # orjson where it gives json's document: 2-3x less CPU
    if fast is not None:
        return fast[0]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "not_utf8", f"the {what} is not UTF-8: {error}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Problem(400, "too_deep", f"the {what} is JSON nested too deep") from None
    except ValueError as error:
        raise Problem(400, "not_json", f"the {what} is not JSON: {error}") from None


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value (RFC 8259)")


def check_message(connection, document):
    """The dataset an envelope writes, or a Problem: 400 for what is no envelope, 403 for
    a dataset the connection was not given."""
    if not isinstance(document, dict):
        raise Problem(400, "not_envelope", "a message is a JSON object: {header, body}")
    header, body = document.get("header"), document.get("body")
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise Problem(
            400,
            "not_envelope",
            "a message is Adobe's envelope: an object with a 'header' object and a 'body' "
            "object (body.xdmEntity is the record)",
        )
    dataset = header.get("datasetId")
    if not isinstance(dataset, str) or not dataset:
        raise Problem(400, "unknown_dataset", "the message's header.datasetId is missing")
    if dataset not in connection.datasets:
        raise Problem(
            403,
            "dataset_not_allowed",
            f"connection {connection.id!r} may not write dataset {dataset!r}",
        )
    return dataset


MESSAGE_TITLE = "Invalid XDM Message Format"  # Adobe's title for a message it refuses


def about_message(connection, document, problem):
    """`problem`, its message prefixed as Adobe's are ("inletId: [ID] imsOrgId: [ORG]"),
    titled as Adobe titles a refused message where it is a 400."""
    header = document.get("header") if isinstance(document, dict) else None
    org = header.get("imsOrgId") if isinstance(header, dict) else None
    prefix = f"inletId: [{connection.id}]" + (f" imsOrgId: [{org}]" if isinstance(org, str) else "")
    if not problem.message.startswith("inletId: "):
        problem.message = f"{prefix} {problem.message}"
    if problem.status == 400:
        problem.title = MESSAGE_TITLE
    return problem


def batch_answer(problem):
    """A refused message's entry in a 207, as Adobe's: statusCode and message (and the
    validation's cause, which Adobe gives only for a single message)."""
    return {"statusCode": problem.status, **problem.body()["report"]}


def validation_problem(connection, failed: FailedMessage):
    """Adobe's answer to a message that fails synchronous validation."""
    if failed.violations:
        found = [(v.pointer, v.keyword, v.message) for v in failed.violations]
    else:
        found = [(failed.error_pointer, failed.error_class, failed.error_message)]
    return Problem(
        400,
        failed.error_class,
        f"the message is invalid: {failed.error_message}",
        cause={
            "_streamingValidation": [
                {"pointerToViolation": "#" + pointer, "keyword": keyword, "message": message}
                for pointer, keyword, message in found
            ]
        },
    )


def accepted(connection, message_id, received_ms):
    return {"inletId": connection.id, "xactionId": message_id, "receivedTimeMs": received_ms}


def batch_messages(document):
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise Problem(400, "not_batch", 'a batch is {"messages": [message, ...]}')
    if not document["messages"]:
        raise Problem(400, "not_batch", "the batch holds no message")
    return document["messages"]


def encode(document):
    """A batch's message as it is published: its JSON, compact, UTF-8, keys in the order
    sent. orjson's (0.6 µs against json's 11 for a 0.8-kB envelope) but where it cannot
    (an integer beyond 64 bits, a lone surrogate): the same values, a float's spelling
    aside (1e16 for json's 1e+16)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
