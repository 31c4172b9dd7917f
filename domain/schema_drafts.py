"""JSON Schema drafts, formats and the size limits of a record, as both validators see them.

Each schema is read with its own `$schema` (draft-06 to 2020-12; 2020-12 when absent).
"""

import dataclasses
import functools

import jsonschema
import jsonschema_rs
import referencing
import referencing.jsonschema

DEFAULT_DRAFT = referencing.jsonschema.DRAFT202012
# Formats are annotations in jsonschema unless a checker is given. These are asserted
# because the lake stores them typed (timestamp, date): a value that does not parse would
# fail there. Others (uri, email, ...) stay annotations: real data, Adobe's XDM examples
# among them, carry URIs that are not RFC 3986-strict.
CHECKED_FORMATS = ("date-time", "date")
FORMAT_CHECKER = jsonschema.FormatChecker(formats=CHECKED_FORMATS)

# What a record may hold, checked before its schema (docs/messages.md#what-validation-costs). A 1 MB
# message can hold 500,000 array items or 200,000 properties: within these caps, what any
# keyword costs per item or per property (uniqueItems, contains, additionalProperties,
# patternProperties, the error lists of anyOf and oneOf) stays bounded. Adobe caps a record
# at 100 KB for Profile and an ExperienceEvent at 10 KB; XDM's widest class is a few hundred
# fields, its arrays (productListItems, identityMap's lists) tens of items.
DEFAULT_MAX_ARRAY_ITEMS = 10_000
DEFAULT_MAX_OBJECT_PROPERTIES = 1_000
LIMIT_RANGE = (1, 1_000_000)  # what a catalog may set each limit to
LIMITS_SCHEMA_ID = "urn:streaming-ingest:limits"


@dataclasses.dataclass(frozen=True)
class ValidationLimits:
    """Caps on every array's length and every object's width, anywhere in a record."""

    max_array_items: int = DEFAULT_MAX_ARRAY_ITEMS
    max_object_properties: int = DEFAULT_MAX_OBJECT_PROPERTIES

    def compiled(self):
        """The limits as a jsonschema-rs validator: `excess`'s verdict, walked in Rust."""
        return _compiled(self)

    def as_schema(self):
        """The limits as a JSON Schema (2020-12)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": LIMITS_SCHEMA_ID,
            "maxItems": self.max_array_items,
            "maxProperties": self.max_object_properties,
            "items": {"$ref": LIMITS_SCHEMA_ID},
            "additionalProperties": {"$ref": LIMITS_SCHEMA_ID},
        }

    def excess(self, instance):
        """(path, keyword, message) of the first array or object beyond the limits, or None.
        Rust says whether there is one (a few ms for 1 MB); only then does Python look for
        it, and a container too large is not looked into."""
        try:
            if self.compiled().is_valid(instance):
                return None
        except Exception:  # what cannot cross into Rust (a lone surrogate) is walked here
            pass
        pending = [(instance, ())]
        while pending:
            value, path = pending.pop()
            if isinstance(value, dict):
                if len(value) > self.max_object_properties:
                    return (
                        path,
                        "max_object_properties",
                        f"an object of {len(value)} properties, more than the limit of "
                        f"{self.max_object_properties}",
                    )
                children = value.items()
            elif isinstance(value, list):
                if len(value) > self.max_array_items:
                    return (
                        path,
                        "max_array_items",
                        f"an array of {len(value)} items, more than the limit of "
                        f"{self.max_array_items}",
                    )
                children = enumerate(value)
            else:
                continue
            found = [(c, (*path, k)) for k, c in children if isinstance(c, (dict, list))]
            pending.extend(reversed(found))  # in document order
        return None


@functools.cache
def _compiled(limits):
    return jsonschema_rs.Draft202012Validator(limits.as_schema())


def validator_class(schema):
    if "$schema" in schema:
        referencing.jsonschema.specification_with(schema["$schema"])  # raises if unknown
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def resource(schema):
    specification = referencing.jsonschema.specification_with(
        schema.get("$schema", ""), default=DEFAULT_DRAFT
    )
    return specification.create_resource(schema)
