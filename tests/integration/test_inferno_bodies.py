"""A CRD conformance run's own requests: every request body of the Inferno Da Vinci CRD test kit
(`../shared/inferno-crd/`), replayed against the service with the kit's test data loaded into the
local FHIR server. None of these orders is a pump order: they are what any CRD server receives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from service.demo.fhir_server import LocalFhirServer
from service.registry import SERVICES
from tests.conformance import COVERAGE_INFO
from tests.integration.conftest import FHIR_TOKEN, LiveService

INFERNO_DIR = Path(__file__).resolve().parents[3] / "shared" / "inferno-crd"
PRESET = sorted((INFERNO_DIR / "preset-bodies").glob("*.json"))  # patients and Coverages in the test data
SPEC = sorted((INFERNO_DIR / "spec-fixtures").glob("*_hook_request.json"))  # examples on no server
SERVED = {s.hook for s in SERVICES}
PRIMARY_HOOKS = ("order-sign", "order-dispatch", "appointment-book")
ENCOUNTER_HOOKS = ("encounter-start", "encounter-discharge")


@pytest.fixture(scope="module")
def inferno_server(fhir_server: LocalFhirServer) -> LocalFhirServer:
    bundle = INFERNO_DIR / "crd_transaction_bundle.json"
    if not bundle.is_file():
        pytest.skip(f"the Inferno CRD test data is not beside the repository (looked in {INFERNO_DIR})")
    fhir_server.load_file(bundle)
    return fhir_server


def replayed(path: Path, server: LocalFhirServer) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    body["fhirServer"] = server.base_url
    if isinstance(body.get("fhirAuthorization"), dict):
        body["fhirAuthorization"]["access_token"] = FHIR_TOKEN
    return body


def held_orders(body: dict[str, Any], server: LocalFhirServer) -> list[dict[str, Any]] | None:
    """The orders an update may target beyond draftOrders, as the FHIR server holds them: what the
    Appointments are based on, or what is dispatched (None: only the draft orders)."""
    context = body["context"]
    references = [
        b["reference"]
        for e in context.get("appointments", {}).get("entry", [])
        for b in e["resource"].get("basedOn", [])
    ] + context.get("dispatchedOrders", [context["order"]] if "order" in context else [])
    if not references:
        return None
    prefetched = {
        f"{v['resourceType']}/{v['id']}": v for v in body.get("prefetch", {}).values() if "id" in v
    }  # order-dispatch: the dispatched order as the EHR prefetched it is the one to update
    headers = {"Authorization": f"Bearer {FHIR_TOKEN}"}
    held = [prefetched[ref] for ref in references if ref in prefetched]
    found = [
        requests.get(f"{server.base_url}/{ref}", headers=headers, timeout=10)
        for ref in references
        if ref not in prefetched
    ]
    return held + [r.json() for r in found if r.status_code == 200]


def _informed(answer: dict[str, Any]) -> set[str]:
    return {
        f"{a['resource']['resourceType']}/{a['resource']['id']}"
        for a in answer.get("systemActions", [])
        if COVERAGE_INFO in json.dumps(a["resource"].get("extension", []))
    }


@pytest.mark.parametrize("path", PRESET, ids=[p.stem for p in PRESET])
def test_every_inferno_request_is_answered_with_coverage_information_for_every_order(
    path: Path, inferno_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = replayed(path, inferno_server)
    response = live_service.call(body, held_orders(body, inferno_server))  # checked for conformance
    assert response.status_code == 200, response.text
    answer = response.json()
    context = body["context"]
    informed = _informed(answer)
    if body["hook"] in PRIMARY_HOOKS:
        assert answer.get("systemActions"), "Inferno requires systemActions on the primary hooks"
    for entry in context.get("draftOrders", {}).get("entry", []):
        resource = entry["resource"]
        assert f"{resource['resourceType']}/{resource['id']}" in informed
    for entry in context.get("appointments", {}).get("entry", []):
        assert f"Appointment/{entry['resource']['id']}" in informed
    for reference in context.get("dispatchedOrders", [context["order"]] if "order" in context else []):
        assert reference in informed
    if body["hook"] in ENCOUNTER_HOOKS:  # the kit's encounter groups look for it on the Encounter
        assert f"Encounter/{context['encounterId']}" in informed, "Inferno: coverage information on it"
    assert answer["cards"] == [], "no card for orders no policy here addresses"
    assert "unnamed payer" not in response.text, "the payer the FHIR server names, though not prefetched"


ENCOUNTER_BODIES = [p for p in PRESET if json.loads(p.read_text(encoding="utf-8"))["hook"] in ENCOUNTER_HOOKS]


@pytest.mark.parametrize("path", ENCOUNTER_BODIES, ids=[p.stem for p in ENCOUNTER_BODIES])
def test_the_kits_encounter_is_read_from_the_fhir_server_when_not_prefetched(
    path: Path, inferno_server: LocalFhirServer, live_service: LiveService
) -> None:
    """The kit's encounter bodies without their `encounter` prefetch: the Encounter is read from the
    FHIR server holding the kit's data and annotated as when prefetched."""
    body = replayed(path, inferno_server)
    reference = f"Encounter/{body['context']['encounterId']}"
    del body["prefetch"]["encounter"]
    headers = {"Authorization": f"Bearer {FHIR_TOKEN}"}
    encounter = requests.get(f"{inferno_server.base_url}/{reference}", headers=headers, timeout=10).json()
    response = live_service.call(body, [encounter])  # checked for conformance, against the one held
    assert response.status_code == 200, response.text
    assert reference in _informed(response.json())


SPEC_CALLS = [p for p in SPEC if json.loads(p.read_text(encoding="utf-8"))["hook"] in SERVED]


@pytest.mark.parametrize("path", SPEC_CALLS, ids=[p.stem for p in SPEC_CALLS])
def test_the_kits_example_requests_are_answered_conformantly(
    path: Path, inferno_server: LocalFhirServer, live_service: LiveService
) -> None:
    """The kit's spec examples name a patient the test data does not hold (no Coverage can be
    found, so no coverage information can be given): never a 5xx. A primary hook, whose answer SHALL
    carry coverage information unless erroring (§hook-16), is answered 400 naming the missing
    Coverage, so the EHR can tell "could not look" from "nothing to say" (review s16 inferno I-6);
    a secondary hook, which may answer nothing (§hook-17), 200 and conformant."""
    body = replayed(path, inferno_server)
    response = live_service.call(body, held_orders(body, inferno_server))
    if body["hook"] not in PRIMARY_HOOKS:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert "no active Coverage was sent or found" in issue["diagnostics"]


def test_there_are_inferno_bodies_for_every_primary_hook_and_the_encounter_hooks() -> None:
    if not PRESET:
        pytest.skip("the Inferno CRD test data is not beside the repository")
    hooks = {json.loads(p.read_text(encoding="utf-8"))["hook"] for p in PRESET}
    assert {*PRIMARY_HOOKS, *ENCOUNTER_HOOKS} <= hooks
