"""The profile table's layout in Bigtable, both ways: the one owner of row keys, families,
columns and cells, used by the pipeline that writes them and the lookup that reads them.

- row key: `<4 hex digits of sha256>#<namespace, percent-encoded>#<identity id>`, UTF-8.
  The hash prefix spreads sequential identities over the key space; percent-encoding the
  namespace keeps `#` out of it, so the first `#` after the prefix always ends the
  namespace and no two (namespace, id) pairs share a key.
- `attr`: a column per attribute, named by JSON pointer; the value is
  `{"value": ..., "dataset": ...}`, the cell time the winning record's time.
- `meta`: columns `reset` (the last create or delete) and `deleted` (the last delete),
  each the record's time in microseconds.
- `identity`: in a profile's row, a column per linked identity, `<namespace>#<id>`.
- `linked`: in an identity's own row, a column per profile it belongs to (its row key).
- `events_<N>d`: experience events kept N days (the dataset's `retention_days`), a column
  per event named `<9999999999999 - time in ms>#<_id>`, so a row reads newest first;
  the value is `{"dataset": ..., "event": {...}}`.
Cell times are the record's time, cut to the millisecond (Bigtable's granularity).
"""

import datetime
import functools
import hashlib
import json
import urllib.parse

from google.cloud.bigtable import column_family
from google.cloud.bigtable.data.mutations import DeleteRangeFromColumn, SetCell

from domain import merge
from domain.times import micros

ATTRIBUTES_FAMILY = "attr"
META_FAMILY = "meta"
IDENTITY_FAMILY = "identity"
LINKED_FAMILY = "linked"
EVENTS_FAMILY_PREFIX = "events_"
RESET_COLUMN = b"reset"
DELETED_COLUMN = b"deleted"
MAX_EVENT_MS = 9_999_999_999_999
MAX_ROW_KEY_BYTES = 4096  # Bigtable's limit
# The cells' JSON, as json.dumps(..., ensure_ascii=False) writes it, one encoder for all.
CELL_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)


@functools.lru_cache(maxsize=1024)  # a handful of namespaces; quote costs µs a call
def quoted_namespace(namespace):
    return urllib.parse.quote(namespace, safe="")


@functools.lru_cache(maxsize=100_000)  # a person's identities come again and again
def row_key(namespace, identity_id):
    identity = f"{quoted_namespace(namespace)}#{identity_id}".encode()
    return hashlib.sha256(identity).hexdigest()[:4].encode("ascii") + b"#" + identity


def identity_column(namespace, identity_id):
    return f"{quoted_namespace(namespace)}#{identity_id}".encode()


def identity_of_column(qualifier):
    namespace, _, identity_id = qualifier.decode().partition("#")
    return urllib.parse.unquote(namespace), identity_id


def events_family(retention_days):
    return f"{EVENTS_FAMILY_PREFIX}{retention_days}d"


def is_events_family(family):
    return family.startswith(EVENTS_FAMILY_PREFIX)


def event_column(time_us, event_id):
    return f"{MAX_EVENT_MS - time_us // 1000:013d}#{event_id}".encode()


def attribute_cell(value, dataset):
    return CELL_JSON.encode({"value": value, "dataset": dataset})


def event_cell(dataset, event):
    return CELL_JSON.encode({"dataset": dataset, "event": event})


def cell_time_us(time_us):
    """Bigtable keeps cell times to the millisecond."""
    return time_us - time_us % 1000


def column_families(catalog=None):
    """The table's column families and their garbage-collection rules."""
    families = {
        ATTRIBUTES_FAMILY: column_family.MaxVersionsGCRule(1),
        META_FAMILY: column_family.MaxVersionsGCRule(1),
        IDENTITY_FAMILY: column_family.MaxVersionsGCRule(1),
        LINKED_FAMILY: column_family.MaxVersionsGCRule(1),
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


def replace_cell(row, family, column, value, time_us):
    """Deletes every version first: the new cell may be older than the one it replaces.
    The mutations are those of row.delete_cell and row.set_cell, made directly: those
    methods cost several microseconds a cell in argument handling."""
    mutations = row._get_mutations()
    mutations.append(DeleteRangeFromColumn(family, column))
    mutations.append(SetCell(family, column, value, cell_time_us(time_us)))


def set_cell(row, family, column, value, time_us):
    """The mutation row.set_cell(family, column, value, timestamp=...) adds, made from the
    microseconds themselves: set_cell wants a datetime and turns it back, µs a cell."""
    row._get_mutations().append(SetCell(family, column, value, cell_time_us(time_us)))


def state_from_row(row):
    """A ProfileState rebuilt from a stored row (after a restart the state is empty).
    Stored cells carry no tie-break: records with equal times may then merge otherwise."""
    state = merge.ProfileState()
    if row is None:
        return state
    cells = row.cells
    for qualifier, versions in cells.get(ATTRIBUTES_FAMILY, {}).items():
        stored = json.loads(versions[0].value)
        key = merge.OrderKey(micros(versions[0].timestamp), "")
        state.candidates[qualifier.decode()] = {
            stored["dataset"]: merge.Candidate(key, stored["dataset"], stored["value"])
        }
    meta = cells.get(META_FAMILY, {})
    if RESET_COLUMN in meta:
        state.reset = merge.OrderKey(int(meta[RESET_COLUMN][0].value), "")
    if DELETED_COLUMN in meta:
        state.deleted = merge.OrderKey(int(meta[DELETED_COLUMN][0].value), "")
    for qualifier, versions in cells.get(IDENTITY_FAMILY, {}).items():
        state.identities[identity_of_column(qualifier)] = merge.OrderKey(
            micros(versions[0].timestamp), ""
        )
    return state


def read_profile(table, namespace, identity_id, max_events=20):
    """The profile an identity belongs to, or None.

    Records are keyed by their primary identity, so one person can have several rows: the
    profile records' (keyed, say, by Email) and events keyed by a device id (ECID) before
    the person signed in. The lookup finds the row with profile attributes: the
    identity's own, else the newest that linked it; else the identity's own row of
    events. The events shown are those of every row keyed by one of the profile's
    identities, newest first.
    """
    row = table.read_row(row_key(namespace, identity_id))
    if row is None:
        return None
    if ATTRIBUTES_FAMILY not in row.cells:
        linked = sorted(
            row.cells.get(LINKED_FAMILY, {}).items(),
            key=lambda item: item[1][0].timestamp,
            reverse=True,
        )
        for key, _ in linked:
            candidate = table.read_row(key)
            if candidate is not None and ATTRIBUTES_FAMILY in candidate.cells:
                row = candidate
                break
    if not (set(row.cells) - {LINKED_FAMILY}):
        return None
    profile = _profile(row)
    event_rows = [row] + [
        table.read_row(row_key(i["namespace"], i["id"]))
        for i in profile["identities"]
        if row_key(i["namespace"], i["id"]) != row.row_key
    ]
    profile["events"] = _events([r for r in event_rows if r is not None], max_events)
    return profile


def _profile(row):
    cells = row.cells
    attributes = {}
    for qualifier, versions in sorted(cells.get(ATTRIBUTES_FAMILY, {}).items()):
        stored = json.loads(versions[0].value)
        attributes[qualifier.decode()] = {
            "value": stored["value"],
            "dataset": stored["dataset"],
            "time": versions[0].timestamp.isoformat(),
        }
    identities = []
    for qualifier, versions in sorted(cells.get(IDENTITY_FAMILY, {}).items()):
        namespace, identity_id = identity_of_column(qualifier)
        identities.append(
            {"namespace": namespace, "id": identity_id, "linked": versions[0].timestamp.isoformat()}
        )
    meta = cells.get(META_FAMILY, {})
    return {
        "key": row.row_key.decode("utf-8", "replace"),
        "attributes": attributes,
        "identities": identities,
        **{f"last_{name.decode()}": _time(meta[name][0].value) for name in meta},
    }


def _events(rows, max_events):
    """Events of the rows, newest first (their column names sort that way), each once."""
    events = {}
    for row in rows:
        for family, columns in row.cells.items():
            if is_events_family(family):
                for qualifier, versions in columns.items():
                    stored = json.loads(versions[0].value)
                    events[qualifier] = {
                        "_id": stored["event"].get("_id"),
                        "dataset": stored["dataset"],
                        "time": versions[0].timestamp.isoformat(),
                        "eventType": stored["event"].get("eventType"),
                        "event": stored["event"],
                    }
    return [events[q] for q in sorted(events)][:max_events]


def _time(micros_text):
    return datetime.datetime.fromtimestamp(
        int(micros_text) / 1e6, datetime.timezone.utc
    ).isoformat()
