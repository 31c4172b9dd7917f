"""domain/lake_files.py: where a partition's Parquet file goes, what it holds, and how it
lands."""

import datetime
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

from domain.lake_files import (
    arrow_ipc_bytes,
    partition_file_path,
    read_column,
    shard_files,
    table_in_schema,
    write_atomically,
)

UTC = datetime.timezone.utc
CURRENT = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("tier", pa.string())])
OLDER = pa.schema([("_id", pa.string()), ("points", pa.int64()), ("gone", pa.string())])


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


def test_the_files_of_a_shard_are_listed_by_window_across_hours(tmp_path):
    table = pa.Table.from_pylist([{"_id": "a", "points": 1, "tier": "x"}], CURRENT)
    written = {}
    for minute, shard in [(-70, 0), (-30, 0), (-1, 0), (-1, 1), (0, 0), (5, 0)]:
        start = at(0) + datetime.timedelta(minutes=minute)
        end = start + datetime.timedelta(minutes=1)
        path = partition_file_path(str(tmp_path), "ds", start, end, shard, 0, "r")
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, table)
        written[(minute, shard)] = path
    (tmp_path / "ds" / "date=2026-11-30" / "hour=11" / "notes.txt").write_text("not ours")
    found = shard_files(str(tmp_path), "ds", 0, at(0) - datetime.timedelta(minutes=30), at(0))
    assert sorted(found) == sorted(
        (written[(m, 0)], (at(0) + datetime.timedelta(minutes=m)).timestamp()) for m in (-30, -1, 0)
    )
    assert shard_files(str(tmp_path), "other", 0, at(0), at(0)) == []


def test_a_column_is_read_alone_and_a_file_without_it_gives_none(tmp_path):
    path = str(tmp_path / "f.parquet")
    write_atomically(path, pa.table({"_message_key": pa.array([3, 1], pa.uint64()), "x": [1, 2]}))
    assert read_column(path, "_message_key").to_pylist() == [3, 1]
    assert read_column(path, "missing") is None


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
