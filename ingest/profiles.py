"""Reading a merged profile back from Bigtable."""
import json
import warnings

from google.cloud import bigtable

from transforms.identity import row_key
from transforms.profile_store import ATTRIBUTES_FAMILY, EVENTS_FAMILY


def open_table(project, instance, table):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")
        return bigtable.Client(project=project).instance(instance).table(table)


def read_profile(table, namespace, identity_id):
    """{"attributes": {pointer: {"value", "time"}}, "events": [...newest first]}, or None."""
    row = table.read_row(row_key(namespace, identity_id))
    if row is None:
        return None
    cells = row.cells
    attributes = {
        qualifier.decode(): {"value": json.loads(versions[0].value),
                             "time": versions[0].timestamp.isoformat()}
        for qualifier, versions in sorted(cells.get(ATTRIBUTES_FAMILY, {}).items())}
    events = sorted(
        ({"_id": qualifier.decode(), "time": versions[0].timestamp.isoformat(),
          "eventType": json.loads(versions[0].value).get("eventType")}
         for qualifier, versions in cells.get(EVENTS_FAMILY, {}).items()),
        key=lambda event: event["time"], reverse=True)
    return {"identity": {"namespace": namespace, "id": identity_id},
            "attributes": attributes, "events": events}
