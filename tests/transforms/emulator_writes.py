"""WriteProfiles run on Beam's TestStream into a new table of the Bigtable emulator, and the
table read back cell for cell (not a test module): the profile store's tests
(test_profile_store.py, test_profile_lookup_bounds.py)."""

import json
import uuid

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream

from domain.parsing import RecordParser
from domain.profile_table import column_families, identity_of_row_key
from domain.profile_writes import fragment_cells
from ingest.admin import create_or_update_table
from ingest.clients import open_table
from tests.domain.graph_strategies import write_cell
from transforms.profile_store import WriteProfiles

PROJECT = "demo-project"
INSTANCE = "test-instance"


def new_table(catalog):
    """A new table with the catalog's families; returns (table id, table)."""
    table_id = f"p-{uuid.uuid4().hex[:8]}"
    create_or_update_table(PROJECT, INSTANCE, table_id, column_families(catalog))
    return table_id, open_table(PROJECT, INSTANCE, table_id)


def write(records, catalog, bundle=5):
    """Writes the Records with WriteProfiles into a new table, `bundle` records a bundle.
    Returns (the table, {counter name: committed value} of the run). Beam's direct
    runners count only a TestStream's first bundle (Beam 2.77: three bundles of 1, 2 and
    4 elements count 1), so a test of counters writes one bundle."""
    table_id, table = new_table(catalog)
    stream = TestStream()
    for start in range(0, len(records), bundle):
        stream = stream.add_elements(records[start : start + bundle])
    pipeline = TestPipeline(
        options=PipelineOptions(["--streaming", "--runner=BundleBasedDirectRunner"])
    )
    _ = (
        pipeline
        | stream.advance_watermark_to_infinity()
        | WriteProfiles(PROJECT, INSTANCE, table_id, catalog)
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        f"{c.key.metric.namespace}/{c.key.metric.name}": c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
    }
    return table, counters


def cells_of(table):
    """{row key: {family: {column: [(value, time_us)]}}}: every cell the table holds."""
    return {
        row.row_key: {
            family: {q: [(c.value, c.timestamp_micros) for c in cells] for q, cells in cols.items()}
            for family, cols in row.cells.items()
        }
        for row in table.read_rows()
    }


def expected_cells(records, catalog):
    """The cells the records' fragments make, as Bigtable keeps them: each record of a
    profile-enabled dataset with an accepted primary identity, fragment_cells as written."""
    table = {}
    for record in records:
        if record.feeds_profile and record.primary_identity is not None:
            retention = catalog.datasets[record.dataset].retention_days
            for key, cell in fragment_cells(record, retention):
                write_cell(table, key, cell)
    return table


def identities_of(cells):
    return sorted(identity_of_row_key(key) for key in cells)


def parse_all(catalog, payloads):
    parser = RecordParser(catalog)
    return [parser.parse(payload) for payload in payloads]


def envelope(dataset, entity, operation=None):
    header = {"datasetId": dataset}
    if operation:
        header["operations"] = {"data": operation}
    return json.dumps({"header": header, "body": {"xdmEntity": entity}}).encode()


def identity_map(*identities):
    """The identityMap of (namespace, id) pairs, the first primary."""
    mapping = {}
    for index, (namespace, identity_id) in enumerate(identities):
        entry = {"id": identity_id, **({"primary": True} if index == 0 else {})}
        mapping.setdefault(namespace, []).append(entry)
    return mapping


def crm_record(record_id, modified, *identities, operation=None, **attributes):
    """A crm-profiles record (examples/catalog.yaml) keyed by the first identity."""
    entity = {
        "_id": record_id,
        "identityMap": identity_map(*identities),
        "_repo": {"modifyDate": modified},
        **attributes,
    }
    return envelope("crm-profiles", entity, operation)


def web_event(record_id, timestamp, *identities):
    """A web-events event (examples/catalog.yaml) keyed by the first identity."""
    entity = {
        "_id": record_id,
        "timestamp": timestamp,
        "eventType": "web.webpagedetails.pageViews",
        "identityMap": identity_map(*identities),
    }
    return envelope("web-events", entity)
