"""The fault tests' harness (not a test module): a private local stack per case, the pipeline
started as users start it against it, a steady publisher of known records, and faults: an
emulator frozen (SIGSTOP of its whole process group, the JVM of the Pub/Sub emulator
included), a SIGTERM, a SIGKILL. Counting what landed: counting.py."""

import contextlib
import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from domain.pubsub_clients import subscriber_client
from ingest import admin
from ingest.clients import open_table
from ingest.dev import local_stack
from tests.conftest import EXAMPLE_CATALOG, TEST_PROJECT, StackResources
from tests.faults import records as known
from tests.pipelines.running_pipeline import start_pipeline

# The client libraries read the emulator variables from os.environ when a client is made:
# cases that run in threads, each against its own stack, make their clients one at a time.
_ENVIRONMENT_LOCK = threading.Lock()
DRAIN_TIMEOUT_SECONDS = 120


@dataclasses.dataclass
class Target:
    """Where one case runs: its emulators, resources and folder."""

    pubsub_host: str
    bigtable_host: str
    resources: StackResources
    folder: Path
    stack: object = None  # local_stack.Stack of a private stack, else None

    @property
    def project(self):
        return self.resources.project

    @property
    def lake(self):
        return self.folder / "lake"

    @property
    def log_path(self):
        return self.folder / "pipeline.log"

    @property
    def variables(self):
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "BIGTABLE_EMULATOR_HOST": self.bigtable_host,
            "PUBSUB_PROJECT_ID": self.project,
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    @contextlib.contextmanager
    def environment(self):
        """os.environ pointed at this target's emulators, for making clients."""
        with _ENVIRONMENT_LOCK, admin.environment_set(self.variables):
            yield

    def publisher(self):
        from google.cloud import pubsub_v1

        with self.environment():
            return pubsub_v1.PublisherClient()

    def subscriber(self):
        with self.environment():
            return subscriber_client()

    def table(self):
        with self.environment():
            return open_table(self.project, self.resources.instance, self.resources.table)


def new_resources():
    return StackResources.unique(TEST_PROJECT)


def create(target, ack_deadline_seconds):
    """The target's topics, subscriptions and table; the input subscription with
    `ack_deadline_seconds`, so that a redelivery comes within a test's time."""
    resources = target.resources
    with target.environment():
        admin.create_resources(
            **dataclasses.asdict(resources),
            catalog=known.catalog(),
            pubsub_emulator_host=target.pubsub_host,
            bigtable_emulator_host=target.bigtable_host,
        )
        with subscriber_client() as subscriber:
            subscriber.delete_subscription(request={"subscription": resources.subscription_path})
            subscriber.create_subscription(
                request={
                    "name": resources.subscription_path,
                    "topic": resources.topic_path,
                    "ack_deadline_seconds": ack_deadline_seconds,
                }
            )
    return target


def on_shared_stack(emulators, folder, ack_deadline_seconds=60):
    """A target on the session's emulators (tests/conftest.py), for cases that freeze none."""
    target = Target(emulators.pubsub_host, emulators.bigtable_host, new_resources(), folder)
    return create(target, ack_deadline_seconds)


@contextlib.contextmanager
def private_stack(folder, ack_deadline_seconds=60):
    """A stack of its own for a case that freezes an emulator: a frozen emulator stops
    every test using it. Fails loudly if the emulators cannot start; always stopped after
    (thawed first: a stopped process ignores SIGTERM until continued)."""
    state_dir = folder / "stack"
    try:
        stack = local_stack.start(state_dir, pubsub_port=0, bigtable_port=0)
        error = None
    except local_stack.LocalStackError as start_error:
        error = start_error
    if error is not None:
        pytest.fail(f"the fault tests need the emulators, which did not start:\n{error}")
    try:
        target = Target(
            stack.pubsub.address, stack.bigtable.address, new_resources(), folder, stack
        )
        yield create(target, ack_deadline_seconds)
    finally:
        for emulator in stack.emulators:
            _signal_group(emulator, signal.SIGCONT)
        local_stack.stop(state_dir)


# ---------------------------------------------------------------------------
# faults


def group_pids(emulator):
    """Every process of the emulator's process group (the Pub/Sub emulator: the JVM the
    script exec'd, and any other child), read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == emulator.pid:  # field 5 of stat: the process group
            pids.append(int(stat.parent.name))
    return pids


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _signal_group(emulator, number):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(emulator.pid, number)


@contextlib.contextmanager
def frozen(emulator, log):
    """The emulator's processes stopped (SIGSTOP) for the duration, then continued."""
    pids = group_pids(emulator)
    assert pids, f"no process of the {emulator.name} emulator (group {emulator.pid})"
    _signal_group(emulator, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while any(_state(pid) not in ("T", "t") for pid in pids):
        assert time.monotonic() < deadline, {pid: _state(pid) for pid in pids}
        time.sleep(0.05)
    log(f"froze the {emulator.name} emulator: pids {pids}")
    try:
        yield
    finally:
        _signal_group(emulator, signal.SIGCONT)
        log(f"thawed the {emulator.name} emulator")


# ---------------------------------------------------------------------------
# the pipeline and the publisher


def start(target, window_seconds):
    """The pipeline against the target, as users start it; its environment names the
    target's emulators (and keeps PYTHONPATH, so the tree under test is the one run)."""
    env = {**os.environ, **target.variables}
    return start_pipeline(
        target.resources,
        target.lake,
        target,
        catalog=EXAMPLE_CATALOG,
        window_seconds=window_seconds,
        env=env,
        log_path=target.log_path,
    )


def drain(pipeline, target):
    """SIGTERM: the drain. Returns the exit code (None if it did not exit in time: then
    it is killed, and the test fails on the exit code)."""
    pipeline.send_signal(signal.SIGTERM)
    try:
        return pipeline.wait(timeout=DRAIN_TIMEOUT_SECONDS)
    except Exception:
        pipeline.kill()
        pipeline.wait()
        return None


def log_tail(target, chars=4000):
    return target.log_path.read_text(errors="replace")[-chars:]


class Publisher:
    """Publishes messages at a steady rate on a thread, each waited on, so that what was
    published is known exactly: {message id: Message}. `hold()` pauses it between two
    messages (a case freezing Pub/Sub pauses it, as a client would wait)."""

    def __init__(self, target, messages, rate):
        self.target = target
        self.messages = list(messages)
        self.interval = 1 / rate
        self.published = {}  # message id -> Message
        self.error = None
        self._gate = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        client = self.target.publisher()
        topic = self.target.resources.topic_path
        next_at = time.monotonic()
        try:
            for one in self.messages:
                with self._gate:
                    future = client.publish(topic, one.payload, **one.attributes)
                    self.published[future.result(timeout=60)] = one
                next_at += self.interval
                time.sleep(max(0, next_at - time.monotonic()))
        except Exception as error:  # noted; the test fails on it
            self.error = error

    @contextlib.contextmanager
    def hold(self):
        with self._gate:
            yield

    def wait_for(self, count, timeout=120):
        """Until `count` messages are published."""
        deadline = time.monotonic() + timeout
        while len(self.published) < count and self._thread.is_alive():
            assert time.monotonic() < deadline, f"{len(self.published)} of {count} published"
            time.sleep(0.05)

    def join(self, timeout=600):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the publisher did not finish"
        assert self.error is None, f"publishing failed: {self.error!r}"
        assert len(self.published) == len(self.messages)
