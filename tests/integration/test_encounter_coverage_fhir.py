"""encounter-start/-discharge against a real FHIR server (sekmet-fhir): the hook's Encounter, not
prefetched, is read from the EHR and sent back whole, as the server holds it, with coverage
information added beside the open pump order's (the Inferno CRD kit's encounter groups look for it
on the Encounter)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from service.demo.fhir_server import LocalFhirServer
from tests.conformance import COVERAGE_INFO, reference_of
from tests.integration.conftest import FHIR_TOKEN, LiveService, pointed_at

ENCOUNTER = "Encounter/demo-meets-encounter"
OPEN_ORDER = "ServiceRequest/demo-meets-booked-sr-62362"


def held(server: LocalFhirServer, reference: str) -> dict[str, Any]:
    """The resource as the FHIR server holds it."""
    headers = {"Authorization": f"Bearer {FHIR_TOKEN}"}
    response = requests.get(f"{server.base_url}/{reference}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_the_encounter_read_from_the_ehr_is_sent_back_whole_with_coverage_information(
    hook: str, fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at(f"{hook}-demo-meets", fhir_server.base_url)
    del body["prefetch"]["encounter"]  # read from the EHR's FHIR server
    encounter, order = held(fhir_server, ENCOUNTER), held(fhir_server, OPEN_ORDER)
    response = live_service.call(body, [order, encounter])  # checked for conformance: §resp-37 too
    assert response.status_code == 200, response.text
    actions = {reference_of(a["resource"]): a for a in response.json()["systemActions"]}
    assert set(actions) == {ENCOUNTER, OPEN_ORDER}
    sent = actions[ENCOUNTER]["resource"]
    assert {k: v for k, v in sent.items() if k != "extension"} == encounter  # meta and all, as held
    [repetition] = [e for e in sent["extension"] if e["url"] == COVERAGE_INFO]
    subs = {s["url"]: s for s in repetition["extension"]}
    assert subs["coverage"]["valueReference"]["reference"] == "Coverage/demo-meets-coverage-geha"
    assert subs["covered"]["valueCode"] == "conditional"
    assert "the payer's own requirements apply" in subs["reason"]["valueCodeableConcept"]["text"]
