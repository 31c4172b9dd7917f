"""domain/lake_files.py: where a partition's Parquet file goes, what it holds, and how it
lands."""

import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from domain.lake_files import (
    arrow_ipc_bytes,
    once_per_id,
    partition_file_path,
    table_in_schema,
    write_atomically,
)

UTC = datetime.timezone.utc
CURRENT = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("tier", pa.string())])
OLDER = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("gone", pa.string())])
LAKE_ROWS = pa.schema(
    [
        ("_id", pa.string()),
        ("_publish_time", pa.timestamp("us", tz="UTC")),
        ("_message_id", pa.string()),
        ("n", pa.int64()),
    ]
)


def at(second):
    return datetime.datetime(2026, 11, 30, 12, 0, second, tzinfo=UTC)


def test_a_partition_file_is_named_by_window_dataset_shard_pane_and_run():
    path = partition_file_path(
        "gs://bucket/lake",
        "web-events",
        at(0).replace(minute=34),
        at(0).replace(minute=35),
        7,
        2,
        "abcd1234",
    )
    assert path == (
        "gs://bucket/lake/web-events/date=2026-11-30/hour=12/"
        "part-20261130T123400-123500-007-2-abcd1234.parquet"
    )
    midnight = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    assert partition_file_path(
        "/lake", "_errors", midnight - datetime.timedelta(minutes=1), midnight, 123, 0, "r"
    ) == ("/lake/_errors/date=2026-12-31/hour=23/part-20261231T235900-000000-123-0-r.parquet")


def test_arrow_ipc_bytes_hold_the_table_as_it_was():
    table = pa.Table.from_pylist(
        [{"_id": "a", "points": 1, "tier": None}, {"_id": "é", "points": -(2**63), "tier": "gold"}],
        CURRENT,
    )
    decoded = pa.ipc.open_stream(arrow_ipc_bytes(table)).read_all()
    assert decoded.equals(table) and decoded.schema.equals(CURRENT)


def test_tables_of_an_older_schema_are_converted_to_the_current_one():
    tables = [
        arrow_ipc_bytes(pa.Table.from_pylist([{"_id": "a", "points": 1, "gone": "x"}], OLDER)),
        arrow_ipc_bytes(pa.Table.from_pylist([{"_id": "b", "points": 2, "tier": "gold"}], CURRENT)),
        arrow_ipc_bytes(pa.Table.from_pylist([{"_id": "c", "points": 3, "gone": "y"}], OLDER)),
    ]
    table = table_in_schema(tables, CURRENT)
    assert table.schema.equals(CURRENT)
    assert sorted(table.to_pylist(), key=lambda r: r["_id"]) == [
        {"_id": "a", "points": 1, "tier": None},
        {"_id": "b", "points": 2, "tier": "gold"},
        {"_id": "c", "points": 3, "tier": None},
    ]


def test_tables_of_the_current_schema_are_taken_as_they_are():
    rows = [[{"_id": "a", "points": 1, "tier": "x"}], [{"_id": "b", "points": 2, "tier": None}]]
    table = table_in_schema(
        [arrow_ipc_bytes(pa.Table.from_pylist(r, CURRENT)) for r in rows], CURRENT
    )
    assert table.to_pylist() == rows[0] + rows[1]
    assert table_in_schema([], CURRENT).num_rows == 0
    assert table_in_schema([], CURRENT).schema.equals(CURRENT)


def test_copies_of_a_record_are_kept_once_the_first_published():
    rows = [
        {"_id": "a", "_publish_time": at(5), "_message_id": "m-5", "n": 1},
        {"_id": "b", "_publish_time": at(1), "_message_id": "m-1", "n": 2},
        {"_id": "a", "_publish_time": at(2), "_message_id": "m-2", "n": 3},  # first published
        {"_id": None, "_publish_time": at(0), "_message_id": "x", "n": 4},
        {"_id": "a", "_publish_time": at(2), "_message_id": "m-3", "n": 5},  # same time, later id
        {"_id": None, "_publish_time": at(0), "_message_id": "x", "n": 6},
        {"_id": "c", "_publish_time": None, "_message_id": "m-9", "n": 7},
        {"_id": "c", "_publish_time": at(59), "_message_id": "m-8", "n": 8},  # a time beats none
    ]
    kept = once_per_id(pa.Table.from_pylist(rows, LAKE_ROWS))
    assert sorted(r["n"] for r in kept.to_pylist()) == [2, 3, 4, 6, 8]


def test_a_table_without_copies_or_ids_is_kept_whole():
    unique = pa.Table.from_pylist(
        [
            {"_id": "a", "_publish_time": at(1), "_message_id": "1", "n": 1},
            {"_id": "b", "_publish_time": None, "_message_id": None, "n": 2},
        ],
        LAKE_ROWS,
    )
    assert once_per_id(unique).equals(unique)
    no_ids = pa.table({"n": [1, 1]})
    assert once_per_id(no_ids).equals(no_ids)


def test_a_file_lands_whole_under_its_name_and_nothing_else_is_left(tmp_path):
    table = pa.Table.from_pylist([{"_id": "a", "points": 1, "tier": "x"}], CURRENT)
    path = tmp_path / "ds" / "date=2026-11-30" / "hour=12" / "part-1.parquet"
    path.parent.mkdir(parents=True)
    write_atomically(str(path), table)
    assert pq.read_table(path).equals(table)
    assert [p.name for p in path.parent.iterdir()] == ["part-1.parquet"]
    write_atomically(str(path), table.slice(0, 0))  # a retry overwrites its own file
    assert pq.read_table(path).num_rows == 0
    assert [p.name for p in path.parent.iterdir()] == ["part-1.parquet"]
