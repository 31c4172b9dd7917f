"""Worker-path throughput: the pipeline's transform chain on Beam's FnApiRunner (batch),
beside the same functions in a plain Python loop (the floor), Bigtable writes included.

    python -m benchmarks.worker_path [--messages N] [--seed S] [--without-bigtable] [--json]

Starts the local stack's emulators on free ports (ingest.dev.local_stack, state in
.local-stack-bench/worker-path/) and stops them whatever happens; no Pub/Sub is used.
Inputs: N messages from ingest.dev.generate (RecordGenerator, seeded, fixed clock, 5%
invalid, no duplicates), written before the clock starts as Pub/Sub protos in 10 files:
what Dataflow's read hands a worker.

What is measured, in both modes:
- the message: the steps ReadMessages' read adds after Dataflow's native read
  (transforms.read._ReadFromPubSub.expand_continued: Beam's lineage step, then
  message_from_proto);
- parse + validate: transforms.validate.ParseAndValidate (RecordParser.parse: JSON,
  jsonschema-rs, jsonschema on what it does not accept);
- the lake rows: transforms.lake's _ToLakeRowFn (row_converter, Arrow tables per batch of
  up to 500 rows), then the Parquet files of each dataset and window written to a
  temporary folder (WriteParquetPartitions in Beam; one pq.write_table per dataset at the
  end in the floor);
- the dead letter's rows: transforms.dead_letter.error_tables, and their Parquet file;
- the profile branch, writes included (benchmarks/profile_step.py: profile_step_beam,
  ProfileFloor): the pipeline's own WriteProfiles in the Beam mode, its _WriteFragmentsFn
  called in a loop in the floor, each writing to a table of its own on the Bigtable
  emulator with MutateRows. With --without-bigtable, the same DoFn builds its rows and
  drops them instead.
Not measured: Pub/Sub read and dead-letter publish.

The FnApiRunner's SDK worker is set as Dataflow's is by default: no SDK state cache (see
run_beam). Beam's fixed start (building and pickling the graph, the bundle processors)
is in the figures of each run; the "marginal" figure, from a run of N/5 beside the run
of N, leaves it out: what one more event costs a running worker.

Each mode runs in its own child process (so its peak memory, VmHWM, is its own); the
messages are generated and written there, and its table created, before the clock starts.
events/s = N / wall seconds of the run; events per CPU-second = N / CPU seconds (user +
system, every thread: the Bigtable client's gRPC ones too) of the child process during
the run; the FnApiRunner here runs one SDK worker in process, so CPU seconds are at most
about one core's. The emulator's own CPU over the run (from /proc) is reported beside it.
After the clock stops, the table's rows are counted (a read of every row key).
"""

import argparse
import datetime
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid

from benchmarks import harness, profile_step
from benchmarks.inputs import generated_messages, read_pubsub_protos, write_pubsub_protos
from benchmarks.profile_step import (
    ProfileFloor,
    bigtable_emulator,
    count_rows,
    emulator_cpu_seconds,
    open_bench_table,
    profile_step_beam,
)

SUBSCRIPTION = "projects/demo-project/subscriptions/ingest-input-sub"  # read by nothing here


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_arguments(argv)
    if options.mode:
        figures = run_mode(options.mode, options.messages, options.seed, options.table)
        print(json.dumps(figures))
        return
    machine = harness.describe_machine()
    cpu_before = time.process_time()
    results = {}
    small = max(1, options.messages // 5)
    with bigtable_emulator(not options.without_bigtable) as environment:
        for name, mode, count in (
            ("floor", "floor", options.messages),
            ("beam", "beam", options.messages),
            ("beam_small", "beam", small),
        ):
            harness.progress(f"Running the {mode} with {count} messages")
            table = f"worker-path-{name}-{uuid.uuid4().hex[:6]}" if environment else ""
            output = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.worker_path",
                    "--mode",
                    mode,
                    "--messages",
                    str(count),
                    "--seed",
                    str(options.seed),
                    "--table",
                    table,
                ],
                cwd=harness.ROOT,
                env={**os.environ, **environment},
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            results[name] = json.loads(output.strip().splitlines()[-1])
    harness.finish_machine(machine, cpu_before)
    big, little = results["beam"], results.pop("beam_small")
    # What one more event costs once the pipeline runs: Beam's start (building and
    # pickling the graph, the bundle processors) is paid in both runs and cancels out.
    results["beam"]["marginal"] = {
        "messages": [little["messages"], big["messages"]],
        "seconds": [little["seconds"], big["seconds"]],
        "cpu_seconds": [little["cpu_seconds"], big["cpu_seconds"]],
        "events_per_second": round(
            (big["messages"] - little["messages"]) / max(big["seconds"] - little["seconds"], 1e-9),
            1,
        ),
        "events_per_cpu_second": round(
            (big["messages"] - little["messages"])
            / max(big["cpu_seconds"] - little["cpu_seconds"], 1e-9),
            1,
        ),
    }
    figures = {
        "command": harness.command_line("worker_path", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "messages": options.messages,
        "bigtable": "none (rows built, dropped)" if options.without_bigtable else "emulator",
        "results": results,
        "ratio_beam_to_floor": round(
            results["beam"]["events_per_second"] / results["floor"]["events_per_second"], 3
        ),
        "ratio_beam_to_floor_per_cpu_second": round(
            results["beam"]["events_per_cpu_second"] / results["floor"]["events_per_cpu_second"], 3
        ),
        "ratio_beam_marginal_to_floor_per_cpu_second": round(
            results["beam"]["marginal"]["events_per_cpu_second"]
            / results["floor"]["events_per_cpu_second"],
            3,
        ),
    }
    harness.show(figures, options.json, print_table)


def parse_arguments(argv):
    parser = harness.argument_parser(
        "worker_path",
        "Throughput of the pipeline's transforms on the FnApiRunner (batch), Bigtable "
        "writes to the emulator included, beside the same functions in a plain loop.",
    )
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--without-bigtable",
        action="store_true",
        help="build the Bigtable rows and drop them: no emulator, no writes",
    )
    parser.add_argument("--mode", choices=("floor", "beam"), help=argparse.SUPPRESS)
    parser.add_argument("--table", default="", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.messages < 1:
        parser.error("--messages must be at least 1")
    return options


# ---------------------------------------------------------------------------
# the two modes (each in its own process)


def run_mode(mode, count, seed, table_id):
    import warnings

    from domain.catalog import Catalog

    warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")

    catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
    messages, counts = generated_messages(count, seed)
    sizes = sorted(len(m.data) for m in messages)
    table = open_bench_table(catalog, table_id) if table_id else None
    emulator_pid = os.environ.get(profile_step.EMULATOR_PID) if table_id else None
    with tempfile.TemporaryDirectory(prefix="worker-path-") as folder:
        lake = os.path.join(folder, "lake")
        inputs = write_pubsub_protos(messages, os.path.join(folder, "inputs"))
        # The generated messages stay referenced here; a worker would not hold them. Out of
        # the collector's sight (with everything imported), they cost neither mode a thing.
        gc.freeze()
        rss_before = harness.vm_hwm_mib()
        emulator_cpu_started = emulator_cpu_seconds(emulator_pid)
        started = time.perf_counter()
        cpu_started = harness.own_cpu_seconds()
        if mode == "beam":
            extra = run_beam(inputs, catalog, lake, table_id)
        else:
            extra = run_floor(inputs, catalog, lake, table_id)
        seconds = time.perf_counter() - started
        cpu_seconds = harness.own_cpu_seconds() - cpu_started
        emulator_cpu = emulator_cpu_seconds(emulator_pid)
        files = sum(len(names) for _, _, names in os.walk(lake))
    if table is not None:
        extra["bigtable_rows"] = count_rows(table)  # the emulator, stopped after, drops it
    emulator_seconds = (
        None if emulator_cpu is None else round(emulator_cpu - emulator_cpu_started, 2)
    )
    return dict(
        extra,
        mode=mode,
        messages=count,
        generated=counts,
        payload_bytes_median=sizes[len(sizes) // 2],
        payload_bytes_mean=round(sum(sizes) / len(sizes)),
        seconds=round(seconds, 2),
        cpu_seconds=round(cpu_seconds, 2),
        emulator_cpu_seconds=emulator_seconds,
        events_per_second=round(count / seconds, 1),
        events_per_cpu_second=round(count / cpu_seconds, 1),
        events_per_cpu_second_with_emulator=(
            None if emulator_seconds is None else round(count / (cpu_seconds + emulator_seconds), 1)
        ),
        parquet_files=files,
        vm_hwm_mib_after_generation=rss_before,
        vm_hwm_mib=harness.vm_hwm_mib(),
        ru_maxrss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def run_beam(inputs, catalog, lake, table_id):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA
    from transforms.dead_letter import error_tables
    from transforms.lake import WriteParquetPartitions, WriteToLake
    from transforms.read import _ReadFromPubSub
    from transforms.validate import ParseAndValidate

    # The SDK harness's state cache is off by default on Dataflow
    # (--max_cache_memory_usage_mb=0); the FnApiRunner's embedded worker has it at 100 MB,
    # and sizing each cached state (objsize) then costs about 0.5 ms per key and bundle.
    # The benchmark's worker is set like Dataflow's.
    worker_handlers.STATE_CACHE_SIZE_MB = 0
    options = PipelineOptions(["--runner=FnApiRunner"])
    pipeline = beam.Pipeline(options=options)
    protos = (
        pipeline
        | "InputFiles" >> beam.Create(inputs)
        | "ReadPubsubProtos" >> beam.FlatMap(read_pubsub_protos).with_output_types(bytes)
    )
    messages = _ReadFromPubSub(SUBSCRIPTION).expand_continued(protos)
    records = messages | "ParseAndValidate" >> ParseAndValidate(catalog)
    profile_step_beam(records.valid, catalog, table_id)
    lake_out = records.valid | "WriteToLake" >> WriteToLake(lake, catalog, 5, 600)
    _ = (
        (records.failed, lake_out["failed"])
        | "CollectFailures" >> beam.Flatten()
        | "ToErrorRows" >> error_tables()
        | "WriteErrorFiles" >> WriteParquetPartitions(lake, {ERRORS_DATASET: ERRORS_SCHEMA}, 5, 600)
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {}
    for counter in result.metrics().query()["counters"]:
        name = f"{counter.key.metric.namespace}:{counter.key.metric.name}"
        counters[name] = counters.get(name, 0) + counter.committed
    return {
        "what": "FnApiRunner, batch, in-process SDK worker",
        "counters": counters,
        "valid": sum(v for k, v in counters.items() if k.startswith("valid:")),
        "lake_rows": sum(
            v
            for k, v in counters.items()
            if k.startswith("lake_rows:") and not k.endswith(ERRORS_DATASET)
        ),
        "error_rows": counters.get(f"lake_rows:{ERRORS_DATASET}", 0),
        "profile_records": sum(v for k, v in counters.items() if k.startswith("profiles:")),
        "bigtable_rows": counters.get("bench:bigtable_rows", 0),
    }


def run_floor(inputs, catalog, lake, table_id):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from domain.dead_letters import ERRORS_SCHEMA, error_row
    from domain.lake_schema import arrow_schema, row_converter
    from domain.parsing import RecordParser
    from domain.records import FailedMessage, RecordError
    from transforms.read import message_from_proto
    from transforms.validate import STEP, _plain_datetime

    parser = RecordParser(catalog)
    schemas = {d: arrow_schema(catalog, d) for d in catalog.datasets}
    converters = {d: row_converter(schema) for d, schema in schemas.items()}
    profiles = ProfileFloor(catalog, table_id)
    rows_by_dataset = {}
    unchecked = {}
    error_rows = []
    profile_records = 0
    messages = (
        message_from_proto(encoded) for path in inputs for encoded in read_pubsub_protos(path)
    )
    for message in messages:
        attributes = dict(message.attributes or {})
        publish_time = _plain_datetime(message.publish_time)
        try:
            record = parser.parse(message.data, attributes, message.message_id, publish_time)
        except RecordError as error:
            failed = FailedMessage.of(
                error, STEP, message.data, attributes, message.message_id, publish_time
            )
            error_rows.append(error_row(failed, time.time()))
            continue
        row = converters[record.dataset](record.entity)
        row.update(
            _record_time=record.record_time,
            _publish_time=record.publish_time,
            _message_id=record.message_id,
            _ingested_at=datetime.datetime.now(datetime.timezone.utc),
        )
        rows_by_dataset.setdefault(record.dataset, []).append(row)
        unchecked.setdefault(record.dataset, []).append(row)
        if sum(map(len, unchecked.values())) == 500:  # the pipeline's check, per batch
            for dataset, rows in unchecked.items():
                pa.Table.from_pylist(rows, schema=schemas[dataset])
            unchecked = {}
        if record.feeds_profile:
            profiles.add(record)
            profile_records += 1
    rows_built = profiles.finish()
    for dataset, rows in rows_by_dataset.items():
        os.makedirs(os.path.join(lake, dataset), exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(rows, schema=schemas[dataset]),
            os.path.join(lake, dataset, "part.parquet"),
        )
    os.makedirs(os.path.join(lake, "_errors"), exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist(error_rows, schema=ERRORS_SCHEMA),
        os.path.join(lake, "_errors", "part.parquet"),
    )
    return {
        "what": "plain Python loop, one process",
        "valid": sum(len(rows) for rows in rows_by_dataset.values()),
        "lake_rows": sum(len(rows) for rows in rows_by_dataset.values()),
        "error_rows": len(error_rows),
        "profile_records": profile_records,
        "bigtable_rows": rows_built,
    }


# ---------------------------------------------------------------------------
# the table


def print_table(figures):
    floor, beam = figures["results"]["floor"], figures["results"]["beam"]
    rows = [row for row in harness.machine_rows(figures) if row[0] != "benchmark cpu"] + [
        (
            "messages",
            f"{figures['messages']} generated (seed fixed, 5% invalid, no "
            f"duplicates): {beam['generated']}; payload median "
            f"{beam['payload_bytes_median']} B, mean {beam['payload_bytes_mean']} B",
        ),
        (
            "measured",
            "parse+validate, lake rows (+ Arrow check per batch) and Parquet files in a "
            "temp folder, error rows and their file, the profile branch's Bigtable rows "
            f"(Bigtable: {figures['bigtable']}); no Pub/Sub",
        ),
        ("", ""),
    ]
    for name, result in (("FnApiRunner", beam), ("plain loop", floor)):
        rows.append(
            (
                name,
                f"{result['events_per_second']:.0f} events/s wall "
                f"({result['seconds']} s), {result['events_per_cpu_second']:.0f} "
                f"events per CPU-second ({result['cpu_seconds']} CPU s)",
            )
        )
        if result.get("emulator_cpu_seconds") is not None:
            rows.append(
                (
                    "",
                    f"the Bigtable emulator used {result['emulator_cpu_seconds']} CPU s "
                    f"meanwhile: {result['events_per_cpu_second_with_emulator']:.0f} "
                    "events per CPU-second of both",
                )
            )
        rows.append(
            (
                "",
                f"valid {result['valid']}, lake rows {result['lake_rows']}, error "
                f"rows {result['error_rows']}, profile records {result['profile_records']}, "
                f"Bigtable rows {result['bigtable_rows']}, Parquet files "
                f"{result['parquet_files']}",
            )
        )
        rows.append(
            (
                "",
                f"peak memory (VmHWM) {result['vm_hwm_mib']} MiB; "
                f"{result['vm_hwm_mib_after_generation']} MiB after generating the "
                "inputs",
            )
        )
        if "marginal" in result:
            marginal = result["marginal"]
            rows.append(
                (
                    "",
                    f"marginal, runs of {marginal['messages'][0]} and "
                    f"{marginal['messages'][1]} ({marginal['seconds'][0]} s, "
                    f"{marginal['cpu_seconds'][0]} CPU s vs {marginal['seconds'][1]} s, "
                    f"{marginal['cpu_seconds'][1]} CPU s): "
                    f"{marginal['events_per_second']:.0f} events/s wall, "
                    f"{marginal['events_per_cpu_second']:.0f} per CPU-second",
                )
            )
    rows += [
        (
            "ratio",
            f"FnApiRunner / plain loop: {figures['ratio_beam_to_floor']} (wall), "
            f"{figures['ratio_beam_to_floor_per_cpu_second']} (per CPU-second), "
            f"{figures['ratio_beam_marginal_to_floor_per_cpu_second']} (marginal, "
            "per CPU-second)",
        ),
        ("target", "10,000 events/s per core (issue #7)"),
    ]
    harness.print_rows("Worker path: the transform chain on the FnApiRunner vs a plain loop", rows)


if __name__ == "__main__":
    main()
