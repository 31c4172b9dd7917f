"""domain/catalog.py: the dataset catalog, its schemas, and every way a catalog is refused."""

import pytest

from domain.catalog import DEFAULT_RETENTION_DAYS, Catalog, CatalogError, Dataset

SCHEMA = '{"$id": "https://x/s", "type": "object"}'


def catalog_file(folder, text, schema=SCHEMA):
    (folder / "schemas").mkdir(exist_ok=True)
    (folder / "schemas" / "s.json").write_text(schema)
    (folder / "catalog.yaml").write_text(text)
    return str(folder / "catalog.yaml")


def test_the_example_catalog_names_its_datasets_kinds_and_schemas(catalog):
    assert catalog.datasets == {
        "crm-profiles": Dataset(
            "crm-profiles", "https://ns.example.com/xdm/individual-profile", "profile", True
        ),
        "web-events": Dataset(
            "web-events", "https://ns.example.com/xdm/experience-event", "event", True
        ),
        "web-events-archive": Dataset(
            "web-events-archive", "https://ns.example.com/xdm/experience-event", "event", False
        ),
    }
    assert catalog.dataset_precedence == ()
    assert catalog.schema("web-events")["$id"] == "https://ns.example.com/xdm/experience-event"
    assert catalog.validator("crm-profiles").is_valid({"_id": 1}) is False


def test_catalog_naming_a_missing_schema_is_refused(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "s.json").write_text('{"$id": "https://x/s", "type": "object"}')
    (tmp_path / "catalog.yaml").write_text(
        "schemas: schemas\ndatasets:\n  d: {schema: https://x/missing, kind: event}\n"
    )
    with pytest.raises(CatalogError, match="https://x/missing"):
        Catalog.load(str(tmp_path / "catalog.yaml"))


def test_a_json_catalog_with_retention_and_a_precedence_is_read(tmp_path):
    path = tmp_path / "catalog.json"
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "s.json").write_text(SCHEMA)
    path.write_text(
        '{"schemas": ["schemas"], "merge_policy": {"dataset_precedence": ["b"]},'
        ' "datasets": {"a": {"schema": "https://x/s", "kind": "event",'
        ' "profile": true, "retention_days": 7},'
        ' "b": {"schema": "https://x/s", "kind": "profile", "profile": true}}}'
    )
    catalog = Catalog.load(str(path))
    assert catalog.datasets["a"] == Dataset("a", "https://x/s", "event", True, 7)
    assert catalog.datasets["b"].retention_days == DEFAULT_RETENTION_DAYS
    assert catalog.dataset_precedence == ("b",)


@pytest.mark.parametrize(
    "datasets, message",
    [
        ("  d: {kind: event}", "dataset 'd' needs a 'schema'"),
        (
            "  d: {schema: https://x/s, kind: table}",
            "dataset 'd' has kind 'table'; expected one of",
        ),
        (
            "  d: {schema: https://x/s, kind: event, profile: 'yes'}",
            "'profile' must be true or false",
        ),
        ("  d: {schema: https://x/s, kind: event, retention_days: 0}", "'retention_days' must be"),
        (
            "  d: {schema: https://x/s, kind: event, retention_days: true}",
            "'retention_days' must be",
        ),
        (
            "  d: {schema: https://x/s, kind: event, retention_days: 1.5}",
            "'retention_days' must be",
        ),
    ],
)
def test_a_dataset_entry_that_is_wrong_is_refused_with_what_is_wrong(tmp_path, datasets, message):
    path = catalog_file(tmp_path, f"schemas: schemas\ndatasets:\n{datasets}\n")
    with pytest.raises(CatalogError, match=message.replace("(", r"\(")) as caught:
        Catalog.load(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "policy, message",
    [
        ("merge_policy: {dataset_precedence: [nobody]}", "merge_policy names unknown datasets"),
        ("merge_policy: {dataset_precedence: []}", "merge_policy is 'timestamp' or"),
        ("merge_policy: newest", "merge_policy is 'timestamp' or"),
    ],
)
def test_a_merge_policy_that_is_wrong_is_refused(tmp_path, policy, message):
    path = catalog_file(
        tmp_path,
        f"schemas: schemas\ndatasets:\n  d: {{schema: https://x/s, kind: event}}\n{policy}\n",
    )
    with pytest.raises(CatalogError, match=message):
        Catalog.load(path)


def test_a_catalog_that_cannot_be_read_or_parsed_is_refused(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        Catalog.load(str(tmp_path / "none.yaml"))
    with pytest.raises(CatalogError, match="is not valid YAML"):
        Catalog.load(catalog_file(tmp_path, "datasets: [unclosed"))
    with pytest.raises(CatalogError, match="a catalog needs a 'datasets' mapping"):
        Catalog.load(catalog_file(tmp_path, "schemas: schemas\n"))
    with pytest.raises(CatalogError, match="not valid JSON"):
        Catalog.load(catalog_file(tmp_path, "schemas: schemas\ndatasets: {}\n", schema="{"))
