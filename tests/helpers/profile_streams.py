"""Streams of profile records, and WriteProfiles run over one on the Bigtable emulator
and read back cell for cell (tests/transforms/test_profile_store.py; the CLI's profile
and identity lookups read what it writes: tests/ingest/test_profile_command.py,
test_identity_command.py)."""

import json

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream

from domain.parsing import RecordParser
from helpers.examples import EXAMPLES
from ingest.admin import create_resources
from ingest.clients import open_table
from transforms.profile_store import WriteProfiles

INSTANCE = "test-instance"


def envelope(dataset, entity, operation=None):
    header = {"datasetId": dataset}
    if operation:
        header["operations"] = {"data": operation}
    return json.dumps({"header": header, "body": {"xdmEntity": entity}}).encode()


def identity_map(identities):
    """The identityMap of [(namespace, id), ...], the first of them primary."""
    mapping = {}
    for index, (namespace, identity_id) in enumerate(identities):
        entry = {"id": identity_id, **({"primary": True} if index == 0 else {})}
        mapping.setdefault(namespace, []).append(entry)
    return mapping


def profile_record(record_id, modified, email, operation=None, **attributes):
    """A crm-profiles record keyed by its Email."""
    return profile_record_of(
        "crm-profiles", record_id, modified, [("Email", email)], operation, **attributes
    )


def profile_record_of(dataset, record_id, modified, identities, operation=None, **attributes):
    """A profile record of `dataset` with the identities [(namespace, id)], keyed by the
    first; `modified`: its _repo.modifyDate, the record's time."""
    entity = {
        "_id": record_id,
        "identityMap": identity_map(identities),
        "_repo": {"modifyDate": modified},
        **attributes,
    }
    return envelope(dataset, entity, operation)


def event_record(dataset, record_id, timestamp, identities, **fields):
    """An experience event of `dataset` with the identities [(namespace, id)], keyed by
    the first."""
    entity = {
        "_id": record_id,
        "timestamp": timestamp,
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": identity_map(identities),
        **fields,
    }
    return envelope(dataset, entity)


def sample_stream(catalog):
    """The example stream plus same-time conflicts, a create and a delete."""
    parser = RecordParser(catalog)
    payloads = [line for line in (EXAMPLES / "records.jsonl").read_bytes().splitlines()]
    payloads += [
        # Two records of Grace with the very same time: the tie-break decides, not arrival.
        profile_record(
            "tie-1", "2026-11-20T00:00:00Z", "grace@example.com", loyalty={"tier": "silver"}
        ),
        profile_record(
            "tie-2", "2026-11-20T00:00:00Z", "grace@example.com", loyalty={"tier": "platinum"}
        ),
        # Alan's profile is replaced by a create, then a later merge adds to it.
        profile_record(
            "alan-create",
            "2026-11-21T00:00:00Z",
            "alan@example.com",
            "create",
            person={"name": {"firstName": "Alan"}},
        ),
        profile_record(
            "alan-after", "2026-11-22T00:00:00Z", "alan@example.com", loyalty={"points": 7}
        ),
        # A person who is deleted, with a record before and one after the delete.
        profile_record(
            "del-1",
            "2026-11-10T00:00:00Z",
            "gone@example.com",
            loyalty={"points": 1},
            mobilePhone={"number": "+1"},
        ),
        profile_record("del-2", "2026-11-11T00:00:00Z", "gone@example.com", "delete"),
        profile_record("del-3", "2026-11-12T00:00:00Z", "gone@example.com", loyalty={"points": 3}),
    ]
    records = []
    for payload in payloads:
        try:
            records.append(parser.parse(payload))
        except Exception:
            pass  # the invalid examples: not this test's business
    return records


def run_and_read(records, catalog, table_id):
    """Creates the table on the emulator, writes the records with WriteProfiles and
    returns (the table, {row key: {family: {column: [(value, time)]}}})."""
    create_resources(
        instance=INSTANCE,
        table=table_id,
        catalog=catalog,
        topic=f"t-{table_id}",
        subscription=f"s-{table_id}",
        dead_letter_topic=f"d-{table_id}",
        dead_letter_subscription=f"ds-{table_id}",
    )
    stream = TestStream()
    for start in range(0, len(records), 5):  # several bundles
        stream = stream.add_elements(records[start : start + 5])
    options = PipelineOptions(["--streaming", "--runner=BundleBasedDirectRunner"])
    with TestPipeline(options=options) as p:
        _ = (
            p
            | stream.advance_watermark_to_infinity()
            | WriteProfiles("demo-project", INSTANCE, table_id, catalog)
        )
    table = open_table("demo-project", INSTANCE, table_id)
    return table, {
        row.row_key: {
            family: {q: [(c.value, c.timestamp) for c in cells] for q, cells in columns.items()}
            for family, columns in row.cells.items()
        }
        for row in table.read_rows()
    }
