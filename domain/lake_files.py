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

_NAME_TIME = "%Y%m%dT%H%M%S"


def arrow_ipc_bytes(table):
    """The table as an Arrow IPC stream: the one form rows travel in to the writer (Beam's
    fallback coder would pickle a Table, at a far higher cost)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


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
        f"part-{start:{_NAME_TIME}}-{end:%H%M%S}-{shard:03d}-{pane_index}-{run_id}.parquet",
    )


def shard_files(lake_path, dataset, shard, since, until):
    """[(path, window start as seconds since the epoch)] of the files of `dataset` and
    `shard` whose window starts in [since, until] (UTC datetimes): the hour folders
    between are listed, nothing else."""
    hour = since.replace(minute=0, second=0, microsecond=0)
    patterns = []
    while hour <= until:
        patterns.append(
            posixpath.join(
                lake_path, dataset, f"date={hour:%Y-%m-%d}", f"hour={hour:%H}", "part-*.parquet"
            )
        )
        hour += datetime.timedelta(hours=1)
    found = []
    for result in FileSystems.match(patterns):
        for metadata in result.metadata_list:
            start, file_shard = _window_and_shard(posixpath.basename(metadata.path))
            if file_shard == shard and since.timestamp() <= start <= until.timestamp():
                found.append((metadata.path, start))
    return found


def _window_and_shard(name):
    """(window start, seconds since the epoch; shard) of a file name of partition_file_path,
    or (None, None) for a name of another form."""
    parts = name.split("-")
    try:
        start = datetime.datetime.strptime(parts[1], _NAME_TIME).replace(tzinfo=UTC)
        return start.timestamp(), int(parts[3])
    except (IndexError, ValueError):
        return None, None


def read_column(path, column):
    """One column of a lake file, as a pyarrow array; None if the file has no such column
    (a file written before it existed)."""
    with FileSystems.open(path) as handle:
        parquet = pq.ParquetFile(handle)
        if column not in parquet.schema_arrow.names:
            return None
        return parquet.read(columns=[column]).column(column).combine_chunks()


def write_atomically(path, table):
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.inprogress")
    with FileSystems.create(temporary) as handle:
        # A window's table is the many small tables of the bundles it took in; the Parquet
        # writer is much faster on one chunk, and locally it runs on the runner's only
        # thread, with every record behind it waiting.
        pq.write_table(table.combine_chunks(), handle)
    FileSystems.rename([temporary], [path])
