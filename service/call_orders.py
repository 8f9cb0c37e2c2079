"""The orders a hook call is about, read from wherever its service finds them.

The registry says where each service's orders come from (`OrderSource`); this module turns that
into the same two values for every hook: the Bundle of orders the call judges, and the orders it
could not use (with the reason, so the answer can say what it could not check). All reads go
through the call's FHIR client, whose deadline bounds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from service.appointments import (
    ANOTHER_PATIENTS,
    CANCELLED,
    WHOSE_UNTOLD,
    UnreadOrder,
    appointment_orders,
    at_hand_when_set_aside,
    for_patient,
    not_to_judge,
    not_to_judge_as_held,
)
from service.fhir.client import FhirClient
from service.fhir.prefetch import PrefetchState, interpret, render
from service.fhir.queries import Query, instead_of_pages, query_from_url
from service.fhir.query_pool import FhirUse, QueryOutcome, QueryPool, log_failures
from service.hooks.models import HookRequest, prefetched_at
from service.orders import ORDER_TYPE_WORDS, ORDER_TYPES, DraftOrders
from service.references import (
    Resolve,
    belongs_to_patient,
    names_another_patient,
    names_the_patient,
    patient_link,
)
from service.registry import HookBehaviour, OrderSource
from service.shapes import dicts, reference_of
from service.wording import listing

# what the open-order searches ask for, checked again on what comes back: a server may ignore `status`
OPEN_ORDER_STATUSES = ("draft", "active")
OPEN_ORDERS = "the patient's open orders"

OrdersOfCall = tuple[dict[str, Any], list[UnreadOrder]]


@dataclass(frozen=True)
class OrderSearch:
    """What finding a call's orders needs: where its service finds them (`behaviour`), the call,
    its FHIR client (None: no server named) and the worker pool, within the call's deadline; each of
    its queries counted where every query of the call is (`use`)."""

    behaviour: HookBehaviour
    request: HookRequest
    client: FhirClient | None
    pool: QueryPool
    deadline: float
    use: FhirUse


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _within(bundle: Any, server: str | None) -> Resolve | None:
    """What a reference written in a prefetched Bundle's resource names in that Bundle (`DraftOrders.get`:
    a `urn:uuid:` fullUrl too), as a draft's is read in the call's own Bundle; None for no Bundle. An
    order whose subject so names another Patient is another patient's (review29e: the encounter hooks'
    open orders and a prefetched dispatched order were judged for the call's patient). The Bundle is
    indexed only when a reference is to be found in it: nearly every order names its Patient plainly."""
    if not isinstance(bundle, dict) or "entry" not in bundle:
        return None
    indexed: list[DraftOrders] = []

    def find(reference: str) -> Mapping[str, Any] | None:
        if not indexed:
            indexed.append(DraftOrders(bundle, server))
        return indexed[0].get(reference)

    return find


def prefetched_resources(prefetch: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource the EHR prefetched, by `Type/id` (Bundles opened; `prefetched_at`)."""
    return {reference: held[0] for reference, held in prefetched_at(prefetch).items()}


def _asked(
    call: OrderSearch, client: FhirClient, queries: list[Query], focal: bool = False
) -> dict[str, QueryOutcome]:
    """The queries' outcomes, each counted as the gather's are (`FhirUse.count`: the FHIR query metric,
    the token outcome; `focal`: reads of the hook's focal orders, the dispatched ones), with one warning
    per reason they failed for."""
    outcomes = call.pool.run(client, queries, call.deadline)
    failed: dict[str, list[str]] = {}
    for query in queries:
        outcome = outcomes[query.key]
        call.use.count(query, outcome, focal=focal)
        if outcome.error is not None:
            failed.setdefault(outcome.error, []).append(query.key)
    log_failures(failed)
    return outcomes


def _dispatched(call: OrderSearch) -> OrdersOfCall:
    """order-dispatch: each dispatched order from prefetch, else read from the EHR; one that can be
    neither is needed data (`needed_at`, 412), one the EHR's FHIR server fails to give is reported."""
    request, client = call.request, call.client
    patient = request.context.patient_id
    prefetched = request.context.dispatched_prefetched
    found: list[dict[str, Any]] = []
    unread: list[UnreadOrder] = []
    to_read: list[str] = []
    for reference in request.context.dispatched:
        if reference in prefetched:
            found.append(prefetched[reference])
        else:
            to_read.append(reference)
    if to_read and client is None:  # neither prefetched nor readable: CDS Hooks answers 412
        why = "the call gave no FHIR server to read it from"
        for r in to_read:
            where = request.context.dispatched_at.get(r, "context.dispatchedOrders")
            unread.append(UnreadOrder(r, r, why, needed_at=where))
    elif to_read:
        queries = [Query(r, r.split("/")[0], reference=r) for r in to_read]
        for reference, outcome in _asked(call, client, queries, focal=True).items():
            order = outcome.resources[0] if outcome.resources else None
            if outcome.error is not None:
                why = f"the EHR's FHIR server did not return it ({outcome.error})"
                unread.append(UnreadOrder(reference, reference, why))
            elif order is None or reference_of(order) != reference:
                unread.append(UnreadOrder(reference, reference, "the EHR's FHIR server does not have it"))
            else:
                found.append(order)
    kept = []
    held = prefetched_at(request.prefetch, set(prefetched)) if prefetched else {}
    for order in found:
        reference = reference_of(order)
        from_server = reference not in prefetched  # the prefetched ones were checked (a 400 when not valid)
        within = (
            None if from_server else _within(request.prefetch.get(held[reference][1]), request.fhir.server)
        )
        set_aside = not_to_judge(order, patient, request.fhir.server, within, read=from_server)
        if set_aside is None:
            kept.append(order)
            continue
        why, not_used = set_aside
        unread.append(
            UnreadOrder(reference, reference, why, at_hand_when_set_aside(order, not_used), not_used=not_used)
        )
    return _bundle(kept), unread


def _chart(call: OrderSearch) -> OrdersOfCall:
    """encounter-start/-discharge: the patient's open (draft or active) orders in the EHR, from the
    EHR's prefetch where it gave them (the service's `order_prefetch`), else searched."""
    request, client = call.request, call.client
    patient = request.context.patient_id
    # (an order, whether the EHR gave it as the patient's: prefetched, or searched by a server that kept
    # to the search's `patient`; one that ignored it answers every patient's, review28a)
    # (and what a reference in it names in the Bundle it was prefetched in, `_within`)
    candidates: list[tuple[dict[str, Any], bool, Resolve | None]] = []
    # the searches' answers, counted as fetched (`FhirUse.count`): those not used are noted (`not_used`)
    searched: set[int] = set()
    server = request.fhir.server
    pages: dict[str, Resolve | None] = {}
    queries = []
    failures: list[str] = []
    unsearched: list[str] = []
    for key, template in call.behaviour.order_prefetch:
        given = interpret(request.prefetch, key)
        rendered = render(template, request)
        if given.has_more_pages and client is not None and rendered is not None:
            # page one of several: the rest is what the key's own search gives (gather's mechanism)
            queries.append(instead_of_pages(query_from_url(key, rendered), given.resources))
            pages[key] = _within(given.bundle, server)
        elif given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
            within = _within(given.bundle, server)
            candidates += [(r, True, within) for r in given.resources]
            kind = query_from_url(key, template).resource_type
            if given.has_more_pages:  # page one of several: the orders on the others are unknown
                failures.append(
                    f"prefetch '{key}' has more pages and the call gave no FHIR server to read them"
                )
                unsearched.append(kind)
        elif client is not None and rendered is not None:
            queries.append(query_from_url(key, rendered))
        elif given.state is PrefetchState.FAILED or client is None:  # not given, and none can be made
            failures.append(given.reason or "not prefetched, and the call gave no FHIR server to search")
            unsearched.append(query_from_url(key, template).resource_type)
    if client is not None and queries:
        answered = _asked(call, client, queries)
        found_by_search = [(r, not o.scope_ignored, None) for o in answered.values() for r in o.resources]
        searched = {id(r) for r, _, _ in found_by_search}
        candidates += found_by_search
        candidates += [
            (r, True, pages.get(q.key))
            for q in queries
            if q.instead_of and answered[q.key].error
            for r in q.instead_of
        ]
        failures += [outcome.error for outcome in answered.values() if outcome.error]
        unsearched += [q.resource_type for q in queries if answered[q.key].error]
    failures = sorted(set(failures))
    found, set_aside = [], []
    for r, given_as_the_patients, within in candidates:
        if (
            r.get("resourceType") not in ORDER_TYPES
            or r.get("status") not in OPEN_ORDER_STATUSES
            or names_another_patient(r, patient, server, within)
            or (not given_as_the_patients and not names_the_patient(r, patient, server))
        ):  # no open order; another patient's (its link valid or not: `"display": ""` beside it), or, from
            # a server that ignored `patient`, anyone's but for naming this patient (review28a): not theirs
            if id(r) in searched:  # fetched, not used: the audit row's `kept` (review30i c)
                call.use.not_used(r)
            continue
        # the EHR gave it as the patient's (prefetched, or searched by a server that kept to `patient`), or it
        # names them: it is the EHR's data, as a dispatched order read from its FHIR server is: one not valid
        # (`requester: null`) is not judged and sent back with it (review27c), nor is one whose patient link
        # is not valid (`subject: null`, none at all, or an array naming this patient and another: whose it
        # is cannot be told), which was dropped without a word (review27c, review28e, review29b LOW 2)
        aside = not_to_judge_as_held(r, read=True)
        if aside is None and not (  # `belongs_to_patient` first: its fast path, `Patient/<id>` as written
            belongs_to_patient(r, patient, False, server) or names_the_patient(r, patient, server, within)
        ):
            # a valid link naming no Patient this service can tell (a Group, an identifier or a name alone, a
            # contained Patient, an unresolved `urn:uuid:`): R4's `patient` search parameter is
            # `subject.where(resolve() is Patient)`, so the EHR did not find it as this patient's, whatever it
            # said; judged for them since 8ec4336, and left out without a word before (review29e): reported
            link = _link_name(r)
            aside = (
                f"it names no patient by its {link}, so whose order it is cannot be told",
                WHOSE_UNTOLD,
            )
        if aside is None:
            found.append(r)
        else:
            reference = reference_of(r)
            set_aside.append(UnreadOrder(reference, reference, aside[0], r, not_used=aside[1], open=True))
    # A failed search is not "no open orders": the answer says what could not be checked.
    # Name the orders not searched when the others were (their orders are judged on this answer).
    partly = 0 < len(unsearched) < len(call.behaviour.order_prefetch)
    what = OPEN_ORDERS
    if partly:
        what = f"the patient's open {listing([ORDER_TYPE_WORDS[t] for t in unsearched])}"
    reason = "; ".join(failures)
    unread = [UnreadOrder(what, what, reason, searched=True, others_searched=partly)] if failures else []
    return _bundle(found), unread + set_aside


def _link_name(order: Mapping[str, Any]) -> str:
    """The element an order's patient link is held in (`patient_link`: subject, patient ...)."""
    held = patient_link(order)
    return held[0] if held is not None else "subject"


def _appointments(call: OrderSearch) -> OrdersOfCall:
    request = call.request
    assert request.context.appointments is not None  # validated for appointment-book
    return appointment_orders(
        request.context.appointments,
        request.context.patient_id,
        partial(call.use.read, call.client, focal=True) if call.client else None,
        request.fhir.server,
    )


def _draft_orders(call: OrderSearch) -> OrdersOfCall:
    """order-select/-sign: the call's draft orders, but for those whose subject names another patient
    than the call's (ehr20 M4): not judged against this patient's chart and Coverage, and given no
    coverage information. Those in scope (every draft at order-sign, the selected ones at order-select)
    are reported, to be checked by the clinician; an unselected one is left out without a word."""
    request = call.request
    bundle = request.context.draft_orders
    drafts = DraftOrders(bundle, request.fhir.server)
    patient, server = request.context.patient_id, request.fhir.server
    others = [r for r in drafts.in_scope(None) if names_another_patient(r, patient, server, drafts.get)]
    if not others:
        return bundle, []
    selected = {id(r) for r in drafts.in_scope(request.context.selections)}
    why = "it is an order for another patient"
    unread = [
        UnreadOrder(reference_of(r), reference_of(r), why, r, not_used=ANOTHER_PATIENTS, draft=True)
        for r in others
        if id(r) in selected
    ]
    left_out = {id(r) for r in others}
    kept = [e for e in dicts(bundle.get("entry")) if id(e.get("resource")) not in left_out]
    return {**bundle, "entry": kept}, unread


Reader = Callable[[OrderSearch], OrdersOfCall]
READERS: dict[OrderSource, Reader] = {
    OrderSource.DRAFT_ORDERS: _draft_orders,
    OrderSource.SELECTIONS: _draft_orders,
    OrderSource.APPOINTMENTS: _appointments,
    OrderSource.DISPATCHED: _dispatched,
    OrderSource.CHART: _chart,
}


def orders_of_call(call: OrderSearch) -> OrdersOfCall:
    """(the Bundle of the orders the call judges, the orders it could not use), found where the
    service's behaviour says its orders come from."""
    return READERS[call.behaviour.orders_from](call)


def booked_appointments(request: HookRequest) -> list[dict[str, Any]]:
    """appointment-book: the Appointments being booked for this patient (not cancelled)."""
    bundle = request.context.appointments or {}
    in_call = DraftOrders(bundle, request.fhir.server)
    return [
        a
        for e in dicts(bundle.get("entry"))
        if isinstance(a := e.get("resource"), dict)
        and a.get("resourceType") == "Appointment"
        and a.get("status") not in CANCELLED
        and for_patient(a, request.context.patient_id, request.fhir.server, in_call.get)
    ]
