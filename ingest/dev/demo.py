"""`make demo`: the whole pipeline on the local stack, from publish to profile, lake and dead
letter.

Starts the emulators on free ports, runs the real streaming pipeline on the DirectRunner,
publishes the example stream (some of it invalid), waits until every message is
accounted for (a lake row or a dead letter), shows the results and stops what it started.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq

from domain.catalog import Catalog
from domain.profile_lookup import read_profile
from domain.pubsub_clients import subscriber_client
from ingest import admin, cli
from ingest.clients import open_table
from ingest.common import escaped, quoted
from ingest.dev import local_stack
from ingest.lookups import identity_text, value_text

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CATALOG = EXAMPLES / "catalog.yaml"
STATE_DIR = ROOT / ".local-stack-demo"
LAKE = ROOT / "demo-lake"
WINDOW_SECONDS = 5
DEADLINE_SECONDS = 180
NAMES = dict(
    project="demo-project",
    topic="demo-input",
    subscription="demo-input-sub",
    dead_letter_topic="demo-dead-letter",
    dead_letter_subscription="demo-dead-letter-sub",
    instance="demo-instance",
    table="profiles",
)


def main():
    started = time.time()
    step("Starting the local stack: Google's Pub/Sub and Bigtable emulators, on free ports")
    stack = local_stack.start(STATE_DIR, pubsub_port=0, bigtable_port=0)
    pipeline = None
    try:
        os.environ.update(local_stack.environment(stack, NAMES["project"]))
        say(
            f"Pub/Sub emulator on {stack.pubsub.address}, Bigtable emulator on "
            f"{stack.bigtable.address}"
        )
        admin.create_resources(**NAMES, catalog=Catalog.load(str(CATALOG)))

        step("Starting the streaming pipeline on the DirectRunner")
        shutil.rmtree(LAKE, ignore_errors=True)
        pipeline = start_pipeline()

        step("Publishing the example stream")
        published = publish("examples/records.jsonl") + publish(
            "examples/records-bare.jsonl", "--dataset", "web-events"
        )

        step(
            f"Waiting until all {published} messages are accounted for: a lake row or a dead letter"
        )
        say(
            f"(the lake writes a file when its {WINDOW_SECONDS} s window closes and the "
            "watermark passes its end: within a second on a quiet topic)"
        )
        dead_letters = wait_for_every_message(published, pipeline)
        wait_for_errors_dataset(len(dead_letters), pipeline)

        step("Results")
        show_profile("Email", "ada@example.com")
        show_lake()
        show_dead_letters(dead_letters)
        print(
            f"\n{published} messages published = {count_lake_rows()} lake rows + "
            f"{len(dead_letters)} dead letters; nothing lost. "
            f"Demo took {time.time() - started:.0f} s."
        )
    finally:
        step("Stopping the pipeline and the local stack")
        if pipeline is not None:
            pipeline.terminate()
            try:
                pipeline.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pipeline.kill()
        local_stack.stop(STATE_DIR)
        say(f"Stopped. The lake stays in {LAKE.relative_to(ROOT)}/ for you to query.")


def start_pipeline():
    project = NAMES["project"]
    command = [
        sys.executable,
        "-m",
        "pipelines.streaming_ingest",
        f"--input_subscription=projects/{project}/subscriptions/{NAMES['subscription']}",
        f"--dead_letter_topic=projects/{project}/topics/{NAMES['dead_letter_topic']}",
        "--catalog=examples/catalog.yaml",
        f"--lake_path={LAKE.relative_to(ROOT)}",
        f"--bigtable_project={project}",
        f"--bigtable_instance={NAMES['instance']}",
        f"--bigtable_table={NAMES['table']}",
        f"--window_seconds={WINDOW_SECONDS}",
    ]
    log_path = STATE_DIR / "pipeline.log"
    say("python -m pipelines.streaming_ingest \\\n      " + " \\\n      ".join(command[3:]))
    say(f"(its log: {log_path.relative_to(ROOT)})")
    return subprocess.Popen(command, cwd=ROOT, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


def publish(path, *options):
    command = ["publish", "--topic", NAMES["topic"], *options, path]
    say("ingest " + " ".join(command))
    if cli.main(command) != 0:
        raise SystemExit("publishing failed")
    return sum(1 for line in (ROOT / path).read_bytes().splitlines() if line.strip())


def wait_for_every_message(published, pipeline):
    subscriber = subscriber_client()
    subscription = subscriber.subscription_path(NAMES["project"], NAMES["dead_letter_subscription"])
    dead_letters, deadline, last_report = [], time.time() + DEADLINE_SECONDS, 0
    while True:
        if pipeline.poll() is not None:
            raise SystemExit(
                f"the pipeline stopped ({pipeline.returncode}); see {STATE_DIR / 'pipeline.log'}"
            )
        response = subscriber.pull(
            subscription=subscription, max_messages=100, timeout=5, return_immediately=True
        )
        if response.received_messages:
            dead_letters.extend(r.message for r in response.received_messages)
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[r.ack_id for r in response.received_messages]
            )
        lake_rows = count_lake_rows()
        if time.time() - last_report >= 5 or lake_rows + len(dead_letters) >= published:
            say(
                f"lake rows {lake_rows}, dead letters {len(dead_letters)}, of {published} published"
            )
            last_report = time.time()
        if lake_rows + len(dead_letters) >= published:
            return dead_letters
        if time.time() > deadline:
            raise SystemExit(
                f"after {DEADLINE_SECONDS} s only {lake_rows + len(dead_letters)} "
                f"of {published} messages arrived; see {STATE_DIR / 'pipeline.log'}"
            )
        time.sleep(1)


def wait_for_errors_dataset(count, pipeline):
    deadline = time.time() + DEADLINE_SECONDS
    while count_lake_rows("_errors") < count:
        if pipeline.poll() is not None or time.time() > deadline:
            raise SystemExit(
                f"the _errors dataset did not get its {count} rows; see "
                f"{STATE_DIR / 'pipeline.log'}"
            )
        time.sleep(1)


def lake_files(datasets="[!_]*"):
    """The Parquet files of the datasets (not of `_errors`, unless asked)."""
    return sorted(LAKE.glob(f"{datasets}/date=*/hour=*/*.parquet"))


def count_lake_rows(datasets="[!_]*"):
    return sum(pq.ParquetFile(path).metadata.num_rows for path in lake_files(datasets))


def show_profile(namespace, identity_id):
    table = open_table(NAMES["project"], NAMES["instance"], NAMES["table"])
    catalog = Catalog.load(str(CATALOG))
    profile = read_profile(table, catalog, namespace, identity_id)
    policy = (
        "dataset precedence " + ", ".join(catalog.dataset_precedence)
        if catalog.dataset_precedence
        else "newest record wins"
    )
    print(
        f"\n-- The unified profile of {namespace} {identity_id} in Bigtable: the records of "
        f"every identity of her graph, merged by the catalog's policy ({policy})"
    )
    if profile is None:
        print("   (not found)")
        return
    print(f"   {'attribute':30} {'value':34} {'dataset':13} {'record time':27}  identity")
    for pointer, cell in profile["attributes"].items():
        print(
            f"   {escaped(pointer):30} {value_text(cell['value'])[:32]:34} {cell['dataset']:13} "
            f"{cell['time']:27}  {identity_text(*cell['identity'])}"
        )
    identities = ", ".join(identity_text(i["namespace"], i["id"]) for i in profile["identities"])
    print(f"   her identities: {identities}")
    print(f"   {len(profile['events'])} events, newest first (those sent under her ECID too):")
    for event in profile["events"]:
        print(f"   {event['time']}  {escaped(event['eventType']):32} {quoted(event['_id'])}")
    graph = profile["graph"]
    print(
        f"   {len(graph['links'])} links hold her graph; "
        f"{len(graph['dropped'])} dropped by a guardrail"
    )
    ecid = next((i["id"] for i in profile["identities"] if i["namespace"] == "ECID"), None)
    if ecid:
        found = read_profile(table, catalog, "ECID", ecid)
        same = found is not None and without_lookup(found) == without_lookup(profile)
        print(f"   looked up by her ECID instead: the same profile: {same}")


def without_lookup(profile):
    """The profile without what the lookup read, which depends on where it started."""
    return {key: value for key, value in profile.items() if key != "lookup"}


def show_lake():
    print(
        f"\n-- The lake: typed Parquet under {LAKE.relative_to(ROOT)}/<dataset>/date=/hour=/, "
        "the dead letters in _errors"
    )
    for path in lake_files("*"):
        rows = pq.ParquetFile(path).metadata.num_rows
        print(f"   {str(path.relative_to(ROOT)):95} {rows:3} rows")


def show_dead_letters(dead_letters):
    print("\n-- The dead letter: each rejected message, unchanged, with its reason")
    for message in dead_letters:
        attributes = message.attributes
        print(
            f"   {attributes['error_class']:17} {attributes.get('error_pointer', ''):16} "
            f"{attributes['error_message'][:90]}"
        )
        print(f"   {'':17} payload: {message.data[:70].decode('utf-8', 'replace')}")


def step(text):
    print(f"\n== {text}", flush=True)


def say(text):
    print(f"   {text}", flush=True)


if __name__ == "__main__":
    main()
