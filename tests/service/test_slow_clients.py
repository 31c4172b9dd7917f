"""Clients that send slowly, stall, or send too much before their body, over real
sockets: each is answered or cut off within its timeout, and the server serves the others
meanwhile and after (the module's server: --body-timeout 2)."""

import socket
import time

import httpx
import pytest

from pubsub_helpers import pull_messages
from service.http import MAX_HEAD_BYTES
from tests.service.conftest import SERVER_KEY
from tests.service.test_inlet import ADA, KEY, post

BODY_TIMEOUT = 2  # the module's server's --body-timeout (conftest.py)
HEAD = (
    b"POST /collection/crm-sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"x-api-key: " + SERVER_KEY.encode() + b"\r\nContent-Length: %d\r\n\r\n"
)


def connect(server):
    host, port = server.url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT + 8)
    return client


def answer_of(client):
    """One answer the server sent (head and body), or what came before it closed."""
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < answer_length(data):
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def answer_length(data):
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return len(head) + 4


def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_the_timeout_while_others_are_served(
    server, inlet_resources
):
    trickle = connect(server)
    trickle.sendall(HEAD % len(ADA))
    started = time.monotonic()
    served = []
    for byte in ADA[:40]:  # a byte every 0.1 s: never idle, far too slow
        try:
            trickle.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break  # cut off
        if len(served) < 3:  # others meanwhile, each answered at once
            before = time.monotonic()
            served.append((post(server, "/collection/crm-sync", ADA), time.monotonic() - before))
        time.sleep(0.1)
        if time.monotonic() - started > BODY_TIMEOUT + 1:
            break
    answer = answer_of(trickle)
    trickle.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"timeout" in answer
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 5
    assert [a.status_code for a, _ in served] == [200, 200, 200]
    assert max(seconds for _, seconds in served) < 1.5
    published = pull_messages(inlet_resources["subscription_path"], expected_count=3)
    assert {m.message_id for m in published} == {a.json()["xactionId"] for a, _ in served}


def test_many_stalled_clients_do_not_keep_the_server_from_others(server, inlet_resources):
    stalled = []
    for index in range(50):  # half stall in their body, half in their headers
        client = connect(server)
        client.sendall(HEAD % 500 + b'{"header"' if index % 2 else b"POST /collection/crm-sync")
        stalled.append(client)
    before = time.monotonic()
    assert post(server, "/collection/crm-sync", ADA).status_code == 200
    assert time.monotonic() - before < 1.5
    answers = [answer_of(client) for client in stalled]
    for client in stalled:
        client.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
    assert httpx.get(server.url + "/health").status_code == 200
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1


def test_headers_that_never_end_are_answered_408_at_the_timeout(server):
    client = connect(server)
    started = time.monotonic()
    client.sendall(b"POST /collection/crm-sync HTTP/1.1\r\nHost: x\r\nx-api-key: ")
    answer = answer_of(client)
    client.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 5


@pytest.mark.parametrize("size", [MAX_HEAD_BYTES, 20_000_000])
def test_headers_over_64_kib_are_431_and_not_read(server, size):
    client = connect(server)
    try:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before the 20 MB were all sent
    answer = answer_of(client)
    client.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"status": 431' in answer and b"header_too_large" in answer
    assert httpx.get(server.url + "/health").status_code == 200


def test_headers_just_under_the_limit_are_read(server, inlet_resources):
    padding = "a" * (MAX_HEAD_BYTES - 1000)  # the rest of the head fits in 1,000 bytes
    answer = post(server, "/collection/crm-sync", ADA, {"X-Padding": padding, **KEY})
    assert answer.status_code == 200, answer.text
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1
