"""Lake branch: every valid record as typed Parquet, one folder per dataset and hour.

Files land at
`<lake>/<dataset>/date=YYYY-MM-DD/hour=HH/part-<window>-<shard>-<pane>-<run>.parquet`.
Partitions follow ingestion time: each record is stamped with the time the pipeline took
it in, so a record whose own timestamp is hours old is never late for its window (the
DirectRunner's Pub/Sub watermark is wall-clock time, and windows drop late data without a
word). The record's own time is the `_record_time` column.

A file is written under a hidden temporary name and renamed when complete, so a reader
never sees half a file; its name is a function of window, dataset, shard, pane and run
(an id made when the pipeline is built), so a retried bundle overwrites its own file
instead of adding a copy, and a restarted pipeline adds files beside the last run's.
"""
import datetime
import json
import posixpath
import time
import uuid
import zlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.utils.windowed_value import WindowedValue

from transforms.records import FailedMessage

FAILED = "failed"
JSON_TEXT = {b"encoding": b"json"}  # field metadata: the column holds JSON text
ADDITIONAL = "_additional"  # in an open object: the properties its schema does not name
MAX_SCHEMA_DEPTH = 16
UTC = datetime.timezone.utc
MAX_TIME = datetime.datetime.max.replace(tzinfo=UTC)
_GLOBAL_WINDOWS = (window.GlobalWindow(),)

METADATA_FIELDS = [
    pa.field("_record_time", pa.timestamp("us", tz="UTC")),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_publish_time", pa.timestamp("us", tz="UTC")),
    pa.field("_message_id", pa.string()),
]


class WriteToLake(beam.PTransform):
    """Returns outputs `files` (paths written) and `failed` (FailedMessages)."""

    def __init__(self, lake_path, catalog, window_seconds, shards=1):
        super().__init__()
        self.lake_path = lake_path
        self.schemas = {d: arrow_schema(catalog, d) for d in catalog.datasets}
        self.window_seconds = window_seconds
        self.shards = shards

    def expand(self, records):
        rows = records | "ToLakeRows" >> beam.ParDo(
            _ToLakeRowFn(self.schemas, self.shards)).with_outputs(FAILED, main="rows")
        files = rows.rows | "WriteParquetFiles" >> WriteParquetPartitions(
            self.lake_path, self.schemas, self.window_seconds)
        return {"files": files, FAILED: rows[FAILED]}


class WriteParquetPartitions(beam.PTransform):
    """((dataset, shard), rows) stamped with ingestion time -> a Parquet file per window,
    dataset and shard; rows: a row (dict), or a table of rows as Arrow IPC bytes
    (arrow_ipc_bytes) or as a pyarrow Table. Returns the paths written."""

    def __init__(self, lake_path, schemas, window_seconds):
        super().__init__()
        self.lake_path = lake_path.rstrip("/")
        self.schemas = schemas  # dataset -> pyarrow schema
        self.window_seconds = window_seconds

    def expand(self, keyed_rows):
        return (
            keyed_rows
            | "WindowByIngestionTime" >> beam.WindowInto(
                window.FixedWindows(self.window_seconds),
                trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=self.window_seconds)
            | "GroupIntoFiles" >> beam.GroupByKey()
            | "WriteFiles" >> beam.ParDo(_WriteParquetFn(self.lake_path, self.schemas)))


def arrow_schema(catalog, dataset_id):
    """The dataset's Arrow schema, derived from its JSON Schema, metadata columns last."""
    try:
        return arrow_schema_of(catalog.registry, catalog.datasets[dataset_id].schema_id)
    except ValueError as error:
        raise ValueError(f"dataset {dataset_id!r}: {error}") from error


def arrow_schema_of(registry, schema_id):
    root = _arrow_type(registry.schemas[schema_id], registry.resolver(schema_id), 0)
    if root is None:  # a schema that names no properties: the whole record as JSON text
        root = pa.struct([pa.field(ADDITIONAL, pa.string(), metadata=JSON_TEXT)])
    if not pa.types.is_struct(root):
        raise ValueError(f"schema {schema_id}: a record must be an object, not {root}")
    return pa.schema(list(root) + METADATA_FIELDS)


def _arrow_type(node, resolver, depth):
    node, resolver = _resolve(node, resolver)
    if depth > MAX_SCHEMA_DEPTH or not isinstance(node, dict):
        return None
    json_type = node.get("type")
    if isinstance(json_type, list):
        non_null = [t for t in json_type if t != "null"]
        json_type = non_null[0] if len(non_null) == 1 else None
    properties, is_open = _object_properties(node, resolver)
    if json_type is None and properties:
        json_type = "object"
    if json_type == "string":
        return {"date-time": pa.timestamp("us", tz="UTC"), "date": pa.date32()}.get(
            node.get("format"), pa.string())
    if json_type == "integer":
        return pa.int64()
    if json_type == "number":
        return pa.float64()
    if json_type == "boolean":
        return pa.bool_()
    if json_type == "array" and isinstance(node.get("items"), dict):
        return pa.list_(_field("item", node["items"], resolver, depth))
    if json_type == "object" and properties:
        fields = [_field(name, sub, sub_resolver, depth)
                  for name, (sub, sub_resolver) in properties.items()]
        if is_open:  # what the schema does not name is kept, as JSON text
            fields.append(pa.field(ADDITIONAL, pa.string(), metadata=JSON_TEXT))
        return pa.struct(fields)
    if json_type == "object" and isinstance(node.get("additionalProperties"), dict):
        return pa.map_(pa.string(), _field("value", node["additionalProperties"], resolver, depth))
    return None  # open: kept as JSON text


def _object_properties(node, resolver):
    """An object schema's properties, its own and its allOf parts', and whether it lets
    other properties in (JSON Schema's default)."""
    properties, is_open = {}, node.get("additionalProperties", True) is not False
    for name, sub in node.get("properties", {}).items():
        properties[name] = (sub, resolver)
    for part in node.get("allOf", []):
        part, part_resolver = _resolve(part, resolver)
        if isinstance(part, dict):
            part_properties, part_open = _object_properties(part, part_resolver)
            for name, value in part_properties.items():
                properties.setdefault(name, value)
            is_open = is_open and part_open
    return properties, is_open or "patternProperties" in node


def _field(name, node, resolver, depth):
    arrow_type = _arrow_type(node, resolver, depth + 1)
    if arrow_type is None:
        return pa.field(name, pa.string(), metadata=JSON_TEXT)
    return pa.field(name, arrow_type)


def _resolve(node, resolver):
    while isinstance(node, dict) and "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    return node, resolver


def to_arrow_row(entity, schema):
    """A record as a dict of Python values that pyarrow converts to the schema's types
    (properties the record lacks are left out: pyarrow makes them null)."""
    return row_converter(schema)(entity)


def row_converter(schema):
    """The schema's record -> row function: make it once and use it for many records;
    per value it only converts, without asking pyarrow what each field is."""
    return _struct_converter(list(schema))


def _struct_converter(fields):
    """Converts the properties a value has (pyarrow makes the missing ones null)."""
    converters = {f.name: _converter(f) for f in fields if f.name != ADDITIONAL}
    keeps_additional = any(f.name == ADDITIONAL for f in fields)

    def convert(value):
        row, additional = {}, {}
        for name, field_value in value.items():
            if name in converters:
                convert_field = converters[name]
                row[name] = (field_value if field_value is None or convert_field is None
                             else convert_field(field_value))
            elif keeps_additional and name != ADDITIONAL:
                additional[name] = field_value
        if keeps_additional:
            row[ADDITIONAL] = _json_text(additional) if additional else None
        return row
    return convert


def _converter(field):
    """A function of a non-null value of the field, or None when the value is kept as is."""
    arrow_type = field.type
    if field.metadata == JSON_TEXT:
        return _json_text
    if pa.types.is_timestamp(arrow_type):
        return _timestamp
    if pa.types.is_date32(arrow_type):
        return datetime.date.fromisoformat
    if pa.types.is_float64(arrow_type):
        return float
    if pa.types.is_int64(arrow_type):
        return _integer
    if pa.types.is_struct(arrow_type):
        return _struct_converter(list(arrow_type))
    if pa.types.is_map(arrow_type):
        item = _converter(arrow_type.item_field) or _same
        return lambda value: [(k, None if v is None else item(v)) for k, v in value.items()]
    if pa.types.is_list(arrow_type):
        item = _converter(arrow_type.value_field) or _same
        return lambda value: [None if v is None else item(v) for v in value]
    return None


def _json_text(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _timestamp(value):
    parsed = datetime.datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _integer(value):
    return int(value) if isinstance(value, float) else value  # JSON Schema's integer takes 5.0


def _same(value):
    return value


class _ToLakeRowFn(beam.DoFn):
    """Records -> ((dataset, shard), Arrow table of rows), stamped with the time the lake
    took them in.

    Rows travel in Arrow tables of up to BATCH rows (a bundle's rows of a dataset and
    shard), not one by one: the per-element cost of the shuffle and the windowing is paid
    per batch. A table travels as Arrow IPC bytes: Beam's fallback coder would pickle it,
    at about ten times the cost (3 µs a row, measured, against 0.25). A row that pyarrow
    cannot convert goes to the dead letter alone: only a batch that fails to convert is
    tried row by row.
    """
    BATCH = 500

    def __init__(self, schemas, shards):
        self.schemas = schemas
        self.shards = shards

    def setup(self):
        self.converters = {}  # dataset -> row_converter

    def start_bundle(self):
        self.pending = {}  # (dataset, shard) -> [(record, row)]
        self.pending_count = 0
        self.first_ingested_at = None

    def process(self, record):
        ingested_at = time.time()
        try:
            if record.dataset not in self.converters:
                self.converters[record.dataset] = row_converter(self.schemas[record.dataset])
            row = self.converters[record.dataset](record.entity)
            row.update(_record_time=record.record_time, _publish_time=record.publish_time,
                       _message_id=record.message_id,
                       _ingested_at=datetime.datetime.fromtimestamp(ingested_at, UTC))
        except Exception as error:
            yield beam.pvalue.TaggedOutput(FAILED, _lake_write_failure(record, error))
            return
        # By _id, so that copies of a record meet in one file, where they are written once.
        shard_by = str(record.entity.get("_id", record.message_id))
        shard = zlib.crc32(shard_by.encode("utf-8")) % self.shards
        self.pending.setdefault((record.dataset, shard), []).append((record, row))
        self.pending_count += 1
        if self.first_ingested_at is None:
            self.first_ingested_at = ingested_at
        if self.pending_count >= self.BATCH:
            yield from self._batches()

    def finish_bundle(self):
        yield from self._batches()

    def _batches(self):
        # A batch belongs to the window of its first row's ingestion time (rows of one
        # batch were taken in within the same bundle, milliseconds apart). Its window here
        # is the global one: WriteParquetPartitions windows by the time stamped, and the
        # dead letter does too. (Asking Beam for each record's window costs µs a record.)
        stamp = self.first_ingested_at
        for (dataset, shard), entries in self.pending.items():
            schema = self.schemas[dataset]
            rows = [row for _, row in entries]
            try:
                table = pa.Table.from_pylist(rows, schema=schema)
            except Exception:
                rows = []
                for record, row in entries:
                    try:
                        pa.Table.from_pylist([row], schema=schema)
                        rows.append(row)
                    except Exception as error:
                        yield beam.pvalue.TaggedOutput(FAILED, WindowedValue(
                            _lake_write_failure(record, error), stamp, _GLOBAL_WINDOWS))
                table = pa.Table.from_pylist(rows, schema=schema)
            if table.num_rows:
                yield WindowedValue(((dataset, shard), arrow_ipc_bytes(table)), stamp,
                                    _GLOBAL_WINDOWS)
        self.pending = {}
        self.pending_count = 0
        self.first_ingested_at = None


def _lake_write_failure(record, error):
    return FailedMessage(
        payload=record.payload, attributes=record.attributes, error_class="lake_write",
        error_message=f"cannot write the record as Parquet: {error!r}"[:1000],
        error_pointer="", step="write_to_lake", dataset=record.dataset,
        message_id=record.message_id, publish_time=record.publish_time)


class _WriteParquetFn(beam.DoFn):
    def __init__(self, lake_path, schemas):
        self.lake_path = lake_path
        self.schemas = schemas
        # Made when the pipeline is built, so the same in every retry of a bundle but new
        # in every run: a restarted pipeline must not overwrite the files of the run before
        # it that fell in the same window.
        self.run_id = uuid.uuid4().hex[:8]

    def process(self, element, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        (dataset, shard), values = element  # rows (dicts), Arrow tables of rows as IPC bytes
        schema = self.schemas[dataset]
        tables, rows = [], []
        for value in values:
            if isinstance(value, dict):
                rows.append(value)
                continue
            if isinstance(value, bytes):
                value = pa.ipc.open_stream(value).read_all()
            if value.schema.equals(schema):
                tables.append(value)
            else:  # made before the dataset's schema changed (a Dataflow --update)
                rows.extend(value.to_pylist())
        if rows:
            tables.append(pa.Table.from_pylist(rows, schema=schema))
        table = once_per_id(pa.concat_tables(tables))
        path = partition_file_path(self.lake_path, dataset, window, shard, pane.index,
                                   self.run_id)
        write_atomically(path, table)
        Metrics.counter("lake_rows", dataset).inc(table.num_rows)
        yield path


def arrow_ipc_bytes(table):
    """The table as an Arrow IPC stream: what WriteParquetPartitions takes as bytes."""
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


def partition_file_path(lake_path, dataset, window, shard, pane_index, run_id):
    start = window.start.to_utc_datetime(has_tz=True)
    end = window.end.to_utc_datetime(has_tz=True)
    return posixpath.join(
        lake_path, dataset, f"date={start:%Y-%m-%d}", f"hour={start:%H}",
        f"part-{start:%Y%m%dT%H%M%S}-{end:%H%M%S}-{shard:03d}-{pane_index}-{run_id}.parquet")


def write_atomically(path, table):
    folder, name = posixpath.split(path)
    temporary = posixpath.join(folder, f".{name}.{uuid.uuid4().hex}.inprogress")
    with FileSystems.create(temporary) as handle:
        pq.write_table(table, handle)
    FileSystems.rename([temporary], [path])
