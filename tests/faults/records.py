"""The known records the fault tests publish (not a test module): valid events and profile
records of the example catalog's three datasets, made from examples/ records, each with an
`_id` of its own, for a few persons, so that Bigtable merges many records per person; and
the poison messages of issue #16 that once killed the pipeline."""

import datetime
import json
from dataclasses import dataclass

from domain.catalog import Catalog
from domain.parsing import RecordParser
from helpers.examples import EXAMPLE_CATALOG, example_lines

PERSONS = 6
_PROFILE = json.loads(example_lines("records.jsonl")[0])  # prof-ada-0001, an envelope
_EVENT = json.loads(example_lines("records-bare.jsonl")[0])  # bare-ada-0001, bare
# Recent times: an event older than its family's retention (90 days) would be collected.
_BASE = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(
    hours=1
)


@dataclass(frozen=True)
class Message:
    record_id: str  # the entity's _id; "" for a poison message
    payload: bytes
    attributes: dict
    valid: bool = True


def identities(person):
    """The (namespace, id) of person `person`: an Email and an ECID, linked by every record."""
    return [
        ("Email", f"fault-person-{person}@example.com"),
        ("ECID", f"{7109324678 + person:038d}"),
    ]


def _identity_map(person, primary):
    email, ecid = identities(person)
    return {
        "Email": [{"id": email[1], "authenticatedState": "authenticated", "primary": primary == 0}],
        "ECID": [{"id": ecid[1], "authenticatedState": "ambiguous", "primary": primary == 1}],
    }


def _iso(n):
    # Distinct times, a millisecond apart: Bigtable keeps cell times to the millisecond.
    moment = _BASE + datetime.timedelta(milliseconds=n)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(prefix, n):
    """The n-th record of stream `prefix`: a crm-profiles record (envelope), a web-events
    event (bare, its dataset in the attributes) or a web-events-archive event (lake only)."""
    record_id = f"{prefix}-{n:05d}"
    person = n % PERSONS
    kind = n % 3
    if kind == 0:
        entity = json.loads(json.dumps(_PROFILE["body"]["xdmEntity"]))
        entity.update(_id=record_id, identityMap=_identity_map(person, 0))
        entity["loyalty"]["points"] = n
        entity["_repo"] = {"createDate": _iso(0), "modifyDate": _iso(n)}
        body = {"header": {"datasetId": "crm-profiles"}, "body": {"xdmEntity": entity}}
        return Message(record_id, json.dumps(body).encode(), {})
    entity = {**_EVENT, "_id": record_id, "timestamp": _iso(n)}
    entity["identityMap"] = _identity_map(person, 1)
    if kind == 1:
        return Message(record_id, json.dumps(entity).encode(), {"dataset": "web-events"})
    body = {"header": {"datasetId": "web-events-archive"}, "body": {"xdmEntity": entity}}
    return Message(record_id, json.dumps(body).encode(), {})


def stream(prefix, count, start=0):
    return [message(prefix, n) for n in range(start, start + count)]


def poison_messages():
    """Messages that once stopped the pipeline (#16 item 1) or are plainly invalid."""
    event = {**_EVENT, "_id": "poison-unused"}
    surrogate = json.dumps(event)[:-1] + ', "\\ud800": 1}'  # a lone surrogate in a key
    numeric = {"header": {"datasetId": 42}, "body": {"xdmEntity": event}}
    return [
        Message("", b'{"_id": "poison-json", "timestamp": ', {"dataset": "web-events"}, False),
        Message("", surrogate.encode(), {"dataset": "web-events"}, False),
        Message("", json.dumps(numeric).encode(), {}, False),
    ]


def catalog():
    return Catalog.load(str(EXAMPLE_CATALOG))


def parsed(messages, catalog_=None):
    """The Records of the valid messages, parsed as the pipeline parses them; fails loudly
    if one that is meant to be valid is not (the test would count nothing)."""
    parser = RecordParser(catalog_ or catalog())
    return [parser.parse(m.payload, m.attributes) for m in messages if m.valid]
