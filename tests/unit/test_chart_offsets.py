"""Dates as the chart writes them (contract §3): a dateTime keeps its offset, so its day is the
chart's own, and a date without a time stands in the calendar of what it is compared with; nothing
near the first or last representable instant may break a call."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from service.engine.checks import TEST_TYPES
from service.engine.model import Status
from service.fhir.score_window import fhir_instant
from service.fhirdates import months_before, parse_datetime, shifted
from tests.builders import (
    ICD,
    condition,
    context,
    determine,
    meeting_chart,
    pain,
    procedure,
    statuses,
)


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
