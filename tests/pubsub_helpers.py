"""Helpers the tests share for reading what landed on a Pub/Sub subscription."""

import time

from domain.pubsub_clients import subscriber_client


def pull_messages(subscription_path, expected_count, timeout=15.0):
    """Pull and acknowledge until expected_count messages came, then check no more come."""
    messages = []
    with subscriber_client() as subscriber:
        deadline = time.monotonic() + timeout
        while len(messages) < expected_count and time.monotonic() < deadline:
            response = subscriber.pull(
                request={"subscription": subscription_path, "max_messages": 100}, timeout=5
            )
            if response.received_messages:
                messages += [received.message for received in response.received_messages]
                subscriber.acknowledge(
                    request={
                        "subscription": subscription_path,
                        "ack_ids": [received.ack_id for received in response.received_messages],
                    }
                )
        # The emulator answers an empty pull about a second before the timeout: this is quick.
        extra = subscriber.pull(
            request={"subscription": subscription_path, "max_messages": 100}, timeout=1
        )
        messages += [received.message for received in extra.received_messages]
    return messages
