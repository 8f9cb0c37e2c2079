"""Test types about implanted devices: no other programmable device is in place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.codes import CPT
from service.engine.checks.common import condition_evidence, day_of, matching_conditions, matching_procedures
from service.engine.checks.params import CodeMap, Param, ValueSetId, optional
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome


@test_type(
    "no-device",
    params={"valueset": Param(ValueSetId()), "removal_cancels": optional(CodeMap())},
    reads=("Device", "Condition", "Procedure"),
)
def no_device(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No other implanted programmable device: an active Device, a presence condition, or an implant
    procedure not followed by a removal of the same device (`removal_cancels`: removal → implants)."""
    devices_vs = ctx.terminology[params["valueset"]]
    cancels: Mapping[str, list[str]] = params.get("removal_cancels", {})
    evidence: list[Evidence] = []
    for device in ctx.record.devices:
        if devices_vs.matches_any(device.codes) or devices_vs.matches_text(device.text):
            evidence.append(Evidence(f"device: {device.label}", device.source))
    evidence += [condition_evidence(c) for c in matching_conditions(ctx, [devices_vs])]
    removals = [
        (p.performed, set(cancels[c.code]))
        for p in ctx.record.procedures
        for c in p.codes
        if c.system == CPT and c.code in cancels and p.performed
    ]
    for p in matching_procedures(ctx, [devices_vs]):
        implant_codes = {c.code for c in p.codes if devices_vs.matches(c)}
        removed = any(
            p.performed and when > p.performed and implant_codes & undone for when, undone in removals
        )
        if implant_codes and not removed:
            evidence.append(Evidence(f"implant: {p.label} ({day_of(p.performed)})", p.source, p.performed))
    if evidence:
        return TestOutcome(
            Status.NOT_MET, tuple(evidence[:4]), "other implanted programmable device documented"
        )
    return TestOutcome(Status.MET, finding="none documented", by_absence=True)
