"""Adobe's XDM corpus: the project's own copy, in tests/data/xdm (SOURCE.md there says
where it comes from; LICENSE, CC BY 4.0).

500 draft-06 schemas that reference each other by `$id`, and 597 examples
(`X.example.N.json`, meant to be valid against `X.schema.json` beside it).
The `corpus` fixture (tests/domain/conftest.py) gives the folder.
"""

import json
import pathlib

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "data" / "xdm"
# The one schema whose $ref points outside the corpus (SOURCE.md in the corpus says so).
DANGLING = "https://ns.adobe.com/xdm/destinations/adobe-analytics"
MISSING = "https://ns.adobe.com/experience/analytics-experienceevent"


def examples_with_their_schema(corpus, registry):
    """(example file, $id of its schema) for every example whose schema is in the registry."""
    pairs = []
    for example in sorted(corpus.rglob("*.example.*.json")):
        schema_file = example.parent / (example.name.split(".example.")[0] + ".schema.json")
        if schema_file.exists():
            schema_id = json.loads(schema_file.read_text())["$id"]
            if schema_id in registry.schemas:
                pairs.append((example, schema_id))
    return pairs
