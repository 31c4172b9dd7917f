"""Publishing the inlet's messages to the input topic, awaited: a message is answered 2xx
only once Pub/Sub has confirmed it (its message id in hand).

The messages go out in Publish RPCs of the GAPIC client (`google.pubsub_v1`), not through
the high-level `PublisherClient`: that one costs about 70 µs of CPU a message (a proto-plus
message, a future, a lock, a thread per batch) and holds each batch 10 ms, latency every
answer waits for. Here what arrives while RPCs are in flight goes in the next one, with no
timer: alone, a message leaves at once; under load, the RPCs fill up (natural batching).
The RPC is the same one the high-level client sends, with the same kind of retry."""

import asyncio
import collections
import concurrent.futures
import time

from google.api_core import retry
from google.pubsub_v1 import PublisherClient, types

DEFAULT_PUBLISH_TIMEOUT_SECONDS = 10.0
MAX_RPC_MESSAGES = 1000  # Pub/Sub's limit for one Publish request
MAX_RPC_BYTES = 9_000_000  # Pub/Sub's is 10 MB; room for attributes and framing
MAX_IN_FLIGHT = 4  # RPCs at once, each waited on by a thread (the GIL is free meanwhile)
_REQUEST, _MESSAGE = types.PublishRequest.pb(), types.PubsubMessage.pb()


class PublishUnavailable(Exception):
    """Pub/Sub did not take the message: the caller answers 503, and the sender retries."""


class _Part:
    """Messages of one caller that go in one RPC, and the future of their ids."""

    __slots__ = ("messages", "size", "future", "deadline")

    def __init__(self, messages, size, future, deadline):
        self.messages, self.size, self.future, self.deadline = messages, size, future, deadline


class InletPublisher:
    """One GAPIC client for the service's life. `publish(datas)` awaits the message ids.

    The client's own retry (bounded by `timeout` seconds) is the only retry: the service
    never sends a message again itself, so nothing is published twice by our doing. A
    message still queued after `timeout` is answered unavailable and never sent; one in
    an RPC is answered with what the RPC returns."""

    def __init__(self, topic_path, timeout=DEFAULT_PUBLISH_TIMEOUT_SECONDS, max_in_flight=None):
        self.topic_path = topic_path
        self.timeout = timeout
        self.client = PublisherClient()  # reads PUBSUB_EMULATOR_HOST itself
        self._retry = retry.Retry(timeout=timeout)
        self._max_in_flight = max_in_flight or MAX_IN_FLIGHT
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self._max_in_flight, thread_name_prefix="publish"
        )
        self._queue = collections.deque()
        self._in_flight = 0
        self._flush_scheduled = False
        self._idle = None  # set when nothing is queued or in flight (close waits on it)

    async def publish(self, datas, attributes=None):
        """The message id of each of `datas` (bytes), in order, or a PublishUnavailable
        in its place for those Pub/Sub did not take."""
        if not datas:
            return []
        loop = asyncio.get_running_loop()
        attributes = attributes or {}
        deadline = time.monotonic() + self.timeout
        parts, messages, size = [], [], 0
        for data in datas:
            if messages and (len(messages) == MAX_RPC_MESSAGES or size + len(data) > MAX_RPC_BYTES):
                parts.append(_Part(messages, size, loop.create_future(), deadline))
                messages, size = [], 0
            messages.append(_MESSAGE(data=data, attributes=attributes))
            size += len(data)
        parts.append(_Part(messages, size, loop.create_future(), deadline))
        self._queue.extend(parts)
        self._schedule_flush(loop)
        results = []
        for part in parts:  # each part's future is set: its RPC has its own bound
            try:
                results.extend(await part.future)
            except PublishUnavailable as error:
                results.extend([error] * len(part.messages))
        return results

    def _schedule_flush(self, loop):
        # Soon, not now: what the other requests of this turn of the loop bring joins.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)

    def _flush(self, loop):
        self._flush_scheduled = False
        while self._queue and self._in_flight < self._max_in_flight:
            parts, count, size = [], 0, 0
            while self._queue:
                part = self._queue[0]
                full = count + len(part.messages) > MAX_RPC_MESSAGES
                if parts and (full or size + part.size > MAX_RPC_BYTES):
                    break
                self._queue.popleft()
                if part.future.done():  # its request was cancelled: it was never answered
                    continue
                if time.monotonic() > part.deadline:  # never sent: a 503 is the truth
                    part.future.set_exception(PublishUnavailable("queued past the timeout"))
                    continue
                parts.append(part)
                count += len(part.messages)
                size += part.size
            if not parts:
                continue
            self._in_flight += 1
            request = _REQUEST(
                topic=self.topic_path, messages=[m for part in parts for m in part.messages]
            )
            rpc = loop.run_in_executor(self._executor, self._send, request)
            rpc.add_done_callback(lambda rpc, parts=parts: self._sent(loop, parts, rpc))
        self._check_idle()

    def _send(self, request):
        response = self.client.publish(
            request=types.PublishRequest.wrap(request), retry=self._retry, timeout=self.timeout
        )
        return response.message_ids

    def _sent(self, loop, parts, rpc):
        self._in_flight -= 1
        error = rpc.exception()
        if error is None:
            ids = list(rpc.result())
            if len(ids) != sum(len(part.messages) for part in parts):  # never seen; be sure
                error = RuntimeError(f"Pub/Sub answered {len(ids)} ids")
        offset = 0
        for part in parts:
            if part.future.done():
                pass  # its request was cancelled (a shutdown past its timeout)
            elif error is not None:
                reason = f"{type(error).__name__}: {error}"
                part.future.set_exception(PublishUnavailable(reason))
            else:
                part.future.set_result(ids[offset : offset + len(part.messages)])
            offset += len(part.messages)
        self._flush(loop)

    def _check_idle(self):
        if self._idle is not None and not self._queue and not self._in_flight:
            self._idle.set()

    async def close(self):
        """Waits for what is queued or in flight (a graceful shutdown's last step)."""
        self._idle = asyncio.Event()
        self._check_idle()
        if self._queue:
            self._schedule_flush(asyncio.get_running_loop())
        await self._idle.wait()
        self._executor.shutdown(wait=True)
        self.client.transport.close()
