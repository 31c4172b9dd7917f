"""The browser client (service/static/ingest.js) in a real headless Chromium: a page of
another origin loads it from the running service and sends events, which arrive on the
topic in Adobe's envelope under the first-party cookie's ECID, and, end to end, through
the running pipeline in Bigtable and in the lake."""

import json
import time

import httpx
import pyarrow.dataset as ds
import pytest

from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.profile_lookup import read_profile
from domain.records import Record
from pubsub_helpers import pull_messages
from tests.pipelines.running_pipeline import profile_table, start_pipeline, stop, wait_until
from tests.service.browser import PAGE, PageServer, catalog_for_origin, load_page, open_browser
from tests.service.conftest import ROOT, start_server, stop_server

EVENT_SCHEMA = "https://ns.example.com/xdm/experience-event"
COOKIE = "ingest_ecid"
PAGE_EVENTS = [  # what one load of PAGE sends and the inlet takes (its invalid one is refused)
    "web.webpagedetails.pageViews",
    "commerce.productViews",
    "commerce.productListAdds",
    "web.webinteraction.linkClicks",
]


@pytest.fixture
def pages(tmp_path):
    (tmp_path / "site").mkdir()
    server = PageServer(tmp_path / "site")
    yield server
    server.close()


@pytest.fixture
def browser(tmp_path):
    driver = open_browser(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


def check_answers(results):
    """The answers the page's script read: readable cross-origin (CORS), in Adobe's shapes."""
    assert results["pageView"]["status"] == 200, results
    assert set(results["pageView"]["body"]) == {"inletId", "xactionId", "receivedTimeMs"}
    assert results["batch"]["status"] == 207, results
    assert [set(r) for r in results["batch"]["body"]["responses"]] == [{"xactionId"}] * 2
    assert results["beacon"] is True
    invalid = results["invalid"]
    assert invalid["status"] == 400 and invalid["body"]["type"].endswith(":schema_violation")
    [violation] = invalid["body"]["report"]["cause"]["_streamingValidation"]
    assert violation["pointerToViolation"] == "#/eventType" and violation["keyword"] == "enum"
    return [results["pageView"]["body"]["xactionId"]] + [
        r["xactionId"] for r in results["batch"]["body"]["responses"]
    ]


def test_the_service_serves_the_script_at_a_stable_url(server):
    answer = httpx.get(server.url + "/static/ingest.js", timeout=10)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.content == (ROOT / "service" / "static" / "ingest.js").read_bytes()


def test_a_page_sends_adobe_s_envelope_under_the_ecid_its_cookie_keeps(
    inlet_resources, pages, browser, tmp_path
):
    catalog = catalog_for_origin(tmp_path, pages.origin)
    service = start_server(
        tmp_path, inlet_resources["topic"], inlet_resources["table"], catalog=catalog
    )
    try:
        url = pages.page("shop.html", PAGE.format(service=service.url))
        first = load_page(browser, url)
        cookie = browser.get_cookie(COOKIE)
        xaction_ids = check_answers(first)
        published = pull_messages(inlet_resources["subscription_path"], expected_count=4)
        again = load_page(browser, url)  # the same browser: the cookie's device id again
        check_answers(again)
        published_again = pull_messages(inlet_resources["subscription_path"], expected_count=4)
    finally:
        stop_server(service)

    ecid = first["ecid"]
    assert len(ecid) == 38 and ecid.isdigit()
    assert again["ecid"] == ecid and cookie["value"] == ecid
    assert cookie["sameSite"] == "Lax" and cookie["path"] == "/" and not cookie["httpOnly"]
    assert 389 * 86400 < cookie["expiry"] - time.time() <= 390 * 86400
    assert len(published) == len(published_again) == 4, (published, published_again)
    assert set(xaction_ids) <= {m.message_id for m in published}
    parser = RecordParser(Catalog.load(catalog))
    events = []
    for message in published + published_again:
        assert dict(message.attributes) == {"connectionId": "web-site"}
        envelope = json.loads(message.data)
        schema_ref = {
            "id": EVENT_SCHEMA,
            "contentType": ("application/vnd.adobe.xed-full+json;version=1"),
        }
        assert envelope["header"] == {
            "schemaRef": schema_ref,
            "datasetId": "web-events",
            "source": {"name": "ingest.js"},
        }
        assert envelope["body"]["xdmMeta"] == {"schemaRef": schema_ref}
        entity = envelope["body"]["xdmEntity"]
        assert entity["identityMap"] == {
            "ECID": [{"id": ecid, "authenticatedState": "ambiguous", "primary": True}]
        }
        record = parser.parse(message.data, dict(message.attributes), message.message_id)
        assert isinstance(record, Record), record
        events.append(entity["eventType"])
    assert sorted(events) == sorted(PAGE_EVENTS * 2)
    page_view = next(
        json.loads(m.data)["body"]["xdmEntity"] for m in published if b"pageViews" in m.data
    )
    assert page_view["web"]["webPageDetails"] == {"name": "Brass gear set", "URL": url}


def test_a_new_browser_profile_is_a_new_device(inlet_resources, pages, tmp_path):
    catalog = catalog_for_origin(tmp_path, pages.origin)
    service = start_server(
        tmp_path, inlet_resources["topic"], inlet_resources["table"], catalog=catalog
    )
    url = pages.page("shop.html", PAGE.format(service=service.url))
    ecids = []
    try:
        for name in ("one", "two"):
            driver = open_browser(tmp_path / f"chromium-{name}")
            try:
                ecids.append(load_page(driver, url)["ecid"])
            finally:
                driver.quit()
        pull_messages(inlet_resources["subscription_path"], expected_count=8)
    finally:
        stop_server(service)
    assert ecids[0] != ecids[1]


def lake_rows(lake_path):
    if not any(lake_path.rglob("*.parquet")):
        return []
    dataset = ds.dataset(lake_path / "web-events", format="parquet", partitioning="hive")
    return dataset.to_table(columns=["_id", "_message_id", "eventType"]).to_pylist()


@pytest.mark.integration
def test_a_page_s_events_arrive_through_the_running_pipeline_in_bigtable_and_the_lake(
    emulators, pubsub_resources, pages, browser, tmp_path
):
    catalog_path = catalog_for_origin(tmp_path, pages.origin)
    catalog = Catalog.load(catalog_path)
    lake_path, log_path = tmp_path / "lake", tmp_path / "pipeline.log"
    pipeline = start_pipeline(pubsub_resources, lake_path, emulators, catalog_path)
    service = start_server(
        tmp_path, pubsub_resources.topic, pubsub_resources.table, catalog=catalog_path
    )
    try:
        url = pages.page("shop.html", PAGE.format(service=service.url))
        loads = [load_page(browser, url), load_page(browser, url)]
        xaction_ids = [x for results in loads for x in check_answers(results)]
        ecid = browser.get_cookie(COOKIE)["value"]
        assert {results["ecid"] for results in loads} == {ecid}
        table = profile_table(emulators, pubsub_resources)

        def profile():
            return read_profile(table, catalog, "ECID", ecid, max_events=100)

        wait_until(
            lambda: profile() is not None and len(profile()["events"]) == 8,
            "the page's 8 events in the profile of its ECID",
            pipeline,
            log_path,
        )
        wait_until(lambda: len(lake_rows(lake_path)) >= 8, "8 lake rows", pipeline, log_path)
        found = profile()
        rows = lake_rows(lake_path)
        assert pipeline.poll() is None
    finally:
        stop_server(service)
        stop(pipeline)

    assert found["identities"] == [{"namespace": "ECID", "id": ecid}]
    assert sorted(e["eventType"] for e in found["events"]) == sorted(PAGE_EVENTS * 2)
    assert {e["dataset"] for e in found["events"]} == {"web-events"}
    assert len(rows) == 8  # each event once
    assert {r["_id"] for r in rows} == {e["_id"] for e in found["events"]}
    assert sorted(r["eventType"] for r in rows) == sorted(PAGE_EVENTS * 2)
    assert set(xaction_ids) <= {r["_message_id"] for r in rows}  # the answers' ids, in the lake
