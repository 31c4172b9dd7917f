"""The inlet over real HTTP: what it answers, in Adobe's shapes, and what lands on the
topic of the Pub/Sub emulator."""

import json
import pathlib
import socket

import httpx
import pytest

from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.records import Record
from pubsub_helpers import pull_messages
from tests.service.conftest import EXAMPLE_CATALOG, SERVER_KEY, start_server, stop_server

RECORDS = (pathlib.Path(EXAMPLE_CATALOG).parent / "records.jsonl").read_bytes().splitlines()
ADA = RECORDS[0]  # a crm-profiles envelope
EVENT = next(line for line in RECORDS if b'"web-events"' in line)
KEY = {"x-api-key": SERVER_KEY}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def parser():
    return RecordParser(Catalog.load(EXAMPLE_CATALOG))


def post(server, path, content, headers=None, **params):
    return httpx.post(
        server.url + path,
        content=content,
        headers={**JSON, **KEY, **(headers or {})},
        params=params,
        timeout=30,
    )


def comparable(record):
    return {k: v for k, v in vars(record).items() if k not in ("message_id", "publish_time")}


def test_a_message_is_answered_once_on_the_topic_as_a_direct_publish_would_be(
    server, inlet_resources, parser
):
    answer = post(server, "/collection/crm-sync", ADA)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"inletId", "xactionId", "receivedTimeMs"}
    assert body["inletId"] == "crm-sync"
    [message] = pull_messages(inlet_resources["subscription_path"], expected_count=1)
    assert message.message_id == body["xactionId"]
    assert message.data == ADA  # the envelope unchanged
    # Only the connection, by which the pipeline trusts the identities it sends.
    assert dict(message.attributes) == {"connectionId": "crm-sync"}
    from_inlet = parser.parse(message.data, dict(message.attributes), message.message_id)
    direct = parser.parse(ADA, {}, "direct")
    assert isinstance(from_inlet, Record)
    assert comparable(from_inlet) == {
        **comparable(direct),
        "attributes": {"connectionId": "crm-sync"},
    }


def test_a_batch_is_answered_207_one_answer_per_message_in_order(server, inlet_resources, parser):
    messages = [json.loads(ADA), {"header": {}, "body": {}}, json.loads(EVENT), "not an envelope"]

    answer = post(server, "/collection/batch/crm-sync", json.dumps({"messages": messages}))

    assert answer.status_code == 207, answer.text
    responses = answer.json()["responses"]
    assert [r.get("statusCode", 200) for r in responses] == [200, 400, 200, 400]
    published = pull_messages(inlet_resources["subscription_path"], expected_count=2)
    assert {m.message_id for m in published} == {
        responses[0]["xactionId"],
        responses[2]["xactionId"],
    }
    by_id = {m.message_id: m for m in published}
    for index in (0, 2):
        data = by_id[responses[index]["xactionId"]].data
        assert json.loads(data) == messages[index]
        assert comparable(parser.parse(data)) == comparable(parser.parse(data, {}, "x"))


def test_sync_validation_answers_adobe_s_problem_body(server, inlet_resources):
    broken = json.loads(ADA)
    broken["body"]["xdmEntity"]["loyalty"]["points"] = "many"

    answer = post(server, "/collection/crm-sync", json.dumps(broken), syncValidation="true")

    assert answer.status_code == 400
    problem = answer.json()
    assert problem["status"] == 400 and problem["type"] and problem["title"]
    [violation] = problem["report"]["cause"]["_streamingValidation"]
    assert violation["pointerToViolation"] == "#/loyalty/points"
    assert violation["keyword"] == "type"
    assert "many" in violation["message"]
    assert pull_messages(inlet_resources["subscription_path"], expected_count=0, timeout=1) == []


def test_sync_validation_passes_a_valid_message(server, inlet_resources):
    answer = post(server, "/collection/crm-sync", ADA, syncValidation="true")
    assert answer.status_code == 200
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "error"),
    [
        (b'{"header": ', {}, 400, "not_json"),
        (b"\xff\xfe{}", {}, 400, "not_utf8"),
        (b"[" * 100_000 + b"]" * 100_000, {}, 400, "too_deep"),
        (b"[" * 200_000, {}, 400, "too_deep"),
        (b'{"a": NaN}', {}, 400, "not_json"),
        (b"{}", {}, 400, "not_envelope"),
        (ADA, {"content-type": "application/xml"}, 415, "unsupported_media_type"),
        (b"x" * 1_000_001, {}, 413, "too_large"),
        (ADA, {"x-api-key": "wrong"}, 401, "unauthorized"),
    ],
)
def test_each_error_has_its_status_and_reason(server, content, headers, status, error):
    answer = post(server, "/collection/crm-sync", content, headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith(":" + error)
    assert answer.json()["report"]["message"]


def test_an_unknown_connection_is_404(server):
    answer = post(server, "/collection/no-such-connection", ADA)
    assert answer.status_code == 404


def test_a_batch_over_1_mb_is_413(server):
    big = {"messages": [json.loads(ADA)] * 1200}
    assert post(server, "/collection/batch/crm-sync", json.dumps(big)).status_code == 413


def test_a_body_that_stalls_is_answered_408(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(
            b"POST /collection/crm-sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"x-api-key: " + SERVER_KEY.encode() + b'\r\nContent-Length: 100\r\n\r\n{"header"'
        )
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_when_pubsub_cannot_take_the_message_it_is_503_with_retry_after(
    emulators, inlet_resources, tmp_path
):
    for environment, topic in (
        (None, "no-such-topic"),
        ({"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{closed_port()}"}, inlet_resources["topic"]),
    ):
        server = start_server(
            tmp_path, topic, inlet_resources["table"], environment, "--publish-timeout", "1"
        )
        try:
            answer = post(server, "/collection/crm-sync", ADA)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"].isdigit()
            assert answer.json()["status"] == 503
            batch = post(
                server, "/collection/batch/crm-sync", json.dumps({"messages": [json.loads(ADA)]})
            )
            assert batch.status_code == 503 and "retry-after" in batch.headers
        finally:
            stop_server(server)
    assert pull_messages(inlet_resources["subscription_path"], expected_count=0, timeout=1) == []


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed once the probe is: nothing listens there


def test_the_openapi_description_is_served(server):
    description = httpx.get(server.url + "/openapi.json").json()
    assert description["openapi"].startswith("3.")
    assert {
        "/collection/{connection_id}",
        "/collection/batch/{connection_id}",
        "/access/entities",
    } <= set(description["paths"])


def test_refused_messages_are_answered_in_adobe_s_shapes(server, inlet_resources):
    """As help/ingestion/tutorials/streaming-multiple-messages.md of Adobe's docs shows: a
    207 entry is {statusCode, message}, the message "inletId: [ID] imsOrgId: [ORG] ..."."""
    valid = json.loads(ADA)
    bodiless = {"header": {**valid["header"], "imsOrgId": "ORG@AdobeOrg"}}
    batch = post(server, "/collection/batch/crm-sync", json.dumps({"messages": [valid, bodiless]}))
    assert batch.status_code == 207
    body = batch.json()
    assert set(body) == {"inletId", "batchId", "receivedTimeMs", "responses"}
    assert set(body["responses"][0]) == {"xactionId"}
    refused = body["responses"][1]
    assert set(refused) == {"statusCode", "message"} and refused["statusCode"] == 400
    assert refused["message"].startswith("inletId: [crm-sync] imsOrgId: [ORG@AdobeOrg] ")
    single = post(server, "/collection/crm-sync", json.dumps(bodiless)).json()
    assert single["title"] == "Invalid XDM Message Format" and single["status"] == 400
    assert single["report"]["message"].startswith("inletId: [crm-sync] imsOrgId: [ORG@AdobeOrg] ")
    assert len(pull_messages(inlet_resources["subscription_path"], expected_count=1)) == 1
