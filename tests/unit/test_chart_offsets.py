"""Dates as the chart writes them (contract §3): a dateTime keeps its offset, so its day is the
chart's own, and a date without a time stands in the calendar of what it is compared with; nothing
near the first or last representable instant may break a call."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from typing import Any

import pytest

from service.engine.checks import TEST_TYPES
from service.engine.model import Status
from service.fhir.score_window import fhir_instant
from service.fhirdates import (
    against_months,
    days_later,
    human_span,
    months_before,
    parse_datetime,
    quantity_against_months,
    shifted,
    supply_end,
)
from service.record import build_record
from tests.builders import (
    ICD,
    RX,
    allergy,
    catalog,
    concept,
    condition,
    context,
    determine,
    med_request,
    meeting_chart,
    pain,
    procedure,
    statuses,
)
from tests.calls import sign_with_chart


def test_a_datetime_keeps_the_day_it_was_written_on() -> None:
    evening = parse_datetime("2026-06-03T22:00:00-05:00")
    assert evening is not None and evening.date() == date(2026, 6, 3)
    assert evening == parse_datetime("2026-06-04T03:00:00Z")  # the same instant


def test_a_shift_past_the_first_instant_stops_there_in_utc() -> None:
    """Year 1 at +05:00 less 30 days is before any instant UTC can hold: the search window built from
    it must still be written (a trial placeholder-dated 20 January of year 1 crashed the call)."""
    trial = parse_datetime("0001-01-20T10:00:00+05:00")
    assert trial is not None
    edge = shifted(trial, -timedelta(days=30))
    assert edge.tzinfo == UTC and fhir_instant(edge) == "0001-01-01T00:00:00Z"
    late = parse_datetime("9999-12-31T20:00:00-05:00")  # a later instant than UTC can hold
    assert late is None or shifted(late, -timedelta(hours=1)).year == 9999


def run_relief(chart: list[dict[str, Any]]) -> Any:
    return TEST_TYPES["trial-relief"].function({"comparator": ">=", "percent": 50}, context(chart))


def test_a_score_dated_the_day_after_an_evening_trial_is_after_it() -> None:
    """The trial at 22:00 on 1 October (-05:00) is 03:00 UTC on 2 October; a score dated 2 October
    without a time is from after the trial in the chart's calendar, never its baseline."""
    chart = [
        procedure("62324", "2025-10-01T22:00:00-05:00"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(3, "2025-10-02"),
        pain(3, "2025-10-02T08:00:00-05:00"),
    ]
    outcome = run_relief(chart)
    assert outcome.status == Status.MET, outcome.finding
    assert "62 %" in outcome.finding or "63 %" in outcome.finding, outcome.finding


def test_the_earliest_diagnosis_is_the_earliest_day_the_chart_wrote() -> None:
    """20 May at 23:00 (-05:00) is 21 May in UTC; a diagnosis written 21 May is not earlier."""
    others = [r for r in meeting_chart() if r["resourceType"] != "Condition"]
    alone = [condition(ICD, "M96.1", "2026-05-20T23:00:00-05:00"), *others]
    both = [*alone, condition(ICD, "G89.4", "2026-05-21")]
    assert statuses(determine(alone))["geha.chronic-pain.duration-6mo"] == "met"
    assert statuses(determine(both))["geha.chronic-pain.duration-6mo"] == "met"


def test_months_before_the_first_year_are_its_first_day() -> None:
    """A drug order placeholder-dated in year 1: its course's months counted back reach the first
    day there is, never an error (it answered HTTP 500)."""
    assert months_before(date(1, 3, 15), 6) == date.min
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)


OXYCODONE = ("Oxycodone Hydrochloride 10 MG Oral Tablet", "1049683")
OPIOIDS_6WK = {"valuesets": ["opioids"], "comparator": ">", "days": 42}
LAST_DAYS = ("9999-12-31", "9999-12-31T23:59:59Z", "9999-12", "9999")
FIRST_DAYS = ("0001-01-01", "0001-01-01T00:00:00Z", "0001-01", "0001")


def open_ended_order(authored: str) -> dict[str, Any]:
    """An active oxycodone order valid until 9999-12-31: the EHRs' placeholder for "no end"."""
    return med_request(OXYCODONE[0], authored, "9999-12-31", "active", code=OXYCODONE[1])


def test_calendar_spans_reach_the_last_month_there_is() -> None:
    """December of year 9999 has no month after it; its length is still known (it answered HTTP 500)."""
    start, early, end = (parse_datetime(d) for d in ("9999-01-15", "2025-01-01", "9999-12-31"))
    assert start is not None and early is not None and end is not None
    assert human_span(start, end) == "11 months 16 days"
    assert human_span(early, end) == "7974 years 11 months"


def test_days_later_of_any_size_stop_at_the_first_or_last_instant() -> None:
    """A supply duration added to an order authored late in year 9999 (or one of absurd size)."""
    late = parse_datetime("9999-12-20")
    assert late is not None
    assert days_later(late, 30).date() == date.max
    assert days_later(late, 1e300).date() == date.max
    assert days_later(late, -1e300).date() == date.min


def test_an_order_valid_until_the_last_day_there_is_is_a_course_still_running() -> None:
    outcome = TEST_TYPES["medication-duration"].function(
        OPIOIDS_6WK, context([open_ended_order("2026-10-17")])
    )
    assert outcome.status == Status.NOT_DOCUMENTED
    assert "5 weeks so far (since 17 Oct 2026)" in outcome.finding
    assert [e.text for e in outcome.evidence] == [f"{OXYCODONE[0]} (active, 17 Oct 2026 → open-ended)"]


def test_a_supply_running_past_the_last_day_there_is_ends_on_it() -> None:
    """An order authored late in year 9999 with a 30-day supply is read, not dropped as unreadable."""
    late = med_request(OXYCODONE[0], "9999-12-20", status="active", code=OXYCODONE[1], supply_days=30)
    record = context([late]).record
    assert "MedicationRequest" not in record.unavailable
    assert [m.end.date() for m in record.medications if m.end] == [date.max]


def _date_paths(resource: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every date in a resource (each string field named like one)."""
    if isinstance(resource, dict):
        for key, value in resource.items():
            dated = isinstance(value, str) and (
                key in ("start", "end") or key.endswith(("On", "Date", "DateTime"))
            )
            yield from [(*path, key)] if dated else _date_paths(value, (*path, key))
    elif isinstance(resource, list):
        for index, value in enumerate(resource):
            yield from _date_paths(value, (*path, index))


def _redated(chart: list[dict[str, Any]], path: tuple[Any, ...], when: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(chart)
    *parents, last = path
    holder: Any = changed
    for key in parents:
        holder = holder[key]
    holder[last] = when
    return changed


def edge_chart() -> list[dict[str, Any]]:
    """Every kind of fact date the policies read: diagnoses by onset and by recorded date, orders
    with a validity end and with a supply, a statement, procedures, scores and an intolerance."""
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-edge",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept(RX, OXYCODONE[1], OXYCODONE[0]),
        "effectivePeriod": {"start": "2025-02-01", "end": "2025-05-01"},
    }
    supplied = med_request(OXYCODONE[0], "2025-06-01", status="active", code=OXYCODONE[1], supply_days=30)
    recorded = condition(ICD, "G89.4", None, "Chronic pain syndrome", recorded="2024-06-01")
    intolerance = allergy(*OXYCODONE, kind="intolerance", recorded="2025-05-01")
    return [*meeting_chart(), statement, supplied, recorded, intolerance]


@pytest.mark.parametrize("when", LAST_DAYS + FIRST_DAYS)
def test_no_fact_dated_at_either_end_of_the_calendar_breaks_a_policy(when: str) -> None:
    chart = edge_chart()
    for path in _date_paths(chart):
        for policy in catalog().policies:
            determine(_redated(chart, path, when), policy_id=policy)


def test_an_open_ended_order_through_the_service_is_a_course_that_counts() -> None:
    """The order-sign of a chart whose opioid order runs until 9999-12-31 answers 200 (it answered HTTP
    500), and the course counts towards the opioid trial as one still running."""
    chart = [r for r in meeting_chart() if r["resourceType"] != "MedicationRequest"]
    morphine = ("morphine sulfate 10 MG/ML Injectable Solution", "892531")
    stopped = med_request(
        morphine[0], "2025-04-15", "2025-06-15", "stopped", reason="nausea", code=morphine[1]
    )
    _, response = sign_with_chart([*chart, open_ended_order("2025-01-10"), stopped])
    assert "meet all 14 coverage criteria" in response["cards"][0]["summary"]


@pytest.mark.parametrize(
    ("duration", "runs_out"),
    [
        ({"value": 6, "unit": "months", "code": "mo"}, "2025-09-01T10:00:00+00:00"),
        ({"value": 1, "code": "a"}, "2026-03-01T10:00:00+00:00"),
        ({"value": 1, "code": "mo"}, "2025-04-01T10:00:00+00:00"),
        ({"value": 1.5, "code": "mo"}, "2025-04-15T10:00:00+00:00"),  # part of a month: 30 days to one
        ({"value": 90, "code": "d"}, "2025-05-30T10:00:00+00:00"),
        ({"value": 3, "code": "wk"}, "2025-03-22T10:00:00+00:00"),
    ],
)
def test_a_supply_in_months_or_years_runs_out_by_the_calendar(
    duration: dict[str, Any], runs_out: str
) -> None:
    """Contract §3: an order's end is authoredOn + expectedSupplyDuration; a 6-month supply lasts the
    six calendar months a policy's "6 months" counts, not 180 days."""
    start = parse_datetime("2025-03-01T10:00:00Z")
    assert start is not None
    end = supply_end(start, duration)
    assert end is not None and end.isoformat() == runs_out


def test_a_six_month_supply_is_six_months_of_treatment() -> None:
    """CMM-210's "at least six (6) months" of analgesics from one 6-month supply."""
    order = med_request("Oxycodone 5 MG Oral Tablet", "2025-01-15", code="1049683")
    order["dispenseRequest"] = {"expectedSupplyDuration": {"value": 6, "unit": "months", "code": "mo"}}
    record = build_record("p1", {"MedicationRequest": [order]}, catalog().terminology)
    exposure = next(e for e in record.exposures if e.ingredient == "oxycodone")
    assert (exposure.start.date().isoformat(), exposure.end.date().isoformat()) == (
        "2025-01-15",
        "2025-07-15",
    )


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59+00:00"),
        ("2025-10-01T09:00:60.25-05:00", "2025-10-01T09:00:59.250000-05:00"),
        ("2025-10-01T09:00:61Z", None),
        ("2025-10-01T09:60:00Z", None),
    ],
)
def test_a_leap_second_is_read_as_the_second_before_it(written: str, read: str | None) -> None:
    """FHIR's dateTime allows second 60, which Python's datetime cannot hold; before, a Procedure so
    dated (a trial) was read as undated and dropped."""
    parsed = parse_datetime(written)
    assert (parsed.isoformat() if parsed else None) == read


@pytest.mark.parametrize(
    ("start", "end", "from_start", "against"),
    [
        (date(2026, 1, 1), date(2026, 7, 1), False, 0),  # AMB-44: 1 January to 1 July is six months
        (date(2026, 1, 2), date(2026, 7, 1), False, -1),
        (date(2025, 8, 31), date(2026, 2, 28), False, -1),  # counted back from the end: 5 months 28 days
        (date(2025, 8, 31), date(2026, 2, 28), True, 0),  # forward from the start: 31 August + 6 = 28 Feb
        (date(2026, 7, 1), date(2026, 1, 1), False, -1),  # a span that runs backwards is short of any
    ],
)
def test_months_are_counted_by_the_calendar_from_one_end(
    start: date, end: date, from_start: bool, against: int
) -> None:
    """The one rule every threshold in months is judged by (AMB-44, contract review s17 F9): a pain
    history or a course counts back from its end, a life expectancy forward from the request date."""
    assert against_months(start, end, 6, from_start=from_start) == against


@pytest.mark.parametrize(
    ("value", "unit", "against"),
    [
        (90, "d", 0),
        (89.9, "d", -1),
        (13, "wk", 1),
        (3, "mo", 0),
        (0.25, "a", 0),
        (2, "a", 1),
        (5, "mg", None),
    ],
)
def test_a_time_quantity_against_months_from_the_request_date(
    value: float, unit: str, against: int | None
) -> None:
    """3 months from 6 December 2026 reach 6 March 2027: 90 days; months and years compare as months."""
    assert quantity_against_months(value, unit, 3, date(2026, 12, 6)) == against
