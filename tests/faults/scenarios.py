"""The fault cases' common course (not a test module): start the pipeline, publish a steady
stream of known records, inject a fault mid-stream, wait until every valid record is in
the lake (or a time is up: what is missing then counts as lost), drain with SIGTERM, count."""

import logging
import time

from tests.faults import harness
from tests.faults import records as known
from tests.faults.counting import RESULTS, count, lake_rows

WINDOW_SECONDS = 2  # small windows: files close within seconds, so a case stays short
RATE = 30  # messages a second: a modest, steady stream
SETTLE_SECONDS = 90
FREEZE_ACK_DEADLINE_SECONDS = 20  # after the last publish (or a thaw), for the rest to land

_LOG = logging.getLogger(__name__)


def say(case):
    """A logger of the case's steps, timed, shown on a failure and in pytest's log."""
    started = time.monotonic()

    def log(text):
        _LOG.warning("[%s +%.0f s] %s", case, time.monotonic() - started, text)

    return log


def wait_for(condition, what, pipeline, target, timeout):
    """True once `condition()`; False after `timeout`. Fails at once if the pipeline exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipeline is not None and pipeline.poll() is not None:
            raise AssertionError(
                f"the pipeline exited ({pipeline.returncode}) while waiting for {what}:\n"
                + harness.log_tail(target)
            )
        if condition():
            return True
        time.sleep(1)
    return False


def lake_ids(target):
    return {record_id for record_id, _ in lake_rows(target.lake)[0]}


def all_landed(target, publisher, poison=0):
    """A condition: every valid record published so far is in the lake, and `poison` rows
    are in `_errors`."""

    def condition():
        rows, errors = lake_rows(target.lake)
        expected = {m.record_id for m in publisher.published.values() if m.valid}
        return expected <= {record_id for record_id, _ in rows} and len(errors) >= poison

    return condition


def started(target, publisher, pipeline, log, before_fault):
    """Starts the publisher; returns once the pipeline writes the lake and `before_fault`
    messages are published: the moment for a fault, mid-stream."""
    publisher.start()
    up = wait_for(lambda: lake_ids(target), "the first lake rows", pipeline, target, 120)
    assert up, "the pipeline wrote no lake row in 120 s:\n" + harness.log_tail(target)
    publisher.wait_for(before_fault)
    log(f"up; {len(publisher.published)} published")


def finish(
    case,
    target,
    pipeline,
    publisher,
    log,
    exit_codes=(),
    poison=0,
    began=None,
    settle=SETTLE_SECONDS,
):
    """Waits for the publisher and the rest to land, drains, counts; the Counts, recorded
    for the session's table."""
    publisher.join()
    log(f"all {len(publisher.published)} published")
    landed = wait_for(all_landed(target, publisher, poison), "the rest", pipeline, target, settle)
    log("every valid record is in the lake" if landed else "time up: some are missing")
    exit_code = harness.drain(pipeline, target)
    log(f"drained: exit code {exit_code}")
    counts = count(target, publisher.published, [*exit_codes, exit_code])
    if began is not None:
        counts.seconds = time.monotonic() - began
    RESULTS.append((case, counts))
    print(counts.row(case))
    return counts


def freeze_case(folder, emulator_name, seconds, count_=600, before_fault=200):
    """One emulator of a private stack frozen for `seconds` mid-stream: returns (case,
    Counts, the pipeline's whole log)."""
    case = f"{emulator_name} frozen {seconds} s"
    log = say(case)
    began = time.monotonic()
    # A pull the freeze cut off leaves what the emulator then gave it leased until its ack
    # deadline: a short one brings it back within seconds, not a minute.
    with harness.private_stack(folder, FREEZE_ACK_DEADLINE_SECONDS) as target:
        pipeline = harness.start(target, WINDOW_SECONDS)
        try:
            publisher = harness.Publisher(target, known.stream(emulator_name, count_), RATE)
            started(target, publisher, pipeline, log, before_fault)
            emulator = getattr(target.stack, emulator_name)
            if emulator_name == "pubsub":
                # The publisher waits out the freeze, between two messages, so each
                # message it counts as published is known to be on the topic.
                with publisher.hold(), harness.frozen(emulator, log):
                    time.sleep(seconds)
            else:
                with harness.frozen(emulator, log):
                    time.sleep(seconds)
            counts = finish(case, target, pipeline, publisher, log, began=began)
        finally:
            if pipeline.poll() is None:
                pipeline.kill()
                pipeline.wait()
        return case, counts, target.log_path.read_text(errors="replace")
