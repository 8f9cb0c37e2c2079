"""Next steps the service can propose as orders, decided from a Determination and the record.

Kept apart from the engine (which judges criteria) and from the cards (which only render): the one
step here is "order the intrathecal trial first", for a permanent implant ordered while neither the
chart nor the other draft orders show any trial, nor is one already ordered in the EHR (an open trial
order, not yet done, written or planned within the order-code table's `trial_ordered_days`) or under
way on the chart (a trial Procedure begun or being prepared, of that time: `trials_under_way`), and the
payer's policy asks for one: not when the policy's criteria are met another way (CMM-210's
cancer-pain trial waiver), nor when the implant is not covered for a reason no trial changes (another
programmable device, an infection: a criterion the policy does not mark as what the trial shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from service.codes import Code
from service.engine.model import CriterionResult, Determination, Status
from service.facts import ProcedureFact
from service.fhir.queries import OPEN_TRIAL_STATUSES, TRIAL_ORDER_KEYS
from service.fhirdates import parse_datetime, period_after, precision
from service.orders import DeviceFetcher, DraftOrders, OrderCodeTable, order_codings
from service.policy import Policy
from service.record import PatientRecord
from service.references import chart_lookup
from service.terminology import Terminology

TRIAL_TEST_TYPES = frozenset({"trial-relief", "scale-trial-response"})


NOT_ORDERS = frozenset({"proposal", "plan", "directive"})  # request intents that order nothing
NO_DRAFTS = DraftOrders({})  # a chart's order names none of the call's drafts


@dataclass(frozen=True)
class TrialOrder:
    """A trial ordered in the EHR and not yet done (`trials_ordered`): the order, and the code it was
    recognised by as a trial (`trial_code`), the one a card names it by."""

    resource: Mapping[str, Any]
    code: Code


def trial_code(
    order: Mapping[str, Any], codes: OrderCodeTable, device: DeviceFetcher | None = None
) -> Code | None:
    """The coding of an order that the order-code table calls a trial (`codes.kind_of`): the first
    such; None when none is. The one place that tells which of an order's codings is its trial code:
    an order coded SNOMED first and CPT 62323 second is a trial by 62323, and is named so (session
    review s18 R-3). Its codings are read where a draft order's are (`orders.order_codings`, contract
    §2): a ServiceRequest's `code`, a DeviceRequest's `codeCodeableConcept` or else the `type` of the
    Device its `codeReference` names, contained in it or given by `device` (the chart's; never read
    from a server)."""
    return next((c for _, c in order_codings(order, NO_DRAFTS, device) if codes.kind_of(c) == "trial"), None)


def trials_ordered(
    resources: Mapping[str, Iterable[Mapping[str, Any]]],
    codes: OrderCodeTable,
    today: date,
    server: str | None = None,
) -> tuple[TrialOrder, ...]:
    """The trials already ordered among the patient's gathered orders (`openTrialOrders`, a ServiceRequest;
    `openTrialDeviceOrders`, a DeviceRequest such as C2626's temporary pump): open (active or on-hold;
    not done, revoked or entered in error, nor an unsigned draft), an order (not a proposal or a plan),
    not one saying the trial is not to be done (`doNotPerform`), coded with a trial code (review2 N-4),
    and not left behind: written or planned within `codes.trial_ordered_days` of `today` (an order
    giving no date counts). Checked here again: a server may ignore a search parameter, and the device
    orders are searched of any code (queries.py `trial_order_templates`). A device order coded by its
    Device is read by the Device as the chart holds it (read from the call's FHIR `server`; one written
    as another server's URL is none of it, service/references.py)."""
    since = today - timedelta(days=codes.trial_ordered_days)
    device = chart_lookup(resources.get("Device", ()), server)
    return tuple(
        TrialOrder(r, code)
        for rtype in TRIAL_ORDER_KEYS.values()
        for r in resources.get(rtype, ())
        if r.get("resourceType") == rtype
        and r.get("status") in OPEN_TRIAL_STATUSES
        and r.get("intent") not in NOT_ORDERS
        and r.get("doNotPerform") is not True
        and (code := trial_code(r, codes, device)) is not None
        and ((latest := last_day(r)) is None or latest >= since)
    )


def trials_under_way(record: PatientRecord, codes: OrderCodeTable, today: date) -> tuple[ProcedureFact, ...]:
    """The trials under way on the chart (`PatientRecord.trials_under_way`: a trial Procedure in progress,
    on hold or in preparation), not left behind: dated within `codes.trial_ordered_days` of `today`, as an
    open trial order is (`trials_ordered`: a days-long trial still "in progress" months on is a record
    never closed, not a trial coming); one giving no date counts. No evidence that a criterion is met
    (contract §3 counts a completed Procedure): a trial coming, whose result is what is missing, and
    beside which a second would duplicate it (review21b M2)."""
    since = today - timedelta(days=codes.trial_ordered_days)
    return tuple(p for p in record.trials_under_way if p.performed is None or p.performed.date() >= since)


def last_day(order: Mapping[str, Any]) -> date | None:
    """The latest day an order names as when it was written or is to be done (`authoredOn`, its
    `occurrence` dateTime, period or timing); a month or a year written alone stands for its last day.
    None when it names none."""
    return max(_days(order), default=None)


def _days(order: Mapping[str, Any]) -> Iterator[date]:
    period = order.get("occurrencePeriod")
    timing = order.get("occurrenceTiming")
    written: list[Any] = [order.get("authoredOn"), order.get("occurrenceDateTime")]
    if isinstance(period, Mapping):
        written += [period.get("start"), period.get("end")]
    if isinstance(timing, Mapping):
        events = timing.get("event")
        written += events if isinstance(events, list) else []
        repeat = timing.get("repeat")
        bounds = repeat.get("boundsPeriod") if isinstance(repeat, Mapping) else None
        if isinstance(bounds, Mapping):
            written += [bounds.get("start"), bounds.get("end")]
    for value in written:
        moment = parse_datetime(value)
        if moment is not None:
            written_to = precision(value)
            day = moment.date()
            yield period_after(day, written_to) - timedelta(days=1) if written_to != "time" else day


def missing_trial(
    d: Determination,
    policy: Policy,
    record: PatientRecord,
    episode_kinds: frozenset[str],
    trial_ordered: bool = False,
) -> tuple[CriterionResult, ...]:
    """The implant's trial criteria when all are undocumented because no trial happened at all, else ().

    Not when the trial is among the draft orders or already ordered in the EHR or under way on the chart
    (`trial_ordered`: not yet done, so its result is what is missing, and a second order would duplicate
    it), not when a completed trial procedure is on the chart, dated or not (then its result is what is
    missing: the instructions say so), and not when the data could not be read.
    """
    if d.request_kind != "permanent-implant" or "trial" in episode_kinds or trial_ordered:
        return ()
    if (
        record.trial.procedure is not None
        or record.trial.explicit is not None
        or record.trial.undated is not None
    ):
        return ()
    trial_ids = frozenset(i for t in TRIAL_TEST_TYPES for i in policy.ids_by_test_type.get(t, ()))
    results = tuple(r for top in d.criteria for r in _asked(top, trial_ids))
    if all(r.status == Status.NOT_DOCUMENTED and r.unchecked_reason is None for r in results):
        return results
    return ()


def trial_may_cover(d: Determination, policy: Policy) -> bool:
    """Whether a trial could make the implant covered: no criterion fails that the trial does not answer
    (another programmable device, an infection: the policy marks what the trial shows, `trial_result`).
    Only then is the trial proposed; a trial already ordered is still awaited whatever else fails."""
    return all(_trial_answers(top, policy.trial_answers) for top in d.criteria)


def trials_accepted(
    missing: Iterable[tuple[Determination, Sequence[CriterionResult]]],
    policies: Mapping[str, Policy],
    terminology: Terminology,
    trials: Sequence[Code],
) -> tuple[Code, ...]:
    """Of the `trials` the order-code table proposes, those each payer's trial criteria still asked
    would accept: a criterion the trial answers (`trial_result`) that asks for a trial procedure of
    certain codes (a `trials` test of value sets: KPWA's and NCD 280.14's temporary catheter, CPT
    62324-62327) rules out a trial outside them (62322, a single shot, would not meet it)."""
    accepted = tuple(trials)
    for d, _ in missing:
        policy = policies[d.policy_id]
        asked = trial_shows(d, policy)
        for spec in policy.all_criteria():
            for test in spec.tests if spec.id in asked else ():
                if test.params.get("trials") and test.params.get("valuesets"):
                    sets = [terminology[v] for v in test.params["valuesets"]]
                    accepted = tuple(t for t in accepted if any(vs.matches(t) for vs in sets))
    return accepted


def trial_shows(d: Determination, policy: Policy) -> frozenset[str]:
    """The ids of `d`'s criteria not met that the trial answers (`trial_result`): its relief, and as
    much its side effects, the function it brought, the patient's acceptance. Each is to be documented
    once the trial is done, not before (cards/response.py)."""
    return frozenset(r.id for top in d.criteria for r in top.walk() if r.status != Status.MET) & (
        policy.trial_answers
    )


def _trial_answers(result: CriterionResult, answered: frozenset[str]) -> bool:
    """Whether a trial could leave `result` not "not met": it is not, or the policy marks it as what
    the trial shows (`trial_result`), or, a group, each of its sub-criteria that fail could be so (one,
    of an either/or)."""
    if result.status != Status.NOT_MET or result.id in answered:
        return True
    failing = [child for child in result.children if child.status == Status.NOT_MET]
    if not failing:
        return False
    if result.either_or:
        return any(_trial_answers(child, answered) for child in failing)
    return all(_trial_answers(child, answered) for child in failing)


def _asked(result: CriterionResult, trial_ids: frozenset[str]) -> list[CriterionResult]:
    """The trial criteria at or below `result` that the policy still asks for: none below a criterion
    that is met without them (an `any:` of the trial and its waiver, the waiver met)."""
    if result.id in trial_ids:
        return [result]
    if result.status == Status.MET:
        return []
    return [r for child in result.children for r in _asked(child, trial_ids)]
