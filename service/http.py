"""uvicorn's httptools protocol with the two bounds it lacks on a request's head (its
request line and headers): uvicorn takes headers of any size (20 MB were read into
memory) and waits forever for a head that never ends (a slowloris holds the connection).
The body has its own bounds (service/inlet.py: 1 MB, --body-timeout)."""

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.inlet import Problem

MAX_HEAD_BYTES = 65_536  # request line and headers; Cloud Run's front end allows 64 KiB too
DEFAULT_HEAD_TIMEOUT_SECONDS = 10.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Answers 431 to a head over MAX_HEAD_BYTES, 408 to one not all there within
    `head_timeout` seconds of the connection (or of the last answer on it), and closes."""

    head_timeout = DEFAULT_HEAD_TIMEOUT_SECONDS  # set per server (with_head_timeout)

    @classmethod
    def with_head_timeout(cls, seconds):
        return type(cls.__name__, (cls,), {"head_timeout": seconds})

    def connection_made(self, transport):
        super().connection_made(transport)
        self._head_timer, self._answered = None, False
        self._await_head()

    def _await_head(self):
        self._in_head, self._head_bytes, self._head_tail = True, 0, b""
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data):
        if self._in_head:  # counted before the parser reads it: a refused head is not read
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")  # where the head ends, if it does in this chunk
            self._head_bytes += end + 4 - len(self._head_tail) if end >= 0 else len(data)
            self._head_tail = seen[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                message = f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"
                return self._refuse(Problem(431, "header_too_large", message))
        super().data_received(data)

    def on_headers_complete(self):
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self):
        super().on_response_complete()
        self._answered = True
        if not self.transport.is_closing():  # keep-alive: the next request's head
            self._await_head()

    def connection_lost(self, exc):
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _head_too_slow(self):
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes == 0 and self._answered:
                self.transport.close()  # an idle keep-alive connection: no one to answer
                return
            seconds = f"{self.head_timeout:g}"
            self._refuse(Problem(408, "timeout", f"the headers did not come within {seconds} s"))

    def _refuse(self, problem):
        self._in_head = False
        self._cancel_head_timer()
        body = json.dumps(problem.body()).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s"
            % (problem.status, problem.body()["title"].encode(), len(body), body)
        )
        self.transport.close()
