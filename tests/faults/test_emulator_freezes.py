"""Emulator outages (#16 item 5, #17 item 2): the Bigtable or the Pub/Sub emulator frozen
(SIGSTOP, then SIGCONT) mid-stream, for 30 s and for 3 minutes, each in a private stack
with a pipeline of its own. The pipeline must wait the outage out: 0 lost and 0 duplicated
in the lake, by `_id` and by message, Bigtable exactly as the merge defines it, and a
drain that exits 0. The cases of one length run at once, in threads, to keep the suite
short (a 3-minute freeze of each emulator, one after the other, would cost 6 minutes)."""

import concurrent.futures

import pytest

from tests.faults.scenarios import freeze_case
from transforms.background_pull import PULL_TIMEOUT_SECONDS
from transforms.profile_store import CALL_DEADLINE_SECONDS

pytestmark = pytest.mark.integration
WAITING = "profile rows to Bigtable failed"  # transforms/profile_store.py's WARNING
UNANSWERED = "no answer from Pub/Sub"  # transforms/local_read.py's WARNING


def run_at_once(tmp_path, seconds):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(freeze_case, tmp_path / name, name, seconds)
            for name in ("bigtable", "pubsub")
        ]
        # Both run to the end before any assertion, so that each case's counts are shown.
        return [future.result() for future in futures]


@pytest.mark.parametrize("seconds", [30, 180], ids=["30s", "3min"])
def test_a_frozen_emulator_is_waited_out_and_nothing_is_lost(tmp_path, seconds):
    results = run_at_once(tmp_path, seconds)
    problems = []
    for case, counts, log in results:
        try:
            counts.assert_ok(case, log[-4000:])
            if case.startswith("bigtable") and seconds > CALL_DEADLINE_SECONDS:
                # An outage longer than a write's deadline is said, at WARNING (#17).
                assert WAITING in log, f"{case}: no WARNING '{WAITING}':\n{log[-4000:]}"
            if case.startswith("pubsub") and seconds > 3 * PULL_TIMEOUT_SECONDS:
                assert UNANSWERED in log, f"{case}: no WARNING '{UNANSWERED}':\n{log[-4000:]}"
        except AssertionError as error:
            problems.append(str(error))
    assert not problems, "\n\n".join(problems)
