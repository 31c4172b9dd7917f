"""What each step of the worker path costs per message, in a plain loop (no Beam).

    python -m benchmarks.stage_costs [--messages N] [--seed S] [--json]

The same inputs as worker_path (N generated messages as Pub/Sub protos). Each step runs
over all messages in turn, on the outputs of the step before, and is timed on its own
(CPU time of this process; the inputs, and before each step the earlier steps' outputs,
are frozen out of the garbage collector's sight: a streaming worker holds a bundle, not
all 20,000). A message that fails a step goes no further; microseconds are per message that
entered the step.
"""

import datetime
import gc
import sys
import time

from benchmarks import harness
from benchmarks.inputs import FIXED_CLOCK, generated_messages


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = harness.argument_parser(
        "stage_costs", "Microseconds per message of each step of the worker path, in a plain loop."
    )
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args(argv)
    if options.messages < 1:
        parser.error("--messages must be at least 1")
    machine = harness.describe_machine()
    steps = measure(options.messages, options.seed)
    harness.finish_machine(machine, time.process_time())
    figures = {
        "command": harness.command_line("stage_costs", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "messages": options.messages,
        "steps": steps,
    }
    harness.show(figures, options.json, print_table)


def print_table(figures):
    rows = [row for row in harness.machine_rows(figures) if row[0] != "benchmark cpu"]
    rows.append(("messages", str(figures["messages"])))
    for step in figures["steps"]:
        rows.append(
            (
                step["step"],
                f"{step['us_per_message']:7.1f} us per message "
                f"({step['messages']} in, {step['cpu_seconds']} CPU s)",
            )
        )
    total = sum(s["us_per_message"] * s["messages"] for s in figures["steps"]) / figures["messages"]
    rows.append(
        (
            "all steps",
            f"{total:7.1f} us per generated message: {1e6 / total:.0f} messages per CPU-second",
        )
    )
    harness.print_rows("Worker path, step by step, in a plain loop", rows)


def measure(count, seed):
    import pyarrow as pa

    from domain.catalog import Catalog
    from domain.lake_schema import arrow_schema, row_converter
    from domain.parsing import RecordParser
    from domain.profile_writes import PendingRows, fragment_cells
    from domain.records import RecordError
    from transforms.profile_store import MAX_ROWS_UNWRITTEN
    from transforms.read import message_from_proto

    catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
    messages, _ = generated_messages(count, seed)
    protos = [m._to_proto_str(for_publish=False) for m in messages]
    parser = RecordParser(catalog)
    schemas = {d: arrow_schema(catalog, d) for d in catalog.datasets}
    converters = {d: row_converter(schema) for d, schema in schemas.items()}
    retention = {d.id: d.retention_days for d in catalog.datasets.values()}
    gc.collect()
    gc.freeze()
    steps = []

    def step(name, inputs, function):
        gc.collect()
        gc.freeze()  # the earlier steps' outputs: a streaming worker does not hold them all
        started = time.process_time()
        outputs = function(inputs)
        seconds = time.process_time() - started
        steps.append(
            {
                "step": name,
                "messages": len(inputs),
                "cpu_seconds": round(seconds, 2),
                "us_per_message": round(seconds / max(len(inputs), 1) * 1e6, 1),
            }
        )
        return outputs

    def parse(decoded):
        records = []
        for message in decoded:
            try:
                records.append(
                    parser.parse(message.data, message.attributes, message.message_id, FIXED_CLOCK)
                )
            except RecordError:
                pass
        return records

    def lake_rows(records):
        rows = {}
        for record in records:
            rows.setdefault(record.dataset, []).append(converters[record.dataset](record.entity))
        return rows

    def profile_cells(items):
        # as WriteProfiles' DoFn: records that feed profiles, with an accepted primary
        return [
            fragment_cells(r, retention[r.dataset])
            for r in items
            if r.feeds_profile and r.primary_identity is not None
        ]

    def pending_rows(cells_of_records):
        pending = PendingRows()
        for cells in cells_of_records:
            for key, cell in cells:
                pending.add(key, cell)
            if len(pending) >= MAX_ROWS_UNWRITTEN:  # as the pipeline does
                pending.take()
        pending.take()

    decoded = step(
        "decode Pub/Sub proto (message_from_proto)",
        protos,
        lambda items: [message_from_proto(p) for p in items],
    )
    records = step("parse + validate", decoded, parse)
    rows = step("lake rows (row_converter)", records, lake_rows)
    step(
        "lake Arrow tables (per dataset)",
        records,
        lambda _: [
            pa.Table.from_pylist(dataset_rows, schema=schemas[dataset])
            for dataset, dataset_rows in rows.items()
        ],
    )
    cells = step("profile cells (fragment_cells)", records, profile_cells)
    step("Bigtable mutations (PendingRows.add)", cells, pending_rows)
    return steps


if __name__ == "__main__":
    main()
