"""Lake freshness: from a record's publish to the moment a query of the lake sees it.

    python -m benchmarks.lake_freshness [--rate R] [--seconds S] [--window-seconds W]
        [--deadline-seconds D] [--json]

Starts Google's emulators on free ports (state in .local-stack-bench/lake-freshness/),
starts `python -m pipelines.streaming_ingest` on the DirectRunner with the lake window W
and waits until a warm-up record reaches Bigtable. It then publishes bare profile records
of dataset crm-profiles at a steady rate, each with its own `_id`, noting the time just
before each publish call. Every 250 ms a poller runs a DuckDB query of the dataset's
Parquet files and notes when each `_id` first appears. A record not seen within the
deadline after the last publish is lost: it stays in the quantiles, as slower than any
record seen. Prints the figures (or JSON), in seconds and in multiples of W, and stops
everything, whatever happens. See benchmarks/README.md.
"""

import datetime
import glob
import math
import sys
import time

import duckdb

from benchmarks import harness
from benchmarks.harness import nearest_rank
from benchmarks.publishing import VisibilityPoller, publish_steadily, wait_until_seen

STATE_DIR = harness.ROOT / ".local-stack-bench" / "lake-freshness"
POLL_INTERVAL_SECONDS = 0.250
QUERY = "SELECT _id FROM read_parquet(?, hive_partitioning=true)"
FILES_QUERY = (
    "SELECT _id, epoch(_ingested_at), filename "
    "FROM read_parquet(?, hive_partitioning=true, filename=true)"
)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_arguments(argv)
    command_line = harness.command_line("lake_freshness", argv)

    machine = harness.describe_machine()
    machine["duckdb"] = duckdb.__version__
    pipeline_arguments = [f"--window_seconds={options.window_seconds}"]
    with harness.running_pipeline(
        STATE_DIR,
        pipeline_arguments,
        f"Starting the pipeline with a {options.window_seconds} s lake window",
    ) as bench:
        pattern = str(bench.lake / harness.DATASET / "*" / "*" / "*.parquet")
        poller = VisibilityPoller(LakeQuery(pattern).visible, POLL_INTERVAL_SECONDS)
        poller.start()
        cpu_before = time.process_time()
        try:
            publishing = publish_steadily(
                bench, poller, options, where="the lake", key_of=lambda record_id, email: record_id
            )
            wait_until_seen(bench, poller, publishing["last_publish"], options.deadline_seconds)
        finally:
            poller.stop()
        if poller.error is not None:
            raise poller.error
        harness.finish_machine(machine, cpu_before)
        lake = read_lake(pattern)
        figures = summarize(options, command_line, machine, bench, publishing, poller, lake)

    harness.show(figures, options.json, print_table)


def parse_arguments(argv):
    parser = harness.argument_parser(
        "lake_freshness",
        "Freshness of the lake: from publish to the record seen by a DuckDB "
        "query of the Parquet files, for profile records on the local stack.",
    )
    parser.add_argument("--rate", type=float, default=20, help="records published per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long to publish for")
    parser.add_argument(
        "--window-seconds",
        type=int,
        default=10,
        help="the pipeline's --window_seconds (the lake's window)",
    )
    parser.add_argument(
        "--deadline-seconds",
        type=float,
        default=None,
        help="after the last publish, how long to wait for the records "
        "not yet seen before counting them lost (default: the "
        "window plus 60 s)",
    )
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    if options.window_seconds < 1:
        parser.error("--window-seconds must be at least 1")
    if options.deadline_seconds is None:
        options.deadline_seconds = options.window_seconds + 60
    return options


# ---------------------------------------------------------------------------
# querying the lake


class LakeQuery:
    """Which of the `_id`s asked for a DuckDB query of the dataset's files returns."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.connection = duckdb.connect()

    def visible(self, record_ids):
        # DuckDB fails on a pattern that matches no file: an empty lake shows nothing.
        # Files only appear (renamed into place when complete), so none can vanish here.
        if not glob.glob(self.pattern):
            return []
        rows = self.connection.execute(QUERY, [self.pattern]).fetchall()
        found = {row[0] for row in rows}
        return [record_id for record_id in record_ids if record_id in found]


def read_lake(pattern):
    """The dataset's files, and each record's ingestion time and file."""
    files = sorted(glob.glob(pattern))
    rows = []
    if files:
        with duckdb.connect() as connection:
            rows = connection.execute(FILES_QUERY, [pattern]).fetchall()
    return {
        "files": files,
        "ingested_at": {record_id: ingested for record_id, ingested, _ in rows},
        "file_of": {record_id: path for record_id, _, path in rows},
    }


# ---------------------------------------------------------------------------
# figures


def seconds(value):
    return None if math.isinf(value) else round(value, 2)


def summarize(options, command_line, machine, bench, publishing, poller, lake):
    published_at = publishing["published_at"]
    window = options.window_seconds
    delivered, freshness = harness.delivered_and_latencies(publishing, poller)
    seen = [value for value in freshness if not math.isinf(value)]
    queries = sorted(poller.read_seconds)
    quantiles = {}
    if freshness:
        quantiles = {
            name: nearest_rank(freshness, fraction)
            for name, fraction in (
                ("min", 0),
                ("p50", 0.50),
                ("p95", 0.95),
                ("p99", 0.99),
                ("max", 1.0),
            )
        }

    # Each record's window, from its ingestion time as the pipeline windows it: how long
    # after the window's end the record was seen (the wait for the watermark, the write
    # and the poll), and whether the window closed while records were still published.
    record_ids = {number: publishing["keys"][number] for number in delivered}
    wall_minus_monotonic = time.time() - time.monotonic()
    last_publish_wall = publishing["last_publish"] + wall_minus_monotonic
    after_window_end = []
    closed_while_publishing, open_at_last_publish = [], []
    for number in delivered:
        ingested = lake["ingested_at"].get(record_ids[number])
        window_end = None if ingested is None else (math.floor(ingested / window) + 1) * window
        value = math.inf  # lost
        if number in poller.seen_at:
            value = poller.seen_at[number] - published_at[number]
            if window_end is not None:
                seen_wall = poller.seen_at[number] + wall_minus_monotonic
                after_window_end.append(seen_wall - window_end)
        if window_end is not None and window_end <= last_publish_wall:
            closed_while_publishing.append(value)
        else:
            open_at_last_publish.append(value)
    after_window_end.sort()
    measured_files = {
        lake["file_of"][record_id]
        for record_id in record_ids.values()
        if record_id in lake["file_of"]
    }

    return {
        "command": command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {
            "rate_per_second": options.rate,
            "seconds": options.seconds,
            "window_seconds": window,
            "deadline_seconds_after_last_publish": options.deadline_seconds,
            "poll_interval_seconds": POLL_INTERVAL_SECONDS,
        },
        "warm_up_seconds": round(bench.warm_up_seconds, 2),
        "window_seconds": window,
        "published": len(delivered),
        "publish_failed": len(publishing["failed"]),
        "seen": len(seen),
        "lost": len(delivered) - len(seen),
        "publish_rate_achieved_per_second": harness.publish_rate_achieved(publishing),
        "publish_most_behind_schedule_ms": harness.milliseconds(publishing["most_behind"]),
        "freshness_samples": len(freshness),
        # nearest rank over every published record; null = lost
        "freshness_seconds": {name: seconds(value) for name, value in quantiles.items()},
        "freshness_windows": {
            name: None if math.isinf(value) else round(value / window, 2)
            for name, value in quantiles.items()
        },
        "freshness_max_seen_seconds": seconds(seen[-1]) if seen else None,
        # a lost record counts in its window if it reached a file later, else in the second
        "freshness_by_window": {
            "closed_while_publishing": group_figures(closed_while_publishing),
            "open_at_last_publish": group_figures(open_at_last_publish),
        },
        "seen_after_window_end_seconds": {
            "min": seconds(after_window_end[0]) if after_window_end else None,
            "p50": seconds(nearest_rank(after_window_end, 0.5)) if after_window_end else None,
            "p99": seconds(nearest_rank(after_window_end, 0.99)) if after_window_end else None,
            "max": seconds(after_window_end[-1]) if after_window_end else None,
        },
        "freshness_seconds_by_record": [  # in publish order; null = lost, or failed
            seconds(poller.seen_at[number] - published_at[number])
            if number in poller.seen_at
            else None
            for number in sorted(published_at)
        ],
        "lost_records": sorted(number for number in delivered if number not in poller.seen_at),
        "files_written": len(lake["files"]),
        "files_with_measured_records": len(measured_files),
        "late_firing_files": sum(1 for path in lake["files"] if pane_index(path) > 0),
        "poller_resolution_ms": harness.poller_resolution_ms(poller),
        "poller_query_ms": {
            "p50": harness.milliseconds(nearest_rank(queries, 0.5)) if queries else None,
            "max": harness.milliseconds(queries[-1]) if queries else None,
        },
        "poller_queries": len(queries),
    }


def group_figures(values):
    values = sorted(values)
    if not values:
        return {"records": 0, "p50": None, "p99": None, "max": None}
    return {
        "records": len(values),
        "p50": seconds(nearest_rank(values, 0.5)),
        "p99": seconds(nearest_rank(values, 0.99)),
        "max": seconds(values[-1]),
    }


def pane_index(path):
    """part-<start>-<end>-<shard>-<pane>-<run>.parquet -> pane; above 0 is a late firing."""
    return int(path.rsplit("/", 1)[-1].split("-")[4])


def print_table(figures):
    settings = figures["settings"]
    window = figures["window_seconds"]
    freshness = figures["freshness_seconds"]
    in_windows = figures["freshness_windows"]
    after_end = figures["seen_after_window_end_seconds"]
    resolution = figures["poller_resolution_ms"]

    def shown(name):
        if freshness.get(name) is None:
            return f"{name} lost"
        return f"{name} {freshness[name]:.1f} s = {in_windows[name]:.2f} W"

    def shown_group(group):
        if not group["records"]:
            return "0 records"
        return f"{group['records']} records: " + ", ".join(
            f"{name} lost"
            if group[name] is None
            else f"{name} {group[name]:.1f} s = {group[name] / window:.2f} W"
            for name in ("p50", "p99", "max")
        )

    rows = harness.machine_rows(figures) + [
        ("duckdb", figures["machine"]["duckdb"]),
        (
            "settings",
            f"rate {settings['rate_per_second']:g}/s for {settings['seconds']:g} s, "
            f"deadline {settings['deadline_seconds_after_last_publish']:g} s after "
            f"the last publish, a query every "
            f"{settings['poll_interval_seconds'] * 1000:.0f} ms",
        ),
        (
            "warm-up",
            f"first record in Bigtable {figures['warm_up_seconds']} s after its "
            "publish (the pipeline is up; not in the figures)",
        ),
        ("", ""),
        ("window", f"W = {window} s (the lake's window, by ingestion time)"),
        (
            "published",
            f"{figures['published']} ({figures['publish_failed']} failed to publish, not counted)",
        ),
        ("seen", figures["seen"]),
        ("lost", f"{figures['lost']} (not seen by a query by the deadline)"),
        (
            "publish rate",
            f"{figures['publish_rate_achieved_per_second']}/s achieved; at "
            f"most {figures['publish_most_behind_schedule_ms']} ms behind "
            "schedule",
        ),
        ("", ""),
        ("freshness", "  ".join(shown(name) for name in ("p50", "p95", "p99", "max"))),
        (
            "",
            f"publish call -> first query that returned the _id; nearest rank over all "
            f"{figures['freshness_samples']} published records, lost ones included "
            "as slowest",
        ),
        ("", f"{shown('min')}; slowest seen: {figures['freshness_max_seen_seconds']} s"),
        (
            "by window",
            "closed while publishing, "
            f"{shown_group(figures['freshness_by_window']['closed_while_publishing'])}",
        ),
        (
            "",
            "open at the last publish, "
            f"{shown_group(figures['freshness_by_window']['open_at_last_publish'])}",
        ),
        (
            "",
            f"seen after its window's end: min {after_end['min']} s, p50 "
            f"{after_end['p50']} s, p99 {after_end['p99']} s, max {after_end['max']} s",
        ),
        (
            "",
            f"lost records (numbered from 0 in publish order, of "
            f"{figures['published'] + figures['publish_failed']}): "
            f"{harness.shown_numbers(figures['lost_records'])}",
        ),
        (
            "files",
            f"{figures['files_written']} Parquet files in crm-profiles, "
            f"{figures['files_with_measured_records']} of them with measured records, "
            f"{figures['late_firing_files']} late firings",
        ),
        (
            "poller",
            f"resolution p50 {resolution['p50']} ms, p99 {resolution['p99']} ms, "
            f"max {resolution['max']} ms (a freshness is overstated by at most this)",
        ),
        (
            "",
            f"{figures['poller_queries']} DuckDB queries, p50 "
            f"{figures['poller_query_ms']['p50']} ms, max "
            f"{figures['poller_query_ms']['max']} ms each",
        ),
    ]
    harness.print_rows("Lake freshness: publish -> record seen by a DuckDB query of the lake", rows)


if __name__ == "__main__":
    main()
