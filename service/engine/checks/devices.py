"""Test types about implanted devices: no other programmable device is in place.

"A device is in place" is documented per device, and a removal is a dated "that device is gone"
(contract §3: the most recent documented form decides). The forms of several devices are not one
fact - removing a pacemaker says nothing of an insulin pump - so the recency rule is applied here,
per device, through the value set's `removals`, rather than by `forms:` across the whole criterion.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from service.codes import CPT, ICD10CM, UNNAMED, Code, code_words, icd10_key
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
from service.engine.model import Evidence, Pending, Status, TestOutcome, and_more
from service.engine.removals import Read, Removals, Undone, Weighed
from service.facts import ConditionFact, ProcedureFact
from service.record import REMOVALS
from service.wording import clipped


def _removals(ctx: EvaluationContext, cancels: Mapping[str, frozenset[str]]) -> Removals[ProcedureFact]:
    """The removals of the record, each of a device whose implant and presence codes `cancels` lists under
    its code."""
    read = [
        Read(p.performed, p.precision, c.code, p)
        for p in ctx.record.procedures
        for c in p.codes
        if c.system == CPT and c.code in cancels
    ]
    return Removals(read, ctx.record)


def _undone(
    when: datetime | None, written_to: str, by: datetime | None = None, by_to: str = "time"
) -> Undone:
    """Whether a removal dated so (written to that precision) undoes a device documented on `when`
    (`written_to`; `removals.Undone`: not told, where either is undated, or written to a month or a
    year and the other's day falls within it): made on a later day, the most recent documented form decides
    (contract §3); on the same day, both dated to the day, the presence stands whatever the hours, as
    engine/forms weighs one day's forms (the tie rule, policies/README.md: "not met" beats "met"; an
    implant and a removal of one day may be a replacement, and a presence Condition dated by the day has no
    hour; review24c). Which day each is on is `chart_days.day_order`'s: moments in different offsets whose
    own days contradict the order of their instants are one day's. A date written to a month or a year is
    each of its days, so a removal dated "2023" of an implant of May 2023, or one of 15 May of an implant
    dated "2023-05", may have come before it or after: the dates cannot tell, and the implant is left open
    (the lead's decision, s32, of review31f L4; before, it stood, as on one day). The one rule for a removal
    read and one left out of the record (`removals.weigh`). `by`, `by_to`: a diagnosis's onsetPeriod end where
    it has no start (`ConditionFact.onset_by`), for the words only (`removals.may_be_later`)."""
    return Undone(when, written_to, same_day=False, by=by, by_to=by_to)


_UNDATED = datetime.min.replace(tzinfo=UTC)  # an implant no date places: before any dated one


def _named(codes: tuple[Code, ...]) -> str:
    """An implant Procedure by the first code of it the value set lists, by its own system (`code_words`:
    "CPT 33206", "SNOMED 441509002"; review30a L7: "implant CPT 441509002"): one Procedure is one implant
    however many codings it carries, so one code names it ("implant CPT 33206, SNOMED 441509002" read as
    two implants, review30f)."""
    first = codes[0]
    return code_words(first.system, icd10_key(first.code))


_DISPLAY_MOST = 40  # characters of a diagnosis's display the open line quotes: the why after it must fit


def _diagnosis(condition: ConditionFact, codes: tuple[Code, ...]) -> str:
    """A presence diagnosis by the first code of it the value set lists (`codes`): an ICD-10-CM code as
    the chart writes it ("diagnosis Z95.0", as the pump's card names a Z45.1: classify.in_place_words);
    another, whose number a clinician does not know, by the words the chart gives it, as the documented
    line names it (`condition.label`: "diagnosis “Presence of cardiac pacemaker”", review31f L2), quoted
    to `_DISPLAY_MOST` characters; by its system and code where the chart gives no words ("diagnosis
    SNOMED 441509002")."""
    first = codes[0]
    if first.system == ICD10CM:
        return f"diagnosis {first.code}"
    if condition.label not in (UNNAMED, *(code_words(c.system, c.code) for c in condition.codes[:1])):
        return f"diagnosis “{clipped(condition.label, _DISPLAY_MOST)}”"
    return f"diagnosis {_named(codes)}"


@test_type(
    "no-device",
    params={"valueset": Param(ValueSetId())},
    reads=("Device", "Condition", "Procedure"),
)
def no_device(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No other implanted programmable device: an active Device, a presence Condition, or an implant
    Procedure, unless a later removal of that device undoes it (the value set's `removals`: removal
    CPT → the implant CPT and presence codes it undoes). An active Device is the record's current state and
    carries no implant date: only marking it inactive clears it. An implant Procedure or a presence Condition
    a removal that could not be read may undo (`PatientRecord.removal_unread`), or one read that the dates
    cannot place before or after it (`removals.weigh`), is not established (the lead's decision, s31, of
    review31a M2: a diagnosis is weighed as an implant is); an active Device is: while every one found is
    such, the result rests on the removals ("could not be checked", evaluate.py)."""
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
    # each implant Procedure and presence diagnosis: as evidence, as the finding names it, its codes, the
    # rule a removal is weighed against it by (its date, how it is written), and as the line of one left
    # open names it, by its code and day (a diagnosis with no date by the onset the chart gives otherwise:
    # "onset at age 60, no date", review31f L1)
    presences = [
        (
            condition_evidence(c),
            None,
            {icd10_key(x.code) for x in c.codes if devices_vs.matches(x)},
            _undone(c.date, c.precision, c.onset_by, c.onset_by_to),
            _diagnosis(c, tuple(x for x in c.codes if devices_vs.matches(x))),
            day_of(c.date, c.precision) if c.date else c.undated_words,
        )
        for c in matching_conditions(ctx, [devices_vs])
    ]
    presences += [
        (
            procedure_evidence(p, "implant: "),
            procedure_evidence(p, "implant ").text,
            {icd10_key(c.code) for c in p.codes if devices_vs.matches(c)},
            _undone(p.performed, p.precision),
            f"implant {_named(tuple(c for c in p.codes if devices_vs.matches(c)))}",
            day_of(p.performed, p.precision),
        )
        for p in matching_procedures(ctx, [devices_vs])
    ]
    sure = bool(in_place)  # an active Device: no removal Procedure clears it
    # each implant a removal left out, or read and not told to be later, may have undone: by its code and
    # day, when it was, and why it is open
    unsure: list[tuple[datetime | None, str, str, Weighed[ProcedureFact]]] = []
    for evidence, name, codes, rule, named_by, day in presences:
        # an implant Procedure or a presence diagnosis is in place unless a later removal undoes it, and open
        # while one the dates cannot place, or one left out of the record, may (the lead's decision, s31, of
        # review31a M2: a diagnosis is weighed as an implant is); an active Device stands as written
        undoers = [code for code, undone in devices_vs.removals.items() if codes & undone]
        weighed = removals.weigh(rule, undoers)
        if weighed.removed is not None:
            cleared[weighed.removed.source] = procedure_evidence(weighed.removed, "removal: ")
            continue
        in_place.append((evidence, name or evidence.text))
        if not weighed.unsure:
            sure = True
        else:  # by its code, not its chart words (one may run to a hundred characters)
            unsure.append((rule.put_in, named_by, day, weighed))
    if in_place and not sure:  # each one a removal may have undone: whether it is, not checked
        named = "; ".join(name for _, name in in_place[:2])
        # why: a removal left out, the record's (`rests_on`, `could_not_check`, said first: evaluate.py);
        # else one read that the dates cannot place before or after the implant, the outcome's own
        # (`undecided`). The implant named is the latest of those whose why is said (what was put in last is
        # what a clinician checks first), the others counted: one named with another's why read as its own
        # (review31a L4)
        left_out = [u for u in unsure if u[3].left_out]
        placed = [u for u in unsure if not u[3].left_out]
        _, latest, day, _ = max(left_out or placed, key=lambda u: u[0] or _UNDATED)
        # the removals read that leave them open, as evidence beside the implants (as a removal that clears
        # one is: review31a L5), each once
        removals_open = {
            w.may_undo.source: procedure_evidence(w.may_undo, "removal: ")
            for _, _, _, w in placed
            if w.may_undo is not None
        }
        return TestOutcome(
            Status.NOT_MET,
            (*(e for e, _ in in_place[:4]), *list(removals_open.values())[:4]),
            f"documented: {named}, unless a later removal undoes it",
            rests_on=(REMOVALS,) if left_out else (),
            pending=Pending(latest, day, len(unsure) - 1),
            undecided=max(placed, key=lambda u: u[0] or _UNDATED)[3].unsure if placed else "",
        )
    if in_place:
        # two named, the rest counted (cardfix20 F4e: "device: Implantable cardiac pacemaker | Dual-chamber
        # implantable pacemaker and 1 more", the 1 never named)
        named = [name for _, name in in_place[:2]]
        evidence = tuple(e for e, _ in in_place[:4])
        return TestOutcome(
            Status.NOT_MET, evidence, f"documented: {'; '.join(named)}{and_more(len(in_place) - 2)}"
        )
    if cleared:
        return TestOutcome(
            Status.MET, tuple(cleared.values()), "none in place: the device was removed", by_absence=True
        )
    return TestOutcome(Status.MET, finding="none documented", by_absence=True)
