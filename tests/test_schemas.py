"""The schema registry on small schema sets of mixed drafts."""
import json

import pytest

from domain.schemas import SchemaRegistry, SchemaRegistryError


def write(folder, name, schema):
    (folder / name).write_text(json.dumps(schema))


def test_each_schema_keeps_its_own_draft_and_refs_resolve_across_drafts(tmp_path):
    write(tmp_path, "address.json", {
        "$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://x/address",
        "type": "object", "properties": {"zip": {"type": "string"}},
        "dependencies": {"zip": ["city"]}})  # a draft-07 keyword (2020-12 ignores it)
    write(tmp_path, "person.json", {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://x/person",
        "type": "object", "properties": {"home": {"$ref": "https://x/address"}},
        "dependentRequired": {"name": ["email"]}})
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
