"""The local stack's parts: the two emulators, how each is run, and stack.json, the record of
what was started, so that a later `stop` (in another process) can end it."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

LOCAL_HOST = "127.0.0.1"
STATE_FILE_NAME = "stack.json"
STOP_TIMEOUT_SECONDS = 10


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

    @classmethod
    def of(cls, state_dir, emulators):
        """The stack of the emulators {"pubsub": ..., "bigtable": ...}."""
        return cls(state_dir=state_dir, pubsub=emulators["pubsub"], bigtable=emulators["bigtable"])

    @property
    def emulators(self):
        return [self.pubsub, self.bigtable]


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


def save_stack(stack):
    state_file = stack.state_dir / STATE_FILE_NAME
    recorded = {"pubsub": asdict(stack.pubsub), "bigtable": asdict(stack.bigtable)}
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(recorded, indent=2) + "\n")
    temporary.replace(state_file)


def forget_stack(state_dir):
    (Path(state_dir) / STATE_FILE_NAME).unlink(missing_ok=True)
