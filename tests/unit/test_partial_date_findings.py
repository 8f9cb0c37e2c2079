"""A finding says no more than the chart does (review25d): a span in months agrees with the verdict it
stands beside, a diagnosis dated to a year and another to the day bound the duration together, a
psych-clearance answer dated to a month is not given a day nor a visit in that month a place after it,
and a trial order written in a month is not given its first day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cards.items import trial_order_words
from service.codes import CPT, Code
from service.fhirdates import against_months, human_span
from service.next_steps import TrialOrder
from tests.builders import (
    ICD,
    assessment,
    condition,
    determine,
    finding_of,
    meeting_chart,
    procedure,
    statuses,
)

DURATION = "geha.chronic-pain.duration-6mo"
PSYCH = "geha.doc.psych-eval"


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


def test_a_diagnosis_dated_to_the_day_bounds_one_dated_to_its_year() -> None:
    """A pain diagnosis dated '2026' and another of 1 August 2026: the pain has lasted at least since
    1 August (4 months 5 days), not '0 days', and the card cites the one that says so."""
    chart = [condition(ICD, "M96.1", "2026"), condition(ICD, "G89.29", "2026-08-01"), *_without_conditions()]
    d = determine(chart, today=date(2026, 12, 6))
    assert statuses(d)[DURATION] == "not-documented"
    assert finding_of(d, DURATION) == (
        "dated only to 2026: lasted 4 months 5 days to 11 months 5 days (needs more than 6 months); "
        "record the onset's day"
    )
    [result] = [r for top in d.criteria for r in top.walk() if r.id == DURATION]
    assert [e.text for e in result.evidence] == [
        "ICD10CM M96.1 (onset 2026)",
        "ICD10CM G89.29 (onset 1 Aug 2026)",
    ]


@pytest.mark.parametrize(
    ("answered", "visited", "finding"),
    [
        (
            "2026-06",
            "2026-07-10",
            "recorded no (June 2026), before the later CPT 90791 (10 Jul 2026), whose result is not recorded",
        ),
        (
            "2026-06",
            "2026-06-20",
            "recorded no (June 2026); CPT 90791 (20 Jun 2026) may have followed it, and its result is not "
            "recorded",
        ),
        (
            "2026-06-20",
            "2026",
            "recorded no (20 Jun 2026); CPT 90791 (2026) may have followed it, and its result is not "
            "recorded",
        ),
    ],
)
def test_a_psych_answer_is_dated_as_written_and_a_visit_that_may_follow_it_is_not_called_later(
    answered: str, visited: str, finding: str
) -> None:
    """27ffc86: a visit in a span holding the answer supersedes it, rightly (not documented either way);
    the finding then called it 'the later' visit and gave an answer dated June the day 1 June."""
    chart = [assessment("psych-clearance", answered, valueBoolean=False), procedure("90791", visited)]
    d = determine(chart)
    assert statuses(d)[PSYCH] == "not-documented"
    assert finding_of(d, PSYCH).endswith(finding)


@pytest.mark.parametrize(
    ("authored", "said"),
    [("2026-11", "62323, November 2026"), ("2026", "62323, 2026"), ("2026-11-30", "62323, 30 Nov 2026")],
)
def test_a_trial_order_is_dated_no_finer_than_it_is_written(authored: str, said: str) -> None:
    order = {"resourceType": "ServiceRequest", "status": "active", "authoredOn": authored}
    assert trial_order_words([TrialOrder(order, Code(CPT, "62323"))]) == said


def _without_conditions() -> list[dict[str, object]]:
    return [r for r in meeting_chart() if r["resourceType"] != "Condition"]
