"""A drug course dated to a month or a year (review25 MEDIUM): such a date is any day of its span, so a
course is met only when its shortest possible length meets the need, not met when even its longest falls
short, and otherwise not documented, saying which day to record; no card line names a day the chart does
not give."""

from __future__ import annotations

from typing import Any

import pytest

from service import fhirdates
from service.engine.checks import TEST_TYPES, medications
from service.engine.model import Status
from service.facts import MedicationFact
from tests.builders import RX, concept, context, med_request, med_statement
from tests.card_scenarios import answer_with_chart, scenarios

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


def supplied(authored: str, value: int, unit: str, status: str = "completed") -> dict[str, Any]:
    """An order written `authored` with a supply of `value` `unit` ("d", "mo") and no written end."""
    order = med_request(BACLOFEN, authored, status=status)
    order["dispenseRequest"] = {
        "expectedSupplyDuration": {"value": value, "code": unit, "system": "http://unitsofmeasure.org"}
    }
    return order


MORE_THAN_SIX_MONTHS = {**SIX_MONTHS, "comparator": ">"}
MORE_THAN_26_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">", "days": 182}
AT_LEAST_26_WEEKS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 182}


@pytest.mark.parametrize(
    ("params", "order", "status"),
    [
        # begun 1 Aug it ends 30 Jan, short of 6 months; begun 31 Aug, 1 Mar: 6 months (cards27)
        (SIX_MONTHS, supplied("2025-08", 182, "d"), Status.NOT_DOCUMENTED),
        (SIX_MONTHS, supplied("2024-08", 182, "d"), Status.NOT_DOCUMENTED),
        # begun 1 Jul it ends 1 Jan, 6 months and no more; begun 1 Jan, 6 months 3 days
        (MORE_THAN_SIX_MONTHS, supplied("2025", 184, "d"), Status.NOT_DOCUMENTED),
        # no day of August makes 181 days 6 months, and every day of February does: as before
        (SIX_MONTHS, supplied("2025-08", 181, "d"), Status.NOT_MET),
        (SIX_MONTHS, supplied("2025-02", 181, "d"), Status.MET),
        # a 6-month supply is 181 days from 1 January or 31 December, 184 from 1 March
        (MORE_THAN_26_WEEKS, supplied("2025", 6, "mo"), Status.NOT_DOCUMENTED),
        # a supply in days against days: every day of the month gives the same length (controls)
        (AT_LEAST_26_WEEKS, supplied("2025-08", 182, "d"), Status.MET),
        (MORE_THAN_26_WEEKS, supplied("2025-08", 182, "d"), Status.NOT_MET),
    ],
)
def test_an_end_that_moves_with_its_start_is_judged_from_every_day_the_start_may_be(
    params: dict[str, Any], order: dict[str, Any], status: Status
) -> None:
    """cards27: equal days are not equal calendar months, nor is a supply in months equal days: an order
    dated to a month or a year with its supply length was judged begun on its first day or its last only,
    so "2025-08" with 182 days read not met against 6 months though begun 31 August it lasts 6 months."""
    result = duration(params, [order])
    assert result.status == status
    if status == Status.NOT_DOCUMENTED:
        assert result.finding.endswith("; record the day the course began")


def test_an_order_dated_to_a_year_reaches_into_the_window_from_any_day_of_it() -> None:
    """A 181-day supply written "2026", in the last 6 months (from 21 May 2026): begun 21 May it lasts
    181 days in the window, though begun 1 January only 6 weeks of it, begun 31 December none."""
    result = duration({**EIGHT_WEEKS, "comparator": ">", "within_months": 6}, [supplied("2026", 181, "d")])
    assert result.status == Status.NOT_DOCUMENTED
    assert result.finding.endswith("; record the day the course began")


def test_a_course_is_met_by_the_least_it_spans_as_months_count_it() -> None:
    """An order of January 2026 run 30 days (no supply length) and a statement of March 2026 span at
    least 31 January to 1 March, a month, though the order's own shortest has more days (30: 1 to 31
    January, short of a month): the course was read as not documented."""
    statement = med_statement(concept(RX, "1292", BACLOFEN), "completed", "2026-03")
    order = med_request(BACLOFEN, "2026-01", status="completed")
    result = duration({**SIX_MONTHS, "months": 1}, [statement, order])
    assert result.status == Status.MET


def _supply_said(result: Any) -> list[str]:
    """The evidence lines of a one-order course, after the drug and its status."""
    return [e.text.removeprefix(f"{BACLOFEN} (completed, ") for e in result.evidence]


@pytest.mark.parametrize(
    ("order", "later", "beside_months"),
    [
        (supplied("2025", 184, "d"), "184 days later", "184 days later"),  # 6 months 3 days from 1 January
        (supplied("2025-08", 182, "d"), "26 weeks later", "182 days later"),  # 5 months 29 days from 1 August
        (
            supplied("2025", 6, "mo"),
            "6 months later",
            "6 months later",
        ),  # 181 days from 1 January, 184: 1 March
        (supplied("2025-03", 1, "mo"), "1 month later", "1 month later"),  # 4 weeks 3 days from 1 March
        (supplied("2025-01", 90, "d"), "12 weeks 6 days later", "90 days later"),  # under 13 weeks: in weeks
    ],
)
def test_an_end_that_moves_with_its_start_is_said_by_its_supply(
    order: dict[str, Any], later: str, beside_months: str
) -> None:
    """dates27: an end computed from a start dated to a month or a year was said by the calendar months it
    lies from the start's first day ("2025 → 6 months 3 days later" for 184 days), true of that day only;
    its supply, as written (in days or in months), is true of every day the start may be: on the evidence
    line, and in days beside a need in months (review27d: in the need's scheme, months and days)."""
    result = duration(SIX_MONTHS, [order])
    assert _supply_said(result) == [f"{fhirdates.human_as_written(order['authoredOn'])} → {later})"]
    assert f" → {beside_months}" in result.finding


@pytest.mark.parametrize(
    ("first", "record"),
    [
        # begun 31 December 2025 it runs to 30 April 2026, in the window; begun in January 2025, never
        (supplied("2025", 120, "d"), "the day the course began"),
        # ended 30 November 2025 it is in the window (from 21 November 2025); ended 1 November, not
        (
            med_statement(concept(RX, "1292", BACLOFEN), "completed", "2025-06-01", "2025-11"),
            "the day the course ended",
        ),
    ],
)
def test_an_order_whose_last_possible_end_reaches_into_the_window_is_part_of_the_course(
    first: dict[str, Any], record: str
) -> None:
    """review27d: the window held the orders whose first possible end is in it, so an order that may end in
    it was dropped and the 30-day order after it read not met ("the course ended after 4 weeks 2 days"),
    though one reading spans from the window's first weeks to 31 May 2026."""
    result = duration({**SIX_WEEKS, "within_months": 12}, [first, supplied("2026-05-01", 30, "d")])
    assert result.status == Status.NOT_DOCUMENTED
    assert result.finding.endswith(f"; record {record}")


@pytest.mark.parametrize(
    "order",
    [
        supplied("2025", 20, "d"),  # begun after 1 November 2025 it is in the window, else not
        # a statement's end is its date (contract §3): any day of 2025, the last 40 in the window, 0 days long
        med_statement(concept(RX, "1292", BACLOFEN), "completed", "2025"),
    ],
)
def test_a_course_that_may_not_reach_into_the_window_is_not_read_as_short(order: dict[str, Any]) -> None:
    """review27d: an order of 2025 with a 20-day supply is in the last 12 months (from 21 November 2025)
    only if begun after 1 November: else the drug is absent there (not documented, `_none_in_window`), never
    a course that fell short ("the course ended after 0 days (21 Nov 2025 → 2025)")."""
    result = duration({**SIX_WEEKS, "within_months": 12}, [order])
    assert result.status == Status.NOT_DOCUMENTED
    assert result.finding.endswith("; record the day the course began")


def test_orders_dated_to_a_year_are_placed_at_a_bounded_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """review27d: each order dated to a year was placed on all 365 days of it, so 1,000 of them (a prefetch
    holds as many, the EHR's FHIR server five times that) took 0.9 s of CPU a test; orders placed alike are
    now placed once, and past `MOST_PLACEMENTS` days an order takes the bounds every placement respects."""
    calls = []
    tied_end = MedicationFact.tied_end
    monkeypatch.setattr(MedicationFact, "tied_end", lambda m, day: calls.append(day) or tied_end(m, day))
    alike = [supplied("2024", 150, "d") for _ in range(20)]
    distinct = [supplied("2024", 100 + n, "d") for n in range(40)]
    result = duration(SIX_MONTHS, [*alike, *distinct])
    assert len(calls) <= 10 * 366  # ten orders dated to a year, not 60
    monkeypatch.setattr(medications, "MOST_PLACEMENTS", 10**9)
    assert duration(SIX_MONTHS, [*alike, *distinct]).status == result.status == Status.NOT_DOCUMENTED
    assert len(calls) > 41 * 365  # placed on every day when the budget allows (the test counts what it means)


def test_an_order_dated_to_a_year_is_placed_beside_the_others_of_its_course() -> None:
    """review27d: an order of 2025 with a 6-month supply and one of 8 March to 20 August 2025 last 6 months
    however the first is placed (begun by 8 March, 6 months from its start; later, from 8 March to past
    20 August), but its own shortest (begun 31 August, to 28 February: 5 months 28 days) was taken for the
    course's, as if the other order were not there: not documented, where c5c45bc read met."""
    chart = [supplied("2025", 6, "mo"), med_request(BACLOFEN, "2025-03-08", "2025-08-20", "completed")]
    result = duration(SIX_MONTHS, chart)
    assert (result.status, result.finding) == (Status.MET, "at least 6 months documented, 2025 → 20 Aug 2025")


@pytest.mark.parametrize("params", [SIX_WEEKS, SIX_MONTHS])
def test_a_span_that_ends_before_it_begins_is_ordered_as_0_days_as_it_is_judged(
    params: dict[str, Any],
) -> None:
    """review27d: `_bounds` ordered spans by a count of days of its own (`_length`), without `_days`'
    clamp to 0, so a placement begun after today and cut at today was shorter than one of 0 days, though
    `_lasted` judges both as 0 days: one count now, `_days`."""
    begun, today = fhirdates.parse_datetime("2026-12-20"), fhirdates.parse_datetime("2026-11-21")
    assert begun is not None and today is not None
    length = medications._length(params)
    assert length((begun, today)) == length((today, today))
    assert medications._days((begun, today)) == 0


@pytest.mark.parametrize(
    ("order", "later"),
    [
        (supplied("2024", 1, "a"), "1 year later"),  # a year's supply was "12 months later"
        (supplied("2024", 18, "mo"), "1 year 6 months later"),  # as a span of 18 months is said
        (supplied("2025", 6, "mo"), "6 months later"),  # under a year: as before (control)
    ],
)
def test_a_supply_of_a_year_or_more_is_said_in_years(order: dict[str, Any], later: str) -> None:
    """review27d: a supply written in years was said in months ("2024 → 12 months later"), in the finding
    and the evidence line; whole years are said as years, as a span of them is."""
    result = duration(SIX_MONTHS, [order])
    assert _supply_said(result) == [f"{fhirdates.human_as_written(order['authoredOn'])} → {later})"]
    assert f" → {later}" in result.finding


@pytest.mark.parametrize(
    ("order", "later"),
    [
        # 1 February 2024 + 365 days is 31 January 2025, 1 March 2024 + 365 days 1 March 2025: "1 year
        # later" is false from every day of February, beside "11 months 28 days documented"
        (supplied("2024-02", 365, "d"), "365 days later"),
        (supplied("2024", 730, "d"), "730 days later"),
        (supplied("2024-02", 364, "d"), "52 weeks later"),  # under a year: as before (control)
    ],
)
def test_a_supply_of_365_days_is_not_said_as_a_year(order: dict[str, Any], later: str) -> None:
    """review28d: a supply in days from a start dated to a month or a year was said by `human_days`,
    which says 365 days as "1 year": "11 months 28 days documented, February 2024 → 1 year later", in
    the met finding and the evidence line, though a 29 February within it leaves it a day short of a
    year. Days as many as whole years are said in days, true whichever day it began."""
    result = duration(SIX_WEEKS, [order])
    assert result.status == Status.MET
    assert [e.text.removeprefix(f"{BACLOFEN} (completed, ") for e in result.evidence] == [
        f"{fhirdates.human_as_written(order['authoredOn'])} → {later})"
    ]
    assert f" → {later}" in result.finding, result.finding


def test_an_end_moving_with_a_start_said_otherwise_than_the_courses_first_names_its_order() -> None:
    """review28d: an order of January 2025 (181 days) and a year's supply dated only 2025 both begin on 1
    January as read, so the year's end was said "later" than the course's first: "January 2025 → 1 year
    later", false of the year's order begun in December (it ran to today). Its order is named."""
    chart = [supplied("2025-01", 181, "d", "active"), supplied("2025", 1, "a", "active")]
    result = duration({**SIX_WEEKS, "comparator": ">", "days": 120}, chart)
    assert result.status == Status.MET
    assert result.finding.endswith("January 2025 → 1 year after the order of 2025"), result.finding


AT_LEAST_125_DAYS = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 125}


@pytest.mark.parametrize(
    ("params", "chart", "finding"),
    [
        (  # the tied end was "20 days after the order of 2025" beside a range and a need in weeks
            {**SIX_WEEKS, "within_months": 12},
            [supplied("2025", 20, "d")],
            "dated only to 21 Nov 2025 → 2 weeks 6 days after the order of 2025: lasted 0 days to 2 weeks 6 "
            "days (needs at least 6 weeks); record the day the course began",
        ),
        (  # "ended 20 days later, needs at least 6 weeks"
            {**SIX_WEEKS, "within_months": 6},
            [supplied("2025", 20, "d")],
            f"none in the last 6 months (since 21 May 2026): the last course, {BACLOFEN}, ended 2 weeks 6 "
            "days later, needs at least 6 weeks",
        ),
        (  # "ended after 5 weeks (March 2025 → 5 weeks later), needs at least 125 days"
            AT_LEAST_125_DAYS,
            [supplied("2025-03", 35, "d")],
            "the course ended after 35 days (March 2025 → 35 days later), needs at least 125 days",
        ),
        (  # "ended after 4 months …, needs at least 26 weeks"
            AT_LEAST_26_WEEKS,
            [med_request(BACLOFEN, "2025-01-01", "2025-05-01", "completed")],
            "the course ended after 17 weeks 1 day (1 Jan 2025 → 1 May 2025), needs at least 26 weeks",
        ),
        (  # "ended after 8 weeks 3 days …, needs at least 6 months"
            SIX_MONTHS,
            [med_request(BACLOFEN, "2025-01-01", "2025-03-01", "completed")],
            "the course ended after 2 months (1 Jan 2025 → 1 Mar 2025), needs at least 6 months",
        ),
        (  # "ended after 6 weeks (January 2026 → 6 weeks later), needs more than 2 months": 42 days whichever
            # day it began, but 1 month 11 days from 1 January, 1 month 14 days from 31 January: in days
            {**SIX_MONTHS, "comparator": ">", "months": 2},
            [supplied("2026-01", 42, "d")],
            "the course ended after 42 days (January 2026 → 42 days later), needs more than 2 months",
        ),
        (  # a supply in months against a need in days: said as written, no fixed number of days (control)
            AT_LEAST_26_WEEKS,
            [supplied("2025", 6, "mo")],
            "dated only to 2025 → 6 months later: lasted 25 weeks 6 days to 26 weeks 2 days (needs at least "
            "26 weeks); record the day the course began",
        ),
        (  # met: no need said beside it, in `human_span`'s scheme (control)
            SIX_WEEKS,
            [med_request(BACLOFEN, "2025-01-01", "2025-06-01", "completed")],
            "5 months documented, 1 Jan 2025 → 1 Jun 2025",
        ),
    ],
)
def test_every_length_a_finding_sets_beside_its_need_is_said_in_the_needs_unit(
    params: dict[str, Any], chart: list[dict[str, Any]], finding: str
) -> None:
    """review27d: one unit scheme in one finding, the need's: the end of an order dated to a year was said
    in days (`human_days`) beside a range and a need in weeks, and a known length in `human_span`'s
    scheme (months from 13 weeks, weeks under them) beside a need in weeks, days or months."""
    assert duration(params, chart).finding == finding


@pytest.mark.parametrize(
    ("order", "within", "words"),
    [
        # 42 days whichever day of 2026 it began, cut at today from 10 October: 1 month 11 days from 1
        # January, 1 month 14 days from 31 January; "at most 1 month 11 days" is false begun 31 January
        (supplied("2026", 6, "wk"), 12, "at most 42 days"),
        (supplied("2026", 8, "wk"), None, "at most 56 days"),  # 1 month 25 days from 1 Jan, 28 from 31 Jan
        (supplied("2026-01", 6, "wk"), None, "42 days"),  # known: said in days already (control)
        # no end moves with its start: every reading lies within 1 July → 18 November, its months hold
        # of each (control)
        (med_request(BACLOFEN, "2025-07", "2025-11-18", "completed"), None, "at most 4 months 17 days"),
    ],
)
def test_the_most_a_course_dated_to_a_year_may_have_lasted_is_true_from_every_day_it_may_have_begun(
    order: dict[str, Any], within: int | None, words: str
) -> None:
    """review28d: the longest reading of a course dated to a month or a year was said in calendar months
    from the one day `_bounds` placed it on ("the course ended after at most 1 month 11 days (2026 → 42
    days later), needs more than 6 months"), though begun on another day it lasted 1 month 14 days: a
    length known only in days is said in days beside months, the most as the known (`_length_words`)."""
    params = {**SIX_MONTHS, "comparator": ">", "months": 6, **({"within_months": within} if within else {})}
    outcome = duration(params, [order])
    assert outcome.status == Status.NOT_MET
    assert f"ended after {words} (" in outcome.finding, outcome.finding


@pytest.mark.parametrize(
    ("params", "chart", "lengths"),
    [
        # 42 days whichever day of 2026 it began, cut at today from 10 October: "0 days to 1 month 11 days
        # so far" (placed on 1 January) was false begun 31 January, 1 month 14 days
        (SIX_MONTHS, [supplied("2026", 6, "wk", "active")], "0 days to 42 days so far (since 2026)"),
        # "lasted 1 month 26 days to 11 months 16 days": begun 1 March 2024 the 8 weeks are 1 month 25 days
        (
            {**SIX_MONTHS, "months": 3},
            [med_request(BACLOFEN, "2024-11-17", status="active"), supplied("2024", 8, "wk", "active")],
            "lasted 56 days to 351 days (",
        ),
        # no end moves with its start: every reading lies within the longest, months hold (control)
        (SIX_MONTHS, [med_request(BACLOFEN, "2026-05", "2027-01", "active")], "5 months 21 days to 6 months"),
    ],
)
def test_a_range_of_lengths_is_true_from_every_day_a_course_may_have_begun(
    params: dict[str, Any], chart: list[dict[str, Any]], lengths: str
) -> None:
    """review28d: both ends of a range ("X to Y so far", "dated only to …: lasted X to Y") were said in
    calendar months from the one day `_bounds` placed an order whose end moves with its start, as "at
    most" was: each end is said as `_length_words` says a length, in days beside months there."""
    outcome = duration(params, chart)
    assert outcome.status == Status.NOT_DOCUMENTED
    assert lengths in outcome.finding, outcome.finding


@pytest.mark.parametrize(
    ("order", "finding"),
    [
        (  # begun 1 January it ran its 6 months; begun today, none of them
            supplied("2026", 6, "mo", "active"),
            "may already be met: record the day the course began (0 days to 6 months so far since 2026, "
            "needs at least 6 months)",
        ),
        (  # its end, written to January 2027, cannot fall before today: not a day to record
            med_request(BACLOFEN, "2026-05", "2027-01", "active"),
            "may already be met: record the day the course began (5 months 21 days to 6 months 20 days so "
            "far since May 2026, needs at least 6 months)",
        ),
        (  # its end, written to November 2026, may be before today
            med_request(BACLOFEN, "2026-05", "2026-11", "active"),
            "may already be met: record the days the course began and ended (5 months 1 day to 6 months 20 "
            "days so far since May 2026, needs at least 6 months)",
        ),
        (  # its longest falls short too: how far it has come (control)
            med_request(BACLOFEN, "2026-06", "2027-01", "active"),
            "4 months 21 days to 5 months 20 days so far (since June 2026), needs at least 6 months",
        ),
    ],
)
def test_a_running_course_whose_longest_reading_meets_is_not_said_as_short(
    order: dict[str, Any], finding: str
) -> None:
    """review27d: an active order dated to a month or a year whose longest reading already meets the need
    read as one still short of it ("0 days to 6 months so far (since 2026), needs at least 6 months"); it
    stays not documented (its shortest falls short), and says it may already meet it and which day to
    record."""
    result = duration(SIX_MONTHS, [order])
    assert (result.status, result.finding) == (Status.NOT_DOCUMENTED, finding)


@pytest.mark.parametrize("scenario", ["cmm210-pain-meets-trial", "cohere-pain-meets-implant"])
def test_a_card_keeps_that_a_running_course_may_already_meet_its_need(scenario: str) -> None:
    """review28d: a card cuts a long finding to keep the policy's what-to-do whole, and 00f395d's words
    came last: the criterion's line read "0 days to 6 months so far (since 2026), needs at least… — Record
    the analgesic prescriptions … covering at least six months", a course short of its need, on CMM-210's
    and Cohere's cards alike. What the chart leaves open is said first, and stays on the card."""
    order = med_request("Oxycodone Hydrochloride 10 MG Oral Tablet", "2026", status="active", code="1049683")
    order["dispenseRequest"] = {
        "expectedSupplyDuration": {"value": 6, "code": "mo", "system": "http://unitsofmeasure.org"}
    }
    request, chart = scenarios()[scenario]
    chart = [r for r in chart if r.get("resourceType") != "MedicationRequest"] + [{**order, "id": "rx-2026"}]
    body = answer_with_chart(request, chart)
    lines = [x for c in body["cards"] for x in c.get("detail", "").splitlines() if "6 months" in x]
    assert any("so far" in x or "may already" in x for x in lines), lines  # the course's line is there
    assert any("may already" in x for x in lines), lines
