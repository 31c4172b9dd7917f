"""Times as the stores keep them: microseconds since the Unix epoch, UTC."""

import datetime

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def micros(moment):
    """An aware datetime as whole microseconds since the epoch (exact: no float)."""
    return (moment - EPOCH) // _MICROSECOND


def from_micros(micros_since_epoch):
    return EPOCH + datetime.timedelta(microseconds=micros_since_epoch)
