"""What several families of test types share: comparators, value-set matching and evidence lines.

Kept apart from the families so that each family module holds only its own test types, and so
that the parameter kinds (`params.py`) can name the comparators without importing a family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from service.engine.context import EvaluationContext
from service.engine.model import Evidence
from service.facts import ConditionFact, MedicationFact, ProcedureFact
from service.terminology import ValueSet

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
MEDS = ("MedicationRequest", "MedicationStatement")  # the resource types a drug history is read from


def day_of(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "undated"


def named_value_sets(
    ctx: EvaluationContext, params: Mapping[str, Any], key: str = "valuesets"
) -> list[ValueSet]:
    """The value sets a test's parameter `key` names."""
    return [ctx.terminology[v] for v in params[key]]


def _matching(ctx: EvaluationContext, kind: str, facts: Any, value_sets: list[ValueSet]) -> list[Any]:
    """Facts matching any of the value sets, computed once per value set for the whole call."""
    per_set = [
        ctx.memo((kind, vs.id), lambda vs=vs: {id(f) for f in facts if vs.matches_any(f.codes)})  # type: ignore[misc]
        for vs in value_sets
    ]
    wanted = set().union(*per_set)
    return [f for f in facts if id(f) in wanted]


def matching_procedures(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ProcedureFact]:
    return _matching(ctx, "procedures", ctx.record.procedures, value_sets)


def matching_conditions(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ConditionFact]:
    return _matching(ctx, "conditions", ctx.record.conditions, value_sets)


def medication_matches(med: MedicationFact, value_sets: list[ValueSet]) -> bool:
    """A drug belongs to a class: by an ingredient found when the record was built, or by a code.
    Intrathecal and epidural drugs never count: the policies' drug trials are systemic ones."""
    if med.neuraxial:
        return False
    return any(med.ingredients & vs.ingredient_names or vs.matches_any(med.codes) for vs in value_sets)


def condition_evidence(c: ConditionFact) -> Evidence:
    when = (
        f"onset {day_of(c.onset)}"
        if c.onset
        else f"recorded {day_of(c.recorded)}"
        if c.recorded
        else "undated"
    )
    return Evidence(f"{c.label} ({when})", c.source, c.date)


def medication_evidence(m: MedicationFact) -> Evidence:
    span = f"{day_of(m.start)} → {day_of(m.end)}" if m.end and m.end != m.start else day_of(m.start)
    days = f", {(m.end - m.start).days} days" if m.start and m.end and m.end != m.start else ""
    return Evidence(f"{m.label} ({m.status}, {span}{days})", m.source, m.start)


def could_not_check(ctx: EvaluationContext, types: tuple[str, ...]) -> str | None:
    """Why a result cannot be trusted: a resource type it reads could not be fetched."""
    failed = [f"{t} ({ctx.record.unavailable[t]})" for t in types if t in ctx.record.unavailable]
    return f"could not be checked: the EHR did not return {', '.join(failed)}" if failed else None
