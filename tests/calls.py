"""Calling the service the way an EHR does, against a fake FHIR server holding a given chart."""

from __future__ import annotations

from typing import Any

from service.app import create_app
from service.catalog import Catalog
from service.fhir.client import SearchResult
from service.settings import Settings
from tests.conformance import check_response
from tests.unit.test_validation import (
    RecordingFactory,
    RecordingFhirClient,
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
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) of an order-sign (the sample unless `body`; any hook `body` names) against
    a fake FHIR server holding `chart`, with `options` as the call's davinci-crd.configuration."""
    body = body or sign_body()
    request = with_fhir(configured(body, **options) if options else body)
    url = f"/cds-services/idds-crd-{request['hook']}"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chart:
        resource = {**resource, "subject": {"reference": f"Patient/{request['context']['patientId']}"}}
        by_type.setdefault(resource["resourceType"], []).append(resource)

    class ChartClient(RecordingFhirClient):
        def search(self, resource_type: str, params: dict[str, Any]) -> SearchResult:
            super().search(resource_type, params)
            return SearchResult(by_type.get(resource_type, []), [], 1)

    app = create_app(Settings(), catalog, client_factory=RecordingFactory(ChartClient()))
    response = post_json(app.test_client(), url, request)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert check_response(body, request) == []
    return request, body
