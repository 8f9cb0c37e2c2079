"""The criterion test types a policy file may use, each a pure function of the context.

A policy criterion names one of these types and gives its parameters; adding a payer or a
criterion is a YAML change as long as it uses these types. Each type declares the resource types
it reads so the engine can tell "nothing found" from "could not look" (see `unchecked`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.codes import Code
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.fhirdates import months_before, start_of_day
from service.record import ConditionFact, MedicationFact
from service.terminology import ValueSet

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
ROUTE_WORDS = {
    "oral": ("oral", "tablet", "capsule", "by mouth", "solution, oral", "elixir"),
    "injectable": (
        "inject",
        "injection",
        "injectable",
        "intravenous",
        "intramuscular",
        "subcutaneous",
        "cartridge",
        "prefilled syringe",
    ),
    "transdermal": ("transdermal", "patch"),
}


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "undated"


def _value_sets(ctx: EvaluationContext, params: Mapping[str, Any], key: str = "valuesets") -> list[ValueSet]:
    return [ctx.terminology[v] for v in params[key]]


def _in_sets(codes: tuple[Code, ...], value_sets: list[ValueSet]) -> bool:
    return any(vs.matches_any(codes) for vs in value_sets)


def _matching_conditions(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ConditionFact]:
    return [c for c in ctx.record.conditions if _in_sets(c.codes, value_sets)]


def _medication_matches(med: MedicationFact, value_sets: list[ValueSet]) -> bool:
    for vs in value_sets:
        if any(vs.ingredient_for_code(c.code) for c in med.codes if c.system == "rxnorm"):
            return True
        if vs.ingredients_in_text(med.text):
            return True
        if vs.matches_any(med.codes):
            return True
    return False


def _condition_evidence(c: ConditionFact) -> Evidence:
    when = (
        f"onset {_day(c.onset)}" if c.onset else f"recorded {_day(c.recorded)}" if c.recorded else "undated"
    )
    return Evidence(f"{c.label} ({when})", c.source, c.date)


def condition_present(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    found = _matching_conditions(ctx, _value_sets(ctx, params))
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying diagnosis found")
        )
    return TestOutcome(Status.MET, tuple(_condition_evidence(c) for c in found[:3]), "diagnosis documented")


def condition_duration(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Time since the earliest matching condition, against `comparator` `months` (calendar months)."""
    found = [c for c in _matching_conditions(ctx, _value_sets(ctx, params)) if c.date is not None]
    undated = not found and bool(_matching_conditions(ctx, _value_sets(ctx, params)))
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            finding="diagnosis has no onset or recorded date" if undated else "no qualifying diagnosis found",
        )
    earliest = min(found, key=lambda c: c.date)  # type: ignore[arg-type, return-value]
    months = int(params["months"])
    cutoff = start_of_day(months_before(ctx.today, months))
    since = earliest.date
    assert since is not None
    elapsed_days = (start_of_day(ctx.today) - since).days
    ok = since < cutoff if params["comparator"] == ">" else since <= cutoff
    evidence = (_condition_evidence(earliest),)
    finding = f"{elapsed_days} days since {_day(since)} (needs {params['comparator']} {months} months)"
    if ok:
        return TestOutcome(Status.MET, evidence, finding)
    if earliest.onset is not None:
        return TestOutcome(Status.NOT_MET, evidence, finding)
    return TestOutcome(
        Status.NOT_DOCUMENTED, evidence, finding + "; only the recorded date is known, not the onset"
    )


def _med_evidence(m: MedicationFact) -> Evidence:
    span = f"{_day(m.start)} → {_day(m.end)}" if m.end and m.end != m.start else _day(m.start)
    days = f", {(m.end - m.start).days} days" if m.start and m.end and m.end != m.start else ""
    return Evidence(f"{m.label} ({m.status}, {span}{days})", m.source, m.start)


def medication_duration(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Span from the earliest start to the latest end of the class's exposures (contract §3)."""
    value_sets = _value_sets(ctx, params)
    names = {i.name for vs in value_sets for i in vs.ingredients}
    exposures = [e for e in ctx.record.exposures if e.ingredient in names]
    if not exposures:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying medication found")
        )
    start = min(e.start for e in exposures)
    end = max(e.end for e in exposures)
    days = (end - start).total_seconds() / 86400
    needed = float(params["days"])
    sources = {s for e in exposures for s in e.sources}
    meds = sorted((m for m in ctx.record.medications if m.source in sources), key=lambda m: m.start or start)
    evidence = tuple(_med_evidence(m) for m in meds[:4])
    finding = (
        f"{days:.0f} days documented, {_day(start)} → {_day(end)} (needs {params['comparator']} {needed:g})"
    )
    if COMPARATORS[params["comparator"]](days, needed):
        return TestOutcome(Status.MET, evidence, finding)
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, finding)


def _routes_of(med: MedicationFact) -> set[str]:
    text = f"{med.route_text} | {med.text}".lower()
    return {route for route, words in ROUTE_WORDS.items() if any(re.search(rf"\b{w}", text) for w in words)}


def medication_routes(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Every route in `routes` is documented among matching drugs (from route or dose form)."""
    meds = [m for m in ctx.record.medications if _medication_matches(m, _value_sets(ctx, params))]
    wanted = list(params["routes"])
    found = {route: next((m for m in meds if route in _routes_of(m)), None) for route in wanted}
    evidence = tuple(_med_evidence(m) for m in found.values() if m is not None)
    missing = [route for route, m in found.items() if m is None]
    if not missing:
        return TestOutcome(Status.MET, evidence, f"{' and '.join(wanted)} forms documented")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"no {' or '.join(missing)} form documented")


def medication_failure(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Failure or intolerance: the outcome assessment decides; else stopped-with-reason or intolerance."""
    assessment = ctx.record.latest_assessment(params["assessment"]) if params.get("assessment") else None
    if assessment is not None:
        recorded = (
            Evidence(f"{params['assessment']}: {assessment.value}", assessment.source, assessment.effective),
        )
        if assessment.value in params.get("failed_values", ()):
            return TestOutcome(Status.MET, recorded, "failure documented")
        if assessment.value in params.get("succeeded_values", ()):
            return TestOutcome(Status.NOT_MET, recorded, "the drug class is documented as effective")
    value_sets = _value_sets(ctx, params)
    stopped = [
        m
        for m in ctx.record.medications
        if m.status == "stopped" and m.status_reason and _medication_matches(m, value_sets)
    ]
    intolerant = [
        a
        for a in ctx.record.allergies
        if a.kind == "intolerance"
        and any(vs.ingredients_in_text(a.text) or vs.matches_any(a.codes) for vs in value_sets)
    ]
    evidence = [Evidence(f"{m.label} stopped: {m.status_reason}", m.source, m.end) for m in stopped[:3]]
    evidence += [Evidence(f"intolerance: {a.label}", a.source) for a in intolerant[:2]]
    if evidence:
        return TestOutcome(Status.MET, tuple(evidence), "failure or intolerance documented")
    return TestOutcome(Status.NOT_DOCUMENTED, finding="no failure or intolerance documented")


def procedure_history(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    value_sets = _value_sets(ctx, params)
    found = [p for p in ctx.record.procedures if _in_sets(p.codes, value_sets)]
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying procedure found")
        )
    found.sort(key=lambda p: (p.performed is not None, p.performed or 0), reverse=True)
    evidence = tuple(Evidence(f"{p.label} ({_day(p.performed)})", p.source, p.performed) for p in found[:3])
    return TestOutcome(Status.MET, evidence, f"{len(found)} qualifying procedure(s)")


def trial_relief(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Pain relief of the intrathecal trial (contract §4) against `comparator` `percent`."""
    trial = ctx.trial
    if trial.relief_pct is None:
        evidence = (
            (
                Evidence(
                    f"trial {trial.procedure.label} ({_day(trial.procedure.performed)})",
                    trial.procedure.source,
                    trial.procedure.performed,
                ),
            )
            if trial.procedure
            else ()
        )
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"trial result not documented: {trial.reason}")
    evidence: list[Evidence] = []
    if trial.explicit is not None:
        evidence.append(
            Evidence(
                f"recorded relief {trial.relief_pct:g} %", trial.explicit.source, trial.explicit.effective
            )
        )
    else:
        assert trial.baseline is not None and trial.lowest_post is not None and trial.procedure is not None
        evidence.append(
            Evidence(
                f"trial {trial.procedure.label} ({_day(trial.procedure.performed)})",
                trial.procedure.source,
                trial.procedure.performed,
            )
        )
        evidence.append(
            Evidence(
                f"pain {trial.baseline.value_text()} before → {trial.lowest_post.value_text()} after",
                trial.lowest_post.source,
                trial.lowest_post.effective,
            )
        )
    ok = COMPARATORS[params["comparator"]](round(trial.relief_pct, 6), float(params["percent"]))
    finding = f"{trial.relief_pct:.0f} % relief (needs {params['comparator']} {params['percent']} %)"
    return TestOutcome(Status.MET if ok else Status.NOT_MET, tuple(evidence), finding)


def assessment(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest project assessment Observation (contract §5) with a value that meets or fails."""
    found = ctx.record.latest_assessment(params["code"])
    if found is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no '{params['code']}' assessment recorded")
    evidence = (Evidence(f"{params['code']}: {found.value_text()}", found.source, found.effective),)
    if found.value in params["met"]:
        return TestOutcome(Status.MET, evidence, f"recorded {found.value_text()}")
    if found.value in params.get("not_met", ()):
        return TestOutcome(Status.NOT_MET, evidence, f"recorded {found.value_text()}")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unrecognised value {found.value_text()}")


def no_condition(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Absence rule: met when no matching current condition is documented.

    A condition counts when it is explicitly active (if `active_counts`), or its date falls within
    `recent_days` of the request. `unless_treated_by` accepts a condition under active treatment,
    `cleared_by` accepts one when an assessment dated after it records clearance.
    """
    recent_days = params.get("recent_days")
    window_start = start_of_day(ctx.today) - timedelta(days=recent_days) if recent_days else None
    active_counts = params.get("active_counts", True)

    def current(c: ConditionFact) -> bool:
        if window_start is None:
            return True
        if active_counts and c.explicitly_active:
            return True
        return c.date is not None and c.date >= window_start

    found = [c for c in _matching_conditions(ctx, _value_sets(ctx, params)) if current(c)]
    if not found:
        return TestOutcome(Status.MET, finding="none documented", by_absence=True)
    evidence = tuple(_condition_evidence(c) for c in found[:3])
    if params.get("unless_treated_by"):
        treatment = ctx.terminology[params["unless_treated_by"]]
        treated = [
            m for m in ctx.record.medications if m.status == "active" and _medication_matches(m, [treatment])
        ]
        treated_conditions = [c for c in ctx.record.conditions if treatment.matches_any(c.codes)]
        if treated or treated_conditions:
            more = tuple(_med_evidence(m) for m in treated[:2]) + tuple(
                _condition_evidence(c) for c in treated_conditions[:2]
            )
            return TestOutcome(Status.MET, evidence + more, "documented, and under active treatment")
    if params.get("cleared_by"):
        clearance = ctx.record.latest_assessment(params["cleared_by"])
        latest = max((c.date for c in found if c.date), default=None)
        if (
            clearance is not None
            and clearance.value is True
            and (latest is None or (clearance.effective and clearance.effective >= latest))
        ):
            return TestOutcome(
                Status.MET,
                (*evidence, Evidence(f"{params['cleared_by']}: yes", clearance.source, clearance.effective)),
                "documented, then cleared",
            )
    return TestOutcome(Status.NOT_MET, evidence, "documented")


def _allergy_matches(text: str, codes: tuple[Code, ...], ingredient: Any) -> bool:
    return ingredient.matches_text(text) or any(
        c.system == "rxnorm" and (c.code == ingredient.code or c.code in ingredient.products) for c in codes
    )


def no_infusate_allergy(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No allergy or hypersensitivity to the drug to be infused (any recorded type)."""
    value_set_ids = tuple(params["valuesets"])
    ordered = ctx.infusate_ingredients(value_set_ids)
    if ordered:
        hits = [
            (a, i) for a in ctx.record.allergies for _, i in ordered if _allergy_matches(a.text, a.codes, i)
        ]
        names = ", ".join(i.name for _, i in ordered)
        if hits:
            return TestOutcome(
                Status.NOT_MET,
                tuple(Evidence(f"{a.kind or 'allergy'}: {a.label}", a.source) for a, _ in hits[:3]),
                f"allergy to {names} documented",
            )
        return TestOutcome(Status.MET, finding=f"no allergy to {names} documented", by_absence=True)
    candidates = [i for vs in value_set_ids for i in ctx.terminology[vs].ingredients]
    hits = [(a, i) for a in ctx.record.allergies for i in candidates if _allergy_matches(a.text, a.codes, i)]
    if hits:
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            tuple(Evidence(f"allergy: {a.label}", a.source) for a, _ in hits[:3]),
            "the drug to be infused is not named in the order, and the patient has an allergy "
            "to an intrathecal agent",
        )
    return TestOutcome(Status.MET, finding="no allergy to any intrathecal agent documented", by_absence=True)


def infusate_not_in(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The ordered infusate is none of the excluded drugs (absence rule when no drug is named)."""
    found = ctx.infusate_ingredients(tuple(params["valuesets"]))
    if found:
        return TestOutcome(
            Status.NOT_MET,
            tuple(
                Evidence(f"ordered infusate: {i.name} ({inf.text or inf.reference})", inf.reference)
                for inf, i in found
            ),
            "an excluded infusate is ordered",
        )
    named = ", ".join(inf.text for inf in ctx.infusates if inf.text) or "no infusate named"
    return TestOutcome(Status.MET, finding=f"none ordered ({named})", by_absence=True)


def no_device(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No other implanted programmable device: active Device, presence condition, or implant procedure."""
    devices_vs = ctx.terminology[params["valueset"]]
    removal_vs = ctx.terminology[params["removal_valueset"]] if params.get("removal_valueset") else None
    evidence: list[Evidence] = []
    for device in ctx.record.devices:
        if devices_vs.matches_any(device.codes) or devices_vs.matches_text(device.text):
            evidence.append(Evidence(f"device: {device.label}", device.source))
    for c in ctx.record.conditions:
        if devices_vs.matches_any(c.codes):
            evidence.append(_condition_evidence(c))
    removals = [p.performed for p in ctx.record.procedures if removal_vs and removal_vs.matches_any(p.codes)]
    for p in ctx.record.procedures:
        if devices_vs.matches_any(p.codes) and not any(
            r and p.performed and r > p.performed for r in removals
        ):
            evidence.append(Evidence(f"implant: {p.label} ({_day(p.performed)})", p.source, p.performed))
    if evidence:
        return TestOutcome(
            Status.NOT_MET, tuple(evidence[:4]), "other implanted programmable device documented"
        )
    return TestOutcome(Status.MET, finding="none documented", by_absence=True)


def evaluation_documented(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """A documented evaluation: a clearance assessment decides, else an evaluation procedure."""
    clearance = ctx.record.latest_assessment(params["assessment"])
    if clearance is not None and clearance.value is False:
        return TestOutcome(
            Status.NOT_MET,
            (Evidence(f"{params['assessment']}: no", clearance.source, clearance.effective),),
            "evaluation did not clear the patient",
        )
    evidence = []
    if clearance is not None and clearance.value is True:
        evidence.append(Evidence(f"{params['assessment']}: yes", clearance.source, clearance.effective))
    value_sets = _value_sets(ctx, params)
    evidence += [
        Evidence(f"{p.label} ({_day(p.performed)})", p.source, p.performed)
        for p in ctx.record.procedures
        if _in_sets(p.codes, value_sets)
    ][:2]
    if evidence:
        return TestOutcome(Status.MET, tuple(evidence), "evaluation documented")
    return TestOutcome(Status.NOT_DOCUMENTED, finding="no evaluation documented")


@dataclass(frozen=True)
class TestType:
    """A registered test type: its function, parameters, and the resource types it reads."""

    function: Callable[[Mapping[str, Any], EvaluationContext], TestOutcome]
    required: frozenset[str]
    optional: frozenset[str]
    reads: tuple[str, ...]
    valueset_params: tuple[str, ...] = ("valuesets",)


def _t(
    fn: Any,
    required: set[str],
    optional: set[str],
    reads: tuple[str, ...],
    valueset_params: tuple[str, ...] = ("valuesets",),
) -> TestType:
    return TestType(fn, frozenset(required), frozenset(optional), reads, valueset_params)


MEDS = ("MedicationRequest", "MedicationStatement")
TEST_TYPES: dict[str, TestType] = {
    "condition-present": _t(condition_present, {"valuesets"}, {"missing"}, ("Condition",)),
    "condition-duration": _t(
        condition_duration, {"valuesets", "comparator", "months"}, set(), ("Condition",)
    ),
    "medication-duration": _t(medication_duration, {"valuesets", "comparator", "days"}, {"missing"}, MEDS),
    "medication-routes": _t(medication_routes, {"valuesets", "routes"}, set(), MEDS),
    "medication-failure": _t(
        medication_failure,
        {"valuesets"},
        {"assessment", "failed_values", "succeeded_values"},
        (*MEDS, "AllergyIntolerance", "Observation"),
    ),
    "procedure-history": _t(procedure_history, {"valuesets"}, {"missing"}, ("Procedure",)),
    "trial-relief": _t(trial_relief, {"comparator", "percent"}, set(), ("Procedure", "Observation"), ()),
    "assessment": _t(assessment, {"code", "met"}, {"not_met"}, ("Observation",), ()),
    "no-condition": _t(
        no_condition,
        {"valuesets"},
        {"recent_days", "active_counts", "unless_treated_by", "cleared_by"},
        ("Condition", "Observation", *MEDS),
        ("valuesets", "unless_treated_by"),
    ),
    "no-infusate-allergy": _t(no_infusate_allergy, {"valuesets"}, set(), ("AllergyIntolerance",)),
    "infusate-not-in": _t(infusate_not_in, {"valuesets"}, set(), ()),
    "no-device": _t(
        no_device,
        {"valueset"},
        {"removal_valueset"},
        ("Device", "Condition", "Procedure"),
        ("valueset", "removal_valueset"),
    ),
    "evaluation-documented": _t(
        evaluation_documented, {"valuesets", "assessment"}, set(), ("Procedure", "Observation")
    ),
}
