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
        linked = sorted(row.cells.get(LINKED_FAMILY, {}).items(),
                        key=lambda item: item[1][0].timestamp, reverse=True)
        for key, _ in linked:
            candidate = table.read_row(key)
            if candidate is not None and ATTRIBUTES_FAMILY in candidate.cells:
                row = candidate
                break
    if not (set(row.cells) - {LINKED_FAMILY}):
        return None
    profile = _profile(row)
    event_rows = [row] + [table.read_row(row_key(i["namespace"], i["id"]))
                          for i in profile["identities"]
                          if row_key(i["namespace"], i["id"]) != row.row_key]
    profile["events"] = _events([r for r in event_rows if r is not None], max_events)
    return profile


def _profile(row):
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
    meta = cells.get(META_FAMILY, {})
    return {"key": row.row_key.decode("utf-8", "replace"), "attributes": attributes,
            "identities": identities,
            **{f"last_{name.decode()}": _time(meta[name][0].value) for name in meta}}


def _events(rows, max_events):
    """Events of the rows, newest first (their column names sort that way), each once."""
    events = {}
    for row in rows:
        for family, columns in row.cells.items():
            if family.startswith("events_"):
                for qualifier, versions in columns.items():
                    stored = json.loads(versions[0].value)
                    events[qualifier] = {
                        "_id": stored["event"].get("_id"), "dataset": stored["dataset"],
                        "time": versions[0].timestamp.isoformat(),
                        "eventType": stored["event"].get("eventType"),
                        "event": stored["event"]}
    return [events[q] for q in sorted(events)][:max_events]


def _time(micros):
    return datetime.datetime.fromtimestamp(int(micros) / 1e6, datetime.timezone.utc).isoformat()
