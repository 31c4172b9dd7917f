"""transforms/dead_letter.py: every failed message kept twice with its reason, on the
dead-letter topic unchanged and in the lake's `_errors` dataset (the forms:
tests/domain/test_dead_letters.py)."""

import glob
import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that

from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA
from domain.parsing import RecordParser
from domain.records import FailedMessage, RecordError, Violation
from helpers.beam_testing import streaming_pipeline
from helpers.pubsub_messages import sample_messages
from transforms.dead_letter import error_tables, to_pubsub_message
from transforms.lake import WriteParquetPartitions


def test_failed_payload_reaches_the_dead_letter_unchanged_with_its_reason():
    failed = FailedMessage(
        b"\xff raw",
        {"dataset": "d", "k": "v"},
        "schema_violation",
        "x" * 5000,
        "/a/b",
        "parse_and_validate",
        "d",
    )
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
            failures.append(
                FailedMessage.of(
                    error,
                    "parse_and_validate",
                    message.data,
                    message.attributes,
                    message.message_id,
                )
            )
    stream = TestStream().add_elements(failures).advance_watermark_to_infinity()
    with streaming_pipeline() as p:
        _ = (
            p
            | stream
            | error_tables()
            | WriteParquetPartitions(str(tmp_path), {ERRORS_DATASET: ERRORS_SCHEMA}, 60, 600)
        )
    files = glob.glob(f"{tmp_path}/_errors/date=*/hour=*/part-*.parquet")
    rows = sorted(
        (r for f in files for r in pq.read_table(f).to_pylist()), key=lambda r: r["_message_id"]
    )
    assert [r["error_class"] for r in rows] == [
        "not_json",
        "not_object",
        "unknown_dataset",
        "schema_violation",
        "schema_violation",
        "identity",
    ]
    assert [r["payload"] for r in rows] == [f.payload for f in failures]
    violation = rows[3]
    assert violation["dataset"] == "crm-profiles"
    assert violation["errors"] == [
        {
            "pointer": "/loyalty/points",
            "keyword": "type",
            "message": "'5400' is not of type 'integer'",
        }
    ]
    assert dict(violation["attributes"]) == {"n": "21"}


def test_error_rows_travel_as_the_lake_writers_input_a_table_per_bundle_stamped_when_taken_in():
    failures = [
        FailedMessage(
            b"{",
            {"dataset": "d"},
            "not_json",
            "message is not JSON",
            "",
            "parse_and_validate",
            "d",
            [Violation("/a", "type", "bad")],
            f"m-{number}",
        )
        for number in range(3)
    ]
    before = time.time()

    def check(stamped_tables):
        assert len(stamped_tables) == 1  # one bundle, one table
        ((dataset, shard), encoded), stamp = stamped_tables[0]
        assert (dataset, shard) == (ERRORS_DATASET, 0)
        assert before <= stamp <= time.time() + 1e-6
        table = pa.ipc.open_stream(encoded).read_all()
        assert table.schema.equals(ERRORS_SCHEMA) and table.num_rows == 3
        rows = table.to_pylist()
        assert [(r["payload"], r["error_class"], r["_message_id"]) for r in rows] == [
            (b"{", "not_json", f"m-{number}") for number in range(3)
        ]
        assert rows[0]["errors"] == [{"pointer": "/a", "keyword": "type", "message": "bad"}]

    with TestPipeline() as p:
        stamped = (
            p
            | beam.Create(failures, reshuffle=False)
            | error_tables()
            | beam.Map(lambda table, at=beam.DoFn.TimestampParam: (table, at.micros / 1e6))
        )
        assert_that(stamped, check)
