"""`ingest bootstrap`, `ingest profile get` and `ingest local up --catalog`, against the real emulators."""
import datetime
import json
import pathlib
import socket
import time
import uuid

import pytest
from google.cloud import bigtable
from google.cloud.bigtable import column_family

from ingest import cli
from test_profile_store import run_and_read, sample_stream
from domain.catalog import Catalog
from domain.profile_table import column_families

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
EXAMPLE_CATALOG = str(EXAMPLES / "catalog.yaml")
INSTANCE = "test-instance"
ADA_ECID = "71093246781113257349180312436890116545"


def admin_table(project, table_id):
    return bigtable.Client(project=project, admin=True).instance(INSTANCE).table(table_id)


def bootstrap(catalog_path, table_id):
    return cli.main(["bootstrap", "--catalog", str(catalog_path), "--instance", INSTANCE, "--table", table_id])


def family_lines(output):
    """{family: the rest of its line} from bootstrap's output."""
    return {line.split()[0]: " ".join(line.split()[1:]) for line in output.splitlines() if line.startswith("  ")}


def write_catalog(tmp_path, web_events_retention_days):
    """The example catalog, with another retention period for web-events."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"schemas: {EXAMPLES / 'schemas'}\n"
        "datasets:\n"
        "  crm-profiles: {schema: 'https://ns.example.com/xdm/individual-profile', kind: profile, profile: true}\n"
        "  web-events: {schema: 'https://ns.example.com/xdm/experience-event', kind: event, profile: true,\n"
        f"               retention_days: {web_events_retention_days}}}\n"
    )
    return catalog


def max_age_of(gc_rule):
    return next(rule.max_age for rule in gc_rule.rules if isinstance(rule, column_family.MaxAgeGCRule))


def test_bootstrap_creates_the_catalogs_families_and_a_second_run_changes_nothing(emulators, capsys):
    table_id = f"boot-{uuid.uuid4().hex[:8]}"

    assert bootstrap(EXAMPLE_CATALOG, table_id) == 0
    first = capsys.readouterr()
    assert f"Created table projects/demo-project/instances/{INSTANCE}/tables/{table_id}:" in first.out
    assert f"Bigtable emulator at {emulators.bigtable_host}" in first.err
    expected = column_families(Catalog.load(EXAMPLE_CATALOG))
    assert set(family_lines(first.out)) == set(expected) == {"attr", "meta", "identity", "linked", "events_90d"}
    assert family_lines(first.out)["events_90d"] == "created newest 1 version and at most 90 days old"
    stored = admin_table(emulators.project, table_id).list_column_families()
    assert {family: stored[family].gc_rule for family in stored} == expected

    assert bootstrap(EXAMPLE_CATALOG, table_id) == 0
    second = capsys.readouterr().out
    assert f"Table projects/demo-project/instances/{INSTANCE}/tables/{table_id} exists:" in second
    assert all(rest.startswith("unchanged ") for rest in family_lines(second).values())
    assert set(family_lines(second)) == set(expected)


def test_bootstrap_updates_a_rule_that_differs_and_keeps_families_the_catalog_does_not_use(
        emulators, tmp_path, capsys):
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
    assert families["attr"].startswith("unchanged ")
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


@pytest.fixture(scope="module")
def profile_table(emulators):
    """A table with the profiles of the example stream, written by WriteProfiles."""
    catalog = Catalog.load(EXAMPLE_CATALOG)
    table_id = f"prof-{uuid.uuid4().hex[:8]}"
    run_and_read(sample_stream(catalog), catalog, table_id)
    return table_id


def get_profile(table_id, namespace, identity_id, *options):
    return cli.main(["profile", "get", "--namespace", namespace, "--id", identity_id,
                     "--instance", INSTANCE, "--table", table_id, *options])


def test_profile_get_prints_the_merged_profile_by_any_of_its_identities(profile_table, capsys):
    assert get_profile(profile_table, "Email", "ada@example.com") == 0
    by_email = json.loads(capsys.readouterr().out)
    assert get_profile(profile_table, "ECID", ADA_ECID, "--events", "1") == 0
    by_ecid = json.loads(capsys.readouterr().out)

    assert by_email["attributes"]["/loyalty/points"]["value"] == 1650
    assert by_email["attributes"]["/person/name/firstName"]["value"] == "Ada"
    assert {"namespace": "ECID", "id": ADA_ECID} in [
        {"namespace": identity["namespace"], "id": identity["id"]} for identity in by_email["identities"]]
    assert [event["_id"] for event in by_email["events"]] == ["evt-ada-0005", "evt-ada-0004", "evt-ada-0003", "evt-ada-0002", "evt-ada-0001"]
    assert by_ecid == {**by_email, "events": by_email["events"][:1]}


def test_profile_get_of_an_unknown_identity_says_so_and_exits_1(profile_table, capsys):
    assert get_profile(profile_table, "Email", "nobody@example.com") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"No profile has identity Email 'nobody@example.com' in table "
        f"projects/demo-project/instances/{INSTANCE}/tables/{profile_table} (Bigtable emulator at ")


def test_profile_get_of_a_table_that_does_not_exist_says_how_to_make_it(emulators, capsys):
    assert get_profile("no-such-table", "Email", "ada@example.com") == 1
    assert "does not exist" in capsys.readouterr().err


def test_local_up_gives_the_table_the_catalogs_event_families(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no examples/catalog.yaml here: no default catalog
    state_dir = str(tmp_path / "stack")
    up = ["local", "up", "--state-dir", state_dir, "--pubsub-port", "0", "--bigtable-port", "0"]
    try:
        assert cli.main(up) == 0
        captured = capsys.readouterr()
        assert "`ingest bootstrap --catalog FILE` adds them" in captured.err
        exports = dict(line.split()[1].split("=", 1) for line in captured.out.splitlines())
        monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", exports["BIGTABLE_EMULATOR_HOST"])
        table = bigtable.Client(project="demo-project", admin=True).instance("ingest-instance").table("profiles")
        assert set(table.list_column_families()) == {"attr", "meta", "identity", "linked"}

        # Again, with a catalog, while the stack is up: only what is missing is added.
        assert cli.main(up + ["--catalog", str(write_catalog(tmp_path, web_events_retention_days=30))]) == 0
        assert "ingest bootstrap" not in capsys.readouterr().err
        assert set(table.list_column_families()) == {"attr", "meta", "identity", "linked", "events_30d"}
    finally:
        assert cli.main(["local", "down", "--state-dir", state_dir]) == 0
