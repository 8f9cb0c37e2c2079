"""The plain values that cross the three stages of a hook call: gather → decide → respond.

`CallData` is everything the call's I/O produced (orders, devices, prefetch and query results);
`Decisions` is what the pure decision stage made of it (record, routes, determinations, what is
missing). The card renderer takes `Decisions` and nothing else from the call, so each stage can be
tested with values in and values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from service.appointments import UnreadOrder
from service.engine.model import CriterionResult, Determination
from service.facts import ProcedureFact
from service.fhir.gather import GatheredData
from service.fhir.query_pool import FhirReads
from service.hooks.models import HookRequest
from service.modifiers import Carried
from service.next_steps import TrialOrder
from service.orders import BilledLine, DraftOrders, PumpOrder
from service.registry import HookBehaviour
from service.routing import Route


@dataclass(frozen=True)
class CallData:
    """What gather found for one call; `data` is None when nothing needed fetching."""

    request: HookRequest
    behaviour: HookBehaviour
    drafts: DraftOrders  # every order the call is about (context for episodes and infusates)
    in_scope: tuple[dict[str, Any], ...]  # the order resources that are judged
    pump_orders: tuple[PumpOrder, ...]
    unread: tuple[UnreadOrder, ...] = ()
    appointments: tuple[dict[str, Any], ...] = ()  # booked Appointments that carry coverage information
    data: GatheredData | None = None
    episode_kinds: frozenset[str] = frozenset()  # base kinds of every pump order among `drafts`
    # the modifier extensions' urls of each order and Appointment carrying any (service/modifiers.py)
    modifiers: Mapping[str, Carried] = field(default_factory=dict)
    # the orders the answer is about that were read and are not judged (another patient's draft
    # orders: service/call_orders.py), reported on a card or, not being pump orders, not: the call
    # still reads the patient and Coverage for them, and cannot be answered without, as for those judged
    set_aside: tuple[str, ...] = ()
    # the hook's Encounter, as the EHR gave it, where the service annotates it (`HookBehaviour.on_encounter`)
    # and it could be had and sent back (service/encounters.py); never data the call needs
    encounter: dict[str, Any] | None = None
    # how the EHR's FHIR server took the call's bearer token over every query the call made
    # (`FhirUse.token_use`: used, not-used, rejected), CRD metrics' tokenUse
    token_use: str = "not-used"
    # by type, the resources its queries outside the gather answered (`FhirUse.reads`: the open and booked
    # orders, an order's Device, the hook's Encounter), those of the hook's focal resources and those not
    # used: the audit row's `resources` lists them
    fhir_reads: FhirReads = field(default_factory=FhirReads)


@dataclass(frozen=True)
class Unobtainable:
    """Data the call cannot be answered without, neither prefetched nor read (→ 412)."""

    name: str  # as the answer names it: the prefetch key (`coverage`) or the order (`ServiceRequest/1`)
    expression: str  # the request element to fix: `prefetch.coverage`, `context.dispatchedOrders[0]`
    reason: str
    # sent in part: prefetched as page one of several, with no server to read the rest from (the 412
    # says so, in its own sentence: gather's `GatheredData.sent_in_part`), not missing outright
    sent_in_part: bool = False
    # not asked: the call was held back from the EHR's FHIR server (service/fhir/server_share.py), which
    # may well have it: the 412 says to call again in a moment (gather's `GatheredData.not_asked`)
    not_asked: bool = False
    # prefetch only: named at a server's URL, with no fhirServer; a fhirServer would not be read for it,
    # so the 412 asks for prefetch alone (gather's `GatheredData.prefetch_only`)
    prefetch_only: bool = False
    # read, not answerable: the EHR's FHIR server gave it, but as it holds it it cannot be answered for (a
    # Coverage with no id, a period R4 does not allow, or an id another Coverage of the call carries
    # written otherwise: pipeline's `_coverage_unread`); the 412 says it was read, never that it could not be
    read_unanswerable: bool = False


@dataclass(frozen=True)
class Decisions:
    """What the call decided: per (order, policy, payer) Determinations (a policy evaluated once per
    order, each payer routed to it given its copy) and everything cards need beside."""

    call: CallData
    today: date
    routes: tuple[Route, ...] = ()
    determinations: tuple[Determination, ...] = ()
    episode_orders: Mapping[str, str] = field(default_factory=dict)  # other order → pump order it joins
    trial_missing: tuple[tuple[Determination, tuple[CriterionResult, ...]], ...] = ()
    # the trials ordered in the EHR and not yet done (`openTrialOrders`), and per (order, policy) the
    # trial criteria whose result they are to document (the cards name the order: review2 N-9)
    trials_ordered: tuple[TrialOrder, ...] = ()
    awaiting_trial: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    forms: Mapping[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    approvals: bool = False  # automatic approvals may be given in this call
    missing_required: tuple[Unobtainable, ...] = ()  # → 412
    coverage_refused: str | None = None  # why the call's Coverage cannot be answered under CRD 2.2 → 400
    # where the request holds what `coverage_refused` refuses, when it is one element of a prefetched
    # Coverage (`prefetch.coverage.entry[0].resource.period.end`); None: the Coverage as a whole
    refused_at: str | None = None
    # of `episode_orders`, those billed as a line of the pump order they join, which its card names
    billed_lines: tuple[BilledLine, ...] = ()
    # with no trial anywhere, per (order, policy) the criteria whose result a trial is to document: not
    # to be documented before one is done, whether or not the answer proposes it (`trial_missing`)
    trial_not_done: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # the trials under way on the chart (a trial Procedure in progress, on hold or in preparation: no
    # evidence, a trial coming), whose result `awaiting_trial`'s criteria are to document (review21b M2)
    trials_under_way: tuple[ProcedureFact, ...] = ()

    @property
    def request(self) -> HookRequest:
        return self.call.request
