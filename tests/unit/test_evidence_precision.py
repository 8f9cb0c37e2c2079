"""Evidence carries how finely its date is written (review25 LOW): a form of one fact that another
overrules (contract §3, "several forms of one fact") is dated on the card by its evidence's date, and an
assessment or a stopped order dated only to a month or a year was given its first day ("(1 Jun 2025)"),
a day the chart never gives."""

from __future__ import annotations

from typing import Any

import pytest

from cards.items import finding
from service.engine.checks import TEST_TYPES
from service.engine.model import CriterionResult, Evidence, Status
from tests.builders import OXYCODONE_TABLET, allergy, coded_assessment, context, med_request

OUTCOME = {"code": "opioid-trial-outcome", "met": ["ineffective", "intolerable"], "not_met": ["effective"]}
FAILURE = {"valuesets": ["opioids"]}


def _evidence(test_type: str, params: dict[str, Any], chart: list[dict[str, Any]]) -> tuple[Evidence, ...]:
    return TEST_TYPES[test_type].function(params, context(chart)).evidence


def _overruling(overruled: tuple[Evidence, ...]) -> str:
    """The card's words for a criterion decided by a form dated to a day that overrules `overruled`."""
    deciding = Evidence("intolerance: oxycodone", "AllergyIntolerance/a", None)
    result = CriterionResult(
        "c",
        "label",
        "text",
        "section",
        "citation",
        "required",
        Status.MET,
        "failure documented",
        (deciding,),
        overruled=overruled,
    )
    return finding(result)


@pytest.mark.parametrize(
    ("when", "said"), [("2025-06", "June 2025"), ("2025", "2025"), ("2025-06-03", "3 Jun 2025")]
)
def test_an_overruled_assessment_is_dated_no_finer_than_written(when: str, said: str) -> None:
    evidence = _evidence("assessment", OUTCOME, [coded_assessment("opioid-trial-outcome", "effective", when)])
    words = _overruling(evidence)
    assert words.endswith(f"overrules outcome of systemic opioids: effective ({said})"), words


@pytest.mark.parametrize(("authored", "said"), [("2025-06", "June 2025"), ("2025", "2025")])
def test_an_overruled_stopped_order_is_dated_no_finer_than_written(authored: str, said: str) -> None:
    order = med_request(
        OXYCODONE_TABLET[0], authored, None, "stopped", reason="nausea", code=OXYCODONE_TABLET[1]
    )
    words = _overruling(_evidence("medication-failure", FAILURE, [order]))
    assert words.endswith(f"stopped: nausea ({said})"), words
    assert "1 Jan" not in words and "1 Jun" not in words


@pytest.mark.parametrize(("when", "said"), [("2025-09-01", "1 Sep 2025"), ("2025-09", "September 2025")])
def test_an_overruled_intolerance_is_dated_no_finer_than_written(when: str, said: str) -> None:
    """An AllergyIntolerance dated by its onset, else its recorded date, as written."""
    intolerance = allergy(OXYCODONE_TABLET[0], OXYCODONE_TABLET[1], "intolerance", when)
    words = _overruling(_evidence("medication-failure", FAILURE, [intolerance]))
    assert words.endswith(f"({said})"), words
