"""The streaming pipeline started as users start it, `python -m pipelines.streaming_ingest`,
in its own process against the emulators; messages published to it; waits on what it
writes; lookups of what it wrote (not a test module: the end-to-end tests share it)."""

import os
import subprocess
import sys
import time

import pytest
from google.cloud import pubsub_v1

from domain.profile_lookup import read_profile
from helpers.examples import EXAMPLES, REPO
from ingest.clients import open_table

DEADLINE_SECONDS = 180
WINDOW_SECONDS = 2


def start_pipeline(
    resources,
    lake_path,
    emulators,
    catalog=EXAMPLES / "catalog.yaml",
    window_seconds=None,
    env=None,
    log_path=None,
):
    """The pipeline's process. `env`: its environment (default: ours, PYTHONPATH and the
    emulator variables with it); `log_path`: where its output goes, appended (default:
    pipeline.log beside the lake), so that a restart's log follows the first run's."""
    command = [
        sys.executable,
        "-m",
        "pipelines.streaming_ingest",
        f"--input_subscription={resources.subscription_path}",
        f"--dead_letter_topic={resources.dead_letter_topic_path}",
        f"--catalog={catalog}",
        f"--lake_path={lake_path}",
        f"--bigtable_project={emulators.project}",
        f"--bigtable_instance={resources.instance}",
        f"--bigtable_table={resources.table}",
        f"--window_seconds={window_seconds or WINDOW_SECONDS}",
    ]
    log_path = log_path or lake_path.parent / "pipeline.log"
    with open(log_path, "a") as log:  # the child holds its own copy of the descriptor
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=dict(os.environ) if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(pipeline):
    pipeline.terminate()
    pipeline.wait(timeout=30)


def publish(topic_path, messages):
    """Publishes (payload, attributes) messages and waits until each is accepted."""
    publisher = pubsub_v1.PublisherClient()
    for future in [
        publisher.publish(topic_path, payload, **attributes) for payload, attributes in messages
    ]:
        future.result(timeout=30)


def wait_until(condition, what, pipeline, log_path):
    deadline = time.time() + DEADLINE_SECONDS
    while time.time() < deadline:
        if pipeline.poll() is not None:
            pytest.fail(
                f"the pipeline exited ({pipeline.returncode}) while waiting for {what}:\n"
                + log_path.read_text()[-3000:]
            )
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(
        f"timed out after {DEADLINE_SECONDS} s waiting for {what}:\n" + log_path.read_text()[-3000:]
    )


def profile_table(emulators, resources):
    return open_table(emulators.project, resources.instance, resources.table)


def shown(profile):
    """What a profile shows of a person, in plain values: {"attributes": {pointer: (value,
    dataset)}, "identities": [(namespace, id)], "events": [_id, newest first]}; None where
    nothing is stored."""
    if profile is None:
        return None
    return {
        "attributes": {p: (a["value"], a["dataset"]) for p, a in profile["attributes"].items()},
        "identities": [(i["namespace"], i["id"]) for i in profile["identities"]],
        "events": [e["_id"] for e in profile["events"]],
    }


def shown_by_every_identity(table, catalog, identities):
    """{identity: shown(read_profile(...))} for each of `identities`."""
    return {i: shown(read_profile(table, catalog, *i, max_events=100)) for i in identities}
