"""The trials already ordered, read from the real FHIR server (sekmet-fhir) by the two searches the
order hooks declare (`openTrialOrders`, `openTrialDeviceOrders`): an open C2626 DeviceRequest (the
temporary trial pump, contract §2, coded in `codeCodeableConcept` or by the patient's Device its
`codeReference` names) withholds the "order the trial" proposal as an open trial ServiceRequest does;
one written in 2019 and never done does not (review s17 review2 N-4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import patient_files
from tests.builders import cards_of
from tests.integration.conftest import LiveService, pointed_at

pytestmark = pytest.mark.integration

BASE = "demo-insufficient"  # no trial on the chart: the proposal is made unless one is ordered
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def _renamed(value: Any, patient_id: str) -> Any:
    return json.loads(json.dumps(value).replace(BASE, patient_id))


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def _order(
    patient_id: str, resource_type: str, system: str, code: str, authored: str
) -> list[dict[str, Any]]:
    """The open order's transaction entries: a `DeviceRequest:device` one is coded by its Device
    (`codeReference`, contract §2), the patient's, which the entries hold too (inactive: not in use)."""
    concept = {"coding": [{"system": system, "code": code}]}
    resource = {
        "resourceType": resource_type.partition(":")[0],
        "id": f"{patient_id}-trial",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
    }
    if resource_type == "ServiceRequest":
        return [_entry({**resource, "code": concept})]
    if resource_type == "DeviceRequest":
        return [_entry({**resource, "codeCodeableConcept": concept})]
    device = {
        "resourceType": "Device",
        "id": f"{patient_id}-pump",
        "status": "inactive",
        "patient": {"reference": f"Patient/{patient_id}"},
        "type": concept,
    }
    return [_entry({**resource, "codeReference": {"reference": f"Device/{device['id']}"}}), _entry(device)]


def _days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("patient_id", "resource_type", "system", "code", "authored", "proposed"),
    [
        ("trial-ordered-sr", "ServiceRequest", CPT, "62323", _days_ago(6), False),
        ("trial-ordered-device", "DeviceRequest", HCPCS, "C2626", _days_ago(6), False),
        ("trial-ordered-device-ref", "DeviceRequest:device", HCPCS, "C2626", _days_ago(6), False),
        ("trial-ordered-2019", "ServiceRequest", CPT, "62323", "2019-02-01", True),
    ],
    ids=["service-request", "device-request", "device-request-coded-by-its-device", "left-behind-since-2019"],
)
def test_the_trials_already_ordered_are_read_from_the_fhir_server(
    fhir_server: LocalFhirServer,
    live_service: LiveService,
    patient_id: str,
    resource_type: str,
    system: str,
    code: str,
    authored: str,
    proposed: bool,
) -> None:
    chart = _renamed(
        json.loads(next(p for p in patient_files() if p.stem == BASE).read_text("utf-8")), patient_id
    )
    chart["entry"] += _order(patient_id, resource_type, system, code, authored)
    fhir_server.load(chart)
    body = _renamed(pointed_at(f"order-select-62362-{BASE}", fhir_server.base_url), patient_id)
    response = live_service.call(body)
    assert response.status_code == 200, response.text[:300]
    proposals = [c for c in cards_of(response.json()["cards"], "clinical-reminder") if "suggestions" in c]
    assert len(proposals) == (1 if proposed else 0)
