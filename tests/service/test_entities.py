"""The profile API over real HTTP, against profiles the pipeline's WriteProfiles wrote to
the Bigtable emulator: what it answers is domain's read_profile, reshaped as Adobe's
entities API, and only to a server connection's key."""

import uuid

import httpx
import pytest

from domain.catalog import Catalog
from domain.profile_lookup import read_profile
from helpers.profile_streams import run_and_read, sample_stream
from tests.service.conftest import EXAMPLE_CATALOG, SERVER_KEY, start_server, stop_server

pytestmark = pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")
PROFILE = "_xdm.context.profile"
EVENTS = "_xdm.context.experienceevent"
KEY = {"x-api-key": SERVER_KEY}


@pytest.fixture(scope="module")
def profiles(emulators, inlet_resources, tmp_path_factory):
    catalog = Catalog.load(EXAMPLE_CATALOG)
    table_id = f"entities-{uuid.uuid4().hex[:8]}"
    table, _ = run_and_read(sample_stream(catalog), catalog, table_id)
    server = start_server(tmp_path_factory.mktemp("entities"), inlet_resources["topic"], table_id)
    yield server, table, catalog
    stop_server(server)


def get(server, headers=KEY, **params):
    return httpx.get(server.url + "/access/entities", params=params, headers=headers, timeout=30)


def test_the_profile_is_read_profile_s_by_any_identity(profiles):
    server, table, catalog = profiles
    answer = get(
        server, **{"schema.name": PROFILE, "entityId": "ada@example.com", "entityIdNS": "Email"}
    )

    assert answer.status_code == 200, answer.text
    [entity] = answer.json().values()
    expected = read_profile(table, catalog, "Email", "ada@example.com", max_events=1)
    assert entity["attributes"] == expected["attributes"]
    assert entity["identities"] == expected["identities"]
    assert entity["entity"]["person"]["name"]["firstName"] == "Ada"
    assert (
        entity["entity"]["loyalty"]["points"] == expected["attributes"]["/loyalty/points"]["value"]
    )
    assert entity["sources"] == ["crm-profiles"]
    assert entity["lastModifiedAt"] == max(a["time"] for a in expected["attributes"].values())
    ecid = next(i["id"] for i in expected["identities"] if i["namespace"] == "ECID")
    by_ecid = get(server, **{"schema.name": PROFILE, "entityId": ecid, "entityIdNS": "ECID"})
    assert [e["attributes"] for e in by_ecid.json().values()] == [expected["attributes"]]


def test_the_events_come_newest_first_with_limit_and_paging(profiles):
    server, table, catalog = profiles
    expected = read_profile(table, catalog, "Email", "ada@example.com", max_events=100)["events"]
    params = {
        "schema.name": EVENTS,
        "relatedEntityId": "ada@example.com",
        "relatedEntityIdNS": "Email",
        "limit": "2",
    }
    seen, path = [], None
    for _ in range(10):
        answer = httpx.get(server.url + path, headers=KEY) if path else get(server, **params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["children"]) <= 2
        seen += [child["entityId"] for child in page["children"]]
        path = page["_links"].get("next", {}).get("href")
        if not path:
            break
    assert seen == [event["_id"] for event in expected]
    assert len(seen) > 2


def test_an_unknown_person_is_404(profiles):
    server, _, _ = profiles
    answer = get(
        server, **{"schema.name": PROFILE, "entityId": "nobody@example.com", "entityIdNS": "Email"}
    )
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"x-api-key": "wrong"}, 401), ({"Origin": "http://localhost:8000"}, 401)],
)
def test_the_profile_api_is_never_open_without_a_server_key(profiles, headers, status):
    server, _, _ = profiles
    answer = get(
        server,
        headers,
        **{"schema.name": PROFILE, "entityId": "ada@example.com", "entityIdNS": "Email"},
    )
    assert answer.status_code == status
    assert "Ada" not in answer.text


@pytest.mark.parametrize(
    "params",
    [
        {"schema.name": "other"},
        {"schema.name": PROFILE},
        {"schema.name": EVENTS, "relatedEntityId": "a", "relatedEntityIdNS": "Email", "limit": "0"},
    ],
)
def test_bad_parameters_are_400(profiles, params):
    server, _, _ = profiles
    assert get(server, **params).status_code == 400
