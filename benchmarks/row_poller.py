"""The profile poller in a process of its own: which published records' rows are visible
in Bigtable, and when.

In the benchmark's own process the poller thread shares the interpreter lock with the
publisher's threads (the Pub/Sub client commits each message from a thread of its own),
and at hundreds of records a second it waited hundreds of milliseconds for it: a poll
late by that much overstates every latency it sees by as much. Here the poller has an
interpreter of its own (a spawned process, its own Bigtable client). Its times are
time.monotonic() like the publisher's: CLOCK_MONOTONIC, one clock for every process of
the machine.

The publisher says how many records it has published so far through a shared counter,
set before each publish call; record n's row key is a function of the run and n
(harness.bench_email), so nothing else has to cross. A record the poller has not been
told about was not yet published at the start of the look, so the resolution (end of the
look that saw it minus the start of the previous one) bounds the overstatement as in
publishing.VisibilityPoller, whose interface this one has.
"""

import multiprocessing
import os
import time

POLLER_START_SECONDS = 60


class RowPollerProcess:
    """publishing.VisibilityPoller's interface (expect, forget, pending_count, stop, seen_at,
    resolution, read_seconds, error), the polling done in a spawned process."""

    def __init__(self, run_id, interval_seconds, names):
        context = multiprocessing.get_context("spawn")  # no fork of gRPC's threads
        self.published = context.Value("q", 0, lock=False)
        self.seen = context.Value("q", 0, lock=False)
        self.stopping = context.Event()
        self.ready = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=_poll,
            name="row-poller",
            args=(
                run_id,
                interval_seconds,
                names,
                dict(os.environ),
                self.published,
                self.seen,
                self.stopping,
                self.ready,
                self.results,
            ),
            daemon=True,
        )
        self.forgotten = set()
        self.seen_at, self.resolution, self.read_seconds = {}, {}, []
        self.error = None
        self.cpu_seconds = None  # the poller process's, all of its life

    def start(self):
        """Starts the process and waits until its client is open and it polls."""
        self.process.start()
        if not self.ready.wait(POLLER_START_SECONDS):
            self.process.kill()
            raise SystemExit(f"the poller process was not ready after {POLLER_START_SECONDS} s")

    def expect(self, key, number):
        """Record `number` is about to be published (its key is known to the poller)."""
        self.published.value = max(self.published.value, number + 1)

    def forget(self, key):
        self.forgotten.add(key)

    def pending_count(self):
        return self.published.value - self.seen.value - len(self.forgotten)

    def stop(self):
        self.stopping.set()
        try:
            outcome = self.results.get(timeout=60)
        except Exception as error:  # the process died: reported like a poller's error
            self.error = RuntimeError(f"the poller process gave no results: {error!r}")
            outcome = {}
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        if "error" in outcome:
            self.error = RuntimeError(outcome["error"])
        self.seen_at = outcome.get("seen_at", {})
        self.resolution = outcome.get("resolution", {})
        self.read_seconds = outcome.get("read_seconds", [])
        self.cpu_seconds = outcome.get("cpu_seconds")


def _poll(run_id, interval, names, environment, published, seen, stopping, ready, results):
    import warnings

    os.environ.update(environment)
    warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")
    from benchmarks.harness import bench_email, read_visible
    from domain.profile_table import row_key
    from ingest.clients import open_table

    seen_at, resolution, read_seconds = {}, {}, []
    try:
        table = open_table(names["project"], names["instance"], names["table"])
        read_visible(table, [row_key("Email", bench_email(run_id, -1))])  # the channel, up
        pending = {}  # key -> record number
        known = 0
        ready.set()
        previous_start = time.monotonic()
        while not stopping.is_set():
            started = time.monotonic()
            told = published.value
            for number in range(known, told):
                pending[row_key("Email", bench_email(run_id, number))] = number
            known = told
            looked = bool(pending)
            found = read_visible(table, list(pending)) if looked else []
            finished = time.monotonic()
            for key in found:
                number = pending.pop(key, None)
                if number is not None:
                    seen_at[number] = finished
                    resolution[number] = finished - previous_start
            seen.value = len(seen_at)
            if looked:
                read_seconds.append(finished - started)
            previous_start = started
            stopping.wait(max(0.0, interval - (finished - started)))
        results.put(
            {
                "seen_at": seen_at,
                "resolution": resolution,
                "read_seconds": read_seconds,
                "cpu_seconds": time.process_time(),
            }
        )
    except Exception as error:  # raised again by the benchmark, after the run stops
        ready.set()
        results.put({"error": repr(error), "seen_at": seen_at, "resolution": resolution})
