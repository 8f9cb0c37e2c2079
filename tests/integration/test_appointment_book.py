"""appointment-book over HTTP: the booked order is read from a real FHIR server and judged."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from service.demo.fhir_server import LocalFhirServer
from tests.builders import cards_of
from tests.conformance import COVERAGE_INFO
from tests.integration.conftest import FHIR_TOKEN, LiveService, pointed_at

pytestmark = pytest.mark.integration

SAMPLE = "appointment-book-62362-demo-meets"
BOOKED_ORDER = "ServiceRequest/demo-meets-booked-sr-62362"


def held(fhir_server: LocalFhirServer, reference: str) -> dict[str, Any]:
    response = requests.get(
        f"{fhir_server.base_url}/{reference}", headers={"Authorization": f"Bearer {FHIR_TOKEN}"}, timeout=10
    )
    response.raise_for_status()
    resource: dict[str, Any] = response.json()
    return resource


def test_a_booked_implant_is_judged_and_its_order_gets_the_coverage_information(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    order = held(fhir_server, BOOKED_ORDER)
    response = live_service.call(pointed_at(SAMPLE, fhir_server.base_url), [order])
    assert response.status_code == 200
    body = response.json()
    [decision] = cards_of(body["cards"])
    assert decision["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    assert decision["extension"]["davinci-crd.associated-resource"] == [{"reference": BOOKED_ORDER}]
    by_target = {f"{a['resource']['resourceType']}/{a['resource']['id']}": a for a in body["systemActions"]}
    assert set(by_target) == {BOOKED_ORDER, "Appointment/demo-meets-implant-appointment"}  # both carry it
    updated = by_target[BOOKED_ORDER]["resource"]
    assert {k: v for k, v in updated.items() if k != "extension"} == {
        k: v for k, v in order.items() if k != "extension"
    }
    [info] = [e for e in updated["extension"] if e["url"] == COVERAGE_INFO]
    subs = {s["url"]: s for s in info["extension"]}
    assert subs["covered"]["valueCode"] == "covered"
    assert subs["coverage"]["valueReference"]["reference"] == "Coverage/demo-meets-coverage-geha"


def test_under_crd_2_2_only_the_order_a_booking_is_based_on_gets_the_coverage_information(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    """CRD 2.2: an Appointment based on a ServiceRequest is annotated on the ServiceRequest, not the
    Appointment: one assertion per service and Coverage (UM review UM-2). A 2.0.1 call keeps both (the
    Inferno kit looks for it on the Appointment)."""
    body = pointed_at(SAMPLE, fhir_server.base_url)
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    response = live_service.call(body, [held(fhir_server, BOOKED_ORDER)])
    targets = [
        f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in response.json()["systemActions"]
    ]
    assert targets == [BOOKED_ORDER]


def test_an_order_the_server_does_not_have_is_reported(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at(SAMPLE, fhir_server.base_url)
    appointment = body["context"]["appointments"]["entry"][0]["resource"]
    appointment["basedOn"] = [{"reference": "ServiceRequest/no-such-order"}]
    [card] = live_service.call(body).json()["cards"]
    assert card["summary"] == "Coverage not checked: the order this appointment is for could not be read"
    assert "Appointment/demo-meets-implant-appointment" in card["detail"]
    assert "ServiceRequest/no-such-order" in card["detail"] and "does not have it" in card["detail"]


def test_a_refused_read_degrades_to_could_not_check(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    response = live_service.call(pointed_at(SAMPLE, fhir_server.base_url, token="wrong-token"))
    assert response.status_code == 200
    [card] = response.json()["cards"]
    assert "did not return it (HTTP 401)" in card["detail"]
    assert "wrong-token" not in response.text
