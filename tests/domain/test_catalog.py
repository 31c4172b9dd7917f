"""domain/catalog.py: the dataset catalog, its schemas, and every way a catalog is refused."""

import pytest

from domain.catalog import DEFAULT_RETENTION_DAYS, Catalog, CatalogError, Dataset
from domain.schema_drafts import ValidationLimits
from helpers.examples import EXAMPLE_CATALOG

SCHEMA = '{"$id": "https://x/s", "type": "object"}'


def catalog_file(folder, text, schema=SCHEMA):
    (folder / "schemas").mkdir(exist_ok=True)
    (folder / "schemas" / "s.json").write_text(schema)
    (folder / "catalog.yaml").write_text(text)
    return str(folder / "catalog.yaml")


def test_the_example_catalog_names_its_datasets_kinds_and_schemas(catalog):
    assert catalog.datasets == {
        "crm-profiles": Dataset(
            "crm-profiles",
            "https://ns.example.com/xdm/individual-profile",
            "profile",
            True,
            trusted=True,
        ),
        "web-events": Dataset(
            "web-events", "https://ns.example.com/xdm/experience-event", "event", True, trusted=True
        ),
        "web-events-archive": Dataset(
            "web-events-archive", "https://ns.example.com/xdm/experience-event", "event", False
        ),
    }
    assert catalog.dataset_precedence == ()
    assert catalog.link_trust.person_namespaces == {"Email", "CRMID"}
    assert catalog.link_trust.proof_secret_env == "INGEST_IDENTITY_PROOF_SECRET"
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


def datasets_catalog(folder, ids, extra=""):
    entries = "".join(f"  {i}: {{schema: https://x/s, kind: event}}\n" for i in ids)
    return catalog_file(folder, f"schemas: schemas\ndatasets:\n{entries}{extra}")


@pytest.mark.parametrize(
    "dataset_id",
    ["crm-profiles", "5e7a1f0c2d3b4a0018c5e9f1", "'{DATASET_ID}'", "web.events_2", "A" * 100],
)
def test_dataset_ids_of_adobe_and_of_the_examples_are_accepted(tmp_path, dataset_id):
    catalog = Catalog.load(datasets_catalog(tmp_path, [dataset_id]))
    assert list(catalog.datasets) == [dataset_id.strip("'")]


@pytest.mark.parametrize(
    "dataset_id, message",
    [
        ("../escape", "dataset id '../escape' is not 1 to 100 letters"),
        ("a/b", "dataset id 'a/b' is not"),
        ("'a\\\\b'", "dataset id 'a\\\\\\\\b' is not"),
        ("'.'", "dataset id '.' is not"),
        ("'..'", "dataset id '..' is not"),
        (".hidden", "dataset id '.hidden' is not"),
        ("_errors", "dataset id '_errors' starts with '_', which is reserved"),
        ("_mine", "dataset id '_mine' starts with '_'"),
        ("''", "dataset id '' is not"),
        ("'a b'", "dataset id 'a b' is not"),
        ("date=2026", "dataset id 'date=2026' is not"),
        ("-x", "dataset id '-x' is not"),
        ("A" * 101, "is not 1 to 100"),
        ("'caf\u00e9'", "is not 1 to 100"),
        ("123456789012345678901234", "dataset id 123456789012345678901234 is a int, not a string"),
    ],
)
def test_a_dataset_id_that_could_leave_its_lake_folder_is_refused(tmp_path, dataset_id, message):
    path = datasets_catalog(tmp_path, [dataset_id])
    with pytest.raises(CatalogError) as caught:
        Catalog.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_every_problem_of_a_catalog_is_reported_at_once(tmp_path):
    path = catalog_file(
        tmp_path,
        "schemas: schemas\n"
        "datasets:\n"
        "  ../escape: {schema: https://x/s, kind: event}\n"
        "  _errors: {schema: https://x/s, kind: event}\n"
        "  d: {schema: https://x/missing, kind: table, retention_days: 100000}\n"
        "  e: {schema: https://x/s, kind: event, identities: [{pointer: /a, namespace: ''}]}\n"
        "  Web: {schema: https://x/s, kind: event}\n"
        "  web: {schema: https://x/s, kind: event}\n"
        "merge_policy: {dataset_precedence: [nobody]}\n"
        'identity: {max_identities: 1, priority: ["bad\\x1bnamespace"]}\n'
        "limits: {max_object_properties: 0, max_depth: 3}\n",
    )
    with pytest.raises(CatalogError) as caught:
        Catalog.load(path)
    text = str(caught.value)
    expected = [
        "dataset id '../escape' is not",
        "dataset id '_errors' starts with '_'",
        "dataset 'd' has kind 'table'",
        "dataset 'd': 'retention_days' must be a whole number of days, from 1 to 36,500",
        "dataset 'e': an identity is {pointer: /json/pointer",
        "dataset ids ['Web', 'web'] differ only in case",
        "merge_policy names unknown datasets ['nobody']",
        "identity.max_identities must be a whole number from 2 to 1000",
        "identity.priority: namespace 'bad\\x1bnamespace' holds control characters",
        "limits.max_object_properties must be a whole number from 1 to 1,000,000",
        "limits: unknown keys ['max_depth']",
    ]
    assert text.startswith(f"{path}: {len(expected)} problems:\n  ")
    for message in expected:
        assert message in text
    # A dataset whose entry is wrong is not checked further (its schema is unknown too).
    assert "https://x/missing" not in text


def test_a_schema_problem_and_a_dataset_problem_are_reported_together(tmp_path):
    path = catalog_file(
        tmp_path, "schemas: schemas\ndatasets:\n  _d: {schema: https://x/s, kind: event}\n", "{"
    )
    with pytest.raises(CatalogError, match="2 problems") as caught:
        Catalog.load(path)
    assert "is not valid JSON" in str(caught.value) and "'_d' starts with '_'" in str(caught.value)


def test_the_limits_of_a_catalog_reach_both_validators(tmp_path):
    path = catalog_file(
        tmp_path,
        "schemas: schemas\ndatasets:\n  d: {schema: https://x/s, kind: event}\n"
        "limits: {max_array_items: 3, max_object_properties: 2}\n",
    )
    catalog = Catalog.load(path)
    assert catalog.registry.limits == ValidationLimits(3, 2)
    fast, reference = catalog.registry.fast_validator("https://x/s"), catalog.validator("d")
    for instance, valid in [
        ({"a": [1, 2, 3]}, True),
        ({"a": [1, 2, 3, 4]}, False),
        ({"a": {"b": 1, "c": 2}}, True),
        ({"a": {"b": 1, "c": 2, "d": 3}}, False),
        ({"a": 1, "b": 2, "c": 3}, False),
    ]:
        assert fast.is_valid(instance) is valid and reference.is_valid(instance) is valid
    assert Catalog.load(str(EXAMPLE_CATALOG)).registry.limits == ValidationLimits(10_000, 1_000)
