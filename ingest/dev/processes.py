"""The emulators as background processes, from the Google Cloud CLI's components.

Each runs in its own process group, so that it survives the command that started it and
`stop` ends the whole group (cloud-pubsub-emulator is a shell script that execs java).
"""

import logging
import os
import shutil
import signal
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from ingest.admin import port_accepts_connections
from ingest.dev.emulators import (
    LOCAL_HOST,
    SPECS,
    STOP_TIMEOUT_SECONDS,
    Emulator,
    LocalStackError,
    Stack,
    forget_stack,
    save_stack,
)

logger = logging.getLogger(__name__)

DEFAULT_SDK_ROOT = "/usr/lib/google-cloud-sdk"

# Popen objects of the emulators this Python process started, by pid. Keeping them lets
# `stop` reap its own children (a dead, unreaped child still "exists" for os.kill) and
# avoids Popen's "subprocess is still running" warning.
_children: dict[int, subprocess.Popen] = {}


def sdk_roots():
    """Where the Google Cloud CLI may be installed, most specific first."""
    roots = []
    if os.environ.get("CLOUDSDK_ROOT_DIR"):
        roots.append(os.environ["CLOUDSDK_ROOT_DIR"])
    gcloud_root = _sdk_root_from_gcloud()
    if gcloud_root:
        roots.append(gcloud_root)
    roots.append(DEFAULT_SDK_ROOT)
    return list(dict.fromkeys(roots))


@lru_cache(maxsize=1)
def _sdk_root_from_gcloud():
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        result = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def find_emulator_binaries():
    """{"pubsub": path, "bigtable": path} if both emulators can run here, else None."""
    binaries = {}
    for spec in SPECS.values():
        for root in sdk_roots():
            candidate = Path(root) / spec.binary_in_sdk
            if candidate.is_file() and os.access(candidate, os.X_OK):
                binaries[spec.name] = str(candidate)
                break
    if len(binaries) < len(SPECS):
        return None
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        logger.info(
            "The Pub/Sub emulator is installed, but no Java runtime (java on PATH or JAVA_HOME)."
        )
        return None
    return binaries


def start_processes(state_dir, binaries, ports, timeout):
    """Start each emulator's binary on its port and wait until all are ready; the stack."""
    state_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    started_at = time.monotonic()
    emulators = {}
    try:
        for name, binary in binaries.items():
            spec = SPECS[name]
            log_path = state_dir / f"{name}.log"
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    spec.command(binary, ports[name]),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    # Its own process group: it survives us, and stop kills the group.
                    start_new_session=True,
                )
            _children[process.pid] = process
            emulators[name] = Emulator(
                name=name,
                kind="process",
                host=LOCAL_HOST,
                port=ports[name],
                pid=process.pid,
                log_path=str(log_path),
            )
        stack = Stack.of(state_dir, emulators)
        save_stack(stack)
        for emulator in stack.emulators:
            _wait_for_process(emulator, deadline, timeout)
            logger.info(
                "%s is up on %s (pid %s, log %s) after %.1f s.",
                emulator.spec.title,
                emulator.address,
                emulator.pid,
                emulator.log_path,
                time.monotonic() - started_at,
            )
        return stack
    except BaseException:
        for emulator in emulators.values():
            stop_process_group(emulator.pid, emulator.spec.process_marker, STOP_TIMEOUT_SECONDS)
        forget_stack(state_dir)
        raise


def _wait_for_process(emulator, deadline, timeout):
    spec = emulator.spec
    log_path = Path(emulator.log_path)
    while True:
        log_text = log_path.read_text(errors="replace")
        if spec.ready_message in log_text and port_accepts_connections(
            emulator.host, emulator.port
        ):
            return
        if "already in use" in log_text:
            # The Pub/Sub emulator logs a BindException and keeps running without a server.
            raise LocalStackError(
                f"{spec.title} could not listen on port {emulator.port}: it is already in use.\n"
                + _log_tail(log_path)
            )
        if not process_is_running(emulator.pid, spec.process_marker):
            raise LocalStackError(
                f"{spec.title} exited before it was ready.\n" + _log_tail(log_path)
            )
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"{spec.title} was not ready on {emulator.address} after {timeout} s.\n"
                + _log_tail(log_path)
            )
        time.sleep(0.1)


def _log_tail(log_path, lines=15):
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"Last lines of {log_path}:\n    " + "\n    ".join(tail)


def process_is_running(pid, marker):
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours, so the pid was reused
    if Path("/proc/self").exists():
        try:
            # Empty for a zombie; something else entirely if the pid was reused.
            return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
    return True  # no /proc (macOS): trust os.kill


def stop_process_group(pid, marker, timeout):
    """SIGTERM the emulator's process group, then SIGKILL after timeout. True if it was running."""
    if not process_is_running(pid, marker):
        _reap(pid)
        return False
    # start_new_session made the emulator a group leader, so its group id is its pid.
    # The group matters: cloud-pubsub-emulator is a shell script that execs java.
    _signal_group(pid, signal.SIGTERM)
    # A stopped emulator (SIGSTOP, Ctrl-Z) acts on SIGTERM only once continued.
    _signal_group(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while process_is_running(pid, marker):
        if time.monotonic() > deadline:
            logger.info(
                "pid %s did not stop within %s s after SIGTERM; sending SIGKILL.", pid, timeout
            )
            _signal_group(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    _reap(pid)
    return True


def _signal_group(pid, signal_number):
    try:
        os.killpg(pid, signal_number)
    except ProcessLookupError:
        pass


def _reap(pid):
    child = _children.pop(pid, None)
    if child is not None:
        try:
            child.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
