"""A diagnosis or a trial dated only to a month or a year is worded no finer than the chart writes it
(review25c): "onset 2021", not "onset 1 Jan 2021", a day the chart never gives; and a date with a time
is read as a time. (A lowercase "t" or a space is no FHIR form and is undated: test_fhir_date_forms.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cards.items import _dated, trial_under_way
from service.codes import CPT as CPT_KEY
from service.codes import Code
from service.engine.checks import TEST_TYPES
from service.engine.checks.common import condition_evidence
from service.engine.model import Evidence
from service.facts import ProcedureFact
from service.fhirdates import precision
from service.record import build_record
from tests.builders import ICD, catalog, condition, context, procedure


def _evidence_of(**dates: str | None) -> str:
    chart = [condition(ICD, "G89.4", **dates)]  # type: ignore[arg-type]
    (fact,) = build_record("p1", {"Condition": chart}, catalog().terminology).conditions
    return condition_evidence(fact).text


@pytest.mark.parametrize(
    ("dates", "said"),
    [
        ({"onset": "2021"}, "(onset 2021)"),
        ({"onset": "2021-05"}, "(onset May 2021)"),
        ({"onset": "2021-05-04"}, "(onset 4 May 2021)"),
        ({"onset": "2021-13", "recorded": "2020"}, "(recorded 2020)"),  # a malformed onset: its recorded date
        ({"onset": None, "recorded": "2020-02"}, "(recorded February 2020)"),
    ],
)
def test_a_diagnosis_is_dated_no_finer_than_the_chart_writes_it(
    dates: dict[str, str | None], said: str
) -> None:
    assert _evidence_of(**dates).endswith(said)


def test_a_trial_is_dated_no_finer_than_the_chart_writes_it() -> None:
    outcome = TEST_TYPES["trial-relief"].function(
        {"comparator": ">=", "percent": 50}, context([procedure("62324", "2026-11")])
    )
    assert [e.text for e in outcome.evidence] == ["trial CPT 62324 (November 2026)"]


def test_a_trial_under_way_is_dated_no_finer_than_the_chart_writes_it() -> None:
    begun = ProcedureFact(
        "Procedure/t",
        (Code(CPT_KEY, "62324"),),
        "CPT 62324",
        datetime(2026, 11, 1, tzinfo=UTC),
        status="in-progress",
        precision="month",
    )
    assert trial_under_way([begun]) == "Trial under way (CPT 62324, since November 2026)"


@pytest.mark.parametrize(
    ("text", "written_to", "shown"),
    [
        ("ICD10CM G89.4 (onset 2021)", "year", "ICD10CM G89.4 (onset 2021)"),
        ("CPT 62362 (March 2021)", "month", "CPT 62362 (March 2021)"),
        ("pain 7/10", "day", "pain 7/10 (1 Mar 2021)"),
        ("pain 7/10", "month", "pain 7/10 (March 2021)"),
        ("ICD10CM G89.4 (onset 1 Mar 2021)", "day", "ICD10CM G89.4 (onset 1 Mar 2021)"),
    ],
)
def test_an_overruled_form_carrying_its_month_or_year_is_not_given_a_day(
    text: str, written_to: str, shown: str
) -> None:
    """An overruled form is dated by its evidence's date, as finely as it is written (Evidence.precision)."""
    assert _dated(Evidence(text, "Condition/c", datetime(2021, 3, 1, tzinfo=UTC), written_to)) == shown


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("2022-03-01T10:00:00-05:00", "time"),
        ("2022-03-01T00:00:00Z", "time"),
        ("2022-03-01T00:00:00", "time"),
        ("2022-03-01", "day"),
        ("2022", "year"),
        ("2022-03", "month"),
    ],
)
def test_a_time_is_told_as_parse_datetime_reads_one(written: str, kind: str) -> None:
    assert precision(written) == kind
