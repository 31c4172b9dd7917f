"""`ingest serve` as a real uvicorn server in a subprocess on a free port, against the
emulators of tests/conftest.py: every test speaks real HTTP to it."""

import os
import pathlib
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from domain.catalog import Catalog
from ingest import admin

ROOT = pathlib.Path(__file__).parents[2]
EXAMPLE_CATALOG = str(ROOT / "examples" / "catalog.yaml")
SERVER_KEY = "demo-key-change-me"  # crm-sync's key in examples/catalog.yaml
INSTANCE = "test-instance"
START_SECONDS = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, process, url, log_path):
        self.process, self.url, self.log_path = process, url, log_path

    def log(self):
        return self.log_path.read_text(errors="replace")


def start_server(tmp_path, topic, table, environment=None, *options, catalog=EXAMPLE_CATALOG):
    """`ingest serve` on a free port; returns once /health answers (or fails loudly)."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    env = {**os.environ, **(environment or {})}
    command = [
        sys.executable,
        "-m",
        "ingest",
        "serve",
        "--port",
        str(port),
        "--topic",
        topic,
        "--catalog",
        catalog,
        "--instance",
        INSTANCE,
        "--table",
        table,
        *options,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ingest serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    stop_server(server)
    pytest.fail(f"ingest serve did not answer within {START_SECONDS} s:\n{server.log()}")


def stop_server(server):
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def inlet_resources(emulators):
    """A topic, its subscription and a profile table of the module's own."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "project": emulators.project,
        "topic": f"inlet-{suffix}",
        "subscription": f"inlet-sub-{suffix}",
        "dead_letter_topic": f"inlet-dl-{suffix}",
        "dead_letter_subscription": f"inlet-dl-sub-{suffix}",
        "instance": INSTANCE,
        "table": f"inlet-profiles-{suffix}",
    }
    admin.create_resources(**names, catalog=Catalog.load(EXAMPLE_CATALOG))
    names["subscription_path"] = (
        f"projects/{emulators.project}/subscriptions/{names['subscription']}"
    )
    return names


@pytest.fixture(scope="module")
def server(inlet_resources, tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("serve"),
        inlet_resources["topic"],
        inlet_resources["table"],
        None,
        "--publish-timeout",
        "3",
        "--body-timeout",
        "2",
    )
    yield running
    stop_server(running)
