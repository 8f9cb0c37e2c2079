"""Two pain scores of one moment (both undated, or dated the same instant or day) are read the same way
whatever order the chart gives them in: a prefetch's order and a FHIR server's sort may differ, and the
verdict must not (review27f: the latest score took the first of equals, the trial baseline the last)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.builders import (
    ICD,
    PATIENT,
    condition,
    determine,
    infusate_request,
    med_request,
    meeting_chart,
    pain,
    statuses,
)
from tests.policy_charts import TRIAL_ORDER
from tests.scaling_support import pain_score

SPASTICITY = [
    condition(ICD, "G80.1", "2010-01-01", "Spastic diplegic cerebral palsy"),
    med_request("Tizanidine 4 MG Oral Tablet", "2026-01-01", "2026-03-15", "stopped", reason="ineffective"),
]
BACLOFEN = infusate_request("baclofen 2 MG/ML Injectable Solution", "1292")


def _two_of_one_moment(form: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A 3 and an 8, both of one moment as `form` says."""
    when = datetime(2026, 11, 1, 9, tzinfo=UTC)
    low, high = pain_score(PATIENT, "score-a", when, 3), pain_score(PATIENT, "score-b", when, 8)
    for score in (low, high):
        if form == "undated":
            del score["effectiveDateTime"]
        elif form == "same-day":
            score["effectiveDateTime"] = "2026-11-01"
    return low, high


@pytest.mark.parametrize("form", ["undated", "same-instant", "same-day"])
def test_the_latest_of_two_scores_of_one_moment_is_the_same_in_either_order(form: str) -> None:
    low, high = _two_of_one_moment(form)
    verdicts = [
        statuses(
            determine(
                [*SPASTICITY, *scores],
                order=TRIAL_ORDER,
                drugs=(BACLOFEN,),
                policy_id="cohere-intrathecal-pain-pumps",
            )
        )
        for scores in ((low, high), (high, low))
    ]
    assert verdicts[0] == verdicts[1]


def test_the_trial_baseline_of_two_scores_of_one_moment_is_the_same_in_either_order() -> None:
    """meeting_chart's baseline 8 and another score of its instant, 4: relief to 3 is 62.5 % from the one,
    25 % from the other."""
    chart = meeting_chart()
    other = pain(4, "2025-09-30T15:00:00Z")
    at = next(i for i, r in enumerate(chart) if r.get("valueInteger") == 8)
    before, after = [*chart[:at], other, *chart[at:]], [*chart[: at + 1], other, *chart[at + 1 :]]
    assert statuses(determine(before)) == statuses(determine(after))
