"""Latency of the profile branch: from a record's publish to its row visible in Bigtable.

    python -m tests.benchmarks.profile_latency [--rate R] [--seconds S] [--readers N]
        [--window-seconds W] [--deadline-seconds D] [--json]

Starts Google's emulators on free ports (state in .local-stack-bench/), creates the
topics, subscriptions and table, starts `python -m pipelines.streaming_ingest` on the
DirectRunner and waits until a warm-up record reaches Bigtable. It then publishes bare
profile records of dataset crm-profiles at a steady rate, each with its own Email
identity, noting the time just before each publish call. A poller reads the rows still
pending from Bigtable every 10 ms and notes when each becomes visible. A record not seen
within the deadline after the last publish is lost: it stays in the quantiles, as slower
than any record seen. Prints the figures (or JSON) and stops everything, whatever happens.
See tests/benchmarks/README.md.
"""
import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import apache_beam
from google.cloud import pubsub_v1
from google.cloud.bigtable import row_filters
from google.cloud.bigtable.row_set import RowSet

from ingest import local_stack
from ingest.profiles import open_table
from transforms.catalog import Catalog
from transforms.identity import row_key
from transforms.profile_store import ATTRIBUTES_FAMILY

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".local-stack-bench"
LAKE = STATE_DIR / "lake"
PIPELINE_LOG = STATE_DIR / "pipeline.log"
CATALOG = "examples/catalog.yaml"
DATASET = "crm-profiles"
NAMES = dict(project="demo-project", topic="bench-input", subscription="bench-input-sub",
             dead_letter_topic="bench-dead-letter",
             dead_letter_subscription="bench-dead-letter-sub",
             instance="bench-instance", table="profiles")

POLL_INTERVAL_SECONDS = 0.010
ROWS_PER_READ = 500
STARTUP_DEADLINE_SECONDS = 180
PROGRESS_EVERY_SECONDS = 5
PIPELINE_STOP_SECONDS = 20

# A record is visible once its row has the attribute the record writes. The pipeline
# writes all of a row's mutations in one MutateRows entry, so the row appears whole.
VISIBLE_COLUMN = b"/loyalty/points"
VISIBLE_FILTER = row_filters.RowFilterChain(filters=[
    row_filters.ColumnRangeFilter(ATTRIBUTES_FAMILY, start_column=VISIBLE_COLUMN,
                                  end_column=VISIBLE_COLUMN),
    row_filters.CellsRowLimitFilter(1),
    row_filters.StripValueTransformerFilter(True),
])


def main(argv=None):
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    command_line = "python -m tests.benchmarks.profile_latency " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    # A SIGTERM ends the benchmark through its `finally`, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    machine = describe_machine()
    local_stack.stop(STATE_DIR)  # what a killed earlier run may have left
    progress("Starting the emulators on free ports")
    stack = local_stack.start(STATE_DIR, pubsub_port=0, bigtable_port=0)
    pipeline = None
    publisher = None
    try:
        os.environ.update(local_stack.environment(stack, NAMES["project"]))
        local_stack.create_resources(**NAMES, catalog=Catalog.load(str(ROOT / CATALOG)))
        table = open_table(NAMES["project"], NAMES["instance"], NAMES["table"])
        publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))
        topic = publisher.topic_path(NAMES["project"], NAMES["topic"])
        run_id = uuid.uuid4().hex[:8]

        progress(f"Starting the pipeline with {options.readers} Pub/Sub reader(s); "
                 f"its log: {PIPELINE_LOG.relative_to(ROOT)}")
        pipeline = start_pipeline(options)
        warm_up_seconds = warm_up(publisher, topic, table, pipeline, run_id)
        progress(f"The warm-up record was visible {warm_up_seconds:.1f} s after its publish")

        poller = VisibilityPoller(table)
        poller.start()
        cpu_before = time.process_time()
        try:
            publishing = publish_steadily(publisher, topic, poller, run_id, options)
            wait_until_seen(poller, pipeline, publishing["last_publish"],
                            options.deadline_seconds)
        finally:
            poller.stop()
        if poller.error is not None:
            raise poller.error
        machine["load_average_after"] = round(os.getloadavg()[0], 2)
        machine["benchmark_cpu_seconds"] = round(time.process_time() - cpu_before, 1)
        figures = summarize(options, command_line, machine, warm_up_seconds, publishing, poller)
    finally:
        progress("Stopping the pipeline and the emulators")
        if publisher is not None:
            publisher.stop()
        if pipeline is not None:
            stop_pipeline(pipeline)
        local_stack.stop(STATE_DIR)

    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.profile_latency",
        description="Latency from publish to the row visible in Bigtable, for profile "
                    "records on the local stack.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rate", type=float, default=20,
                        help="records published per second")
    parser.add_argument("--seconds", type=float, default=30,
                        help="how long to publish for")
    parser.add_argument("--readers", type=int, default=1,
                        help="the pipeline's --pubsub_readers")
    parser.add_argument("--window-seconds", type=int, default=60,
                        help="the pipeline's --window_seconds (the lake's window)")
    parser.add_argument("--deadline-seconds", type=float, default=60,
                        help="after the last publish, how long to wait for the records "
                             "not yet seen before counting them lost")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as JSON instead of a table")
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    if options.readers < 1 or options.window_seconds < 1:
        parser.error("--readers and --window-seconds must be at least 1")
    return options


# ---------------------------------------------------------------------------
# the pipeline


def start_pipeline(options):
    project = NAMES["project"]
    shutil.rmtree(LAKE, ignore_errors=True)
    command = [
        sys.executable, "-m", "pipelines.streaming_ingest",
        f"--input_subscription=projects/{project}/subscriptions/{NAMES['subscription']}",
        f"--dead_letter_topic=projects/{project}/topics/{NAMES['dead_letter_topic']}",
        f"--catalog={CATALOG}",
        f"--lake_path={LAKE.relative_to(ROOT)}",
        f"--bigtable_project={project}",
        f"--bigtable_instance={NAMES['instance']}",
        f"--bigtable_table={NAMES['table']}",
        f"--window_seconds={options.window_seconds}",
        f"--pubsub_readers={options.readers}",
    ]
    with open(PIPELINE_LOG, "w") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop_pipeline(pipeline):
    pipeline.terminate()
    try:
        pipeline.wait(timeout=PIPELINE_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pipeline.kill()
        pipeline.wait()


def check_pipeline_running(pipeline):
    if pipeline.poll() is not None:
        raise SystemExit(f"the pipeline stopped (exit status {pipeline.returncode}); "
                         f"see {PIPELINE_LOG}")


def warm_up(publisher, topic, table, pipeline, run_id):
    """Publishes one record and waits until it is visible: the pipeline is then up.
    Returns the seconds it took, which include the pipeline's start."""
    email = f"warm-up-{run_id}@bench.example.com"
    key = row_key("Email", email)
    published_at = time.monotonic()
    publisher.publish(topic, profile_record(f"warm-up-{run_id}", email, 0),
                      dataset=DATASET).result(timeout=30)
    while not read_visible(table, [key]):
        check_pipeline_running(pipeline)
        if time.monotonic() - published_at > STARTUP_DEADLINE_SECONDS:
            raise SystemExit(f"the warm-up record was not in Bigtable after "
                             f"{STARTUP_DEADLINE_SECONDS} s; see {PIPELINE_LOG}")
        time.sleep(0.1)
    return time.monotonic() - published_at


# ---------------------------------------------------------------------------
# publishing and polling


def profile_record(record_id, email, points):
    record = {
        "_id": record_id,
        "identityMap": {"Email": [{"id": email, "authenticatedState": "authenticated",
                                   "primary": True}]},
        "loyalty": {"points": points},
    }
    return json.dumps(record).encode("utf-8")


def publish_steadily(publisher, topic, poller, run_id, options):
    """Publishes rate x seconds records, record n due at start + n / rate. Returns the
    publish times (time.monotonic(), just before each publish call) and the failures."""
    count = max(1, round(options.rate * options.seconds))
    progress(f"Publishing {count} profile records at {options.rate:g}/s for "
             f"{options.seconds:g} s")
    published_at = {}
    futures = {}
    keys = {}
    most_behind = 0.0
    start = time.monotonic()
    last_report = start
    for number in range(count):
        due = start + number / options.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        email = f"{run_id}-{number}@bench.example.com"
        keys[number] = row_key("Email", email)
        poller.expect(keys[number], number)  # before the publish, so no sighting is missed
        published_at[number] = time.monotonic()
        futures[number] = publisher.publish(
            topic, profile_record(f"bench-{run_id}-{number:06d}", email, number),
            dataset=DATASET)
        most_behind = max(most_behind, published_at[number] - due)
        if published_at[number] - last_report >= PROGRESS_EVERY_SECONDS:
            progress(f"  published {number + 1} of {count}, "
                     f"{poller.pending_count()} not yet seen in Bigtable")
            last_report = published_at[number]

    failed = {}
    for number, future in futures.items():
        try:
            future.result(timeout=30)
        except Exception as error:  # counted and reported, not raised
            failed[number] = repr(error)
            poller.forget(keys[number])
    return {"published_at": published_at, "failed": failed, "first_publish": start,
            "last_publish": max(published_at.values()), "most_behind": most_behind}


def wait_until_seen(poller, pipeline, last_publish, deadline_seconds):
    deadline = last_publish + deadline_seconds
    last_report = time.monotonic()
    while poller.pending_count() and time.monotonic() < deadline:
        check_pipeline_running(pipeline)
        if poller.error is not None:
            return
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            progress(f"  {poller.pending_count()} records not yet seen, "
                     f"{time.monotonic() - last_publish:.0f} s after the last publish")
            last_report = time.monotonic()
        time.sleep(0.1)
    progress(f"Done waiting: {poller.pending_count()} records not seen "
             f"{time.monotonic() - last_publish:.1f} s after the last publish")


def read_visible(table, keys):
    """The keys among `keys` whose rows are visible (have VISIBLE_COLUMN)."""
    found = []
    for first in range(0, len(keys), ROWS_PER_READ):
        row_set = RowSet()
        for key in keys[first:first + ROWS_PER_READ]:
            row_set.add_row_key(key)
        found.extend(row.row_key for row in table.read_rows(row_set=row_set,
                                                            filter_=VISIBLE_FILTER))
    return found


class VisibilityPoller(threading.Thread):
    """Every POLL_INTERVAL_SECONDS, reads the rows still pending and notes when each is
    first seen.

    A row that the read ending at time T saw became visible after the start of the
    previous poll (which did not see it, or did not yet expect it, so it was not yet
    published) and before T. The poller takes T as the moment it became visible, so a
    latency is overstated by at most T minus the start of the previous poll: that span,
    per record, is the resolution reported.
    """

    def __init__(self, table):
        super().__init__(name="visibility-poller", daemon=True)
        self.table = table
        self.lock = threading.Lock()
        self.pending = {}  # row key -> record number
        self.seen_at = {}  # record number -> time.monotonic() at the end of the read
        self.resolution = {}  # record number -> seconds, see above
        self.read_seconds = []  # how long each read of pending rows took
        self.error = None
        self.stopping = threading.Event()

    def expect(self, key, number):
        with self.lock:
            self.pending[key] = number

    def forget(self, key):
        with self.lock:
            self.pending.pop(key, None)

    def pending_count(self):
        with self.lock:
            return len(self.pending)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)

    def run(self):
        previous_start = time.monotonic()
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                with self.lock:
                    keys = list(self.pending)
                found = read_visible(self.table, keys) if keys else []
                finished = time.monotonic()
                with self.lock:
                    for key in found:
                        number = self.pending.pop(key, None)
                        if number is not None:
                            self.seen_at[number] = finished
                            self.resolution[number] = finished - previous_start
                if keys:
                    self.read_seconds.append(finished - started)
                previous_start = started
                self.stopping.wait(max(0.0, POLL_INTERVAL_SECONDS - (finished - started)))
        except Exception as error:  # raised again by main, after the run stops
            self.error = error


# ---------------------------------------------------------------------------
# figures


def nearest_rank(sorted_values, fraction):
    """The value at rank ceil(fraction * n), counting from 1: always a measured value,
    never an interpolation. With fewer than 100 values, p99 is the maximum."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def milliseconds(seconds):
    return None if math.isinf(seconds) else round(seconds * 1000, 1)


def summarize(options, command_line, machine, warm_up_seconds, publishing, poller):
    published_at = publishing["published_at"]
    delivered = [number for number in published_at if number not in publishing["failed"]]
    # A lost record's latency is infinite: it stays in the quantiles, slower than any seen.
    latencies = sorted(poller.seen_at[number] - published_at[number]
                       if number in poller.seen_at else math.inf
                       for number in delivered)
    seen = [latency for latency in latencies if not math.isinf(latency)]
    publish_span = publishing["last_publish"] - publishing["first_publish"]
    resolutions = sorted(poller.resolution.values())
    reads = sorted(poller.read_seconds)
    quantiles = {}
    if latencies:
        quantiles = {name: milliseconds(nearest_rank(latencies, fraction))
                     for name, fraction in (("min", 0), ("p50", 0.50), ("p95", 0.95),
                                            ("p99", 0.99), ("max", 1.0))}
    return {
        "command": command_line,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {"rate_per_second": options.rate, "seconds": options.seconds,
                     "pubsub_readers": options.readers,
                     "window_seconds": options.window_seconds,
                     "deadline_seconds_after_last_publish": options.deadline_seconds},
        "warm_up_seconds": round(warm_up_seconds, 2),
        "published": len(delivered),
        "publish_failed": len(publishing["failed"]),
        "seen": len(seen),
        "lost": len(delivered) - len(seen),
        "publish_rate_achieved_per_second": (
            round((len(published_at) - 1) / publish_span, 2) if publish_span > 0 else None),
        "publish_most_behind_schedule_ms": milliseconds(publishing["most_behind"]),
        "latency_samples": len(latencies),
        "latency_ms": quantiles,  # nearest rank over every published record; null = lost
        "latency_max_seen_ms": milliseconds(seen[-1]) if seen else None,
        "latency_ms_by_record": [  # in publish order; null = lost, or failed to publish
            milliseconds(poller.seen_at[number] - published_at[number])
            if number in poller.seen_at else None
            for number in sorted(published_at)],
        "lost_records": sorted(number for number in delivered if number not in poller.seen_at),
        "latency_over_1_s": sum(1 for latency in latencies if latency > 1),
        "latency_over_10_s": sum(1 for latency in latencies if latency > 10),
        "poller_resolution_ms": {
            "p50": milliseconds(nearest_rank(resolutions, 0.5)) if resolutions else None,
            "p99": milliseconds(nearest_rank(resolutions, 0.99)) if resolutions else None,
            "max": milliseconds(resolutions[-1]) if resolutions else None,
        },
        "poller_read_ms_p50": milliseconds(nearest_rank(reads, 0.5)) if reads else None,
        "poller_reads": len(reads),
    }


def describe_machine():
    return {
        "nproc": (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count()),  # what `nproc` says; macOS has no affinity
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "load_average_before": round(os.getloadavg()[0], 2),
    }


def print_table(figures):
    machine, settings = figures["machine"], figures["settings"]
    latency = figures["latency_ms"]
    resolution = figures["poller_resolution_ms"]

    def shown(value):
        return "lost" if value is None else f"{value:.0f}"

    def shown_numbers(numbers, most=20):
        listed = ", ".join(str(number) for number in numbers[:most])
        more = f" and {len(numbers) - most} more" if len(numbers) > most else ""
        return (listed + more) or "none"

    rows = [
        ("command", figures["command"]),
        ("date", figures["date"]),
        ("machine", f"nproc {machine['nproc']}, {machine['platform']}, "
                    f"Python {machine['python']}, apache-beam {machine['apache_beam']}"),
        ("load average", f"{machine['load_average_before']} before, "
                         f"{machine.get('load_average_after')} after (1 min)"),
        ("benchmark cpu", f"{machine.get('benchmark_cpu_seconds')} s used by this process "
                          "(publisher and poller) while measuring"),
        ("settings", f"rate {settings['rate_per_second']:g}/s for {settings['seconds']:g} s, "
                     f"{settings['pubsub_readers']} Pub/Sub reader(s), lake window "
                     f"{settings['window_seconds']} s, deadline "
                     f"{settings['deadline_seconds_after_last_publish']:g} s after the "
                     "last publish"),
        ("warm-up", f"first record visible {figures['warm_up_seconds']} s after its "
                    "publish (includes the pipeline's start; not in the figures)"),
        ("", ""),
        ("published", f"{figures['published']} ({figures['publish_failed']} failed to "
                      "publish, not counted)"),
        ("seen", figures["seen"]),
        ("lost", f"{figures['lost']} (not visible by the deadline)"),
        ("publish rate", f"{figures['publish_rate_achieved_per_second']}/s achieved; at "
                         f"most {figures['publish_most_behind_schedule_ms']} ms behind "
                         "schedule"),
        ("", ""),
        ("latency (ms)", "  ".join(f"{name} {shown(latency.get(name))}"
                                   for name in ("min", "p50", "p95", "p99", "max"))),
        ("", f"publish call -> row visible; nearest rank over all "
             f"{figures['latency_samples']} published records, lost ones included "
             "as slowest"),
        ("", f"over 1 s: {figures['latency_over_1_s']}, over 10 s: "
             f"{figures['latency_over_10_s']}; slowest seen: "
             f"{figures['latency_max_seen_ms'] or 'none'} ms"),
        ("", f"lost records (numbered from 0 in publish order, of "
             f"{figures['published'] + figures['publish_failed']}): "
             f"{shown_numbers(figures['lost_records'])}"),
        ("poller", f"resolution p50 {resolution['p50']} ms, p99 {resolution['p99']} ms, "
                   f"max {resolution['max']} ms (a latency is overstated by at most this)"),
        ("", f"{figures['poller_reads']} reads of the pending rows, p50 "
             f"{figures['poller_read_ms_p50']} ms each"),
    ]
    print("\nProfile branch latency: publish -> row visible in Bigtable")
    for label, value in rows:
        print(f"  {label:14} {value}".rstrip())


def progress(text):
    print(f"== {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
