"""A Procedure whose `performedPeriod` gives only its end (review25c). Contract §3 dates a Procedure by
`performedDateTime`, else `performedPeriod.start`, and is silent on a period with only an end: it was
performed by that end, so the end dates it, as finely as it is written (it was read as undated, "CPT 62365
(undated)", and weighed as no date). A trial dated so has no start for its pain scores to be placed around
(contract §4): its result is not read from them, while a recorded relief still decides."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.checks.common import procedure_evidence
from service.record import build_record
from service.trial import trial_result
from tests.builders import assessment, catalog, pain, procedure


def _ended(code: str, end: str, start: str | None = None) -> dict[str, Any]:
    resource = procedure(code, "")
    del resource["performedDateTime"]
    resource["performedPeriod"] = {"end": end, **({"start": start} if start else {})}
    return resource


def _facts(*resources: dict[str, Any]) -> Any:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    return build_record("p1", by_type, catalog().terminology)


@pytest.mark.parametrize(
    ("end", "precision", "said"),
    [("2026-03-01", "day", "1 Mar 2026"), ("2026-03", "month", "March 2026"), ("2026", "year", "2026")],
)
def test_a_procedure_with_only_its_period_end_is_dated_by_it(end: str, precision: str, said: str) -> None:
    (fact,) = _facts(_ended("62365", end)).procedures
    assert fact.performed is not None and fact.performed.date().isoformat().startswith(end)
    assert fact.precision == precision
    assert procedure_evidence(fact).text == f"CPT 62365 ({said})"


def test_a_period_start_still_dates_a_procedure() -> None:
    (fact,) = _facts(_ended("62365", "2026-03-01", start="2026-02-27")).procedures
    assert fact.performed is not None and fact.performed.date().isoformat() == "2026-02-27"


def test_a_trial_dated_only_by_its_end_is_not_scored_around_it() -> None:
    """Its start is not written: the scores before its end may be during the trial, not a baseline."""
    chart = [
        _ended("62324", "2025-10-03T09:00:00Z"),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(2, "2025-10-02T09:00:00Z"),
        pain(7, "2025-10-03T08:00:00Z"),
        pain(3, "2025-10-03T12:00:00Z"),
    ]
    facts = _facts(*chart)
    terms = catalog().terminology
    result = trial_result(
        facts.procedures, facts.observations, terms["trial-procedures"], terms["pain-score"]
    )
    assert result.relief_pct is None
    assert result.reason == (
        "the trial procedure CPT 62324 records only when it ended (its performedPeriod has no start), so its "
        "result cannot be read from the pain scores"
    )


def test_a_trial_dated_only_by_its_end_keeps_a_recorded_relief() -> None:
    chart = [
        _ended("62324", "2025-10-03"),
        assessment("it-trial-pain-relief-pct", "2025-10-03", valueInteger=70),
    ]
    facts = _facts(*chart)
    terms = catalog().terminology
    result = trial_result(
        facts.procedures, facts.observations, terms["trial-procedures"], terms["pain-score"]
    )
    assert result.relief_pct == 70


def test_a_trial_dated_only_by_its_end_within_a_dated_trials_window_is_that_trials_record() -> None:
    """review26c MEDIUM: a 62324 begun 2 Oct 09:00, scored before and after, and a 62324 whose
    performedPeriod gives only its end, 3 Oct 09:00 (within the 48 hours after that start: the same trial,
    or its catheter's removal, as likely as another), read as the most recent trial, left unscored: the
    result, 62.5 %, was read before the end alone dated a Procedure. One ended later is another trial."""
    scored = [
        procedure("62324", "2025-10-02T09:00:00Z"),
        pain(8, "2025-10-01T15:00:00Z"),
        pain(3, "2025-10-02T13:00:00Z"),
    ]
    terms = catalog().terminology
    for end, relief in (("2025-10-03T09:00:00Z", 62.5), ("2025-10-05T09:00:00Z", None)):
        facts = _facts(_ended("62324", end), *scored)
        result = trial_result(
            facts.procedures, facts.observations, terms["trial-procedures"], terms["pain-score"]
        )
        assert result.relief_pct == relief


@pytest.mark.parametrize("end", ["2025-10", "2025", "2025-10-02"])
def test_an_end_only_trial_that_may_have_ended_after_a_trials_start_is_not_the_one_before(end: str) -> None:
    """review26f HIGH: a 62324 whose performedPeriod gives only an end written to a month, a year or a day
    holding a dated trial's start (2 Oct 09:00) may have ended after that start: that trial's own record
    (its period, its catheter's removal; fa54ff2). Dated by the end's first day, it was read as the trial
    before it, and the relief duration recorded that morning (10 h), which a record after a previous trial
    may describe, was dropped: 0 hours from the scores, short of an 8-hour rule. One ended before the
    trial's day began is the trial before it."""
    scored = [
        procedure("62324", "2025-10-02T09:00:00Z"),
        pain(8, "2025-10-01T15:00:00Z"),
        pain(3, "2025-10-02T13:00:00Z"),
        assessment(
            "it-trial-relief-duration-h", "2025-10-02T08:30:00Z", valueQuantity={"value": 10, "unit": "h"}
        ),
    ]
    terms = catalog().terminology
    for ended, previous, hours in ((end, None, 10), ("2025-10-01", "2025-10-01", 0)):
        facts = _facts(_ended("62324", ended), *scored)
        result = trial_result(
            facts.procedures, facts.observations, terms["trial-procedures"], terms["pain-score"]
        )
        assert result.procedure is not None and not result.procedure.start_unwritten
        start = result.previous_start
        assert (start.date().isoformat() if start else None, result.sustained_hours) == (previous, hours)
