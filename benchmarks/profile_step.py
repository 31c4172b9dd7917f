"""The worker path's profile branch (benchmarks/worker_path.py), apart: the one part a
"before" tree replaces with its own (benchmarks/README.md, `ab.py`).

- `bigtable_emulator`: the local stack on free ports for the benchmark's children, stopped
  whatever happens; `open_bench_table`, `count_rows`, `emulator_cpu_seconds`;
- `profile_step_beam(records, catalog, table_id)`: the pipeline's WriteProfiles to the
  run's table (with no table, its DoFn with the rows dropped);
- `ProfileFloor(catalog, table_id)`: the same DoFn called in the plain loop.
"""

import contextlib
import os
import signal
import sys

from benchmarks import harness

STATE_DIR = harness.ROOT / ".local-stack-bench" / "worker-path"
EMULATOR_PID = "WORKER_PATH_BIGTABLE_EMULATOR_PID"  # the parent tells its children


@contextlib.contextmanager
def bigtable_emulator(wanted):
    """The local stack on free ports, for the children: yields the environment that points
    them at it (empty when not wanted). Stopped on the way out, whatever happens."""
    if not wanted:
        yield {}
        return
    from ingest.dev import local_stack

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    local_stack.stop(STATE_DIR)  # what a killed earlier run may have left
    harness.progress("Starting the emulators on free ports")
    stack = local_stack.start(STATE_DIR, pubsub_port=0, bigtable_port=0)
    try:
        environment = local_stack.environment(stack, harness.NAMES["project"])
        environment[EMULATOR_PID] = str(stack.bigtable.pid or "")
        yield environment
    finally:
        harness.progress("Stopping the emulators")
        local_stack.stop(STATE_DIR)


# ---------------------------------------------------------------------------
# the profile branch, in each mode


def open_bench_table(catalog, table_id):
    """Creates the run's own table (before the clock) and opens it."""
    from domain.profile_table import column_families
    from ingest import admin
    from ingest.clients import open_table

    names = harness.NAMES
    admin.create_or_update_table(
        names["project"], names["instance"], table_id, column_families(catalog)
    )
    return open_table(names["project"], names["instance"], table_id)


def profile_step_beam(records, catalog, table_id):
    """The pipeline's WriteProfiles, to the run's table; with no table, the same DoFn
    with its rows dropped."""
    import apache_beam as beam

    from transforms.profile_store import WriteProfiles

    names = harness.NAMES
    if table_id:
        return records | "WriteProfiles" >> WriteProfiles(
            names["project"], names["instance"], table_id, catalog
        )
    return records | "WriteWithoutBigtable" >> beam.ParDo(_no_io_write_fn(catalog))


class ProfileFloor:
    """The profile branch in the plain loop: WriteProfiles' DoFn called by hand, one
    bundle for the whole run."""

    def __init__(self, catalog, table_id):
        self.write_fn = _write_fn(catalog, table_id) if table_id else _no_io_write_fn(catalog)
        self.write_fn.setup()
        self.write_fn.start_bundle()

    def add(self, record):
        for _ in self.write_fn.process(record) or ():
            pass

    def finish(self):
        """Writes the rest; returns the rows built, where they were dropped (else 0: the
        table's rows are counted after the clock stops)."""
        self.write_fn.finish_bundle()
        return getattr(self.write_fn, "rows_built", 0)


def _write_fn(catalog, table_id):
    from transforms.profile_store import _WriteFragmentsFn

    names = harness.NAMES
    retention = {d.id: d.retention_days for d in catalog.datasets.values()}
    return _WriteFragmentsFn(names["project"], names["instance"], table_id, retention)


def _no_io_write_fn(catalog):
    """WriteProfiles' DoFn with the Bigtable I/O taken out: rows built, then dropped."""
    import apache_beam as beam

    from transforms.profile_store import _WriteFragmentsFn

    class WriteWithoutBigtable(_WriteFragmentsFn):
        def setup(self):
            self.table = None

        def write_rows(self):
            rows = self.pending.take()
            beam.metrics.Metrics.counter("bench", "bigtable_rows").inc(len(rows))
            self.rows_built = getattr(self, "rows_built", 0) + len(rows)

    retention = {d.id: d.retention_days for d in catalog.datasets.values()}
    return WriteWithoutBigtable("demo-project", "bench-instance", "profiles", retention)


def count_rows(table):
    from google.cloud.bigtable import row_filters

    keys_only = row_filters.RowFilterChain(
        [row_filters.CellsRowLimitFilter(1), row_filters.StripValueTransformerFilter(True)]
    )
    return sum(1 for _ in table.read_rows(filter_=keys_only))


def emulator_cpu_seconds(pid):
    """User + system CPU seconds of the process group led by `pid` (the emulator's:
    local_stack starts each in a session of its own), from /proc; None where unreadable."""
    if not pid:
        return None
    total, found = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if fields[2] == str(pid):  # the process group
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / os.sysconf("SC_CLK_TCK") if found else None
