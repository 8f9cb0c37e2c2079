"""What the audit row's `assertions` column keeps of a coverage-information repetition the call did not issue
(another source's, on the Encounter or an order, for a Coverage the call judged): what identifies it and what
it determined, each string bounded, and the digest of it as sent; never its free text nor its bulk
(review31c MEDIUM 2: an SSN in its reason or billing code, 400 KB of text or id, 20,000 info-needed reached
the column whole, as df15b1d had already stopped for the Encounter kept in the row's response)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from service.app import create_app
from service.catalog import Catalog
from service.metrics import metric_data
from service.settings import StoreSettings
from service.strict_json import dumps
from tests.builders import carried_approval, catalog
from tests.calls import sample
from tests.support import (
    REQUESTS_DIR,
    RecordingFactory,
    RecordingFhirClient,
    no_client,
    open_settings,
    post_json,
    with_fhir,
)

COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
ENCOUNTER = "Encounter/demo-meets-encounter"
JUDGED = "Coverage/demo-meets-coverage-geha"  # the Coverage encounter-start-demo-meets is judged for
SSN = "123-45-6789"
BULK = "A" * 400_000
EXTRAS = {
    "ssn-in-a-reason": [{"url": "reason", "valueCodeableConcept": {"text": f"SSN {SSN}"}}],
    "ssn-in-a-billing-code": [{"url": "billingCode", "valueCoding": {"code": "x", "display": f"SSN {SSN}"}}],
    "ssn-in-a-contact": [{"url": "contact", "valueContactDetail": {"name": f"SSN {SSN}"}}],
    "ssn-in-a-detail": [{"url": "detail", "extension": [{"url": "qualification", "valueString": SSN}]}],
    "400-kb-reason": [{"url": "reason", "valueCodeableConcept": {"text": BULK}}],
    "20000-info-needed": [{"url": "info-needed", "valueCode": "OTH"} for _ in range(20_000)],
    "20000-questionnaires": [{"url": "questionnaire", "valueCanonical": f"q{i}"} for i in range(20_000)],
}


def theirs(coverage: str, assertion_id: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    """Another source's repetition for `coverage`: conditional, as of 2026-01-05, under `assertion_id`."""
    subs = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "conditional"},
        {"url": "pa-needed", "valueCode": "no-auth"},
        {"url": "info-needed", "valueCode": "performer"},
        {"url": "date", "valueDate": "2026-01-05"},
        {"url": "coverage-assertion-id", "valueString": assertion_id},
        *extra,
    ]
    return {"url": COVERAGE_INFO, "extension": subs}


def recorded_encounter_call(repetition: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The audit trail of encounter-start-demo-meets whose Encounter came with `repetition`, and its row."""
    body = sample("encounter-start-demo-meets")
    body["prefetch"]["encounter"]["extension"] = [repetition]
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(RecordingFhirClient()))
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    [record] = list(trail.between())
    return trail, record


def digest(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("extra", list(EXTRAS.values()), ids=list(EXTRAS))
def test_another_sources_assertion_for_the_judged_coverage_is_kept_as_its_identity_and_determination(
    extra: list[dict[str, Any]],
) -> None:
    """The Encounter came with another source's repetition for the Coverage the call judged, carrying PII
    or bulk beside what it determined (the answer leaves it as it is): the row's assertions keep its
    coverage, covered, pa-needed, info-needed codes (each once), date and assertion id, marked carried,
    with the digest of it as the request brought it; not its reason, billing code, contact, detail or
    questionnaires."""
    repetition = theirs(JUDGED, "x-6", extra)
    _, record = recorded_encounter_call(repetition)
    column = json.dumps(record["assertions"])
    assert SSN not in column and len(column) < 8_000
    [kept] = [a for a in record["assertions"] if a.get("carried")]
    codes = [s["valueCode"] for s in repetition["extension"] if s["url"] == "info-needed"]
    assert kept == {
        "order": ENCOUNTER,
        "coverage": JUDGED,
        "covered": "conditional",
        "pa_needed": "no-auth",
        "info_needed": list(dict.fromkeys(codes)),
        "date": "2026-01-05",
        "assertion_id": "x-6",
        "carried": True,
        "sent_sha256": digest(repetition),
    }


def test_a_carried_assertion_id_is_kept_cut_to_a_bound() -> None:
    """An assertion id of 400 KB is kept, in the column and its index, as its first characters: the call
    is still found by them."""
    repetition = theirs(JUDGED, "x-6" + BULK, [])
    trail, record = recorded_encounter_call(repetition)
    [kept] = [a for a in record["assertions"] if a.get("carried")]
    assert kept["assertion_id"].startswith("x-6A") and len(kept["assertion_id"]) <= 1_024
    assert len(json.dumps(record["assertions"])) < 8_000
    assert [r["hook_instance"] for r in trail.find(kept["assertion_id"])] == [record["hook_instance"]]


def test_a_kept_approval_keeps_what_an_auditor_finds_it_by_and_not_its_free_text(
    compiled_catalog: Catalog,
) -> None:
    """An order-sign whose pump order came with a GEHA approval from the payer's PA system, its reason
    holding an SSN: the row's carried assertion keeps the approval's assertion id, covered, pa-needed,
    PA number and date, so `audit show` of the PA number or the id finds the call (AR-3), and the digest of
    it as sent; not the reason, and it is not exported as this call's determination."""
    body = json.loads(
        (REQUESTS_DIR / "order-select-62362-demo-two-coverages.json").read_text(encoding="utf-8")
    )
    body["hook"] = "order-sign"
    body["context"].pop("selections")
    body["hookInstance"] = str(uuid.uuid4())
    [order] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    approval = carried_approval(
        "Coverage/demo-two-coverages-coverage-geha", "PAS-1", "2026-11-01", "theirs-1"
    )
    approval["extension"].append({"url": "reason", "valueCodeableConcept": {"text": f"gold card, SSN {SSN}"}})
    order["extension"] = [approval]
    app = create_app(
        open_settings(store=StoreSettings(url="sqlite://")), compiled_catalog, client_factory=no_client
    )
    answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answer.status_code == 200
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    assert trail.find("PAS-1") == [record] == trail.find("theirs-1")
    [kept] = [a for a in record["assertions"] if a.get("satisfied_pa_id") == "PAS-1"]
    assert kept == {
        "order": f"ServiceRequest/{order['id']}",
        "coverage": "Coverage/demo-two-coverages-coverage-geha",
        "covered": "covered",
        "pa_needed": "satisfied",
        "satisfied_pa_id": "PAS-1",
        "info_needed": [],
        "date": "2026-11-01",
        "assertion_id": "theirs-1",
        "carried": True,
        "sent_sha256": digest(approval),
    }
    assert SSN not in json.dumps(record["assertions"])
    assert "PAS-1" not in json.dumps(list(metric_data(record)))
