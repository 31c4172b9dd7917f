"""`ingest local down` (local_stack.stop) of a stack whose emulators are frozen (SIGSTOP,
as the fault tests leave them if they fail mid-freeze, or Ctrl-Z): a stopped process acts
on SIGTERM only once continued, so stop must continue it, not wait out its timeout and
SIGKILL it."""

import time

import pytest

from ingest.dev import local_stack
from ingest.dev.emulators import STOP_TIMEOUT_SECONDS
from tests.faults.harness import frozen

pytestmark = pytest.mark.integration


def test_a_frozen_stack_stops_at_once_on_sigterm(tmp_path):
    try:
        stack = local_stack.start(tmp_path / "stack", pubsub_port=0, bigtable_port=0)
    except local_stack.LocalStackError as error:
        pytest.fail(f"the emulators did not start:\n{error}")
    try:
        with frozen(stack.pubsub, print), frozen(stack.bigtable, print):
            began = time.monotonic()
            local_stack.stop(tmp_path / "stack")
            took = time.monotonic() - began
    finally:
        local_stack.stop(tmp_path / "stack")  # safe when already stopped
    assert took < STOP_TIMEOUT_SECONDS / 2, f"stop took {took:.1f} s: SIGKILLed after its timeout"
