"""Latency of the profile branch: from a record's publish to its row visible in Bigtable.

    python -m benchmarks.profile_latency [--rate R] [--seconds S] [--readers N]
        [--window-seconds W] [--deadline-seconds D] [--json]

Starts Google's emulators on free ports (state in .local-stack-bench/), creates the
topics, subscriptions and table, starts `python -m pipelines.streaming_ingest` on the
DirectRunner and waits until a warm-up record reaches Bigtable. It then publishes bare
profile records of dataset crm-profiles at a steady rate, each with its own Email
identity, noting the time just before each publish call. A poller reads the rows still
pending from Bigtable every 10 ms and notes when each becomes visible. A record not seen
within the deadline after the last publish is lost: it stays in the quantiles, as slower
than any record seen. Prints the figures (or JSON) and stops everything, whatever happens.
See benchmarks/README.md.
"""

import datetime
import math
import sys
import time

from benchmarks import harness
from benchmarks.harness import milliseconds, nearest_rank
from benchmarks.publishing import publish_steadily, wait_until_seen
from benchmarks.row_poller import RowPollerProcess
from domain.profile_table import row_key

STATE_DIR = harness.ROOT / ".local-stack-bench"
POLL_INTERVAL_SECONDS = 0.010


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_arguments(argv)
    command_line = harness.command_line("profile_latency", argv)

    machine = harness.describe_machine()
    pipeline_arguments = [
        f"--window_seconds={options.window_seconds}",
        f"--pubsub_readers={options.readers}",
    ]
    with harness.running_pipeline(
        STATE_DIR,
        pipeline_arguments,
        f"Starting the pipeline with {options.readers} Pub/Sub reader(s)",
    ) as bench:
        poller = RowPollerProcess(bench.run_id, POLL_INTERVAL_SECONDS, harness.NAMES)
        poller.start()
        cpu_before = time.process_time()
        pipeline_cpu_before = harness.process_cpu_seconds(bench.pipeline.pid)
        emulators_cpu_before = emulators_cpu(bench)
        try:
            publishing = publish_steadily(
                bench,
                poller,
                options,
                where="Bigtable",
                key_of=lambda record_id, email: row_key("Email", email),
            )
            wait_until_seen(bench, poller, publishing["last_publish"], options.deadline_seconds)
            pipeline_cpu = harness.process_cpu_seconds(bench.pipeline.pid)
            emulators_cpu_after = emulators_cpu(bench)
        finally:
            poller.stop()
        if poller.error is not None:
            raise poller.error
        harness.finish_machine(machine, cpu_before)
        machine["poller_cpu_seconds"] = poller.cpu_seconds and round(poller.cpu_seconds, 1)
        if pipeline_cpu is not None and pipeline_cpu_before is not None:
            machine["pipeline_cpu_seconds"] = round(pipeline_cpu - pipeline_cpu_before, 1)
        for name, seconds in emulators_cpu_after.items():
            if seconds is not None and emulators_cpu_before.get(name) is not None:
                machine[f"{name}_emulator_cpu_seconds"] = round(
                    seconds - emulators_cpu_before[name], 1
                )
        figures = summarize(
            options, command_line, machine, bench.warm_up_seconds, publishing, poller
        )

    harness.show(figures, options.json, print_table)


def emulators_cpu(bench):
    """{"pubsub": CPU seconds so far, "bigtable": ...} of the emulators run as processes
    (None for containers, or where /proc cannot be read)."""
    return {
        emulator.name: harness.process_cpu_seconds(emulator.pid) if emulator.pid else None
        for emulator in bench.stack.emulators
    }


def parse_arguments(argv):
    parser = harness.argument_parser(
        "profile_latency",
        "Latency from publish to the row visible in Bigtable, for profile "
        "records on the local stack.",
    )
    parser.add_argument("--rate", type=float, default=20, help="records published per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long to publish for")
    parser.add_argument("--readers", type=int, default=1, help="the pipeline's --pubsub_readers")
    parser.add_argument(
        "--window-seconds",
        type=int,
        default=60,
        help="the pipeline's --window_seconds (the lake's window)",
    )
    parser.add_argument(
        "--deadline-seconds",
        type=float,
        default=60,
        help="after the last publish, how long to wait for the records "
        "not yet seen before counting them lost",
    )
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    if options.readers < 1 or options.window_seconds < 1:
        parser.error("--readers and --window-seconds must be at least 1")
    return options


# ---------------------------------------------------------------------------
# figures


def summarize(options, command_line, machine, warm_up_seconds, publishing, poller):
    published_at = publishing["published_at"]
    delivered, latencies = harness.delivered_and_latencies(publishing, poller)
    seen = [latency for latency in latencies if not math.isinf(latency)]
    reads = sorted(poller.read_seconds)
    quantiles = {}
    if latencies:
        quantiles = {
            name: milliseconds(nearest_rank(latencies, fraction))
            for name, fraction in (
                ("min", 0),
                ("p50", 0.50),
                ("p95", 0.95),
                ("p99", 0.99),
                ("max", 1.0),
            )
        }
    return {
        "command": command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {
            "rate_per_second": options.rate,
            "seconds": options.seconds,
            "pubsub_readers": options.readers,
            "window_seconds": options.window_seconds,
            "deadline_seconds_after_last_publish": options.deadline_seconds,
        },
        "warm_up_seconds": round(warm_up_seconds, 2),
        "published": len(delivered),
        "publish_failed": len(publishing["failed"]),
        "seen": len(seen),
        "lost": len(delivered) - len(seen),
        "publish_rate_achieved_per_second": harness.publish_rate_achieved(publishing),
        "publish_most_behind_schedule_ms": milliseconds(publishing["most_behind"]),
        "publish_calls": publishing["publish_calls"],
        "latency_samples": len(latencies),
        "latency_ms": quantiles,  # nearest rank over every published record; null = lost
        "latency_max_seen_ms": milliseconds(seen[-1]) if seen else None,
        "latency_ms_by_record": [  # in publish order; null = lost, or failed to publish
            milliseconds(poller.seen_at[number] - published_at[number])
            if number in poller.seen_at
            else None
            for number in sorted(published_at)
        ],
        "lost_records": sorted(number for number in delivered if number not in poller.seen_at),
        "latency_over_1_s": sum(1 for latency in latencies if latency > 1),
        "latency_over_10_s": sum(1 for latency in latencies if latency > 10),
        "poller_resolution_ms": harness.poller_resolution_ms(poller),
        "poller_read_ms_p50": milliseconds(nearest_rank(reads, 0.5)) if reads else None,
        "poller_reads": len(reads),
    }


def print_table(figures):
    settings = figures["settings"]
    latency = figures["latency_ms"]
    resolution = figures["poller_resolution_ms"]

    def shown(value):
        return "lost" if value is None else f"{value:.0f}"

    rows = harness.machine_rows(figures) + [
        (
            "settings",
            f"rate {settings['rate_per_second']:g}/s for {settings['seconds']:g} s, "
            f"{settings['pubsub_readers']} Pub/Sub reader(s), lake window "
            f"{settings['window_seconds']} s, deadline "
            f"{settings['deadline_seconds_after_last_publish']:g} s after the "
            "last publish",
        ),
        (
            "warm-up",
            f"first record visible {figures['warm_up_seconds']} s after its "
            "publish (includes the pipeline's start; not in the figures)",
        ),
        ("", ""),
        (
            "published",
            f"{figures['published']} ({figures['publish_failed']} failed to publish, not counted)",
        ),
        ("seen", figures["seen"]),
        ("lost", f"{figures['lost']} (not visible by the deadline)"),
        (
            "publish rate",
            f"{figures['publish_rate_achieved_per_second']}/s achieved; at "
            f"most {figures['publish_most_behind_schedule_ms']} ms behind "
            f"schedule; {figures['publish_calls']} Publish calls",
        ),
        ("", ""),
        (
            "latency (ms)",
            "  ".join(
                f"{name} {shown(latency.get(name))}" for name in ("min", "p50", "p95", "p99", "max")
            ),
        ),
        (
            "",
            f"publish call -> row visible; nearest rank over all "
            f"{figures['latency_samples']} published records, lost ones included "
            "as slowest",
        ),
        (
            "",
            f"over 1 s: {figures['latency_over_1_s']}, over 10 s: "
            f"{figures['latency_over_10_s']}; slowest seen: "
            f"{figures['latency_max_seen_ms'] or 'none'} ms",
        ),
        (
            "",
            f"lost records (numbered from 0 in publish order, of "
            f"{figures['published'] + figures['publish_failed']}): "
            f"{harness.shown_numbers(figures['lost_records'])}",
        ),
        (
            "poller",
            f"resolution p50 {resolution['p50']} ms, p99 {resolution['p99']} ms, "
            f"max {resolution['max']} ms (a latency is overstated by at most this)",
        ),
        (
            "",
            f"{figures['poller_reads']} reads of the pending rows, p50 "
            f"{figures['poller_read_ms_p50']} ms each",
        ),
    ]
    harness.print_rows("Profile branch latency: publish -> row visible in Bigtable", rows)


if __name__ == "__main__":
    main()
