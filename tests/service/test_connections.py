"""The catalog's connections: checked whole at load, then enforced over real HTTP (CORS,
text/plain beacons, API keys, datasets a public connection was not given)."""

import json
import pathlib

import httpx
import pytest

from domain.catalog import Catalog, CatalogError
from domain.connections import api_key_hash
from domain.parsing import RecordParser
from pubsub_helpers import pull_messages
from tests.service.conftest import EXAMPLE_CATALOG

EXAMPLES = pathlib.Path(EXAMPLE_CATALOG).parent
RECORDS = (EXAMPLES / "records.jsonl").read_bytes().splitlines()
ADA = RECORDS[0]  # crm-profiles
EVENT = next(line for line in RECORDS if b'"web-events"' in line)
ORIGIN = "http://localhost:8000"  # web-site's origin in examples/catalog.yaml


def write_catalog(tmp_path, connections):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"schemas: {EXAMPLES / 'schemas'}\n"
        "datasets:\n"
        "  web-events: {schema: 'https://ns.example.com/xdm/experience-event', kind: event}\n"
        f"connections: {json.dumps(connections)}\n"
    )
    return str(catalog)


def test_every_problem_of_the_connections_is_reported_at_once(tmp_path):
    path = write_catalog(
        tmp_path,
        {
            "bad id!": {"kind": "client", "datasets": ["web-events"]},
            "no-kind": {"datasets": ["web-events"]},
            "unknown": {"kind": "client", "datasets": ["nope"], "origins": ["localhost"]},
            "keyless": {"kind": "server", "datasets": ["web-events"]},
            "leaky": {
                "kind": "client",
                "datasets": ["web-events"],
                "api_key_sha256": api_key_hash("k"),
                "read_profiles": True,
            },
            "typo": {"kind": "client", "datasets": ["web-events"], "origin": []},
        },
    )
    with pytest.raises(CatalogError) as raised:
        Catalog.load(path)
    text = str(raised.value)
    assert "7 problems" in text
    for part in (
        "'bad id!'",
        "'no-kind' has kind None",
        "unknown datasets ['nope']",
        "['localhost'] are not scheme://host",
        "'keyless': a server connection needs 'api_key_sha256'",
        "'leaky': a client connection is public",
        "unknown keys ['origin']",
    ):
        assert part in text, part


def test_a_good_connection_loads_and_checks_its_key(tmp_path):
    path = write_catalog(
        tmp_path,
        {"s": {"kind": "server", "datasets": ["web-events"], "api_key_sha256": api_key_hash("k")}},
    )
    connection = Catalog.load(path).connections["s"]
    assert connection.accepts_key("k") and not connection.accepts_key("K")
    assert not connection.accepts_key("") and not connection.public


def test_a_preflight_from_an_allowed_origin_is_answered(server):
    answer = httpx.options(
        server.url + "/collection/web-site",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()


def test_a_preflight_from_another_origin_is_refused(server):
    answer = httpx.options(
        server.url + "/collection/web-site",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


def test_a_beacon_of_text_plain_is_taken_with_cors_headers(server, inlet_resources):
    answer = httpx.post(
        server.url + "/collection/web-site",
        content=EVENT,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    [message] = pull_messages(inlet_resources["subscription_path"], expected_count=1)
    assert message.data == EVENT


def test_a_public_connection_cannot_write_a_dataset_it_was_not_given(server, inlet_resources):
    answer = httpx.post(
        server.url + "/collection/web-site", content=ADA, headers={"Origin": ORIGIN}
    )
    assert answer.status_code == 403
    assert "crm-profiles" in answer.json()["report"]["message"]
    batch = httpx.post(
        server.url + "/collection/batch/web-site",
        content=json.dumps({"messages": [json.loads(ADA), json.loads(EVENT)]}),
    )
    assert batch.status_code == 207
    assert [r.get("statusCode", 200) for r in batch.json()["responses"]] == [403, 200]
    [message] = pull_messages(inlet_resources["subscription_path"], expected_count=1)
    assert json.loads(message.data) == json.loads(EVENT)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"Authorization": "Bearer no"}])
def test_a_server_connection_refuses_a_request_without_its_key(server, headers):
    answer = httpx.post(server.url + "/collection/crm-sync", content=ADA, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["status"] == 401


def test_a_server_connection_takes_its_key_as_a_bearer_token(server, inlet_resources):
    answer = httpx.post(
        server.url + "/collection/crm-sync",
        content=ADA,
        headers={"Authorization": "Bearer demo-key-change-me"},
    )
    assert answer.status_code == 200
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1


def test_a_forged_link_from_a_public_connection_is_not_trusted(server, inlet_resources):
    """Issue 17's forged link sent by a web page: web-events is trusted for direct
    publishers, but web-site is public, so the victim's Email is not linked."""
    forged = json.loads(EVENT)
    forged["body"]["xdmEntity"]["identityMap"] = {
        "ECID": [{"id": "attacker-device", "primary": True}],
        "Email": [{"id": "victim@example.com"}],
    }
    payload = json.dumps(forged).encode()
    answer = httpx.post(
        server.url + "/collection/web-site", content=payload, headers={"Origin": ORIGIN}
    )
    assert answer.status_code == 200, answer.text
    [message] = pull_messages(inlet_resources["subscription_path"], expected_count=1)
    assert dict(message.attributes) == {"connectionId": "web-site"}
    parser = RecordParser(Catalog.load(EXAMPLE_CATALOG))
    record = parser.parse(message.data, dict(message.attributes))
    assert record.identities == (("ECID", "attacker-device"),)
    assert record.refused_identities == (("Email", "victim@example.com", "unproven"),)
    direct = parser.parse(payload, {})  # straight to Pub/Sub: the dataset is trusted
    assert ("Email", "victim@example.com") in direct.identities


@pytest.mark.parametrize("path", ["/collection/web-site", "/collection/batch/web-site"])
@pytest.mark.parametrize("origin", ["https://evil.example", "null", ""])
def test_a_post_from_an_origin_the_public_connection_does_not_allow_is_refused(
    server, inlet_resources, path, origin
):
    content = EVENT if "batch" not in path else json.dumps({"messages": [json.loads(EVENT)]})
    answer = httpx.post(
        server.url + path, content=content, headers={"Origin": origin, "Content-Type": "text/plain"}
    )
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["type"].endswith(":origin_not_allowed") and problem["status"] == 403
    assert problem["title"] == "Forbidden" and origin in problem["report"]["message"]
    assert "access-control-allow-origin" not in answer.headers
    assert pull_messages(inlet_resources["subscription_path"], expected_count=0, timeout=1) == []


def test_a_server_connection_takes_a_post_from_any_origin_with_its_key(server, inlet_resources):
    answer = httpx.post(
        server.url + "/collection/crm-sync",
        content=ADA,
        headers={"Origin": "https://evil.example", "x-api-key": "demo-key-change-me"},
    )
    assert answer.status_code == 200, answer.text  # its key, not its origin, is the credential
    assert "access-control-allow-origin" not in answer.headers
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1
