"""The schema registry against a real third-party schema set: Adobe's XDM corpus.

500 draft-06 schemas that reference each other by `$id`, and 597 examples
(`X.example.N.json`, meant to be valid against `X.schema.json` beside it). The corpus
lives in `../shared/xdm` beside the repository (or where $XDM_CORPUS says).
"""
import copy
import json
import os
import pathlib

import pyarrow as pa
import pytest

from domain.lake_schema import ADDITIONAL, arrow_schema_of, to_arrow_row
from domain.schemas import SchemaRegistry, SchemaRegistryError

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = pathlib.Path(os.environ.get("XDM_CORPUS", ROOT.parent / "shared" / "xdm"))
# The one schema whose $ref points outside the corpus (SOURCE.md in the corpus says so).
DANGLING = "https://ns.adobe.com/xdm/destinations/adobe-analytics"
MISSING = "https://ns.adobe.com/experience/analytics-experienceevent"
JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
              list: "array", dict: "object", type(None): "null"}
WRONG_TYPE_CANDIDATES = ["not-the-declared-type", 12345, True, ["x"], {"x": 1}]


@pytest.fixture(scope="module")
def corpus():
    if not CORPUS.is_dir():
        message = f"the XDM corpus is not at {CORPUS}; set XDM_CORPUS to its folder"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CORPUS


@pytest.fixture(scope="module")
def registry(corpus):
    return SchemaRegistry.load([f"{corpus}/**.schema.json"], exclude={DANGLING})


def examples_with_their_schema(corpus, registry):
    pairs = []
    for example in sorted(corpus.rglob("*.example.*.json")):
        schema_file = example.parent / (example.name.split(".example.")[0] + ".schema.json")
        if schema_file.exists():
            schema_id = json.loads(schema_file.read_text())["$id"]
            if schema_id in registry.schemas:
                pairs.append((example, schema_id))
    return pairs


def test_a_ref_outside_the_set_is_an_error_naming_schema_and_reference(corpus):
    with pytest.raises(SchemaRegistryError) as caught:
        SchemaRegistry.load([f"{corpus}/**.schema.json"])
    message = str(caught.value)
    assert "1 problem(s)" in message
    assert DANGLING in message and MISSING in message


def test_whole_corpus_loads_and_every_example_validates(corpus, registry):
    assert len(registry.schemas) == 499  # 500 but the dangling one
    pairs = examples_with_their_schema(corpus, registry)
    assert len(pairs) >= 590
    invalid = {}
    for example, schema_id in pairs:
        errors = list(registry.validator(schema_id).iter_errors(json.loads(example.read_text())))
        if errors:
            invalid[example.name] = [e.message for e in errors[:2]]
    assert invalid == {}


def test_every_example_broken_by_a_wrong_type_or_a_missing_required_field_is_rejected(
        corpus, registry):
    mutated_examples, accepted = 0, []
    for example, schema_id in examples_with_their_schema(corpus, registry):
        instance = json.loads(example.read_text())
        if not isinstance(instance, dict):
            continue
        validator = registry.validator(schema_id)
        properties, required = root_properties(registry, schema_id)
        mutations = []
        for name in required & instance.keys():
            broken = copy.deepcopy(instance)
            del broken[name]
            mutations.append((f"without {name}", broken))
        for name in properties:  # absent ones too: an example may be {}
            declared = declared_types(registry, schema_id, properties[name])
            wrong = next((v for v in WRONG_TYPE_CANDIDATES if not accepts(declared, v)), None)
            if declared and wrong is not None:
                mutations.append((f"{name} = {wrong!r}", {**instance, name: wrong}))
        mutated_examples += bool(mutations)
        accepted += [(example.name, what) for what, broken in mutations
                     if validator.is_valid(broken)]
    assert accepted == []
    # The other 10 have no typed or required field at their root (adhoc's `{}`, the
    # descriptors' oneOf): nothing there for one wrong type or missing field to break.
    assert mutated_examples >= 580


def test_every_example_becomes_a_typed_arrow_row_that_keeps_every_field(corpus, registry):
    failures = {}
    for example, schema_id in examples_with_their_schema(corpus, registry):
        instance = json.loads(example.read_text())
        try:
            schema = arrow_schema_of(registry, schema_id)
            table = pa.Table.from_pylist([to_arrow_row(instance, schema)], schema=schema)
            assert_kept(instance, table.to_pylist()[0], list(schema))
        except Exception as error:
            failures[example.name] = repr(error)[:300]
    assert failures == {}


def assert_kept(original, stored, fields):
    """Every key of the original is in its typed column or in `_additional`, not lost."""
    named = {f.name: f for f in fields}
    additional = json.loads(stored.get(ADDITIONAL) or "{}")
    for key, value in original.items():
        if key not in named:
            assert additional[key] == value, key
        elif value is not None and pa.types.is_struct(named[key].type):
            assert_kept(value, stored[key], list(named[key].type))
        else:
            assert stored[key] is not None or value is None, key


def root_properties(registry, schema_id):
    """The root object's properties and required names, through allOf and $ref."""
    properties, required = {}, set()

    def collect(node, resolver):
        while "$ref" in node:
            resolved = resolver.lookup(node["$ref"])
            node, resolver = resolved.contents, resolved.resolver
        for name, subschema in node.get("properties", {}).items():
            properties.setdefault(name, (subschema, resolver))
        required.update(node.get("required", []))
        for part in node.get("allOf", []):
            collect(part, resolver)

    collect(registry.schemas[schema_id], registry.resolver(schema_id))
    return properties, required


def declared_types(registry, schema_id, property_schema):
    node, resolver = property_schema
    while isinstance(node, dict) and "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    declared = node.get("type") if isinstance(node, dict) else None
    return {declared} if isinstance(declared, str) else set(declared or ())


def accepts(declared, value):
    value_type = JSON_TYPES[type(value)]
    return value_type in declared or (value_type == "integer" and "number" in declared)
