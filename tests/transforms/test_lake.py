"""transforms/lake.py: WriteToLake on Beam's TestStream: every record written once, in
Parquet typed by its schema, a record that cannot be written failing alone; and the lake
read back by real query engines, DuckDB over the Hive partitions, and pyarrow."""

import copy
import datetime
import glob
import json
import shutil

import apache_beam as beam
import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from domain.catalog import Catalog
from domain.lake_files import arrow_ipc_bytes
from domain.parsing import RecordParser
from helpers.beam_testing import streaming_pipeline
from helpers.examples import EXAMPLE_CATALOG, EXAMPLES
from helpers.pubsub_messages import sample_messages
from transforms.lake import WriteParquetPartitions, WriteToLake

UTC = datetime.timezone.utc


def test_lake_writes_every_record_once_even_with_old_event_times(catalog, tmp_path):
    parser = RecordParser(catalog)
    records = [
        parser.parse(m.data, m.attributes, m.message_id)
        for m in sample_messages()
        if m.attributes.get("n") not in {"18", "19", "20", "21", "22", "23"}
    ]
    stream = (
        TestStream()
        .add_elements(records[:10])
        .add_elements(records[10:])
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        lake = (
            p | stream | WriteToLake(str(tmp_path), catalog, window_seconds=60, dedup_seconds=600)
        )
        assert_that(lake["failed"], equal_to([]), label="no lake failures")
    files = glob.glob(f"{tmp_path}/*/date=*/hour=*/part-*.parquet")
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert sorted(r["_id"] for r in rows) == sorted(r.entity["_id"] for r in records)
    by_id = {r["_id"]: r for r in rows}
    assert by_id["prof-ada-0001"]["loyalty"]["points"] == 1200
    assert by_id["prof-ada-0001"]["_record_time"] == datetime.datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert not glob.glob(f"{tmp_path}/**/.*", recursive=True)  # no temporary files left


def test_record_that_cannot_be_written_goes_to_the_dead_letter(catalog, tmp_path):
    parser = RecordParser(catalog)
    record = parser.parse((EXAMPLES / "records.jsonl").read_bytes().splitlines()[0])
    record.entity["loyalty"]["points"] = 2**70  # valid JSON Schema integer, not an int64
    with streaming_pipeline() as p:
        lake = (
            p
            | TestStream().add_elements([record]).advance_watermark_to_infinity()
            | WriteToLake(str(tmp_path), catalog, window_seconds=60, dedup_seconds=600)
        )
        assert_that(
            lake["failed"] | beam.Map(lambda f: (f.error_class, f.step, f.dataset)),
            equal_to([("lake_write", "write_to_lake", "crm-profiles")]),
        )


def test_a_record_that_cannot_be_written_fails_alone_not_its_batch(catalog, tmp_path):
    parser = RecordParser(catalog)
    lines = (EXAMPLES / "records.jsonl").read_bytes().splitlines()
    records = [parser.parse(lines[0]) for _ in range(5)]
    for number, record in enumerate(records):
        record.entity["_id"] = f"batch-{number}"
        record.payload += b" " * number  # five messages, not five copies of one
    records[2].entity["loyalty"]["points"] = 2**70  # not an int64
    with streaming_pipeline() as p:
        lake = (
            p
            | TestStream().add_elements(records).advance_watermark_to_infinity()
            | WriteToLake(str(tmp_path), catalog, window_seconds=60, dedup_seconds=600)
        )
        assert_that(
            lake["failed"] | beam.Map(lambda f: (f.error_class, f.dataset)),
            equal_to([("lake_write", "crm-profiles")]),
        )
    files = glob.glob(f"{tmp_path}/*/date=*/hour=*/part-*.parquet")
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert sorted(r["_id"] for r in rows) == ["batch-0", "batch-1", "batch-3", "batch-4"]


def test_tables_made_under_an_older_schema_are_written_with_the_current_one(tmp_path):
    # Tables arrive as Arrow IPC bytes, the writer's one input form.
    current = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("tier", pa.string())])
    older = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("gone", pa.string())])
    batches = [
        window.TimestampedValue(
            (("ds", 0), arrow_ipc_bytes(pa.Table.from_pylist(rows, schema))), 10
        )
        for rows, schema in [
            ([{"_id": "a", "points": 1, "gone": "x"}], older),
            ([{"_id": "b", "points": 2, "tier": "gold"}], current),
            ([{"_id": "c", "points": 3}], current),
            ([{"_id": "d", "points": 4, "tier": "teal"}], current),
            ([{"_id": "e", "points": 5, "gone": "y"}], older),
        ]
    ]
    with streaming_pipeline() as p:
        _ = (
            p
            | TestStream().add_elements(batches).advance_watermark_to_infinity()
            | WriteParquetPartitions(str(tmp_path), {"ds": current}, 60, 600)
        )
    files = glob.glob(f"{tmp_path}/ds/date=*/hour=*/part-*.parquet")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.names == current.names
    assert sorted(table.to_pylist(), key=lambda r: r["_id"]) == [
        {"_id": "a", "points": 1, "tier": None},
        {"_id": "b", "points": 2, "tier": "gold"},
        {"_id": "c", "points": 3, "tier": None},
        {"_id": "d", "points": 4, "tier": "teal"},
        {"_id": "e", "points": 5, "tier": None},
    ]


# -- the lake as DuckDB and pyarrow read it --------------------------------------


def valid_records(catalog):
    parser = RecordParser(catalog)
    records = []
    for line in (EXAMPLES / "records.jsonl").read_bytes().splitlines():
        try:
            records.append(
                parser.parse(
                    line,
                    message_id=f"m{len(records)}",
                    publish_time=datetime.datetime.now(datetime.timezone.utc),
                )
            )
        except Exception:
            pass
    return records


def write_lake(records, catalog, lake):
    options = PipelineOptions(["--streaming", "--runner=BundleBasedDirectRunner"])
    with TestPipeline(options=options) as p:
        _ = (
            p
            | TestStream().add_elements(records).advance_watermark_to_infinity()
            | WriteToLake(str(lake), catalog, window_seconds=60, dedup_seconds=600, shards=2)
        )


def test_duckdb_reads_the_hive_partitions_with_the_schema_types(tmp_path):
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
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
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
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
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
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
        json.dumps(entity).encode(), {"dataset": "crm-profiles"}, "m-new"
    )
    write_lake([new], new_catalog, tmp_path / "lake")

    profiles = f"{tmp_path}/lake/crm-profiles/*/*/*.parquet"
    rows = dict(
        duckdb.sql(f"""SELECT _id, favouriteColour FROM read_parquet('{profiles}',
        union_by_name=true)""").fetchall()
    )
    assert rows["prof-new-0001"] == "teal" and rows["prof-ada-0001"] is None
    assert len(rows) == 6

    files = sorted((tmp_path / "lake" / "crm-profiles").rglob("*.parquet"))
    unified = ds.dataset([ds.dataset(str(f), format="parquet") for f in files])
    table = ds.dataset(files, format="parquet", schema=unified.schema).to_table()
    assert sorted(table.column("favouriteColour").to_pylist(), key=str) == [None] * 5 + ["teal"]


def test_a_restarted_run_writes_what_the_last_run_did_not_and_nothing_twice(tmp_path):
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    records = valid_records(catalog)
    write_lake(records[:6], catalog, tmp_path)
    first = set(tmp_path.rglob("*.parquet"))
    # A restart: the messages not acknowledged come again, beside new ones; its keys come
    # from the lake's files, not from memory (a new DoFn, a new run id).
    write_lake(records[3:], catalog, tmp_path)
    both = set(tmp_path.rglob("*.parquet"))
    assert first < both
    ids = duckdb.sql(f"SELECT _id FROM read_parquet('{tmp_path}/*/*/*/*.parquet')").fetchall()
    assert sorted(i for (i,) in ids) == sorted(r.entity["_id"] for r in records)


def test_an_unreadable_file_in_a_partition_does_not_stop_the_writer(tmp_path):
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    records = valid_records(catalog)
    write_lake(records[:1], catalog, tmp_path)
    (written,) = tmp_path.rglob("*.parquet")
    # A file of our name that is not Parquet (a half-copied file, say) beside it.
    (
        written.parent / written.name.replace(written.name.split("-")[-1], "broken.parquet")
    ).write_bytes(b"not parquet")
    write_lake(records, catalog, tmp_path)
    good = [f for f in tmp_path.rglob("*.parquet") if "broken" not in f.name]
    ids = [i for f in good for i in pq.read_table(f).column("_id").to_pylist()]
    assert sorted(ids) == sorted(r.entity["_id"] for r in records)


def test_two_records_that_share_an_id_are_both_kept(tmp_path):
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    records = valid_records(catalog)
    other = copy.copy(records[0])  # another record under the same _id: other bytes
    other.payload = records[0].payload + b" "
    other.message_id = "m-other"
    write_lake(records + [other], catalog, tmp_path)
    ids = duckdb.sql(f"""SELECT _message_id FROM read_parquet(
        '{tmp_path}/crm-profiles/*/*/*.parquet') WHERE _id = '{records[0].entity["_id"]}'
        """).fetchall()
    assert sorted(ids) == sorted([(records[0].message_id,), ("m-other",)])


def test_a_copy_in_a_later_window_is_written_once_and_after_the_horizon_again(tmp_path):
    schema = pa.schema([("_id", pa.string()), ("_message_key", pa.uint64())])
    copy_of_one = (
        ("ds", 0),
        arrow_ipc_bytes(pa.Table.from_pylist([{"_id": "a", "_message_key": 7}], schema)),
    )
    stream = TestStream()
    for second in (10, 130, 10 + 600 + 61):  # a later window; then past the 600-s horizon
        stream = stream.add_elements([window.TimestampedValue(copy_of_one, second)])
        stream = stream.advance_watermark_to(second + 60)
    with streaming_pipeline() as p:
        _ = (
            p
            | stream.advance_watermark_to_infinity()
            | WriteParquetPartitions(str(tmp_path), {"ds": schema}, 60, 600)
        )
    files = sorted(tmp_path.rglob("*.parquet"))
    assert [f.name.split("-")[1] for f in files] == ["19700101T000000", "19700101T001100"]
    assert [pq.read_table(f).num_rows for f in files] == [1, 1]
