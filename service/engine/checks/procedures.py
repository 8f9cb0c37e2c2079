"""Test types about earlier procedures: a qualifying procedure (or steroid injection) was done."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.engine.checks.common import day_of, matching_procedures, named_value_sets
from service.engine.checks.params import MISSING_TEXT, VALUE_SETS, Flag, optional
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome


@test_type(
    "procedure-history",
    params={
        "valuesets": VALUE_SETS,
        "missing": MISSING_TEXT,
        "steroid_injections": optional(Flag()),
        "outcome_required": optional(Flag()),
    },
    reads=("Procedure",),
)
def procedure_history(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """A completed procedure in the value sets (and, with `steroid_injections`, any epidural steroid
    injection, whatever its CPT code: 62320-62323 report those as well as intrathecal trials)."""
    value_sets = named_value_sets(ctx, params)
    with_steroids = bool(params.get("steroid_injections"))
    found = list(matching_procedures(ctx, value_sets))
    if with_steroids:
        found += [p for p in ctx.record.procedures if p.steroid_injection and p not in found]
    if not found:
        return TestOutcome(
            Status.NOT_DOCUMENTED, finding=params.get("missing", "no qualifying procedure found")
        )
    found.sort(key=lambda p: (p.performed is not None, p.performed or 0), reverse=True)
    evidence = tuple(Evidence(f"{p.label} ({day_of(p.performed)})", p.source, p.performed) for p in found[:3])
    if params.get("outcome_required"):
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            evidence,
            "tried, but no code records whether it failed: document the outcome",
        )
    return TestOutcome(Status.MET, evidence, f"{len(found)} qualifying procedure(s)")
