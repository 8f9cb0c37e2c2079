"""Calling the service the way an EHR does: the packaged sample requests from prefetch alone, or
any call against a fake FHIR server holding a given chart."""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import cache
from typing import Any

from flask import Flask

from service.app import create_app
from service.catalog import Catalog
from service.demo.runner import request_files
from service.fhir.client import FhirError, SearchResult
from service.settings import Settings
from tests.builders import catalog as compiled_catalog
from tests.conformance import check_response
from tests.scaling_support import observations_answer
from tests.support import (
    SIGN_URL,
    RecordingFactory,
    RecordingFhirClient,
    as_queried,
    open_settings,
    post_json,
    sign_body,
    with_fhir,
)


def configured(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    body["extension"] = {"davinci-crd.configuration": options}
    return body


def sign_with_chart(
    chart: list[dict[str, Any]],
    catalog: Catalog | None = None,
    body: dict[str, Any] | None = None,
    failing: Collection[str] = (),
    failing_status: int = 503,
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) of an order-sign (the sample unless `body`; any hook `body` names) against
    a fake FHIR server holding `chart` whose searches (and Encounter reads) of the `failing` types fail
    (HTTP `failing_status`), with `options` as the call's davinci-crd.configuration. Each chart
    resource is the call's patient's (its `subject` set so)."""
    body = body or sign_body()
    request = with_fhir(configured(body, **options) if options else body)
    url = f"/cds-services/idds-crd-{request['hook']}"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chart:
        resource = {**resource, "subject": {"reference": f"Patient/{request['context']['patientId']}"}}
        by_type.setdefault(resource["resourceType"], []).append(resource)

    class ChartClient(RecordingFhirClient):
        def search(
            self, resource_type: str, params: dict[str, Any], first_page: bool = False
        ) -> SearchResult:
            super().search(resource_type, params)
            if resource_type in failing:
                raise FhirError(f"HTTP {failing_status}", failing_status)
            found = by_type.get(resource_type, [])
            if resource_type == "Observation":
                found = observations_answer(found, params, first_page)
            return SearchResult(found, [], 1)

        def read(self, reference: str) -> dict[str, Any] | None:
            """The chart's Encounters are read (the encounter hooks' Encounter); nothing else is held."""
            super().read(reference)
            kind = reference.partition("/")[0]
            if kind != "Encounter":
                return None
            if kind in failing:
                raise FhirError(f"HTTP {failing_status}", failing_status)
            return next((r for r in by_type.get(kind, []) if f"{kind}/{r['id']}" == reference), None)

    factory = RecordingFactory(ChartClient())
    app = create_app(open_settings(), catalog or compiled_catalog(), client_factory=factory)
    response = post_json(app.test_client(), url, request)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert check_response(body, request, _orders_outside_draft_orders(request, by_type)) == []
    return request, body


def _orders_outside_draft_orders(
    request: dict[str, Any], chart: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]] | None:
    """The orders an answer's updates may target when they are not the call's draftOrders: an
    encounter hook's open orders in the chart, the orders an appointment-book call carries beside
    its Appointments."""
    if request["hook"].startswith("encounter-"):  # and the Encounter, when read from the chart
        return [*chart.get("ServiceRequest", []), *chart.get("Encounter", [])]
    if request["hook"] == "appointment-book":
        booked = (request["context"].get("appointments") or {}).get("entry", [])
        return [e["resource"] for e in booked if e["resource"].get("resourceType") != "Appointment"]
    return None


def sample(name: str) -> dict[str, Any]:
    """A packaged sample request by file stem (service/demo/data/requests), with only Patient and
    Coverage prefetched (`as_queried`)."""
    path = next(p for p in request_files() if p.stem == name)
    return as_queried(json.loads(path.read_text(encoding="utf-8")))


@cache
def prefetch_app() -> Flask:
    """One app for the answers from prefetch only (no FHIR server), built once per test run."""
    return create_app(open_settings(), compiled_catalog())


def answer(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The service's answer to a sample request, from prefetch only (no FHIR server)."""
    request = sample(name)
    response = prefetch_app().test_client().post(f"/cds-services/idds-crd-{request['hook']}", json=request)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body, request


def cards_for(
    body: dict[str, Any], url: str = SIGN_URL, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The cards of a call to `url` against a FHIR server that holds nothing for the patient."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(settings or open_settings(), compiled_catalog(), client_factory=factory)
    response = post_json(app.test_client(), url, with_fhir(body))
    assert response.status_code == 200
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards
