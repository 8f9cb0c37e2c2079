"""What a drafted order references and only the EHR's FHIR server holds is read from it, however the
reference is written: the Medication of the pump's drug (contract §3, a referenced `Medication.code`)
and the Device of a hardware order (contract §2, `DeviceRequest.codeReference`)."""

from __future__ import annotations

from typing import Any

import pytest

from service.demo.fhir_server import LocalFhirServer
from tests.builders import cards_of
from tests.integration.conftest import LiveService, pointed_at

pytestmark = pytest.mark.integration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def loaded(server: LocalFhirServer, resource: dict[str, Any]) -> None:
    """`resource` put on the FHIR server under its own id (no patient: no chart search finds it)."""
    reference = f"{resource['resourceType']}/{resource['id']}"
    server.load(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": resource, "request": {"method": "PUT", "url": reference}}],
        }
    )


def drafted(body: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == resource_type
    )


@pytest.mark.parametrize(
    ("written", "read"),
    [("Medication/{id}", True), ("https://formulary.example.org/fhir/Medication/{id}", False)],
    ids=["on-the-calls-server", "on-another-server"],
)
def test_the_pump_drugs_medication_is_read_from_the_calls_server_only(
    fhir_server: LocalFhirServer, live_service: LiveService, written: str, read: bool
) -> None:
    """Before, only the chart's drug orders had their Medications read: Kaiser's card asked for the
    opioid infusate ("the ordered drug could not be identified") although it was ordered. One named
    by another server's URL is that server's: the call's server holding a Medication of the same id
    is no answer (as for a hardware order's Device)."""
    loaded(
        fhir_server,
        {
            "resourceType": "Medication",
            "id": "idds-test-draft-morphine",
            "code": {"coding": [{"system": RXNORM, "code": "7052", "display": "morphine"}]},
        },
    )
    body = pointed_at("order-select-62362-demo-kpwa-meets", fhir_server.base_url)
    drug = drafted(body, "MedicationRequest")
    del drug["medicationCodeableConcept"]
    drug["medicationReference"] = {"reference": written.format(id="idds-test-draft-morphine")}
    answer = live_service.call(body)
    assert answer.status_code == 200
    [decision] = cards_of(answer.json()["cards"])
    met = decision["summary"] == "Kaiser Permanente Washington: 62362 meets all 6 coverage criteria"
    assert met == read, decision["summary"]


def test_a_hardware_orders_device_named_by_its_full_url_on_the_calls_server_is_read(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    """Before, an absolute reference was handed to the client's read as it was, which reads only
    `Type/id`: the E0786 order was not recognised and the call had no decision card."""
    loaded(
        fhir_server,
        {
            "resourceType": "Device",
            "id": "idds-test-e0786",
            "status": "active",
            "type": {"coding": [{"system": HCPCS, "code": "E0786"}]},
        },
    )
    body = pointed_at("order-select-62362-demo-cmm210-replacement", fhir_server.base_url)
    hardware = drafted(body, "DeviceRequest")
    body["context"]["selections"] = [f"DeviceRequest/{hardware['id']}"]
    del hardware["codeCodeableConcept"]
    hardware["codeReference"] = {"reference": f"{fhir_server.base_url}/Device/idds-test-e0786"}
    answer = live_service.call(body)
    assert answer.status_code == 200
    decisions = cards_of(answer.json()["cards"])
    assert decisions and all("E0786" in card["summary"] for card in decisions), decisions
