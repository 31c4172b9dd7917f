"""Reading a merged profile back from Bigtable, by any identity linked to it."""
import datetime
import json
import urllib.parse
import warnings

from google.cloud import bigtable

from transforms.identity import row_key
from transforms.profile_store import (
    ATTRIBUTES_FAMILY, IDENTITY_FAMILY, LINKED_FAMILY, META_FAMILY)


def open_table(project, instance, table):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")
        return bigtable.Client(project=project).instance(instance).table(table)


def read_profile(table, namespace, identity_id, max_events=20):
    """The profile that the identity belongs to, or None.

    An identity that another profile has linked leads to that profile (the one that
    linked it last); otherwise to the profile keyed by the identity itself.
    """
    own_key = row_key(namespace, identity_id)
    row = table.read_row(own_key)
    if row is None:
        return None
    linked = row.cells.get(LINKED_FAMILY, {})
    if linked:
        newest = max(linked.items(), key=lambda item: item[1][0].timestamp)[0]
        row = table.read_row(newest) or row
    if not (set(row.cells) - {LINKED_FAMILY}):
        return None
    return _profile(row, max_events)


def _profile(row, max_events):
    cells = row.cells
    attributes = {}
    for qualifier, versions in sorted(cells.get(ATTRIBUTES_FAMILY, {}).items()):
        stored = json.loads(versions[0].value)
        attributes[qualifier.decode()] = {"value": stored["value"], "dataset": stored["dataset"],
                                          "time": versions[0].timestamp.isoformat()}
    identities = []
    for qualifier, versions in sorted(cells.get(IDENTITY_FAMILY, {}).items()):
        namespace, _, identity_id = qualifier.decode().partition("#")
        identities.append({"namespace": urllib.parse.unquote(namespace), "id": identity_id,
                           "linked": versions[0].timestamp.isoformat()})
    events = []
    for family, columns in cells.items():
        if family.startswith("events_"):
            for qualifier, versions in columns.items():
                stored = json.loads(versions[0].value)
                events.append((qualifier, {
                    "_id": stored["event"].get("_id"), "dataset": stored["dataset"],
                    "time": versions[0].timestamp.isoformat(),
                    "eventType": stored["event"].get("eventType"), "event": stored["event"]}))
    events = [event for _, event in sorted(events, key=lambda item: item[0])][:max_events]
    meta = cells.get(META_FAMILY, {})
    return {"key": row.row_key.decode("utf-8", "replace"), "attributes": attributes,
            "identities": identities, "events": events,
            **{f"last_{name.decode()}": _time(meta[name][0].value) for name in meta}}


def _time(micros):
    return datetime.datetime.fromtimestamp(int(micros) / 1e6, datetime.timezone.utc).isoformat()
