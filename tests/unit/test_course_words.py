"""The words a drug course is said in, read in ten seconds (cards27, from review26c's and review26f's LOW
findings): a length is said once when its bounds meet, without "at most" when it is known, in one unit
scheme; a period begun and ended in one month is that month; a statement is no order; a course dated
after today says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service import fhirdates
from service.engine.checks import TEST_TYPES
from service.engine.model import Status
from tests.builders import RX, concept, context, med_request, med_statement

BACLOFEN = "Baclofen 10 MG Oral Tablet"
SIX_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 42}
TWELVE_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 84}


def duration(params: dict[str, Any], chart: list[dict[str, Any]]) -> Any:
    return TEST_TYPES["medication-duration"].function(params, context(chart))  # today: 21 Nov 2026


def statement(start: str, end: str | None = None, status: str = "active") -> dict[str, Any]:
    return med_statement(concept(RX, "1292", BACLOFEN), status, start, end)


@pytest.mark.parametrize(
    ("start", "finding"),
    [
        ("2026-10-01", "7 weeks 2 days so far (since 1 Oct 2026), needs at least 12 weeks"),
        ("2026-11-21", "0 days so far (since 21 Nov 2026), needs at least 12 weeks"),
    ],
)
def test_a_running_course_whose_bounds_meet_says_its_length_once(start: str, finding: str) -> None:
    """review26c: an active order from a day to an end written to next month has run as long, whichever
    day of the month it ends: "7 weeks 2 days to 7 weeks 2 days so far", "0 days to 0 days so far"."""
    result = duration(TWELVE_WEEKS, [med_request(BACLOFEN, start, "2026-12", "active")])
    assert (result.status, result.finding) == (Status.NOT_DOCUMENTED, finding)


def test_one_order_dated_to_a_month_with_its_supply_length_lasted_that_long_not_at_most() -> None:
    """review26c: its end moves with its start, so its length is known: "ended after at most 8 weeks 4
    days" was loose."""
    result = duration(TWELVE_WEEKS, [med_request(BACLOFEN, "2025-03", status="completed", supply_days=60)])
    assert (result.status, result.finding) == (
        Status.NOT_MET,
        "the course ended after 8 weeks 4 days (March 2025 → 8 weeks 4 days later), needs at least 12 weeks",
    )


def test_a_course_begun_and_ended_in_one_month_names_it_once() -> None:
    """review26c: "March 2025 → March 2025", in the finding and the order's evidence line."""
    result = duration(SIX_WEEKS, [med_request(BACLOFEN, "2025-03", "2025-03", "completed")])
    assert (result.status, result.finding) == (
        Status.NOT_MET,
        "the course ended after at most 4 weeks 2 days (March 2025), needs at least 6 weeks",
    )
    assert [e.text for e in result.evidence] == [
        f"{BACLOFEN} (completed, March 2025, 0 days to 4 weeks 2 days)"
    ]


def test_a_range_of_lengths_is_said_in_one_unit_scheme() -> None:
    """review26f: "8 weeks 6 days to 3 months 20 days so far" mixed weeks and months in one range; beside
    a need in weeks both ends are said in weeks (dates27), and the evidence line, beside no need, in
    months and days once its longer end is."""
    result = duration(TWELVE_WEEKS, [med_request(BACLOFEN, "2026-08", "2026-11", "active")])
    assert result.finding == (  # its longest reading meets: not short, undated (review27d)
        "may already be met: record the days the course began and ended (8 weeks 6 days to 16 weeks so far "
        "since August 2026, needs at least 12 weeks)"
    )
    assert [e.text for e in result.evidence] == [
        f"{BACLOFEN} (active, August 2026 → November 2026, 2 months 1 day to 3 months 29 days)"
    ]


@pytest.mark.parametrize(
    ("params", "finding"),
    [
        (
            TWELVE_WEEKS,
            "dated only to January 2025 → April 2025: lasted 8 weeks 4 days to 17 weeks (needs at least 12 "
            "weeks); record the days the course began and ended",
        ),
        (
            {**TWELVE_WEEKS, "days": 100},
            "dated only to January 2025 → April 2025: lasted 60 days to 119 days (needs at least 100 days); "
            "record the days the course began and ended",
        ),
        (
            {**TWELVE_WEEKS, "days": None, "months": 3},
            "dated only to January 2025 → April 2025: lasted 2 months 1 day to 3 months 29 days (needs at "
            "least 3 months); record the days the course began and ended",
        ),
        (
            {**TWELVE_WEEKS, "days": None, "months": 4},
            "2 months 1 day to 3 months 20 days so far (since August 2026), needs at least 4 months",
        ),
        (
            {**TWELVE_WEEKS, "days": 125},
            "62 days to 112 days so far (since August 2026), needs at least 125 days",
        ),
    ],
)
def test_a_range_of_lengths_is_said_in_the_units_of_the_need(params: dict[str, Any], finding: str) -> None:
    """cards27's open question: "2 months 1 day to 3 months 20 days so far …, needs at least 12 weeks"
    made a clinician convert to compare; a range is said in the threshold's units, one scheme for both
    ends: weeks beside weeks, days beside days, calendar months beside months."""
    params = {k: v for k, v in params.items() if v is not None}
    if "2026" in finding:
        chart = [med_request(BACLOFEN, "2026-08", "2026-11", "active")]
    else:
        chart = [med_request(BACLOFEN, "2025-01", "2025-04", "completed")]
    result = duration(params, chart)
    assert (result.status, result.finding) == (Status.NOT_DOCUMENTED, finding)


def _on(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("shortest", "longest", "words"),
    [
        (("2026-08-31", "2026-10-30"), ("2026-08-01", "2026-11-21"), "1 month 30 days to 3 months 20 days"),
        (("2026-09-20", "2026-10-01"), ("2026-08-01", "2027-08-10"), "11 days to 1 year"),
        (("2026-09-01", "2026-10-20"), ("2026-09-01", "2026-11-01"), "7 weeks to 8 weeks 5 days"),
        (("2026-09-01", "2026-11-01"), ("2026-09-01", "2026-11-01"), "8 weeks 5 days"),
        (("2026-09-01", "2026-09-01"), ("2026-09-01", "2026-12-31"), "0 days to 3 months 29 days"),
    ],
)
def test_human_span_range_says_both_ends_alike(
    shortest: tuple[str, str], longest: tuple[str, str], words: str
) -> None:
    assert (
        fhirdates.human_span_range((_on(shortest[0]), _on(shortest[1])), (_on(longest[0]), _on(longest[1])))
        == words
    )


def test_a_statement_whose_end_has_passed_is_said_as_the_medication_history() -> None:
    """review26c: an active MedicationStatement whose written end has passed read "the orders cover …";
    beside an order, both are named."""
    result = duration(TWELVE_WEEKS, [statement("2026-08-15", "2026-10")])
    assert (result.status, result.finding) == (
        Status.NOT_MET,
        "the medication history covers at most 11 weeks (15 Aug 2026 → October 2026), needs at least 12 "
        "weeks",
    )
    both = [statement("2026-08-15", "2026-10"), med_request(BACLOFEN, "2026-08-20", "2026-09-20", "active")]
    assert duration(TWELVE_WEEKS, both).finding == (
        "the orders and the medication history cover at most 11 weeks (15 Aug 2026 → October 2026), needs at "
        "least 12 weeks"
    )


@pytest.mark.parametrize(
    ("authored", "end", "status", "verdict", "dated"),
    [
        ("2027-01-05", "2027-04-05", "completed", Status.NOT_MET, "5 Jan 2027 → 5 Apr 2027"),
        ("2027-01", "2027-04", "completed", Status.NOT_MET, "January 2027 → April 2027"),
        ("2027-01", "2027-04", "active", Status.NOT_DOCUMENTED, "January 2027 → April 2027"),
    ],
)
def test_a_course_dated_after_today_says_so_plainly(
    authored: str, end: str, status: str, verdict: Status, dated: str
) -> None:
    """review26c: a completed order authored after today read "ended after 0 days (5 Jan 2027 → 21 Nov
    2026)", its span backwards ("at most 0 days (January 2027 → 21 Nov 2026)" dated to months; an active
    one "0 days to 0 days so far (since January 2027)"): as a future onset is said (review25d), with
    the order's own dates. The verdicts are those the course had."""
    result = duration(SIX_WEEKS, [med_request(BACLOFEN, authored, end, status)])
    assert (result.status, result.finding) == (
        verdict,
        f"dated {dated}, after today: the course has not lasted any time (needs at least 6 weeks); check the "
        "dates of the orders",
    )


def test_a_course_begun_today_is_not_after_today() -> None:
    """An order written today at 10:00 is not dated after today."""
    result = duration(SIX_WEEKS, [med_request(BACLOFEN, "2026-11-21T10:00:00Z", "2026-12-21", "active")])
    assert result.finding == "0 days so far (since 21 Nov 2026), needs at least 6 weeks"


def test_a_need_of_one_month_is_said_in_the_singular() -> None:
    """review27d LOW: "needs at least 1 months"."""
    one_month = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "months": 1}
    result = duration(one_month, [med_request(BACLOFEN, "2025-03-01", "2025-03-10", "completed")])
    assert result.status == Status.NOT_MET
    assert result.finding.endswith("needs at least 1 month")
