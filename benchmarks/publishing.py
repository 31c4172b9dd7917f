"""Steady publishing and the poller's loop: a benchmark, inside harness.running_pipeline,
publishes with `publish_steadily`, a `VisibilityPoller` (or row_poller's process) notes
when each record becomes visible, and `wait_until_seen` waits for the rest."""

import math
import threading
import time

from benchmarks.harness import (
    DATASET,
    PROGRESS_EVERY_SECONDS,
    bench_email,
    profile_record,
    progress,
)


def publish_steadily(bench, poller, options, key_of, where):
    """Publishes rate x seconds records, record n due at start + n / rate. Each has its own
    `_id` and Email identity; `key_of(record_id, email)` is what the poller looks for, and
    `where` names where it looks, for the progress output. Returns the publish times
    (time.monotonic(), just before the publish call that sent each), the failures and the
    keys.

    One thread, one synchronous Publish call at a time (the client's GAPIC API: no batch
    threads, no batching delay), of every record due by then: one a call while the calls
    keep up with the rate, a few when a call took longer than the gap between records.
    The high-level client, a thread a message when sending each on its own, could not
    keep up with 1,000 a second on 2 cores."""
    from google.pubsub_v1.types import PubsubMessage

    count = max(1, round(options.rate * options.seconds))
    progress(f"Publishing {count} profile records at {options.rate:g}/s for {options.seconds:g} s")
    published_at = {}
    failed = {}
    keys = {}
    most_behind = 0.0
    calls = 0
    start = time.monotonic()
    last_report = start
    number = 0
    while number < count:
        due = start + number / options.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
            now = time.monotonic()
        upto = min(count, math.floor((now - start) * options.rate) + 1)
        messages = []
        for each in range(number, max(upto, number + 1)):
            record_id = f"bench-{bench.run_id}-{each:06d}"
            email = bench_email(bench.run_id, each)
            keys[each] = key_of(record_id, email)
            poller.expect(keys[each], each)  # before the publish, so no sighting is missed
            messages.append(
                PubsubMessage(
                    data=profile_record(record_id, email, each), attributes={"dataset": DATASET}
                )
            )
        sent_at = time.monotonic()
        try:
            bench.publisher.api.publish(topic=bench.topic, messages=messages, timeout=30)
        except Exception as error:  # counted and reported, not raised
            for each in range(number, number + len(messages)):
                failed[each] = repr(error)
                poller.forget(keys[each])
        calls += 1
        for each in range(number, number + len(messages)):
            published_at[each] = sent_at
        most_behind = max(most_behind, sent_at - due)
        number += len(messages)
        if sent_at - last_report >= PROGRESS_EVERY_SECONDS:
            progress(
                f"  published {number} of {count}, {poller.pending_count()} not yet seen in {where}"
            )
            last_report = sent_at
    return {
        "published_at": published_at,
        "failed": failed,
        "first_publish": start,
        "last_publish": max(published_at.values()),
        "most_behind": most_behind,
        "publish_calls": calls,
        "keys": keys,
    }


def wait_until_seen(bench, poller, last_publish, deadline_seconds):
    deadline = last_publish + deadline_seconds
    last_report = time.monotonic()
    while poller.pending_count() and time.monotonic() < deadline:
        bench.check_pipeline_running()
        if poller.error is not None:
            return
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            progress(
                f"  {poller.pending_count()} records not yet seen, "
                f"{time.monotonic() - last_publish:.0f} s after the last publish"
            )
            last_report = time.monotonic()
        time.sleep(0.1)
    progress(
        f"Done waiting: {poller.pending_count()} records not seen "
        f"{time.monotonic() - last_publish:.1f} s after the last publish"
    )


class VisibilityPoller(threading.Thread):
    """Every `interval_seconds` (start to start), asks `find_visible(keys)` which of the
    keys still pending are visible, and notes when each is first seen.

    A record that the look ending at time T saw became visible after the start of the
    previous look (which did not see it, or did not yet expect it, so it was not yet
    published) and before T. The poller takes T as the moment it became visible, so a
    latency is overstated by at most T minus the start of the previous look: that span,
    per record, is the resolution reported. It is about the interval plus one look.
    """

    def __init__(self, find_visible, interval_seconds):
        super().__init__(name="visibility-poller", daemon=True)
        self.find_visible = find_visible
        self.interval_seconds = interval_seconds
        self.lock = threading.Lock()
        self.pending = {}  # key -> record number
        self.seen_at = {}  # record number -> time.monotonic() at the end of the look
        self.resolution = {}  # record number -> seconds, see above
        self.read_seconds = []  # how long each look at the pending keys took
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
                found = self.find_visible(keys) if keys else []
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
                self.stopping.wait(max(0.0, self.interval_seconds - (finished - started)))
        except Exception as error:  # raised again by main, after the run stops
            self.error = error
