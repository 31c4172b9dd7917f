"""Small schema sets made in a test, and the `$schema` URIs of the drafts."""

from domain.schemas import SchemaRegistry

DRAFTS = {
    "draft-04": "http://json-schema.org/draft-04/schema#",
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}


def registry_of(*schemas):
    return SchemaRegistry({schema["$id"]: schema for schema in schemas})
