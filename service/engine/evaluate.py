"""Evaluation of one policy for one order: the criteria tree, Kleene logic, and the outcome.

Outcome rules (issue 4 / design notes): does-not-meet when any applicable criterion is not met
(an exclusion documented, or a requirement contradicted); meets when every one is met, unless the
chart does not tell the indication and the policy's criteria depend on it (insufficient: they were
chosen by an assumption); otherwise insufficient; not-applicable when the policy does not address the
indication or request kind.
"""

from __future__ import annotations

from dataclasses import replace

from service.engine.checks import TEST_TYPES
from service.engine.checks.common import CHART_PARTS, all_read, could_not_check
from service.engine.classify import (
    DEFAULT_INDICATION,
    IN_PLACE_SOURCES,
    INDICATIONS_CLASSIFIED,
    classify_indication,
    family_unread,
    final_request_kind,
    idds_in_place,
    in_place_unsure,
    in_place_words,
    indication_evident,
    indication_unread,
    no_pump_words,
    reason_source,
    revision,
)
from service.engine.context import EvaluationContext
from service.engine.forms import Decision, decide
from service.engine.model import (
    UNCHECKED_PREFIX,
    CriterionResult,
    Determination,
    Outcome,
    Status,
    TestOutcome,
    indications_left,
)
from service.engine.scope import applies, for_indication
from service.policy import CriterionSpec, Policy, TestSpec
from service.record import PatientRecord, unreadable_in_chart


def kleene(logic: str, statuses: list[Status]) -> Status:
    """Three-valued AND / OR: not-documented is 'unknown'."""
    if logic == "all":
        if Status.NOT_MET in statuses:
            return Status.NOT_MET
        return Status.MET if all(s == Status.MET for s in statuses) else Status.NOT_DOCUMENTED
    if Status.MET in statuses:
        return Status.MET
    return Status.NOT_MET if all(s == Status.NOT_MET for s in statuses) else Status.NOT_DOCUMENTED


def _unchecked(tests: list[TestSpec], outcome: TestOutcome, ctx: EvaluationContext) -> str | None:
    """Why a result cannot be trusted: a resource type it rests on could not be fetched: those `tests`
    read, for a result that rests on no record of the fact (their `also_reads` too, for one not
    documented: an absence is judged on the data the contract names, §3); those its outcome names,
    for any; else why what was read cannot decide it (`TestOutcome.undecided`)."""
    if outcome.status == Status.NOT_MET or (outcome.status == Status.MET and not outcome.by_absence):
        return could_not_check(ctx, outcome.rests_on) or _undecided(outcome)
    kinds = [TEST_TYPES[test.type] for test in tests]
    reads = [t for kind in kinds for t in kind.reads]
    if outcome.status == Status.NOT_DOCUMENTED:
        reads += [t for kind in kinds for t in kind.also_reads]
    return could_not_check(ctx, (*outcome.rests_on, *reads), _codes_read(tests)) or _undecided(outcome)


def _undecided(outcome: TestOutcome) -> str | None:
    return UNCHECKED_PREFIX + outcome.undecided if outcome.undecided else None


def _pending(outcome: TestOutcome, unchecked: str) -> str:
    """The finding of a result left unchecked: why (`unchecked`, the criterion's `unchecked_reason`), after
    what the records it rests on may undo when it says (`TestOutcome.pending`: "could not be checked:
    implant CPT 33206 (2 Feb 2019), but some of the EHR's later removals could not be read (…)"); a card
    names that only where the line keeps why whole: its parts go to the card too (`CriterionResult.pending`),
    which composes the shorter forms from them (cards/items.py `_pending_forms`)."""
    if not outcome.pending:
        return unchecked
    return f"{UNCHECKED_PREFIX}{outcome.pending.words}, but {unchecked.removeprefix(UNCHECKED_PREFIX)}"


def _codes_read(tests: list[TestSpec]) -> tuple[str, ...]:
    """The assessment codes `tests` read (`TestType.codes_read`): a kind left out only for some codes
    (`PatientRecord.unavailable_codes`) leaves a reader of none of them whole."""
    return tuple(code for test in tests for code in TEST_TYPES[test.type].codes_read(test.params))


def _run(test: TestSpec, ctx: EvaluationContext) -> TestOutcome:
    """A test's outcome, worked out once per call: tests read only what every order and policy of
    the call share (the record, value sets, today, the call's infusates), never the order, its kind
    or its indication (tests/unit/test_engine_sharing.py holds them to that). A leaf's TestSpec is
    made anew on each reading, but its parameters belong to the compiled catalog, which lives as
    long as the process: their id (with the type) names the test."""
    key = ("test", test.type, str(id(test.params)))
    if test.params.get("order_reason"):  # reads the order's reason (classify.reason_diagnosis)
        key += (reason_source(ctx),)
    return ctx.memo(key, lambda: TEST_TYPES[test.type].function(test.params, ctx))


def _leaf(spec: CriterionSpec, ctx: EvaluationContext) -> tuple[Decision, str | None]:
    """The decision of a leaf (its one test, or the form that decides the fact) and why it cannot
    be trusted; a "met" that one form decides stays untrusted while another form could not be read
    (what the other forms read, not what may only add a record of them: their `also_reads`)."""
    forms = list(spec.tests)
    decision = decide([_run(test, ctx) for test in forms], spec.either_on_one_date)
    if all_read(ctx):  # the whole chart read: no form's result is untrusted but for what it cannot decide
        return decision, _undecided(decision.outcome)
    others = [test for i, test in enumerate(forms) if i != decision.form]
    unchecked = _unchecked(forms if decision.form is None else [forms[decision.form]], decision.outcome, ctx)
    if unchecked is None and decision.outcome.status == Status.MET and others:
        others_read = tuple(t for test in others for t in TEST_TYPES[test.type].reads)
        unchecked = could_not_check(ctx, others_read, _codes_read(others))
    return decision, unchecked


def _evaluate(
    spec: CriterionSpec,
    policy: Policy,
    ctx: EvaluationContext,
    how_to_document: str | None = None,
    within: frozenset[str] | None = None,
) -> CriterionResult:
    """`how_to_document`: the enclosing criterion's, for a sub-criterion that says none of its own;
    `within`: the indications the enclosing criterion is written for (a sub-criterion's only narrow them)."""
    citation = policy.citation(spec.section)
    how_to_document = spec.how_to_document or how_to_document
    written_for = spec.indications if spec.indications is not None else within
    common = {
        "id": spec.id,
        "label": spec.label,
        "text": spec.text,
        "section": spec.section,
        "citation": citation,
        "role": spec.role,
        "how_to_document": how_to_document,
        "reading": spec.reading,
        "gate": spec.gate,
        "written_for": written_for,
        "either_or": spec.logic == "any",
    }
    if spec.logic is not None:
        children = tuple(_evaluate(c, policy, ctx, how_to_document, written_for) for c in spec.children)
        status = kleene(spec.logic, [c.status for c in children])
        unchecked = next((c.unchecked_reason for c in children if c.unchecked_reason), None)
        finding = "; ".join(f"{c.label}: {c.finding}" for c in children if c.status == status) or status.value
        evidence = tuple(dict.fromkeys(e for c in children for e in c.evidence))  # once each, in order
        return CriterionResult(
            **common,
            status=status,
            finding=finding,
            evidence=evidence,
            unchecked_reason=unchecked if status != Status.NOT_MET else None,
            children=children,
        )
    decision, unchecked = _leaf(spec, ctx)
    status = Status.NOT_DOCUMENTED if unchecked else decision.outcome.status
    return CriterionResult(
        **common,
        status=status,
        finding=_pending(decision.outcome, unchecked) if unchecked else decision.outcome.finding,
        evidence=decision.outcome.evidence,
        unchecked_reason=unchecked,
        overruled=decision.overruled,
        for_reviewer=decision.outcome.for_reviewer and status == Status.NOT_DOCUMENTED,
        by_absence=decision.outcome.by_absence and status == Status.MET,
        pending=decision.outcome.pending if unchecked else None,
    )


def _criteria_results(
    policy: Policy, ctx: EvaluationContext, branches: frozenset[str] | None
) -> tuple[CriterionResult, ...]:
    """The results of the policy's criteria that apply to the context's kind and indication, their
    branches those of the `branches` indications (None: all, for an indication only assumed). They
    read nothing of the order itself (its tests are shared per call, see `_run`), so the orders of
    one episode that share a kind and an indication share them too (`evaluate_order`)."""
    return tuple(
        _evaluate(scoped, policy, ctx)
        for spec in policy.criteria
        if applies(spec, ctx.request_kind, ctx.indication)
        and (scoped := for_indication(spec, branches)) is not None
    )


ANY = frozenset(INDICATIONS_CLASSIFIED)  # nothing tells what the pump is for


def _rests_on_the_default(policy: Policy, failed: list[CriterionResult], possible: frozenset[str]) -> bool:
    """Whether criteria failed under a default indication fail only because of it: the order may be
    for an indication the policy does not address (then it has no criteria at all), or some indication
    it may be for is left by every failure (`indications_left`). A criterion of every indication it
    may be for, an exclusion say, fails whatever the indication; so do failures that together close
    every one."""
    return not possible <= policy.indications or bool(indications_left(failed, possible))


def _depends_on_indication(policy: Policy, kind: str, possible: frozenset[str]) -> bool:
    """Whether the policy writes different top-level criteria for this request kind for the
    indications the order may be for, so that an assumed one chose which were judged (Cohere's
    replacement reasons); CMM-210's spasticity criteria, written for spasticity and dystonia alike,
    do not depend on which of them a baclofen pump is for."""
    return any(
        not _written_for_all(spec.indications, possible) and not possible.isdisjoint(spec.indications or ())
        for spec in policy.criteria
        if spec.kinds is None or kind in spec.kinds
    )


def _written_for_all(written_for: frozenset[str] | None, possible: frozenset[str]) -> bool:
    """Whether a criterion written for `written_for` (None: every indication of its policy) is one of
    every indication the order may be for."""
    return written_for is None or possible <= written_for


def _fail_either_way(policy: Policy, failed: list[CriterionResult], other_kind: str, indication: str) -> bool:
    """Whether a failed criterion is one of `other_kind` too (an exclusion of every kind): the order fails
    it whether it is the kind it was read as or the other (a pump in place that may have been removed,
    `in_place_unsure`)."""
    specs = {spec.id: spec for spec in policy.criteria}
    return any(r.id in specs and applies(specs[r.id], other_kind, indication) for r in failed)


def _same_criteria(policy: Policy, kind: str, other_kind: str, indication: str) -> bool:
    """Whether the policy judges `kind` and `other_kind` by the same top-level criteria for `indication`."""
    return all(
        applies(spec, kind, indication) == applies(spec, other_kind, indication) for spec in policy.criteria
    )


def _only_in_place(policy: Policy, kind: str, other_kind: str, indication: str) -> tuple[str, ...]:
    """The top-level criteria of `kind` that `other_kind` has not, for `indication`: those a pump in place
    that may have been removed brings (`Determination.in_place_only`)."""
    return tuple(
        spec.id
        for spec in policy.criteria
        if applies(spec, kind, indication) and not applies(spec, other_kind, indication)
    )


def _read_as_replacement(ctx: EvaluationContext, kind: str) -> str:
    """For an order whose code is not a replacement's but which is read as one (a pump is already in
    place, contract §2), the records showing that pump (`in_place_words`), so the card says why; else ""."""
    if kind != "replacement" or ctx.order.kind == "replacement":
        return ""
    return ctx.memo(("idds-in-place-words",), lambda: in_place_words(ctx.record, ctx.terminology))


def _in_place_unread(record: PatientRecord) -> str:
    """Why no pump found in place (`idds_in_place` finds none) cannot be told to mean none is: records of a
    kind that could show one (classify.IN_PLACE_SOURCES) were read and could not be (`unreadable_in_chart`:
    malformed, or carrying a modifier extension; a Device whose status is none of R4's codes, review29d L6),
    each named as a card names it ("implanted devices: 1 record(s) could not be read"); "" when none was.
    Whether an implant is a first implant or a replacement is then not known, as it is not for a pump found
    that a removal not read may have taken out (`in_place_unsure`): review30c, CMM-210 judged a replacement
    whose pump Device could not be read a first implant, "not covered" on a first implant's criterion. A
    kind not fetched at all (no FHIR server, a search that failed) is left as before: no pump found is
    read as none in place (the lead's decision whether to widen it)."""
    unread = [
        (source, why)
        for source in IN_PLACE_SOURCES
        if (why := record.unavailable.get(source)) is not None and unreadable_in_chart(why)
    ]
    return "; ".join(f"{CHART_PARTS.get(source, source)}: {why}" for source, why in unread)


def evaluate_order(policy: Policy, ctx: EvaluationContext) -> Determination:
    """The Determination of `policy` for the order in `ctx` (pure: the date is in the context)."""
    in_place = ctx.memo(("idds-in-place",), lambda: bool(idds_in_place(ctx.record, ctx.terminology)))
    kind = ctx.memo(
        ("kind", ctx.order.reference), lambda: final_request_kind(ctx.order.kind, ctx.episode_kinds, in_place)
    )
    evident = ctx.memo(("indication-evident", ctx.order.reference), lambda: indication_evident(ctx))
    # while nothing tells it, the default: never a policy's "not addressed" for what is only assumed
    indication = (
        ctx.memo(("indication", ctx.order.reference), lambda: classify_indication(ctx))
        if evident
        else DEFAULT_INDICATION
    )
    ctx = replace(ctx, request_kind=kind, indication=indication)
    family = family_unread(ctx) if evident else None  # the drug tells the family, not which of it
    kind_words = policy.vocabulary.kind_words(kind)  # the criteria's: "Every GEHA criterion for {kind_words}"
    revised = revision(ctx.order.kind, ctx.episode_kinds, in_place)  # a catheter alone beside the pump
    # the kind it would be were the pump found not in place (a removal that could not be read may have taken
    # it out), or were one in place where none was found (records that could show one could not be read):
    # the order is judged as read, and an answer holds only if it holds for both
    other_kind = final_request_kind(ctx.order.kind, ctx.episode_kinds, not in_place)
    unsure = (
        ""
        if other_kind == kind
        else ctx.memo(("idds-in-place-unsure",), lambda: in_place_unsure(ctx.record, ctx.terminology))
        if in_place
        # none found: asked only where the payer's criteria for the other kind differ (an answer the same
        # either way stands, and GEHA's card does not ask it)
        else _in_place_unread(ctx.record)
        if not _same_criteria(policy, kind, other_kind, ctx.indication)
        else ""
    )
    whether = f"whether a pump is {'still' if in_place else 'already'} in place could not be checked"
    base = {
        "policy_id": policy.id,
        "policy_version": policy.version,
        "payer": policy.payer,
        "policy_title": policy.title,
        "order_reference": ctx.order.reference,
        "order_label": ctx.order.label,
        "order_name": ctx.order.name or f"{ctx.order.code.code} {ctx.order.kind.replace('-', ' ')}",
        "billing_code": ctx.order.code.code,
        "request_kind": ctx.request_kind,
        "indication": ctx.indication,
        "indication_evident": evident,
        "indication_unread": not evident and indication_unread(ctx),
        "kind_unread": family.question if family else "",
        "indication_words": family.words if family else policy.vocabulary.indication_words(ctx.indication),
        "kind_words": kind_words,
        "revision_words": policy.vocabulary.revision_words(ctx.order.kind) if revised else "",
        "in_place": _read_as_replacement(ctx, kind),
        "in_place_unsure": unsure,
        "in_place_only": _only_in_place(policy, kind, other_kind, ctx.indication) if unsure else (),
        "review_overdue_since": policy.currency.overdue(ctx.today),
        "deceased": ctx.record.deceased,
        "deceased_on": ctx.record.deceased_on,
    }
    if ctx.indication not in policy.indications:
        reason = policy.not_addressed.get(ctx.indication) or (
            f"{policy.payer}'s policy does not address {policy.vocabulary.indication_words(ctx.indication)}."
        )
        return Determination(**base, outcome=Outcome.NOT_APPLICABLE, explanation=reason)
    if ctx.request_kind not in policy.request_kinds:
        reason = policy.not_addressed.get(ctx.request_kind) or (
            f"{policy.payer}'s policy gives no criteria for {kind_words}."
        )
        no_pump = no_pump_words(ctx.record, ctx.terminology, ctx.order.on_a_pump)
        return Determination(
            **base, outcome=Outcome.NOT_APPLICABLE, explanation=f"{reason} {no_pump}" if no_pump else reason
        )
    # the indications the order may be for: its own, its drug's family (the unread problem list alone
    # could say which of it), or any (nothing told it); unless its own, the criteria were chosen by a
    # default indication, and the branches kept are those of every indication it may be
    chosen = evident and family is None
    possible = frozenset({ctx.indication}) if chosen else family.indications if family else ANY
    branches = None if possible is ANY else possible
    results = ctx.memo(
        (
            "criteria",
            str(id(policy)),
            ctx.request_kind,
            ctx.indication,
            ",".join(sorted(possible)),
            reason_source(ctx) if policy.reads_order_reason else "",  # else orders of other reasons share
        ),
        lambda: _criteria_results(policy, ctx, branches),
    )
    statuses = [r.status for r in results]
    failed = [r for r in results if r.status == Status.NOT_MET]
    not_met = "; ".join(f"{r.label} ({r.finding})" for r in failed)
    if failed and not chosen and _rests_on_the_default(policy, failed, possible):
        outcome = Outcome.INSUFFICIENT
        explanation = (
            f"Not met under {policy.payer}'s criteria for "
            f"{policy.vocabulary.indication_words(ctx.indication)}, judged by default (nothing read tells "
            f"which of its indications this is): {not_met}"
        )
    elif failed and unsure and not _fail_either_way(policy, failed, other_kind, ctx.indication):
        outcome = Outcome.INSUFFICIENT
        explanation = f"Not met as {kind_words}, but {whether} ({unsure}): {not_met}"
    elif failed:
        outcome = Outcome.DOES_NOT_MEET
        explanation = f"Not met: {not_met}"
    elif (
        all(s == Status.MET for s in statuses)
        and unsure
        and not _same_criteria(policy, kind, other_kind, ctx.indication)
    ):
        outcome = Outcome.INSUFFICIENT
        explanation = (
            f"Every {policy.payer} criterion for {kind_words} is met, but {whether} ({unsure}), and "
            f"{policy.payer}'s criteria for "
            f"{policy.vocabulary.kind_words(other_kind)} differ."
        )
    elif all(s == Status.MET for s in statuses) and (
        chosen or (possible <= policy.indications and not _depends_on_indication(policy, kind, possible))
    ):
        outcome = Outcome.MEETS
        explanation = f"Every {policy.payer} criterion for {kind_words} is met with evidence."
    elif all(s == Status.MET for s in statuses):  # met, but the criteria were chosen by an assumption
        outcome = Outcome.INSUFFICIENT
        explanation = (
            f"What the pump is for is not documented, and {policy.payer}'s criteria for {kind_words} "
            "depend on it."
        )
    else:
        missing = [r for r in results if r.status == Status.NOT_DOCUMENTED]
        outcome = Outcome.INSUFFICIENT
        explanation = "Not documented: " + "; ".join(r.label for r in missing)
    return Determination(
        **base,
        outcome=outcome,
        explanation=explanation,
        criteria=results,
        possible_indications=tuple(sorted(possible)),
        policy_indications=tuple(sorted(policy.indications)),
    )
