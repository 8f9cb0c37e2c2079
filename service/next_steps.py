"""Next steps the service can propose as orders, decided from a Determination and the record.

Kept apart from the engine (which judges criteria) and from the cards (which only render): the one
step here is "order the intrathecal trial first", for a permanent implant ordered while neither the
chart nor the other draft orders show any trial, nor is one already ordered in the EHR (an open trial
order, not yet done), and the payer's policy asks for one: not when the policy's criteria are met
another way (CMM-210's cancer-pain trial waiver).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.codes import codings
from service.engine.model import CriterionResult, Determination, Status
from service.fhir.queries import OPEN_TRIAL_STATUSES
from service.orders import OrderCodeTable
from service.policy import Policy
from service.record import PatientRecord

TRIAL_TEST_TYPES = frozenset({"trial-relief", "scale-trial-response"})


NOT_ORDERS = frozenset({"proposal", "plan", "directive"})  # ServiceRequest intents that order nothing


def trials_ordered(
    service_requests: Iterable[Mapping[str, Any]], codes: OrderCodeTable
) -> tuple[Mapping[str, Any], ...]:
    """The trials already ordered among the patient's gathered ServiceRequests (`openTrialOrders`):
    open (active or on-hold; not done, revoked or entered in error, nor an unsigned draft), an order
    (not a proposal or a plan), not one saying the trial is not to be done (`doNotPerform`: review2
    N-4), and coded with a trial code. Checked here again: a server may ignore a search parameter."""
    return tuple(
        r
        for r in service_requests
        if r.get("status") in OPEN_TRIAL_STATUSES
        and r.get("intent") not in NOT_ORDERS
        and r.get("doNotPerform") is not True
        and any(codes.kind_of(c) == "trial" for c in codings(r.get("code")))
    )


def missing_trial(
    d: Determination,
    policy: Policy,
    record: PatientRecord,
    episode_kinds: frozenset[str],
    trial_ordered: bool = False,
) -> tuple[CriterionResult, ...]:
    """The implant's trial criteria when all are undocumented because no trial happened at all, else ().

    Not when the trial is among the draft orders or already ordered in the EHR (`trial_ordered`: not
    yet done, so its result is what is missing, and a second order would duplicate it), not when a
    trial procedure is on the chart, dated or not (then its result is what is missing: the
    instructions say so), and not when the data could not be read.
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


def _asked(result: CriterionResult, trial_ids: frozenset[str]) -> list[CriterionResult]:
    """The trial criteria at or below `result` that the policy still asks for: none below a criterion
    that is met without them (an `any:` of the trial and its waiver, the waiver met)."""
    if result.id in trial_ids:
        return [result]
    if result.status == Status.MET:
        return []
    return [r for child in result.children for r in _asked(child, trial_ids)]
