"""The dataset catalog and the schema registry it points to.

A catalog file (YAML or JSON) names the folders of JSON Schemas and, for each dataset,
its schema id, its kind (`profile` or `event`) and whether it feeds the profile store:

    schemas: schemas                  # relative to the catalog file; a list is allowed
    datasets:
      crm-profiles: {schema: https://ns.example.com/xdm/individual-profile,
                     kind: profile, profile: true}

Paths go through Beam's file systems, so a catalog on `gs://` works as a local one does.
Schemas are found by their `$id` and never fetched from the network.
"""
import dataclasses
import json
import posixpath

import jsonschema
import referencing
import referencing.jsonschema
import yaml
from apache_beam.io.filesystems import FileSystems

KINDS = ("profile", "event")


class CatalogError(ValueError):
    """The catalog or its schemas cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    id: str
    schema_id: str
    kind: str
    feeds_profile: bool


@dataclasses.dataclass(frozen=True)
class Catalog:
    datasets: dict  # dataset id -> Dataset
    schemas: dict  # schema $id -> schema contents

    @classmethod
    def load(cls, path):
        spec = _read_document(path)
        if not isinstance(spec, dict) or not isinstance(spec.get("datasets"), dict):
            raise CatalogError(f"{path}: a catalog needs a 'datasets' mapping")
        folders = spec.get("schemas", [])
        if isinstance(folders, str):
            folders = [folders]
        schemas = {}
        for folder in folders:
            schemas.update(load_schema_folder(_relative_to(path, folder)))
        datasets = {
            dataset_id: _parse_dataset(path, dataset_id, entry)
            for dataset_id, entry in spec["datasets"].items()
        }
        catalog = cls(datasets=datasets, schemas=schemas)
        for dataset in datasets.values():
            if dataset.schema_id not in schemas:
                raise CatalogError(
                    f"{path}: dataset {dataset.id!r} names schema {dataset.schema_id!r}, "
                    f"which is not among the {len(schemas)} schemas loaded from {folders}")
            catalog.validator(dataset.id)  # reports a broken schema or $ref now
        return catalog

    def registry(self):
        return referencing.Registry().with_resources(
            (schema_id, referencing.jsonschema.specification_with(
                schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
                default=referencing.jsonschema.DRAFT202012,
            ).create_resource(schema))
            for schema_id, schema in self.schemas.items())

    def validator(self, dataset_id, registry=None):
        """A jsonschema validator for the dataset's schema, with format checks on."""
        schema = self.schemas[self.datasets[dataset_id].schema_id]
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as error:
            raise CatalogError(
                f"schema {schema.get('$id')!r} is not a valid JSON Schema: {error.message}")
        return validator_class(
            schema,
            registry=registry or self.registry(),
            format_checker=validator_class.FORMAT_CHECKER,
        )


def load_schema_folder(folder):
    """Every `*.json` schema below `folder`, keyed by its `$id`."""
    pattern = folder.rstrip("/") + "/**.json"
    schemas = {}
    for match in FileSystems.match([pattern])[0].metadata_list:
        schema = _read_document(match.path)
        schema_id = schema.get("$id") if isinstance(schema, dict) else None
        if not schema_id:
            raise CatalogError(f"{match.path}: a schema needs an '$id'")
        if schema_id in schemas:
            raise CatalogError(f"{match.path}: '$id' {schema_id!r} is used twice")
        schemas[schema_id] = schema
    if not schemas:
        raise CatalogError(f"no JSON Schemas (*.json) found under {folder}")
    return schemas


def _parse_dataset(path, dataset_id, entry):
    if not isinstance(entry, dict) or "schema" not in entry:
        raise CatalogError(f"{path}: dataset {dataset_id!r} needs a 'schema'")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise CatalogError(
            f"{path}: dataset {dataset_id!r} has kind {kind!r}; expected one of {KINDS}")
    feeds_profile = entry.get("profile", False)
    if not isinstance(feeds_profile, bool):
        raise CatalogError(f"{path}: dataset {dataset_id!r}: 'profile' must be true or false")
    return Dataset(dataset_id, entry["schema"], kind, feeds_profile)


def _read_document(path):
    try:
        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
    except Exception as error:  # FileSystems raises several kinds for a missing file
        raise CatalogError(f"cannot read {path}: {error}") from error
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        return yaml.safe_load(text) if is_yaml else json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        raise CatalogError(
            f"{path} is not valid {'YAML' if is_yaml else 'JSON'}: {error}") from error


def _relative_to(catalog_path, folder):
    if "://" in folder or folder.startswith("/"):
        return folder
    return posixpath.join(posixpath.dirname(catalog_path) or ".", folder)
