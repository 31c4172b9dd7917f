"""The local read's background pull: a thread pulling one subscription into a queue,
and another acknowledging what was taken from it once the pipeline has made it durable.

The pull makes blocking pulls of up to 1,000 messages, and a failed pull is retried,
backing off, for as long as it fails: an outage of Pub/Sub is waited out, with a WARNING
each time, never the end of the pipeline. A message is acknowledged only once durable
(_Pulled), and its lease extended until then. The read step that takes from the queue,
and what it stamps, is transforms/local_read.py's.
"""

import collections
import datetime
import logging
import threading
import time

from apache_beam.io.gcp.pubsub import PubsubMessage

from domain.pubsub_clients import subscriber_client

MAX_PULL_MESSAGES = 1000  # the most one pull asks for
PULL_TIMEOUT_SECONDS = 30
MAX_BACKOFF_SECONDS = 30
ACK_IDS_PER_CALL = 500  # an acknowledgement request is at most 512 KB
SETTLE_SECONDS = 0.2  # how often what is held is looked at: acknowledged, its lease extended
MIN_LEASE_SECONDS = 30
DEFAULT_ACK_DEADLINE_SECONDS = 10  # Pub/Sub's, and its least: assumed when it cannot be read
QUEUED_BUNDLES = 20  # the pull waits while this many bundles' worth are queued

_LOG = logging.getLogger(__name__)
_DRAINING = threading.Event()


def draining():
    return _DRAINING.is_set()


def drain():
    """Stops every local read of the process from taking new messages: each then hands on
    what it has queued and ends, its watermark at the end of time, so that every window
    closes and the pipeline finishes (BackgroundPull.finish_all then acknowledges what it
    took). What a pull brings after this is released (nacked), not queued: Pub/Sub
    delivers it again."""
    _DRAINING.set()


class BackgroundPull:
    """One thread pulling one subscription into a queue, `take` emptying it, and one
    acknowledging what was taken once the pipeline has made it durable.

    A message is acknowledged only once every step's output watermark has passed it and
    the windows it fell in have closed (see _Pulled), and its lease is extended while it
    is held: a crash, even a SIGKILL, leaves on the subscription every message whose
    lake file, Bigtable cells or dead letter were not all written, and Pub/Sub delivers
    them again (the sinks write a copy once: domain/lake_dedup.py)."""

    _started = {}
    _started_lock = threading.Lock()

    @classmethod
    def of(cls, subscription, bundle_size, window_seconds=None):
        """The process's one pull of `subscription`, started on first use."""
        with cls._started_lock:
            pull = cls._started.get(subscription)
            if pull is None:
                pull = cls._started[subscription] = cls(subscription, bundle_size, window_seconds)
                pull.start()
            return pull

    @classmethod
    def close(cls, subscription):
        """Stops the process's pull of `subscription`, if it has one, acknowledging
        nothing more: what it holds is delivered again."""
        with cls._started_lock:
            pull = cls._started.pop(subscription, None)
        if pull is not None:
            pull.stop()

    @classmethod
    def finish_all(cls):
        """Once the pipeline has finished without error (every window closed and written):
        acknowledges everything taken, releases what was not, and stops every pull."""
        with cls._started_lock:
            pulls = list(cls._started.values())
            cls._started.clear()
        for pull in pulls:
            pull.finish()

    def __init__(self, subscription, bundle_size, window_seconds=None, client=None):
        self.subscription = subscription
        self.capacity = max(bundle_size, MAX_PULL_MESSAGES) * QUEUED_BUNDLES
        self.window_seconds = window_seconds
        self._client = client
        self._queue = collections.deque()  # (message, the _Pulled it came in)
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self._held = collections.deque()  # _Pulled, in pull order, until acknowledged
        self._held_lock = threading.Lock()
        self._watermark = None  # () -> seconds: the least output watermark of all steps
        # A pulled message's lease is first the subscription's ack deadline; extended, it
        # is at least MIN_LEASE_SECONDS, so that a short deadline costs fewer extensions.
        self._deadline_seconds = DEFAULT_ACK_DEADLINE_SECONDS
        self._lease_seconds = MIN_LEASE_SECONDS
        self._unanswered = 0  # pulls in a row that had no answer within their deadline
        self._thread = threading.Thread(target=self._run, name=f"pull {subscription}", daemon=True)
        self._ack_thread = threading.Thread(
            target=self._settle_held, name=f"ack {subscription}", daemon=True
        )

    def start(self):
        if self._client is None:
            self._client = subscriber_client()
        self._deadline_seconds = self._ack_deadline()
        self._lease_seconds = max(MIN_LEASE_SECONDS, self._deadline_seconds)
        self._thread.start()
        self._ack_thread.start()

    def watch(self, watermark):
        """Acknowledges by `watermark`, a function giving the pipeline's least output
        watermark, in seconds (the read's evaluator gives it the runner's)."""
        self._watermark = watermark

    def stop(self):
        self._stopped.set()
        with self._changed:
            self._changed.notify_all()
        # Not waiting out a pull in flight (up to PULL_TIMEOUT_SECONDS): what it brings
        # after this is released by the pull thread itself.
        self._thread.join(timeout=1)
        self._ack_thread.join(timeout=PULL_TIMEOUT_SECONDS + 5)

    def finish(self):
        self.stop()
        with self._held_lock:
            held, self._held = list(self._held), collections.deque()
        taken = [i for pulled in held if pulled.taken_at is not None for i in pulled.ack_ids]
        untaken = [i for pulled in held if pulled.taken_at is None for i in pulled.ack_ids]
        for start in range(0, len(taken), ACK_IDS_PER_CALL):
            self._acknowledge(taken[start : start + ACK_IDS_PER_CALL])
        if untaken:
            self._release(untaken)

    def take(self, most, wait_seconds, stamp=None):
        """Up to `most` queued messages, oldest first: waits up to `wait_seconds` for one.
        `stamp`: the time they are taken at, their elements' timestamp (now if None)."""
        with self._changed:
            if not self._queue:
                self._changed.wait(wait_seconds)
            entries = [self._queue.popleft() for _ in range(min(most, len(self._queue)))]
            self._changed.notify_all()  # room for the pull
        stamp = time.time() if stamp is None else stamp
        with self._held_lock:
            for _, pulled in entries:
                pulled.untaken -= 1
                if not pulled.untaken:
                    pulled.taken_at = stamp
        return [message for message, _ in entries]

    def drained(self):
        """Once draining: True when nothing is queued."""
        with self._changed:
            return not self._queue

    def held(self):
        """How many messages are taken or queued and not yet acknowledged."""
        with self._held_lock:
            return sum(len(pulled.ack_ids) for pulled in self._held)

    def _release(self, ack_ids):
        if not self._modify_deadlines(ack_ids, 0):  # they come back after their deadline
            _LOG.warning("releasing %d messages failed", len(ack_ids))

    def _modify_deadlines(self, ack_ids, seconds):
        """Sets the ack deadline of these messages `seconds` from now: True if all were."""
        for start in range(0, len(ack_ids), ACK_IDS_PER_CALL):
            try:
                self._client.modify_ack_deadline(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": ack_ids[start : start + ACK_IDS_PER_CALL],
                        "ack_deadline_seconds": seconds,
                    },
                    timeout=PULL_TIMEOUT_SECONDS,
                )
            except Exception as error:
                _LOG.warning("modifying the deadline of %d messages: %s", len(ack_ids), error)
                return False
        return True

    def _run(self):
        failures = 0
        while not self._stopped.is_set() and not _DRAINING.is_set():
            with self._changed:
                while len(self._queue) >= self.capacity and not self._stopped.is_set():
                    self._changed.wait(1)
            try:
                pulled_at = time.monotonic()
                received = self._pull()
                if received and (_DRAINING.is_set() or self._stopped.is_set()):
                    self._release([r.ack_id for r in received])
                    return
                if received:
                    pulled = _Pulled(
                        [r.ack_id for r in received], pulled_at + self._deadline_seconds
                    )
                    with self._held_lock:
                        self._held.append(pulled)
                    with self._changed:
                        self._queue.extend((_message(r.message), pulled) for r in received)
                        self._changed.notify_all()
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
            # An idle pull is answered, empty, before its deadline; no answer at all, twice
            # in a row, is a Pub/Sub that is down or frozen: said, and waited out.
            self._unanswered += 1
            if self._unanswered >= 2:
                _LOG.warning(
                    "pulling %s: no answer from Pub/Sub for %d s; still trying",
                    self.subscription,
                    self._unanswered * PULL_TIMEOUT_SECONDS,
                )
            return []
        if self._unanswered >= 2:
            _LOG.warning("pulling %s: Pub/Sub answers again", self.subscription)
        self._unanswered = 0
        # The raw protobuf: proto-plus wrappers are slow to read, message by message.
        return type(response).pb(response).received_messages

    def _ack_deadline(self):
        try:
            subscription = self._client.get_subscription(
                request={"subscription": self.subscription}, timeout=10
            )
            return subscription.ack_deadline_seconds
        except Exception:  # the pull will say what is wrong, and wait it out
            return DEFAULT_ACK_DEADLINE_SECONDS

    def _settle_held(self):
        """Every SETTLE_SECONDS: acknowledges what is durable, extends the lease of the
        rest that is near its end."""
        while not self._stopped.wait(SETTLE_SECONDS):
            try:
                self._acknowledge_durable()
                self._extend_leases()
            except Exception:  # a bug of ours: held messages come again, nothing is lost
                _LOG.exception("settling the messages held from %s failed", self.subscription)

    def _acknowledge_durable(self):
        if self._watermark is None:
            return
        watermark, now = self._watermark(), time.time()
        durable = []
        with self._held_lock:
            for pulled in self._held:
                if pulled.durable(watermark, now, self.window_seconds):
                    durable.append(pulled)
            for pulled in durable:
                self._held.remove(pulled)
        ack_ids = [ack_id for pulled in durable for ack_id in pulled.ack_ids]
        for start in range(0, len(ack_ids), ACK_IDS_PER_CALL):
            self._acknowledge(ack_ids[start : start + ACK_IDS_PER_CALL])

    def _extend_leases(self):
        now = time.monotonic()
        with self._held_lock:
            # A third of the shortest lease before its end: time for the call, and to retry it.
            margin = self._deadline_seconds / 3
            due = [p for p in self._held if p.lease_ends - now < margin]
        ack_ids = [ack_id for pulled in due for ack_id in pulled.ack_ids]
        if not self._modify_deadlines(ack_ids, self._lease_seconds):
            return  # tried again on the next round; at worst, a copy the lake leaves out
        for pulled in due:
            pulled.lease_ends = now + self._lease_seconds

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
                if failures > 10:
                    _LOG.warning(
                        "acknowledging %d messages of %s failed (%s); they will be delivered again",
                        len(ack_ids),
                        self.subscription,
                        error,
                    )
                    return
                time.sleep(min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))


class _Pulled:
    """The messages of one pull, held until durable.

    They are durable once every step's output watermark has passed the time they were
    taken at, so each step has handled them and stamped what it made of them (the lake and
    the dead letter stamp by the clock: no later than the moment this is seen,
    `settled_at`), and then has passed the end of the window `settled_at` falls in: every
    window they were written in has closed, its file renamed into place."""

    __slots__ = ("ack_ids", "lease_ends", "untaken", "taken_at", "settled_at")

    def __init__(self, ack_ids, lease_ends):
        self.ack_ids = ack_ids
        self.lease_ends = lease_ends  # time.monotonic()
        self.untaken = len(ack_ids)
        self.taken_at = None  # time.time() the last of them was taken at
        self.settled_at = None

    def durable(self, watermark, now, window_seconds):
        if self.taken_at is None:
            return False
        if self.settled_at is None:
            if watermark <= self.taken_at:
                return False
            self.settled_at = now
        if window_seconds is None:
            return True
        return watermark >= (self.settled_at // window_seconds + 1) * window_seconds


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
