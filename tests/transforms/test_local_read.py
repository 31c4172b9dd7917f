"""transforms/local_read.py: the local run's Pub/Sub read, against the Pub/Sub emulator:
its background pull on its own, then the read step in a streaming pipeline on the
BundleBasedDirectRunner, cancelled once it has shown what it must."""

import logging
import threading
import time
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import window
from google.cloud import pubsub_v1

from pubsub_helpers import pull_messages
from transforms import background_pull
from transforms.background_pull import BackgroundPull
from transforms.local_read import LocalPubSubRead

# What the pipelines under test saw, by test: the DirectRunner runs DoFns in this process.
SEEN = {}
SEEN_LOCK = threading.Lock()


def publish(resources, count, **attributes):
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(resources.project, resources.topic)
    futures = [
        publisher.publish(topic, f"message-{n}".encode(), number=str(n), **attributes)
        for n in range(count)
    ]
    return [future.result(timeout=30) for future in futures]


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {seconds} s: {what}")


def test_the_pull_queues_what_is_published_and_finish_acknowledges_it(pubsub_resources):
    pull = BackgroundPull(pubsub_resources.subscription_path, bundle_size=100)
    pull.start()
    try:
        publish(pubsub_resources, 250, dataset="web-events")
        taken = []
        deadline = time.monotonic() + 30
        while len(taken) < 250 and time.monotonic() < deadline:
            batch = pull.take(100, wait_seconds=1)
            assert len(batch) <= 100
            taken.extend(batch)
        assert pull.held() == 250  # nothing watches a pipeline: nothing is durable yet
    finally:
        pull.finish()
    assert pull.held() == 0
    assert sorted(m.data for m in taken) == sorted(f"message-{n}".encode() for n in range(250))
    assert {m.attributes["dataset"] for m in taken} == {"web-events"}
    assert all(m.message_id and m.publish_time is not None for m in taken)
    assert pull_messages(pubsub_resources.subscription_path, 0, timeout=2) == []


def test_a_message_over_grpcs_default_4_mib_is_pulled(pubsub_resources):
    """Pub/Sub takes messages up to 10 MB; the emulator's channel must let them through."""
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(pubsub_resources.project, pubsub_resources.topic)
    payload = b"x" * 9_000_000
    publisher.publish(topic, payload, dataset="web-events").result(timeout=60)
    pull = BackgroundPull(pubsub_resources.subscription_path, bundle_size=10)
    pull.start()
    try:
        taken = []
        wait_for(lambda: taken.extend(pull.take(10, 0.2)) or taken, 60, "the 9 MB message")
    finally:
        pull.finish()
    assert [m.data for m in taken] == [payload]


def test_take_waits_at_most_its_wait_when_nothing_is_queued(pubsub_resources):
    pull = BackgroundPull(pubsub_resources.subscription_path, bundle_size=10)
    pull.start()
    try:
        started = time.monotonic()
        assert pull.take(10, wait_seconds=0.3) == []
        waited = time.monotonic() - started
    finally:
        pull.stop()
    assert 0.25 <= waited < 5


def test_a_pull_that_fails_is_retried_until_it_works(emulators, caplog):
    """An outage, played by a subscription that does not exist yet: the pull warns, backs
    off and keeps trying; once the subscription is there, what is published arrives."""
    suffix = uuid.uuid4().hex[:8]
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/{emulators.project}/topics/late-{suffix}").name
    subscription = f"projects/{emulators.project}/subscriptions/late-sub-{suffix}"
    pull = BackgroundPull(subscription, bundle_size=10)
    with caplog.at_level(logging.WARNING, logger="transforms.local_read"):
        pull.start()
        try:
            wait_for(
                lambda: any("failed" in r.getMessage() for r in caplog.records),
                20,
                "a WARNING for the failed pull",
            )
            subscriber.create_subscription(name=subscription, topic=topic)
            publisher.publish(topic, b"after the outage").result(timeout=30)
            taken = []
            wait_for(lambda: taken.extend(pull.take(10, 0.2)) or taken, 60, "the message")
        finally:
            pull.finish()
    assert [m.data for m in taken] == [b"after the outage"]
    assert any("again after" in r.getMessage() for r in caplog.records)


class _Note(beam.DoFn):
    """Notes each bundle's elements under the test's key."""

    def __init__(self, key):
        self.key = key

    def start_bundle(self):
        self.bundle = []

    def process(self, element):
        self.bundle.append(element)
        yield element

    def finish_bundle(self):
        if self.bundle:
            with SEEN_LOCK:
                SEEN.setdefault(self.key, []).append(self.bundle)


def run_streaming(build):
    options = PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"])
    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    return pipeline.run()


def test_the_read_brings_every_message_in_bundles_of_at_most_its_size(pubsub_resources):
    key = uuid.uuid4().hex
    result = run_streaming(
        lambda p: (
            p
            | LocalPubSubRead(pubsub_resources.subscription_path, bundle_size=40)
            | beam.Map(lambda m: (m.data, m.attributes["number"], m.publish_time is not None))
            | beam.ParDo(_Note(key))
        )
    )
    try:
        publish(pubsub_resources, 300)
        wait_for(lambda: sum(map(len, SEEN.get(key, []))) >= 300, 60, "300 messages read")
    finally:
        result.cancel()
        BackgroundPull.close(pubsub_resources.subscription_path)
    bundles = SEEN[key]
    assert sorted(e for b in bundles for e in b) == sorted(
        (f"message-{n}".encode(), str(n), True) for n in range(300)
    )
    assert max(map(len, bundles)) <= 40
    assert len(bundles) < 300  # messages already pulled travel together


def test_a_quiet_topic_still_closes_the_windows(pubsub_resources):
    """The runner's own read blocks 30 s on an empty pull, holding the watermark; this
    read gives up waiting within a second, so a window closes soon after its end."""
    key = uuid.uuid4().hex
    result = run_streaming(
        lambda p: (
            p
            | LocalPubSubRead(pubsub_resources.subscription_path, bundle_size=100)
            | beam.WindowInto(window.FixedWindows(1))
            | beam.Map(lambda m: ("all", 1))
            | beam.CombinePerKey(sum)
            | beam.ParDo(_Note(key))
        )
    )
    try:
        time.sleep(2)  # the pipeline up, its pull waiting
        publish(pubsub_resources, 5)
        published = time.monotonic()
        wait_for(lambda: SEEN.get(key), 15, "the window's count")
        closed_after = time.monotonic() - published
    finally:
        result.cancel()
        BackgroundPull.close(pubsub_resources.subscription_path)
    assert sum(count for bundle in SEEN[key] for _, count in bundle) == 5
    assert closed_after < 10


class _WaitFor(beam.DoFn):
    """Holds each element until the event is set: a sink still writing."""

    def __init__(self, key):
        self.key = key

    def process(self, element):
        while not GATES[self.key].wait(0.05):
            pass
        yield element


GATES = {}


def start_held(resources, monkeypatch, lease_seconds):
    """A pipeline whose window's sink holds on (GATES[key]), reading a subscription of the
    test's topic with Pub/Sub's shortest ack deadline (10 s), once 20 messages published
    are taken: (subscription, key, the pipeline's result). `lease_seconds`: the read's
    lease once extended (its MIN_LEASE_SECONDS)."""
    monkeypatch.setattr(background_pull, "MIN_LEASE_SECONDS", lease_seconds)
    subscription = f"{resources.subscription_path}-short"
    pubsub_v1.SubscriberClient().create_subscription(
        name=subscription,
        topic=f"projects/{resources.project}/topics/{resources.topic}",
        ack_deadline_seconds=10,
    )
    key = uuid.uuid4().hex
    GATES[key] = threading.Event()
    result = run_streaming(
        lambda p: (
            p
            | LocalPubSubRead(subscription, bundle_size=100, window_seconds=1)
            | beam.WindowInto(window.FixedWindows(1))
            | beam.Map(lambda m: ("all", m.data))
            | beam.GroupByKey()
            | beam.ParDo(_WaitFor(key))
            | beam.ParDo(_Note(key))
        )
    )
    publish(resources, 20)
    wait_for(lambda: BackgroundPull._started[subscription].held() == 20, 30, "20 taken")
    return subscription, key, result


def test_a_message_is_acknowledged_once_its_window_is_written_not_before(
    pubsub_resources, monkeypatch
):
    # A lease three times the deadline: extended only near its own end, it would let the
    # deadline run out first, and the messages come again.
    lease_seconds = 30
    subscription, key, result = start_held(pubsub_resources, monkeypatch, lease_seconds)
    try:
        # Past the subscription's 10-s deadline: still held once (not delivered again),
        # its lease extended before the deadline ran out.
        time.sleep(12)
        assert BackgroundPull._started[subscription].held() == 20
        assert not SEEN.get(key)
        GATES[key].set()  # the window's sink is done
        wait_for(lambda: BackgroundPull._started[subscription].held() == 0, 30, "acknowledged")
    finally:
        GATES[key].set()
        result.cancel()
        BackgroundPull.close(subscription)
    assert sorted(m for b in SEEN[key] for _, ms in b for m in ms) == sorted(
        f"message-{n}".encode() for n in range(20)
    )
    time.sleep(lease_seconds + 2)  # any lease run out: what was not acknowledged comes again
    assert pull_messages(subscription, 0, timeout=2) == []


def test_what_a_crash_leaves_unwritten_is_delivered_again(pubsub_resources, monkeypatch):
    lease_seconds = 15
    subscription, key, result = start_held(pubsub_resources, monkeypatch, lease_seconds)
    # The process dies: its window never written, nothing is acknowledged.
    result.cancel()
    BackgroundPull.close(subscription)
    GATES[key].set()
    again = pull_messages(subscription, 20, timeout=lease_seconds + 25)
    assert sorted(m.data for m in again) == sorted(f"message-{n}".encode() for n in range(20))
