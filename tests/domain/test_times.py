"""domain/times.py: times as the stores keep them, whole microseconds since the epoch."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.times import EPOCH, UTC, from_micros, micros

MOMENTS = [
    datetime.datetime(1970, 1, 1, tzinfo=UTC),
    datetime.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime.datetime(2026, 11, 30, 12, 0, 0, 123457, tzinfo=UTC),
    datetime.datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # beyond a float's µs
    datetime.datetime(1, 1, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_micros_and_back_is_the_same_moment_exactly(moment):
    count = micros(moment)
    assert type(count) is int
    assert from_micros(count) == moment
    days, rest = divmod(count, 86_400_000_000)  # by integer arithmetic alone
    assert (moment - EPOCH).days == days
    assert rest == ((moment - EPOCH).seconds * 1_000_000 + moment.microsecond)


@given(
    st.datetimes(
        min_value=datetime.datetime(1, 1, 1),
        max_value=datetime.datetime(9999, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_every_moment_round_trips(moment):
    assert from_micros(micros(moment)) == moment


def test_the_epoch_is_zero_and_a_microsecond_is_one():
    assert micros(EPOCH) == 0
    assert micros(EPOCH + datetime.timedelta(microseconds=1)) == 1
    assert micros(EPOCH - datetime.timedelta(microseconds=1)) == -1
    assert from_micros(1_762_070_400_000_000) == datetime.datetime(2025, 11, 2, 8, tzinfo=UTC)


def test_an_offset_is_the_same_moment_in_utc():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    here = datetime.datetime(2026, 11, 30, 13, 0, 0, 1, tzinfo=paris)
    assert micros(here) == micros(datetime.datetime(2026, 11, 30, 12, 0, 0, 1, tzinfo=UTC))
    assert from_micros(micros(here)).tzinfo is UTC
