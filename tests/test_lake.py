"""The lake read back by real query engines: DuckDB over the Hive partitions, and pyarrow."""
import copy
import datetime
import json
import pathlib
import shutil

import duckdb
import pyarrow.dataset as ds
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream

from domain.catalog import Catalog
from transforms.lake import WriteToLake
from domain.parsing import RecordParser

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def valid_records(catalog):
    parser = RecordParser(catalog)
    records = []
    for line in (EXAMPLES / "records.jsonl").read_bytes().splitlines():
        try:
            records.append(parser.parse(line, message_id=f"m{len(records)}",
                                        publish_time=datetime.datetime.now(datetime.timezone.utc)))
        except Exception:
            pass
    return records


def write_lake(records, catalog, lake):
    options = PipelineOptions(["--streaming", "--runner=BundleBasedDirectRunner"])
    with TestPipeline(options=options) as p:
        _ = (p | TestStream().add_elements(records).advance_watermark_to_infinity()
             | WriteToLake(str(lake), catalog, window_seconds=60, shards=2))


def test_duckdb_reads_the_hive_partitions_with_the_schema_types(tmp_path):
    catalog = Catalog.load(str(EXAMPLES / "catalog.yaml"))
    write_lake(valid_records(catalog), catalog, tmp_path)
    events = f"{tmp_path}/web-events/*/*/*.parquet"
    rows = duckdb.sql(f"""
        SELECT count(*), count(DISTINCT _id), typeof(any_value(timestamp)),
               typeof(any_value(productListItems)), typeof(any_value(date)),
               typeof(any_value(identityMap))
        FROM read_parquet('{events}', hive_partitioning=true)""").fetchall()[0]
    assert rows[:2] == (10, 10)
    assert rows[2] == "TIMESTAMP WITH TIME ZONE"
    assert rows[3].startswith("STRUCT(SKU VARCHAR, ") and "quantity BIGINT" in rows[3]
    assert rows[4] == "DATE"  # the partition column
    assert rows[5].startswith("MAP(VARCHAR, STRUCT(id VARCHAR")
    points = duckdb.sql(f"""
        SELECT _id, loyalty.points FROM read_parquet('{tmp_path}/crm-profiles/*/*/*.parquet',
        hive_partitioning=true) ORDER BY _record_time""").fetchall()
    assert points[0] == ("prof-ada-0001", 1200) and points[-1] == ("prof-ada-0003", 1650)


def test_copies_of_a_record_in_a_window_are_written_once(tmp_path):
    catalog = Catalog.load(str(EXAMPLES / "catalog.yaml"))
    records = valid_records(catalog)
    redelivered = copy.copy(records[0])  # same message again
    republished = copy.copy(records[0])  # the publisher sent it twice: a new message id
    republished.message_id = "m-again"
    republished.publish_time = records[0].publish_time + datetime.timedelta(seconds=1)
    write_lake(records + [redelivered, republished], catalog, tmp_path)
    ids = duckdb.sql(f"""SELECT _id, _message_id FROM read_parquet(
        '{tmp_path}/crm-profiles/*/*/*.parquet') WHERE _id = '{records[0].entity["_id"]}'
        """).fetchall()
    assert ids == [(records[0].entity["_id"], records[0].message_id)]


def test_a_schema_that_gains_an_optional_field_keeps_old_files_readable(tmp_path):
    catalog = Catalog.load(str(EXAMPLES / "catalog.yaml"))
    old = valid_records(catalog)
    write_lake(old, catalog, tmp_path / "lake")

    evolved = tmp_path / "evolved"
    shutil.copytree(EXAMPLES / "schemas", evolved / "schemas")
    schema_path = evolved / "schemas" / "individual-profile.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["favouriteColour"] = {"type": "string"}
    schema_path.write_text(json.dumps(schema))
    shutil.copy(EXAMPLES / "catalog.yaml", evolved / "catalog.yaml")
    new_catalog = Catalog.load(str(evolved / "catalog.yaml"))
    entity = {**old[0].entity, "_id": "prof-new-0001", "favouriteColour": "teal"}
    new = RecordParser(new_catalog).parse(
        json.dumps(entity).encode(), {"dataset": "crm-profiles"}, "m-new")
    write_lake([new], new_catalog, tmp_path / "lake")

    profiles = f"{tmp_path}/lake/crm-profiles/*/*/*.parquet"
    rows = dict(duckdb.sql(f"""SELECT _id, favouriteColour FROM read_parquet('{profiles}',
        union_by_name=true)""").fetchall())
    assert rows["prof-new-0001"] == "teal" and rows["prof-ada-0001"] is None
    assert len(rows) == 6

    files = sorted((tmp_path / "lake" / "crm-profiles").rglob("*.parquet"))
    unified = ds.dataset([ds.dataset(str(f), format="parquet") for f in files])
    table = ds.dataset(files, format="parquet", schema=unified.schema).to_table()
    assert sorted(table.column("favouriteColour").to_pylist(), key=str) == [None] * 5 + ["teal"]
