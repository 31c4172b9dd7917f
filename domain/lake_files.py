"""The lake's files: where a partition's Parquet file goes, what it holds, and how it
lands. The one Parquet writer, for the datasets and the dead letter's `_errors` alike.

Files land at
`<lake>/<dataset>/date=YYYY-MM-DD/hour=HH/part-<window>-<shard>-<pane>-<run>.parquet`.
A file is written under a hidden temporary name and renamed when complete, so a reader
never sees half a file; its name is a function of window, dataset, shard, pane and run,
so a retried bundle overwrites its own file instead of adding a copy, and a restarted
pipeline adds files beside the last run's. Paths go through Beam's FileSystems, so
gs:// takes the same code as a local folder.
"""

import datetime
import posixpath
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from domain.times import UTC

MAX_TIME = datetime.datetime.max.replace(tzinfo=UTC)


def arrow_ipc_bytes(table):
    """The table as an Arrow IPC stream: the one form rows travel in to the writer (Beam's
    fallback coder would pickle a Table, at a far higher cost)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def once_per_id(table):
    """Rows with the same `_id` (a redelivery, a publisher's retry) are written once: the
    first published. Rows without an `_id` are all kept."""
    if "_id" not in table.column_names:
        return table
    ids = table.column("_id").to_pylist()
    present = [record_id for record_id in ids if record_id is not None]
    if len(set(present)) == len(present):
        return table
    publish_times = table.column("_publish_time").to_pylist()
    message_ids = table.column("_message_id").to_pylist()
    first, without_id = {}, []
    for index, record_id in enumerate(ids):
        if record_id is None:
            without_id.append(index)
            continue
        order = (publish_times[index] or MAX_TIME, message_ids[index] or "")
        if record_id not in first or order < first[record_id][0]:
            first[record_id] = (order, index)
    return table.take(sorted(index for _, index in first.values()) + without_id)


def table_in_schema(tables, schema):
    """Tables of IPC bytes as one table of `schema`. A table made under an older schema
    (before a Dataflow --update that changed the dataset's) is converted row by row."""
    same, rows = [], []
    for encoded in tables:
        table = pa.ipc.open_stream(encoded).read_all()
        if table.schema.equals(schema):
            same.append(table)
        else:
            rows.extend(table.to_pylist())
    if rows or not same:
        same.append(pa.Table.from_pylist(rows, schema=schema))
    return pa.concat_tables(same)


def partition_file_path(lake_path, dataset, start, end, shard, pane_index, run_id):
    """The file of a window [start, end) (UTC datetimes), dataset, shard and pane."""
    return posixpath.join(
        lake_path,
        dataset,
        f"date={start:%Y-%m-%d}",
        f"hour={start:%H}",
        f"part-{start:%Y%m%dT%H%M%S}-{end:%H%M%S}-{shard:03d}-{pane_index}-{run_id}.parquet",
    )


def write_atomically(path, table):
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.inprogress")
    with FileSystems.create(temporary) as handle:
        # A window's table is the many small tables of the bundles it took in; the Parquet
        # writer is much faster on one chunk, and locally it runs on the runner's only
        # thread, with every record behind it waiting.
        pq.write_table(table.combine_chunks(), handle)
    FileSystems.rename([temporary], [path])
