"""The Pub/Sub calls the commands share: checking a topic, reading a subscription until it
is quiet (`dead-letter pull` and `replay`), and showing a message's payload on one line."""

import time

from google.api_core import exceptions as api_exceptions
from google.api_core import retry

from ingest.common import CommandError, escaped, pubsub_endpoint

PUBSUB_CALL_TIMEOUT_SECONDS = 60
MAX_MESSAGES_PER_PULL = 100
MAX_ACK_IDS_PER_CALL = 1000
PAYLOAD_PREVIEW_CHARS = 200


def check_topic_exists(publisher, topic_path):
    try:
        publisher.get_topic(
            topic=topic_path,
            retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
            timeout=PUBSUB_CALL_TIMEOUT_SECONDS,
        )
    except api_exceptions.NotFound:
        raise CommandError(
            f"topic {topic_path} does not exist ({pubsub_endpoint()}). "
            "`ingest local up --topic NAME` creates it on the emulator."
        ) from None
    except api_exceptions.PermissionDenied:
        pass  # a publisher may lack pubsub.topics.get; publishing will tell


class SubscriptionReader:
    """Reads a subscription until no new message has come for `wait` seconds, giving each
    message once: a message held unacknowledged past its ack deadline comes again, and is
    then a repeat.

    The caller acknowledges or holds each message it is given. Held messages, and repeats
    (unless ack_repeats), are released when the reader is closed, so that they are at once
    available again instead of after their ack deadline. With stop_at_repeats, a pull that
    brings only repeats ends the reading: every message still there has been seen.

        with SubscriptionReader(subscriber, path, wait=5) as reader:
            for messages in reader.batches(remaining=lambda: ...):
                ...
    """

    def __init__(
        self, subscriber, subscription_path, wait, ack_repeats=False, stop_at_repeats=False
    ):
        self.subscriber = subscriber
        self.subscription_path = subscription_path
        self.wait = wait
        self.ack_repeats = ack_repeats
        self.stop_at_repeats = stop_at_repeats
        self.seen_message_ids = set()
        self._held_ack_ids = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release(self._held_ack_ids)
        self._held_ack_ids = []

    def batches(self, remaining=lambda: None):
        """Yields the new messages of each pull that brings any. `remaining()` is how many
        more messages are wanted (None: no limit); reading stops when it is 0."""
        quiet_until = time.monotonic() + self.wait
        while True:
            wanted = remaining()
            if wanted is not None and wanted <= 0:
                return
            seconds_left = quiet_until - time.monotonic()
            if seconds_left <= 0:
                return
            max_messages = min(wanted or MAX_MESSAGES_PER_PULL, MAX_MESSAGES_PER_PULL)
            received_messages = self._pull(max_messages, seconds_left)
            new_messages, repeats = [], []
            for received in received_messages:
                if received.message.message_id in self.seen_message_ids:
                    repeats.append(received)
                else:
                    self.seen_message_ids.add(received.message.message_id)
                    new_messages.append(received)
            if repeats:
                if self.ack_repeats:
                    self.acknowledge(repeats)
                else:
                    self.hold(repeats)
            if self.stop_at_repeats and repeats and not new_messages:
                return
            if new_messages:
                quiet_until = time.monotonic() + self.wait
                yield new_messages

    def acknowledge(self, received_messages):
        if received_messages:
            self.subscriber.acknowledge(
                request={
                    "subscription": self.subscription_path,
                    "ack_ids": [received.ack_id for received in received_messages],
                }
            )

    def hold(self, received_messages):
        """Leave the messages on the subscription: released when the reader is closed."""
        self._held_ack_ids.extend(received.ack_id for received in received_messages)

    def release(self, ack_ids):
        """Make the messages available again at once, instead of after their ack deadline."""
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_CALL):
            self.subscriber.modify_ack_deadline(
                request={
                    "subscription": self.subscription_path,
                    "ack_ids": ack_ids[start : start + MAX_ACK_IDS_PER_CALL],
                    "ack_deadline_seconds": 0,
                }
            )

    def _pull(self, max_messages, seconds_left):
        """One pull from the subscription: the messages received, none if the call timed out."""
        try:
            response = self.subscriber.pull(
                request={"subscription": self.subscription_path, "max_messages": max_messages},
                retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
                timeout=max(seconds_left, 1.0),
            )
        except api_exceptions.DeadlineExceeded:
            return []
        except api_exceptions.NotFound:
            raise CommandError(
                f"subscription {self.subscription_path} does not exist ({pubsub_endpoint()}). "
                "`ingest local up --dead-letter-subscription NAME` creates it on the emulator."
            ) from None
        return response.received_messages


def payload_preview(data):
    payload = data.decode("utf-8", errors="replace")
    preview = payload[:PAYLOAD_PREVIEW_CHARS]
    # One line per message, whatever the payload holds, and nothing a terminal acts on.
    preview = escaped(preview)
    if len(payload) > PAYLOAD_PREVIEW_CHARS:
        preview += f"... ({len(data)} bytes)"
    return preview
