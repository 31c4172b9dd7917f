"""The profile table's layout in Bigtable, both ways: the one owner of row keys, families,
columns and cells, used by the pipeline that writes them and the lookup that reads them.

Each record is written blindly as a fragment of the person, in the row of its primary
identity, and its identities as links in the row of each: no read, no state, and cells
that only a record's own redelivery writes again, identically. Who is one person, and
what their profile says, is resolved when it is read (domain/identity_graph.py,
domain/unified_profile.py): that is how Adobe's profile store works, fragments plus
merge policies.

- row key: `<4 hex digits of sha256>#<namespace, percent-encoded>#<identity id>`, UTF-8.
  The hash prefix spreads sequential identities over the key space; percent-encoding the
  namespace keeps `#` out of it, so no two (namespace, id) pairs share a key.
- `rec`: a profile record of this row's identity (its primary one), a column per record,
  `<time in µs, 19 digits>#<tie-break>`; the value `{"dataset", "operation",
  "attributes": [[JSON pointer, value], ...], "id"}`.
- `link`: a record that carries this identity beside others, a column per record,
  `<9999999999999999999 - time in µs>#<tie-break>` (newest first); the value
  `{"identities": [[namespace, id], ...], "dataset", "id"}`, and `"unproven": [[namespace,
  id], ...]` where the record carried person identities it could not link (written only
  in the rows of the identities it did link, never in the unproven ones').
- `del`: a delete of this identity's profile, a column per delete, named as in `rec`,
  empty: apart from the links, so that a lookup that reads only a row's newest links
  still sees every delete.
- `events_<N>d`: experience events kept N days (the dataset's `retention_days`), a column
  per event, `<9999999999999999999 - time in µs>#<tie-break>#<_id>` (newest first); the
  value `{"dataset", "event"}`.
Cell times are the record's time, cut to the millisecond (Bigtable's granularity); the
exact time and the tie-break are in the column name, so equal times stay ordered.
"""

import datetime
import functools
import hashlib
import json
import typing
import urllib.parse

from google.cloud.bigtable import column_family

from domain.identity_graph import Link
from domain.merge import OrderKey

RECORDS_FAMILY = "rec"
LINKS_FAMILY = "link"
DELETES_FAMILY = "del"
EVENTS_FAMILY_PREFIX = "events_"
MAX_TIME_US = 9_999_999_999_999_999_999
MAX_ROW_KEY_BYTES = 4096  # Bigtable's limit
# The cells' JSON, as json.dumps(..., ensure_ascii=False) writes it, one encoder for all.
CELL_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)


class Cell(typing.NamedTuple):
    family: str
    column: bytes
    value: bytes
    time_us: int  # the record's time; Bigtable keeps it to the millisecond


@functools.lru_cache(maxsize=1024)  # a handful of namespaces; quote costs µs a call
def quoted_namespace(namespace):
    return urllib.parse.quote(namespace, safe="")


@functools.lru_cache(maxsize=100_000)  # a person's identities come again and again
def row_key(namespace, identity_id):
    identity = f"{quoted_namespace(namespace)}#{identity_id}".encode()
    return hashlib.sha256(identity).hexdigest()[:4].encode("ascii") + b"#" + identity


def identity_of_row_key(key):
    namespace, _, identity_id = key.decode("utf-8").split("#", 1)[1].partition("#")
    return urllib.parse.unquote(namespace), identity_id


def events_family(retention_days):
    return f"{EVENTS_FAMILY_PREFIX}{retention_days}d"


def is_events_family(family):
    return family.startswith(EVENTS_FAMILY_PREFIX)


def column_families(catalog=None):
    """The table's column families and their garbage-collection rules."""
    families = {
        RECORDS_FAMILY: column_family.MaxVersionsGCRule(1),
        LINKS_FAMILY: column_family.MaxVersionsGCRule(1),
        DELETES_FAMILY: column_family.MaxVersionsGCRule(1),
    }
    for days in sorted(
        {
            d.retention_days
            for d in (catalog.datasets.values() if catalog else [])
            if d.feeds_profile and d.kind == "event"
        }
    ):
        families[events_family(days)] = column_family.GCRuleUnion(
            [
                column_family.MaxVersionsGCRule(1),
                column_family.MaxAgeGCRule(datetime.timedelta(days=days)),
            ]
        )
    return families


# Writing


def record_cell(order, dataset, operation, attributes, record_id):
    value = {"dataset": dataset, "operation": operation, "attributes": attributes, "id": record_id}
    return Cell(
        RECORDS_FAMILY, _record_column(order), CELL_JSON.encode(value).encode(), order.time_us
    )


def link_cell(order, identities, dataset, record_id, unproven=()):
    value = {"identities": identities, "dataset": dataset, "id": record_id}
    if unproven:  # only then: the cells of records without any stay as they were
        value["unproven"] = [list(identity) for identity in unproven]
    return Cell(LINKS_FAMILY, _link_column(order), CELL_JSON.encode(value).encode(), order.time_us)


def delete_cell(order):
    return Cell(DELETES_FAMILY, _record_column(order), b"", order.time_us)


def event_cell(order, family, dataset, event):
    event_id = event.get("_id")
    column = _link_column(order) + b"#" + (event_id if isinstance(event_id, str) else "").encode()
    value = CELL_JSON.encode({"dataset": dataset, "event": event}).encode()
    return Cell(family, column, value, order.time_us)


def _record_column(order):
    return f"{order.time_us:019d}#{order.tiebreak}".encode()


def _link_column(order):
    return f"{MAX_TIME_US - order.time_us:019d}#{order.tiebreak}".encode()


def _order_of_record_column(column):
    time_us, _, tiebreak = column.decode().partition("#")
    return OrderKey(int(time_us), tiebreak)


def _order_of_link_column(column):
    inverted, tiebreak = column.decode().split("#")[:2]
    return OrderKey(MAX_TIME_US - int(inverted), tiebreak)


# Reading: a row as Bigtable's client gives it (PartialRowData) or as plain
# {family: {column: [(value, time)]}}, into what it says.


class StoredRecord(typing.NamedTuple):
    order: OrderKey
    dataset: str
    operation: str
    attributes: list  # [[JSON pointer, value], ...]
    record_id: str


class StoredEvent(typing.NamedTuple):
    column: bytes  # sorts newest first across rows
    order: OrderKey
    dataset: str
    event: dict


def links_of(cells):
    """The Links of a row's `link` family."""
    links = []
    for column, versions in cells.get(LINKS_FAMILY, {}).items():
        order = _order_of_link_column(column)
        value = json.loads(_value(versions))
        links.append(
            Link(
                order.time_us,
                order.tiebreak,
                tuple(sorted(tuple(i) for i in value["identities"])),
                value.get("dataset", ""),
                value.get("id") or "",
                tuple(sorted(tuple(i) for i in value.get("unproven", ()))),
            )
        )
    return links


def last_delete_of(cells):
    """The order key of the row's newest delete, or None."""
    return max(map(_order_of_record_column, cells.get(DELETES_FAMILY, {})), default=None)


def records_of(cells):
    records = []
    for column, versions in cells.get(RECORDS_FAMILY, {}).items():
        value = json.loads(_value(versions))
        records.append(
            StoredRecord(
                _order_of_record_column(column),
                value["dataset"],
                value["operation"],
                value["attributes"],
                value.get("id") or "",
            )
        )
    return records


def events_of(cells):
    events = []
    for family, columns in cells.items():
        if is_events_family(family):
            for column, versions in columns.items():
                value = json.loads(_value(versions))
                events.append(
                    StoredEvent(
                        column, _order_of_link_column(column), value["dataset"], value["event"]
                    )
                )
    return events


def _value(versions):
    first = versions[0]
    return first.value if hasattr(first, "value") else first[0]
