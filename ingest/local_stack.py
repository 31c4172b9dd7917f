"""A local stack of Google's Pub/Sub and Bigtable emulators, for development and tests.

The emulators run as detached background processes (from the Google Cloud CLI) or, when
the CLI's emulators are not installed but Docker is, as containers. What was started is
recorded in `<state_dir>/stack.json`, so a later `stop` (another process) can end it.

Typical use:

    stack = start(".local-stack")
    create_resources(pubsub_emulator_host=stack.pubsub.address,
                     bigtable_emulator_host=stack.bigtable.address)
    print(environment(stack))
    ...
    stop(".local-stack")
"""
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from google.api_core import retry
from google.api_core.exceptions import AlreadyExists, NotFound
from google.cloud import bigtable, pubsub_v1

from domain.profile_table import column_families

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "demo-project"
DEFAULT_TOPIC = "ingest-input"
DEFAULT_SUBSCRIPTION = "ingest-input-sub"
DEFAULT_DEAD_LETTER_TOPIC = "ingest-dead-letter"
DEFAULT_DEAD_LETTER_SUBSCRIPTION = "ingest-dead-letter-sub"
DEFAULT_INSTANCE = "ingest-instance"
DEFAULT_TABLE = "profiles"
DEFAULT_PUBSUB_PORT = 8085
DEFAULT_BIGTABLE_PORT = 8086
DEFAULT_STATE_DIR = ".local-stack"

STATE_FILE_NAME = "stack.json"
STARTUP_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 10
SUBSCRIPTION_ACK_DEADLINE_SECONDS = 60
# Admin calls retry transient errors (such as "emulator not listening") for this long;
# the client libraries' own default is 600 s, which looks like a hang.
ADMIN_CALL_TIMEOUT_SECONDS = 20

LOCAL_HOST = "127.0.0.1"
DEFAULT_SDK_ROOT = "/usr/lib/google-cloud-sdk"
DOCKER_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"

INSTALL_HINT = (
    "Neither the Google Cloud emulators nor a running Docker engine were found. Install one of:\n"
    "  - the emulators from the Google Cloud CLI. On Debian/Ubuntu (with Google's apt repository):\n"
    "        sudo apt-get install google-cloud-cli-pubsub-emulator google-cloud-cli-bigtable-emulator\n"
    "    plus a Java runtime for the Pub/Sub emulator, e.g. sudo apt-get install openjdk-17-jre-headless.\n"
    "    With a gcloud installed from Google's archive instead: gcloud components install pubsub-emulator bigtable\n"
    "  - or Docker; the emulators then run in the image " + DOCKER_IMAGE + "\n"
    "    (needs the Python package testcontainers: pip install 'testcontainers>=4.8')."
)


class LocalStackError(RuntimeError):
    """The local stack could not be started, stopped or set up; the message says why."""


@dataclass(frozen=True)
class EmulatorSpec:
    name: str
    title: str
    binary_in_sdk: str
    ready_message: str
    # A string in the running process's command line: tells our emulator from another
    # process that happens to have been given the same pid later.
    process_marker: str
    container_port: int
    container_command: str

    def command(self, binary, port):
        if self.name == "pubsub":
            return [binary, f"--host={LOCAL_HOST}", f"--port={port}"]
        return [binary, "-host", LOCAL_HOST, "-port", str(port)]


PUBSUB = EmulatorSpec(
    name="pubsub",
    title="Pub/Sub emulator",
    binary_in_sdk="platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    ready_message="Server started, listening on",
    process_marker="pubsub-emulator",
    container_port=8085,
    container_command="gcloud beta emulators pubsub start --host-port=0.0.0.0:8085",
)
BIGTABLE = EmulatorSpec(
    name="bigtable",
    title="Bigtable emulator",
    binary_in_sdk="platform/bigtable-emulator/cbtemulator",
    ready_message="Cloud Bigtable emulator running on",
    process_marker="cbtemulator",
    container_port=8086,
    container_command="gcloud beta emulators bigtable start --host-port=0.0.0.0:8086",
)
SPECS = {spec.name: spec for spec in (PUBSUB, BIGTABLE)}


@dataclass
class Emulator:
    """One running emulator, as recorded in stack.json."""

    name: str  # "pubsub" or "bigtable"
    kind: str  # "process" or "container"
    host: str
    port: int
    pid: int | None = None
    container_id: str | None = None
    log_path: str | None = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def spec(self):
        return SPECS[self.name]


@dataclass
class Stack:
    state_dir: Path
    pubsub: Emulator
    bigtable: Emulator
    already_running: bool = False

    @property
    def emulators(self):
        return [self.pubsub, self.bigtable]


# Popen objects of the emulators this Python process started, by pid. Keeping them lets
# `stop` reap its own children (a dead, unreaped child still "exists" for os.kill) and
# avoids Popen's "subprocess is still running" warning.
_children: dict[int, subprocess.Popen] = {}


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
                "The local stack in %s is already up: Pub/Sub emulator on %s, Bigtable emulator on %s.",
                state_dir, existing.pubsub.address, existing.bigtable.address,
            )
            existing.already_running = True
            return existing
        logger.info("The local stack in %s is partly down; stopping what is left of it.", state_dir)
        stop(state_dir)

    pubsub_port, bigtable_port = _choose_ports(pubsub_port, bigtable_port)
    ports = {"pubsub": pubsub_port, "bigtable": bigtable_port}
    binaries = find_emulator_binaries()
    if binaries is not None:
        return _start_processes(state_dir, binaries, ports, timeout)
    if docker_is_available():
        logger.info("The Google Cloud CLI emulators are not installed; starting them with Docker.")
        return _start_containers(state_dir, ports, timeout)
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
    (state_dir / STATE_FILE_NAME).unlink(missing_ok=True)
    return stopped


def load_stack(state_dir):
    """The stack recorded in state_dir/stack.json, or None if there is none."""
    state_file = Path(state_dir) / STATE_FILE_NAME
    try:
        recorded = json.loads(state_file.read_text())
        return Stack(
            state_dir=Path(state_dir),
            pubsub=Emulator(**recorded["pubsub"]),
            bigtable=Emulator(**recorded["bigtable"]),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        raise LocalStackError(
            f"{state_file} is not a stack file this tool wrote ({error}). "
            "Stop the emulators by hand if they are running, then delete it."
        ) from error


def _save_stack(stack):
    state_file = stack.state_dir / STATE_FILE_NAME
    recorded = {"pubsub": asdict(stack.pubsub), "bigtable": asdict(stack.bigtable)}
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(recorded, indent=2) + "\n")
    temporary.replace(state_file)


def _is_running(emulator):
    if emulator.kind == "container":
        return _container_is_running(emulator.container_id)
    return _process_is_running(emulator.pid, emulator.spec.process_marker)


def _stop_emulator(emulator, timeout):
    """Stop one emulator; True if it was running."""
    if emulator.kind == "container":
        return _remove_container(emulator.container_id)
    return _stop_process_group(emulator.pid, emulator.spec.process_marker, timeout)


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


def port_accepts_connections(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _choose_ports(pubsub_port, bigtable_port):
    if pubsub_port and pubsub_port == bigtable_port:
        raise LocalStackError(f"The Pub/Sub and Bigtable emulators cannot share port {pubsub_port}.")
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


# ---------------------------------------------------------------------------
# emulators as local processes


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
            capture_output=True, text=True, timeout=30, check=False,
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
        logger.info("The Pub/Sub emulator is installed, but no Java runtime (java on PATH or JAVA_HOME).")
        return None
    return binaries


def _where_we_looked():
    places = [str(Path(root) / spec.binary_in_sdk) for root in sdk_roots() for spec in SPECS.values()]
    java = shutil.which("java") or os.environ.get("JAVA_HOME") or "not found"
    return "Looked for:\n  " + "\n  ".join(places) + f"\nJava: {java}\nDocker: no engine answered `docker info`."


def _start_processes(state_dir, binaries, ports, timeout):
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
                    start_new_session=True,  # its own process group: survives us, and stop kills the group
                )
            _children[process.pid] = process
            emulators[name] = Emulator(
                name=name, kind="process", host=LOCAL_HOST, port=ports[name],
                pid=process.pid, log_path=str(log_path),
            )
        stack = Stack(state_dir=state_dir, pubsub=emulators["pubsub"], bigtable=emulators["bigtable"])
        _save_stack(stack)
        for emulator in stack.emulators:
            _wait_for_process(emulator, deadline, timeout)
            logger.info(
                "%s is up on %s (pid %s, log %s) after %.1f s.",
                emulator.spec.title, emulator.address, emulator.pid, emulator.log_path,
                time.monotonic() - started_at,
            )
        return stack
    except BaseException:
        for emulator in emulators.values():
            _stop_emulator(emulator, STOP_TIMEOUT_SECONDS)
        (state_dir / STATE_FILE_NAME).unlink(missing_ok=True)
        raise


def _wait_for_process(emulator, deadline, timeout):
    spec = emulator.spec
    log_path = Path(emulator.log_path)
    while True:
        log_text = log_path.read_text(errors="replace")
        if spec.ready_message in log_text and port_accepts_connections(emulator.host, emulator.port):
            return
        if "already in use" in log_text:
            # The Pub/Sub emulator logs a BindException and keeps running without a server.
            raise LocalStackError(
                f"{spec.title} could not listen on port {emulator.port}: it is already in use.\n"
                + _log_tail(log_path)
            )
        if not _process_is_running(emulator.pid, spec.process_marker):
            raise LocalStackError(f"{spec.title} exited before it was ready.\n" + _log_tail(log_path))
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"{spec.title} was not ready on {emulator.address} after {timeout} s.\n" + _log_tail(log_path)
            )
        time.sleep(0.1)


def _log_tail(log_path, lines=15):
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"Last lines of {log_path}:\n    " + "\n    ".join(tail)


def _process_is_running(pid, marker):
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


def _stop_process_group(pid, marker, timeout):
    """SIGTERM the emulator's process group, then SIGKILL after timeout. True if it was running."""
    if not _process_is_running(pid, marker):
        _reap(pid)
        return False
    # start_new_session made the emulator a group leader, so its group id is its pid.
    # The group matters: cloud-pubsub-emulator is a shell script that execs java.
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _process_is_running(pid, marker):
        if time.monotonic() > deadline:
            logger.info("pid %s did not stop within %s s after SIGTERM; sending SIGKILL.", pid, timeout)
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


# ---------------------------------------------------------------------------
# emulators as Docker containers (when the Google Cloud CLI emulators are missing)


def docker_is_available():
    """True if a Docker engine answers (the `docker` client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, timeout=20, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _start_containers(state_dir, ports, timeout):
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
    logger.info("Starting the emulators in %s (the first pull of this large image takes minutes).", DOCKER_IMAGE)
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
                spec.title, emulator.address, emulator.container_id[:12], time.monotonic() - started_at,
            )
        stack = Stack(state_dir=state_dir, pubsub=emulators["pubsub"], bigtable=emulators["bigtable"])
        _save_stack(stack)
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
            raise LocalStackError(f"The {spec.title} container was not ready after {timeout} s. {tail}")
        time.sleep(0.5)


def _wait_for_port(emulator, deadline):
    while not port_accepts_connections(emulator.host, emulator.port):
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"{emulator.spec.title} logged that it is ready, but {emulator.address} refuses connections."
            )
        time.sleep(0.1)


def _container_is_running(container_id):
    try:
        result = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", container_id],
            capture_output=True, text=True, timeout=20, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.stdout.strip() == "true"


def _remove_container(container_id):
    """Stop and remove a container; True if it was running."""
    was_running = _container_is_running(container_id)
    try:
        subprocess.run(["docker", "rm", "--force", container_id], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LocalStackError(f"Could not remove container {container_id}: {error}") from error
    return was_running


# ---------------------------------------------------------------------------
# topics, subscriptions and the Bigtable table


def create_resources(
    project=DEFAULT_PROJECT,
    topic=DEFAULT_TOPIC,
    subscription=DEFAULT_SUBSCRIPTION,
    dead_letter_topic=DEFAULT_DEAD_LETTER_TOPIC,
    dead_letter_subscription=DEFAULT_DEAD_LETTER_SUBSCRIPTION,
    instance=DEFAULT_INSTANCE,
    table=DEFAULT_TABLE,
    pubsub_emulator_host=None,
    bigtable_emulator_host=None,
    allow_real_gcp=False,
    catalog=None,
):
    """Create the topics, subscriptions and table the pipeline needs; existing ones are kept.

    Talks to the emulators named by the *_emulator_host arguments, or else by the
    PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST environment variables. Without
    them it refuses, unless allow_real_gcp is set: then it creates real resources in
    the Google Cloud project (the Bigtable instance must already exist). The table gets
    the column families the catalog's datasets need (events kept per retention period).
    """
    with _emulator_environment(pubsub_emulator_host, bigtable_emulator_host):
        if not allow_real_gcp:
            _require_emulators()
        _create_pubsub_resources(project, topic, subscription)
        _create_pubsub_resources(project, dead_letter_topic, dead_letter_subscription)
        _log_table_setup(create_or_update_table(project, instance, table, column_families(catalog)))


@contextmanager
def _emulator_environment(pubsub_emulator_host, bigtable_emulator_host):
    """Set the emulator variables for the duration (the client libraries read only os.environ)."""
    overrides = {
        "PUBSUB_EMULATOR_HOST": pubsub_emulator_host,
        "BIGTABLE_EMULATOR_HOST": bigtable_emulator_host,
    }
    saved = {name: os.environ.get(name) for name in overrides}
    try:
        for name, value in overrides.items():
            if value:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _require_emulators():
    missing = [name for name in ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST") if not os.environ.get(name)]
    if missing:
        raise LocalStackError(
            f"{' and '.join(missing)} not set, so this would create resources in real Google Cloud. "
            "Start the local stack (eval \"$(ingest local up)\") or pass allow_real_gcp=True if you mean it."
        )
    for name in ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST"):
        check_emulator_host(name)


def check_emulator_host(variable):
    """Fail at once, not after minutes of client retries, if the emulator named in the variable is down."""
    address = os.environ.get(variable)
    if not address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not port_accepts_connections(host, int(port)):
        raise LocalStackError(
            f"Nothing accepts connections at {variable}={address}. "
            'Is the local stack up? eval "$(ingest local up)"'
        )


def _admin_retry():
    return retry.Retry(timeout=ADMIN_CALL_TIMEOUT_SECONDS)


def _create_pubsub_resources(project, topic, subscription):
    with pubsub_v1.PublisherClient() as publisher:
        topic_path = publisher.topic_path(project, topic)
        try:
            publisher.create_topic(name=topic_path, retry=_admin_retry(), timeout=ADMIN_CALL_TIMEOUT_SECONDS)
            logger.info("Created topic %s", topic_path)
        except AlreadyExists:
            logger.info("Topic %s already exists", topic_path)

    with pubsub_v1.SubscriberClient() as subscriber:
        subscription_path = subscriber.subscription_path(project, subscription)
        try:
            subscriber.create_subscription(
                request={
                    "name": subscription_path,
                    "topic": topic_path,
                    "ack_deadline_seconds": SUBSCRIPTION_ACK_DEADLINE_SECONDS,
                },
                retry=_admin_retry(),
                timeout=ADMIN_CALL_TIMEOUT_SECONDS,
            )
            logger.info("Created subscription %s", subscription_path)
        except AlreadyExists:
            logger.info("Subscription %s already exists", subscription_path)


# What create_or_update_table did to each column family.
FAMILY_CREATED = "created"
FAMILY_RULE_UPDATED = "updated rule"
FAMILY_UNCHANGED = "unchanged"
FAMILY_NOT_USED = "not used by the catalog"


@dataclass
class TableSetup:
    """What create_or_update_table did: the table's full name, whether it was created, and
    each column family's outcome (one of the FAMILY_* values)."""

    name: str
    created: bool
    families: dict


def create_or_update_table(project, instance_id, table_id, families):
    """Create the Bigtable table with the column families given (name -> GC rule), or bring
    an existing one up to date: add the missing families and set the GC rules that differ.

    An existing table keeps its data. Families it has that are not in `families` are kept
    too, and reported as FAMILY_NOT_USED: deleting one would delete its data.
    """
    with warnings.catch_warnings():
        # The client warns "Connecting to Bigtable emulator at ..." on every start: not news here.
        warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator", category=RuntimeWarning)
        client = bigtable.Client(project=project, admin=True)
        table = client.instance(instance_id).table(table_id)
    try:
        table.create(column_families=families)
        return TableSetup(table.name, created=True, families={family: FAMILY_CREATED for family in families})
    except AlreadyExists:
        pass
    except NotFound as error:
        raise LocalStackError(
            f"Cannot create table {table.name}: {error.message} (on Cloud Bigtable the instance must exist first)"
        ) from None

    existing = table.list_column_families()
    outcomes = {}
    for family, gc_rule in families.items():
        if family not in existing:
            table.column_family(family, gc_rule=gc_rule).create()
            outcomes[family] = FAMILY_CREATED
        elif existing[family].gc_rule != gc_rule:
            table.column_family(family, gc_rule=gc_rule).update()
            outcomes[family] = FAMILY_RULE_UPDATED
        else:
            outcomes[family] = FAMILY_UNCHANGED
    for family in sorted(existing.keys() - families.keys()):
        outcomes[family] = FAMILY_NOT_USED
    return TableSetup(table.name, created=False, families=outcomes)


def _log_table_setup(setup):
    if setup.created:
        logger.info("Created Bigtable table %s with column families %s", setup.name, ", ".join(setup.families))
        return
    logger.info("Bigtable table %s already exists", setup.name)
    for outcome in (FAMILY_CREATED, FAMILY_RULE_UPDATED, FAMILY_NOT_USED):
        families = [family for family, done in setup.families.items() if done == outcome]
        if families:
            logger.info("  column families %s: %s", outcome, ", ".join(families))
