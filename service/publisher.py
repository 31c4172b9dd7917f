"""Publishing the inlet's messages to the input topic, awaited: a message is answered 2xx
only once Pub/Sub has confirmed it (its message id in hand)."""

import asyncio

from google.api_core import retry
from google.cloud import pubsub_v1

DEFAULT_PUBLISH_TIMEOUT_SECONDS = 10.0


class PublishUnavailable(Exception):
    """Pub/Sub did not take the message: the caller answers 503, and the sender retries."""


class InletPublisher:
    """One PublisherClient for the service's life. `publish(data)` awaits the message id.

    The client's own retry (bounded by `timeout` seconds) is the only retry: the service
    never publishes a message again itself, so nothing is published twice by our doing."""

    def __init__(self, topic_path, timeout=DEFAULT_PUBLISH_TIMEOUT_SECONDS):
        self.topic_path = topic_path
        self.timeout = timeout
        self.client = pubsub_v1.PublisherClient()
        self._retry = retry.Retry(timeout=timeout)

    async def publish(self, data, attributes=None):
        try:
            future = self.client.publish(
                self.topic_path,
                data,
                retry=self._retry,
                timeout=self.timeout,
                **(attributes or {}),
            )
            # The client's timeout bounds each call; this bounds the whole wait, batching
            # and retries included.
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout + 5)
        except Exception as error:  # whatever kept the message from the topic
            raise PublishUnavailable(f"{type(error).__name__}: {error}") from error

    def close(self):
        """Sends what is batched and waits for it (a graceful shutdown's last step)."""
        self.client.stop()
