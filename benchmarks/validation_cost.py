"""What the fast validator (jsonschema-rs) saves: RecordParser.parse per message, with
and without the fast path, on messages from ingest.dev.generate.

    python -m benchmarks.validation_cost [--messages N] [--seed S] [--rounds R]

The correctness side (fast-valid => reference-valid) is tested in
tests/domain/test_fast_validation.py; this is only the timing.
"""

import argparse
import math
import time

from benchmarks.harness import ROOT
from benchmarks.worker_path import generated_messages
from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.records import RecordError

CATALOG = ROOT / "examples" / "catalog.yaml"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.validation_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    catalog = Catalog.load(str(CATALOG))
    messages, counts = generated_messages(options.messages, options.seed)
    inputs = [(m.data, m.attributes, m.message_id, m.publish_time) for m in messages]
    print(f"{len(inputs)} messages from ingest.dev.generate (seed {options.seed}): {counts}")
    for label, fast_validation in (
        ("reference jsonschema only", False),
        ("jsonschema-rs fast path", True),
    ):
        record_parser = RecordParser(catalog, fast_validation=fast_validation)
        best = math.inf
        for _ in range(options.rounds):
            valid = 0
            start = time.perf_counter()
            for data, attributes, message_id, publish_time in inputs:
                try:
                    record_parser.parse(data, attributes, message_id, publish_time)
                    valid += 1
                except RecordError:
                    pass
            best = min(best, time.perf_counter() - start)
        print(
            f"{label:38s} {best / len(inputs) * 1e6:8.1f} µs per message "
            f"(best of {options.rounds}; {valid} valid, {len(inputs) - valid} failed; "
            f"{record_parser.fast_path_disagreements // options.rounds} declined by the "
            "fast path, accepted by the reference)"
        )


if __name__ == "__main__":
    main()
