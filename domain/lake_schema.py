"""The lake's typed rows: a dataset's JSON Schema as an Arrow schema, and a record as a
row of it.

Types follow the schema: strings with `format: date-time` become UTC timestamps, `date`
dates, integers int64, numbers float64; objects structs, arrays lists, maps of one value
schema maps. What a schema leaves open (no type, a union, a depth beyond
MAX_SCHEMA_DEPTH) is kept as JSON text, marked in the field's metadata; an open object
keeps the properties its schema does not name in an `_additional` JSON-text column.
"""

import datetime
import json

import pyarrow as pa

from domain.lake_dedup import KEY_COLUMN
from domain.times import UTC

JSON_TEXT = {b"encoding": b"json"}  # field metadata: the column holds JSON text
ADDITIONAL = "_additional"  # in an open object: the properties its schema does not name
MAX_SCHEMA_DEPTH = 16

METADATA_FIELDS = [
    pa.field("_record_time", pa.timestamp("us", tz="UTC")),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_publish_time", pa.timestamp("us", tz="UTC")),
    pa.field("_message_id", pa.string()),
    pa.field(KEY_COLUMN, pa.uint64()),  # domain/lake_dedup.py
]


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
            node.get("format"), pa.string()
        )
    if json_type == "integer":
        return pa.int64()
    if json_type == "number":
        return pa.float64()
    if json_type == "boolean":
        return pa.bool_()
    if json_type == "array" and isinstance(node.get("items"), dict):
        return pa.list_(_field("item", node["items"], resolver, depth))
    if json_type == "object" and properties:
        fields = [
            _field(name, sub, sub_resolver, depth)
            for name, (sub, sub_resolver) in properties.items()
        ]
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
                row[name] = (
                    field_value
                    if field_value is None or convert_field is None
                    else convert_field(field_value)
                )
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
