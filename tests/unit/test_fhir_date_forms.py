"""Only the date forms FHIR R4 allows are dated (datatypes.html: date, dateTime, instant), review28c LOW 3.

Python's `datetime.fromisoformat` also reads "2026-03-01 10:00:00", "20260301", "2026-W09-7" and more,
which a FHIR server indexes as undated (sekmet-fhir sorts them with the undated ones): a score so dated
was the newest usable one prefetched and past the newest page searched, and a verdict differed (Cohere's
trial went from meets to insufficient). Every such text is now undated, as the server reads it; every
form FHIR allows is read as before."""

from __future__ import annotations

import pytest

from service.fhirdates import parse_datetime, precision
from service.record import build_record
from tests.builders import catalog, pain

LAX = [
    "2026-03-01 10:00:00",  # a space for the T
    "2026-03-01t10:00:00Z",  # a lowercase t
    "2026-03-01T10:00:00z",  # a lowercase z
    "20260301",  # ISO 8601's basic format
    "20260301T100000Z",
    "2026-W09-7",  # an ISO week date
    "2026-060",  # an ordinal date
    "2026-03-01T10",  # no minutes
    "2026-03-01T10:00",  # no seconds
    "2026-03-01T10:00Z",
    "2026-03-01T10:00+05:00",
    " 2026-03-01",  # surrounding white space
    "2026-03-01 ",
    "2026-03-01\n",
    " 2026 ",
    "2026-03-01T10:00:00+0500",  # an offset without its colon
    "2026-03-01T10:00:00+05",
    "2026-03-01T10:00:00+15:00",  # an offset past 14 hours
    "2026-03-01T10:00:00+14:30",
    "2026-03-01T10:00:00 Z",
    "2026-03-01T10:00:00,5Z",  # a comma for the point
    "2026-03-01T10:00:00.Z",  # a point without a fraction
    "2026-03-01T10:00:00UTC",
    "2026-3-1",  # a month or day without its zero
    "2026-03-1",
    "2026/03",
    "\uff12\uff10\uff12\uff16",  # full-width digits
    "\u0662\u0660\u0662\u0666-03-01",  # Arabic-Indic digits
    "0000",  # year zero
    "+2026-03-01",
    "26",
    "2026-00",
    "2026-13",
    "2026-03-32",
    "2026-02-30",  # a day the calendar does not have
    "2026-03-01T24:00:00Z",
    "2026-03-01T10:60:00Z",
    "2026-03-01T10:00:61Z",
    "",
]

VALID = [
    ("2026", "2026-01-01T00:00:00+00:00", "year"),
    ("2026-03", "2026-03-01T00:00:00+00:00", "month"),
    ("2026-03-01", "2026-03-01T00:00:00+00:00", "day"),
    ("0001", "0001-01-01T00:00:00+00:00", "year"),
    ("9999-12-31", "9999-12-31T00:00:00+00:00", "day"),
    ("2024-02-29", "2024-02-29T00:00:00+00:00", "day"),
    ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00+00:00", "time"),
    ("2026-03-01T10:00:00", "2026-03-01T10:00:00+00:00", "time"),  # no zone: read as UTC
    ("2026-03-01T23:59:59+05:00", "2026-03-01T23:59:59+05:00", "time"),
    ("2026-03-01T00:00:00-00:00", "2026-03-01T00:00:00+00:00", "time"),
    ("2026-03-01T10:00:00+14:00", "2026-03-01T10:00:00+14:00", "time"),
    ("2026-03-01T10:00:00-14:00", "2026-03-01T10:00:00-14:00", "time"),
    ("2026-03-01T10:00:00+13:59", "2026-03-01T10:00:00+13:59", "time"),
    ("2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.500000+00:00", "time"),
    ("2026-03-01T10:00:00.123456789Z", "2026-03-01T10:00:00.123456+00:00", "time"),
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59+00:00", "time"),  # a leap second: the one before
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999000+00:00", "time"),
]


@pytest.mark.parametrize("written", LAX)
def test_a_date_fhir_does_not_allow_is_undated(written: str) -> None:
    assert parse_datetime(written) is None


@pytest.mark.parametrize("written", LAX[:12])
def test_a_score_dated_in_a_form_fhir_does_not_allow_is_undated_in_the_record(written: str) -> None:
    """As the record reads it (its per-chart reader of dates), not only `parse_datetime` itself."""
    record = build_record("p1", {"Observation": [pain(8, written)]}, catalog().terminology)
    assert [o.effective for o in record.observations] == [None]


@pytest.mark.parametrize(("written", "read", "written_to"), VALID)
def test_every_form_fhir_allows_is_still_read(written: str, read: str, written_to: str) -> None:
    """The control: each form FHIR allows reads as it did before, to the same precision."""
    parsed = parse_datetime(written)
    assert (parsed.isoformat() if parsed else None, precision(written)) == (read, written_to)
