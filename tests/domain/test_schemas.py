"""domain/schemas.py: the schema registry on small schema sets of mixed drafts, then
against a real third-party schema set, Adobe's XDM corpus (helpers/xdm_corpus.py)."""

import copy
import json

import pytest

from domain.schemas import SchemaRegistry, SchemaRegistryError
from helpers.xdm_corpus import DANGLING, MISSING, examples_with_their_schema

JSON_TYPES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}
WRONG_TYPE_CANDIDATES = ["not-the-declared-type", 12345, True, ["x"], {"x": 1}]


def write(folder, name, schema):
    (folder / name).write_text(json.dumps(schema))


def test_each_schema_keeps_its_own_draft_and_refs_resolve_across_drafts(tmp_path):
    write(
        tmp_path,
        "address.json",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://x/address",
            "type": "object",
            "properties": {"zip": {"type": "string"}},
            "dependencies": {"zip": ["city"]},
        },
    )  # a draft-07 keyword (2020-12 ignores it)
    write(
        tmp_path,
        "person.json",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://x/person",
            "type": "object",
            "properties": {"home": {"$ref": "https://x/address"}},
            "dependentRequired": {"name": ["email"]},
        },
    )
    registry = SchemaRegistry.load([str(tmp_path)])
    person = registry.validator("https://x/person")
    assert person.is_valid({"home": {"zip": "1", "city": "c"}})
    assert not person.is_valid({"home": {"zip": "1"}})  # draft-07 `dependencies` applied
    assert not person.is_valid({"name": "n"})  # 2020-12 `dependentRequired` applied


def test_unknown_draft_and_dangling_ref_are_both_reported_at_load(tmp_path):
    write(tmp_path, "a.json", {"$schema": "https://example.com/my-draft", "$id": "https://x/a"})
    write(tmp_path, "b.json", {"$id": "https://x/b", "items": {"$ref": "https://x/c#/defs/y"}})
    with pytest.raises(SchemaRegistryError) as caught:
        SchemaRegistry.load([str(tmp_path)])
    assert "https://x/a: unknown $schema" in str(caught.value)
    assert "https://x/b: $ref 'https://x/c#/defs/y' is not in the schema set" in str(caught.value)


def test_duplicate_id_is_refused(tmp_path):
    write(tmp_path, "a.json", {"$id": "https://x/a"})
    write(tmp_path, "b.json", {"$id": "https://x/a"})
    with pytest.raises(SchemaRegistryError, match="already used by"):
        SchemaRegistry.load([str(tmp_path)])


# ---------------------------------------------------------------------------
# the XDM corpus: 500 draft-06 schemas that reference each other by `$id`


def test_a_ref_outside_the_set_is_an_error_naming_schema_and_reference(corpus):
    with pytest.raises(SchemaRegistryError) as caught:
        SchemaRegistry.load([f"{corpus}/**.schema.json"])
    message = str(caught.value)
    assert "1 problem(s)" in message
    assert DANGLING in message and MISSING in message


def test_whole_corpus_loads_and_every_example_validates(corpus, xdm_registry):
    assert len(xdm_registry.schemas) == 499  # 500 but the dangling one
    pairs = examples_with_their_schema(corpus, xdm_registry)
    assert len(pairs) >= 590
    invalid = {}
    for example, schema_id in pairs:
        instance = json.loads(example.read_text())
        errors = list(xdm_registry.validator(schema_id).iter_errors(instance))
        if errors:
            invalid[example.name] = [e.message for e in errors[:2]]
    assert invalid == {}


def test_every_example_broken_by_a_wrong_type_or_a_missing_required_field_is_rejected(
    corpus, xdm_registry
):
    mutated_examples, accepted = 0, []
    for example, schema_id in examples_with_their_schema(corpus, xdm_registry):
        instance = json.loads(example.read_text())
        if not isinstance(instance, dict):
            continue
        validator = xdm_registry.validator(schema_id)
        properties, required = root_properties(xdm_registry, schema_id)
        mutations = []
        for name in required & instance.keys():
            broken = copy.deepcopy(instance)
            del broken[name]
            mutations.append((f"without {name}", broken))
        for name in properties:  # absent ones too: an example may be {}
            declared = declared_types(xdm_registry, schema_id, properties[name])
            wrong = next((v for v in WRONG_TYPE_CANDIDATES if not accepts(declared, v)), None)
            if declared and wrong is not None:
                mutations.append((f"{name} = {wrong!r}", {**instance, name: wrong}))
        mutated_examples += bool(mutations)
        accepted += [
            (example.name, what) for what, broken in mutations if validator.is_valid(broken)
        ]
    assert accepted == []
    # The other 10 have no typed or required field at their root (adhoc's `{}`, the
    # descriptors' oneOf): nothing there for one wrong type or missing field to break.
    assert mutated_examples >= 580


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
