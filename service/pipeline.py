"""One hook call, end to end: orders in scope → data → record → engine → cards.

Each step is a plain function call with a plain value crossing it; the FHIR client is the only
I/O and is handed in, so the rest can be tested with dicts. A clinical query that fails never
fails the hook: the affected resource types are marked unavailable and the criteria that need
them say "could not be checked". Only when the Patient or Coverage can be had neither from
prefetch nor from the FHIR server does the call end in 412 (CRD §found-32).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from cards import (
    coverage_notice_card,
    decision_card,
    external_reference_card,
    instructions_card,
    next_steps,
    unread_order_card,
)
from cards.coverage_information import CoverageJudgement, coverage_actions
from cards.form_completion import FormRequest, form_completion_card
from cards.suggestions import trial_first_card
from service.appointments import UnreadOrder, appointment_orders
from service.catalog import Catalog
from service.engine.context import EvaluationContext
from service.engine.evaluate import evaluate_order
from service.engine.model import Determination, Outcome
from service.errors import operation_outcome
from service.fhir.client import FhirClient, FhirError, SessionPool
from service.fhir.gather import DataGatherer, GatheredData, observation_codes_from
from service.hooks.models import HookRequest
from service.next_steps import missing_trial
from service.orders import DraftOrders, PumpOrder, infusates, recognise
from service.questionnaires import Publications, canonical_of, publications
from service.record import PatientRecord, build_record
from service.routing import Route, route_coverages
from service.settings import FhirSettings
from service.version import service_version

log = logging.getLogger(__name__)

ClientFactory = Callable[[HookRequest, float], FhirClient | None]
DEFAULT_MAX_CARDS = 10  # as advertised in discovery (service/registry.py)
SERVICE_LABEL = "idds-crd"  # the label of cards no insurer stands behind


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    determinations: tuple[Determination, ...] = ()
    status: int = 200
    data: GatheredData | None = None


@dataclass(frozen=True)
class HookEnvironment:
    """What every call shares: compiled policies, the query worker pool, how to reach the EHR."""

    catalog: Catalog
    gatherer: DataGatherer
    client_factory: ClientFactory
    deadline_seconds: float
    published: Publications


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
        )

    return make


def build_environment(
    settings: FhirSettings,
    catalog: Catalog,
    executor: Executor | None,
    client_factory: ClientFactory | None = None,
) -> HookEnvironment:
    codes = observation_codes_from(catalog.terminology["observation-evidence"].codes.get("loinc", ()))
    return HookEnvironment(
        catalog,
        DataGatherer(executor, codes),
        client_factory or default_client_factory(settings),
        settings.deadline_seconds,
        publications(catalog, service_version()),
    )


def pump_orders(
    request: HookRequest, drafts: DraftOrders, catalog: Catalog, client: FhirClient | None
) -> list[PumpOrder]:
    def fetch_device(reference: str) -> dict[str, Any] | None:
        if client is None:
            return None
        try:
            return client.read(reference)
        except FhirError as exc:
            log.warning("could not read %s: %s", reference, exc.reason)
            return None

    in_scope = drafts.in_scope(request.context.selections)
    return [o for r in in_scope if (o := recognise(r, drafts, catalog.order_codes, fetch_device)) is not None]


def _configuration(request: HookRequest) -> dict[str, Any]:
    config = request.extension.get("davinci-crd.configuration")
    return config if isinstance(config, dict) else {}


def _drafts_of_call(request: HookRequest, client: FhirClient | None) -> tuple[DraftOrders, list[UnreadOrder]]:
    """The call's orders: its draftOrders, or on appointment-book the orders the Appointments are
    based on (with those that could not be read)."""
    if request.context.appointments is None:
        return DraftOrders(request.context.draft_orders), []
    bundle, unread = appointment_orders(
        request.context.appointments,
        request.context.patient_id,
        client.read if client else None,
        request.fhir.server,
    )
    return DraftOrders(bundle), unread


def precondition_failed(missing: dict[str, str]) -> HookOutcome:
    key, reason = next(iter(missing.items()))
    what = ", ".join(sorted(missing))
    body = operation_outcome(
        "incomplete",
        f"{what} was not prefetched and could not be read from the EHR's FHIR server ({reason}); "
        "send it as prefetch or provide a reachable fhirServer with fhirAuthorization",
        f"prefetch.{key}",
    )
    return HookOutcome(body, status=412)


def _approvals_allowed(request: HookRequest, config: dict[str, Any]) -> bool:
    """Whether this call may carry an automatic approval: only for orders being signed or booked
    (not merely selected), and not when the call forbids unsolicited determinations (CRD what-if
    calls set `unsolicited-determ` to false)."""
    return request.hook != "order-select" and config.get("unsolicited-determ") is not False


def _auto_approves(route: Route, allowed: bool) -> bool:
    """The route's payer approves what meets its policy, and this call allows it."""
    return allowed and route.payer is not None and route.payer.auto_approval


def _payer_label(routes: list[Route]) -> str:
    """The insurer name(s) a card not about one payer's decision is labelled with."""
    return ", ".join(dict.fromkeys(r.payer_display for r in routes)) or SERVICE_LABEL


def _max_cards(config: dict[str, Any]) -> int:
    value = config.get("max-cards")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return DEFAULT_MAX_CARDS


def handle_hook(
    request: HookRequest,
    prefetch_templates: dict[str, str],
    env: HookEnvironment,
    today: date,
    base_url: str = "http://localhost:8080",
) -> HookOutcome:
    """Answer one validated hook call. `base_url` is the service's public URL (for policy links)."""
    deadline = time.monotonic() + env.deadline_seconds
    config = _configuration(request)
    if config.get("coverage-info") is False:
        return HookOutcome({"cards": []})  # the only card type we offer is switched off: no work at all
    client = env.client_factory(request, deadline)
    drafts, unread = _drafts_of_call(request, client)
    orders = pump_orders(request, drafts, env.catalog, client)
    unread = [
        u for u in unread if u.resource is None or recognise(u.resource, drafts, env.catalog.order_codes)
    ]
    if not orders and not unread:
        return HookOutcome({"cards": []})
    if not orders:  # only orders that could not be read: say so, in the payer's name when known
        known = env.gatherer.gather(request, prefetch_templates, client, deadline, clinical=False)
        label = _payer_label(
            route_coverages(known.coverages, known.resources.get("Organization", []), env.catalog.payers)
        )
        return HookOutcome({"cards": [unread_order_card(u, label) for u in unread][: _max_cards(config)]})
    data = env.gatherer.gather(request, prefetch_templates, client, deadline)
    if data.required_missing:
        return precondition_failed(data.required_missing)
    record = build_record(
        request.context.patient_id, data.resources, env.catalog.terminology, data.unavailable
    )
    drugs = tuple(infusates(drafts, orders, data.resources))
    episode = frozenset(
        o.kind for r in drafts.resources if (o := recognise(r, drafts, env.catalog.order_codes)) is not None
    )
    routes = route_coverages(data.coverages, data.resources.get("Organization", []), env.catalog.payers)
    judged: dict[str, list[Route]] = {}
    for route in routes:
        if route.policy_id is not None:
            judged.setdefault(route.policy_id, []).append(route)
    shared: dict[tuple[str, ...], Any] = {}  # record-level matches, computed once for every policy
    determinations = tuple(
        replace(
            evaluate_order(
                env.catalog.policies[policy_id],
                EvaluationContext(
                    record, env.catalog.terminology, today, order, drugs, episode_kinds=episode, _memo=shared
                ),
            ),
            payer=policy_routes[0].payer_display,
            coverages=tuple(r.coverage for r in policy_routes),
        )
        for order in orders
        for policy_id, policy_routes in judged.items()
    )
    notices = [unread_order_card(u, _payer_label(routes)) for u in unread]
    notices += [coverage_notice_card(r, orders) for r in routes if r.policy_id is None]
    if not routes:
        notices.append(coverage_notice_card(None, orders))
    approvals = _approvals_allowed(request, config)
    forms = {  # the documentation form each order needing answers asks for, worked out once
        (d.order_reference, d.policy_id): env.published.form_for(d)
        for d in determinations
        if d.outcome == Outcome.INSUFFICIENT
    }
    trial_cards = _trial_first_cards(determinations, record, episode, env.catalog, today)
    if request.hook != "order-select":  # documentation is asked for on the primary hooks only
        trial_cards += _form_completion_cards(determinations, routes, forms, request, today)
    cards = (
        _cards(determinations, routes, trial_cards, config, base_url.rstrip("/"), env.catalog, approvals)
        + notices
    )[: _max_cards(config)]
    response: dict[str, Any] = {"cards": cards}
    actions = coverage_actions(
        orders,
        _judgements(orders, routes, determinations, forms, approvals),
        request.hook,
        request.hook_instance,
        today,
    )
    if actions:
        response["systemActions"] = actions
    return HookOutcome(response, determinations, data=data)


def _cards(
    determinations: tuple[Determination, ...],
    routes: list[Route],
    trial_cards: list[dict[str, Any]],
    config: dict[str, Any],
    base_url: str,
    catalog: Catalog,
    approvals: bool,
) -> list[dict[str, Any]]:
    """Decision cards first, then orders to add and what to document or do next, then the policy links."""
    cards = [decision_card(d) for d in determinations]
    if config.get("clinical-reminder") is not False:
        cards += trial_cards
        same_steps: dict[tuple[str, str, tuple[str, ...]], list[Determination]] = {}
        for d in determinations:
            its_routes = [r for r in routes if r.coverage in d.coverages]
            approved = bool(its_routes) and all(_auto_approves(r, approvals) for r in its_routes)
            headline, steps = next_steps(d, approved)
            same_steps.setdefault((d.policy_id, headline, steps), []).append(d)
        cards += [
            instructions_card(group, headline, steps) for (_, headline, steps), group in same_steps.items()
        ]
    if config.get("guideline") is not False:
        seen: set[str] = set()
        for d in determinations:
            if d.policy_id not in seen:
                seen.add(d.policy_id)
                policy = catalog.policies[d.policy_id]
                cards.append(external_reference_card(d, f"{base_url}/policies/{d.policy_id}", policy.url))
    return cards


def _trial_first_cards(
    determinations: tuple[Determination, ...],
    record: PatientRecord,
    episode: frozenset[str],
    catalog: Catalog,
    today: date,
) -> list[dict[str, Any]]:
    """One card for the implant orders (pump, hardware) of a call when a payer wants a trial that
    never happened: the trial comes once before the whole implant, however many lines it has."""
    trials = catalog.order_codes.trial_first
    missing = [
        (d, criteria)
        for d in determinations
        if trials and (criteria := missing_trial(d, catalog.policies[d.policy_id], record, episode))
    ]
    if not missing:
        return []
    return [trial_first_card(missing, trials, record.patient_id, today)]


def _without_dtr(route: Route) -> bool:
    return route.payer is not None and not route.payer.uses_dtr


def _form_completion_cards(
    determinations: tuple[Determination, ...],
    routes: list[Route],
    forms: Mapping[tuple[str, str], dict[str, Any] | None],
    request: HookRequest,
    today: date,
) -> list[dict[str, Any]]:
    """For payers without DTR, one form-completion card per form an order needs (CRD §resp-59)."""
    by_form: dict[str, tuple[dict[str, Any], dict[str, Any], list[Determination]]] = {}
    for d in determinations:
        route = next((r for r in routes if r.coverage in d.coverages and _without_dtr(r)), None)
        form = forms.get((d.order_reference, d.policy_id)) if route is not None else None
        if route is None or form is None:
            continue
        requester = route.payer_reference or {"type": "Organization", "display": route.payer_display}
        by_form.setdefault(form["id"], (form, requester, []))[2].append(d)
    context = request.context
    return [
        form_completion_card(
            FormRequest(form, group, requester, context.patient_id, context.encounter_id, today)
        )
        for form, requester, group in by_form.values()
    ]


def _judgements(
    orders: list[PumpOrder],
    routes: list[Route],
    determinations: tuple[Determination, ...],
    forms: Mapping[tuple[str, str], dict[str, Any] | None],
    approvals: bool,
) -> dict[str, list[CoverageJudgement]]:
    """Per order, what each active Coverage's payer says (None where no policy here applies)."""
    by_key = {(d.order_reference, cov): d for d in determinations for cov in d.coverages}
    judgements: dict[str, list[CoverageJudgement]] = {order.reference: [] for order in orders}
    for order in orders:
        for route in routes:
            d = by_key.get((order.reference, route.coverage))
            form = forms.get((d.order_reference, d.policy_id)) if d else None
            judgement = CoverageJudgement(
                route.coverage,
                route.payer_display,
                d,
                canonical_of(form) if form else None,
                _auto_approves(route, approvals),
                dtr=not _without_dtr(route),
            )
            judgements[order.reference].append(judgement)
    return judgements
