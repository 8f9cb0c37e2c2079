"""A drug course dated to a month or a year (review25 MEDIUM): such a date is any day of its span, so a
course is met only when its shortest possible length meets the need, not met when even its longest falls
short, and otherwise not documented, saying which day to record; no card line names a day the chart does
not give."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.checks import TEST_TYPES
from service.engine.model import Status
from tests.builders import RX, concept, context, med_request, med_statement

BACLOFEN = "Baclofen 10 MG Oral Tablet"
EIGHT_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 56}
SIX_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 42}
SIX_MONTHS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "months": 6}


def duration(params: dict[str, Any], chart: list[dict[str, Any]]) -> Any:
    return TEST_TYPES["medication-duration"].function(params, context(chart))


@pytest.mark.parametrize(
    ("authored", "end", "status", "finding"),
    [
        (
            "2025-01",
            "2025-03",
            Status.NOT_DOCUMENTED,
            "dated only to January 2025 → March 2025: lasted 4 weeks 1 day to 12 weeks 5 days (needs at "
            "least 8 weeks); record the days the course began and ended",
        ),
        (
            "2025-01-01",
            "2025-03",
            Status.MET,
            "at least 8 weeks 3 days documented, 1 Jan 2025 → March 2025",
        ),
        (
            "2025-01",
            "2025-03-20",
            Status.NOT_DOCUMENTED,
            "dated only to January 2025 → 20 Mar 2025: lasted 6 weeks 6 days to 11 weeks 1 day (needs at "
            "least 8 weeks); record the day the course began",
        ),
        (
            "2025-03",
            "2025-04-15",
            Status.NOT_MET,
            "the course ended after at most 6 weeks 3 days (March 2025 → 15 Apr 2025), needs at least 8 "
            "weeks",
        ),
    ],
)
def test_an_order_dated_to_a_month_lasted_what_every_day_of_it_gives(
    authored: str, end: str, status: Status, finding: str
) -> None:
    """review25 MEDIUM: "2025-01 → 2025-03" was met as 8 weeks (1 Jan to 1 Mar) though it may be 29
    days (31 January to 1 March)."""
    result = duration(EIGHT_WEEKS, [med_request(BACLOFEN, authored, end, "completed")])
    assert (result.status, result.finding) == (status, finding)


def test_a_statement_dated_to_months_is_counted_in_months_from_its_last_possible_start() -> None:
    """A MedicationStatement's effectivePeriod as an order's validity: January to July 2025 may be five
    months (31 January to 1 July) or near seven."""
    statement = med_statement(concept(RX, "1292", BACLOFEN), "completed", "2025-01", "2025-07")
    result = duration(SIX_MONTHS, [statement])
    assert result.status == Status.NOT_DOCUMENTED
    assert result.finding == (
        "dated only to January 2025 → July 2025: lasted 5 months 1 day to 6 months 30 days (needs at least "
        "6 months); record the days the course began and ended"
    )


def test_an_end_computed_from_a_start_dated_to_a_month_moves_with_it() -> None:
    """An order written "2025-01" with a 90-day supply lasted 90 days from whichever day it was written:
    met, its end named by how long after its start, not as a day the chart does not give."""
    result = duration(EIGHT_WEEKS, [med_request(BACLOFEN, "2025-01", status="completed", supply_days=90)])
    assert (result.status, result.finding) == (
        Status.MET,
        "12 weeks 6 days documented, January 2025 → 12 weeks 6 days later",
    )
    assert [e.text for e in result.evidence] == [
        f"{BACLOFEN} (completed, January 2025 → 12 weeks 6 days later)"
    ]


def test_an_order_dated_to_months_is_cited_no_finer_than_written() -> None:
    """The order's evidence line names its months and the lengths they allow, not 1 January to 1 March."""
    result = duration(EIGHT_WEEKS, [med_request(BACLOFEN, "2025-01", "2025-03", "completed")])
    assert [e.text for e in result.evidence] == [
        f"{BACLOFEN} (completed, January 2025 → March 2025, 4 weeks 1 day to 12 weeks 5 days)"
    ]


TWELVE_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 84}


def test_an_active_order_whose_end_is_written_to_this_month_may_still_be_running() -> None:
    """review26c HIGH: an active order from 1 Sep 2026 valid to "2026-11" may run to 30 November, past
    today (21 November), and reach 12 weeks; it was read as ended on 1 November and not met."""
    result = duration(TWELVE_WEEKS, [med_request(BACLOFEN, "2026-09-01", "2026-11", "active")])
    assert (result.status, result.finding) == (
        Status.NOT_DOCUMENTED,
        "8 weeks 5 days to 11 weeks 4 days so far (since 1 Sep 2026), needs at least 12 weeks",
    )


def test_an_active_order_whose_end_written_to_a_month_is_past_has_ended() -> None:
    """Its month over, the order ended whichever day of it: not met when even its longest falls short."""
    result = duration(TWELVE_WEEKS, [med_request(BACLOFEN, "2026-08-15", "2026-10", "active")])
    assert (result.status, result.finding) == (
        Status.NOT_MET,
        "the orders cover at most 11 weeks (15 Aug 2026 → October 2026), needs at least 12 weeks",
    )


def test_an_end_written_to_the_month_of_its_start_is_an_end() -> None:
    """review26c HIGH: a statement taken in October 2026 ("2026-10" to "2026-10") read as one with no end,
    still taken and not documented; it lasted at most 30 days, short of 6 weeks. Its evidence names it."""
    statement = med_statement(concept(RX, "1292", BACLOFEN), "active", "2026-10", "2026-10")
    result = duration(SIX_WEEKS, [statement])
    assert (result.status, result.finding) == (
        Status.NOT_MET,
        "the medication history covers at most 4 weeks 2 days (October 2026), needs at least 6 weeks",
    )
    order = med_request(BACLOFEN, "2025-01-01", "2025-01", "completed")
    assert [e.text for e in duration(SIX_WEEKS, [order]).evidence] == [
        f"{BACLOFEN} (completed, 1 Jan 2025 → January 2025, 0 days to 4 weeks 2 days)"
    ]


def test_an_active_statement_whose_end_is_to_come_says_how_far_it_has_come() -> None:
    """An end is written: not "with no end" (review26c), but how long so far, as an order's."""
    statement = med_statement(concept(RX, "1292", BACLOFEN), "active", "2026-10-01", "2026-12-15")
    result = duration(TWELVE_WEEKS, [statement])
    assert (result.status, result.finding) == (
        Status.NOT_DOCUMENTED,
        "7 weeks 2 days so far (since 1 Oct 2026), needs at least 12 weeks",
    )


@pytest.mark.parametrize(
    ("first", "finding"),
    [
        (
            med_request(BACLOFEN, "2025-01-05", "2025-02-04"),
            "at least 12 weeks 1 day documented if the last ran 30 days, 5 Jan 2025 → 4 weeks 2 days after "
            "the order of March 2025",
        ),
        (
            med_request(BACLOFEN, "2025-02-01", status="completed"),
            "at least 8 weeks 2 days documented if the last ran 30 days, 1 Feb 2025 → 4 weeks 2 days after "
            "the order of March 2025",
        ),
    ],
)
def test_a_course_ending_with_an_order_dated_to_a_month_says_after_which_order(
    first: dict[str, Any], finding: str
) -> None:
    """review26c MEDIUM: a course from 5 January whose last order, written in March 2025, ran 30 days read
    "5 Jan 2025 → 4 weeks 2 days later", as if it had lasted 30 days, beside "at least 12 weeks 1 day"."""
    last = med_request(BACLOFEN, "2025-03", status="completed")
    result = duration(EIGHT_WEEKS, [first, last])
    assert (result.status, result.finding) == (Status.MET, finding)
