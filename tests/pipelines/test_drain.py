"""Stopping is a drain (issue #16): SIGTERM or Ctrl-C to a pipeline started as users start
it, with a lake window far from closing, writes every message it took and exits 0 within
seconds; what it did not take stays on the subscription. Against the emulators."""

import json
import signal
import time

import pyarrow.dataset as ds
import pytest

from domain.catalog import Catalog
from domain.profile_lookup import read_profile
from helpers.examples import EXAMPLES
from pubsub_helpers import pull_messages
from tests.pipelines.running_pipeline import profile_table, publish, start_pipeline, wait_until

LONG_WINDOW_SECONDS = 600  # the window stays open: only a drain writes it


TEMPLATE = json.loads((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0])
IDENTITY = ("ECID", TEMPLATE["identityMap"]["ECID"][0]["id"])


def events(prefix, count):
    template = TEMPLATE
    return [
        (json.dumps({**template, "_id": f"{prefix}-{n:04d}"}).encode(), {"dataset": "web-events"})
        for n in range(count)
    ]


def lake_ids(lake_path):
    files = [p for p in lake_path.rglob("*.parquet") if "_errors" not in p.parts]
    if not files:
        return []
    table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=["_id"])
    return table.column("_id").to_pylist()


@pytest.mark.integration
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_writes_everything_taken_and_leaves_the_rest_on_the_subscription(
    emulators, pubsub_resources, tmp_path, signal_number
):
    lake_path = tmp_path / "lake"
    log_path = tmp_path / "pipeline.log"
    pipeline = start_pipeline(
        pubsub_resources, lake_path, emulators, window_seconds=LONG_WINDOW_SECONDS
    )
    try:
        # Up: the first event's profile is in Bigtable.
        publish(pubsub_resources.topic_path, events("first", 1))
        catalog = Catalog.load(str(EXAMPLES / "catalog.yaml"))
        table = profile_table(emulators, pubsub_resources)
        wait_until(
            lambda: read_profile(table, catalog, *IDENTITY) is not None,
            "the pipeline to be up",
            pipeline,
            log_path,
        )
        publish(pubsub_resources.topic_path, events("taken", 300))
        time.sleep(3)  # pulled within milliseconds
        assert lake_ids(lake_path) == []  # the window is still open
        pipeline.send_signal(signal_number)
        stopped_at = time.monotonic()
        later = events("later", 100)
        publish(pubsub_resources.topic_path, later)
        exit_code = pipeline.wait(timeout=60)
        took = time.monotonic() - stopped_at
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
    log = log_path.read_text()
    assert exit_code == 0, log[-3000:]
    assert took < 30, log[-3000:]
    written = lake_ids(lake_path)
    assert len(written) == len(set(written))
    assert {f"taken-{n:04d}" for n in range(300)} <= set(written)
    # Every later message is in the lake or still on the subscription: none lost (one
    # pulled while draining is released at once, or comes back after its ack deadline).
    later_ids = {f"later-{n:04d}" for n in range(100)}
    left = set()
    deadline = time.monotonic() + 60
    while not later_ids <= set(written) | left and time.monotonic() < deadline:
        pulled = pull_messages(pubsub_resources.subscription_path, 0, timeout=1)
        left |= {json.loads(m.data)["_id"] for m in pulled}
    assert later_ids <= set(written) | left
    assert "draining" in log
