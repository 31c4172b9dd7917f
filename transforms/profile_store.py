"""Profile branch: merges valid records into one Bigtable row per person.

Layout (see README, "Bigtable layout"):
- row key: the person's primary identity, see transforms/identity.py.
- family `attr`: one column per profile attribute, named by its JSON pointer
  (`/person/name/firstName`), holding the JSON value, with the record's time as the cell
  time. With one version kept, the newest record's value wins whatever the arrival order.
- family `event`: one column per experience event, named by its `_id`, holding the event
  as JSON, with the event's time as the cell time.
"""
import json

import apache_beam as beam
from apache_beam.io.gcp.bigtableio import WriteToBigTable
from google.cloud.bigtable import column_family
from google.cloud.bigtable.row import DirectRow

from transforms.identity import row_key
from transforms.records import json_pointer

ATTRIBUTES_FAMILY = "attr"
EVENTS_FAMILY = "event"


def column_families():
    """The table's column families and their garbage-collection rules."""
    return {
        ATTRIBUTES_FAMILY: column_family.MaxVersionsGCRule(1),
        EVENTS_FAMILY: column_family.MaxVersionsGCRule(1),
    }


class WriteProfiles(beam.PTransform):
    """Writes the records of profile-enabled datasets to the profile table."""

    def __init__(self, project, instance, table):
        super().__init__()
        self.project, self.instance, self.table = project, instance, table

    def expand(self, records):
        return (
            records
            | "KeepProfileDatasets" >> beam.Filter(lambda record: record.feeds_profile)
            | "ToBigtableRows" >> beam.Map(to_bigtable_row)
            | "WriteToBigtable" >> WriteToBigTable(self.project, self.instance, self.table))


def to_bigtable_row(record):
    row = DirectRow(row_key(*record.primary_identity))
    if record.kind == "event":
        row.set_cell(EVENTS_FAMILY, record.entity["_id"].encode("utf-8"),
                     _json_bytes(record.entity), timestamp=record.record_time)
    else:
        for pointer, value in leaf_attributes(record.entity):
            row.set_cell(ATTRIBUTES_FAMILY, pointer.encode("utf-8"), _json_bytes(value),
                         timestamp=record.record_time)
    return row


def leaf_attributes(entity, path=()):
    """(JSON pointer, value) for every leaf of a record; an array is one leaf."""
    for key, value in entity.items():
        if isinstance(value, dict) and value:
            yield from leaf_attributes(value, path + (key,))
        else:
            yield json_pointer(path + (key,)), value


def _json_bytes(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
