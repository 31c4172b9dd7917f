"""`ingest local up | down`: the local stack with the pipeline's resources, and its settings."""

import shlex

import pytest
from google.cloud import bigtable, pubsub_v1

from catalog_files import write_catalog
from ingest import admin, cli


def accepts_connections(address):
    host, _, port = address.rpartition(":")
    return admin.port_accepts_connections(host, int(port))


def test_local_up_prints_exports_of_live_emulators_and_local_down_stops_them(
    tmp_path, monkeypatch, capsys
):
    state_dir = str(tmp_path / "stack")
    up = [
        "local",
        "up",
        "--state-dir",
        state_dir,
        "--pubsub-port",
        "0",
        "--bigtable-port",
        "0",
        "--project",
        "other-project",
        "--topic",
        "cli-input",
    ]
    try:
        assert cli.main(up) == 0
        exports = dict(
            shlex.split(line)[1].split("=", 1) for line in capsys.readouterr().out.splitlines()
        )
        assert set(exports) == {
            "PUBSUB_EMULATOR_HOST",
            "BIGTABLE_EMULATOR_HOST",
            "PUBSUB_PROJECT_ID",
            "GOOGLE_CLOUD_PROJECT",
        }
        assert exports["PUBSUB_PROJECT_ID"] == exports["GOOGLE_CLOUD_PROJECT"] == "other-project"
        assert accepts_connections(exports["PUBSUB_EMULATOR_HOST"])
        assert accepts_connections(exports["BIGTABLE_EMULATOR_HOST"])
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", exports["PUBSUB_EMULATOR_HOST"])
        with pubsub_v1.PublisherClient() as publisher:
            publisher.get_topic(topic="projects/other-project/topics/cli-input")
    finally:
        assert cli.main(["local", "down", "--state-dir", state_dir]) == 0

    assert "Stopped the Pub/Sub emulator" in capsys.readouterr().err
    assert not accepts_connections(exports["PUBSUB_EMULATOR_HOST"])
    assert not accepts_connections(exports["BIGTABLE_EMULATOR_HOST"])
    assert cli.main(["local", "down", "--state-dir", state_dir]) == 0
    assert "No local stack is running" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")
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
        table = (
            bigtable.Client(project="demo-project", admin=True)
            .instance("ingest-instance")
            .table("profiles")
        )
        assert set(table.list_column_families()) == {"rec", "link", "del"}

        # Again, with a catalog, while the stack is up: only what is missing is added.
        catalog = write_catalog(tmp_path, web_events_retention_days=30)
        assert cli.main(up + ["--catalog", str(catalog)]) == 0
        assert "ingest bootstrap" not in capsys.readouterr().err
        assert set(table.list_column_families()) == {"rec", "link", "del", "events_30d"}
    finally:
        assert cli.main(["local", "down", "--state-dir", state_dir]) == 0
