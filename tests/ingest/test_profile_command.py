"""`ingest profile get`, against the real Bigtable emulator, of profiles WriteProfiles wrote
from the example stream. The three-fragment person and the guardrails:
test_identity_command.py."""

import json
import uuid

import pytest

from catalog_files import EXAMPLE_CATALOG
from domain.catalog import Catalog
from helpers.profile_streams import INSTANCE, run_and_read, sample_stream
from ingest import cli

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

ADA_ECID = "71093246781113257349180312436890116545"
ADA_EVENTS = ["evt-ada-0005", "evt-ada-0004", "evt-ada-0003", "evt-ada-0002", "evt-ada-0001"]


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
            "--catalog",
            EXAMPLE_CATALOG,
            "--instance",
            INSTANCE,
            "--table",
            table_id,
            *options,
        ]
    )


def without_lookup(profile):
    return {key: value for key, value in profile.items() if key != "lookup"}


def test_profile_get_json_is_the_unified_profile_by_any_of_its_identities(profile_table, capsys):
    assert get_profile(profile_table, "Email", "ada@example.com", "--json") == 0
    by_email = json.loads(capsys.readouterr().out)

    attributes = by_email["attributes"]
    assert attributes["/loyalty/points"] == {
        "value": 1650,
        "dataset": "crm-profiles",
        "time": "2026-11-09T16:30:00+00:00",
        "identity": ["Email", "ada@example.com"],
    }
    assert attributes["/person/name/firstName"]["value"] == "Ada"
    assert not [p for p in attributes if p.startswith(("/_id", "/_repo", "/identityMap"))]
    assert [(i["namespace"], i["id"]) for i in by_email["identities"]] == [
        ("CRMID", "CRM-000815"),
        ("ECID", ADA_ECID),
        ("Email", "ada@example.com"),
    ]
    # Her events keyed by her ECID (0001, 0002) and by her Email (the others), newest first.
    assert [event["_id"] for event in by_email["events"]] == ADA_EVENTS
    assert by_email["graph"]["dropped"] == []
    assert {link["record"] for link in by_email["graph"]["links"]} >= {
        "prof-ada-0001",
        "prof-ada-0002",
    }
    assert by_email["lookup"]["complete"] is True

    for namespace, identity_id in (("ECID", ADA_ECID), ("CRMID", "CRM-000815")):
        assert get_profile(profile_table, namespace, identity_id, "--json") == 0
        assert without_lookup(json.loads(capsys.readouterr().out)) == without_lookup(by_email)
    assert get_profile(profile_table, "ECID", ADA_ECID, "--json", "--events", "1") == 0
    one_event = json.loads(capsys.readouterr().out)
    assert without_lookup(one_event) == {
        **without_lookup(by_email),
        "events": by_email["events"][:1],
    }


def test_profile_get_text_explains_each_attribute_and_lists_identities_and_events(
    profile_table, capsys
):
    assert get_profile(profile_table, "Email", "ada@example.com", "--json") == 0
    profile = json.loads(capsys.readouterr().out)
    assert get_profile(profile_table, "ECID", ADA_ECID) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].startswith(
        f"Profile of ECID {ADA_ECID}: 3 identities, {len(profile['attributes'])} attributes, "
        "5 events shown (lookup: "
    )
    points = next(line.split() for line in lines if line.startswith("  /loyalty/points "))
    assert points == [
        "/loyalty/points",
        "1650",
        "crm-profiles",
        "2026-11-09T16:30:00+00:00",
        "Email",
        "ada@example.com",
    ]
    for pointer, attribute in profile["attributes"].items():  # each one, with its sources
        assert any(
            line.split()[0] == pointer
            and line.split()[-4:]
            == [attribute["dataset"], attribute["time"], *attribute["identity"]]
            for line in lines
            if line.startswith("  /")
        ), pointer
    identities = lines.index("Identities:")
    assert lines[identities + 1 : identities + 4] == [
        "  CRMID CRM-000815",
        f"  ECID {ADA_ECID}",
        "  Email ada@example.com",
    ]
    events = lines.index("Events, newest first:")
    assert [line.split()[2] for line in lines[events + 1 : events + 6]] == ADA_EVENTS
    assert lines[events + 1].split()[:2] == [
        "2026-11-07T19:40:00+00:00",
        "web.webinteraction.linkClicks",
    ]
    graph_line = next(line for line in lines if line.startswith("Graph: "))
    assert graph_line == (
        f"Graph: {len(profile['graph']['links'])} links hold it; none dropped by a guardrail"
    )


def test_profile_get_of_an_unknown_identity_says_so_and_exits_1(profile_table, capsys):
    assert get_profile(profile_table, "Email", "nobody@example.com") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"No profile has identity Email nobody@example.com in table "
        f"projects/demo-project/instances/{INSTANCE}/tables/{profile_table} (Bigtable emulator at "
    )


def test_profile_get_of_a_table_that_does_not_exist_says_how_to_make_it(emulators, capsys):
    assert get_profile("no-such-table", "Email", "ada@example.com") == 1
    assert "does not exist" in capsys.readouterr().err


def test_profile_get_takes_the_example_catalog_by_default_only_in_a_clone(
    emulators, tmp_path, monkeypatch, capsys
):
    from ingest.common import EXAMPLE_CATALOG as DEFAULT

    monkeypatch.chdir(tmp_path)  # no examples/catalog.yaml here
    with pytest.raises(SystemExit) as exit_status:
        cli.main(["profile", "get", "--namespace", "Email", "--id", "ada@example.com"])
    assert exit_status.value.code == 2
    assert "the following arguments are required: --catalog" in capsys.readouterr().err

    (tmp_path / "examples").mkdir()
    (tmp_path / DEFAULT).write_text("datasets: not a mapping\n")  # the default, if it is read
    assert cli.main(["profile", "get", "--namespace", "Email", "--id", "ada@example.com"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {DEFAULT}: a catalog needs a 'datasets'")
