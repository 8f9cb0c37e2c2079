"""Test types about earlier procedures: a qualifying procedure (or steroid injection) was done."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.engine.checks.common import matching_procedures, named_value_sets, procedure_evidence
from service.engine.checks.params import MISSING_TEXT, VALUE_SETS, Flag, optional
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.facts import ProcedureFact

# what a trial Procedure under way is (record.TRIAL_UNDER_WAY), as a finding says it
_UNDER_WAY = {"in-progress": "in progress", "on-hold": "on hold", "preparation": "in preparation"}


def _evidence(procedures: list[ProcedureFact]) -> tuple[Evidence, ...]:
    """The three most recent procedures (the undated last), as evidence lines."""
    latest = sorted(procedures, key=lambda p: (p.performed is not None, p.performed or 0), reverse=True)
    return tuple(procedure_evidence(p) for p in latest[:3])


@test_type(
    "procedure-history",
    params={
        "valuesets": VALUE_SETS,
        "missing": MISSING_TEXT,
        "steroid_injections": optional(Flag()),
        "trials": optional(Flag()),
        "outcome_required": optional(Flag()),
    },
    reads=("Procedure",),
)
def procedure_history(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """A completed procedure in the value sets (and, with `steroid_injections`, any epidural steroid
    injection, whatever its CPT code: 62320-62323 report those as well as intrathecal trials).

    With `trials` the value sets are of drug trials, and a procedure is one as the trial module
    (service/trial.py) reads it: an epidural steroid injection coded as a trial is not one, so a
    criterion never calls a steroid infusion a trial whose result the same card says is not on record,
    and a trial of these value sets under way (`PatientRecord.trials_under_way`: begun, not completed) is
    no evidence (contract §3) but is named as not completed, not left to read as none on the chart beside
    the card's "Trial under way (CPT 62324, …)" (review22b M1).
    """
    value_sets = named_value_sets(ctx, params)
    with_steroids = bool(params.get("steroid_injections"))
    found = list(matching_procedures(ctx, value_sets))
    not_trials = [p for p in found if p.steroid_injection] if params.get("trials") else []
    found = [p for p in found if p not in not_trials]
    if with_steroids:
        found += [p for p in ctx.record.procedures if p.steroid_injection and p not in found]
    if not found:
        missing = params.get("missing", "no qualifying procedure found")
        steroids = _evidence(not_trials)
        if steroids:
            missing += f"; {steroids[0].text} was an epidural steroid injection, not a drug trial"
        begun = [p for p in ctx.record.trials_under_way if any(vs.matches_any(p.codes) for vs in value_sets)]
        if params.get("trials") and begun:
            latest = max(begun, key=lambda p: (p.performed is not None, p.performed or 0))
            said = _UNDER_WAY.get(latest.status, latest.status)
            missing += f"; {procedure_evidence(latest).text} is {said}, not completed"
        return TestOutcome(Status.NOT_DOCUMENTED, steroids, missing)
    evidence = _evidence(found)
    if params.get("outcome_required"):  # no code records a therapy's outcome: the chart tells the reviewer
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, "tried; no code records whether it failed", for_reviewer=True
        )
    return TestOutcome(Status.MET, evidence, f"{len(found)} qualifying procedure(s)")
