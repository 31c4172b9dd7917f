"""`ingest profile get`, against the real Bigtable emulator, of profiles WriteProfiles wrote."""

import json
import uuid

import pytest

from catalog_files import EXAMPLE_CATALOG
from domain.catalog import Catalog
from helpers.profile_streams import INSTANCE, run_and_read, sample_stream
from ingest import cli

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

ADA_ECID = "71093246781113257349180312436890116545"


@pytest.fixture(scope="module")
def profile_table(emulators):
    """A table with the profiles of the example stream, written by WriteProfiles."""
    catalog = Catalog.load(EXAMPLE_CATALOG)
    table_id = f"prof-{uuid.uuid4().hex[:8]}"
    run_and_read(sample_stream(catalog), catalog, table_id)
    return table_id


def get_profile(table_id, namespace, identity_id, *options):
    return cli.main(
        [
            "profile",
            "get",
            "--namespace",
            namespace,
            "--id",
            identity_id,
            "--instance",
            INSTANCE,
            "--table",
            table_id,
            *options,
        ]
    )


def test_profile_get_prints_the_merged_profile_by_any_of_its_identities(profile_table, capsys):
    assert get_profile(profile_table, "Email", "ada@example.com") == 0
    by_email = json.loads(capsys.readouterr().out)
    assert get_profile(profile_table, "ECID", ADA_ECID, "--events", "1") == 0
    by_ecid = json.loads(capsys.readouterr().out)

    assert by_email["attributes"]["/loyalty/points"]["value"] == 1650
    assert by_email["attributes"]["/person/name/firstName"]["value"] == "Ada"
    assert {"namespace": "ECID", "id": ADA_ECID} in [
        {"namespace": identity["namespace"], "id": identity["id"]}
        for identity in by_email["identities"]
    ]
    assert [event["_id"] for event in by_email["events"]] == [
        "evt-ada-0005",
        "evt-ada-0004",
        "evt-ada-0003",
        "evt-ada-0002",
        "evt-ada-0001",
    ]
    assert by_ecid == {**by_email, "events": by_email["events"][:1]}


def test_profile_get_of_an_unknown_identity_says_so_and_exits_1(profile_table, capsys):
    assert get_profile(profile_table, "Email", "nobody@example.com") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"No profile has identity Email 'nobody@example.com' in table "
        f"projects/demo-project/instances/{INSTANCE}/tables/{profile_table} (Bigtable emulator at "
    )


def test_profile_get_of_a_table_that_does_not_exist_says_how_to_make_it(emulators, capsys):
    assert get_profile("no-such-table", "Email", "ada@example.com") == 1
    assert "does not exist" in capsys.readouterr().err
