"""A local stack of Google's Pub/Sub and Bigtable emulators, for development and tests.

The emulators run as detached background processes (from the Google Cloud CLI) or, when
the CLI's emulators are not installed but Docker is, as containers. What was started is
recorded in `<state_dir>/stack.json`, so a later `stop` (another process) can end it.

Typical use:

    stack = start(".local-stack")
    admin.create_resources(pubsub_emulator_host=stack.pubsub.address,
                           bigtable_emulator_host=stack.bigtable.address)
    print(environment(stack))
    ...
    stop(".local-stack")
"""

import logging
import os
import shlex
import shutil
import socket
from pathlib import Path

from ingest.admin import DEFAULT_PROJECT
from ingest.dev import containers, processes
from ingest.dev.emulators import (
    LOCAL_HOST,
    SPECS,
    STOP_TIMEOUT_SECONDS,
    LocalStackError,
    Stack,
    forget_stack,
    load_stack,
)

__all__ = [
    "DEFAULT_BIGTABLE_PORT",
    "DEFAULT_PUBSUB_PORT",
    "DEFAULT_STATE_DIR",
    "STARTUP_TIMEOUT_SECONDS",
    "LocalStackError",
    "Stack",
    "environment",
    "export_lines",
    "start",
    "stop",
]

logger = logging.getLogger(__name__)

DEFAULT_PUBSUB_PORT = 8085
DEFAULT_BIGTABLE_PORT = 8086
DEFAULT_STATE_DIR = ".local-stack"
STARTUP_TIMEOUT_SECONDS = 90

INSTALL_HINT = (
    "Neither the Google Cloud emulators nor a running Docker engine were found. Install one of:\n"
    "  - the emulators from the Google Cloud CLI. On Debian/Ubuntu (with Google's apt "
    "repository):\n"
    "        sudo apt-get install google-cloud-cli-pubsub-emulator "
    "google-cloud-cli-bigtable-emulator\n"
    "    plus a Java runtime for the Pub/Sub emulator, e.g. sudo apt-get install "
    "openjdk-17-jre-headless.\n"
    "    With a gcloud installed from Google's archive instead: gcloud components install "
    "pubsub-emulator bigtable\n"
    "  - or Docker; the emulators then run in the image " + containers.DOCKER_IMAGE + "\n"
    "    (needs the Python package testcontainers: pip install 'testcontainers>=4.8')."
)


def environment(stack, project=DEFAULT_PROJECT):
    """The environment variables that point the Google client libraries at the stack."""
    return {
        "PUBSUB_EMULATOR_HOST": stack.pubsub.address,
        "BIGTABLE_EMULATOR_HOST": stack.bigtable.address,
        "PUBSUB_PROJECT_ID": project,
        "GOOGLE_CLOUD_PROJECT": project,
    }


def export_lines(env):
    """Shell `export` lines for `eval "$(ingest local up)"`."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


# ---------------------------------------------------------------------------
# start / stop


def start(
    state_dir=DEFAULT_STATE_DIR,
    pubsub_port=DEFAULT_PUBSUB_PORT,
    bigtable_port=DEFAULT_BIGTABLE_PORT,
    timeout=STARTUP_TIMEOUT_SECONDS,
):
    """Start both emulators in the background and wait until they accept connections.

    A port of 0 picks a free port. If the stack recorded in state_dir is already up,
    returns it (with already_running=True) and starts nothing.
    """
    state_dir = Path(state_dir)
    existing = load_stack(state_dir)
    if existing is not None:
        if all(_is_running(emulator) for emulator in existing.emulators):
            logger.info(
                "The local stack in %s is already up: Pub/Sub emulator on %s, "
                "Bigtable emulator on %s.",
                state_dir,
                existing.pubsub.address,
                existing.bigtable.address,
            )
            existing.already_running = True
            return existing
        logger.info("The local stack in %s is partly down; stopping what is left of it.", state_dir)
        stop(state_dir)

    pubsub_port, bigtable_port = _choose_ports(pubsub_port, bigtable_port)
    ports = {"pubsub": pubsub_port, "bigtable": bigtable_port}
    binaries = processes.find_emulator_binaries()
    if binaries is not None:
        return processes.start_processes(state_dir, binaries, ports, timeout)
    if containers.docker_is_available():
        logger.info("The Google Cloud CLI emulators are not installed; starting them with Docker.")
        return containers.start_containers(state_dir, ports, timeout)
    raise LocalStackError(INSTALL_HINT + "\n" + _where_we_looked())


def stop(state_dir=DEFAULT_STATE_DIR, timeout=STOP_TIMEOUT_SECONDS):
    """Stop what `start` started and remove stack.json. Returns the stopped emulators.

    Safe to call when nothing is running (returns an empty list).
    """
    state_dir = Path(state_dir)
    stack = load_stack(state_dir)
    if stack is None:
        return []
    stopped = []
    for emulator in stack.emulators:
        if _stop_emulator(emulator, timeout):
            stopped.append(emulator)
    forget_stack(state_dir)
    return stopped


def _is_running(emulator):
    if emulator.kind == "container":
        return containers.container_is_running(emulator.container_id)
    return processes.process_is_running(emulator.pid, emulator.spec.process_marker)


def _stop_emulator(emulator, timeout):
    """Stop one emulator; True if it was running."""
    if emulator.kind == "container":
        return containers.remove_container(emulator.container_id)
    return processes.stop_process_group(emulator.pid, emulator.spec.process_marker, timeout)


# ---------------------------------------------------------------------------
# ports


def port_is_free(port, host=LOCAL_HOST):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The emulators (Java and Go servers) bind with SO_REUSEADDR too, so a port left
        # in TIME_WAIT by a stopped emulator counts as free, as it does for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _choose_ports(pubsub_port, bigtable_port):
    if pubsub_port and pubsub_port == bigtable_port:
        raise LocalStackError(
            f"The Pub/Sub and Bigtable emulators cannot share port {pubsub_port}."
        )
    for name, port in (("Pub/Sub", pubsub_port), ("Bigtable", bigtable_port)):
        if port and not port_is_free(port):
            raise LocalStackError(
                f"Port {port} for the {name} emulator is already in use on {LOCAL_HOST}. "
                "Stop whatever listens there (`ingest local down` if it is an earlier stack "
                "with another state dir) or choose another port (0 picks a free one)."
            )
    # Hold the first free port open while picking the second, so they differ.
    with socket.socket() as first, socket.socket() as second:
        if not pubsub_port:
            first.bind((LOCAL_HOST, 0))
            pubsub_port = first.getsockname()[1]
        if not bigtable_port:
            second.bind((LOCAL_HOST, 0))
            bigtable_port = second.getsockname()[1]
    return pubsub_port, bigtable_port


def _where_we_looked():
    places = [
        str(Path(root) / spec.binary_in_sdk)
        for root in processes.sdk_roots()
        for spec in SPECS.values()
    ]
    java = shutil.which("java") or os.environ.get("JAVA_HOME") or "not found"
    return (
        "Looked for:\n  "
        + "\n  ".join(places)
        + f"\nJava: {java}\nDocker: no engine answered `docker info`."
    )
