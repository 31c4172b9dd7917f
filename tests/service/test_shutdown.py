"""Graceful shutdown over real HTTP: a SIGTERM while requests are in flight lets them
finish, every 2xx answered is on the topic (pulled from the emulator), and the process
exits 0."""

import concurrent.futures
import signal
import socket
import threading
import time

import httpx

from pubsub_helpers import pull_messages
from tests.service.conftest import SERVER_KEY, start_server
from tests.service.test_inlet import ADA, JSON, KEY

SENDERS = 8


def send_until_refused(url, stop, answers):
    """Posts one message after another on a keep-alive connection until the server is
    gone; keeps every answer."""
    with httpx.Client(headers={**JSON, **KEY}, timeout=30) as client:
        while not stop.is_set():
            try:
                answers.append(client.post(url + "/collection/crm-sync", content=ADA))
            except httpx.TransportError:
                return  # the server stopped taking connections


def test_sigterm_finishes_the_publishes_in_flight_and_every_2xx_is_on_the_topic(
    inlet_resources, tmp_path
):
    server = start_server(
        tmp_path, inlet_resources["topic"], inlet_resources["table"], None, "--body-timeout", "20"
    )
    host, port = server.url.removeprefix("http://").split(":")
    # One request certainly in flight: its head and half its body sent before the SIGTERM.
    held = socket.create_connection((host, int(port)), timeout=30)
    held.sendall(
        b"POST /collection/crm-sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"x-api-key: %s\r\nContent-Length: %d\r\n\r\n" % (SERVER_KEY.encode(), len(ADA)) + ADA[:100]
    )
    stop, answers = threading.Event(), []
    with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
        senders = [
            pool.submit(send_until_refused, server.url, stop, answers) for _ in range(SENDERS)
        ]
        time.sleep(1.5)  # a stream of publishes from every sender
        answered_before = len(answers)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1)  # uvicorn has stopped listening: new connections are refused
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        held.sendall(ADA[100:])  # the request in flight completes after the SIGTERM
        held_answer = held.recv(65536)
        held.close()
        stop.set()
        for sender in senders:
            sender.result()
    returncode = server.process.wait(timeout=30)

    log = server.log()
    assert refused, log
    assert held_answer.startswith(b"HTTP/1.1 200"), held_answer
    held_id = httpx.Response(200, content=held_answer.partition(b"\r\n\r\n")[2]).json()
    assert returncode == 0, log
    assert answered_before > 0
    assert all(a.status_code == 200 for a in answers), {a.status_code for a in answers}
    answered = {a.json()["xactionId"] for a in answers} | {held_id["xactionId"]}
    published = pull_messages(inlet_resources["subscription_path"], expected_count=len(answered))
    ids = [m.message_id for m in published]
    assert set(ids) >= answered
    assert len(ids) == len(set(ids))  # nothing published twice
