"""The project's example catalog and records (examples/), and ingest.dev.generate's stream."""

import datetime
import pathlib

from domain.parsing import RecordParser
from domain.records import RecordError

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_CATALOG = EXAMPLES / "catalog.yaml"
# (file of examples/, the attributes its messages are published with)
EXAMPLE_FILES = (("records.jsonl", {}), ("records-bare.jsonl", {"dataset": "web-events"}))
PUBLISH_TIME = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


def example_lines(name):
    """The messages of an examples/ file, one a line."""
    return [line.rstrip(b"\n") for line in (EXAMPLES / name).read_bytes().splitlines() if line]


def example_entities(catalog):
    """(schema id, entity) of every record in examples/ that the reference accepts."""
    parser = RecordParser(catalog, fast_validation=False)
    entities = []
    for name, attributes in EXAMPLE_FILES:
        for line in (EXAMPLES / name).read_bytes().splitlines():
            try:
                record = parser.parse(line, attributes)
            except RecordError:
                continue
            entities.append((catalog.datasets[record.dataset].schema_id, record.entity))
    return entities


def generated_messages(count, seed):
    """(payload, attributes) of ingest.dev.generate's stream, valid and invalid, published at
    PUBLISH_TIME."""
    from ingest.dev.generate import RecordGenerator

    generator = RecordGenerator(seed=seed, duplicate_share=0, clock=lambda: PUBLISH_TIME)
    return [(m.payload, {"dataset": m.dataset}) for m in generator.messages(count)]
