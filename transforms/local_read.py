"""The Pub/Sub read of a local run: a background pull, and bundles of what it has pulled.

The DirectRunner's own read makes each bundle out of one synchronous pull of at most 10
messages, on the runner's only thread, and the runner's cost is per bundle: a local
pipeline then spends its time pulling, and a record waits for the pulls in front of it.
Here a thread of its own pulls the subscription (blocking pulls of up to 1,000 messages,
acknowledged by another thread once queued, as the DirectRunner acknowledges its own) and
the runner's read step only takes what is queued: every message pulled so far, up to
`bundle_size`, at once. When nothing is queued it waits at most IDLE_WAIT_SECONDS and then
returns empty, so that the watermark, and with it the lake's windows, moves on while the
topic is quiet. A failed pull is retried, backing off, for as long as it fails: an outage
of Pub/Sub is waited out, with a WARNING each time, never the end of the pipeline.

DirectRunner only (Dataflow's read is its own): the step is evaluated by
_LocalReadEvaluator, registered with the runner's evaluators (docs/private-apis.md).
"""

import collections
import datetime
import logging
import queue
import threading
import time

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.runners.direct.transform_evaluator import (
    TransformEvaluatorRegistry,
    _TransformEvaluator,
)
from apache_beam.runners.direct.util import TransformResult
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from domain.pubsub_clients import subscriber_client

MAX_PULL_MESSAGES = 1000  # the most one pull asks for
IDLE_WAIT_SECONDS = 0.5
PULL_TIMEOUT_SECONDS = 30
MAX_BACKOFF_SECONDS = 30
QUEUED_BUNDLES = 20  # the pull waits while this many bundles' worth are queued

_LOG = logging.getLogger(__name__)
_DRAINING = threading.Event()


def drain():
    """Stops every local read of the process from taking new messages: each then hands on
    what it has queued, waits for its acknowledgements to be sent, and ends, its watermark
    at the end of time, so that every window closes and the pipeline finishes. What a
    pull brings after this is released (nacked), not queued: Pub/Sub delivers it again."""
    _DRAINING.set()


class LocalPubSubRead(beam.PTransform):
    """Unbounded PubsubMessages (attributes included) of one subscription."""

    def __init__(self, subscription, bundle_size):
        super().__init__()
        self.subscription = subscription
        self.bundle_size = bundle_size

    def expand(self, pbegin):
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)

    def get_windowing(self, unused_inputs):
        return beam.Windowing(GlobalWindows())


class BackgroundPull:
    """One thread pulling one subscription into a queue; `take` empties the queue."""

    _started = {}
    _started_lock = threading.Lock()

    @classmethod
    def of(cls, subscription, bundle_size):
        """The process's one pull of `subscription`, started on first use."""
        with cls._started_lock:
            pull = cls._started.get(subscription)
            if pull is None:
                pull = cls._started[subscription] = cls(subscription, bundle_size)
                pull.start()
            return pull

    @classmethod
    def close(cls, subscription):
        """Stops the process's pull of `subscription`, if it has one."""
        with cls._started_lock:
            pull = cls._started.pop(subscription, None)
        if pull is not None:
            pull.stop()

    def __init__(self, subscription, bundle_size, client=None):
        self.subscription = subscription
        self.capacity = max(bundle_size, MAX_PULL_MESSAGES) * QUEUED_BUNDLES
        self._client = client
        self._queue = collections.deque()
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self._acks = queue.SimpleQueue()  # ack ids, acknowledged by a thread of their own
        self._thread = threading.Thread(target=self._run, name=f"pull {subscription}", daemon=True)
        self._ack_thread = threading.Thread(
            target=self._acknowledge_queued, name=f"ack {subscription}", daemon=True
        )

    def start(self):
        if self._client is None:
            self._client = subscriber_client()
        self._thread.start()
        self._ack_thread.start()

    def stop(self):
        self._stopped.set()
        with self._changed:
            self._changed.notify_all()
        self._acks.put(None)
        self._thread.join(timeout=PULL_TIMEOUT_SECONDS + 5)
        self._ack_thread.join(timeout=PULL_TIMEOUT_SECONDS + 5)

    def take(self, most, wait_seconds):
        """Up to `most` queued messages, oldest first: waits up to `wait_seconds` for one."""
        with self._changed:
            if not self._queue:
                self._changed.wait(wait_seconds)
            taken = [self._queue.popleft() for _ in range(min(most, len(self._queue)))]
            self._changed.notify_all()  # room for the pull
            return taken

    def drained(self):
        """Once draining: True when nothing is queued and every acknowledgement is sent."""
        with self._changed:
            if self._queue:
                return False
        if self._ack_thread.is_alive():
            self._acks.put(None)  # the ack thread sends what it holds, then ends
            self._ack_thread.join(timeout=PULL_TIMEOUT_SECONDS + 5)
        return True

    def _release(self, ack_ids):
        try:
            self._client.modify_ack_deadline(
                request={
                    "subscription": self.subscription,
                    "ack_ids": ack_ids,
                    "ack_deadline_seconds": 0,
                }
            )
        except Exception as error:  # they come back after their ack deadline instead
            _LOG.warning(
                "releasing %d messages pulled while draining failed: %s", len(ack_ids), error
            )

    def oldest(self):
        with self._changed:
            return self._queue[0] if self._queue else None

    def _run(self):
        failures = 0
        while not self._stopped.is_set() and not _DRAINING.is_set():
            with self._changed:
                while len(self._queue) >= self.capacity and not self._stopped.is_set():
                    self._changed.wait(1)
            try:
                pulled = self._pull()
                if pulled and _DRAINING.is_set():
                    self._release([received.ack_id for received in pulled])
                    return
                if pulled:
                    messages = [_message(received.message) for received in pulled]
                    with self._changed:
                        self._queue.extend(messages)
                        self._changed.notify_all()
                    self._acks.put([received.ack_id for received in pulled])
            except Exception as error:  # any failure of Pub/Sub is waited out
                failures += 1
                backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(failures, 8))
                _LOG.warning(
                    "pulling %s failed (%s: %s), %d in a row; trying again in %.1f s",
                    self.subscription,
                    type(error).__name__,
                    error,
                    failures,
                    backoff,
                )
                self._stopped.wait(backoff)
                continue
            if failures:
                _LOG.warning("pulling %s again after %d failures", self.subscription, failures)
                failures = 0

    def _pull(self):
        from google.api_core import exceptions

        try:
            response = self._client.pull(
                request={"subscription": self.subscription, "max_messages": MAX_PULL_MESSAGES},
                timeout=PULL_TIMEOUT_SECONDS,
                retry=None,
            )
        except exceptions.DeadlineExceeded:
            return []  # an idle pull
        # The raw protobuf: proto-plus wrappers are slow to read, message by message.
        return type(response).pb(response).received_messages

    def _acknowledge_queued(self):
        """Acknowledges what the pull has queued, apart from it: an acknowledgement takes
        the emulator about as long as a pull, and the pull need not wait for it."""
        while True:
            ack_ids = self._acks.get()
            if ack_ids is None:
                return
            while not self._acks.empty() and len(ack_ids) < 5000:
                more = self._acks.get()
                if more is None:
                    self._acks.put(None)
                    break
                ack_ids.extend(more)
            for start in range(0, len(ack_ids), 500):  # an ack request is at most 512 KB
                self._acknowledge(ack_ids[start : start + 500])

    def _acknowledge(self, ack_ids):
        """Tried until it works: an ack lost would have the message delivered again."""
        failures = 0
        while True:
            try:
                self._client.acknowledge(
                    request={"subscription": self.subscription, "ack_ids": ack_ids}
                )
                return
            except Exception as error:
                failures += 1
                if self._stopped.is_set() or failures > 10:
                    _LOG.warning(
                        "acknowledging %d messages of %s failed (%s); they will be delivered again",
                        len(ack_ids),
                        self.subscription,
                        error,
                    )
                    return
                self._stopped.wait(min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))


class _LocalReadEvaluator(_TransformEvaluator):
    """Each bundle of the read: what the background pull has queued, up to bundle_size."""

    def start_bundle(self):
        pass

    def process_element(self, element):
        pass

    def finish_bundle(self):
        transform = self._applied_ptransform.transform
        pull = BackgroundPull.of(transform.subscription, transform.bundle_size)
        taken = pull.take(transform.bundle_size, IDLE_WAIT_SECONDS)
        if not taken and _DRAINING.is_set() and pull.drained():
            _LOG.info(
                "the read of %s is drained: every message taken is handed on", pull.subscription
            )
            return TransformResult(self, [], [], None, {None: MAX_TIMESTAMP})
        bundles = []
        if taken:
            bundle = self._evaluation_context.create_bundle(next(iter(self._outputs)))
            for message in taken:
                bundle.output(GlobalWindows.windowed_value(message, timestamp=_timestamp(message)))
            bundles.append(bundle)
        # Hold the watermark at the oldest message still queued, else the wall clock, as
        # the DirectRunner's read holds it at the time its pull returned.
        oldest = pull.oldest()
        hold = _timestamp(oldest) if oldest else Timestamp.of(time.time())
        unprocessed = self._evaluation_context.create_bundle(
            pvalue.PBegin(self._applied_ptransform.transform.pipeline)
        )
        return TransformResult(self, bundles, [unprocessed], None, {None: hold})


def _timestamp(message):
    if message.publish_time is None:
        return Timestamp.of(time.time())
    return Timestamp.from_utc_datetime(message.publish_time)


def _message(pulled):
    """The PubsubMessage the DirectRunner's read makes of a pulled message (protobuf)."""
    publish_time = (
        pulled.publish_time.ToDatetime(tzinfo=datetime.timezone.utc)
        if pulled.HasField("publish_time")
        else None
    )
    return PubsubMessage(
        pulled.data,
        dict(pulled.attributes),
        message_id=pulled.message_id or None,
        publish_time=publish_time,
        ordering_key=pulled.ordering_key,
    )


TransformEvaluatorRegistry._test_evaluators_overrides[LocalPubSubRead] = _LocalReadEvaluator
