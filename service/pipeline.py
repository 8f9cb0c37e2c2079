"""One hook call, end to end: orders in scope → data → record → engine → cards.

Each step is a plain function call with a plain value crossing it; the FHIR client is the only
I/O and is handed in, so the rest can be tested with dicts. A FHIR failure never fails the hook:
the affected resource types are marked unavailable and the criteria that need them say
"could not be checked".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from cards import decision_card
from service.catalog import Catalog
from service.engine.context import EvaluationContext
from service.engine.evaluate import evaluate_order
from service.engine.model import Determination
from service.fhir.client import FhirClient, FhirError
from service.hooks.models import HookRequest
from service.orders import DraftOrders, PumpOrder, infusates, recognise
from service.record import CLINICAL_TYPES, PatientRecord, build_record

log = logging.getLogger(__name__)

DEADLINE_MARGIN_SECONDS = 0.5

ClientFactory = Callable[[HookRequest, float], FhirClient | None]


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    determinations: tuple[Determination, ...]


def default_client_factory(timeout_seconds: float) -> ClientFactory:
    def make(request: HookRequest, deadline: float) -> FhirClient | None:
        if not request.fhir.usable:
            return None
        assert request.fhir.server is not None
        return FhirClient(request.fhir.server, request.fhir.access_token, timeout_seconds, deadline=deadline)

    return make


def pump_orders(request: HookRequest, catalog: Catalog, client: FhirClient | None) -> list[PumpOrder]:
    drafts = DraftOrders(request.context.draft_orders)

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


def gather_record(patient_id: str, client: FhirClient | None) -> PatientRecord:
    """Query each clinical resource type for the patient (sequentially, for now)."""
    resources: dict[str, list[dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    for resource_type in CLINICAL_TYPES:
        if client is None:
            unavailable[resource_type] = "no fhirServer in the request"
            continue
        try:
            resources[resource_type] = client.search(resource_type, {"patient": patient_id})
        except FhirError as exc:
            log.warning("%s query failed: %s", resource_type, exc.reason)
            unavailable[resource_type] = exc.reason
    return build_record(patient_id, resources, unavailable)


def _configuration(request: HookRequest) -> dict[str, Any]:
    config = request.extension.get("davinci-crd.configuration")
    return config if isinstance(config, dict) else {}


def handle_hook(
    request: HookRequest, catalog: Catalog, today: date, client_factory: ClientFactory, budget_seconds: float
) -> HookOutcome:
    deadline = time.monotonic() + max(budget_seconds - DEADLINE_MARGIN_SECONDS, 0.1)
    client = client_factory(request, deadline)
    orders = pump_orders(request, catalog, client)
    if not orders:
        return HookOutcome({"cards": []}, ())
    record = gather_record(request.context.patient_id, client)
    drugs = tuple(infusates(DraftOrders(request.context.draft_orders)))
    determinations = tuple(
        evaluate_order(policy, EvaluationContext(record, catalog.terminology, today, order, drugs))
        for order in orders
        for policy in catalog.policies_for_order()
    )
    config = _configuration(request)
    cards = [] if config.get("coverage-info") is False else [decision_card(d) for d in determinations]
    max_cards = config.get("max-cards")
    if isinstance(max_cards, int) and not isinstance(max_cards, bool) and max_cards >= 0:
        cards = cards[:max_cards]
    return HookOutcome({"cards": cards}, determinations)
