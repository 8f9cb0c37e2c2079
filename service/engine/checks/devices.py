"""Test types about implanted devices: no other programmable device is in place.

"A device is in place" is documented per device, and a removal is a dated "that device is gone"
(contract §3: the most recent documented form decides). The forms of several devices are not one
fact - removing a pacemaker says nothing of an insulin pump - so the recency rule is applied here,
per device, through the value set's `removals`, rather than by `forms:` across the whole criterion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.codes import CPT, Code, code_words, icd10_key
from service.engine.chart_days import day_order
from service.engine.checks.common import (
    condition_evidence,
    day_of,
    matching_conditions,
    matching_procedures,
    procedure_evidence,
)
from service.engine.checks.params import Param, ValueSetId
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Pending, Status, TestOutcome
from service.facts import ProcedureFact
from service.record import REMOVALS


@dataclass(frozen=True)
class _Removal:
    procedure: ProcedureFact
    undoes: frozenset[str]  # the implant and presence codes of the device it takes out


def _removals(ctx: EvaluationContext, cancels: Mapping[str, frozenset[str]]) -> list[_Removal]:
    return [
        _Removal(p, cancels[c.code])
        for p in ctx.record.procedures
        for c in p.codes
        if c.system == CPT and c.code in cancels
    ]


def _removed_by(
    removals: list[_Removal], codes: set[str], when: datetime | None, written_to: str
) -> _Removal | None:
    """The latest dated removal of the device that `codes` document that undoes it (`_undone`)."""
    undone = _undone(when, written_to)
    later = [
        r
        for r in removals
        if r.procedure.performed
        and codes & r.undoes
        and (undone is None or undone(r.procedure.performed, r.procedure.precision))
    ]
    return max(later, key=lambda r: r.procedure.performed or datetime.min, default=None)


def _undone(when: datetime | None, written_to: str) -> Callable[[datetime, str], bool] | None:
    """Whether a removal dated so (written to that precision) undoes a device documented on `when`
    (`written_to`; None: undated, which any dated removal undoes): made on a later day, the most recent
    documented form decides (contract §3); a dated removal beats an undated presence, and on the same day
    the presence stands whatever the hours, as engine/forms weighs one day's forms (the tie rule,
    policies/README.md: "not met" beats "met"; an implant and a removal of one day may be a replacement,
    and a presence Condition dated by the day has no hour). Which day each is on is
    `chart_days.day_order`'s: moments in different offsets whose own days contradict the order of their
    instants are one day's, and a date written to a month or a year is each of its days, so a removal
    dated "2023" does not undo an implant of May 2023, nor one of May a removal dated "2023-05"
    (review24c). The one rule for a removal read (`_removed_by`) and one left out of the record
    (`PatientRecord.removal_unread`)."""
    if when is None:
        return None
    return lambda removed, removed_to: day_order(removed, when, removed_to, written_to) > 0


_UNDATED = datetime.min.replace(tzinfo=UTC)  # an implant no date places: before any dated one


def _named(codes: tuple[Code, ...]) -> str:
    """An implant Procedure by the first code of it the value set lists, by its own system (`code_words`:
    "CPT 33206", "SNOMED 441509002"; review30a L7: "implant CPT 441509002"): one Procedure is one implant
    however many codings it carries, so one code names it ("implant CPT 33206, SNOMED 441509002" read as
    two implants, review30f)."""
    first = codes[0]
    return code_words(first.system, icd10_key(first.code))


@test_type(
    "no-device",
    params={"valueset": Param(ValueSetId())},
    reads=("Device", "Condition", "Procedure"),
)
def no_device(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No other implanted programmable device: an active Device, a presence Condition, or an implant
    Procedure, unless a later removal of that device undoes it (the value set's `removals`: removal
    CPT → the implant CPT and presence codes it undoes). An active Device is the record's current state and
    carries no implant date: only marking it inactive clears it. An implant Procedure a removal that could
    not be read may undo (`PatientRecord.removal_unread`) is not established (an active Device or presence
    Condition is: contract §3's "no later removal" qualifies the Procedure form alone): while every one
    found is such, the result rests on the removals (`rests_on`: "could not be checked", evaluate.py)."""
    devices_vs = ctx.terminology[params["valueset"]]
    removals = _removals(ctx, devices_vs.removals)
    # each record in place, as evidence (after its role: "device: ", "implant: ") and as the finding names
    # it: a Device by the first of its type and names (its label joins them with " | "), as
    # classify.in_place_words does, with no role (no resource type on a card either), an implant as one:
    # "documented: device: …" read two colons (cards24)
    in_place: list[tuple[Evidence, str]] = [
        (
            Evidence(f"device: {device.label}", device.source),
            device.label.split(" | ")[0],
        )
        for device in ctx.record.devices
        if devices_vs.matches_any(device.codes) or devices_vs.matches_text(device.text)
    ]
    cleared: dict[str, Evidence] = {}
    presences = [
        (
            condition_evidence(c),
            None,
            {icd10_key(x.code) for x in c.codes if devices_vs.matches(x)},
            c.date,
            c.precision,
            False,  # an active presence Condition counts as written (contract §3): no unread removal undoes
            (),
        )
        for c in matching_conditions(ctx, [devices_vs])
    ]
    presences += [
        (
            procedure_evidence(p, "implant: "),
            procedure_evidence(p, "implant ").text,
            {icd10_key(c.code) for c in p.codes if devices_vs.matches(c)},
            p.performed,
            p.precision,
            True,  # "a completed implant Procedure with no later removal" (contract §3)
            tuple(c for c in p.codes if devices_vs.matches(c)),
        )
        for p in matching_procedures(ctx, [devices_vs])
    ]
    sure = bool(in_place)  # an active Device: no removal Procedure clears it
    # each implant a removal left out may have undone, by its code and day, and when it was
    unsure: list[tuple[datetime | None, str, str]] = []
    for evidence, name, codes, when, written_to, implant, matched in presences:
        removal = _removed_by(removals, codes, when, written_to)
        if removal is None:
            in_place.append((evidence, name or evidence.text))
            # an implant Procedure is in place unless a removal that could not be read undoes it (contract
            # §3: "no later removal" qualifies that form only; an active Device or Condition stands)
            undoers = [code for code, undone in devices_vs.removals.items() if implant and codes & undone]
            if ctx.record.removal_unread(undoers, _undone(when, written_to)) is None:
                sure = True
            else:  # by its code, not its chart words (one may run to a hundred characters)
                unsure.append((when, f"implant {_named(matched)}", day_of(when, written_to)))
        else:
            p = removal.procedure
            cleared[p.source] = procedure_evidence(p, "removal: ")
    if in_place and not sure:  # each one a removal left out may have undone: whether it is, not checked
        named = "; ".join(name for _, name in in_place[:2])
        # the latest named (what was put in last is what a clinician checks first), the others counted
        _, latest, day = max(unsure, key=lambda u: u[0] or _UNDATED)
        return TestOutcome(
            Status.NOT_MET,
            tuple(e for e, _ in in_place[:4]),
            f"documented: {named}, unless a later removal undoes it",
            rests_on=(REMOVALS,),
            pending=Pending(latest, day, len(unsure) - 1),
        )
    if in_place:
        # two named, the rest counted (cardfix20 F4e: "device: Implantable cardiac pacemaker | Dual-chamber
        # implantable pacemaker and 1 more", the 1 never named)
        named = [name for _, name in in_place[:2]]
        more = f" and {len(in_place) - 2} more" if len(in_place) > 2 else ""
        evidence = tuple(e for e, _ in in_place[:4])
        return TestOutcome(Status.NOT_MET, evidence, f"documented: {'; '.join(named)}{more}")
    if cleared:
        return TestOutcome(
            Status.MET, tuple(cleared.values()), "none in place: the device was removed", by_absence=True
        )
    return TestOutcome(Status.MET, finding="none documented", by_absence=True)
