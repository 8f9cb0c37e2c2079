"""Test types about diagnoses: one is documented, has lasted long enough, or is absent.

`no-condition` is an absence rule with its ways out (under treatment, cleared, alongside a more
specific diagnosis, or only to be confirmed), so it reads medications and assessments as well. A
clearance may be documented in several forms (an assessment, a LOINC value: contract §3), decided as a
criterion's forms are (`forms.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.engine.chart_days import days_written, one_day
from service.engine.checks.common import (
    ANSWERS,
    COMPARATORS,
    MEDS,
    condition_evidence,
    could_not_check,
    day_of,
    matching_conditions,
    matching_medications,
    medication_evidence,
    named_value_sets,
    needs,
    worded_conditions,
)
from service.engine.checks.observations import assessment, observation_value
from service.engine.checks.params import (
    MISSING_TEXT,
    VALUE_SETS,
    AssessmentCode,
    Comparator,
    Count,
    Exactly,
    Flag,
    Param,
    ParamKind,
    Text,
    ValueSetId,
    ValueSets,
    expected,
    optional,
)
from service.engine.checks.testtype import test_type
from service.engine.classify import reason_diagnosis
from service.engine.context import EvaluationContext
from service.engine.forms import decide
from service.engine.model import Status, TestOutcome
from service.facts import ConditionFact
from service.fhirdates import against_months, human_days, human_span, human_span_range, start_of_day
from service.terminology import Terminology


@test_type(
    "condition-present", params={"valuesets": VALUE_SETS, "missing": MISSING_TEXT}, reads=("Condition",)
)
def condition_present(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    found = matching_conditions(ctx, named_value_sets(ctx, params))
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying diagnosis found")
        )
    return TestOutcome(Status.MET, tuple(condition_evidence(c) for c in found[:3]), "diagnosis documented")


@test_type(
    "condition-duration",
    params={
        "valuesets": VALUE_SETS,
        "comparator": Param(Comparator(allowed=(">", ">="))),
        "months": Param(Count()),
    },
    reads=("Condition",),
)
def condition_duration(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Time since the earliest matching condition, against `comparator` `months` (calendar months)."""
    matching = matching_conditions(ctx, named_value_sets(ctx, params))
    found = [c for c in matching if c.date is not None]
    if not found:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=_undated(matching))
    months, comparator = int(params["months"]), params["comparator"]
    wanted = needs(comparator, months, "months")

    def lasted_enough(day: date) -> bool:  # contract §3: today minus the condition's date; AMB-44
        return COMPARATORS[comparator](against_months(day, ctx.today, months), 0)

    # a date written to a month or a year is any day of it (chart_days.days_written): the duration is
    # met when it is from the last of them, falls short when it does from the first, and is not told
    # by the chart between the two (review25c: "2026" read as 1 January made it 11 months on 6 December)
    dated = found + [d for c in found for d in c.also_dated]  # one code's diagnoses written otherwise
    spans = {c.source: days_written(c.date, c.precision) for c in dated}  # type: ignore[arg-type]
    surely = min(dated, key=lambda c: (spans[c.source][1], c.date))
    surely_from = spans[surely.source][1]  # the condition had begun by this day, whichever day each is
    if lasted_enough(surely_from):
        lasted = _lasted(surely, surely_from, ctx, wanted, "at least")
        return TestOutcome(Status.MET, (condition_evidence(surely),), lasted)
    earliest = min(found, key=lambda c: (spans[c.source][0], c.date))
    first_day = spans[earliest.source][0]
    said = day_of(earliest.date, earliest.precision)
    evidence = (condition_evidence(earliest),)
    if lasted_enough(first_day):  # at least since `surely_from`: another diagnosis may date it closer
        evidence += (condition_evidence(surely),) if surely is not earliest else ()
        today = start_of_day(ctx.today)
        lasted = human_span_range(
            (start_of_day(min(surely_from, ctx.today)), today), (start_of_day(first_day), today), "months"
        )
        finding = f"dated only to {said}: lasted {lasted} ({wanted}); record the onset's day"
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, finding)
    # a recorded date stands for the onset when none is given (contract §3), so falling short fails
    if first_day > ctx.today:  # not a duration: no time has passed since a date still to come
        finding = f"dated {said}, after today: it has not lasted any time ({wanted}); check the onset's date"
        return TestOutcome(Status.NOT_MET, evidence, finding)
    return TestOutcome(Status.NOT_MET, evidence, _lasted(earliest, first_day, ctx, wanted, "at most"))


def _undated(matching: list[ConditionFact]) -> str:
    """Why a duration is not told when no matching diagnosis has a date contract §3 reads: none at all, or
    one whose onset the chart gives otherwise, said as the chart gives it ("diagnosis has no date to count
    from (onset at age 60, no date)": `ConditionFact.undated_words`), not "no onset", which a clinician
    reading "Onset: age 60" in the chart would take for a mistake (review32b, of review31f L1)."""
    if not matching:
        return "no qualifying diagnosis found"
    said = next((c for c in matching if c.onset_said), None)
    if said is None:
        return "diagnosis has no onset or recorded date"
    return f"diagnosis has no date to count from ({said.undated_words})"


def _lasted(condition: ConditionFact, day: date, ctx: EvaluationContext, wanted: str, bound: str) -> str:
    """How long a condition has lasted, from `day`: its own, or for a date written to a month or a year
    the last (`bound` "at least") or the first ("at most") of its days."""
    lasted = human_span(start_of_day(day), start_of_day(ctx.today))
    said = day_of(condition.date, condition.precision)
    bounded = "" if one_day(condition.precision) else f"{bound} "
    return f"{bounded}{lasted} since {said} ({wanted})"


@dataclass(frozen=True)
class ObservationValue(ParamKind):
    """The parameters of an `observation-value` test: a LOINC form of a clearance."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, Mapping):
            return expected("the parameters of an observation-value test", value)
        problem = observation_value.problem(value, terminology)
        return problem.lstrip(":. ") if problem else None


def _check_no_condition(params: Mapping[str, Any]) -> str | None:
    if "cleared_by_value" in params and "cleared_by" not in params:
        return "'cleared_by_value' is a form of the 'cleared_by' clearance: give both"
    return None


def _clearance_after(
    ctx: EvaluationContext, params: Mapping[str, Any], conditions: list[ConditionFact]
) -> TestOutcome | None:
    """The clearance, dated on or after the latest of the conditions: the `cleared_by` assessment of
    yes, or the `cleared_by_value` LOINC value that meets, whichever of them is the most recent
    documented form (a newer "no" or a newer value that falls short is no clearance)."""
    if not params.get("cleared_by"):
        return None
    forms = [assessment({"code": params["cleared_by"], "met": [True], "not_met": [False]}, ctx)]
    if params.get("cleared_by_value"):
        forms.append(observation_value(params["cleared_by_value"], ctx))
    clearance = decide(forms).outcome
    latest = max((c.date for c in conditions if c.date), default=None)
    dated = clearance.dated
    cleared = clearance.status == Status.MET and (latest is None or (dated is not None and dated >= latest))
    return clearance if cleared else None


def _diagnoses(ctx: EvaluationContext, params: Mapping[str, Any], key: str) -> list[ConditionFact]:
    """The conditions of the value sets `params[key]` names; with `order_reason`, the order's reason
    too when it is of one of them."""
    value_sets = named_value_sets(ctx, params, key)
    found = matching_conditions(ctx, value_sets)
    reason = reason_diagnosis(ctx) if params.get("order_reason") else None
    if reason is not None and any(vs.matches_any(reason.codes) for vs in value_sets):
        found.append(reason)
    return found


def _named(conditions: list[ConditionFact]) -> str:
    """The first two conditions' labels, each once."""
    return ", ".join(dict.fromkeys(c.label for c in conditions[:2]))


@test_type(
    "no-condition",
    params={
        "valuesets": VALUE_SETS,
        "recent_days": optional(Count()),
        "active_counts": optional(Flag()),
        "unless_treated_by": optional(ValueSetId()),
        "treatment_covers": optional(ValueSetId()),
        "cleared_by": optional(AssessmentCode()),
        "cleared_by_value": optional(ObservationValue()),
        "unless_present": optional(ValueSets()),
        "when_found": optional(Exactly("not-documented")),
        "found_finding": optional(Text()),
        "order_reason": optional(Flag()),
        "none_finding": optional(Text()),
    },
    reads=("Condition",),
    check=_check_no_condition,
    words=("valuesets",),  # a diagnosis named by their words under a code none lists (`worded_conditions`)
)
def no_condition(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Absence rule: met when no matching current condition is documented.

    A condition is current when it is explicitly active (if `active_counts`) or dated within
    `recent_days` of the request; an undated one inside a window cannot be placed and is not
    documented either way. `unless_treated_by` accepts conditions under active treatment (only
    those in `treatment_covers`, when given), and without it the criterion is not documented, not
    failed: the treatment is the exception's own fact, absent from the data rather than shown not to
    be there (contract §3). A condition outside `treatment_covers` has no treatment a chart could
    show here, so its treatment is left to the payer's reviewer. `cleared_by` accepts them when an
    assessment dated after them records clearance, or, with `cleared_by_value`, an Observation value
    that meets those parameters, the most recent of the two deciding. When the data that could clear
    a condition could not be fetched, the result is "not documented", never "not met". With
    `order_reason`, the reason the order gives counts as a current diagnosis beside the problem
    list's (the checks that read the indication, which the order's reason is a form of: contract
    §2). `none_finding` says what finding none means where "none documented" would read as the
    opposite (a check that a block applies). A current condition none of the value sets codes but
    whose own words name one of them (their `text` words: "Infection of tooth" under a SNOMED CT
    code not listed) is not "none documented" (contract §3: met only when no evidence is found): it
    is left to the payer's reviewer, with the record named.
    """
    recent_days = params.get("recent_days")
    window_start = start_of_day(ctx.today) - timedelta(days=recent_days) if recent_days else None
    active_counts = params.get("active_counts", True)
    matching = _diagnoses(ctx, params, "valuesets")

    def current(c: ConditionFact) -> bool:
        if window_start is None or c.from_order or (active_counts and c.explicitly_active):
            return True
        return c.date is not None and c.date >= window_start

    found = [c for c in matching if current(c)]
    if found and params.get("unless_present"):
        others = _diagnoses(ctx, params, "unless_present")
        if others:
            evidence = tuple(condition_evidence(c) for c in (found[:2] + others[:2]))
            finding = f"{_named(found)} documented, but alongside {_named(others)}"
            return TestOutcome(Status.MET, evidence, finding)
        unchecked = could_not_check(ctx, ("Condition",))  # the order's reason found, the problem list unread
        if unchecked:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                tuple(condition_evidence(c) for c in found[:2]),
                f"documented; whether a diagnosis beside it {unchecked}",
            )
    undated = [c for c in matching if c not in found and c.date is None]
    older = [c for c in matching if c not in found and c.date is not None]
    older_active = [c for c in older if c.explicitly_active]
    if not found:
        unplaced = undated + older_active
        if unplaced and _clearance_after(ctx, params, unplaced) is None:
            what = (
                "undated diagnosis" if undated else f"active diagnosis older than {human_days(recent_days)}"
            )
            cleared_by = params.get("cleared_by")
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                tuple(condition_evidence(c) for c in unplaced[:3]),
                f"{what}: record whether it is current or stable"
                + (f" (“{ctx.terminology.assessment_name(cleared_by)}”)" if cleared_by else ""),
            )
        worded = [c for c in worded_conditions(ctx, named_value_sets(ctx, params)) if current(c)]
        if worded and _clearance_after(ctx, params, worded) is None:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                tuple(condition_evidence(c) for c in worded[:3]),
                f"{_named(worded)} documented, under a code this service does not list",
                for_reviewer=True,
            )
        aside = (
            f" within {human_days(recent_days)} (older: {', '.join(c.label for c in older[:2])})"
            if older
            else ""
        )
        none = params.get("none_finding", "none documented")
        return TestOutcome(Status.MET, finding=f"{none}{aside}", by_absence=True)
    evidence = tuple(condition_evidence(c) for c in found[:3])
    if params.get("unless_treated_by"):
        treatment = ctx.terminology[params["unless_treated_by"]]
        treated = [m for m in matching_medications(ctx, [treatment]) if m.status == "active"]
        treated_conditions = [c for c in ctx.record.conditions if treatment.matches_any(c.codes)]
        covers = ctx.terminology[params["treatment_covers"]] if params.get("treatment_covers") else None
        uncovered = [c for c in found if covers is not None and not covers.matches_any(c.codes)]
        if (treated_conditions or treated) and not uncovered:
            more = tuple(medication_evidence(m) for m in treated[:2]) + tuple(
                condition_evidence(c) for c in treated_conditions[:2]
            )
            return TestOutcome(Status.MET, evidence + more, "documented, and under active treatment")
        unchecked = could_not_check(ctx, MEDS)
        if unchecked and not uncovered:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, f"documented; whether it is treated {unchecked}"
            )
        treatments = tuple(medication_evidence(m) for m in treated[:2])
        covered = [c for c in found if c not in uncovered]
        reviewer = "is under active treatment is for the reviewer"  # no code here tells that treatment
        if not covered or treated_conditions or treated:
            finding = f"documented ({_named(uncovered)}); whether it {reviewer}"
            return TestOutcome(Status.NOT_DOCUMENTED, evidence + treatments, finding, for_reviewer=True)
        finding = f"documented ({_named(covered)}); no active treatment of it documented"
        finding += f"; whether {_named(uncovered)} {reviewer}" if uncovered else ""
        return TestOutcome(Status.NOT_DOCUMENTED, evidence + treatments, finding)  # absent, not disproved
    if params.get("cleared_by"):
        if (clearance := _clearance_after(ctx, params, found)) is not None:
            return TestOutcome(Status.MET, (*evidence, *clearance.evidence), "documented, then cleared")
        # no clearance found: the answers to the clearance only (a response answering others is whole)
        unchecked = could_not_check(ctx, ("Observation", *ANSWERS), (params["cleared_by"],))
        if unchecked:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, f"documented; whether it was cleared {unchecked}"
            )
    if params.get("when_found") == "not-documented":
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, params.get("found_finding", "documented: please confirm")
        )
    return TestOutcome(Status.NOT_MET, evidence, "documented: " + "; ".join(e.text for e in evidence))
