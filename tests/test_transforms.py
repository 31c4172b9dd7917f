"""The pipeline's transforms on Beam's own TestPipeline, assert_that and TestStream."""
import datetime
import glob
import pathlib

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from domain.catalog import Catalog
from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA
from transforms.dead_letter import to_error_row, to_pubsub_message
from transforms.lake import WriteParquetPartitions, WriteToLake
from domain.lake_files import arrow_ipc_bytes
from domain.records import FailedMessage, RecordError
from domain.parsing import RecordParser
from transforms.validate import ParseAndValidate

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load(str(EXAMPLES / "catalog.yaml"))


def sample_messages():
    lines = (EXAMPLES / "records.jsonl").read_bytes().splitlines()
    messages = [PubsubMessage(line, {"n": str(i)}, message_id=f"m{i}")
                for i, line in enumerate(lines)]
    for i, line in enumerate((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()):
        messages.append(PubsubMessage(line, {"dataset": "web-events"}, message_id=f"b{i}"))
    return messages


def streaming_pipeline():
    return TestPipeline(options=PipelineOptions(
        ["--streaming", "--runner=BundleBasedDirectRunner"]))


def test_parse_and_validate_splits_valid_records_from_failures(catalog):
    with TestPipeline() as p:
        results = p | beam.Create(sample_messages()) | ParseAndValidate(catalog)
        assert_that(results.valid | beam.Map(lambda r: r.dataset) | beam.combiners.Count.PerElement(),
                    equal_to([("crm-profiles", 5), ("web-events", 13), ("web-events-archive", 3)]),
                    label="valid per dataset")
        assert_that(results.failed | beam.Map(lambda f: (f.error_class, f.attributes["n"], f.step)),
                    equal_to([("not_json", "18", "parse_and_validate"),
                              ("not_object", "19", "parse_and_validate"),
                              ("unknown_dataset", "20", "parse_and_validate"),
                              ("schema_violation", "21", "parse_and_validate"),
                              ("schema_violation", "22", "parse_and_validate"),
                              ("identity", "23", "parse_and_validate")]),
                    label="failures with their class and attributes")


def test_failed_payload_reaches_the_dead_letter_unchanged_with_its_reason():
    failed = FailedMessage(b"\xff raw", {"dataset": "d", "k": "v"}, "schema_violation",
                           "x" * 5000, "/a/b", "parse_and_validate", "d")
    message = to_pubsub_message(failed)
    assert message.data == b"\xff raw"
    assert message.attributes["k"] == "v" and message.attributes["error_pointer"] == "/a/b"
    assert message.attributes["error_class"] == "schema_violation"
    assert len(message.attributes["error_message"].encode()) <= 1024


def test_failures_are_written_to_the_lake_errors_dataset_with_their_errors(catalog, tmp_path):
    parser = RecordParser(catalog)
    failures = []
    for message in sample_messages():
        try:
            parser.parse(message.data, message.attributes)
        except RecordError as error:
            failures.append(FailedMessage.of(error, "parse_and_validate", message.data,
                                             message.attributes, message.message_id))
    stream = TestStream().add_elements(failures).advance_watermark_to_infinity()
    with streaming_pipeline() as p:
        _ = (p | stream | beam.Map(to_error_row)
             | WriteParquetPartitions(str(tmp_path), {ERRORS_DATASET: ERRORS_SCHEMA}, 60))
    files = glob.glob(f"{tmp_path}/_errors/date=*/hour=*/part-*.parquet")
    rows = sorted((r for f in files for r in pq.read_table(f).to_pylist()),
                  key=lambda r: r["_message_id"])
    assert [r["error_class"] for r in rows] == [
        "not_json", "not_object", "unknown_dataset", "schema_violation", "schema_violation",
        "identity"]
    assert [r["payload"] for r in rows] == [f.payload for f in failures]
    violation = rows[3]
    assert violation["dataset"] == "crm-profiles"
    assert violation["errors"] == [
        {"pointer": "/loyalty/points", "keyword": "type",
         "message": "'5400' is not of type 'integer'"}]
    assert dict(violation["attributes"]) == {"n": "21"}


def test_lake_writes_every_record_once_even_with_old_event_times(catalog, tmp_path):
    parser = RecordParser(catalog)
    records = [parser.parse(m.data, m.attributes, m.message_id) for m in sample_messages()
               if m.attributes.get("n") not in {"18", "19", "20", "21", "22", "23"}]
    stream = (TestStream().add_elements(records[:10]).add_elements(records[10:])
              .advance_watermark_to_infinity())
    with streaming_pipeline() as p:
        lake = p | stream | WriteToLake(str(tmp_path), catalog, window_seconds=60)
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
    record.entity["loyalty"]["points"] = 2 ** 70  # valid JSON Schema integer, not an int64
    with streaming_pipeline() as p:
        lake = (p | TestStream().add_elements([record]).advance_watermark_to_infinity()
                | WriteToLake(str(tmp_path), catalog, window_seconds=60))
        assert_that(lake["failed"] | beam.Map(lambda f: (f.error_class, f.step, f.dataset)),
                    equal_to([("lake_write", "write_to_lake", "crm-profiles")]))


def test_a_record_that_cannot_be_written_fails_alone_not_its_batch(catalog, tmp_path):
    parser = RecordParser(catalog)
    lines = (EXAMPLES / "records.jsonl").read_bytes().splitlines()
    records = [parser.parse(lines[0]) for _ in range(5)]
    for number, record in enumerate(records):
        record.entity["_id"] = f"batch-{number}"
    records[2].entity["loyalty"]["points"] = 2 ** 70  # not an int64
    with streaming_pipeline() as p:
        lake = (p | TestStream().add_elements(records).advance_watermark_to_infinity()
                | WriteToLake(str(tmp_path), catalog, window_seconds=60))
        assert_that(lake["failed"] | beam.Map(lambda f: (f.error_class, f.dataset)),
                    equal_to([("lake_write", "crm-profiles")]))
    files = glob.glob(f"{tmp_path}/*/date=*/hour=*/part-*.parquet")
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert sorted(r["_id"] for r in rows) == ["batch-0", "batch-1", "batch-3", "batch-4"]


def test_tables_made_under_an_older_schema_are_written_with_the_current_one(tmp_path):
    # Tables arrive as Arrow IPC bytes, the writer's one input form.
    import pyarrow as pa
    current = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("tier", pa.string())])
    older = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("gone", pa.string())])
    batches = [
        window.TimestampedValue((("ds", 0), arrow_ipc_bytes(pa.Table.from_pylist(rows, schema))), 10)
        for rows, schema in [
            ([{"_id": "a", "points": 1, "gone": "x"}], older),
            ([{"_id": "b", "points": 2, "tier": "gold"}], current),
            ([{"_id": "c", "points": 3}], current),
            ([{"_id": "d", "points": 4, "tier": "teal"}], current),
            ([{"_id": "e", "points": 5, "gone": "y"}], older),
        ]
    ]
    with streaming_pipeline() as p:
        _ = (p | TestStream().add_elements(batches).advance_watermark_to_infinity()
             | WriteParquetPartitions(str(tmp_path), {"ds": current}, 60))
    files = glob.glob(f"{tmp_path}/ds/date=*/hour=*/part-*.parquet")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.names == current.names
    assert sorted(table.to_pylist(), key=lambda r: r["_id"]) == [
        {"_id": "a", "points": 1, "tier": None},
        {"_id": "b", "points": 2, "tier": "gold"},
        {"_id": "c", "points": 3, "tier": None},
        {"_id": "d", "points": 4, "tier": "teal"},
        {"_id": "e", "points": 5, "tier": None}]
