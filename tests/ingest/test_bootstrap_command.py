"""`ingest bootstrap`, and the Bigtable commands' check of the emulator, against the real
emulators."""

import datetime
import socket
import time
import uuid

import pytest
from google.cloud import bigtable
from google.cloud.bigtable import column_family

from catalog_files import EXAMPLE_CATALOG, write_catalog
from domain.catalog import Catalog
from domain.profile_table import column_families
from ingest import cli

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

INSTANCE = "test-instance"


def admin_table(project, table_id):
    return bigtable.Client(project=project, admin=True).instance(INSTANCE).table(table_id)


def bootstrap(catalog_path, table_id):
    return cli.main(
        ["bootstrap", "--catalog", str(catalog_path), "--instance", INSTANCE, "--table", table_id]
    )


def family_lines(output):
    """{family: the rest of its line} from bootstrap's output."""
    return {
        line.split()[0]: " ".join(line.split()[1:])
        for line in output.splitlines()
        if line.startswith("  ")
    }


def max_age_of(gc_rule):
    return next(
        rule.max_age for rule in gc_rule.rules if isinstance(rule, column_family.MaxAgeGCRule)
    )


def test_bootstrap_creates_the_catalogs_families_and_a_second_run_changes_nothing(
    emulators, capsys
):
    table_id = f"boot-{uuid.uuid4().hex[:8]}"

    assert bootstrap(EXAMPLE_CATALOG, table_id) == 0
    first = capsys.readouterr()
    assert (
        f"Created table projects/demo-project/instances/{INSTANCE}/tables/{table_id}:" in first.out
    )
    assert f"Bigtable emulator at {emulators.bigtable_host}" in first.err
    expected = column_families(Catalog.load(EXAMPLE_CATALOG))
    assert set(family_lines(first.out)) == set(expected) == {"rec", "link", "del", "events_90d"}
    assert (
        family_lines(first.out)["events_90d"] == "created newest 1 version and at most 90 days old"
    )
    stored = admin_table(emulators.project, table_id).list_column_families()
    assert {family: stored[family].gc_rule for family in stored} == expected

    assert bootstrap(EXAMPLE_CATALOG, table_id) == 0
    second = capsys.readouterr().out
    assert f"Table projects/demo-project/instances/{INSTANCE}/tables/{table_id} exists:" in second
    assert all(rest.startswith("unchanged ") for rest in family_lines(second).values())
    assert set(family_lines(second)) == set(expected)


def test_bootstrap_updates_a_rule_that_differs_and_keeps_families_the_catalog_does_not_use(
    emulators, tmp_path, capsys
):
    table_id = f"boot-{uuid.uuid4().hex[:8]}"
    assert bootstrap(EXAMPLE_CATALOG, table_id) == 0
    table = admin_table(emulators.project, table_id)
    # An events_30d family made earlier without an age limit (by hand, or by an older version).
    table.column_family("events_30d", gc_rule=column_family.MaxVersionsGCRule(1)).create()
    row = table.direct_row(b"some-person")
    row.set_cell("events_90d", b"an-event", b"{}")
    row.commit()
    capsys.readouterr()

    assert bootstrap(write_catalog(tmp_path, web_events_retention_days=30), table_id) == 0

    families = family_lines(capsys.readouterr().out)
    assert families["events_30d"] == "updated rule newest 1 version and at most 30 days old"
    assert families["events_90d"] == "not used by the catalog (kept, with its data)"
    assert families["rec"].startswith("unchanged ")
    stored = table.list_column_families()
    assert max_age_of(stored["events_30d"].gc_rule) == datetime.timedelta(days=30)
    assert max_age_of(stored["events_90d"].gc_rule) == datetime.timedelta(days=90)
    assert table.read_row(b"some-person").cells["events_90d"][b"an-event"][0].value == b"{}"


def test_bootstrap_with_a_bad_catalog_exits_2(emulators, tmp_path, capsys):
    assert bootstrap(tmp_path / "missing.yaml", "never-made") == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {tmp_path / 'missing.yaml'}")


def test_commands_fail_at_once_when_the_emulator_is_down(emulators, monkeypatch, capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", f"127.0.0.1:{closed_port}")
    started = time.monotonic()

    assert bootstrap(EXAMPLE_CATALOG, "profiles") == 1
    assert cli.main(["profile", "get", "--namespace", "Email", "--id", "ada@example.com"]) == 1

    assert time.monotonic() - started < 5
    message = f"Nothing accepts connections at BIGTABLE_EMULATOR_HOST=127.0.0.1:{closed_port}"
    assert capsys.readouterr().err.count(message) == 2
