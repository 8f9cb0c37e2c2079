"""Small builders of FHIR R4 resources and engine contexts for tests (dicts in, values out)."""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache
from typing import Any

import pytest

from cards.coverage_information import EXTENSION_URL
from cards.items import finding, missing
from service.catalog import Catalog, load_catalog
from service.engine.context import EvaluationContext
from service.engine.evaluate import evaluate_order
from service.engine.model import CriterionResult, Determination
from service.infusates import infusates
from service.orders import DraftOrders, recognise
from service.record import build_record

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ASSESS = "http://idds-crd.org/fhir/CodeSystem/idds-assessment"
PAYER_ID = "http://idds-crd.org/fhir/sid/payer-id"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
TODAY = date(2026, 11, 21)
PATIENT = "p1"

GEHA_CRITERIA = [
    "geha.chronic-pain.duration-6mo",
    "geha.chronic-pain.known-cause",
    "geha.chronic-pain.opioid-failure-6wk",
    "geha.chronic-pain.underlying-tx-failed",
    "geha.trial.relief-ge50",
    "geha.trial.no-side-effects",
    "geha.trial.patient-acceptance",
    "geha.ci.psych-instability",
    "geha.ci.infection",
    "geha.ci.sud",
    "geha.ci.allergy-agent",
    "geha.excl.programmable-device",
    "geha.excl.infusate",
    "geha.doc.psych-eval",
]

_counter = {"n": 0}


def _id(prefix: str) -> str:
    _counter["n"] += 1
    return f"{prefix}-{_counter['n']}"


@cache
def catalog() -> Catalog:
    return load_catalog()


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def condition(
    system: str,
    code: str,
    onset: str | None = "2024-01-01",
    display: str | None = None,
    status: str | None = "active",
    recorded: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _id("cond"),
        "code": concept(system, code, display),
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    if status:
        resource["clinicalStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status
        )
    if onset:
        resource["onsetDateTime"] = onset
    if recorded:
        resource["recordedDate"] = recorded
    resource.update(extra)
    return resource


def med_statement(
    drug: dict[str, Any],
    status: str = "active",
    start: str | None = None,
    end: str | None = None,
    **dated: Any,
) -> dict[str, Any]:
    """A MedicationStatement of `drug` (a CodeableConcept), dated by `effectivePeriod` from `start`
    (to `end`) or by what `dated` gives (`effectiveDateTime=...`)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": _id("ms"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": drug,
        **dated,
    }
    if start is not None:
        resource["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
    return resource


def med_request(
    display: str,
    authored: str,
    end: str | None = None,
    status: str = "completed",
    reason: str | None = None,
    code: str = "999999",
    route: str | None = None,
    supply_days: int | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": _id("mr"),
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": concept(RX, code, display),
        "authoredOn": authored,
    }
    if end:
        resource["dispenseRequest"] = {"validityPeriod": {"start": authored, "end": end}}
    elif supply_days is not None:
        resource["dispenseRequest"] = {
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        }
    if reason:
        resource["statusReason"] = {"text": reason}
    if route:
        resource["dosageInstruction"] = [{"route": {"text": route}}]
    return resource


def procedure(
    code: str, performed: str, system: str = CPT, display: str | None = None, status: str = "completed"
) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": _id("proc"),
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(system, code, display or f"CPT {code}"),
        "performedDateTime": performed,
    }


def steroid_injection(
    code: str,
    when: str,
    steroid: str = "triamcinolone acetonide 40 MG/ML Injectable Suspension",
    rxcui: str | None = None,
) -> dict[str, Any]:
    """A procedure of `code` that injected a steroid (`usedCode`): an epidural steroid injection
    whatever the code, even one of the trial codes 62320-62327 (AMB-34). With `rxcui` the steroid is
    recorded by that RxNorm code alone: no text, no display."""
    resource = procedure(code, when)
    resource["usedCode"] = [concept(RX, rxcui)] if rxcui else [{"text": steroid}]
    return resource


# RxNorm codes of steroids an epidural injection uses, each an ingredient or an injectable product of
# it (policies/notes/rxnorm.md): the codes a Procedure may record its steroid by, with no name.
STEROID_RXCUIS = {
    "6902": "methylprednisolone",
    "1743779": "1 ML methylprednisolone acetate 40 MG/ML Injection",
    "1358612": "methylprednisolone acetate 40 MG/ML Injectable Suspension [Depo-Medrol]",
    "10759": "triamcinolone",
    "1085754": "triamcinolone acetonide 40 MG/ML Injectable Suspension",
    "3264": "dexamethasone",
    "1812194": "1 ML dexamethasone phosphate 4 MG/ML Injection",
    "1514": "betamethasone",
    "578803": "betamethasone 3 MG/ML / betamethasone acetate 3 MG/ML Injectable Suspension",
}


def observation(system: str, code: str, when: str, **value: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": "final",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(system, code),
        "effectiveDateTime": when,
    }
    resource.update(value)
    return resource


def life_expectancy(value: float, unit: str, when: str) -> dict[str, Any]:
    """A LOINC 75327-7 estimate (contract §3), `unit` a UCUM code: a, mo, wk or d."""
    quantity = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    return observation(LOINC, "75327-7", when, valueQuantity=quantity)


def metastasis_stage(value: str, when: str, loinc: str = "21907-1") -> dict[str, Any]:
    """A distant-metastasis TNM stage (LOINC 21907-1 clinical, 21901-4 pathological), e.g. M1 or pM1b."""
    stage = {"coding": [{"system": "http://cancerstaging.org", "code": value}], "text": value}
    return observation(LOINC, loinc, when, valueCodeableConcept=stage)


def pain(score: float, when: str) -> dict[str, Any]:
    return observation(LOINC, "72514-3", when, valueInteger=int(score))


def assessment(code: str, when: str = "2025-10-02", **value: Any) -> dict[str, Any]:
    return observation(ASSESS, code, when, **value)


def coded_assessment(code: str, value: str, when: str = "2025-10-02") -> dict[str, Any]:
    return assessment(code, when, valueCodeableConcept=concept(ASSESS, value))


def muscle_ashworth(score: int, when: str, muscle: str) -> dict[str, Any]:
    """An Ashworth score of one muscle group (contract §5, "per muscle": `bodySite` as text)."""
    return assessment("ashworth-score", when, valueInteger=score, bodySite={"text": muscle})


def device(type_concept: dict[str, Any], status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": _id("dev"),
        "status": status,
        "type": type_concept,
        "patient": {"reference": f"Patient/{PATIENT}"},
    }


PUMP_IN_PLACE = device({"text": "SynchroMed II intrathecal pump"})  # an implanted pump, by its words


def allergy(
    display: str, code: str = "0", kind: str = "allergy", recorded: str | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": _id("allergy"),
        "type": kind,
        "patient": {"reference": f"Patient/{PATIENT}"},
        "code": concept(RX, code, display),
    }
    if recorded:
        resource["recordedDate"] = recorded
    return resource


def service_request(
    code: str = "62362", system: str = CPT, reason: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": _id("sr"),
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": concept(system, code, f"order {code}"),
    }
    if reason:
        resource["reasonCode"] = reason
    return resource


INTRATHECAL_ROUTE = "72607000"
ORAL_ROUTE = "26643006"


def infusate_request(
    display: str = "morphine sulfate 25 MG/ML Injectable Solution",
    code: str = "7052",
    status: str = "draft",
    route: str = INTRATHECAL_ROUTE,
) -> dict[str, Any]:
    """A pump drug order: a draft order by default; `status="active"` is the drug in the chart's pump."""
    return {
        "resourceType": "MedicationRequest",
        "id": _id("inf"),
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": concept(RX, code, display),
        "dosageInstruction": [{"route": concept(SCT, route)}],
    }


def baclofen_request(status: str = "draft", route: str = INTRATHECAL_ROUTE) -> dict[str, Any]:
    return infusate_request("baclofen 2 MG/ML Injectable Solution", "1292", status, route)


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def searchset(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    """A page of search results, as a FHIR server answers a search (with its `next` link)."""
    page: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        page["link"] = [{"relation": "next", "url": next_url}]
    return page


def payer_coverage(payer_id: str, **fields: Any) -> dict[str, Any]:
    """An active Coverage of PATIENT paid by the demo payer id `payer_id`; `fields` add type, class..."""
    return {
        "resourceType": "Coverage",
        "id": _id("cov"),
        "status": "active",
        "beneficiary": {"reference": f"Patient/{PATIENT}"},
        "payor": [{"identifier": {"system": PAYER_ID, "value": payer_id}}],
        **fields,
    }


def sign_request(*orders: dict[str, Any], coverage: dict[str, Any] | None = None) -> dict[str, Any]:
    """An order-sign call for PATIENT ordering `orders`, with `coverage` (GEHA when None) prefetched."""
    covered = coverage or payer_coverage("geha")
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/pr1", "patientId": PATIENT, "draftOrders": bundle(*orders)},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": PATIENT},
            "coverage": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": covered}]},
        },
    }


def context(
    chart: list[dict[str, Any]],
    order: dict[str, Any] | None = None,
    drugs: tuple[dict[str, Any], ...] | None = None,
    companions: tuple[dict[str, Any], ...] = (),
    unavailable: dict[str, str] | None = None,
    today: date = TODAY,
) -> EvaluationContext:
    """An evaluation context for a chart given as a list of FHIR resources and one pump order."""
    order = order or service_request()
    drug_orders = drugs if drugs is not None else (infusate_request(),)
    drafts = DraftOrders(bundle(order, *companions, *drug_orders))
    cat = catalog()
    pump = recognise(order, drafts, cat.order_codes)
    assert pump is not None, "the test order is not a pump order"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chart:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    record = build_record(PATIENT, by_type, cat.terminology, unavailable)
    orders = [o for r in drafts.resources if (o := recognise(r, drafts, cat.order_codes))]
    episode = frozenset(o.kind for o in orders)
    drugs = infusates(drafts, cat.terminology, orders, by_type).found
    return EvaluationContext(record, cat.terminology, today, pump, drugs, episode)


def determine(
    chart: list[dict[str, Any]],
    order: dict[str, Any] | None = None,
    drugs: tuple[dict[str, Any], ...] | None = None,
    companions: tuple[dict[str, Any], ...] = (),
    unavailable: dict[str, str] | None = None,
    today: date = TODAY,
    policy_id: str = "geha-idds-chronic-pain",
) -> Determination:
    """Evaluate one policy for one order against a chart given as a list of FHIR resources."""
    ctx = context(chart, order, drugs, companions, unavailable, today)
    return evaluate_order(catalog().policies[policy_id], ctx)


def finding_of(d: Determination, criterion: str) -> str:
    """The finding of one criterion, children included."""
    found = [r.finding for top in d.criteria for r in top.walk() if r.id == criterion]
    assert found, criterion
    return found[0]


def statuses(d: Determination) -> dict[str, str]:
    """criterion id → status, children included."""
    result: dict[str, str] = {}

    def walk(results: Any) -> None:
        for r in results:
            result[r.id] = r.status.value
            walk(r.children)

    walk(d.criteria)
    return result


def result_of(d: Determination, criterion: str) -> CriterionResult:
    """The result of one criterion, wherever it is in the tree."""
    return next(r for top in d.criteria for r in top.walk() if r.id == criterion)


def card_line(d: Determination, criterion: str) -> str:
    """How a card states one criterion: its label and finding, with what the deciding form overrules."""
    result = result_of(d, criterion)
    return f"{result.label}: {finding(result)}"


def meeting_chart() -> list[dict[str, Any]]:
    """A chart meeting every GEHA criterion for a permanent implant."""
    return [
        condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome"),
        oxycodone(),
        med_request(
            "morphine sulfate 10 MG/ML Injectable Solution",
            "2025-04-15",
            "2025-06-15",
            "stopped",
            reason="nausea",
            code="892531",
        ),
        procedure("64483", "2024-05-02"),
        procedure("90791", "2025-08-01"),
        procedure("62324", "2025-10-01T09:00:00Z"),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(4, "2025-10-01T12:00:00Z"),
        pain(3, "2025-10-01T18:00:00Z"),
        coded_assessment("it-trial-side-effects", "none"),
        assessment("it-trial-patient-acceptance", valueBoolean=True),
    ]


def codes_of(resource: dict[str, Any]) -> set[str]:
    """Every code of a resource's `code` or `medicationCodeableConcept` (any system)."""
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    return {c.get("code") for c in concept.get("coding", [])}


def problem_list_unread(chart: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`chart` as a call sees it when the EHR's Condition search failed: none of its Conditions."""
    return [r for r in chart if r.get("resourceType") != "Condition"]


def without_codes(chart: list[dict[str, Any]], *codes: str) -> list[dict[str, Any]]:
    """The chart without the resources coded with any of `codes` (what scenario tests remove by)."""
    return [r for r in chart if not codes_of(r) & set(codes)]


def oxycodone(
    start: str = "2025-01-10", end: str = "2025-04-10", reason: str = "inadequate analgesia"
) -> dict[str, Any]:
    """A stopped oral oxycodone 10 mg order: the systemic opioid trial most scenarios use."""
    return med_request(
        "Oxycodone Hydrochloride 10 MG Oral Tablet", start, end, "stopped", reason=reason, code="1049683"
    )


def fentanyl_patch_stopped() -> dict[str, Any]:
    """Transdermal fentanyl stopped for sedation: the systemic opioid trial of the cancer-pain scenarios."""
    return med_request(
        "fentanyl 25 MCG/HR Transdermal System",
        "2026-06-01",
        "2026-08-01",
        "stopped",
        reason="sedation",
        code="245134",
    )


OXYCODONE_TABLET = ("Oxycodone Hydrochloride 10 MG Oral Tablet", "1049683")
BACLOFEN_TABLET = ("baclofen 10 MG Oral Tablet", "1292")


def drug_failure_forms(drug: tuple[str, str], outcome: str) -> list[Any]:
    """Charts where the forms of one drug failure (contract §3) disagree or are absent, each with the
    status the most recent documented form gives: `drug` (display, code) stopped with a reason or
    not tolerated, against the `outcome` assessment (opioid-trial-outcome, oral-antispasmodic-outcome)."""
    older, newer = "2025-03-01", "2025-09-01"

    def stopped(authored: str, end: str) -> dict[str, Any]:
        return med_request(drug[0], authored, end, "stopped", reason="inadequate relief", code=drug[1])

    return [
        pytest.param(
            [stopped("2025-06-01", newer), coded_assessment(outcome, "effective", older)],
            "met",
            id="newer-stopped-order-overrules-effective",
        ),
        pytest.param(
            [stopped("2025-01-01", older), coded_assessment(outcome, "effective", newer)],
            "not-met",
            id="newer-effective-overrules-stopped-order",
        ),
        pytest.param(
            [stopped("2025-02-01", newer), coded_assessment(outcome, "effective", older)],
            "not-met",
            id="an-order-dated-by-its-authoredOn-not-its-supply-end",
        ),
        pytest.param(
            [allergy(drug[0], drug[1], "intolerance", newer), coded_assessment(outcome, "effective", older)],
            "met",
            id="newer-intolerance-overrules-effective",
        ),
        pytest.param([], "not-documented", id="no-form-documented"),
    ]


def device_removal_charts() -> list[Any]:
    """Charts where a device's presence and its removal (CPT 33233 pacemaker generator removal, which
    the value set's `removals` ties to Z95.0) disagree, with the status of the "no other programmable
    device" exclusion the most recent documented one gives (contract §3)."""
    pacemaker = ("Z95.0", "2018-01-01", "Presence of cardiac pacemaker")
    return [
        pytest.param(
            [condition(ICD, *pacemaker), procedure("33233", "2024-01-01")], "met", id="z95-then-removal"
        ),
        pytest.param(
            [condition(ICD, *pacemaker), procedure("33233", "2024-01-01"), procedure("33208", "2025-01-01")],
            "not-met",
            id="removal-then-re-implant",
        ),
        pytest.param(
            [procedure("33233", "2024-01-01"), condition(ICD, "Z95.0", "2025-03-01")],
            "not-met",
            id="removal-then-newer-presence-code",
        ),
        pytest.param(
            [condition(ICD, "Z96.41", "2018-01-01"), procedure("33233", "2024-01-01")],
            "not-met",
            id="a-pacemaker-removal-leaves-an-insulin-pump",
        ),
        pytest.param(
            [condition(ICD, "z950", "2018-01-01"), procedure("33233", "2024-01-01")],
            "met",
            id="undotted-lower-case-presence-then-removal",
        ),
        # on one day the presence stands, whatever the hours (the tie rule: "not met" beats "met" on one
        # date, as engine/forms weighs forms; words24): a pacemaker implanted at 09:00 and a generator
        # removed at 10:30 is a replacement as likely as a removal, and a dated-only Z95.0 has no hour
        pytest.param(
            [procedure("33208", "2024-01-01T09:00:00Z"), procedure("33233", "2024-01-01T10:30:00Z")],
            "not-met",
            id="implant-and-removal-on-one-day",
        ),
        pytest.param(
            [condition(ICD, "Z95.0", "2024-01-01"), procedure("33233", "2024-01-01T10:30:00Z")],
            "not-met",
            id="presence-code-and-removal-on-one-day",
        ),
        pytest.param(
            [procedure("33208", "2024-01-01T09:00:00Z"), procedure("33233", "2024-01-02T08:00:00Z")],
            "met",
            id="implant-then-removal-the-next-day",
        ),
        pytest.param([], "met", id="none-documented"),
    ]


def pain_trial(
    before: float = 8, after: float = 3, code: str = "62324", when: str = "2025-10-01T09:00:00Z"
) -> list[dict[str, Any]]:
    """A trial procedure with a pain score the afternoon before and one four hours after it."""
    return [procedure(code, when), pain(before, "2025-09-30T15:00:00Z"), pain(after, "2025-10-01T13:00:00Z")]


def cards_of(cards: list[dict[str, Any]], topic: str = "coverage-info") -> list[dict[str, Any]]:
    """The cards of one kind (by source.topic code): coverage-info, guideline or clinical-reminder."""
    return [c for c in cards if c.get("source", {}).get("topic", {}).get("code") == topic]


def documentation_steps(d: Determination) -> tuple[str, ...]:
    """The Instructions card's steps for what the determination leaves missing."""
    return tuple(item.instruction for item in missing(d))


def carried_approval(
    coverage: str, number: str, written: str, assertion_id: str, billing_code: str | None = None
) -> dict[str, Any]:
    """A coverage-information repetition an order carries back: covered, prior authorization
    `number` satisfied for `coverage` (`Coverage/id`), asserted on `written` (a date) as
    `assertion_id`, for the CPT `billing_code` when one is given."""
    subs: list[dict[str, Any]] = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "covered"},
        {"url": "pa-needed", "valueCode": "satisfied"},
        {"url": "satisfied-pa-id", "valueString": number},
    ]
    if billing_code is not None:
        subs.append({"url": "billingCode", "valueCoding": {"system": CPT, "code": billing_code}})
    subs += [
        {"url": "date", "valueDate": written},
        {"url": "coverage-assertion-id", "valueString": assertion_id},
    ]
    return {"url": EXTENSION_URL, "extension": subs}


UNKNOWN_MODIFIER = [{"url": "http://example.org/unknown-modifier", "valueBoolean": True}]


def modified(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` carrying a modifier extension this service does not understand (so it cannot be read)."""
    return {**resource, "modifierExtension": UNKNOWN_MODIFIER}
