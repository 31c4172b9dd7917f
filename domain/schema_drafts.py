"""JSON Schema drafts and formats, as both validators see them.

Each schema is read with its own `$schema` (draft-06 to 2020-12; 2020-12 when absent).
"""

import jsonschema
import referencing
import referencing.jsonschema

DEFAULT_DRAFT = referencing.jsonschema.DRAFT202012
# Formats are annotations in jsonschema unless a checker is given. These are asserted
# because the lake stores them typed (timestamp, date): a value that does not parse would
# fail there. Others (uri, email, ...) stay annotations: real data, Adobe's XDM examples
# among them, carry URIs that are not RFC 3986-strict.
CHECKED_FORMATS = ("date-time", "date")
FORMAT_CHECKER = jsonschema.FormatChecker(formats=CHECKED_FORMATS)


def validator_class(schema):
    if "$schema" in schema:
        referencing.jsonschema.specification_with(schema["$schema"])  # raises if unknown
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def resource(schema):
    specification = referencing.jsonschema.specification_with(
        schema.get("$schema", ""), default=DEFAULT_DRAFT
    )
    return specification.create_resource(schema)
