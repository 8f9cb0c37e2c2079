"""One hook call in three stages with plain values between them: gather → decide → respond.

`gather` does all the I/O under the call's one deadline (the orders, wherever the service finds
them; devices; prefetch and FHIR queries) and returns `CallData`. `decide` is pure: record,
routing, the engine, and what is missing, as `Decisions`. `respond` (in `cards/`) chooses and
renders the cards and the coverage-information actions. What a service does differently is read
from its registry entry, never from the hook's name. A clinical query that fails never fails the
hook: the affected resource types are marked unavailable and the criteria that need them say
"could not be checked". Only when the Patient or Coverage can be had neither from prefetch nor
from the FHIR server, or none of the dispatched orders from prefetch or a FHIR server the call
names, does the call end in 412 (CDS Hooks 2.0, CRD §found-32).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from cards.coverage_information import HookCall
from cards.items import to_document
from cards.response import BaseUrl, respond
from service.appointments import UnreadOrder, based_on
from service.billed_lines import billed_lines, may_be_billed
from service.call import CallData, Decisions, Unobtainable
from service.call_day import midday
from service.call_orders import OrderSearch, booked_appointments, orders_of_call
from service.catalog import Catalog
from service.compute_turns import ComputeTurns
from service.encounters import hook_encounter
from service.engine.context import EvaluationContext
from service.engine.evaluate import evaluate_order
from service.engine.model import Determination, Outcome
from service.errors import operation_outcome
from service.fhir.cache import CacheScope, PatientDataCache, scope_of
from service.fhir.client import FhirClient, SessionPool
from service.fhir.gather import DataGatherer, GatheredData
from service.fhir.queries import policy_observation_codes
from service.fhir.query_pool import FhirReads, FhirUse
from service.fhir.server_share import ServerShare
from service.hooks.models import HookRequest, held_at
from service.infusates import drug_resolver, for_a_pump, infusates
from service.modifiers import Carried, Resolve, not_understood, order_modifiers
from service.next_steps import missing_trial, trial_may_cover, trial_shows, trials_ordered, trials_under_way
from service.observability import observe_fhir_held_back
from service.order_devices import DeviceReader
from service.orders import DraftOrders, PumpOrder, named_device, recognise
from service.questionnaires import Publications, publications
from service.record import build_record
from service.references import parse_reference
from service.registry import CallOptions, HookBehaviour, ServiceDefinition
from service.routing import Route, coverage_not_answered, route_coverages, unanswerable_of
from service.settings import FhirSettings
from service.shapes import reference_of
from service.version import service_version
from service.vocabulary import Vocabulary
from service.wording import listing

ClientFactory = Callable[[HookRequest, float], FhirClient | None]


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    determinations: tuple[Determination, ...] = ()
    status: int = 200
    data: GatheredData | None = None
    routes: tuple[Route, ...] = ()  # each active Coverage of `data` and the payer and policy it went to
    # the orders (and booked Appointments, the hook's Encounter) given coverage information, as they
    # came: the audit trail indexes what they carried and the answer kept (service/audit_entry.py)
    judged_orders: tuple[dict[str, Any], ...] = ()
    # each order whose coverage information is a pump order's judgement (the pump's drug, a drug order
    # billed with a refill) → that pump order: the audit record ties the two (audit20 M5)
    judged_as: Mapping[str, str] = field(default_factory=dict)
    # the call that issued the answer's assertions, with each it built (`HookCall.issued`): the audit
    # record takes as this call's those it built, and none when there is none (review32d H1)
    issuer: HookCall | None = None
    # how the EHR's FHIR server took the bearer token over every query the call made (`CallData.token_use`),
    # whatever the answer: the audit's token outcome (CRD metrics' tokenUse)
    token_use: str = "not-used"
    # what its queries outside the gather answered, by type (`CallData.fhir_reads`): the audit row lists it
    fhir_reads: FhirReads = field(default_factory=FhirReads)


@dataclass(frozen=True)
class HookEnvironment:
    """What every call shares: compiled policies, the query worker pool, how to reach the EHR."""

    catalog: Catalog
    gatherer: DataGatherer
    client_factory: ClientFactory
    deadline_seconds: float
    published: Publications
    only_orders_with_rules: bool = False  # behind a payer's CRD gateway: answer pump orders only
    # the longest the hook's Encounter, never needed data, is waited for (`fhir.encounter_read_seconds`)
    encounter_read_seconds: float = FhirSettings.encounter_read_seconds
    turns: ComputeTurns = field(default_factory=ComputeTurns)  # which of the process's calls computes
    server_share: ServerShare = field(default_factory=lambda: ServerShare(None, 0.0))


def default_client_factory(settings: FhirSettings, sessions: SessionPool | None = None) -> ClientFactory:
    pool = sessions or SessionPool()

    def make(request: HookRequest, deadline: float) -> FhirClient | None:
        if not request.fhir.usable or request.fhir.server is None:
            return None
        return FhirClient(
            request.fhir.server,
            request.fhir.access_token,
            settings.timeout_seconds,
            deadline=deadline,
            sessions=pool,
            page_size=settings.page_size,
            max_pages=settings.max_pages,
            max_response_bytes=settings.max_response_bytes,
            max_call_bytes=settings.max_call_bytes,
            batch=settings.batch,
        )

    return make


def build_environment(
    settings: FhirSettings,
    catalog: Catalog,
    executor: Executor | None,
    client_factory: ClientFactory | None = None,
    only_orders_with_rules: bool = False,
    cache: PatientDataCache | None = None,
    request_threads: int | None = None,
) -> HookEnvironment:
    """`request_threads`: how many threads a worker answers requests with (None: not known)."""
    codes = policy_observation_codes(catalog.terminology)
    per_call, per_server = settings.max_concurrent_per_call, settings.max_concurrent_per_server
    return HookEnvironment(
        catalog,
        DataGatherer(
            executor,
            codes,
            per_call,
            per_server,
            cache,
            catalog.terminology,
            catalog.order_codes.proposed_trial_codes(),
            catalog.payers,
        ),
        client_factory or default_client_factory(settings),
        settings.deadline_seconds,
        publications(catalog, service_version()),
        only_orders_with_rules,
        settings.encounter_read_seconds,
        server_share=ServerShare(request_threads, settings.share_wait_seconds),
    )


def call_options(request: HookRequest) -> CallOptions:
    """The call's `davinci-crd.configuration` options (the declared defaults where absent or malformed)."""
    return CallOptions.of(request.extension.get("davinci-crd.configuration"))


def gather(
    request: HookRequest,
    service: ServiceDefinition,
    env: HookEnvironment,
    deadline: float,
    today: date,
    caller: str | None = None,
    now: datetime | None = None,
    use: FhirUse | None = None,
) -> CallData:
    """All of the call's I/O, as of `today` (at `now`, the call's instant; None: midday of `today`): its
    orders (and their devices), then the patient's data when needed; the patient's data from the cache
    for the trusted client `caller` (its `iss`) where it has it. The FHIR server is asked only as its
    share of the worker's threads allows (ServerShare). Every query of the call is counted in `use`
    (None: its own), whatever asks it."""
    client = env.client_factory(request, deadline)
    use = FhirUse() if use is None else use
    use.watch(client)  # the token `used` as soon as a request carrying it goes (review30g L1)
    with env.server_share.admitted(client):
        call = _gathered(request, service, env, client, deadline, today, caller, now, use)
    if client is not None and client.refused:
        observe_fhir_held_back()
    return replace(call, token_use=use.token_use, fhir_reads=use.reads)


def _gathered(
    request: HookRequest,
    service: ServiceDefinition,
    env: HookEnvironment,
    client: FhirClient | None,
    deadline: float,
    today: date,
    caller: str | None,
    now: datetime | None,
    use: FhirUse,
) -> CallData:
    behaviour = service.behaviour
    bundle, unread = orders_of_call(OrderSearch(behaviour, request, client, env.gatherer.pool, deadline, use))
    not_used = tuple(u.order for u in unread if u.not_used is not None)  # read, not to be judged
    drafts = DraftOrders(bundle, request.fhir.server)  # the call's drafts, on its FHIR server
    in_scope = drafts.in_scope(request.context.selections, appointments=behaviour.on_appointments)
    codes = env.catalog.order_codes
    fetch_device = DeviceReader(
        client, request.context.patient_id, request.fhir.server, request.prefetch, use
    )
    pump = [o for r in in_scope if (o := recognise(r, drafts, codes, fetch_device)) is not None]
    if not pump and behaviour.every_order and not env.only_orders_with_rules and _drug_selected(in_scope):
        # a drug order selected without its pump: it may be the pump's drug, whose coverage is the
        # episode's (as at order-sign), so the pump orders among the drafts are judged for it (`decide`)
        pump = [o for r in drafts.resources if (o := recognise(r, drafts, codes, fetch_device)) is not None]
    drugs = [r for r in drafts.resources if r.get("resourceType") == "MedicationRequest"]  # the pump's?
    through = _read_through(drafts, fetch_device)  # what an order is read through (service/modifiers.py)
    booked = booked_appointments(request) if behaviour.on_appointments else []
    # (the pump's drug: service/infusates.py; a booking: what is booked, `_modified_unread`)
    modifiers = _modifiers_of([*in_scope, *(o.resource for o in pump), *drugs, *booked], through)
    modified = _modified_unread(pump, modifiers, _bookings(request, booked))
    held_out = {u.order for u in modified}
    pump = [o for o in pump if o.reference not in held_out]
    unread += _devices_unread(in_scope, pump, drafts, fetch_device)
    episode = frozenset(o.kind for o in pump)
    if pump:  # the episode's other pump orders (order-select's unselected drafts), their Devices read
        chosen = {id(r) for r in in_scope}  # only when a pump order is judged: nothing else needs them
        others = (recognise(r, drafts, codes, fetch_device) for r in drafts.resources if id(r) not in chosen)
        episode |= {o.kind for o in others if o is not None}
    # an order at hand the call cannot use (a draft, dispatched or booked order of another patient) is
    # reported when it is one this service has rules for; a booked one not reported is kept, unreported,
    # for its Appointment's coverage information to say why it was not checked
    terminology = env.catalog.terminology
    kept: list[UnreadOrder] = []
    for u in unread:
        if u.resource is None or for_a_pump(u.resource, drafts, codes, terminology, fetch_device):
            kept.append(u)
        elif u.booked:
            kept.append(replace(u, reported=False))
    unread = kept + modified
    appointments: list[dict[str, Any]] = []
    set_aside: tuple[str, ...] = ()  # behind a gateway: only a pump order's, which is reported (`unread`)
    if behaviour.every_order and not env.only_orders_with_rules:
        appointments, set_aside = booked, not_used
    else:
        pump_refs = {o.reference for o in pump} | held_out
        in_scope = [r for r in in_scope if reference_of(r) in pump_refs]
    # the hook's Encounter, where the service annotates it: only for an answer carrying coverage information,
    # and not behind a payer's gateway, which answers what this service holds no rules for (the encounter).
    # It is never data the call needs, so it is read after what is (its time and bytes are theirs first),
    # and before the Patient and Coverage only when it is all the call is about (they are read for it)
    annotated = (
        behaviour.annotates_encounter(env.only_orders_with_rules) and call_options(request).coverage_info
    )
    call = CallData(
        request,
        behaviour,
        drafts,
        tuple(in_scope),
        tuple(pump),
        tuple(unread),
        tuple(appointments),
        episode_kinds=episode,
        modifiers=modifiers,
        set_aside=set_aside,
    )
    about_orders = _orders_at_hand(call)
    pool, budget = env.gatherer.pool, env.encounter_read_seconds
    encounter = None
    if annotated and not about_orders:
        encounter = hook_encounter(request, client, pool, deadline, budget, use)
        call = replace(call, encounter=encounter)
    scope = scope_of(request, caller)
    if not (pump or about_orders or encounter is not None):
        return call
    data = env.gatherer.gather(
        request,
        service.prefetch,
        client,
        deadline,
        today=today,
        now=now,
        clinical=bool(pump),
        scope=scope,
        drafts=drafts.resources if pump else (),
        trial_orders=bool(pump) and _may_propose_trial(behaviour, episode),
        use=use,
        # what only a pump order's judgement reads (the Patient) is required where one is judged, or may
        # be: an order that could not be read at all (no `resource`: not known not to be a pump order)
        required=service.required_prefetch(bool(pump) or any(u.resource is None for u in unread)),
    )
    if annotated and about_orders:
        encounter = hook_encounter(request, client, pool, deadline, budget, use)
    if data.resources.get("Medication"):  # a drug order's Medication may be the chart's: read through too
        chart_through = _read_through(drafts, fetch_device, data.resources, request.fhir.server)
        modifiers = modifiers | _modifiers_of(drugs, chart_through)
    return replace(call, data=data, modifiers=modifiers, encounter=encounter)


def _may_propose_trial(behaviour: HookBehaviour, episode: frozenset[str]) -> bool:
    """Whether the answer may propose the trial before the implant (service/next_steps.py), and so
    needs the trials already ordered: where the user places the order, for an implant ordered with
    no trial among the call's orders."""
    return behaviour.places_order and "permanent-implant" in episode and "trial" not in episode


def _drug_selected(in_scope: list[dict[str, Any]]) -> bool:
    return any(r.get("resourceType") == "MedicationRequest" for r in in_scope)


def _modifiers_of(resources: list[dict[str, Any]], through: Resolve) -> dict[str, Carried]:
    """The modifier extensions of each resource carrying any, by reference, those of what it is read
    through (found by `through`) among them, by what holds them: each walked once."""
    walked = {id(r): r for r in resources}.values()
    return {reference_of(r): carried for r in walked if (carried := order_modifiers(r, through))}


def _read_through(
    drafts: DraftOrders,
    devices: DeviceReader,
    chart: Mapping[str, list[Any]] | None = None,
    server: str | None = None,
) -> Resolve:
    """What an order of the call names and is read through (service/modifiers.py `READ_THROUGH`), found
    where its reader finds it: among the call's orders; a Device by the call's `devices` reader
    (prefetch, else the FHIR server), as `orders.device_lookup` reads it; a drug's Medication among
    the `chart`'s too (read from the call's FHIR `server`), once gathered (`infusates.drug_resolver`)."""
    drugs = drug_resolver(drafts, chart or {}, server)

    def resolve(reference: str) -> Any:
        parsed = parse_reference(reference)
        if parsed is not None and parsed.type == "Device" and drafts.get(reference) is None:
            return devices(reference)
        return drugs(reference)

    return resolve


def _bookings(request: HookRequest, booked: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each booked Appointment's reference, with the orders it is based on (appointment-book)."""
    booking = DraftOrders(request.context.appointments or {}, request.fhir.server)
    return [(reference_of(a), based_on(a, booking, request.fhir.server)) for a in booked]


def _modified_unread(
    pump: list[PumpOrder], modifiers: dict[str, Carried], bookings: list[tuple[str, list[str]]]
) -> list[UnreadOrder]:
    """The pump orders not judged because they carry a modifier extension (service/modifiers.py), or
    an Appointment booking them does (`bookings`: what is booked may not be the plain order, and the
    booking's coverage information is the order's under CRD 2.2), each with the card's reason; their
    coverage information says the same (cards/response.py)."""
    unread = []
    for o in pump:
        if urls := modifiers.get(o.reference):
            unread.append(
                UnreadOrder(
                    o.reference, o.reference, not_understood(urls), resource=o.resource, modifiers=urls
                )
            )
            continue
        unread += [
            UnreadOrder(appointment, o.reference, not_understood(urls), resource=o.resource, modifiers=urls)
            for appointment, orders in bookings
            if o.reference in orders and (urls := modifiers.get(appointment))
        ]
    return unread


def _devices_unread(
    in_scope: list[dict[str, Any]], pump: list[PumpOrder], drafts: DraftOrders, devices: DeviceReader
) -> list[UnreadOrder]:
    """The orders whose code is their Device's (`codeReference`) and whose Device could not be had:
    not checked, where they would otherwise read as orders with no rules here."""
    recognised = {o.reference for o in pump}
    return [
        UnreadOrder(reference, reference, why, device=device, technical=device in devices.server_failed)
        for resource in in_scope
        if (reference := reference_of(resource)) not in recognised
        and (why := devices.why_unavailable(resource, drafts)) is not None
        and (device := named_device(resource)) is not None
    ]


def _principal(orders: tuple[PumpOrder, ...], vocabulary: Vocabulary) -> PumpOrder:
    """The pump order whose determination the other orders of the episode share."""
    return min(orders, key=lambda o: vocabulary.rank(o.kind))


def _payers_by_policy(routes: list[Route]) -> dict[str, list[list[Route]]]:
    """Per policy that judges a Coverage, the routes of each payer it judges for, in the routes' order:
    a deployment's payers.yaml may route two payers to one policy (both send their Medicare members to
    the NCD), and each payer's decision is its own (its name on its card, its Coverages' coverage
    information, its approval), though the policy is evaluated once per order (cards25 MEDIUM: one
    determination per policy, labelled by its first payer, judged the other payer's Coverage too)."""
    judged: dict[str, dict[str, list[Route]]] = {}
    for route in routes:
        if route.policy_id is not None:
            payer = route.payer.key if route.payer is not None else route.payer_display
            judged.setdefault(route.policy_id, {}).setdefault(payer, []).append(route)
    return {policy_id: list(payers.values()) for policy_id, payers in judged.items()}


def decide(
    call: CallData,
    catalog: Catalog,
    published: Publications,
    today: date,
    approvals: bool,
    now: datetime,
) -> Decisions:
    """Pure: the patient record, the routes (the Coverages relevant at `now`, the call's instant, to
    the policy versions in force `today`), and every (order, policy) Determination."""
    if unobtainable := _unobtainable(call):
        return Decisions(call, today, missing_required=unobtainable)
    data = call.data
    if data is None:
        return Decisions(call, today)
    if (unread := _coverage_unread(call, today, now)) is not None:
        return unread
    organizations = data.resources.get("Organization", [])
    server = call.request.fhir.server  # the chart's: a reference to another server's names none of it
    payers = catalog.payers
    routes = route_coverages(data.coverages, organizations, payers, today, server, now, data.bundle_local)
    one_coverage = call.request.crd_version == "2.2"  # §hook-13: every hook, for its one Coverage
    # a primary hook's answer is coverage information, which names a Coverage: none is an error in any
    # version (§hook-16), told apart from "nothing to say" (review s16 inferno I-6)
    refused = coverage_not_answered(routes, one_coverage)
    if refused is not None and (one_coverage or call.behaviour.primary) and _orders_at_hand(call):
        return Decisions(call, today, tuple(routes), coverage_refused=refused)
    if refused is not None:  # a CRD 2.0.1 secondary hook: no Coverage to answer for, said on a card; or
        # nothing but the hook's Encounter, which gets no coverage information without a Coverage
        routes = []
    if any(r.inactive for r in routes):  # its one Coverage is not active: nothing to judge (§resp-45)
        return Decisions(call, today, tuple(routes), approvals=approvals)
    if not call.pump_orders:
        return Decisions(call, today, tuple(routes), approvals=approvals)
    request = call.request
    pump_refs = {o.reference for o in call.pump_orders}
    unread = data.unavailable.get("MedicationRequest")  # the chart's drug orders, the pump's drug's too
    pump_drugs = infusates(
        call.drafts, catalog.terminology, call.pump_orders, data.resources, call.modifiers, unread, server
    )
    drugs = pump_drugs.found
    selected = {reference_of(r) for r in call.in_scope}
    if (
        selected.isdisjoint(pump_refs)
        and selected.isdisjoint(d.reference for d in drugs)
        and not may_be_billed(call.in_scope, call.pump_orders, catalog.order_codes)
    ):
        return Decisions(call, today, tuple(routes), approvals=approvals)  # judged for a drug not the pump's
    unavailable = {**data.unavailable, **pump_drugs.unavailable}
    record = build_record(
        request.context.patient_id,
        data.resources,
        catalog.terminology,
        unavailable,
        server,
        data.may_carry_modifiers(),
        catalog.worded_diagnoses,
    ).before(pump_refs, [ref for order in call.pump_orders if (ref := named_device(order.resource))])
    episode = call.episode_kinds
    principal = _principal(call.pump_orders, catalog.vocabulary)
    pump_orders = (principal, *(o for o in call.pump_orders if o is not principal))
    shared: dict[tuple[str, ...], Any] = {}  # record-level matches, computed once for every policy
    by_policy = _payers_by_policy(routes)
    judged: list[Determination] = []  # per order and policy, evaluated once, a determination per payer
    for order in call.pump_orders:
        for policy_id, payers in by_policy.items():
            found = evaluate_order(
                catalog.policies[policy_id],
                EvaluationContext(
                    record,
                    catalog.terminology,
                    today,
                    order,
                    drugs,
                    episode_kinds=episode,
                    episode_orders=pump_orders,
                    _memo=shared,
                ),
            )
            judged += [
                replace(found, payer=mine[0].payer_display, coverages=tuple(r.coverage for r in mine))
                for mine in payers
            ]
    determinations = tuple(judged)
    pump_drug_orders = {
        drug.reference: principal.reference
        for drug in drugs
        if drug.reference not in pump_refs and call.drafts.get(drug.reference) is not None
    }
    # and a drug order billed with a pump order left to a manual review (J2274 beside a 95990 refill)
    episode_orders, billed = billed_lines(
        call.in_scope, call.pump_orders, pump_drug_orders, catalog.order_codes, determinations
    )
    if selected.isdisjoint(pump_refs) and selected.isdisjoint(episode_orders):
        return Decisions(call, today, tuple(routes), approvals=approvals)  # a drug the payer judges apart
    ordered = trials_ordered(data.resources, catalog.order_codes, today, server)
    under_way = trials_under_way(record, catalog.order_codes, today)  # no evidence: a trial coming
    coming = bool(ordered or under_way)
    trial_missing = tuple(
        (d, criteria)
        for d in determinations
        if catalog.order_codes.trial_first
        and (criteria := missing_trial(d, catalog.policies[d.policy_id], record, episode, coming))
        and trial_may_cover(d, catalog.policies[d.policy_id])
    )
    # (these and `forms` are by order and policy, not payer: they are the policy's reading of the chart,
    # the same for each payer routed to it, `_payers_by_policy`)
    # what a trial not yet done is to document: the trial criteria the policy asks, and every other
    # result the trial is to show (`trial_shows`: its side effects, the patient's acceptance); awaited
    # when a trial is ordered in the EHR or under way on the chart, else not done (whether or not one is
    # proposed)
    trial_results = {
        (d.order_reference, d.policy_id): frozenset(r.id for c in criteria for r in c.walk())
        | trial_shows(d, catalog.policies[d.policy_id])
        for d in determinations
        if (criteria := missing_trial(d, catalog.policies[d.policy_id], record, episode))
    }
    awaiting_trial = trial_results if coming else {}
    forms = {  # the documentation form each order needing answers asks for, worked out once
        (d.order_reference, d.policy_id): published.form_for(d, to_document(d))
        for d in determinations
        if d.outcome == Outcome.INSUFFICIENT
    }
    return Decisions(
        call,
        today,
        tuple(routes),
        determinations,
        episode_orders,
        trial_missing,
        ordered if awaiting_trial else (),
        awaiting_trial,
        forms,
        approvals,
        billed_lines=billed,
        trial_not_done={} if coming else trial_results,
        trials_under_way=under_way if awaiting_trial else (),
    )


def _coverage_unread(call: CallData, today: date, now: datetime) -> Decisions | None:
    """A call whose Coverage is active but cannot be answered for as written (`routing.unanswerable`: no FHIR
    id to name it by, or a `period` start or end in a form R4 does not allow; or, not active, the one it is
    answered `not-covered` for has no id: `routing.unanswerable_of`), when it is about any order
    (`_orders_at_hand`): its coverage information could not name it (review29b: `Coverage/None`), or whether
    it is in force cannot be told (review28f L1: such an end bounded nothing, and an ended plan was judged, or
    made two relevant Coverages). Prefetched, it is bad input: a 400 naming the element
    (`prefetch.coverage.entry[0].resource.period.end`), found in the request as the very object (`held_at`:
    whatever its id); read from the EHR's FHIR server, it cannot be answered for as the server holds it: a 412
    naming `prefetch.coverage`, saying it was read, which element and how it is written. A call about no
    order, the hook's Encounter alone, is not ended by it (the Encounter is never needed data): nothing is
    answered for any Coverage, as when none is known (review29b: the Encounter was told "conditional" under an
    ended plan whose end was so written, where one written as R4 allows made it "not-covered"). None: every
    Coverage can be answered for (or the call has nothing to answer for)."""
    data = call.data
    if data is None or not (_orders_at_hand(call) or call.encounter is not None):
        return None
    if (unanswered := unanswerable_of(data.coverages, today, now)) is None:
        return None
    if not _orders_at_hand(call):  # the hook's Encounter alone: it gets nothing, and no 400 or 412
        return Decisions(call, today)
    coverage, (where, value, is_not, cannot) = unanswered
    written = json.dumps(value, ensure_ascii=False)
    why = f"{reference_of(coverage)}{where} {written[:80]} {is_not}"
    held = held_at(call.request.prefetch, coverage)
    if held is not None:  # the request's: bad input, the element named
        return Decisions(call, today, coverage_refused=f"{why}: {cannot}", refused_at=held + where)
    reason = f"{why} as the EHR's FHIR server holds it: {cannot}"
    unread = Unobtainable("coverage", "prefetch.coverage", reason, read_unanswerable=True)
    return Decisions(call, today, missing_required=(unread,))


def _unobtainable(call: CallData) -> tuple[Unobtainable, ...]:
    """What the call cannot be answered without and could neither find in prefetch nor read: the
    Coverage (when there are orders to judge, or read and set aside: `CallData.set_aside`), and the Patient
    too where a pump order is judged or may be (gather's `required`: the registry's `required_prefetch`),
    the payer's Organization to route a pump order by (`GatheredData.routing_missing`: no other order's
    answer depends on the payer), and the dispatched orders when none of them is at hand (CDS Hooks
    412). One that is missing beside others the call has is reported on a card: the others are answered
    (session review s37, S37-5)."""
    data = call.data
    judged_orders = _orders_at_hand(call)
    routing = data.routing_missing if data is not None and call.pump_orders else {}
    needed = {**data.required_missing, **routing} if data is not None and judged_orders else {}
    in_part = data.sent_in_part if data is not None else set()
    held_back = data.not_asked if data is not None else set()
    by_prefetch = data.prefetch_only if data is not None else set()
    missing = [
        Unobtainable(key, f"prefetch.{key}", reason, key in in_part, key in held_back, key in by_prefetch)
        for key, reason in needed.items()
    ]
    if not call.in_scope:
        missing += [Unobtainable(u.order, u.needed_at, u.reason) for u in call.unread if u.needed_at]
    return tuple(missing)


def _orders_at_hand(call: CallData) -> bool:
    """Whether the call is about any order (or booked Appointment): judged, read and set aside, or not
    read. Only then does a missing Patient or Coverage end it (412, 400): the hook's Encounter alone
    (`CallData.encounter`) is annotated when a Coverage is known, and otherwise simply is not."""
    return any((call.pump_orders, call.in_scope, call.appointments, call.unread, call.set_aside))


def precondition_failed(missing: tuple[Unobtainable, ...]) -> HookOutcome:
    """412: data the call cannot be answered without (the patient, the Coverage, a dispatched order) was
    neither prefetched nor read; the remedy depends on whether the FHIR server was asked at all
    (`Unobtainable.not_asked`: the call was held back from it, service/fhir/server_share.py). A Coverage the
    server gave that cannot be answered for as it holds it (`_coverage_unread`:
    `Unobtainable.read_unanswerable`) is said to have been read, in its own sentence (review30c L6: two
    Coverages sharing an id were said not to have been read). A required key the EHR sent as page one of
    several, with no server to read the rest from, is said as such (`Unobtainable.sent_in_part`: it was
    prefetched, in part; inferno22 L1), each in its own sentence after that of the elements not sent at all
    (the first one's reason given). When prefetch is the only remedy (`Unobtainable.prefetch_only`: a payor's
    Organization named by a server's URL, read from no other), a fhirServer is not offered: for an element
    sent in part, in its sentence; for those not sent, when it is so for every one. The issue names each
    request element to fix."""
    whole = [m for m in missing if not m.sent_in_part and not m.read_unanswerable]
    sentences = []
    if whole:
        reason = whole[0].reason
        names = sorted(m.name for m in whole)
        what = f"{listing(names)} {'was' if len(names) == 1 else 'were'}"
        if whole[0].not_asked:
            read, remedy = "not read", "send it as prefetch, or call again in a moment"
        elif all(m.prefetch_only for m in whole):  # no fhirServer would be read for it
            read, remedy = "could not be read", "send it as prefetch"
        else:
            read = "could not be read"
            remedy = "send it as prefetch or provide a reachable fhirServer with fhirAuthorization"
        sentences.append(f"{what} not prefetched and {read} from the EHR's FHIR server ({reason}); {remedy}")
    sentences += [  # read: what was wrong is how the server holds it, never that it could not be read
        f"{m.name} was read from the EHR's FHIR server but cannot be answered for ({m.reason}); send it as "
        "prefetch"
        for m in missing
        if m.read_unanswerable
    ]
    sentences += [
        f"{m.reason}; send all of it in the one prefetch Bundle"
        + ("" if m.prefetch_only else ", or provide a reachable fhirServer with fhirAuthorization")
        for m in missing
        if m.sent_in_part
    ]
    body = operation_outcome("incomplete", ". ".join(sentences), missing[0].expression)
    body["issue"][0]["expression"] = [m.expression for m in missing]
    return HookOutcome(body, status=412)


def coverage_refused(decisions: Decisions) -> HookOutcome:
    """400: the call's Coverage is not one this service can answer for (CRD 2.2 §hook-13), or, on a
    primary hook of any version, there is none to name in its coverage information (§hook-16; CRD
    2.0.1 §8.1, and an EHR calls only for a patient with active coverage, §dev-26)."""
    request = decisions.request
    if decisions.refused_at is not None:  # one element of a prefetched Coverage (`_coverage_unread`)
        at = decisions.refused_at
        body = operation_outcome("invalid", f"{at}: {decisions.coverage_refused}", at)
        return HookOutcome(body, status=400, data=decisions.call.data)
    field_name = "prefetch.coverage" if "coverage" in request.prefetch else "context.patientId"
    rule = (
        "CRD 2.2: a call is sent for its one primary Coverage"
        if request.crd_version == "2.2"
        else "CRD: this hook is answered for the patient's active Coverage, named by its coverage information"
    )
    body = operation_outcome("invalid", f"{field_name}: {decisions.coverage_refused} ({rule})", field_name)
    return HookOutcome(body, status=400, data=decisions.call.data, routes=decisions.routes)


def forget_unsettled(decisions: Decisions, env: HookEnvironment, scope: CacheScope | None) -> None:
    """Drop from the patient-data cache what the call read there or kept (service/fhir/cache.py), when
    its answer leaves the clinician something to do about the chart: an order that does not meet its
    policy (documentation to add, a record to correct) or could not be checked, or a call with no
    Coverage to judge by, refused for it, told so on a card, or answered that its Coverage is not
    active (review s17 F-3, review2 N-2, inferno s18 K-1). The next
    call, most often order-sign right after the documenting, reads the chart again rather than as it
    was."""
    data = decisions.call.data
    settled = (Outcome.MEETS, Outcome.NOT_APPLICABLE)
    # no Coverage to judge by, refused or told on a card, or only one that is not active (answered
    # not-covered): the registrar records the patient's current one, the EHR calls again
    uncovered = (
        decisions.coverage_refused is not None
        or not decisions.routes
        or any(r.inactive for r in decisions.routes)
    )
    if data is not None and (uncovered or any(d.outcome not in settled for d in decisions.determinations)):
        with env.turns.set_aside():  # the cache may be Redis
            env.gatherer.forget(scope, data)


def _approvals_allowed(service: ServiceDefinition, options: CallOptions) -> bool:
    """Whether this call may carry an automatic approval: only on services that may approve, not
    when the call forbids unsolicited determinations (CRD what-if calls set `unsolicited-determ` to
    false), and not when it asks for no coverage information (`coverage-info` false), which is where
    an approval and its number would be issued."""
    return service.behaviour.may_approve and options.unsolicited_determ and options.coverage_info


LOCAL_BASE_URL = "http://localhost:8080"  # the policy links' base of a call answered with no public URL


def _unslashed(base_url: BaseUrl) -> BaseUrl:
    """`base_url` without a trailing slash; what gives it, giving it so when asked."""
    if callable(base_url):
        return lambda: base_url().rstrip("/")
    return base_url.rstrip("/")


def handle_hook(
    request: HookRequest,
    service: ServiceDefinition,
    env: HookEnvironment,
    today: date,
    base_url: BaseUrl = LOCAL_BASE_URL,
    caller: str | None = None,
    arrived: float | None = None,
    now: datetime | None = None,
    use: FhirUse | None = None,
) -> HookOutcome:
    """Answer one validated hook call on `today`. `base_url` is the service's public URL (for policy
    links), or what gives it, asked only for an answer that links a policy page; `caller` the `iss` of
    the authenticated client (None: unauthenticated, nothing cached); `arrived` when the call arrived
    whole (monotonic; None: now), from which its deadline counts; `now` the call's instant, on `today`
    (None: call_day.midday of `today`); `use` where the call's queries are counted (None: its own),
    which the caller reads when the call fails (the 500's token outcome, review30b L3)."""
    deadline = (time.monotonic() if arrived is None else arrived) + env.deadline_seconds
    options = call_options(request)
    if options.no_card_type:
        return HookOutcome({"cards": []})  # every card type we offer is switched off: no work at all
    with env.turns.set_aside():  # the FHIR server may take seconds
        call = gather(request, service, env, deadline, today, caller, now, use)
    approvals = _approvals_allowed(service, options)
    decisions = decide(call, env.catalog, env.published, today, approvals, now or midday(today))
    forget_unsettled(decisions, env, scope_of(request, caller))
    if decisions.missing_required:  # (the token outcome is every answer's: a 401 may be why)
        return replace(
            precondition_failed(decisions.missing_required),
            token_use=call.token_use,
            fhir_reads=call.fhir_reads,
        )
    if decisions.coverage_refused is not None:
        return replace(coverage_refused(decisions), token_use=call.token_use, fhir_reads=call.fhir_reads)
    issuer = HookCall(request.hook, request.hook_instance)
    response = respond(decisions, options, _unslashed(base_url), env.catalog, issuer)
    return HookOutcome(
        response,
        decisions.determinations,
        data=call.data,
        routes=decisions.routes,
        judged_orders=(*call.in_scope, *call.appointments, *([call.encounter] if call.encounter else [])),
        judged_as=decisions.episode_orders,
        issuer=issuer,
        token_use=call.token_use,
        fhir_reads=call.fhir_reads,
    )
