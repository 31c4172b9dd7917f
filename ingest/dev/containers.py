"""The emulators as Docker containers, through testcontainers: the way when the Google
Cloud CLI's emulators are not installed but a Docker engine answers."""

import logging
import shutil
import subprocess
import time

from ingest.admin import port_accepts_connections
from ingest.dev.emulators import SPECS, Emulator, LocalStackError, Stack, save_stack

logger = logging.getLogger(__name__)

DOCKER_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"


def docker_is_available():
    """True if a Docker engine answers (the `docker` client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def start_containers(state_dir, ports, timeout):
    """Start each emulator in a container of DOCKER_IMAGE, wait until all are ready; the stack."""
    # Imported here: testcontainers is needed only on this path (it comes with the test extra).
    try:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
    except ImportError as error:
        raise LocalStackError(
            "Docker is running, but starting the emulators with it needs the Python package "
            "testcontainers: pip install 'testcontainers>=4.8'"
        ) from error

    # Ryuk removes a session's containers when the process that started them exits;
    # these must outlive `ingest local up`. `stop` removes them instead.
    testcontainers_config.ryuk_disabled = True
    state_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    started_at = time.monotonic()
    containers = []
    emulators = {}
    logger.info(
        "Starting the emulators in %s (the first pull of this large image takes minutes).",
        DOCKER_IMAGE,
    )
    try:
        for name, spec in SPECS.items():
            container = DockerContainer(DOCKER_IMAGE, command=spec.container_command)
            container.with_bind_ports(spec.container_port, ports[name])
            containers.append(container)
            container.start()
            _wait_for_container_log(container, spec, deadline, timeout)
            emulator = Emulator(
                name=name,
                kind="container",
                host=container.get_container_host_ip(),
                port=int(container.get_exposed_port(spec.container_port)),
                container_id=container.get_container_id(),
            )
            emulators[name] = emulator
            _wait_for_port(emulator, deadline)
            logger.info(
                "%s is up on %s (container %s) after %.1f s.",
                spec.title,
                emulator.address,
                emulator.container_id[:12],
                time.monotonic() - started_at,
            )
        stack = Stack.of(state_dir, emulators)
        save_stack(stack)
        return stack
    except BaseException:
        for container in containers:
            try:
                container.stop()
            except Exception:  # best effort: the original error is the one to report
                pass
        raise


def _wait_for_container_log(container, spec, deadline, timeout):
    # A plain loop over get_logs() rather than testcontainers' wait helpers, whose API
    # changed within 4.x (wait_for_logs is deprecated since the wait strategies came).
    while True:
        stdout, stderr = container.get_logs()
        logs = (stdout + stderr).decode(errors="replace")
        if spec.ready_message in logs:
            return
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        tail = "Its last log lines:\n    " + "\n    ".join(logs.splitlines()[-15:])
        if wrapped.status in ("exited", "dead"):
            raise LocalStackError(f"The {spec.title} container exited before it was ready. {tail}")
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"The {spec.title} container was not ready after {timeout} s. {tail}"
            )
        time.sleep(0.5)


def _wait_for_port(emulator, deadline):
    while not port_accepts_connections(emulator.host, emulator.port):
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"{emulator.spec.title} logged that it is ready, but {emulator.address} "
                "refuses connections."
            )
        time.sleep(0.1)


def container_is_running(container_id):
    try:
        result = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", container_id],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.stdout.strip() == "true"


def remove_container(container_id):
    """Stop and remove a container; True if it was running."""
    was_running = container_is_running(container_id)
    try:
        subprocess.run(
            ["docker", "rm", "--force", container_id], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LocalStackError(f"Could not remove container {container_id}: {error}") from error
    return was_running
