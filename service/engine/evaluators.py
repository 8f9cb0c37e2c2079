"""The criterion test types a policy file may use, each a pure function of the context.

A policy criterion names one of these types and gives its parameters; adding a payer or a
criterion is a YAML change as long as it uses these types. Each type declares the resource types
it reads so the engine can tell "nothing found" from "could not look" (see `unchecked`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.codes import ASSESSMENT, CPT, RXNORM, SNOMED, Code
from service.engine.checks.common import COMPARATORS
from service.engine.checks.params import (
    MISSING_TEXT,
    VALUE_SETS,
    AssessmentCode,
    CodeMap,
    Codes,
    Comparator,
    Count,
    Exactly,
    Flag,
    Number,
    Param,
    ParamKind,
    ScaleCode,
    ScaleCodes,
    Text,
    Values,
    ValueSetId,
    ValueSets,
    expected,
    optional,
)
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.facts import AllergyFact, ConditionFact, MedicationFact, ObservationFact, ProcedureFact
from service.fhirdates import months_before, start_of_day
from service.terminology import Ingredient, Terminology, ValueSet
from service.trial import SCALE_CODES, scale_points, scale_trials

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


class Routes(ParamKind):
    """A non-empty list of the routes of `ROUTE_WORDS`."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, list) or not value or any(r not in ROUTE_WORDS for r in value):
            return expected(f"a list of routes from {', '.join(ROUTE_WORDS)}", value)
        return None


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "undated"


def _value_sets(ctx: EvaluationContext, params: Mapping[str, Any], key: str = "valuesets") -> list[ValueSet]:
    return [ctx.terminology[v] for v in params[key]]


def _in_sets(codes: tuple[Code, ...], value_sets: list[ValueSet]) -> bool:
    return any(vs.matches_any(codes) for vs in value_sets)


def _matching(ctx: EvaluationContext, kind: str, facts: Any, value_sets: list[ValueSet]) -> list[Any]:
    """Facts matching any of the value sets, computed once per value set for the whole call."""
    per_set = [
        ctx.memo((kind, vs.id), lambda vs=vs: {id(f) for f in facts if vs.matches_any(f.codes)})  # type: ignore[misc]
        for vs in value_sets
    ]
    wanted = set().union(*per_set)
    return [f for f in facts if id(f) in wanted]


def _matching_procedures(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ProcedureFact]:
    return _matching(ctx, "procedures", ctx.record.procedures, value_sets)


def _matching_conditions(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ConditionFact]:
    return _matching(ctx, "conditions", ctx.record.conditions, value_sets)


def _medication_matches(med: MedicationFact, value_sets: list[ValueSet]) -> bool:
    """A drug belongs to a class: by an ingredient found when the record was built, or by a code.
    Intrathecal and epidural drugs never count: the policies' drug trials are systemic ones."""
    if med.neuraxial:
        return False
    return any(med.ingredients & vs.ingredient_names or vs.matches_any(med.codes) for vs in value_sets)


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
    matching = _matching_conditions(ctx, _value_sets(ctx, params))
    found = [c for c in matching if c.date is not None]
    undated = not found and bool(matching)
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
    """Span from the earliest start to the latest end of the class's exposures (contract §3).

    A course that ended short of the threshold is not met (contract §3, falling short); one still
    running (an active order whose computed end is after today) may yet reach it: not documented,
    with how far it has come."""
    value_sets = _value_sets(ctx, params)
    names = {i.name for vs in value_sets for i in vs.ingredients}
    exposures = [e for e in ctx.record.exposures if e.ingredient in names]
    today = start_of_day(ctx.today)
    if params.get("within_months"):
        window_start = start_of_day(months_before(ctx.today, int(params["within_months"])))
        exposures = [e for e in exposures if e.end > window_start]
    else:
        window_start = None
    if not exposures:
        missing = params.get("missing", "no qualifying medication found")
        within = f" within the last {params['within_months']} months" if window_start else ""
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"{missing}{within}")
    start = min(e.start for e in exposures)
    if window_start is not None:
        start = max(start, window_start)
    end = min(max(e.end for e in exposures), today)
    days = max((end - start).total_seconds() / 86400, 0.0)
    needed = f"{params['comparator']} {float(params['days']):g} days"
    sources = {s for e in exposures for s in e.sources}
    meds = sorted((m for m in ctx.record.medications if m.source in sources), key=lambda m: m.start or start)
    evidence = tuple(_med_evidence(m) for m in meds[:4])
    if COMPARATORS[params["comparator"]](days, float(params["days"])):
        return TestOutcome(Status.MET, evidence, f"{days:.0f} days documented, {_day(start)} → {_day(end)}")
    if any(m.running_on(today) for m in meds):
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, f"{days:.0f} days so far (since {_day(start)}), needs {needed}"
        )
    span = f"{_day(start)} → {_day(end)}"
    ended = f"the course ended after {days:.0f} days ({span}), needs {needed}"
    return TestOutcome(Status.NOT_MET, evidence, ended)


_ROUTE_PATTERNS = {
    route: re.compile("|".join(rf"\b{re.escape(w)}" for w in words)) for route, words in ROUTE_WORDS.items()
}


def _routes_of(med: MedicationFact) -> set[str]:
    text = f"{med.route_text} | {med.text}".lower()
    return {route for route, pattern in _ROUTE_PATTERNS.items() if pattern.search(text)}


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
    if assessment is not None and isinstance(assessment.value, str):
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
    """A completed procedure in the value sets (and, with `steroid_injections`, any epidural steroid
    injection, whatever its CPT code: 62320-62323 report those as well as intrathecal trials)."""
    value_sets = _value_sets(ctx, params)
    with_steroids = bool(params.get("steroid_injections"))
    found = list(_matching_procedures(ctx, value_sets))
    if with_steroids:
        found += [p for p in ctx.record.procedures if p.steroid_injection and p not in found]
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying procedure found")
        )
    found.sort(key=lambda p: (p.performed is not None, p.performed or 0), reverse=True)
    evidence = tuple(Evidence(f"{p.label} ({_day(p.performed)})", p.source, p.performed) for p in found[:3])
    if params.get("outcome_required"):
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            evidence,
            "tried, but no code records whether it failed: document the outcome",
        )
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
    if ok and params.get("reviewer_below") is not None and trial.relief_pct < float(params["reviewer_below"]):
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            tuple(evidence),
            f"{trial.relief_pct:.0f} % relief, below {params['reviewer_below']} %: for the reviewer",
        )
    if ok and params.get("min_hours") is not None:
        hours = trial.sustained_hours
        if hours is None:
            return TestOutcome(
                Status.NOT_DOCUMENTED, tuple(evidence), f"{finding}; how long it lasted is not documented"
            )
        finding += f", lasting {hours:g} h (needs {params['min_hours']} h)"
        if hours < float(params["min_hours"]):
            if trial.relief_at_last_score:
                return TestOutcome(
                    Status.NOT_DOCUMENTED,
                    tuple(evidence),
                    f"{finding}; relief still held at the last score, so its duration is not documented",
                )
            return TestOutcome(Status.NOT_MET, tuple(evidence), finding)
    return TestOutcome(Status.MET if ok else Status.NOT_MET, tuple(evidence), finding)


def _one_of(value: Any, expected: Iterable[Any]) -> bool:
    """Value equality that keeps booleans apart from numbers (True is not 1) and codes from numbers."""
    for item in expected:
        if isinstance(item, bool) or isinstance(value, bool):
            if isinstance(item, bool) and isinstance(value, bool) and item is value:
                return True
        elif isinstance(item, int | float) and isinstance(value, int | float):
            if float(item) == float(value):
                return True
        elif isinstance(item, str) and isinstance(value, str) and item == value:
            return True
    return False


def assessment(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest project assessment Observation (contract §5) with a value that meets or fails:
    listed values (`met` / `not_met`), or a number against `comparator` `value`."""
    found = ctx.record.latest_assessment(params["code"])
    if found is None:
        if params.get("when_absent") == "met":
            return TestOutcome(
                Status.MET, finding=f"none documented (no '{params['code']}' assessment)", by_absence=True
            )
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no '{params['code']}' assessment recorded")
    evidence = (Evidence(f"{params['code']}: {found.value_text()}", found.source, found.effective),)
    if "comparator" in params:
        if isinstance(found.value, bool) or not isinstance(found.value, float):
            return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"not a number: {found.value_text()}")
        ok = COMPARATORS[params["comparator"]](found.value, float(params["value"]))
        finding = f"recorded {found.value_text()} (needs {params['comparator']} {params['value']:g})"
        return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)
    if _one_of(found.value, params.get("met", ())):
        return TestOutcome(Status.MET, evidence, f"recorded {found.value_text()}")
    if _one_of(found.value, params.get("not_met", ())):
        return TestOutcome(Status.NOT_MET, evidence, f"recorded {found.value_text()}")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unrecognised value {found.value_text()}")


def could_not_check(ctx: EvaluationContext, types: tuple[str, ...]) -> str | None:
    """Why a result cannot be trusted: a resource type it reads could not be fetched."""
    failed = [f"{t} ({ctx.record.unavailable[t]})" for t in types if t in ctx.record.unavailable]
    return f"could not be checked: the EHR did not return {', '.join(failed)}" if failed else None


def _clearance_after(
    ctx: EvaluationContext, params: Mapping[str, Any], conditions: list[ConditionFact]
) -> ObservationFact | None:
    """A `cleared_by` assessment of yes, dated on or after the latest of the conditions."""
    if not params.get("cleared_by"):
        return None
    clearance = ctx.record.latest_assessment(params["cleared_by"])
    latest = max((c.date for c in conditions if c.date), default=None)
    cleared = (
        clearance is not None
        and clearance.value is True
        and (latest is None or (clearance.effective is not None and clearance.effective >= latest))
    )
    return clearance if cleared else None


def no_condition(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Absence rule: met when no matching current condition is documented.

    A condition is current when it is explicitly active (if `active_counts`) or dated within
    `recent_days` of the request; an undated one inside a window cannot be placed and is not
    documented either way. `unless_treated_by` accepts conditions under active treatment (only
    those in `treatment_covers`, when given); `cleared_by` accepts them when an assessment dated
    after them records clearance. When the data that could clear a condition could not be
    fetched, the result is "not documented", never "not met".
    """
    recent_days = params.get("recent_days")
    window_start = start_of_day(ctx.today) - timedelta(days=recent_days) if recent_days else None
    active_counts = params.get("active_counts", True)
    matching = _matching_conditions(ctx, _value_sets(ctx, params))

    def current(c: ConditionFact) -> bool:
        if window_start is None or (active_counts and c.explicitly_active):
            return True
        return c.date is not None and c.date >= window_start

    found = [c for c in matching if current(c)]
    if found and params.get("unless_present"):
        others = _matching_conditions(ctx, _value_sets(ctx, params, "unless_present"))
        if others:
            evidence = tuple(_condition_evidence(c) for c in (found[:2] + others[:2]))
            return TestOutcome(Status.MET, evidence, "documented, but alongside a specific diagnosis")
    undated = [c for c in matching if c not in found and c.date is None]
    older = [c for c in matching if c not in found and c.date is not None]
    older_active = [c for c in older if c.explicitly_active]
    if not found:
        unplaced = undated + older_active
        if unplaced and _clearance_after(ctx, params, unplaced) is None:
            what = "undated diagnosis" if undated else f"active diagnosis older than {recent_days} days"
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                tuple(_condition_evidence(c) for c in unplaced[:3]),
                f"{what}: record whether it is current or stable"
                + (f" ({params['cleared_by']})" if params.get("cleared_by") else ""),
            )
        aside = (
            f" within {recent_days} days (older: {', '.join(c.label for c in older[:2])})" if older else ""
        )
        return TestOutcome(Status.MET, finding=f"none documented{aside}", by_absence=True)
    evidence = tuple(_condition_evidence(c) for c in found[:3])
    if params.get("unless_treated_by"):
        treatment = ctx.terminology[params["unless_treated_by"]]
        treated = [
            m for m in ctx.record.medications if m.status == "active" and _medication_matches(m, [treatment])
        ]
        treated_conditions = [c for c in ctx.record.conditions if treatment.matches_any(c.codes)]
        covers = ctx.terminology[params["treatment_covers"]] if params.get("treatment_covers") else None
        uncovered = [c for c in found if covers is not None and not covers.matches_any(c.codes)]
        if (treated_conditions or treated) and not uncovered:
            more = tuple(_med_evidence(m) for m in treated[:2]) + tuple(
                _condition_evidence(c) for c in treated_conditions[:2]
            )
            return TestOutcome(Status.MET, evidence + more, "documented, and under active treatment")
        unchecked = could_not_check(ctx, MEDS)
        if unchecked and not uncovered:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, f"documented; whether it is treated {unchecked}"
            )
    if params.get("cleared_by"):
        if (clearance := _clearance_after(ctx, params, found)) is not None:
            return TestOutcome(
                Status.MET,
                (*evidence, Evidence(f"{params['cleared_by']}: yes", clearance.source, clearance.effective)),
                "documented, then cleared",
            )
        unchecked = could_not_check(ctx, ("Observation",))
        if unchecked:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, f"documented; whether it was cleared {unchecked}"
            )
    if params.get("when_found") == "not-documented":
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, params.get("found_finding", "documented: please confirm")
        )
    return TestOutcome(Status.NOT_MET, evidence, "documented")


def _allergy_matches(allergy: AllergyFact, ingredient: Ingredient) -> bool:
    """An allergy names the ingredient: by name, RxNorm code or SNOMED substance."""
    if ingredient.matches_text(allergy.text):
        return True
    for code in allergy.codes:
        if code.system == RXNORM and (code.code == ingredient.code or code.code in ingredient.products):
            return True
        if code.system == SNOMED and code.code in ingredient.snomed:
            return True
    return False


def no_infusate_allergy(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No allergy or hypersensitivity to the drug to be infused. An AllergyIntolerance of type
    `intolerance` (a side effect, which is also how a failed drug trial is recorded) is not one."""
    value_set_ids = tuple(params["valuesets"])
    allergies = [a for a in ctx.record.allergies if a.kind != "intolerance"]
    same_drug = [
        (a, inf)
        for a in allergies
        for inf in ctx.infusates
        if any(c.system == d.system and c.code == d.code for c in a.codes for d in inf.codes)
    ]
    if same_drug:
        return TestOutcome(
            Status.NOT_MET,
            tuple(Evidence(f"{a.kind or 'allergy'}: {a.label}", a.source) for a, _ in same_drug[:3]),
            f"allergy to the ordered drug ({same_drug[0][1].text or same_drug[0][1].reference}) documented",
        )
    ordered = ctx.infusate_ingredients()
    if ordered:
        hits = [(a, i) for a in allergies for _, i in ordered if _allergy_matches(a, i)]
        names = ", ".join(i.name for _, i in ordered)
        if hits:
            return TestOutcome(
                Status.NOT_MET,
                tuple(Evidence(f"{a.kind or 'allergy'}: {a.label}", a.source) for a, _ in hits[:3]),
                f"allergy to {names} documented",
            )
        return TestOutcome(Status.MET, finding=f"no allergy to {names} documented", by_absence=True)
    candidates = [i for vs in value_set_ids for i in ctx.terminology[vs].ingredients]
    hits = [(a, i) for a in allergies for i in candidates if _allergy_matches(a, i)]
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
    """No other implanted programmable device: an active Device, a presence condition, or an implant
    procedure not followed by a removal of the same device (`removal_cancels`: removal → implants)."""
    devices_vs = ctx.terminology[params["valueset"]]
    cancels: Mapping[str, list[str]] = params.get("removal_cancels", {})
    evidence: list[Evidence] = []
    for device in ctx.record.devices:
        if devices_vs.matches_any(device.codes) or devices_vs.matches_text(device.text):
            evidence.append(Evidence(f"device: {device.label}", device.source))
    evidence += [_condition_evidence(c) for c in _matching_conditions(ctx, [devices_vs])]
    removals = [
        (p.performed, set(cancels[c.code]))
        for p in ctx.record.procedures
        for c in p.codes
        if c.system == CPT and c.code in cancels and p.performed
    ]
    for p in _matching_procedures(ctx, [devices_vs]):
        implant_codes = {c.code for c in p.codes if devices_vs.matches(c)}
        removed = any(
            p.performed and when > p.performed and implant_codes & undone for when, undone in removals
        )
        if implant_codes and not removed:
            evidence.append(Evidence(f"implant: {p.label} ({_day(p.performed)})", p.source, p.performed))
    if evidence:
        return TestOutcome(
            Status.NOT_MET, tuple(evidence[:4]), "other implanted programmable device documented"
        )
    return TestOutcome(Status.MET, finding="none documented", by_absence=True)


def infusate_in(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The ordered infusate is one of the value sets' drugs (e.g. an intrathecal opioid, or a drug
    FDA-approved for the route); with `includes`, one of its drugs is (an opioid mixed with
    bupivacaine is still an opioid infusion); `single_ingredient` refuses mixtures."""
    if not ctx.infusates:
        return TestOutcome(Status.NOT_DOCUMENTED, finding="the drug to be infused is not named in the order")
    permitted = frozenset().union(*(vs.ingredient_names for vs in _value_sets(ctx, params)))
    every = ctx.infusate_ingredients()
    evidence = tuple(
        Evidence(f"ordered: {i.name} ({inf.text or inf.reference})", inf.reference) for inf, i in every
    )
    if params.get("single_ingredient") and len({i.name for _, i in every}) > 1:
        return TestOutcome(Status.NOT_MET, evidence, "a mixture of drugs is ordered")
    allowed = [i.name for _, i in every if i.name in permitted]
    others = [i.name for _, i in every if i.name not in permitted]
    if allowed and params.get("includes"):
        return TestOutcome(Status.MET, evidence, f"{', '.join(allowed)} ordered")
    if allowed and not others:
        return TestOutcome(Status.MET, evidence, f"{', '.join(allowed)} ordered")
    if others:
        return TestOutcome(Status.NOT_MET, evidence, f"{', '.join(others)} is not an allowed infusate")
    return TestOutcome(Status.NOT_DOCUMENTED, finding="the ordered drug could not be identified")


_TO_MONTHS = {
    "a": 12.0,
    "yr": 12.0,
    "year": 12.0,
    "years": 12.0,
    "mo": 1.0,
    "month": 1.0,
    "months": 1.0,
    "wk": 12 / 52.18,
    "week": 12 / 52.18,
    "weeks": 12 / 52.18,
    "d": 12 / 365.25,
    "day": 12 / 365.25,
    "days": 12 / 365.25,
}


def _latest_loinc(ctx: EvaluationContext, codes: list[str], kind: type) -> ObservationFact | None:
    """The most recent Observation with one of the LOINC codes and a value of `kind` (number or code)."""
    found = [
        o
        for code in codes
        for o in ctx.record.observations_with("loinc", code)
        if isinstance(o.value, kind) and not isinstance(o.value, bool)
    ]
    return max(found, key=lambda o: (o.effective is not None, o.effective or datetime.min), default=None)


def _no_loinc(codes: list[str]) -> str:
    return f"no observation {', '.join(sorted(codes))} recorded"


def observation_value(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest Observation with one of the LOINC codes, compared with `value` (in `unit`: months
    converts a, mo, wk and d; a value without a usable unit is not documented, AMB-48)."""
    latest = _latest_loinc(ctx, params["loinc"], float)
    if latest is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=_no_loinc(params["loinc"]))
    value = float(latest.value)  # type: ignore[arg-type]
    if params.get("unit") == "months":
        factor = _TO_MONTHS.get(str(latest.unit or "").lower())
        if factor is None:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                (Evidence(f"{latest.label}: {latest.value_text()}", latest.source, latest.effective),),
                "the value has no time unit",
            )
        value *= factor
    evidence = (Evidence(f"{latest.label}: {latest.value_text()}", latest.source, latest.effective),)
    needed = f"{params['comparator']} {params['value']} {params.get('unit', '')}".strip()
    finding = f"{value:.1f} {params.get('unit', '')} recorded (needs {needed})".replace("  ", " ")
    ok = COMPARATORS[params["comparator"]](round(value, 6), float(params["value"]))
    return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)


_TNM_CATEGORY = re.compile(r"^(?:y?[cpra])?([TNM](?:\d|x|is)).*$", re.IGNORECASE)


def _category(value: str) -> str:
    """A coded stage as its category: the c/p/yp prefix dropped and M1a read as M1 (AJCC TNM)."""
    match = _TNM_CATEGORY.match(value.strip())
    return match.group(1).upper() if match else value.strip().upper()


def observation_category(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest Observation with one of the LOINC codes whose coded value is in `met` or `not_met`,
    compared by category (a distant-metastasis stage pM1b is M1, contract §3)."""
    latest = _latest_loinc(ctx, params["loinc"], str)
    if latest is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=_no_loinc(params["loinc"]))
    evidence = (Evidence(f"{latest.label}: {latest.value_text()}", latest.source, latest.effective),)
    category = _category(str(latest.value))
    if category in {_category(v) for v in params.get("met", ())}:
        return TestOutcome(Status.MET, evidence, f"recorded {latest.value_text()}")
    if category in {_category(v) for v in params.get("not_met", ())}:
        return TestOutcome(Status.NOT_MET, evidence, f"recorded {latest.value_text()}")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unrecognised value {latest.value_text()}")


def _baseline_score(ctx: EvaluationContext, code: str) -> ObservationFact | None:
    """The latest score of a scale taken before any intrathecal trial (a post-dose score measures
    the trial, not the patient's baseline severity)."""
    trial = ctx.record.trial.procedure  # the latest trial procedure, found once per record
    scores = [
        o
        for o in ctx.record.observations_with(ASSESSMENT, code)
        if (
            trial is None
            or trial.performed is None
            or (o.effective is not None and o.effective <= trial.performed)
        )
    ]
    return max(scores, key=lambda o: (o.effective is not None, o.effective or datetime.min), default=None)


def scale_score(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The baseline spasticity score of one scale against a threshold (Modified Ashworth 1+ = 1.5)."""
    found = _baseline_score(ctx, params["code"])
    if found is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no '{params['code']}' recorded")
    points = scale_points(found)
    evidence = (Evidence(f"{params['code']}: {found.value_text()}", found.source, found.effective),)
    if points is None:
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unreadable score {found.value_text()}")
    ok = COMPARATORS[params["comparator"]](points, float(params["value"]))
    finding = f"{found.value_text()} (needs {params['comparator']} {params['value']:g})"
    return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)


SCALE_OF_COMPONENT = {
    "ashworth": "ashworth-score",
    "modified-ashworth": "modified-ashworth-score",
    "spasm-frequency": "spasm-frequency-score",
}


def scale_trial_response(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """A spasticity trial response of at least `points` on a scale (lasting `hours`, if given):
    the it-trial-scale-reduction assessment decides (its `scale` component must be one of
    `scales`), else scores around the trial (contract §4). With `example`, the policy gives the
    threshold only as an example ("e.g."), so a smaller response is for the reviewer (not
    documented), and only no response at all is "not met" (AMB-16)."""
    points = float(params["points"])
    hours = params.get("hours")
    scales = set(params.get("scales", SCALE_CODES))

    def short(evidence: tuple[Evidence, ...], finding: str, reduction: float) -> TestOutcome:
        if params.get("example") and reduction > 0:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, f"{finding}; below the policy's example, for the reviewer"
            )
        return TestOutcome(Status.NOT_MET, evidence, finding)

    explicit = ctx.record.latest_assessment("it-trial-scale-reduction")
    if explicit is not None and isinstance(explicit.value, float):
        evidence: tuple[Evidence, ...] = (
            Evidence(
                f"it-trial-scale-reduction: {explicit.value_text()}", explicit.source, explicit.effective
            ),
        )
        scale = SCALE_OF_COMPONENT.get(explicit.qualifier or "")
        if scale not in scales and set(SCALE_CODES) - scales:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                evidence,
                f"the recorded reduction is on {explicit.qualifier or 'an unnamed scale'}, not "
                f"{' or '.join(sorted(scales))}",
            )
        if explicit.value < points:
            return short(evidence, f"{explicit.value:g} points (needs {points:g})", explicit.value)
        if hours is None:
            return TestOutcome(Status.MET, evidence, f"{explicit.value:g} points")
        lasted = ctx.record.latest_assessment("it-trial-response-duration-h")
        if lasted is None or not isinstance(lasted.value, float):
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, "how long the response lasted is not documented"
            )
        evidence += (
            Evidence(f"it-trial-response-duration-h: {lasted.value_text()}", lasted.source, lasted.effective),
        )
        finding = f"{explicit.value:g} points for {lasted.value:g} h (needs {hours} h)"
        if lasted.value >= float(hours):
            return TestOutcome(Status.MET, evidence, finding)
        return short(evidence, finding, explicit.value)
    trials = [
        t for t in scale_trials(ctx.record.trial.procedure, ctx.record.observations) if t.scale in scales
    ]
    if not trials:
        return TestOutcome(Status.NOT_DOCUMENTED, finding="no spasticity scores before and after a trial")
    best = max(trials, key=lambda t: (t.reduction(), t.sustained_hours(points)))
    evidence = (
        Evidence(
            f"{best.scale}: {best.baseline.value_text()} before the trial",
            best.baseline.source,
            best.baseline.effective,
        ),
    )
    finding = f"{best.reduction():g} points on {best.scale} (needs {points:g})"
    if best.reduction() < points:
        return short(evidence, finding, best.reduction())
    if hours is not None:
        lasted = best.sustained_hours(points)
        finding += f", for {lasted:g} h (needs {hours} h)"
        if lasted < float(hours):
            if best.relieved_at_last_score(points):
                return TestOutcome(
                    Status.NOT_DOCUMENTED,
                    evidence,
                    f"{finding}; the response held at the last score, so its duration is not documented",
                )
            return short(evidence, finding, best.reduction())
    return TestOutcome(Status.MET, evidence, finding)


@dataclass(frozen=True)
class TestType:
    """A registered test type: its function, its parameters, the resource types it reads, and the
    assessment codes it reads without a parameter naming them (a documentation form asks for these)."""

    function: Callable[[Mapping[str, Any], EvaluationContext], TestOutcome]
    params: Mapping[str, Param]
    reads: tuple[str, ...]
    asks: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], str | None] | None = None  # rules across parameters


def _check_assessment(params: Mapping[str, Any]) -> str | None:
    if ("met" in params or "not_met" in params) == ("comparator" in params):
        return "'assessment' takes either met/not_met (listed values) or comparator and value"
    if ("comparator" in params) != ("value" in params):
        return "'assessment' needs comparator and value together"
    return None


MEDS = ("MedicationRequest", "MedicationStatement")
TEST_TYPES: dict[str, TestType] = {
    "condition-present": TestType(
        condition_present, {"valuesets": VALUE_SETS, "missing": MISSING_TEXT}, ("Condition",)
    ),
    "condition-duration": TestType(
        condition_duration,
        {
            "valuesets": VALUE_SETS,
            "comparator": Param(Comparator(allowed=(">", ">="))),
            "months": Param(Count()),
        },
        ("Condition",),
    ),
    "medication-duration": TestType(
        medication_duration,
        {
            "valuesets": VALUE_SETS,
            "comparator": Param(Comparator()),
            "days": Param(Number()),
            "missing": MISSING_TEXT,
            "within_months": optional(Count()),
        },
        MEDS,
    ),
    "medication-routes": TestType(
        medication_routes, {"valuesets": VALUE_SETS, "routes": Param(Routes())}, MEDS
    ),
    "medication-failure": TestType(
        medication_failure,
        {
            "valuesets": VALUE_SETS,
            "assessment": optional(AssessmentCode()),
            "failed_values": optional(Values()),
            "succeeded_values": optional(Values()),
        },
        (*MEDS, "AllergyIntolerance", "Observation"),
    ),
    "procedure-history": TestType(
        procedure_history,
        {
            "valuesets": VALUE_SETS,
            "missing": MISSING_TEXT,
            "steroid_injections": optional(Flag()),
            "outcome_required": optional(Flag()),
        },
        ("Procedure",),
    ),
    "trial-relief": TestType(
        trial_relief,
        {
            "comparator": Param(Comparator()),
            "percent": Param(Number()),
            "min_hours": optional(Number()),
            "reviewer_below": optional(Number()),
        },
        ("Procedure", "Observation"),
        ("it-trial-pain-relief-pct", "it-trial-relief-duration-h"),
    ),
    "assessment": TestType(
        assessment,
        {
            "code": Param(AssessmentCode()),
            "met": optional(Values()),
            "not_met": optional(Values()),
            "comparator": optional(Comparator()),
            "value": optional(Number()),
            "when_absent": optional(Exactly("met", " (the absence rule)")),
        },
        ("Observation",),
        check=_check_assessment,
    ),
    "no-condition": TestType(
        no_condition,
        {
            "valuesets": VALUE_SETS,
            "recent_days": optional(Count()),
            "active_counts": optional(Flag()),
            "unless_treated_by": optional(ValueSetId()),
            "treatment_covers": optional(ValueSetId()),
            "cleared_by": optional(AssessmentCode()),
            "unless_present": optional(ValueSets()),
            "when_found": optional(Exactly("not-documented")),
            "found_finding": optional(Text()),
        },
        ("Condition",),
    ),
    "no-infusate-allergy": TestType(no_infusate_allergy, {"valuesets": VALUE_SETS}, ("AllergyIntolerance",)),
    "infusate-not-in": TestType(infusate_not_in, {"valuesets": VALUE_SETS}, ()),
    "no-device": TestType(
        no_device,
        {"valueset": Param(ValueSetId()), "removal_cancels": optional(CodeMap())},
        ("Device", "Condition", "Procedure"),
    ),
    "infusate-in": TestType(
        infusate_in,
        {"valuesets": VALUE_SETS, "single_ingredient": optional(Flag()), "includes": optional(Flag())},
        (),
    ),
    "observation-value": TestType(
        observation_value,
        {
            "loinc": Param(Codes()),
            "comparator": Param(Comparator()),
            "value": Param(Number()),
            "unit": optional(Exactly("months")),
        },
        ("Observation",),
    ),
    "observation-category": TestType(
        observation_category,
        {"loinc": Param(Codes()), "met": Param(Values()), "not_met": optional(Values())},
        ("Observation",),
    ),
    "scale-score": TestType(
        scale_score,
        {"code": Param(ScaleCode()), "comparator": Param(Comparator()), "value": Param(Number())},
        ("Observation",),
    ),
    "scale-trial-response": TestType(
        scale_trial_response,
        {
            "points": Param(Number()),
            "hours": optional(Number()),
            "scales": optional(ScaleCodes()),
            "example": optional(Flag()),
        },
        ("Procedure", "Observation"),
        ("it-trial-scale-reduction", "it-trial-response-duration-h"),
    ),
}
