"""ingest.dev.local_stack: the emulators started, found running and stopped, for real."""

import socket

import pytest

from ingest.admin import port_accepts_connections
from ingest.dev import local_stack, processes


def accepts_connections(emulator):
    return port_accepts_connections(emulator.host, emulator.port)


def test_start_is_idempotent_and_stop_ends_the_emulators(tmp_path):
    first = local_stack.start(tmp_path, pubsub_port=0, bigtable_port=0)
    try:
        assert first.pubsub.port != first.bigtable.port
        assert accepts_connections(first.pubsub)
        assert accepts_connections(first.bigtable)

        again = local_stack.start(tmp_path, pubsub_port=0, bigtable_port=0)
        assert again.already_running
        assert (again.pubsub.pid, again.bigtable.pid) == (first.pubsub.pid, first.bigtable.pid)
    finally:
        stopped = local_stack.stop(tmp_path)

    assert [emulator.name for emulator in stopped] == ["pubsub", "bigtable"]
    assert not accepts_connections(first.pubsub)
    assert not accepts_connections(first.bigtable)
    assert not (tmp_path / "stack.json").exists()
    assert local_stack.stop(tmp_path) == []


def test_start_refuses_a_port_that_is_in_use(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy_port = listener.getsockname()[1]

        with pytest.raises(
            local_stack.LocalStackError, match=f"Port {busy_port} .* already in use"
        ):
            local_stack.start(tmp_path, pubsub_port=busy_port, bigtable_port=0)

    assert not (tmp_path / "stack.json").exists()


def test_start_without_emulators_or_docker_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud, java or docker to be found
    monkeypatch.delenv("CLOUDSDK_ROOT_DIR", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(processes, "DEFAULT_SDK_ROOT", str(tmp_path / "no-sdk"))
    processes._sdk_root_from_gcloud.cache_clear()
    try:
        with pytest.raises(local_stack.LocalStackError) as raised:
            local_stack.start(tmp_path / "state", pubsub_port=0, bigtable_port=0)
    finally:
        processes._sdk_root_from_gcloud.cache_clear()

    message = str(raised.value)
    assert (
        "apt-get install google-cloud-cli-pubsub-emulator google-cloud-cli-bigtable-emulator"
        in message
    )
    assert "openjdk" in message
    assert "Docker" in message
