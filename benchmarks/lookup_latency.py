"""Profile lookup latency on the Bigtable emulator: domain.profile_lookup.read_profile by
each identity of a person whose graph has 10 identities, against a single-row read_row.

    python -m benchmarks.lookup_latency [--rounds R] [--others N] [--hub-emails H]
        [--seed S] [--json]

Starts the local stack's emulators on free ports (ingest.dev.local_stack, state in
.local-stack-bench/lookup-latency/), creates the profile table for examples/catalog.yaml
and stops everything on the way out, whatever happens. Writes, as the pipeline does
(RecordParser.parse, then domain.profile_writes.fragment_cells into PendingRows, then
MutateRows in mutation_batches):

- the person: 1 CRMID, 1 Email, 1 Phone and 7 ECIDs (CRMID and Email are unique
  namespaces in the catalog: a second Email would be a second person). Profile records
  with the Email, the CRMID and the Phone each as primary identity (3, 2 and 2 records),
  and per ECID 2 signed-in events (the Email primary: they link the ECID) and 3
  anonymous ones (the ECID primary: a fragment in the ECID's row);
- N other persons (Email, ECID, CRMID; 2 profile records and 4 events each);
- a junk hub: one ECID seen with H Emails (one event each, the Email primary).

Then R rounds; in each, for each of the 10 identities in turn: read_profile by it (the
whole lookup: the graph's walk, the fragments' read, the merge), then table.read_row of
that identity's row (all its cells, no filter). Both are timed with perf_counter, their
CPU with process_time; a first round is a warm-up, not counted. p50 and p99 are nearest
ranks over R x 10 timings. Each lookup's graph must be the 10 identities: checked in
every round. The hub: R lookups by the hub ECID and R by one of its Emails, with their
rows read, round trips and whether the walk was complete (a bound stops it).
"""

import contextlib
import datetime
import json
import os
import random
import signal
import sys
import time
import warnings

from benchmarks import harness
from benchmarks.harness import milliseconds, nearest_rank

STATE_DIR = harness.ROOT / ".local-stack-bench" / "lookup-latency"
TABLE = "profiles-lookup"
CLOCK = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
ECIDS = 7


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = harness.argument_parser(
        "lookup_latency",
        "read_profile by each of a 10-identity person's identities on the Bigtable "
        "emulator, against a single-row read_row; and a junk hub.",
    )
    parser.add_argument("--rounds", type=int, default=100, help="lookups per identity")
    parser.add_argument("--others", type=int, default=300, help="other persons in the table")
    parser.add_argument("--hub-emails", type=int, default=1000, help="Emails seen with the hub")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args(argv)
    if options.rounds < 1 or options.others < 0 or options.hub_emails < 1:
        parser.error("--rounds and --hub-emails must be at least 1, --others at least 0")
    machine = harness.describe_machine()
    cpu_before = time.process_time()
    with emulator_table() as table:
        written = write_population(table, options)
        person = measure_person(table, written["person"], options.rounds)
        hub = measure_hub(table, written["hub"], options.rounds)
    harness.finish_machine(machine, cpu_before)
    figures = {
        "command": harness.command_line("lookup_latency", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "written": written["counts"],
        "person": person,
        "hub": hub,
    }
    harness.show(figures, options.json, print_table)


@contextlib.contextmanager
def emulator_table():
    """The local stack on free ports and the profile table on it; stopped on the way out."""
    from domain.catalog import Catalog
    from domain.profile_table import column_families
    from ingest import admin
    from ingest.clients import open_table
    from ingest.dev import local_stack

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    warnings.filterwarnings("ignore", message="Connecting to Bigtable emulator")
    local_stack.stop(STATE_DIR)  # what a killed earlier run may have left
    harness.progress("Starting the emulators on free ports")
    stack = local_stack.start(STATE_DIR, pubsub_port=0, bigtable_port=0)
    try:
        os.environ.update(local_stack.environment(stack, harness.NAMES["project"]))
        catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
        names = harness.NAMES
        admin.create_or_update_table(
            names["project"], names["instance"], TABLE, column_families(catalog)
        )
        yield open_table(names["project"], names["instance"], TABLE)
    finally:
        harness.progress("Stopping the emulators")
        local_stack.stop(STATE_DIR)


# ---------------------------------------------------------------------------
# the population


class Writer:
    """Records through the parser, their cells through fragment_cells and PendingRows, to
    the table with MutateRows: what WriteProfiles does in a bundle."""

    def __init__(self, table, seed):
        from domain.catalog import Catalog
        from domain.parsing import RecordParser
        from domain.profile_writes import PendingRows
        from ingest.dev.generate import RecordGenerator

        self.table = table
        self.catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
        self.parser = RecordParser(self.catalog)
        self.retention = {d.id: d.retention_days for d in self.catalog.datasets.values()}
        self.generator = RecordGenerator(seed=seed, clock=lambda: CLOCK)
        self.random = random.Random(seed)
        self.pending = PendingRows()
        self.records = self.cells = 0

    def profile(self, someone, identities, primary):
        entity = self.generator._profile_record(someone)
        entity["identityMap"] = identity_map(identities, primary)
        self._add("crm-profiles", entity)

    def event(self, someone, identities, primary):
        entity = self.generator._event(someone)
        entity["identityMap"] = identity_map(identities, primary)
        self._add("web-events", entity)

    def _add(self, dataset, entity):
        from domain.profile_writes import fragment_cells

        payload = json.dumps(entity).encode()
        record = self.parser.parse(payload, {"dataset": dataset}, str(self.records), CLOCK)
        for key, cell in fragment_cells(record, self.retention[dataset]):
            self.pending.add(key, cell)
            self.cells += 1
        self.records += 1
        if len(self.pending) >= 5000:
            self.flush()

    def flush(self):
        from domain.profile_writes import mutation_batches

        for batch in mutation_batches(self.pending.take()):
            failed = [s for s in self.table.mutate_rows(batch) if s.code != 0]
            if failed:
                raise RuntimeError(f"{len(failed)} row mutations failed: {failed[0].message}")


def identity_map(identities, primary):
    """{namespace: [{id, primary?}]} of (namespace, id) pairs, `primary` marked."""
    result = {}
    for namespace, identity_id in identities:
        entry = {"id": identity_id, "authenticatedState": "authenticated"}
        if (namespace, identity_id) == primary:
            entry["primary"] = True
        result.setdefault(namespace, []).append(entry)
    return result


def write_population(table, options):
    from ingest.dev.generate import person

    harness.progress(
        f"Writing the 10-identity person, {options.others} others and a hub of "
        f"{options.hub_emails} Emails"
    )
    writer = Writer(table, options.seed)
    someone = person(0)
    crm, email = ("CRMID", someone.crm_id), ("Email", someone.email)
    phone = ("Phone", someone.phone)
    ecids = [("ECID", f"{someone.ecid}{n}") for n in range(ECIDS)]
    for _ in range(3):
        writer.profile(someone, [email, crm, phone], email)
    for _ in range(2):
        writer.profile(someone, [crm, email], crm)
        writer.profile(someone, [phone, crm], phone)
    for ecid in ecids:
        for _ in range(2):
            writer.event(someone, [ecid, email], email)
        for _ in range(3):
            writer.event(someone, [ecid], ecid)
    person_records = writer.records

    for number in range(1, options.others + 1):
        other = person(number)
        identities = [("Email", other.email), ("ECID", other.ecid), ("CRMID", other.crm_id)]
        for _ in range(2):
            writer.profile(other, identities, identities[0])
        for _ in range(2):
            writer.event(other, identities[:2], identities[0])
            writer.event(other, identities[1:2], identities[1])

    hub_ecid = ("ECID", "0" + "7" * 37)  # a device id seen with everyone: a kiosk, or junk
    hub_person = person(options.others + 1)
    hub_emails = [("Email", f"kiosk-{n}@bench.example.com") for n in range(options.hub_emails)]
    for hub_email in hub_emails:
        writer.event(hub_person, [hub_ecid, hub_email], hub_email)
    writer.flush()
    return {
        "person": sorted([crm, email, phone, *ecids]),
        "hub": {"ecid": hub_ecid, "email": hub_emails[0]},
        "counts": {
            "records": writer.records,
            "cells": writer.cells,
            "person_records": person_records,
            "others": options.others,
            "hub_emails": options.hub_emails,
        },
    }


# ---------------------------------------------------------------------------
# measuring


def timed(function, *arguments):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*arguments)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure_person(table, identities, rounds):
    from domain.catalog import Catalog
    from domain.profile_lookup import read_profile
    from domain.profile_table import row_key

    catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
    expected = [{"namespace": ns, "id": i} for ns, i in identities]
    harness.progress(f"Timing {rounds} rounds of read_profile and read_row by 10 identities")
    lookups, lookup_cpu, reads, read_cpu = [], [], [], []
    shapes = {}
    for round_number in range(rounds + 1):  # round 0: warm-up
        for identity in identities:
            profile, seconds, cpu = timed(read_profile, table, catalog, *identity)
            if profile is None or profile["identities"] != expected:
                raise SystemExit(
                    f"the lookup by {identity} found "
                    f"{None if profile is None else profile['identities']}, not the 10 identities"
                )
            row, row_seconds, row_cpu = timed(table.read_row, row_key(*identity))
            if row is None:
                raise SystemExit(f"no row for {identity}")
            if round_number:
                lookups.append(seconds)
                lookup_cpu.append(cpu)
                reads.append(row_seconds)
                read_cpu.append(row_cpu)
            shapes[identity] = {
                "rows_read": profile["lookup"]["rows_read"],
                "round_trips": profile["lookup"]["round_trips"],
                "complete": profile["lookup"]["complete"],
                "attributes": len(profile["attributes"]),
                "events": len(profile["events"]),
                "row_cells": sum(len(columns) for columns in row.cells.values()),
            }
    lookup = quantiles_ms(lookups, lookup_cpu)
    read_row = quantiles_ms(reads, read_cpu)
    return {
        "identities": len(identities),
        "lookups": len(lookups),
        "read_profile": lookup,
        "read_row": read_row,
        "ratio_p50": round(lookup["p50"] / read_row["p50"], 2),
        "ratio_p99": round(lookup["p99"] / read_row["p99"], 2),
        "by_identity": {f"{ns}:{i}": shape for (ns, i), shape in shapes.items()},
    }


def measure_hub(table, hub, rounds):
    from domain.catalog import Catalog
    from domain.profile_lookup import read_profile

    catalog = Catalog.load(str(harness.ROOT / harness.CATALOG))
    harness.progress(f"Timing {rounds} lookups by the hub's ECID and by one of its Emails")
    result = {}
    for name, identity in (("by_hub_ecid", hub["ecid"]), ("by_hub_email", hub["email"])):
        times, cpu_times = [], []
        for number in range(rounds + 1):  # 0: warm-up
            profile, seconds, cpu = timed(read_profile, table, catalog, *identity)
            if number:
                times.append(seconds)
                cpu_times.append(cpu)
        result[name] = {
            "identity": list(identity),
            **quantiles_ms(times, cpu_times),
            "rows_read": profile["lookup"]["rows_read"],
            "round_trips": profile["lookup"]["round_trips"],
            "complete": profile["lookup"]["complete"],
            "graph_identities": len(profile["identities"]),
            "links_kept": len(profile["graph"]["links"]),
            "links_dropped": len(profile["graph"]["dropped"]),
        }
    return result


def quantiles_ms(seconds, cpu_seconds):
    ordered = sorted(seconds)
    return {
        "p50": milliseconds(nearest_rank(ordered, 0.5)),
        "p99": milliseconds(nearest_rank(ordered, 0.99)),
        "max": milliseconds(ordered[-1]),
        "cpu_ms_mean": round(sum(cpu_seconds) / len(cpu_seconds) * 1000, 2),
    }


# ---------------------------------------------------------------------------
# the table


def print_table(figures):
    person, written = figures["person"], figures["written"]
    lookup, read_row = person["read_profile"], person["read_row"]
    rows = [row for row in harness.machine_rows(figures) if row[0] != "benchmark cpu"] + [
        (
            "written",
            f"{written['records']} records ({written['person_records']} of the person), "
            f"{written['cells']} cells; {written['others']} other persons; a hub ECID "
            f"with {written['hub_emails']} Emails",
        ),
        ("", ""),
        (
            "read_profile",
            f"p50 {lookup['p50']} ms, p99 {lookup['p99']} ms, max {lookup['max']} ms; "
            f"CPU {lookup['cpu_ms_mean']} ms a lookup ({person['lookups']} lookups by "
            f"{person['identities']} identities)",
        ),
        (
            "read_row",
            f"p50 {read_row['p50']} ms, p99 {read_row['p99']} ms, max {read_row['max']} ms; "
            f"CPU {read_row['cpu_ms_mean']} ms a read (one row, all its cells)",
        ),
        ("ratio", f"read_profile / read_row: p50 {person['ratio_p50']}, p99 {person['ratio_p99']}"),
    ]
    for identity, shape in person["by_identity"].items():
        rows.append(
            (
                "",
                f"by {identity}: rows read {shape['rows_read']}, round trips "
                f"{shape['round_trips']}, complete {shape['complete']}; "
                f"{shape['attributes']} attributes, {shape['events']} events; its row "
                f"{shape['row_cells']} cells",
            )
        )
    rows.append(("", ""))
    for name, hub in figures["hub"].items():
        rows.append(
            (
                name.replace("_", " "),
                f"p50 {hub['p50']} ms, p99 {hub['p99']} ms, max {hub['max']} ms, CPU "
                f"{hub['cpu_ms_mean']} ms; rows read {hub['rows_read']}, round trips "
                f"{hub['round_trips']}, complete {hub['complete']}; graph "
                f"{hub['graph_identities']} identities, {hub['links_kept']} links kept, "
                f"{hub['links_dropped']} dropped",
            )
        )
    harness.print_rows("Profile lookup latency on the Bigtable emulator", rows)


if __name__ == "__main__":
    main()
