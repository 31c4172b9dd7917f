"""Sustained end-to-end throughput: how fast the pipeline drains a Pub/Sub backlog, beside
a plain Python consumer doing the same work (the floor).

    python -m benchmarks.throughput [--messages N] [--readers R]
        [--window-seconds W] [--deadline-seconds D] [--seed S] [--json]

1. Starts Google's emulators on free ports (state in .local-stack-bench/throughput/),
   creates the topics, subscriptions and table (as the other benchmarks do) and a second
   subscription of the input topic for the floor.
2. Publishes N messages from ingest.dev.generate (seeded; 5% invalid, no duplicates, every
   `_id` its own) to the input topic, and waits until every publish is confirmed. The
   backlog is then in both subscriptions.
3. Starts `python -m pipelines.streaming_ingest` (DirectRunner, all branches: Bigtable,
   lake, dead letter) with --pubsub_readers R and --window_seconds W, and every 0.5 s
   counts the rows of the lake's Parquet files (the footers: every dataset, `_errors`
   included). The backlog is drained when they add up to N. No warm-up record is sent.
   Reads the pipeline process's VmHWM (peak resident memory) from /proc before stopping it.
4. The floor, in a child process of its own: pulls the same backlog from the second
   subscription with google-cloud-pubsub (max_messages 1000 per pull), and for each
   message RecordParser.parse + domain.lake_schema.row_converter (or error_row for a
   failure); per pull, the cells of the profile-enabled records (domain.profile_writes:
   fragment_cells into PendingRows, the pipeline's own blind writes) in one Bigtable
   MutateRows (mutation_batches), then an ack; at the end
   one Parquet file per dataset. Its VmHWM is its own.

Figures: events/s from the pipeline's start (its process start to the last row counted:
includes Beam's start and the last lake window), and from the first lake rows seen to
the last (closer to the steady rate); the floor's events/s from its first pull to its
last file written; the ratio pipeline / floor.
"""

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import time

from benchmarks import harness
from benchmarks.throughput_floor import FLOOR_SUBSCRIPTION, run_floor

STATE_DIR = harness.ROOT / ".local-stack-bench" / "throughput"
POLL_SECONDS = 0.5
INVALID_SHARE = 0.05


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_arguments(argv)
    if options.floor_worker:
        print(json.dumps(run_floor(options.messages)))
        return
    figures = run(options, harness.command_line("throughput", argv))
    harness.show(figures, options.json, print_table)


def parse_arguments(argv):
    parser = harness.argument_parser(
        "throughput",
        "How fast the pipeline drains a backlog on the local stack, beside a "
        "plain Python consumer doing the same work.",
    )
    parser.add_argument("--messages", type=int, default=20000, help="the backlog")
    parser.add_argument("--readers", type=int, default=1, help="the pipeline's --pubsub_readers")
    parser.add_argument(
        "--window-seconds",
        type=int,
        default=5,
        help="the pipeline's --window_seconds (the lake's window)",
    )
    parser.add_argument(
        "--deadline-seconds",
        type=float,
        default=300,
        help="how long the pipeline may take to drain the backlog",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--floor-worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.messages < 1 or options.readers < 1 or options.window_seconds < 1:
        parser.error("--messages, --readers and --window-seconds must be at least 1")
    return options


def run(options, command_line):
    from google.cloud import pubsub_v1

    from domain.catalog import Catalog
    from ingest import admin
    from ingest.dev import local_stack

    machine = harness.describe_machine()
    names = harness.NAMES
    bench = harness.Bench(STATE_DIR)
    local_stack.stop(STATE_DIR)
    harness.progress("Starting the emulators on free ports")
    stack = local_stack.start(STATE_DIR, pubsub_port=0, bigtable_port=0)
    publisher = None
    try:
        os.environ.update(local_stack.environment(stack, names["project"]))
        admin.create_resources(**names, catalog=Catalog.load(str(harness.ROOT / harness.CATALOG)))
        subscriber = pubsub_v1.SubscriberClient()
        topic = f"projects/{names['project']}/topics/{names['topic']}"
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(names["project"], FLOOR_SUBSCRIPTION),
                "topic": topic,
                "ack_deadline_seconds": 60,
            }
        )
        subscriber.close()

        publisher = pubsub_v1.PublisherClient()
        generated = publish_backlog(publisher, topic, options)

        pipeline_arguments = [
            f"--window_seconds={options.window_seconds}",
            f"--pubsub_readers={options.readers}",
        ]
        harness.progress(
            f"Starting the pipeline with {options.readers} reader(s); its log: "
            f"{bench.pipeline_log.relative_to(harness.ROOT)}"
        )
        cpu_before = time.process_time()
        started = time.monotonic()
        started_wall = time.time()
        bench.pipeline = harness.start_pipeline(bench, pipeline_arguments)
        try:
            drain = wait_for_drain(bench, options, started)
            drain.update(ingestion_times(bench.lake, started_wall, options.messages))
            drain["vm_hwm_mib"] = harness.vm_hwm_mib(bench.pipeline.pid)
            cpu = harness.process_cpu_seconds(bench.pipeline.pid)
            drain["pipeline_cpu_seconds"] = None if cpu is None else round(cpu, 1)
        finally:
            harness.progress("Stopping the pipeline")
            harness.stop_pipeline(bench.pipeline)
        harness.finish_machine(machine, cpu_before)

        harness.progress(f"Running the floor: a plain consumer of {FLOOR_SUBSCRIPTION}")
        machine["load_average_before_floor"] = round(os.getloadavg()[0], 2)
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.throughput",
                "--floor-worker",
                "--messages",
                str(options.messages),
            ],
            cwd=harness.ROOT,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            timeout=options.deadline_seconds + 60,
        ).stdout
        floor = json.loads(output.strip().splitlines()[-1])
    finally:
        harness.progress("Stopping the emulators")
        if publisher is not None:
            publisher.stop()
        local_stack.stop(STATE_DIR)

    return summarize(options, command_line, machine, generated, drain, floor)


def publish_backlog(publisher, topic, options):
    from ingest.dev.generate import RecordGenerator

    generator = RecordGenerator(seed=options.seed, invalid_share=INVALID_SHARE, duplicate_share=0)
    harness.progress(f"Publishing a backlog of {options.messages} generated messages")
    started = time.monotonic()
    futures, sizes = [], []
    for message in generator.messages(options.messages):
        sizes.append(len(message.payload))
        futures.append(publisher.publish(topic, message.payload, dataset=message.dataset))
    failed = 0
    for future in futures:
        try:
            future.result(timeout=60)
        except Exception:  # counted: the drain then cannot reach N
            failed += 1
    if failed:
        raise SystemExit(f"{failed} of {options.messages} publishes failed")
    sizes.sort()
    return {
        "counts": dict(generator.counts),
        "invalid_classes": dict(generator.invalid_classes),
        "payload_bytes_median": sizes[len(sizes) // 2],
        "payload_bytes_mean": round(sum(sizes) / len(sizes)),
        "publish_seconds": round(time.monotonic() - started, 1),
    }


class LakeCounter:
    """Rows in the lake's Parquet files, from their footers; a file, once renamed into
    place, does not change, so each is read once."""

    def __init__(self, lake):
        self.pattern = str(lake / "*" / "*" / "*" / "*.parquet")
        self.rows = {}  # path -> rows

    def count(self):
        import pyarrow.parquet as pq

        for path in glob.glob(self.pattern):
            if path not in self.rows:
                self.rows[path] = pq.read_metadata(path).num_rows
        return sum(self.rows.values())

    def by_dataset(self):
        totals = {}
        for path, rows in self.rows.items():
            dataset = path[len(self.pattern.split("*")[0]) :].split(os.sep)[0]
            totals[dataset] = totals.get(dataset, 0) + rows
        return totals


def wait_for_drain(bench, options, started):
    counter = LakeCounter(bench.lake)
    total = options.messages
    first_rows_at = first_rows = None
    reached = {}  # fraction -> seconds since start
    last_report = time.monotonic()
    rows = 0
    while True:
        bench.check_pipeline_running()
        rows = counter.count()
        now = time.monotonic()
        if rows and first_rows_at is None:
            first_rows_at, first_rows = now, rows
        for fraction in (0.1, 0.5, 0.9, 1.0):
            if fraction not in reached and rows >= fraction * total:
                reached[fraction] = round(now - started, 1)
        if rows >= total or now - started > options.deadline_seconds:
            break
        if now - last_report >= harness.PROGRESS_EVERY_SECONDS:
            harness.progress(f"  {rows} of {total} rows in the lake after {now - started:.0f} s")
            last_report = now
        time.sleep(POLL_SECONDS)
    seconds = now - started
    steady = None
    if first_rows_at is not None and rows > first_rows and now > first_rows_at:
        steady = round((rows - first_rows) / (now - first_rows_at), 1)
    return {
        "drained": rows >= total,
        "rows": rows,
        "rows_by_dataset": counter.by_dataset(),
        "files": len(counter.rows),
        "seconds": round(seconds, 1),
        "first_rows_after_seconds": (round(first_rows_at - started, 1) if first_rows_at else None),
        "reached_seconds": {f"{int(f * 100)}%": s for f, s in reached.items()},
        "events_per_second": round(rows / seconds, 1),
        "events_per_second_after_first_rows": steady,
    }


def ingestion_times(lake, started_wall, total):
    """When the rows were made, by their `_ingested_at` (stamped by ToLakeRows, or by the
    dead letter's ToErrorRows, as each record went through): when the work was done, not
    when the lake window holding it was closed and written."""
    import pyarrow.parquet as pq

    stamps = []
    for path in glob.glob(str(lake / "*" / "*" / "*" / "*.parquet")):
        column = pq.read_table(path, columns=["_ingested_at"]).column(0)
        stamps.extend(value.timestamp() for value in column.to_pylist() if value)
    if not stamps:
        return {}
    stamps.sort()
    tenth, ninetieth = stamps[len(stamps) // 10], stamps[(len(stamps) * 9) // 10 - 1]
    last = stamps[-1] - started_wall
    return {
        "ingested_first_after_seconds": round(stamps[0] - started_wall, 1),
        "ingested_last_after_seconds": round(last, 1),
        "events_per_second_by_ingested_at": round(len(stamps) / last, 1),
        "events_per_second_10_to_90_percent": (
            round(0.8 * len(stamps) / (ninetieth - tenth), 1) if ninetieth > tenth else None
        ),
    }


# ---------------------------------------------------------------------------
# figures


def summarize(options, command_line, machine, generated, drain, floor):
    ratio = None
    if floor["events_per_second"]:
        ratio = round(drain["events_per_second"] / floor["events_per_second"], 3)
    steady_ratio = None
    if drain.get("events_per_second_10_to_90_percent") and floor["events_per_second"]:
        steady_ratio = round(
            drain["events_per_second_10_to_90_percent"] / floor["events_per_second"], 3
        )
    return {
        "command": command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {
            "messages": options.messages,
            "pubsub_readers": options.readers,
            "window_seconds": options.window_seconds,
            "seed": options.seed,
            "deadline_seconds": options.deadline_seconds,
        },
        "generated": generated,
        "pipeline": drain,
        "floor": floor,
        "ratio_pipeline_to_floor": ratio,
        "ratio_pipeline_10_to_90_percent_to_floor": steady_ratio,
    }


def print_table(figures):
    settings, generated = figures["settings"], figures["generated"]
    pipeline, floor = figures["pipeline"], figures["floor"]
    drained = (
        "drained"
        if pipeline["drained"]
        else f"NOT drained: {pipeline['rows']} of {settings['messages']} by the deadline"
    )
    rows = [row for row in harness.machine_rows(figures) if row[0] != "benchmark cpu"] + [
        (
            "settings",
            f"backlog {settings['messages']}, {settings['pubsub_readers']} Pub/Sub "
            f"reader(s), lake window {settings['window_seconds']} s, seed "
            f"{settings['seed']}",
        ),
        (
            "backlog",
            f"{generated['counts']}; payload median {generated['payload_bytes_median']}"
            f" B, mean {generated['payload_bytes_mean']} B; published in "
            f"{generated['publish_seconds']} s",
        ),
        ("", ""),
        (
            "pipeline",
            f"{drained} in {pipeline['seconds']} s from its start: "
            f"{pipeline['events_per_second']:.0f} events/s",
        ),
        (
            "",
            f"first lake rows visible after {pipeline['first_rows_after_seconds']} s; from "
            f"then to drained {pipeline['events_per_second_after_first_rows']} events/s",
        ),
        ("", f"reached (s from start): {pipeline['reached_seconds']}"),
        (
            "",
            f"by _ingested_at: first {pipeline.get('ingested_first_after_seconds')} s, last "
            f"{pipeline.get('ingested_last_after_seconds')} s after start: "
            f"{pipeline.get('events_per_second_by_ingested_at')} events/s from start, "
            f"{pipeline.get('events_per_second_10_to_90_percent')} events/s from the 10% "
            "to the 90% row",
        ),
        ("", f"rows: {pipeline['rows_by_dataset']} in {pipeline['files']} files"),
        (
            "",
            f"peak memory (VmHWM) {pipeline['vm_hwm_mib']} MiB; CPU "
            f"{pipeline['pipeline_cpu_seconds']} s",
        ),
        (
            "floor",
            f"{floor['messages']} in {floor['seconds']} s: "
            f"{floor['events_per_second']:.0f} events/s ({floor['cpu_seconds']} CPU s, "
            f"{floor['pulls']} pulls, {floor['mutate_rows_calls']} MutateRows of "
            f"{floor['bigtable_rows']} rows)",
        ),
        ("", f"peak memory (VmHWM) {floor['vm_hwm_mib']} MiB"),
        (
            "ratio",
            f"pipeline / floor {figures['ratio_pipeline_to_floor']} (from start), "
            f"{figures['ratio_pipeline_10_to_90_percent_to_floor']} (10% to 90% by _ingested_at)",
        ),
        ("target", "2,000 events/s locally (issue #7)"),
    ]
    harness.print_rows("Throughput: draining a backlog on the local stack", rows)


if __name__ == "__main__":
    main()
