"""The dataset catalog and the schema registry it points to.

A catalog file (YAML or JSON) names the folders of JSON Schemas and, for each dataset,
its schema id, its kind (`profile` or `event`) and whether it feeds the profile store:

    schemas: schemas                  # relative to the catalog file; a list is allowed
    datasets:
      crm-profiles: {schema: https://ns.example.com/xdm/individual-profile,
                     kind: profile, profile: true}

Paths go through Beam's file systems, so a catalog on `gs://` works as a local one does.
The schemas form a SchemaRegistry (domain/schemas.py).
"""

import dataclasses
import json

import yaml
from apache_beam.io.filesystems import FileSystems

from domain.schemas import SchemaRegistry, SchemaRegistryError, relative_to

KINDS = ("profile", "event")
DEFAULT_RETENTION_DAYS = 90


class CatalogError(ValueError):
    """The catalog or its schemas cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    id: str
    schema_id: str
    kind: str
    feeds_profile: bool
    retention_days: int = DEFAULT_RETENTION_DAYS  # events kept on the profile this long


@dataclasses.dataclass(frozen=True)
class Catalog:
    datasets: dict  # dataset id -> Dataset
    registry: SchemaRegistry
    dataset_precedence: tuple = ()  # merge policy: empty for timestamp order

    @classmethod
    def load(cls, path):
        spec = _read_document(path)
        if not isinstance(spec, dict) or not isinstance(spec.get("datasets"), dict):
            raise CatalogError(f"{path}: a catalog needs a 'datasets' mapping")
        folders = spec.get("schemas", [])
        if isinstance(folders, str):
            folders = [folders]
        try:
            registry = SchemaRegistry.load([relative_to(path, folder) for folder in folders])
        except SchemaRegistryError as error:
            raise CatalogError(f"{path}: {error}") from error
        datasets = {
            dataset_id: _parse_dataset(path, dataset_id, entry)
            for dataset_id, entry in spec["datasets"].items()
        }
        for dataset in datasets.values():
            if dataset.schema_id not in registry.schemas:
                raise CatalogError(
                    f"{path}: dataset {dataset.id!r} names schema {dataset.schema_id!r}, "
                    f"which is not among the {len(registry.schemas)} schemas loaded from "
                    f"{folders}"
                )
        return cls(
            datasets=datasets,
            registry=registry,
            dataset_precedence=_parse_merge_policy(path, spec, datasets),
        )

    def schema(self, dataset_id):
        return self.registry.schemas[self.datasets[dataset_id].schema_id]

    def validator(self, dataset_id):
        """A jsonschema validator for the dataset's schema, with format checks on."""
        return self.registry.validator(self.datasets[dataset_id].schema_id)


def _parse_merge_policy(path, spec, datasets):
    """`merge_policy: timestamp` (the default) or `merge_policy: {dataset_precedence: [...]}`."""
    policy = spec.get("merge_policy", "timestamp")
    if policy == "timestamp":
        return ()
    order = policy.get("dataset_precedence") if isinstance(policy, dict) else None
    if not isinstance(order, list) or not order:
        raise CatalogError(
            f"{path}: merge_policy is 'timestamp' or {{dataset_precedence: [dataset, ...]}}"
        )
    unknown = [d for d in order if d not in datasets]
    if unknown:
        raise CatalogError(f"{path}: merge_policy names unknown datasets {unknown}")
    return tuple(order)


def _parse_dataset(path, dataset_id, entry):
    if not isinstance(entry, dict) or "schema" not in entry:
        raise CatalogError(f"{path}: dataset {dataset_id!r} needs a 'schema'")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise CatalogError(
            f"{path}: dataset {dataset_id!r} has kind {kind!r}; expected one of {KINDS}"
        )
    feeds_profile = entry.get("profile", False)
    if not isinstance(feeds_profile, bool):
        raise CatalogError(f"{path}: dataset {dataset_id!r}: 'profile' must be true or false")
    retention_days = entry.get("retention_days", DEFAULT_RETENTION_DAYS)
    if (
        not isinstance(retention_days, int)
        or isinstance(retention_days, bool)
        or retention_days < 1
    ):
        raise CatalogError(
            f"{path}: dataset {dataset_id!r}: 'retention_days' must be a "
            "whole number of days, at least 1"
        )
    return Dataset(dataset_id, entry["schema"], kind, feeds_profile, retention_days)


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
            f"{path} is not valid {'YAML' if is_yaml else 'JSON'}: {error}"
        ) from error
