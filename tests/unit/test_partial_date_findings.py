"""A finding says no more than the chart does (review25d): a span in months agrees with the verdict it
stands beside."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from service.fhirdates import against_months, human_span
from tests.builders import (
    ICD,
    condition,
    determine,
    finding_of,
    meeting_chart,
    statuses,
)

DURATION = "geha.chronic-pain.duration-6mo"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


@pytest.mark.parametrize(
    ("start", "end", "words", "against"),
    [
        (date(2026, 2, 28), date(2026, 8, 31), "6 months", 0),  # counted back: 31 Aug - 6 months = 28 Feb
        (date(2026, 4, 30), date(2026, 10, 31), "6 months", 0),
        (date(2024, 2, 29), date(2024, 8, 30), "6 months", 0),
        (date(2025, 8, 31), date(2026, 2, 28), "5 months 28 days", -1),
        (date(2026, 5, 31), date(2026, 12, 1), "6 months 1 day", 1),
    ],
)
def test_a_span_in_months_is_counted_as_the_verdict_counts_it(
    start: date, end: date, words: str, against: int
) -> None:
    """'6 months 3 days since 28 Feb 2026 (needs more than 6 months)' was not met: against_months
    counts the months back from the request date (AMB-44), human_span forward from the onset."""
    assert human_span(_midnight(start), _midnight(end)) == words
    assert against_months(start, end, 6) == against


def test_a_pain_history_of_exactly_six_months_says_so_beside_its_not_met() -> None:
    chart = [condition(ICD, "M96.1", "2026-02-28"), *_without_conditions()]
    d = determine(chart, today=date(2026, 8, 31))
    assert statuses(d)[DURATION] == "not-met"
    assert finding_of(d, DURATION) == "6 months since 28 Feb 2026 (needs more than 6 months)"


def _without_conditions() -> list[dict[str, object]]:
    return [r for r in meeting_chart() if r["resourceType"] != "Condition"]
