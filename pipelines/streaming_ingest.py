"""The streaming ingestion pipeline: Pub/Sub in, profiles in Bigtable, Parquet in the lake.

    python -m pipelines.streaming_ingest --input_subscription=projects/P/subscriptions/S \
        --dead_letter_topic=projects/P/topics/T --catalog=examples/catalog.yaml \
        --lake_path=/tmp/lake --bigtable_project=P --bigtable_instance=I [Beam options]
"""

import gc
import logging
import signal
import sys

import apache_beam as beam

from domain.catalog import Catalog, CatalogError
from pipelines.options import (
    IngestOptions,
    LocalRunOptions,
    check_profile_table,
    on_direct_runner,
    parse_options,
)
from transforms.background_pull import BackgroundPull, drain
from transforms.dead_letter import DeadLetter
from transforms.direct_runner import speed_up_direct_runner
from transforms.lake import WriteToLake
from transforms.profile_store import WriteProfiles
from transforms.read import ReadMessages
from transforms.validate import ParseAndValidate


def build_pipeline(pipeline, options, catalog):
    messages = pipeline | "ReadMessages" >> ReadMessages(
        options.input_subscription,
        options.pubsub_readers,
        options.view_as(LocalRunOptions).backlog_pull_size,
        options.window_seconds,
    )
    records = messages | "ParseAndValidate" >> ParseAndValidate(catalog)

    profiles = records.valid | "WriteProfiles" >> WriteProfiles(
        options.bigtable_project, options.bigtable_instance, options.bigtable_table, catalog
    )
    dedup_seconds = options.dedup_minutes * 60
    lake = records.valid | "WriteToLake" >> WriteToLake(
        options.lake_path, catalog, options.window_seconds, dedup_seconds
    )

    _ = (
        (records.failed, profiles["failed"], lake["failed"])
        | "CollectFailures" >> beam.Flatten()
        | "DeadLetter"
        >> DeadLetter(
            options.dead_letter_topic, options.lake_path, options.window_seconds, dedup_seconds
        )
    )


def run(argv=None):
    options = parse_options(sys.argv[1:] if argv is None else argv)
    ingest = options.view_as(IngestOptions)
    try:
        catalog = Catalog.load(ingest.catalog)
    except CatalogError as error:
        sys.exit(f"error: {error}")
    logging.info("catalog %s: datasets %s", ingest.catalog, ", ".join(sorted(catalog.datasets)))
    problem = check_profile_table(ingest, catalog)
    if problem:
        sys.exit(f"error: {problem}")
    if on_direct_runner(options):
        speed_up_direct_runner()
        if options.view_as(LocalRunOptions).backlog_pull_size:
            drain_on_signals()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, ingest, catalog)
    # Beam, the clients and the catalog are hundreds of thousands of objects that live as
    # long as the process: out of the collector's sight, its full collections stop
    # scanning them again and again, which costs a backlog's drain much of its speed.
    gc.freeze()
    result = pipeline.run()
    result.wait_until_finish()
    BackgroundPull.finish_all()  # finished, every window written: what was taken is durable
    return result


def drain_on_signals():
    """SIGTERM or Ctrl-C: stop taking messages, write all that was taken, close every
    window, exit 0 (transforms/local_read.py). A second one ends the process at once."""

    def on_signal(number, frame):
        logging.warning(
            "%s: draining: no new messages are taken; what was taken is written and every "
            "window closed, then the pipeline stops (send it again to stop at once)",
            signal.Signals(number).name,
        )
        drain()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run()
