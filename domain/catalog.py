"""The dataset catalog and the schema registry it points to.

A catalog file (YAML or JSON) names the folders of JSON Schemas and, for each dataset,
its schema id, its kind (`profile` or `event`) and whether it feeds the profile store:

    schemas: schemas                  # relative to the catalog file; a list is allowed
    datasets:
      crm-profiles: {schema: https://ns.example.com/xdm/individual-profile,
                     kind: profile, profile: true,
                     identities: [{pointer: /workEmail/address, namespace: Email,
                                   primary: true}],   # optional identity fields
                     schema_ref: "https://ns.adobe.com/acme/schemas/1a2b",  # optional:
                                      # the header.schemaRef.id senders give, if not `schema`
                     trusted: true}   # optional: an authenticated source, which links
                                      # person namespaces without proof (identity_proof.py)
    identity:                         # optional: the identity graph's rules
      priority: [CRMID, Email, ECID]  # most trusted first
      unique: [CRMID, Email]          # a graph holds at most one of each
      blocked: ["test@example\\.com"] # values never linked (regexes), beside the built-in ones
      max_identities: 50
      person_namespaces: [Email, CRMID]  # linked only from a trusted dataset or with proof
      proof_secret_env: INGEST_IDENTITY_PROOF_SECRET  # where the proofs' HMAC secret is
    limits: {max_array_items: 10000, max_object_properties: 1000}  # optional: per record
    connections: {...}                # optional: who may send over HTTP (domain/connections.py)
    max_future_seconds: 86400         # optional: how far past its ingestion a record's time
                                      # may be (a day); later is bad_timestamp

Dataset ids match DATASET_ID_PATTERN: each names a folder of the lake, so no path
separators, no `.` or `..`, and no leading `_` (the dead letter's `_errors` folder).
Every problem of a catalog is reported at once, in one CatalogError.

Paths go through Beam's file systems, so a catalog on `gs://` works as a local one does.
The schemas form a SchemaRegistry (domain/schemas.py).
"""

import dataclasses
import json
import re

import yaml
from apache_beam.io.filesystems import FileSystems

from domain.connections import parse_connections
from domain.identity import MAX_NAMESPACE_CHARS, IdentityField
from domain.identity_graph import DEFAULT_MAX_IDENTITIES, IdentityRules
from domain.identity_proof import KEYS as TRUST_KEYS
from domain.identity_proof import LinkTrust, parse_link_trust
from domain.schema_drafts import LIMIT_RANGE, ValidationLimits
from domain.schemas import MAX_ERRORS, SchemaRegistry, SchemaRegistryError, relative_to

KINDS = ("profile", "event")
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36_500  # a century; it names a Bigtable family, events_<N>d
# A record dated far ahead would outrank every honest one after it (a delete dated 9999
# would erase a person for good); a clock a day fast is still believed.
DEFAULT_MAX_FUTURE_SECONDS = 86_400
# A dataset id names its lake folder (<lake>/<dataset>/) and Beam metrics. Letters, digits,
# `-`, `_`, `.` and the braces of Adobe's `{DATASET_ID}` placeholder, 1 to 100 characters,
# the first a letter, a digit or `{`: no path separator, never `.` or `..`, no leading `_`
# (reserved: the dead letter's `_errors`), no `=` (a Hive partition's mark), no space.
# Adobe's dataset ids (24 hexadecimal digits) and names such as `crm-profiles` match.
DATASET_ID_PATTERN = re.compile(r"[A-Za-z0-9{][A-Za-z0-9_.{}-]{0,99}")
ERRORS_DATASET = "_errors"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
    trusted: bool = False  # an authenticated source: links person namespaces unproven

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
    max_errors: int = MAX_ERRORS  # schema errors computed per record (what is reported)
    connections: dict = dataclasses.field(default_factory=dict)  # id -> Connection (HTTP)
    max_future_seconds: int = DEFAULT_MAX_FUTURE_SECONDS  # a record time past ingestion
    link_trust: LinkTrust = LinkTrust()  # which identities records may link

    @classmethod
    def load(cls, path):
        """The catalog at `path`, or CatalogError listing every problem found in it."""
        spec = _read_document(path)
        if not isinstance(spec, dict) or not isinstance(spec.get("datasets"), dict):
            raise CatalogError(f"{path}: a catalog needs a 'datasets' mapping")
        problems = []
        limits = _parse_limits(problems, spec.get("limits", {}))
        folders = spec.get("schemas", [])
        if isinstance(folders, str):
            folders = [folders]
        registry = None
        if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
            problems.append("schemas must be a folder or a list of folders (strings)")
        else:
            try:
                registry = SchemaRegistry.load(
                    [relative_to(path, folder) for folder in folders], limits=limits
                )
            except SchemaRegistryError as error:
                problems.append(str(error))
        datasets = {}
        for dataset_id, entry in spec["datasets"].items():
            dataset = _parse_dataset(problems, dataset_id, entry)
            if dataset is not None:
                datasets[dataset_id] = dataset
        _check_dataset_ids(problems, spec["datasets"])
        for dataset in datasets.values():
            if registry is not None and dataset.schema_id not in registry.schemas:
                problems.append(
                    f"dataset {dataset.id!r} names schema {dataset.schema_id!r}, which is not "
                    f"among the {len(registry.schemas)} schemas loaded from {folders}"
                )
        precedence = _parse_merge_policy(problems, spec, spec["datasets"])
        rules, blocked = _parse_identity_rules(problems, spec.get("identity", {}))
        trust = LinkTrust()
        if isinstance(spec.get("identity", {}), dict):
            trust = parse_link_trust(problems, spec.get("identity", {}), _namespace_problem)
        connections = parse_connections(problems, spec.get("connections"), spec["datasets"])
        max_future = spec.get("max_future_seconds", DEFAULT_MAX_FUTURE_SECONDS)
        if isinstance(max_future, bool) or not isinstance(max_future, int) or max_future < 0:
            problems.append(
                f"max_future_seconds must be a whole number of seconds, 0 or more, not "
                f"{max_future!r}"
            )
        if problems:
            if len(problems) == 1:
                raise CatalogError(f"{path}: {problems[0]}")
            raise CatalogError(f"{path}: {len(problems)} problems:\n  " + "\n  ".join(problems))
        return cls(
            datasets=datasets,
            registry=registry,
            dataset_precedence=precedence,
            identity_rules=rules,
            blocked_identities=blocked,
            connections=connections,
            max_future_seconds=max_future,
            link_trust=trust,
        )

    def schema(self, dataset_id):
        return self.registry.schemas[self.datasets[dataset_id].schema_id]

    def validator(self, dataset_id):
        """A reference validator for the dataset's schema, with format checks on, the
        catalog's limits, that stops after `max_errors` errors (domain/schemas.py)."""
        return self.registry.validator(
            self.datasets[dataset_id].schema_id, max_errors=self.max_errors
        )


def dataset_id_problem(dataset_id):
    """Why `dataset_id` cannot be a dataset's id, or None."""
    if not isinstance(dataset_id, str):
        return (
            f"dataset id {dataset_id!r} is a {type(dataset_id).__name__}, not a string "
            "(quote it in YAML)"
        )
    if dataset_id == ERRORS_DATASET or dataset_id.startswith("_"):
        return (
            f"dataset id {dataset_id!r} starts with '_', which is reserved "
            f"({ERRORS_DATASET!r} is the dead letter's lake folder)"
        )
    if not DATASET_ID_PATTERN.fullmatch(dataset_id):
        return (
            f"dataset id {dataset_id!r} is not 1 to 100 letters, digits, '-', '_', '.', '{{' "
            "or '}', starting with a letter, a digit or '{' (it names a folder of the lake)"
        )
    return None


def _check_dataset_ids(problems, entries):
    problems += filter(None, map(dataset_id_problem, entries))
    by_folding = {}
    for dataset_id in entries:
        if isinstance(dataset_id, str):
            by_folding.setdefault(dataset_id.casefold(), []).append(dataset_id)
    problems += [
        f"dataset ids {same} differ only in case: their lake folders are one folder on a "
        "case-insensitive file system"
        for same in by_folding.values()
        if len(same) > 1
    ]


def _whole_number(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _parse_limits(problems, spec):
    """`limits: {max_array_items: N, max_object_properties: N}`: what a record may hold."""
    names = [field.name for field in dataclasses.fields(ValidationLimits)]
    if not isinstance(spec, dict):
        problems.append(f"limits must be a mapping of {names}, not {spec!r}")
        return ValidationLimits()
    unknown = sorted(set(spec) - set(names), key=str)
    if unknown:
        problems.append(f"limits: unknown keys {unknown}; it takes {names}")
    low, high = LIMIT_RANGE
    values = {}
    for name in names:
        if name in spec:
            if _whole_number(spec[name], low, high):
                values[name] = spec[name]
            else:
                problems.append(f"limits.{name} must be a whole number from {low} to {high:,}")
    return ValidationLimits(**values)


def _parse_merge_policy(problems, spec, datasets):
    """`merge_policy: timestamp` (the default) or `merge_policy: {dataset_precedence: [...]}`."""
    policy = spec.get("merge_policy", "timestamp")
    if policy == "timestamp":
        return ()
    order = policy.get("dataset_precedence") if isinstance(policy, dict) else None
    if not isinstance(order, list) or not order:
        problems.append("merge_policy is 'timestamp' or {dataset_precedence: [dataset, ...]}")
        return ()
    unknown = [d for d in order if not isinstance(d, str) or d not in datasets]
    if unknown:
        problems.append(f"merge_policy names unknown datasets {unknown}")
    return tuple(order)


def _namespace_problem(namespace):
    """Why a namespace named in the catalog cannot be one (it goes into row keys), or None."""
    if not isinstance(namespace, str) or not namespace:
        return f"a namespace is a non-empty string, not {namespace!r}"
    if len(namespace) > MAX_NAMESPACE_CHARS:
        return f"namespace {namespace[:40]!r}... is longer than {MAX_NAMESPACE_CHARS} characters"
    if _CONTROL_CHARACTERS.search(namespace):
        return f"namespace {namespace!r} holds control characters"
    return None


def _parse_identity_rules(problems, spec):
    """`identity: {priority: [...], unique: [...], blocked: [regex, ...], max_identities}`."""
    if not isinstance(spec, dict):
        problems.append(f"identity must be a mapping, not {spec!r}")
        return IdentityRules(), ()
    known = {"priority", "unique", "blocked", "max_identities", *TRUST_KEYS}
    unknown = sorted(set(spec) - known, key=str)
    if unknown:
        problems.append(f"identity: unknown keys {unknown}; it takes {sorted(known)}")
    lists = {}
    for name in ("priority", "unique", "blocked"):
        value = spec.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append(f"identity.{name} must be a list of strings")
            value = []
        elif name != "blocked":
            problems += [f"identity.{name}: {p}" for p in map(_namespace_problem, value) if p]
        lists[name] = value
    blocked = []
    for pattern in lists["blocked"]:
        try:
            blocked.append(re.compile(pattern))
        except re.error as error:
            problems.append(f"identity.blocked: {pattern!r} is not a regular expression: {error}")
    cap = spec.get("max_identities", DEFAULT_MAX_IDENTITIES)
    if not _whole_number(cap, 2, 1000):
        problems.append("identity.max_identities must be a whole number from 2 to 1000")
        cap = DEFAULT_MAX_IDENTITIES
    rules = IdentityRules(tuple(lists["priority"]), frozenset(lists["unique"]), cap)
    return rules, tuple(blocked)


def _parse_identity_fields(problems, dataset_id, entries):
    if not isinstance(entries, list):
        problems.append(f"dataset {dataset_id!r}: 'identities' must be a list")
        return ()
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
            problems.append(
                f"dataset {dataset_id!r}: an identity is {{pointer: /json/pointer, "
                f"namespace: Name, primary: true|false}}, not {entry!r}"
            )
        elif _namespace_problem(namespace):
            problems.append(f"dataset {dataset_id!r}: {_namespace_problem(namespace)}")
        else:
            fields.append(IdentityField(pointer, namespace, primary))
    if sum(f.primary for f in fields) > 1:
        problems.append(f"dataset {dataset_id!r}: at most one identity field is primary")
    return tuple(fields)


def _parse_dataset(problems, dataset_id, entry):
    """The Dataset of a catalog entry, or None; what is wrong with it goes to `problems`."""
    if not isinstance(entry, dict) or "schema" not in entry:
        problems.append(f"dataset {dataset_id!r} needs a 'schema'")
        return None
    found = len(problems)
    schema_id = entry["schema"]
    if not isinstance(schema_id, str) or not schema_id:
        problems.append(f"dataset {dataset_id!r}: 'schema' must be a schema's $id (a string)")
    kind = entry.get("kind")
    if kind not in KINDS:
        problems.append(f"dataset {dataset_id!r} has kind {kind!r}; expected one of {KINDS}")
    feeds_profile = entry.get("profile", False)
    if not isinstance(feeds_profile, bool):
        problems.append(f"dataset {dataset_id!r}: 'profile' must be true or false")
    retention_days = entry.get("retention_days", DEFAULT_RETENTION_DAYS)
    if not _whole_number(retention_days, 1, MAX_RETENTION_DAYS):
        problems.append(
            f"dataset {dataset_id!r}: 'retention_days' must be a "
            f"whole number of days, from 1 to {MAX_RETENTION_DAYS:,}"
        )
    fields = _parse_identity_fields(problems, dataset_id, entry.get("identities", []))
    schema_ref = entry.get("schema_ref", "")
    if not isinstance(schema_ref, str):
        problems.append(f"dataset {dataset_id!r}: 'schema_ref' must be a string")
    trusted = entry.get("trusted", False)
    if not isinstance(trusted, bool):
        problems.append(f"dataset {dataset_id!r}: 'trusted' must be true or false")
    if len(problems) > found:
        return None
    return Dataset(
        dataset_id, schema_id, kind, feeds_profile, retention_days, fields, schema_ref, trusted
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
