"""The floor of benchmarks/throughput.py, run in a child process of its own: a plain
Python consumer of the same backlog doing the pipeline's work without Beam (see the
method in throughput.py's docstring)."""

import datetime
import os
import resource
import tempfile
import time

from benchmarks import harness

FLOOR_SUBSCRIPTION = "bench-input-floor-sub"
PULL_MAX_MESSAGES = 1000


def run_floor(count):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.cloud import pubsub_v1

    from domain.catalog import Catalog
    from domain.dead_letters import ERRORS_DATASET, ERRORS_SCHEMA, error_row
    from domain.lake_schema import arrow_schema, row_converter
    from domain.parsing import RecordParser
    from domain.profile_writes import PendingRows, fragment_cells, mutation_batches
    from domain.records import FailedMessage, RecordError
    from ingest.clients import open_table
    from transforms.validate import STEP, _plain_datetime

    names = harness.NAMES
    catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
    parser = RecordParser(catalog)
    schemas = {d: arrow_schema(catalog, d) for d in catalog.datasets}
    converters = {d: row_converter(schema) for d, schema in schemas.items()}
    schemas[ERRORS_DATASET] = ERRORS_SCHEMA
    retention = {d.id: d.retention_days for d in catalog.datasets.values()}
    table = open_table(names["project"], names["instance"], names["table"])
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(names["project"], FLOOR_SUBSCRIPTION)

    rows_by_dataset = {}
    seen = set()
    pulls = mutate_calls = bigtable_rows = 0
    started = time.monotonic()
    cpu_started = harness.own_cpu_seconds()
    while len(seen) < count and time.monotonic() - started < 600:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": PULL_MAX_MESSAGES}, timeout=30
        )
        pulls += 1
        pending = PendingRows()
        for received in response.received_messages:
            message = received.message
            if message.message_id in seen:
                continue
            seen.add(message.message_id)
            attributes = dict(message.attributes)
            publish_time = _plain_datetime(message.publish_time)
            try:
                record = parser.parse(message.data, attributes, message.message_id, publish_time)
            except RecordError as error:
                failed = FailedMessage.of(
                    error, STEP, message.data, attributes, message.message_id, publish_time
                )
                rows_by_dataset.setdefault(ERRORS_DATASET, []).append(
                    error_row(failed, time.time())
                )
                continue
            row = converters[record.dataset](record.entity)
            row.update(
                _record_time=record.record_time,
                _publish_time=record.publish_time,
                _message_id=record.message_id,
                _ingested_at=datetime.datetime.now(datetime.timezone.utc),
            )
            rows_by_dataset.setdefault(record.dataset, []).append(row)
            if record.feeds_profile and record.primary_identity is not None:
                for key, cell in fragment_cells(record, retention[record.dataset]):
                    pending.add(key, cell)
        if len(pending):
            rows = pending.take()
            bigtable_rows += len(rows)
            for batch in mutation_batches(rows):
                statuses = table.mutate_rows(batch)
                mutate_calls += 1
                failed_rows = [s for s in statuses if s.code != 0]
                if failed_rows:
                    raise RuntimeError(
                        f"{len(failed_rows)} Bigtable mutations failed: {failed_rows[0].message}"
                    )
        if response.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [received.ack_id for received in response.received_messages],
                }
            )
    folder = tempfile.mkdtemp(prefix="throughput-floor-lake-")
    for dataset, rows in rows_by_dataset.items():
        pq.write_table(
            pa.Table.from_pylist(rows, schema=schemas[dataset]),
            os.path.join(folder, f"{dataset}.parquet"),
        )
    seconds = time.monotonic() - started
    cpu_seconds = harness.own_cpu_seconds() - cpu_started
    subscriber.close()
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    os.rmdir(folder)
    return {
        "messages": len(seen),
        "rows_by_dataset": {d: len(r) for d, r in rows_by_dataset.items()},
        "pulls": pulls,
        "mutate_rows_calls": mutate_calls,
        "bigtable_rows": bigtable_rows,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 1),
        "events_per_second": round(len(seen) / seconds, 1),
        "vm_hwm_mib": harness.vm_hwm_mib(),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
