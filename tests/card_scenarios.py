"""Order-sign calls with rich charts, one per payer and kind of chart, for tests that look at every card.

Each payer's policy is called with a chart that meets most of it, one that fails it in many ways
(short courses, poor trial, contraindications, drug intolerances, assessments answered against),
a cancer chart, a spasticity chart and an empty chart (everything undocumented), for a permanent
implant and, where a policy judges trials, for a trial. The card-words test scans every card these
produce; golden-file tests can render the same calls.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from service.engine.model import Determination
from tests.builders import (
    CPT,
    HCPCS,
    ICD,
    LOINC,
    SOPT,
    allergy,
    assessment,
    baclofen_request,
    coded_assessment,
    condition,
    determine,
    device,
    infusate_request,
    life_expectancy,
    med_request,
    meeting_chart,
    metastasis_stage,
    observation,
    oxycodone,
    pain,
    payer_coverage,
    procedure,
    service_request,
    sign_request,
)
from tests.builders import (
    catalog as compiled_catalog,
)
from tests.calls import sign_with_chart

Chart = list[dict[str, Any]]
Request = dict[str, Any]

MEDICARE = {"type": {"coding": [{"system": SOPT, "code": "1"}], "text": "Medicare"}}
PAYERS: dict[str, dict[str, Any]] = {
    "geha": {},
    "kpwa": {},
    "kpwa-medicare": MEDICARE,
    "cbc": {},
    "cohere": {},
    "cmm210": {},
}


def pain_meets() -> Chart:
    """The GEHA meeting chart with what the other payers read as well: ADLs, therapy, agreements."""
    return [
        *meeting_chart(),
        assessment("life-expectancy-ge-3mo", "2026-10-01", valueBoolean=True),
        assessment("opioid-reduction-agreement", "2025-09-01", valueBoolean=True),
        assessment("mental-health-attestation", valueBoolean=True),
        assessment("psych-clearance", "2025-08-01", valueBoolean=True),
        coded_assessment("opioid-trial-outcome", "ineffective"),
        coded_assessment("further-treatment-status", "not-indicated"),
        assessment("adl-difficulty-months", "2026-10-20", valueInteger=14),
        assessment("it-trial-function-improved", valueBoolean=True),
        assessment("it-trial-pain-relief-pct", valueQuantity={"value": 62, "unit": "%"}),
        med_request("Ibuprofen 800 MG Oral Tablet", "2026-01-01", "2026-09-30", code="197807"),
        med_request(
            "Gabapentin 300 MG Oral Capsule", "2025-01-10", "2025-04-10", "stopped", "dizziness", "310431"
        ),
        procedure("97110", "2026-02-01", display="Therapeutic exercise"),
        procedure("90834", "2026-04-01", display="Psychotherapy, 45 minutes"),
        assessment("home-exercise-program", "2026-03-01", valueBoolean=True),
    ]


def pain_fails() -> Chart:
    """Pain of recent onset, a running short opioid course, a poor trial and contraindications."""
    return [
        condition(ICD, "M54.50", "2026-08-01", "Low back pain"),
        med_request(
            "Oxycodone Hydrochloride 10 MG Oral Tablet", "2026-10-17", status="active", code="1049683"
        ),
        allergy("Morphine", "7052", "intolerance", "2024-05-01"),
        procedure("62324", "2026-10-01T09:00:00Z"),
        pain(8, "2026-09-30T15:00:00Z"),
        pain(7, "2026-10-01T12:00:00Z"),
        assessment("it-trial-pain-relief-pct", "2026-10-02", valueQuantity={"value": 30, "unit": "%"}),
        assessment("it-trial-relief-duration-h", "2026-10-02", valueQuantity={"value": 2, "unit": "h"}),
        coded_assessment("it-trial-side-effects", "unacceptable", "2026-10-02"),
        assessment("it-trial-patient-acceptance", "2026-10-02", valueBoolean=False),
        assessment("it-trial-function-improved", "2026-10-02", valueBoolean=False),
        coded_assessment("psych-clearance", "no", "2026-09-01"),
        coded_assessment("opioid-trial-outcome", "effective", "2026-09-01"),
        assessment("life-expectancy-ge-3mo", "2026-10-01", valueBoolean=False),
        life_expectancy(2, "mo", "2026-09-01"),
        condition(ICD, "L03.311", "2026-11-01", "Cellulitis of abdominal wall"),
        condition(ICD, "F10.20", "2024-01-01", "Alcohol dependence"),
        condition(ICD, "Z95.0", "2018-01-01", "Presence of cardiac pacemaker"),
        device({"text": "Spinal cord stimulator"}),
        observation(LOINC, "39156-5", "2026-10-01", valueQuantity={"value": 14, "unit": "kg/m2"}),
    ]


def cancer() -> Chart:
    """Breast cancer with liver metastases; opioids stopped for sedation; a stage and an estimate."""
    return [
        condition(ICD, "C50.911", "2024-02-01", "Malignant neoplasm of right female breast"),
        condition(ICD, "C78.7", "2026-05-01", "Secondary malignant neoplasm of liver"),
        condition(ICD, "G89.3", "2026-05-01", "Neoplasm related pain"),
        metastasis_stage("M1", "2026-05-01"),
        life_expectancy(8, "mo", "2026-11-01"),
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=True),
        med_request(
            "fentanyl 25 MCG/HR Transdermal System", "2026-06-01", "2026-08-01", "stopped", "sedation"
        ),
        oxycodone("2026-02-01", "2026-05-01", "inadequate analgesia"),
        coded_assessment("trial-waiver-reason", "advanced-disease", "2026-11-01"),
    ]


def spasticity() -> Chart:
    """Cerebral palsy with high tone, oral antispasmodics failed, and a bolus trial."""
    return [
        condition(ICD, "G80.1", "2010-01-01", "Spastic diplegic cerebral palsy"),
        assessment("ashworth-score", "2025-09-01", valueInteger=3),
        coded_assessment("modified-ashworth-score", "2", "2025-09-01"),
        assessment("spasm-frequency-score", "2025-09-01", valueInteger=2),
        med_request(
            "Baclofen 10 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped", "drowsiness", "1292"
        ),
        med_request("Tizanidine 4 MG Oral Tablet", "2025-03-15", "2025-05-01", "stopped", "ineffective"),
        coded_assessment("oral-antispasmodic-outcome", "intolerable", "2025-05-02"),
        procedure("62323", "2025-10-01T09:00:00Z"),
        assessment("it-trial-scale-reduction", "2025-10-01", valueQuantity={"value": 2.5, "unit": "points"}),
        assessment("it-trial-response-duration-h", "2025-10-01", valueQuantity={"value": 6, "unit": "h"}),
    ]


CHARTS = {"pain-meets": pain_meets, "pain-fails": pain_fails, "cancer": cancer, "spasticity": spasticity}


def _orders(chart_name: str, code: str) -> list[dict[str, Any]]:
    drug = baclofen_request() if chart_name == "spasticity" else infusate_request()
    return [service_request(code, HCPCS if code[0].isalpha() else CPT), drug]


@cache
def _scenarios() -> tuple[tuple[str, Request, Chart], ...]:
    found: list[tuple[str, Request, Chart]] = []
    for payer, product in PAYERS.items():
        coverage_key = payer.split("-")[0]
        for chart_name, chart in [*CHARTS.items(), ("empty", list)]:
            for code, kind in (("62362", "implant"), ("62324", "trial")):
                request = sign_request(
                    *_orders(chart_name, code), coverage=payer_coverage(coverage_key, **product)
                )
                found.append((f"{payer}-{chart_name}-{kind}", request, chart()))
    return tuple(found)


def scenarios() -> dict[str, tuple[Request, Chart]]:
    """name → (order-sign request, chart the fake FHIR server holds); fresh copies on every call."""
    return {name: copy.deepcopy((request, chart)) for name, request, chart in _scenarios()}


def answer_with_chart(request: Request, chart: Chart) -> dict[str, Any]:
    """The service's response to `request` against a FHIR server holding `chart`."""
    return sign_with_chart(chart, body=request)[1]


NO_FHIR_SERVER = "the EHR gave no FHIR server address"
CLINICAL_TYPES_READ = (
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "Observation",
    "AllergyIntolerance",
    "Device",
    "QuestionnaireResponse",
)


def determinations() -> dict[str, Determination]:
    """name → the Determination of every policy for every chart and order kind of the scenarios, and of
    an empty chart whose clinical data could not be fetched: the text the cards are made of, before
    any layout."""
    catalog = compiled_catalog()
    found: dict[str, Determination] = {}
    unreadable = dict.fromkeys(CLINICAL_TYPES_READ, NO_FHIR_SERVER)
    for policy_id in catalog.policies:
        for chart_name, chart in [*CHARTS.items(), ("empty", list), ("unavailable", list)]:
            for code, kind in (("62362", "implant"), ("62324", "trial"), ("E0785", "replacement")):
                pump, drug = _orders(chart_name, code)
                unavailable = unreadable if chart_name == "unavailable" else None
                found[f"{policy_id}-{chart_name}-{kind}"] = determine(
                    chart(), pump, (drug,), unavailable=unavailable, policy_id=policy_id
                )
    return found
