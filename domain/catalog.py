"""The dataset catalog and the schema registry it points to.

A catalog file (YAML or JSON) names the folders of JSON Schemas and, for each dataset,
its schema id, its kind (`profile` or `event`) and whether it feeds the profile store:

    schemas: schemas                  # relative to the catalog file; a list is allowed
    datasets:
      crm-profiles: {schema: https://ns.example.com/xdm/individual-profile,
                     kind: profile, profile: true,
                     identities: [{pointer: /workEmail/address, namespace: Email,
                                   primary: true}],   # optional identity fields
                     schema_ref: "https://ns.adobe.com/acme/schemas/1a2b"}  # optional: the
                                      # header.schemaRef.id senders give, if not `schema`
    identity:                         # optional: the identity graph's rules
      priority: [CRMID, Email, ECID]  # most trusted first
      unique: [CRMID, Email]          # a graph holds at most one of each
      blocked: ["test@example\\.com"] # values never linked (regexes), beside the built-in ones
      max_identities: 50

Paths go through Beam's file systems, so a catalog on `gs://` works as a local one does.
The schemas form a SchemaRegistry (domain/schemas.py).
"""

import dataclasses
import json
import re

import yaml
from apache_beam.io.filesystems import FileSystems

from domain.identity import IdentityField
from domain.identity_graph import DEFAULT_MAX_IDENTITIES, IdentityRules
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
    identity_fields: tuple = ()  # IdentityFields: identities beside the identityMap
    schema_ref: str = ""  # what senders give as header.schemaRef.id, where not schema_id

    def accepts_schema_ref(self, schema_ref):
        return schema_ref == self.schema_id or (
            bool(self.schema_ref) and schema_ref == self.schema_ref
        )


@dataclasses.dataclass(frozen=True)
class Catalog:
    datasets: dict  # dataset id -> Dataset
    registry: SchemaRegistry
    dataset_precedence: tuple = ()  # merge policy: empty for timestamp order
    identity_rules: IdentityRules = IdentityRules()
    blocked_identities: tuple = ()  # compiled patterns of identity values never linked

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
        rules, blocked = _parse_identity_rules(path, spec.get("identity", {}))
        return cls(
            datasets=datasets,
            registry=registry,
            dataset_precedence=_parse_merge_policy(path, spec, datasets),
            identity_rules=rules,
            blocked_identities=blocked,
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


def _parse_identity_rules(path, spec):
    """`identity: {priority: [...], unique: [...], blocked: [regex, ...], max_identities}`."""
    if not isinstance(spec, dict):
        raise CatalogError(f"{path}: identity must be a mapping, not {spec!r}")
    unknown = sorted(set(spec) - {"priority", "unique", "blocked", "max_identities"})
    if unknown:
        raise CatalogError(
            f"{path}: identity: unknown keys {unknown}; it takes priority, unique, blocked "
            "and max_identities"
        )
    lists = {}
    for name in ("priority", "unique", "blocked"):
        value = spec.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise CatalogError(f"{path}: identity.{name} must be a list of strings")
        lists[name] = value
    try:
        blocked = tuple(re.compile(pattern) for pattern in lists["blocked"])
    except re.error as error:
        raise CatalogError(
            f"{path}: identity.blocked: {error.pattern!r} is not a regular expression: {error}"
        ) from error
    cap = spec.get("max_identities", DEFAULT_MAX_IDENTITIES)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 2 <= cap <= 1000:
        raise CatalogError(f"{path}: identity.max_identities must be a whole number from 2 to 1000")
    return IdentityRules(tuple(lists["priority"]), frozenset(lists["unique"]), cap), blocked


def _parse_identity_fields(path, dataset_id, entries):
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: dataset {dataset_id!r}: 'identities' must be a list")
    fields = []
    for entry in entries:
        pointer = entry.get("pointer") if isinstance(entry, dict) else None
        namespace = entry.get("namespace") if isinstance(entry, dict) else None
        primary = entry.get("primary", False) if isinstance(entry, dict) else None
        if not (
            isinstance(pointer, str)
            and pointer.startswith("/")
            and isinstance(namespace, str)
            and namespace
            and isinstance(primary, bool)
        ):
            raise CatalogError(
                f"{path}: dataset {dataset_id!r}: an identity is {{pointer: /json/pointer, "
                f"namespace: Name, primary: true|false}}, not {entry!r}"
            )
        fields.append(IdentityField(pointer, namespace, primary))
    if sum(f.primary for f in fields) > 1:
        raise CatalogError(f"{path}: dataset {dataset_id!r}: at most one identity field is primary")
    return tuple(fields)


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
    fields = _parse_identity_fields(path, dataset_id, entry.get("identities", []))
    schema_ref = entry.get("schema_ref", "")
    if not isinstance(schema_ref, str):
        raise CatalogError(f"{path}: dataset {dataset_id!r}: 'schema_ref' must be a string")
    return Dataset(
        dataset_id, entry["schema"], kind, feeds_profile, retention_days, fields, schema_ref
    )


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
