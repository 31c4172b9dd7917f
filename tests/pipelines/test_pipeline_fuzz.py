"""Fuzz at the whole running pipeline (issue #16): a few hundred messages drawn by
hypothesis, hostile payloads and attributes (tests/helpers/fuzz_strategies.py) mixed with
valid examples/ records, published to a pipeline started as users start it; then a
SIGTERM. It never crashes (the drain exits 0), and every message is in the lake or in the
dead letter: a lake row, an `_errors` row, or both where a valid record's write failed
after the lake took it; each `_errors` row's message is on the dead-letter topic; and
none comes back on the subscription after its ack deadline (each was acknowledged).

A message Pub/Sub refuses at publish never reached the pipeline: it is not counted, and
the test says how many there were. Every drawn payload is distinct (a repeat is not
published), so that the lake's dedup by (dataset, payload) keeps each message's row and a
dead letter is told from another by its payload."""

import collections
import os
import signal
import time
import warnings

import pyarrow.parquet as pq
import pytest
from google.cloud import pubsub_v1
from google.pubsub_v1.types import PubsubMessage
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.dead_letters import ERRORS_DATASET
from domain.pubsub_clients import subscriber_client
from helpers.examples import REPO
from helpers.fuzz_strategies import hostile_payloads, pubsub_attributes, valid_example_messages
from pubsub_helpers import pull_messages
from tests.pipelines.running_pipeline import start_pipeline

MESSAGES = 600  # hypothesis examples, one message each (about 40% are repeats)
WINDOW_SECONDS = 2
LANDING_SECONDS = 60  # for all published to be written, before the SIGTERM
REDELIVERY_SECONDS = 65  # the subscription's ack deadline (60 s) and a margin
REFUSAL_STEP = "dead_letter"  # the second `_errors` row of a dead letter the topic refused

messages = st.one_of(st.tuples(hostile_payloads(), pubsub_attributes), valid_example_messages())


def lake_rows(lake_path):
    """(message ids of the datasets' rows, {dataset: count}; `_errors` rows as dicts)."""
    ids, per_dataset, errors = [], collections.Counter(), []
    for path in sorted(lake_path.rglob("*.parquet")):
        if ERRORS_DATASET in path.relative_to(lake_path).parts:
            columns = ["_message_id", "payload", "dataset", "error_class", "error_message", "step"]
            errors += pq.read_table(path, columns=columns).to_pylist()
        else:
            written = pq.read_table(path, columns=["_message_id"]).column(0).to_pylist()
            ids += written
            per_dataset[path.relative_to(lake_path).parts[0]] += len(written)
    return ids, per_dataset, errors


def shown(message):
    payload, attributes = message
    return f"payload={payload[:300]!r} ({len(payload)} bytes) attributes={attributes!r}"[:2000]


@pytest.mark.integration
def test_hostile_messages_never_crash_it_and_each_lands_in_the_lake_or_the_dead_letter(
    emulators, pubsub_resources, tmp_path
):
    lake_path = tmp_path / "lake"
    log_path = tmp_path / "pipeline.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pipeline = start_pipeline(
        pubsub_resources, lake_path, emulators, window_seconds=WINDOW_SECONDS, env=env
    )
    published = {}  # message id -> (payload, attributes)
    refused, repeats = [], 0
    payloads_seen = set()
    with warnings.catch_warnings():  # the raw Publish call, which takes any attribute name
        warnings.simplefilter("ignore", DeprecationWarning)
        publisher = pubsub_v1.PublisherClient().api

    @settings(
        max_examples=MESSAGES,
        deadline=None,
        phases=[Phase.generate],
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(message=messages)
    def publish_one(message):
        nonlocal repeats
        payload, attributes = message
        if payload in payloads_seen:
            repeats += 1
            return
        payloads_seen.add(payload)
        try:
            response = publisher.publish(
                topic=pubsub_resources.topic_path,
                messages=[PubsubMessage(data=payload, attributes=attributes)],
                timeout=30,
            )
        except Exception as error:  # refused by Pub/Sub (or its client): never taken
            refused.append((message, f"{type(error).__name__}: {error}"[:300]))
            return
        published[response.message_ids[0]] = message

    try:
        publish_one()
        deadline = time.monotonic() + LANDING_SECONDS
        while time.monotonic() < deadline and pipeline.poll() is None:
            ids, _, errors = lake_rows(lake_path)
            if set(published) <= set(ids) | {e["_message_id"] for e in errors}:
                break
            time.sleep(1)
        pipeline.send_signal(signal.SIGTERM)
        exit_code = pipeline.wait(timeout=60)
        exited_at = time.monotonic()
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
            pipeline.wait()
    log = log_path.read_text()
    ids, per_dataset, errors = lake_rows(lake_path)
    classes = collections.Counter((e["step"], e["error_class"]) for e in errors)
    print(
        f"\npublished {len(published)} (over 1 MB: "
        f"{sum(len(p) > 1_000_000 for p, _ in published.values())}, with 100 attributes: "
        f"{sum(len(a) == 100 for _, a in published.values())}), refused at publish "
        f"{len(refused)}, repeats not published {repeats}; lake rows {dict(per_dataset)}; "
        f"_errors rows by (step, class) {dict(classes)}"
    )
    for message, reason in refused[:5]:
        print(f"refused at publish: {reason}: {shown(message)}")

    assert exit_code == 0, f"the pipeline exited {exit_code}:\n{log[-5000:]}"

    in_lake = collections.Counter(ids)
    failures = collections.defaultdict(list)  # message id -> its `_errors` rows
    for row in errors:
        failures[row["_message_id"]].append(row)
    problems = []
    for message_id, message in published.items():
        rows = failures.get(message_id, [])
        own = [r for r in rows if r["step"] != REFUSAL_STEP]
        if in_lake[message_id] + len(rows) == 0:
            problems.append(f"lost: {message_id} {shown(message)}")
        if in_lake[message_id] > 1 or len(own) > 1:
            problems.append(f"written {in_lake[message_id]} + {len(own)} times: {shown(message)}")
        if len(rows) > len(own) and not own:
            problems.append(f"a refused dead letter without its own row: {shown(message)}")
        if in_lake[message_id] and own:
            print(f"in the lake and dead-lettered at {[r['step'] for r in own]}: {message_id}")
    strangers = (set(in_lake) | set(failures)) - set(published)
    problems += [f"a row of no message published: {i!r}" for i in sorted(strangers)]
    internal = [e for e in errors if e["error_class"] == "internal"]
    problems += [
        f"internal ({e['step']}: {e['error_message']}): {shown(published[e['_message_id']])}"
        for e in internal
        if e["_message_id"] in published
    ]

    # The dead-letter topic holds each `_errors` row's message, with its reason, but the
    # refused ones' (their second row says why the topic did not take them).
    refused_dead_letters = {e["_message_id"] for e in errors if e["step"] == REFUSAL_STEP}
    expected = collections.Counter(
        (e["payload"], e["step"], e["error_class"])
        for e in errors
        if e["step"] != REFUSAL_STEP and e["_message_id"] not in refused_dead_letters
    )
    pulled = pull_messages(
        pubsub_resources.dead_letter_subscription_path, sum(expected.values()), timeout=60
    )
    on_topic = collections.Counter(
        (m.data, m.attributes.get("error_step"), m.attributes.get("error_class")) for m in pulled
    )
    problems += [
        f"an `_errors` row not on the dead-letter topic ({step}, {error_class}): {payload[:300]!r}"
        for (payload, step, error_class), n in (expected - on_topic).items()
    ]
    problems += [
        f"on the dead-letter topic with no `_errors` row ({step}, {error_class}): {payload[:300]!r}"
        for (payload, step, error_class), n in (on_topic - expected).items()
    ]
    # Each was acknowledged: none comes back once the ack deadline is past.
    with subscriber_client() as subscriber:
        while time.monotonic() < exited_at + REDELIVERY_SECONDS:
            response = subscriber.pull(
                request={"subscription": pubsub_resources.subscription_path, "max_messages": 100},
                timeout=5,
            )
            problems += [
                f"not acknowledged, redelivered: {shown(published[r.message.message_id])}"
                for r in response.received_messages
                if r.message.message_id in published
            ]
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} problems)\n" + log[-3000:]
