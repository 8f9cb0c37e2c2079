"""Real-world-shaped records (Synthea) through the whole data path against a real FHIR server."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from service.catalog import load_catalog
from service.demo.fhir_server import LocalFhirServer
from service.demo.synthea import synthea_files
from service.fhir.client import FhirClient
from service.fhirdates import parse_datetime
from service.hooks.models import parse_hook_request
from service.pipeline import build_environment, default_client_factory
from service.record import PatientRecord, build_record
from service.registry import STANDARD_PREFETCH, service_for_hook
from service.settings import FhirSettings
from tests.integration.conftest import FHIR_TOKEN, LiveService, SyntheaPatient, pointed_at

pytestmark = pytest.mark.integration

BRADLY = "326b4675-0bc8-4dbd-b406-a5564c282401"
MARGARETTE = "0abec82b-edaf-4196-8816-91d83483218e"
FLETCHER = "c5ed5d78-5b3f-4a75-bdfb-5f318b068a20"


def synthea_request(hook: str, patient_id: str, base_url: str) -> dict[str, Any]:
    """A sample pump request re-pointed at a Synthea patient, with no prefetch (all data queried)."""
    name = "order-sign-implant-demo-meets" if hook == "order-sign" else "order-select-62362-demo-meets"
    body = pointed_at(name, base_url)
    body["context"]["patientId"] = patient_id
    body["fhirAuthorization"]["patient"] = patient_id  # the token is scoped to the patient in context
    del body["prefetch"]
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    return body


def record_for(
    fhir_server: LocalFhirServer, patient_id: str, page_size: int = 200
) -> tuple[PatientRecord, Any]:
    catalog = load_catalog()
    settings = FhirSettings(page_size=page_size, deadline_seconds=30, timeout_seconds=20, max_pages=50)
    body = synthea_request("order-select", patient_id, fhir_server.base_url)
    request = parse_hook_request(body, service_for_hook("order-select"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        env = build_environment(settings, catalog, pool)
        client = default_client_factory(settings)(request, time.monotonic() + 30)
        assert isinstance(client, FhirClient)
        today = datetime.now(UTC).date()
        data = env.gatherer.gather(request, STANDARD_PREFETCH, client, time.monotonic() + 30, today=today)
    assert data.unavailable == {}  # sekmet ignores QuestionnaireResponse?patient=: kept by subject instead
    assert all(
        qr["subject"]["reference"] == f"Patient/{patient_id}"
        for qr in data.resources.get("QuestionnaireResponse", [])
    )
    return build_record(patient_id, data.resources, catalog.terminology, data.unavailable), data


def insured(patient: SyntheaPatient) -> bool:
    """Whether the patient's Synthea bundle holds an active Coverage (most hold none)."""
    path = next(p for p in synthea_files() if p.stem == patient.name)
    entries = json.loads(path.read_text(encoding="utf-8"))["entry"]
    return any(
        e["resource"]["resourceType"] == "Coverage" and e["resource"].get("status") == "active"
        for e in entries
    )


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_every_synthea_patient_gets_an_answer(
    hook: str, fhir_server: LocalFhirServer, live_service: LiveService, synthea_patients: list[SyntheaPatient]
) -> None:
    """Every patient gets an answer; on order-sign, a primary hook, one with no active Coverage is
    told so (400 naming the patient whose Coverage was searched), not given an answer without
    coverage information (review s16 inferno I-6). order-select says it on a card."""
    for patient in synthea_patients:
        response = live_service.call(synthea_request(hook, patient.patient_id, fhir_server.base_url))
        if hook == "order-sign" and not insured(patient):
            assert response.status_code == 400, (patient.name, response.text[:500])
            [issue] = response.json()["issue"]
            assert issue["expression"] == ["context.patientId"]
            assert "no active Coverage was sent or found" in issue["diagnostics"]
            continue
        assert response.status_code == 200, (patient.name, response.text[:500])
        cards = response.json()["cards"]
        assert cards, patient.name
        for card in cards:
            assert len(card["summary"]) < 140
            unread = re.findall(
                r"could not be checked: the EHR's ([^(]*) w[a-z]+ not available", card["detail"]
            )
            assert not any("problem list" in parts for parts in unread), patient.name


def test_the_latest_of_forty_old_pain_scores_is_found(
    fhir_server: LocalFhirServer, synthea_patients: list[SyntheaPatient]
) -> None:
    """Bradly's forty pain scores are all older than the recent window (score_window.py): the
    newest page of the older ones is asked for, and the latest score is the chart's latest."""
    record, data = record_for(fhir_server, BRADLY, page_size=10)
    pain = [o for o in record.observations if any(c.code == "72514-3" for c in o.codes)]
    bundle = json.loads(
        next(p for p in synthea_files() if p.name.startswith("Bradly_")).read_text(encoding="utf-8")
    )
    in_chart = [
        parse_datetime(e["resource"]["effectiveDateTime"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and any(c.get("code") == "72514-3" for c in e["resource"]["code"]["coding"])
    ]
    assert len(in_chart) == 40 and len({o.source for o in pain}) == len(pain)
    assert max(o.effective for o in pain if o.effective) == max(d for d in in_chart if d)
    assert data.pages["Observation:painScores:older"] == 1


def test_duplicated_chronic_pain_is_counted_once(
    fhir_server: LocalFhirServer, synthea_patients: list[SyntheaPatient]
) -> None:
    record, _ = record_for(fhir_server, MARGARETTE)
    chronic = [c for c in record.conditions if any(code.code == "82423001" for code in c.codes)]
    assert len(chronic) == 1
    assert len(chronic[0].duplicates) == 18
    assert chronic[0].onset is not None and chronic[0].onset.year == 2004


def test_oxycodone_is_found_from_a_product_code(
    fhir_server: LocalFhirServer, synthea_patients: list[SyntheaPatient]
) -> None:
    record, _ = record_for(fhir_server, FLETCHER)
    oxycodone = next(e for e in record.exposures if e.ingredient == "oxycodone")
    assert oxycodone.days > 42
    products = {c.code for m in record.medications if m.source in oxycodone.sources for c in m.codes}
    assert products and "7804" not in products  # no ingredient code: found by name in the product display


def test_margarettes_device_without_type_and_penicillin_allergy(
    fhir_server: LocalFhirServer, synthea_patients: list[SyntheaPatient]
) -> None:
    record, data = record_for(fhir_server, MARGARETTE)
    assert [c["id"] for c in data.coverages] == ["21581c90-6b7f-4b6e-97f0-fef49dde6316"]
    assert len(record.devices) == 2  # two active, two inactive
    assert all(d.label == "device of unspecified type" for d in record.devices)
    assert [a.label for a in record.allergies] == ["Penicillin V"]


def test_a_prefetch_free_call_reads_patient_and_coverage_with_the_token(
    fhir_server: LocalFhirServer, synthea_patients: list[SyntheaPatient]
) -> None:
    _, data = record_for(fhir_server, MARGARETTE)
    assert data.patient is not None and data.patient["id"] == MARGARETTE
    assert "patient" in data.timings and "coverage" in data.timings
    assert FHIR_TOKEN  # the server rejects calls without it (see test_end_to_end)
