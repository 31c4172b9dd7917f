"""Issue #17: a record time is bounded by the clock. A time more than the catalog's
max_future_seconds (a day by default) past the message's ingestion is bad_timestamp, so
no record, a delete least of all, can outrank every honest record after it."""

import copy
import datetime
import json

import pytest
import yaml

from domain.catalog import DEFAULT_MAX_FUTURE_SECONDS, Catalog, CatalogError
from domain.parsing import RecordParser
from domain.records import FailedMessage, Record
from helpers.examples import EXAMPLE_CATALOG, PUBLISH_TIME, example_lines

PROFILE = json.loads(example_lines("records.jsonl")[0])  # an envelope of crm-profiles
EVENT = json.loads(example_lines("records-bare.jsonl")[0])  # a bare web-events record


def event_at(moment):
    return json.dumps({**EVENT, "timestamp": moment.isoformat()}).encode()


def delete_dated(date):
    document = copy.deepcopy(PROFILE)
    document["header"]["operations"] = {"data": "delete"}
    document["body"]["xdmEntity"]["_repo"] = {"modifyDate": date}
    return json.dumps(document).encode()


def parse(parser, payload, attributes=None, publish_time=PUBLISH_TIME):
    return parser.parse_or_fail(payload, attributes or {}, "m-1", publish_time, "step")


def test_the_default_tolerance_is_a_day(catalog):
    assert catalog.max_future_seconds == DEFAULT_MAX_FUTURE_SECONDS == 86_400


@pytest.mark.parametrize(
    "ahead, valid",
    [
        (datetime.timedelta(0), True),
        (datetime.timedelta(hours=23, minutes=59), True),  # a clock fast by a day is believed
        (datetime.timedelta(days=1), True),
        (datetime.timedelta(days=1, seconds=1), False),
        (datetime.timedelta(days=400), False),
    ],
)
def test_an_event_is_refused_only_past_the_tolerance(parser, ahead, valid):
    result = parse(parser, event_at(PUBLISH_TIME + ahead), {"dataset": "web-events"})
    if valid:
        assert isinstance(result, Record)
    else:
        assert isinstance(result, FailedMessage)
        assert result.error_class == "bad_timestamp"
        assert "max_future_seconds" in result.error_message


def test_a_delete_dated_9999_is_refused_and_cannot_pin_a_person(parser):
    result = parse(parser, delete_dated("9999-12-31T23:59:59Z"))
    assert isinstance(result, FailedMessage) and result.error_class == "bad_timestamp"


def test_the_past_is_not_bounded(parser):
    result = parse(
        parser, event_at(PUBLISH_TIME - datetime.timedelta(days=3650)), {"dataset": "web-events"}
    )
    assert isinstance(result, Record)


def test_without_a_publish_time_the_clock_is_the_ingestion_time(parser):
    now = datetime.datetime.now(datetime.timezone.utc)
    tomorrow_and_more = now + datetime.timedelta(days=2)
    result = parse(parser, event_at(tomorrow_and_more), {"dataset": "web-events"}, None)
    assert isinstance(result, FailedMessage) and result.error_class == "bad_timestamp"


def catalog_with(tmp_path, **changes):
    spec = yaml.safe_load(EXAMPLE_CATALOG.read_text())
    spec["schemas"] = str(EXAMPLE_CATALOG.parent / spec["schemas"])
    spec.update(changes)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_catalog_sets_the_tolerance(tmp_path):
    strict = RecordParser(Catalog.load(str(catalog_with(tmp_path, max_future_seconds=60))))
    late_by_two_minutes = event_at(PUBLISH_TIME + datetime.timedelta(minutes=2))
    assert parse(strict, late_by_two_minutes, {"dataset": "web-events"}).error_class == (
        "bad_timestamp"
    )


@pytest.mark.parametrize("value", [-1, "a day", 1.5, True])
def test_a_wrong_tolerance_is_refused_at_load(tmp_path, value):
    with pytest.raises(CatalogError, match="max_future_seconds"):
        Catalog.load(str(catalog_with(tmp_path, max_future_seconds=value)))
