"""What the benchmarks share: the emulators and the pipeline, the benchmark's records,
quantiles, the machine's description and progress output (steady publishing and the
poller's loop: benchmarks/publishing.py).

A benchmark runs inside `running_pipeline(...)`, which starts Google's emulators on free
ports, creates the topics, subscriptions and table, starts `python -m
pipelines.streaming_ingest` on the DirectRunner, waits until a warm-up record reaches
Bigtable, and stops everything on the way out, whatever happens. See benchmarks/README.md.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import platform
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid

import apache_beam
from google.cloud import pubsub_v1
from google.cloud.bigtable import row_filters
from google.cloud.bigtable.row_set import RowSet

from domain.catalog import Catalog
from domain.profile_table import RECORDS_FAMILY, row_key
from ingest import admin
from ingest.clients import open_table
from ingest.dev import local_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
CATALOG = "examples/catalog.yaml"
DATASET = "crm-profiles"
NAMES = dict(
    project="demo-project",
    topic="bench-input",
    subscription="bench-input-sub",
    dead_letter_topic="bench-dead-letter",
    dead_letter_subscription="bench-dead-letter-sub",
    instance="bench-instance",
    table="profiles",
)

ROWS_PER_READ = 500
STARTUP_DEADLINE_SECONDS = 180
PROGRESS_EVERY_SECONDS = 5
PIPELINE_STOP_SECONDS = 20

# A record is visible in Bigtable once its profile record's cell (family `rec`) is in the
# row of its primary identity: the benchmarks' records carry one identity, so that row
# has no other record, and a lookup of the person then finds it.
VISIBLE_FILTER = row_filters.RowFilterChain(
    filters=[
        row_filters.FamilyNameRegexFilter(f"^{RECORDS_FAMILY}$"),
        row_filters.CellsRowLimitFilter(1),
        row_filters.StripValueTransformerFilter(True),
    ]
)


def command_line(module, argv):
    return f"python -m benchmarks.{module} " + shlex.join(argv)


# ---------------------------------------------------------------------------
# the emulators and the pipeline


class Bench:
    """One benchmark's stack: state, logs and the pipeline's lake are in state_dir."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.lake = state_dir / "lake"
        self.pipeline_log = state_dir / "pipeline.log"
        self.run_id = uuid.uuid4().hex[:8]
        self.publisher = None
        self.topic = None
        self.table = None
        self.pipeline = None
        self.warm_up_seconds = None
        self.stack = None  # the emulators (ingest.dev.emulators.Stack)

    def check_pipeline_running(self):
        if self.pipeline.poll() is not None:
            raise SystemExit(
                f"the pipeline stopped (exit status {self.pipeline.returncode}); "
                f"see {self.pipeline_log}"
            )


@contextlib.contextmanager
def running_pipeline(state_dir, pipeline_arguments, description):
    """Starts the emulators and the pipeline (with `pipeline_arguments` added to its
    command line), waits until it is up and yields the Bench. Stops everything on the way
    out: on success, on an error, on Ctrl-C and on SIGTERM alike."""
    # A SIGTERM ends the benchmark through the `finally` below, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    bench = Bench(state_dir)
    local_stack.stop(state_dir)  # what a killed earlier run may have left
    progress("Starting the emulators on free ports")
    stack = bench.stack = local_stack.start(state_dir, pubsub_port=0, bigtable_port=0)
    try:
        os.environ.update(local_stack.environment(stack, NAMES["project"]))
        admin.create_resources(**NAMES, catalog=Catalog.load(str(ROOT / CATALOG)))
        bench.table = open_table(NAMES["project"], NAMES["instance"], NAMES["table"])
        bench.publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
        )
        bench.topic = bench.publisher.topic_path(NAMES["project"], NAMES["topic"])

        progress(f"{description}; its log: {bench.pipeline_log.relative_to(ROOT)}")
        bench.pipeline = start_pipeline(bench, pipeline_arguments)
        bench.warm_up_seconds = warm_up(bench)
        progress(f"The warm-up record was visible {bench.warm_up_seconds:.1f} s after its publish")
        yield bench
    finally:
        progress("Stopping the pipeline and the emulators")
        if bench.publisher is not None:
            bench.publisher.stop()
        if bench.pipeline is not None:
            stop_pipeline(bench.pipeline)
        local_stack.stop(state_dir)


def start_pipeline(bench, pipeline_arguments):
    project = NAMES["project"]
    shutil.rmtree(bench.lake, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pipelines.streaming_ingest",
        f"--input_subscription=projects/{project}/subscriptions/{NAMES['subscription']}",
        f"--dead_letter_topic=projects/{project}/topics/{NAMES['dead_letter_topic']}",
        f"--catalog={CATALOG}",
        f"--lake_path={bench.lake.relative_to(ROOT)}",
        f"--bigtable_project={project}",
        f"--bigtable_instance={NAMES['instance']}",
        f"--bigtable_table={NAMES['table']}",
    ] + pipeline_arguments
    with open(bench.pipeline_log, "w") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop_pipeline(pipeline):
    pipeline.terminate()
    try:
        pipeline.wait(timeout=PIPELINE_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pipeline.kill()
        pipeline.wait()


def warm_up(bench):
    """Publishes one record and waits until it is in Bigtable: the pipeline is then up.
    Returns the seconds it took, which include the pipeline's start."""
    email = f"warm-up-{bench.run_id}@bench.example.com"
    key = row_key("Email", email)
    published_at = time.monotonic()
    bench.publisher.publish(
        bench.topic, profile_record(f"warm-up-{bench.run_id}", email, 0), dataset=DATASET
    ).result(timeout=30)
    while not read_visible(bench.table, [key]):
        bench.check_pipeline_running()
        if time.monotonic() - published_at > STARTUP_DEADLINE_SECONDS:
            raise SystemExit(
                f"the warm-up record was not in Bigtable after "
                f"{STARTUP_DEADLINE_SECONDS} s; see {bench.pipeline_log}"
            )
        time.sleep(0.1)
    return time.monotonic() - published_at


def read_visible(table, keys):
    """The keys among `keys` whose rows are visible in Bigtable (have a `rec` cell)."""
    found = []
    for first in range(0, len(keys), ROWS_PER_READ):
        row_set = RowSet()
        for key in keys[first : first + ROWS_PER_READ]:
            row_set.add_row_key(key)
        found.extend(
            row.row_key for row in table.read_rows(row_set=row_set, filter_=VISIBLE_FILTER)
        )
    return found


# ---------------------------------------------------------------------------
# the benchmark's records, and what is visible of them


def profile_record(record_id, email, points):
    record = {
        "_id": record_id,
        "identityMap": {
            "Email": [{"id": email, "authenticatedState": "authenticated", "primary": True}]
        },
        "loyalty": {"points": points},
    }
    return json.dumps(record).encode("utf-8")


def bench_email(run_id, number):
    """The Email identity, primary, of record `number` of a run."""
    return f"{run_id}-{number}@bench.example.com"


# ---------------------------------------------------------------------------
# figures


def nearest_rank(sorted_values, fraction):
    """The value at rank ceil(fraction * n), counting from 1: always a measured value,
    never an interpolation. With fewer than 100 values, p99 is the maximum."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def milliseconds(seconds):
    return None if math.isinf(seconds) else round(seconds * 1000, 1)


def delivered_and_latencies(publishing, poller):
    """The records published without failure, and the latency of each in seconds, sorted.
    A lost record's latency is infinite: it stays in the quantiles, slower than any seen."""
    published_at = publishing["published_at"]
    delivered = [number for number in published_at if number not in publishing["failed"]]
    latencies = sorted(
        poller.seen_at[number] - published_at[number] if number in poller.seen_at else math.inf
        for number in delivered
    )
    return delivered, latencies


def publish_rate_achieved(publishing):
    """(records - 1) / (time of the last publish - time of the first)."""
    publish_span = publishing["last_publish"] - publishing["first_publish"]
    count = len(publishing["published_at"])
    return round((count - 1) / publish_span, 2) if publish_span > 0 else None


def poller_resolution_ms(poller):
    resolutions = sorted(poller.resolution.values())
    return {
        "p50": milliseconds(nearest_rank(resolutions, 0.5)) if resolutions else None,
        "p99": milliseconds(nearest_rank(resolutions, 0.99)) if resolutions else None,
        "max": milliseconds(resolutions[-1]) if resolutions else None,
    }


def describe_machine():
    return {
        "nproc": (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),  # what `nproc` says; macOS has no affinity
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "apache_beam": apache_beam.__version__,
        "load_average_before": round(os.getloadavg()[0], 2),
    }


def process_cpu_seconds(pid):
    """User + system CPU seconds of another process so far, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def own_cpu_seconds():
    """User + system CPU seconds of this process so far (its threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_mib(pid="self"):
    """A process's peak resident memory (VmHWM) in MiB, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def finish_machine(machine, cpu_before):
    """Adds the load average after, and the CPU this process used since cpu_before."""
    machine["load_average_after"] = round(os.getloadavg()[0], 2)
    machine["benchmark_cpu_seconds"] = round(time.process_time() - cpu_before, 1)


def machine_rows(figures):
    """The table's first rows: the command line, the date and the machine."""
    machine = figures["machine"]
    return [
        ("command", figures["command"]),
        ("date", figures["date"]),
        (
            "machine",
            f"nproc {machine['nproc']}, {machine['platform']}, "
            f"Python {machine['python']}, apache-beam {machine['apache_beam']}",
        ),
        (
            "load average",
            f"{machine['load_average_before']} before, "
            f"{machine.get('load_average_after')} after (1 min)",
        ),
        ("benchmark cpu", cpu_text(machine)),
    ]


def cpu_text(machine):
    if "poller_cpu_seconds" not in machine:
        return (
            f"{machine.get('benchmark_cpu_seconds')} s used by this process "
            "(publisher and poller) while measuring"
        )
    text = (
        f"{machine.get('benchmark_cpu_seconds')} s used by the publisher while measuring, "
        f"{machine['poller_cpu_seconds']} s by the poller's process"
    )
    if "pipeline_cpu_seconds" in machine:
        text += f", {machine['pipeline_cpu_seconds']} s by the pipeline's"
    for name in ("pubsub", "bigtable"):
        if f"{name}_emulator_cpu_seconds" in machine:
            text += f", {machine[f'{name}_emulator_cpu_seconds']} s by the {name} emulator"
    return text


def print_rows(title, rows):
    print(f"\n{title}")
    for label, value in rows:
        print(f"  {label:14} {value}".rstrip())


def shown_numbers(numbers, most=20):
    listed = ", ".join(str(number) for number in numbers[:most])
    more = f" and {len(numbers) - most} more" if len(numbers) > most else ""
    return (listed + more) or "none"


def progress(text):
    print(f"== {text}", file=sys.stderr, flush=True)


def argument_parser(module, description):
    """The parser every benchmark starts from: its command, defaults shown in --help, and
    --json."""
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as JSON instead of a table"
    )
    return parser


def show(figures, as_json, print_table):
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
