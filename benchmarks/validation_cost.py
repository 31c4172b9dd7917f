"""What the fast validator (jsonschema-rs) saves: RecordParser.parse per message, with
and without the fast path, on messages from ingest.dev.generate.

    python -m benchmarks.validation_cost [--messages N] [--seed S] [--rounds R] [--json]

The correctness side (fast-valid => reference-valid) is tested in
tests/domain/test_fast_validation.py; this is only the timing.
"""

import datetime
import math
import sys
import time

from benchmarks import harness
from benchmarks.harness import ROOT
from benchmarks.inputs import generated_messages
from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.records import RecordError

CATALOG = ROOT / "examples" / "catalog.yaml"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = harness.argument_parser("validation_cost", __doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    machine = harness.describe_machine()
    catalog = Catalog.load(str(CATALOG))
    messages, counts = generated_messages(options.messages, options.seed)
    inputs = [(m.data, m.attributes, m.message_id, m.publish_time) for m in messages]
    figures = {
        "command": harness.command_line("validation_cost", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "messages": len(inputs),
        "generated": counts,
        "seed": options.seed,
        "rounds": options.rounds,
    }
    for name, fast_validation in (("reference_only", False), ("fast_path", True)):
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
        figures[name] = {
            "us_per_message": round(best / len(inputs) * 1e6, 1),
            "valid": valid,
            "failed": len(inputs) - valid,
            "declined_by_fast_path": record_parser.fast_path_disagreements // options.rounds,
        }
    harness.finish_machine(machine, time.process_time())
    harness.show(figures, options.json, print_table)


def print_table(figures):
    rows = [row for row in harness.machine_rows(figures) if row[0] != "benchmark cpu"]
    rows.append(
        ("messages", f"{figures['messages']} (seed {figures['seed']}): {figures['generated']}")
    )
    for name, label in (("reference_only", "jsonschema only"), ("fast_path", "jsonschema-rs")):
        result = figures[name]
        rows.append(
            (
                label,
                f"{result['us_per_message']:8.1f} µs per message (best of {figures['rounds']}; "
                f"{result['valid']} valid, {result['failed']} failed; "
                f"{result['declined_by_fast_path']} declined by the fast path, accepted by "
                "the reference)",
            )
        )
    harness.print_rows("RecordParser.parse per message, with and without the fast path", rows)


if __name__ == "__main__":
    main()
