"""`ingest identity get`, and `ingest profile get` of a person of three fragments, against
the real Bigtable emulator, of records WriteProfiles wrote.

Lin's fragments: a CRM profile record keyed by her Email; a loyalty profile record keyed
by her CRMID, with her Email too; web events keyed by her device's ECID, with her Email
too (and one with the ECID alone). A kiosk's ECID is signed in to by Lin (her CRMID),
then by Max (another CRMID): the catalog holds one CRMID per graph, so the kiosk follows
Max, who signed in last, and the link to Lin's CRMID is dropped.
"""

import json
import uuid

import pytest

from catalog_files import write_identity_catalog
from domain.catalog import Catalog
from domain.parsing import RecordParser
from helpers.profile_streams import INSTANCE, event_record, profile_record_of, run_and_read
from ingest import cli

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")

EMAIL = ("Email", "lin@example.com")
CRMID = ("CRMID", "CRM-LIN")
ECID = ("ECID", "ECID-LIN")
KIOSK = ("ECID", "ECID-KIOSK")
MAX_CRMID = ("CRMID", "CRM-MAX")
# Text from records that a terminal would act on: an escape sequence, a C1 control (CSI),
# a bidirectional override.
EVE_DEVICE = ("ECID", "dev\x1b]0;owned\x07\u202e")
EVE_RECORD = "crm-eve\u009b2J"


def records():
    return [
        profile_record_of(
            "crm-profiles",
            "crm-lin-1",
            "2026-11-01T09:00:00Z",
            [EMAIL],
            person={"name": {"firstName": "Lin", "lastName": "Berg"}},
            homeAddress={"city": "Oslo"},
        ),
        # Newer, but the merge policy puts crm-profiles first: her first name stays Lin.
        profile_record_of(
            "loyalty-profiles",
            "loyalty-lin-1",
            "2026-11-02T09:00:00Z",
            [CRMID, EMAIL],
            person={"name": {"firstName": "Linnea"}},
            loyalty={"tier": "gold", "points": 300},
        ),
        event_record("web-events", "web-lin-1", "2026-11-03T10:00:00Z", [ECID, EMAIL]),
        event_record("web-events", "web-lin-2", "2026-11-03T10:05:00Z", [ECID, EMAIL]),
        event_record("web-events", "web-lin-3", "2026-11-03T10:10:00Z", [ECID]),
        # The kiosk: Lin signs in on it, then Max.
        event_record("web-events", "kiosk-lin", "2026-11-04T08:00:00Z", [KIOSK, CRMID]),
        event_record("web-events", "kiosk-max", "2026-11-05T08:00:00Z", [KIOSK, MAX_CRMID]),
        profile_record_of(
            "loyalty-profiles",
            "loyalty-max-1",
            "2026-11-01T12:00:00Z",
            [MAX_CRMID],
            person={"name": {"firstName": "Max"}},
        ),
        profile_record_of(
            "crm-profiles",
            EVE_RECORD,
            "2026-11-01T13:00:00Z",
            [("Email", "eve@example.com"), EVE_DEVICE],
            person={"name": {"firstName": "Eve\x1b[2J"}},
        ),
    ]


@pytest.fixture(scope="module")
def stored(emulators, tmp_path_factory):
    """(table id, catalog path): Lin's, Max's and Eve's records written by WriteProfiles."""
    catalog_path = str(write_identity_catalog(tmp_path_factory.mktemp("catalog")))
    catalog = Catalog.load(catalog_path)
    parser = RecordParser(catalog)
    table_id = f"ident-{uuid.uuid4().hex[:8]}"
    run_and_read([parser.parse(payload) for payload in records()], catalog, table_id)
    return table_id, catalog_path


def run(stored, command, identity, *options):
    table_id, catalog_path = stored
    return cli.main(
        [
            command,
            "get",
            "--namespace",
            identity[0],
            "--id",
            identity[1],
            "--catalog",
            catalog_path,
            "--instance",
            INSTANCE,
            "--table",
            table_id,
            *options,
        ]
    )


def json_of(stored, command, identity, capsys):
    assert run(stored, command, identity, "--json") == 0
    return json.loads(capsys.readouterr().out)


def without_lookup(result):
    return {key: value for key, value in result.items() if key != "lookup"}


def test_each_of_three_identities_finds_the_same_unified_profile(stored, capsys):
    by_email = json_of(stored, "profile", EMAIL, capsys)

    assert by_email["attributes"] == {
        "/homeAddress/city": attribute("Oslo", "crm-profiles", "2026-11-01T09:00:00", EMAIL),
        "/loyalty/points": attribute(300, "loyalty-profiles", "2026-11-02T09:00:00", CRMID),
        "/loyalty/tier": attribute("gold", "loyalty-profiles", "2026-11-02T09:00:00", CRMID),
        "/person/name/firstName": attribute("Lin", "crm-profiles", "2026-11-01T09:00:00", EMAIL),
        "/person/name/lastName": attribute("Berg", "crm-profiles", "2026-11-01T09:00:00", EMAIL),
    }
    assert [(i["namespace"], i["id"]) for i in by_email["identities"]] == [CRMID, ECID, EMAIL]
    assert [event["_id"] for event in by_email["events"]] == ["web-lin-3", "web-lin-2", "web-lin-1"]
    assert by_email["lookup"]["complete"] is True
    for identity in (CRMID, ECID):
        found = json_of(stored, "profile", identity, capsys)
        assert without_lookup(found) == without_lookup(by_email), identity

    max_profile = json_of(stored, "profile", MAX_CRMID, capsys)
    assert [(i["namespace"], i["id"]) for i in max_profile["identities"]] == [MAX_CRMID, KIOSK]
    assert max_profile["attributes"]["/person/name/firstName"]["value"] == "Max"


def attribute(value, dataset, time, identity):
    return {"value": value, "dataset": dataset, "time": f"{time}+00:00", "identity": list(identity)}


def test_identity_get_shows_the_links_their_records_and_a_link_a_guardrail_dropped(stored, capsys):
    graphs = [json_of(stored, "identity", identity, capsys) for identity in (EMAIL, CRMID, ECID)]
    assert without_lookup(graphs[1]) == without_lookup(graphs[0])
    assert without_lookup(graphs[2]) == without_lookup(graphs[0])
    graph = graphs[0]

    assert graph["identities"] == [
        {"namespace": namespace, "id": identity_id}
        for namespace, identity_id in (CRMID, ECID, EMAIL)
    ]
    links = [
        (tuple(link["from"]), tuple(link["to"]), link["record"], link["dataset"], link["time"])
        for link in graph["links"]
    ]
    assert links == [  # newest first
        (ECID, EMAIL, "web-lin-2", "web-events", "2026-11-03T10:05:00+00:00"),
        (ECID, EMAIL, "web-lin-1", "web-events", "2026-11-03T10:00:00+00:00"),
        (CRMID, EMAIL, "loyalty-lin-1", "loyalty-profiles", "2026-11-02T09:00:00+00:00"),
    ]
    assert graph["dropped"] == [
        {
            "from": list(CRMID),
            "to": list(KIOSK),
            "time": "2026-11-04T08:00:00+00:00",
            "dataset": "web-events",
            "record": "kiosk-lin",
            "rule": "unique_namespace",
        }
    ]

    assert run(stored, "identity", ECID) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "Identity graph of ECID ECID-LIN: 3 identities, 3 links, 1 dropped (lookup: "
    )
    assert lines[lines.index("Identities:") + 1 :][:3] == [
        "  CRMID CRM-LIN",
        "  ECID ECID-LIN",
        "  Email lin@example.com",
    ]
    held = lines.index("Links that hold it, newest first:")
    assert lines[held + 1 : held + 4] == [
        "  ECID ECID-LIN -- Email lin@example.com  by record web-lin-2 of web-events at "
        "2026-11-03T10:05:00+00:00",
        "  ECID ECID-LIN -- Email lin@example.com  by record web-lin-1 of web-events at "
        "2026-11-03T10:00:00+00:00",
        "  CRMID CRM-LIN -- Email lin@example.com  by record loyalty-lin-1 of loyalty-profiles "
        "at 2026-11-02T09:00:00+00:00",
    ]
    dropped = lines.index("Links a guardrail dropped:")
    assert lines[dropped + 1 :] == [
        "  CRMID CRM-LIN -- ECID ECID-KIOSK  by record kiosk-lin of web-events at "
        "2026-11-04T08:00:00+00:00; rule unique_namespace: would put two identities of a "
        "unique namespace in one graph"
    ]


def test_profile_get_text_names_the_fragment_of_each_attribute_and_the_dropped_link(stored, capsys):
    assert run(stored, "profile", CRMID) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].startswith(
        "Profile of CRMID CRM-LIN: 3 identities, 5 attributes, 3 events shown (lookup: "
    )
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  /")}
    assert rows["/person/name/firstName"] == [
        '"Lin"',
        "crm-profiles",
        "2026-11-01T09:00:00+00:00",
        "Email",
        "lin@example.com",
    ]
    assert rows["/loyalty/tier"] == [
        '"gold"',
        "loyalty-profiles",
        "2026-11-02T09:00:00+00:00",
        "CRMID",
        "CRM-LIN",
    ]
    events = lines.index("Events, newest first:")
    assert [line.split()[2] for line in lines[events + 1 : events + 4]] == [
        "web-lin-3",
        "web-lin-2",
        "web-lin-1",
    ]
    graph = lines.index("Graph: 3 links hold it; 1 dropped by a guardrail:")
    assert lines[graph + 1 :] == [
        "  CRMID CRM-LIN -- ECID ECID-KIOSK  by record kiosk-lin of web-events at "
        "2026-11-04T08:00:00+00:00; rule unique_namespace: would put two identities of a "
        "unique namespace in one graph"
    ]


def test_text_from_records_is_printed_escaped(stored, capsys):
    printed = {}
    for command in ("identity", "profile"):
        assert run(stored, command, EVE_DEVICE) == 0
        printed[command] = capsys.readouterr().out
        assert all(c.isprintable() or c == "\n" for c in printed[command]), command
        assert '"dev\\u001b]0;owned\\u0007\\u202e"' in printed[command]  # as JSON writes it
    assert '"crm-eve\\u009b2J"' in printed["identity"]  # the record id of her link
    assert '"Eve\\u001b[2J"' in printed["profile"]  # her first name

    assert run(stored, "profile", EVE_DEVICE, "--json") == 0
    text = capsys.readouterr().out
    assert all(c.isprintable() or c == "\n" for c in text)
    profile = json.loads(text)  # still JSON, and the same values once read
    assert profile["attributes"]["/person/name/firstName"]["value"] == "Eve\x1b[2J"
    assert list(EVE_DEVICE) in [[i["namespace"], i["id"]] for i in profile["identities"]]


def test_identity_get_of_an_identity_no_link_names_exits_1(stored, capsys):
    assert run(stored, "identity", ("Email", "nobody@example.com")) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("No link names identity Email nobody@example.com in table ")
    assert captured.err.rstrip().endswith("its graph is itself alone.")


def test_identity_get_of_a_table_that_does_not_exist_says_how_to_make_it(stored, capsys):
    assert run(("no-such-table", stored[1]), "identity", EMAIL) == 1
    assert "`ingest bootstrap --catalog FILE` creates it" in capsys.readouterr().err
