"""The documentation round trip against a real FHIR server: the service names the form, the
answers are stored in the EHR as a QuestionnaireResponse, and the next call reads them as evidence."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import DATA
from tests.builders import cards_of
from tests.conformance import COVERAGE_INFO
from tests.integration.conftest import FHIR_TOKEN, LiveService, pointed_at

pytestmark = pytest.mark.integration

PATIENT = "qr-roundtrip"
GAPS = ("it-trial-side-effects", "it-trial-patient-acceptance")


def renamed(value: Any) -> Any:
    """demo-meets' data under another patient id (its own Patient, Coverage, payer and chart)."""
    return json.loads(json.dumps(value).replace("demo-meets", PATIENT))


@pytest.fixture(scope="module")
def patient_without_trial_answers(fhir_server: LocalFhirServer) -> None:
    bundle = renamed(json.loads((DATA / "patients" / "demo-meets.json").read_text(encoding="utf-8")))
    bundle["entry"] = [e for e in bundle["entry"] if not any(gap in json.dumps(e) for gap in GAPS)]
    fhir_server.load(bundle)


def sign(fhir_server: LocalFhirServer, live_service: LiveService) -> dict[str, Any]:
    response = live_service.call(renamed(pointed_at("order-sign-implant-demo-meets", fhir_server.base_url)))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def coverage_of(body: dict[str, Any], order_id: str) -> dict[str, Any]:
    action = next(a for a in body["systemActions"] if a["resource"]["id"] == order_id)
    info = next(e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO)
    return {s["url"]: next(v for k, v in s.items() if k != "url") for s in info["extension"]}


def test_answers_stored_in_the_ehr_are_read_on_the_next_call(
    fhir_server: LocalFhirServer, live_service: LiveService, patient_without_trial_answers: None
) -> None:
    order_id = f"{PATIENT}-sign-sr-62362"
    before = sign(fhir_server, live_service)
    coverage = coverage_of(before, order_id)
    assert coverage["covered"] == "conditional" and coverage["doc-needed"] == "clinical"
    url, version = coverage["questionnaire"].split("|")

    form = requests.get(
        f"{live_service.base_url}/fhir/Questionnaire/{url.rsplit('/', 1)[1]}", timeout=10
    ).json()
    assert (form["url"], form["version"]) == (url, version)
    assert [item["linkId"] for item in form["item"]] == list(GAPS)

    side_effects = next(o for o in form["item"][0]["answerOption"] if o["valueCoding"]["code"] == "none")
    answers = {
        "resourceType": "QuestionnaireResponse",
        "id": f"{PATIENT}-trial-answers",
        "questionnaire": f"{url}|{version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "authored": "2025-10-03T10:00:00Z",
        "item": [
            {"linkId": "it-trial-side-effects", "answer": [side_effects]},
            {"linkId": "it-trial-patient-acceptance", "answer": [{"valueBoolean": True}]},
        ],
    }
    stored = requests.put(
        f"{fhir_server.base_url}/QuestionnaireResponse/{answers['id']}",
        json=answers,
        headers={"Authorization": f"Bearer {FHIR_TOKEN}", "Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert stored.status_code in (200, 201), stored.text

    after = sign(fhir_server, live_service)
    coverage = coverage_of(after, order_id)
    assert coverage["covered"] == "covered" and "questionnaire" not in coverage
    [decision] = cards_of(after["cards"])
    assert decision["summary"] == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
