"""A diagnosis or an allergen coded in SNOMED CT is the same fact as its ICD-10-CM or RxNorm form
(contract §3: "Condition.code in ICD-10-CM or SNOMED CT"; an allergy's "RxNorm ingredient or SNOMED
substance"). Before, these SNOMED CT forms were unknown: a recent schizophrenia or pneumonia left
GEHA's absence rules "none documented" and the order met; a hydromorphone allergy coded as a SNOMED
substance was no allergy; a breast cancer with bone metastases was judged as non-malignant pain
(contract review F1, F3). Codes and their sources: policies/notes/snomed.md."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.model import Outcome
from tests.builders import (
    ICD,
    SCT,
    condition,
    determine,
    infusate_request,
    meeting_chart,
    service_request,
    statuses,
)

RECENT = "2026-11-20"


@pytest.mark.parametrize(
    ("criterion", "icd", "snomed"),
    [
        ("geha.ci.psych-instability", "F20.9", "58214004"),  # schizophrenia
        ("geha.ci.psych-instability", "F25.9", "68890003"),  # schizoaffective disorder
        ("geha.ci.psych-instability", "F31.9", "13746004"),  # bipolar disorder
        ("geha.ci.infection", "J18.9", "233604007"),  # pneumonia
        ("geha.ci.infection", "N39.0", "68566005"),  # urinary tract infection
        ("geha.ci.infection", "G03.9", "7180009"),  # meningitis
    ],
)
def test_a_snomed_diagnosis_decides_as_its_icd_form_does(criterion: str, icd: str, snomed: str) -> None:
    by_icd = determine([*meeting_chart(), condition(ICD, icd, RECENT)])
    by_snomed = determine([*meeting_chart(), condition(SCT, snomed, RECENT)])
    assert statuses(by_icd)[criterion] == statuses(by_snomed)[criterion] == "not-met"
    assert by_snomed.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("drug", "rxcui", "substance"),
    [
        ("hydromorphone 10 MG/ML Injectable Solution", "3423", "44508008"),
        ("hydromorphone 10 MG/ML Injectable Solution", "3423", "387485001"),  # its hydrochloride
        ("fentanyl 50 MCG/ML Injectable Solution", "4337", "373492002"),
        ("morphine sulfate 25 MG/ML Injectable Solution", "7052", "60886004"),  # morphine sulfate
        ("ziconotide 100 MCG/ML Injectable Solution", "0", "416512006"),
        ("bupivacaine 7.5 MG/ML Injectable Solution", "1815", "387150008"),
        ("clonidine 0.5 MG/ML Injectable Solution", "2599", "372805007"),
    ],
)
def test_an_allergy_to_the_pump_drug_coded_as_a_snomed_substance_counts(
    drug: str, rxcui: str, substance: str
) -> None:
    allergy: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "allergy-snomed",
        "type": "allergy",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": substance}]},
    }
    d = determine(
        [*meeting_chart(), allergy], order=service_request("62362"), drugs=(infusate_request(drug, rxcui),)
    )
    assert statuses(d)["geha.ci.allergy-agent"] == "not-met"


def test_a_snomed_coded_breast_cancer_with_bone_metastases_is_cancer_pain() -> None:
    chart = [condition(SCT, "254837009", "2024-02-01"), condition(SCT, "94222008", "2025-06-01")]
    d = determine(chart, order=service_request("62324"), drugs=(infusate_request(),))
    assert d.indication == "cancer-pain"
    assert d.outcome == Outcome.NOT_APPLICABLE  # GEHA addresses non-malignant pain only
    cohere = determine(chart, order=service_request("62324"), policy_id="cohere-intrathecal-pain-pumps")
    assert statuses(cohere)["cohere.cancer.metastatic"] == "met"


def test_a_snomed_coded_bone_metastasis_raises_the_thecal_sac_question_as_c79_51_does() -> None:
    """The metastasis set reads 94222008 as C79.51; so must the thecal-sac proxies, or the SNOMED chart
    meets Cohere's cancer block with no imaging answer while its ICD twin asks for it (s35 review R8)."""
    from tests.policy_charts import TRIAL_ORDER, cancer_chart, cohere

    base = [r for r in cancer_chart() if "C78.7" not in str(r)]
    outcomes = {
        code: cohere([*base, condition(system, code, "2026-05-01")], order=TRIAL_ORDER)
        for system, code in ((ICD, "C79.51"), (SCT, "94222008"))
    }
    assert [statuses(d)["cohere.nonind.thecal-sac-tumor"] for d in outcomes.values()] == [
        "not-documented"
    ] * 2
    assert outcomes["C79.51"].outcome == outcomes["94222008"].outcome
