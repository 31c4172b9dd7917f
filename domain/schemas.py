"""The schema registry: a set of JSON Schemas found by `$id`, and validators over it.

Each schema is read with its own `$schema` (domain/schema_drafts.py). A `$ref` resolves
only within the set: nothing is ever fetched from the network, and a reference to a
schema outside the set is an error when the registry is built, naming the schema and the
reference, not a surprise when the first record arrives.

Two validators per schema: `validator` is the reference (python-jsonschema), which says what
is wrong; `fast_validator` (jsonschema-rs, much faster) only says "valid" where the
reference would too, so that a record it accepts needs nothing more
(domain/fast_validation.py). Both refuse a record beyond the registry's ValidationLimits
before its schema is looked at, and the reference stops at the errors that are reported:
what a hostile record costs is bounded (docs/messages.md#what-validation-costs).
"""

import functools
import itertools
import json
import posixpath
import urllib.parse

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from apache_beam.io.filesystems import FileSystems

from domain.fast_validation import FastPath
from domain.schema_drafts import FORMAT_CHECKER, ValidationLimits, resource, validator_class

MAX_ERRORS = 5  # errors computed per record: what the dead letter reports (domain/parsing.py)
CONTEXT_ERRORS = 5  # errors kept per subschema of an anyOf or a oneOf that fails


class SchemaRegistryError(ValueError):
    """The schemas cannot be used; the message says which and why."""


class SchemaRegistry:
    def __init__(self, schemas, limits=ValidationLimits()):
        """`schemas`: {$id: contents}. Checks every schema and every `$ref` at once.
        `limits`: what any record validated here may hold (arrays, objects)."""
        self.schemas = dict(schemas)
        self.limits = limits
        self._registry = None
        self._fast_path = None  # FastPath over the whole set, built on first use
        problems = [
            problem for schema_id in self.schemas for problem in self._problems_of(schema_id)
        ]
        if problems:
            raise SchemaRegistryError(
                f"{len(problems)} problem(s) in the schema set:\n  " + "\n  ".join(problems)
            )

    @classmethod
    def load(cls, folders, exclude=(), limits=ValidationLimits()):
        """Every schema in the folders (local or gs://; see read_schema_folder), but the
        `$id`s in exclude."""
        schemas, sources = {}, {}
        for folder in folders:
            for path, schema in read_schema_folder(folder):
                schema_id = schema.get("$id") if isinstance(schema, dict) else None
                if not schema_id:
                    raise SchemaRegistryError(f"{path}: a schema needs an '$id'")
                if schema_id in sources:
                    raise SchemaRegistryError(
                        f"{path}: '$id' {schema_id!r} is already used by {sources[schema_id]}"
                    )
                sources[schema_id] = path
                if schema_id not in exclude:
                    schemas[schema_id] = schema
        if not schemas:
            raise SchemaRegistryError(f"no JSON Schemas (*.json) found under {list(folders)}")
        return cls(schemas, limits)

    @property
    def registry(self):
        if self._registry is None:
            self._registry = referencing.Registry().with_resources(
                (schema_id, resource(schema)) for schema_id, schema in self.schemas.items()
            )
        return self._registry

    def __getstate__(self):  # Beam pickles the registry into DoFns: ship the schemas only
        return {
            "schemas": self.schemas,
            "limits": self.limits,
            "_registry": None,
            "_fast_path": None,
        }

    def __setstate__(self, state):
        self.__dict__.update({"limits": ValidationLimits(), **state})

    def validator(self, schema_id, max_errors=MAX_ERRORS):
        """A ReferenceValidator of the schema's own draft, checking the formats in
        CHECKED_FORMATS, that yields at most `max_errors` errors (None: all of them)."""
        schema = self.schemas[schema_id]
        validator = _bounded_class(validator_class(schema))(
            schema, registry=self.registry, format_checker=FORMAT_CHECKER
        )
        return ReferenceValidator(validator, self.limits, max_errors)

    def fast_validator(self, schema_id):
        """A FastValidator for the schema, or None where only the reference can be trusted
        (jsonschema-rs refuses the schema, or it reaches something the fast path does not
        share with the reference); a warning says so, once per schema."""
        if self._fast_path is None:
            self._fast_path = FastPath(self.schemas, self.limits)
        return self._fast_path.validator(schema_id)

    def resolver(self, schema_id):
        return self.registry.resolver(base_uri=schema_id)

    def _problems_of(self, schema_id):
        schema = self.schemas[schema_id]
        if not isinstance(schema, dict):
            return [f"{schema_id}: a schema must be a JSON object"]
        try:
            schema_class = validator_class(schema)
        except referencing.jsonschema.UnknownDialect:
            return [f"{schema_id}: unknown $schema {schema.get('$schema')!r}"]
        try:
            schema_class.check_schema(schema)
        except jsonschema.SchemaError as error:
            return [f"{schema_id}: not a valid JSON Schema: {error.message}"]
        problems = []
        for base, ref in _references(schema, schema_id):
            try:
                self.registry.resolver(base_uri=base).lookup(ref)
            except referencing.exceptions.Unresolvable:
                problems.append(f"{schema_id}: $ref {ref!r} is not in the schema set")
        return problems


class ReferenceValidator:
    """python-jsonschema's validator of one schema, bounded in what a record costs it.

    `iter_errors` first checks the ValidationLimits, and yields only that error for a
    record beyond them; else the schema's errors, as they are found, and no more than
    `max_errors` (the rest are never computed). Everything else is the wrapped validator's.
    """

    def __init__(self, validator, limits, max_errors=MAX_ERRORS):
        self.validator = validator
        self.limits = limits
        self.max_errors = max_errors

    def iter_errors(self, instance):
        excess = self.limits.excess(instance)
        if excess is not None:
            path, keyword, message = excess
            yield jsonschema.ValidationError(
                message,
                validator=keyword,
                validator_value=getattr(self.limits, keyword),
                instance=None,
                path=path,
            )
            return
        yield from itertools.islice(self.validator.iter_errors(instance), self.max_errors)

    def is_valid(self, instance):
        return next(self.iter_errors(instance), None) is None

    def __getattr__(self, name):
        return getattr(self.validator, name)


@functools.cache
def _bounded_class(draft_class):
    """The draft's validator class, but anyOf and oneOf keep at most CONTEXT_ERRORS errors
    of each subschema that fails (python-jsonschema computes all of them, for `context`,
    before it yields the one error), and uniqueItems hashes instead of comparing pairs."""
    keywords = {"anyOf": _any_of, "oneOf": _one_of}
    if "uniqueItems" in draft_class.VALIDATORS:
        keywords["uniqueItems"] = _unique_items
    return jsonschema.validators.extend(draft_class, keywords)


def _failing_branches(validator, subschemas, instance):
    """(errors of each subschema that fails, up to the first that holds, or None)."""
    context = []
    for index, subschema in subschemas:
        errors = list(
            itertools.islice(
                validator.descend(instance, subschema, schema_path=index), CONTEXT_ERRORS
            )
        )
        if not errors:
            return context, subschema
        context.extend(errors)
    return context, None


def _any_of(validator, any_of, instance, schema):
    context, holding = _failing_branches(validator, enumerate(any_of), instance)
    if holding is None:
        yield jsonschema.ValidationError(
            f"{instance!r} is not valid under any of the given schemas", context=context
        )


def _one_of(validator, one_of, instance, schema):  # python-jsonschema's, but context
    subschemas = enumerate(one_of)
    context, first_valid = _failing_branches(validator, subschemas, instance)
    if first_valid is None:
        yield jsonschema.ValidationError(
            f"{instance!r} is not valid under any of the given schemas", context=context
        )
        return
    more_valid = [s for _, s in subschemas if validator.evolve(schema=s).is_valid(instance)]
    if more_valid:
        more_valid.append(first_valid)
        reprs = ", ".join(repr(schema) for schema in more_valid)
        yield jsonschema.ValidationError(f"{instance!r} is valid under each of {reprs}")


def _unique_items(validator, unique, instance, schema):  # python-jsonschema's, in O(n)
    if unique and validator.is_type(instance, "array"):
        seen = set()
        for item in instance:
            key = _equality_key(item)
            if key in seen:
                yield jsonschema.ValidationError(f"{instance!r} has non-unique elements")
                return
            seen.add(key)


def _equality_key(value):
    """A hashable key equal for two JSON values exactly where python-jsonschema's `equal`
    holds: booleans apart from numbers, 1 == 1.0, objects regardless of key order."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((k, _equality_key(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_equality_key(v) for v in value))
    if isinstance(value, (int, float)):
        return ("number", value)
    return (type(value).__name__, value)


def read_schema_folder(folder):
    """(path, parsed schema) for every `*.json` below the folder; or, if `folder` holds a
    `*`, for every file that glob matches (`xdm/**.schema.json`)."""
    pattern = folder if "*" in folder else folder.rstrip("/") + "/**.json"
    for match in FileSystems.match([pattern])[0].metadata_list:
        yield match.path, read_json(match.path)


def read_json(path):
    try:
        with FileSystems.open(path) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except ValueError as error:
        raise SchemaRegistryError(f"{path} is not valid JSON: {error}") from error
    except Exception as error:  # FileSystems raises several kinds for a missing file
        raise SchemaRegistryError(f"cannot read {path}: {error}") from error


def _references(node, base):
    """(base URI, $ref) for every `$ref` in a schema, following nested `$id`s."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urllib.parse.urljoin(base, node["$id"])
        if isinstance(node.get("$ref"), str):
            yield base, node["$ref"]
        for key, value in node.items():
            if key not in ("enum", "const", "examples", "default"):
                yield from _references(value, base)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item, base)


def relative_to(document_path, folder):
    """A folder named in a document, taken relative to the document's own folder."""
    if "://" in folder or folder.startswith("/"):
        return folder
    return posixpath.join(posixpath.dirname(document_path) or ".", folder)
