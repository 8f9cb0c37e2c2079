"""Several forms of one fact (contract §3): the most recent documented form decides a criterion."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from service.engine import forms
from service.engine.chart_days import day_order
from service.engine.evaluate import evaluate_order
from service.engine.forms import decide
from service.engine.model import Evidence, Status, TestOutcome
from service.policy import CriterionSpec, TestSpec
from tests.builders import (
    assessment,
    card_line,
    catalog,
    coded_assessment,
    context,
    determine,
    life_expectancy,
    med_request,
    pain,
    procedure,
    result_of,
)

POLICY = "kpwa-implanted-infusion-pumps"
FACT = "kpwa.pain.le-3mo.recorded"


def outcome(status: Status, when: str | None = None, by_absence: bool = False) -> TestOutcome:
    dated = datetime.fromisoformat(when) if when else None
    recorded = status != Status.NOT_DOCUMENTED and not by_absence
    evidence = (Evidence(f"{status.value} form", f"Observation/{when}", dated),) if recorded else ()
    return TestOutcome(status, evidence, f"{status.value} finding", by_absence)


MET, NOT_MET, UNKNOWN = Status.MET, Status.NOT_MET, Status.NOT_DOCUMENTED


@pytest.mark.parametrize(
    ("outcomes", "deciding", "status"),
    [
        ([outcome(MET, "2025-10-01"), outcome(NOT_MET, "2026-11-20")], 1, NOT_MET),
        ([outcome(NOT_MET, "2025-10-01"), outcome(MET, "2026-11-20")], 1, MET),
        ([outcome(UNKNOWN), outcome(NOT_MET, "2026-11-20")], 1, NOT_MET),  # documented beats absent
        (
            [outcome(MET, by_absence=True), outcome(NOT_MET, "2020-01-01")],
            1,
            NOT_MET,
        ),  # absence never decides
        ([outcome(NOT_MET), outcome(MET, "2026-01-01")], 1, MET),  # dated beats undated
        ([outcome(MET, "2026-01-01"), outcome(NOT_MET, "2026-01-01")], 1, NOT_MET),  # tie: not met wins
        ([outcome(MET), outcome(NOT_MET)], 1, NOT_MET),  # both undated: not met wins
        ([outcome(MET, "2026-01-01"), outcome(MET, "2026-01-01T00:00:00")], 0, MET),  # then the first form
    ],
)
def test_the_most_recent_documented_form_decides(
    outcomes: list[TestOutcome], deciding: int, status: Status
) -> None:
    decision = decide(outcomes)
    assert decision.form == deciding
    assert decision.outcome is outcomes[deciding]
    assert decision.outcome.status == status
    overruled = [
        e for i, o in enumerate(outcomes) if i != deciding and o.status != status for e in o.evidence
    ]
    assert list(decision.overruled) == overruled


@pytest.mark.parametrize(
    ("met_at", "not_met_at", "status"),
    [
        ("2022-03-02T01:00:00+00:00", "2022-03-01T23:00:00-05:00", NOT_MET),  # not met 3 h newer
        ("2022-03-01T23:00:00-05:00", "2022-03-02T01:00:00+00:00", NOT_MET),  # one day in one offset
        # own days in the order of the instants are the chart's: 1 March's not met, 2 March's met
        ("2022-03-02T06:00:00+00:00", "2022-03-01T23:00:00-05:00", MET),
        ("2022-03-03T06:00:00+00:00", "2022-03-01T23:00:00-05:00", MET),  # met a day newer
        ("2022-03-02", "2022-03-01T23:00:00-05:00", MET),  # a date is its own day, after 1 March's
        # review25b: one offset for all moved records across midnight. US Eastern daylight-saving time
        # ends on 6 Nov 2022: 00:30-04:00 and 09:00-05:00 are both 6 November: the tie rule decides
        ("2022-11-06T09:00:00-05:00", "2022-11-06T00:30:00-04:00", NOT_MET),
        # it starts on 13 March: 23:30-05:00 is 12 March, before 09:00-04:00 on 13 March
        ("2022-03-13T09:00:00-04:00", "2022-03-12T23:30:00-05:00", MET),
        ("2022-03-12T23:30:00-05:00", "2022-03-13T09:00:00-04:00", NOT_MET),
        # UTC beside a local offset (as Synthea writes): 02:00Z and 10:00-04:00 are both 10 April
        ("2025-04-10T10:00:00-04:00", "2025-04-10T02:00:00+00:00", NOT_MET),
        ("2025-06-02T10:00:00+00:00", "2025-06-01T23:00:00-04:00", MET),  # 1 June's, then 2 June's
        ("2022-03-02T01:00:00+00:00", "2022-03-01T20:00:00-05:00", NOT_MET),  # one instant: one day
    ],
)
def test_forms_written_in_different_offsets_are_ranked_by_their_own_days_in_the_order_of_their_instants(
    met_at: str, not_met_at: str, status: Status
) -> None:
    """pump25 LOW 5: each form's day read in its own offset put a not-met record three hours newer on
    the older day, and the older met one decided. review25b: reading every record in the newest one's
    offset instead moved records the chart put on one day onto two (a wrong met) and the reverse."""
    met, not_met = _charted(MET, met_at), _charted(NOT_MET, not_met_at)
    assert decide([met, not_met]).outcome.status == status
    assert decide([not_met, met]).outcome.status == status


MOMENTS = (
    "2022-03-01T09:00:00Z",
    "2022-03-01T23:00:00-05:00",
    "2022-03-02T01:00:00Z",
    "2022-03-02T04:00:00+03:00",
    "2022-03-02T06:00:00Z",
    "2022-03-02",
    "2022-03-01",
    "2022-03-02T00:30:00+14:00",
    "2022-03-01T13:00:00-12:00",
)


@pytest.mark.parametrize("met_at", MOMENTS)
@pytest.mark.parametrize("not_met_at", MOMENTS)
def test_two_forms_are_weighed_by_day_as_chart_days_orders_two_dates(met_at: str, not_met_at: str) -> None:
    """The forms of one fact and a removal against what it undoes (classify, devices) read days alike:
    the met form decides only on a day chart_days.day_order puts after the not-met one's."""
    met, not_met = _charted(MET, met_at), _charted(NOT_MET, not_met_at)
    assert met.dated is not None and not_met.dated is not None
    later = day_order(met.dated, not_met.dated) > 0
    assert decide([met, not_met]).outcome.status == (MET if later else NOT_MET)
    assert decide([not_met, met]).outcome.status == (MET if later else NOT_MET)


def _charted(status: Status, when: str) -> TestOutcome:
    """A form's outcome on a record dated as the record reads a chart's date: a date alone at midnight
    UTC (fhirdates.parse_datetime), a time in its own offset."""
    moment = datetime.fromisoformat(when)
    dated = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return TestOutcome(status, (Evidence(f"{status.value} form", f"Observation/{when}", dated),))


def test_with_no_documented_form_the_absence_rule_or_the_missing_forms_speak() -> None:
    absent = outcome(MET, by_absence=True)
    assert decide([outcome(UNKNOWN), absent]).outcome is absent
    assert decide([outcome(UNKNOWN), absent]).form is None
    unreadable = TestOutcome(
        UNKNOWN, (Evidence("75327-7: 5", "Observation/x"),), "the value has no time unit"
    )
    assert decide([absent, unreadable]).outcome is unreadable  # something on record outranks "none found"
    missing = decide([TestOutcome(UNKNOWN, finding="no LOINC"), TestOutcome(UNKNOWN, finding="no answer")])
    assert (missing.outcome.status, missing.outcome.finding) == (UNKNOWN, "no LOINC; no answer")


def run_fact(chart: list[dict[str, Any]], **kwargs: Any) -> Any:
    return result_of(evaluate_order(catalog().policies[POLICY], context(chart, **kwargs)), FACT)


def test_the_engine_decides_a_forms_criterion_and_reports_what_it_overrules() -> None:
    result = run_fact(
        [
            assessment("life-expectancy-ge-3mo", "2025-10-01", valueBoolean=True),
            life_expectancy(2, "mo", "2026-11-20"),
        ]
    )
    assert result.status == NOT_MET
    assert not result.children  # one fact, one result
    assert [e.text for e in result.evidence] == ["LOINC 75327-7: 2 mo"]
    assert [e.text for e in result.overruled] == ["life expectancy at least 3 months: yes"]


def test_a_met_form_stays_unchecked_while_another_form_could_not_be_read() -> None:
    chart = [assessment("life-expectancy-ge-3mo", "2025-10-01", valueBoolean=True)]
    assert run_fact(chart).status == MET
    # the LOINC form could not be read, so the older "yes" cannot be trusted to be the latest word
    unread = run_fact(chart, unavailable={"Observation": "HTTP 503"})
    assert unread.status == UNKNOWN
    assert unread.unchecked_reason and "observations were not available" in unread.unchecked_reason


def test_the_compiled_policy_carries_the_forms_and_reads_each_forms_codes() -> None:
    spec: CriterionSpec = next(c for c in catalog().policies[POLICY].all_criteria() if c.id == FACT)
    assert [t.type for t in spec.tests] == ["observation-value", "assessment"]
    assert spec.test_type is None and not spec.children
    assert FACT in catalog().policies[POLICY].ids_by_test_type["assessment"]
    single = replace(spec, forms=(), test_type="assessment", params={"code": "psych-clearance"})
    assert single.tests == (TestSpec("assessment", {"code": "psych-clearance"}),)


def test_an_explicit_trial_result_still_wins_over_a_computed_one_whatever_its_date() -> None:
    """Contract §4 is not a several-forms rule: the explicit relief decides even when older."""
    explicit = assessment("it-trial-pain-relief-pct", "2025-09-01", valueQuantity={"value": 30, "unit": "%"})
    computed = [
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(2, "2025-10-01T13:00:00Z"),
    ]
    ctx = context([explicit, *computed])
    assert ctx.trial.explicit is not None and ctx.trial.relief_pct == 30
    d = evaluate_order(catalog().policies["geha-idds-chronic-pain"], ctx)
    assert result_of(d, "geha.trial.relief-ge50").status == NOT_MET


def test_a_newer_stopped_order_overrules_an_older_effective_outcome_on_one_line() -> None:
    """Drug failure (contract §3): the outcome assessment no longer wins whatever its date."""
    stopped = med_request(
        "Oxycodone Hydrochloride 10 MG Oral Tablet", "2025-06-01", "2025-09-01", "stopped", reason="nausea"
    )
    d = determine([stopped, coded_assessment("opioid-trial-outcome", "effective", "2025-03-01")])
    result = result_of(d, "geha.chronic-pain.opioid-failure-6wk.failure")
    assert result.status == MET
    assert [e.text for e in result.overruled] == ["outcome of systemic opioids: effective"]
    assert "overrules outcome of systemic opioids: effective (1 Mar 2025" in card_line(
        d, "geha.chronic-pain.opioid-failure-6wk.failure"
    )


def test_a_dated_form_decides_over_an_undated_one_on_a_charts_dates() -> None:
    """The tie rule (policies/README.md), on the offset-aware dates a chart gives: dated beats undated
    (the decide() cases above use naive dates, which an undated form's placeholder compares with)."""
    undated = assessment("life-expectancy-ge-3mo", valueBoolean=False)
    del undated["effectiveDateTime"]
    result = run_fact([undated, life_expectancy(6, "mo", "2026-11-20")])
    assert result.status == MET
    assert [e.text for e in result.overruled] == ["life expectancy at least 3 months: no"]


def test_a_dated_loinc_value_is_later_than_an_undated_one() -> None:
    """The latest LOINC 75327-7 value decides its form; one with no date is not the latest."""
    undated = life_expectancy(2, "mo", "2026-11-20")
    del undated["effectiveDateTime"]
    result = run_fact([undated, life_expectancy(6, "mo", "2026-11-01")])
    assert result.status == MET
    assert [e.text for e in result.evidence] == ["LOINC 75327-7: 6 mo"]


def test_one_documented_form_decides_without_ranking_the_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """A criterion's forms are ranked by day only when two or more document the fact; the one that does
    decides and overrules nothing, whatever the others say of absence (perf26a: most criteria have one
    form, and ranking it alone was about 0.5 M of the demo chart's 25 M instructions a call)."""
    ranked: list[object] = []

    def ranking(moments: list[object]) -> list[None]:
        ranked.append(moments)
        return [None] * len(moments)

    monkeypatch.setattr(forms, "ranking_days", ranking)
    single = outcome(NOT_MET, "2026-11-20")
    assert decide([single]) == forms.Decision(single, 0)
    assert decide([outcome(UNKNOWN), outcome(MET, by_absence=True), single]) == forms.Decision(single, 2)
    assert ranked == []
    decide([outcome(MET, "2025-10-01"), single])  # two documented: ranked
    assert len(ranked) == 1
