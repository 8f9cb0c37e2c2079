"""Which calendar day a call is on (service/call_day.py): the day in the configured time zone, so a
payer's "effective March 1" starts at its own midnight (review s16 OPS-2)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from service.call_day import UnknownTimeZone, call_date, time_zone


@pytest.mark.parametrize(
    ("instant", "zone", "day"),
    [
        (datetime(2027, 3, 1, 0, 30, tzinfo=UTC), "UTC", date(2027, 3, 1)),
        (datetime(2027, 3, 1, 0, 30, tzinfo=UTC), "America/New_York", date(2027, 2, 28)),  # 19:30 EST
        (datetime(2027, 3, 1, 4, 59, tzinfo=UTC), "America/New_York", date(2027, 2, 28)),
        (datetime(2027, 3, 1, 5, 0, tzinfo=UTC), "America/New_York", date(2027, 3, 1)),  # its midnight
        (datetime(2027, 7, 1, 4, 0, tzinfo=UTC), "America/New_York", date(2027, 7, 1)),  # EDT: UTC-4
        (datetime(2027, 2, 28, 14, 0, tzinfo=UTC), "Pacific/Auckland", date(2027, 3, 1)),
    ],
)
def test_the_call_date_is_the_day_in_the_zone(instant: datetime, zone: str, day: date) -> None:
    assert call_date(zone, instant) == day


@pytest.mark.parametrize("name", ["Eastern", "localtime", "posixrules", "", "../etc/passwd"])
def test_an_unknown_zone_is_refused_with_what_to_write(name: str) -> None:
    """`localtime` is a file of Debian's time zone data, the host's clock setting: no zone of its own."""
    with pytest.raises(UnknownTimeZone, match="such as America/New_York"):
        time_zone(name)
