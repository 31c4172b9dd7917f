"""The test-traffic generator, ingest/dev/generate.py."""

import datetime
import pathlib
from collections import Counter

import pytest

from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.records import RecordError
from ingest.dev.generate import INVALID_CLASSES, RecordGenerator

EXAMPLE_CATALOG = pathlib.Path(__file__).parents[2] / "examples" / "catalog.yaml"
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def parser():
    return RecordParser(Catalog.load(str(EXAMPLE_CATALOG)))


def generated(count=2000, **options):
    options.setdefault("seed", 1)
    return list(RecordGenerator(clock=lambda: NOW, **options).messages(count))


def entities(messages, parser):
    """The records of the valid messages, duplicates left out."""
    return [
        parser.parse(message.payload).entity
        for message in messages
        if message.valid and not message.duplicate
    ]


def test_the_same_seed_gives_the_same_messages_and_another_seed_others():
    first = [message.payload for message in generated(500, seed=7)]

    assert [message.payload for message in generated(500, seed=7)] == first
    assert [message.payload for message in generated(500, seed=8)] != first


def test_valid_messages_pass_the_pipeline_parser_and_invalid_ones_fail_with_their_class(parser):
    messages = generated(invalid_share=0.3, duplicate_share=0.05)

    for message in messages:
        if message.valid:
            assert parser.parse(message.payload).dataset == message.dataset
        else:
            with pytest.raises(RecordError) as failure:
                parser.parse(message.payload)
            assert failure.value.error_class == message.error_class, failure.value.message
    assert {message.error_class for message in messages if not message.valid} == set(
        INVALID_CLASSES
    )
    assert {message.dataset for message in messages if message.valid} == {
        "crm-profiles",
        "web-events",
        "web-events-archive",
    }


def test_shares_and_counts_are_as_asked(parser):
    generator = RecordGenerator(
        seed=3,
        people=50,
        profile_share=0.3,
        invalid_share=0.1,
        duplicate_share=0.05,
        clock=lambda: NOW,
    )
    messages = list(generator.messages(2000))

    kinds = Counter(
        "duplicate" if message.duplicate else "valid" if message.valid else "invalid"
        for message in messages
    )
    assert kinds == generator.counts
    assert sum(generator.invalid_classes.values()) == kinds["invalid"]
    assert kinds["invalid"] / 2000 == pytest.approx(0.1, abs=0.03)
    assert kinds["duplicate"] / 2000 == pytest.approx(0.05, abs=0.02)
    fresh_valid = [message for message in messages if message.valid and not message.duplicate]
    profile_share = sum(message.dataset == "crm-profiles" for message in fresh_valid) / len(
        fresh_valid
    )
    assert profile_share == pytest.approx(0.3, abs=0.04)


def test_records_are_about_as_many_people_as_asked_each_with_a_stable_email_and_ecid(parser):
    records = entities(generated(people=50, profile_share=0.3), parser)

    emails_of_ecid = {}
    for record in records:
        emails = emails_of_ecid.setdefault(record["identityMap"]["ECID"][0]["id"], set())
        emails.update(email["id"] for email in record["identityMap"].get("Email", []))
    assert len(emails_of_ecid) == 50
    assert all(len(emails) == 1 for emails in emails_of_ecid.values())
    assert len(set().union(*emails_of_ecid.values())) == 50


def test_duplicates_are_byte_identical_copies_of_earlier_messages():
    messages = generated(duplicate_share=0.1, invalid_share=0.1)

    seen = set()
    for message in messages:
        if message.duplicate:
            assert message.payload in seen
        else:
            assert message.payload not in seen
            seen.add(message.payload)
    assert sum(message.duplicate for message in messages) > 150


def test_record_times_lag_the_clock_by_at_most_the_out_of_order_seconds(parser):
    messages = generated(out_of_order_seconds=120, invalid_share=0)

    times = [parser.parse(message.payload).record_time for message in messages]
    lags = [(NOW - time).total_seconds() for time in times]
    assert 0 <= min(lags) < 5
    assert 115 < max(lags) <= 120
    # Out of order: many a record is older than the one before it.
    assert sum(later < earlier for earlier, later in zip(times, times[1:], strict=False)) > 500

    in_order = generated(100, out_of_order_seconds=0, invalid_share=0)
    assert {parser.parse(message.payload).record_time for message in in_order} == {NOW}


def test_events_are_the_size_of_a_real_web_event():
    events = generated(profile_share=0, invalid_share=0, duplicate_share=0)

    average = sum(len(message.payload) for message in events) / len(events)
    assert 550 <= average <= 750
