"""Capital Blue Cross MP 1.058 (pain and spasticity pumps), evaluated by the pure engine on charts
built in the test: the pain and spasticity branches, the FDA-drug rule, the > 50 % trial, scope."""

from __future__ import annotations

from typing import Any

import pytest

from service.catalog import load_catalog
from service.codes import Code
from service.engine.model import Determination, Outcome
from tests.builders import (
    BACLOFEN_TABLET,
    ICD,
    ORAL_ROUTE,
    SCT,
    allergy,
    assessment,
    coded_assessment,
    concept,
    condition,
    determine,
    drug_failure_forms,
    infusate_request,
    med_request,
    pain,
    procedure,
    service_request,
    statuses,
    steroid_injection,
)

POLICY = "cbc-mp-1-058"

TOP = "cbc.general.fda-route-indication"
PAIN = "cbc.pain"
PAIN_DX = "cbc.pain.severe-chronic-intractable"
PAIN_DRUG = "cbc.general.fda-route-indication.pain"
SPAS = "cbc.spasticity"
SPAS_DX = "cbc.spasticity.origin"
ORAL = "cbc.spasticity.oral-baclofen"
ORAL_FORM = "cbc.spasticity.oral-baclofen.oral"
ORAL_FAIL = "cbc.spasticity.oral-baclofen.failure"
IT_BACLOFEN = "cbc.spasticity.it-baclofen"
TRIAL = "cbc.pain.trial-same-route"
TRIAL_GT50 = "cbc.pain.trial-gt50"
NO_TRIAL = "cbc.spasticity.no-trial-named"

MORPHINE = "morphine sulfate 25 MG/ML Injectable Solution (preservative-free)"
ZICONOTIDE = "ziconotide 100 MCG/ML Injectable Solution"
HYDROMORPHONE = "hydromorphone hydrochloride 10 MG/ML Injectable Solution"
IT_BACLOFEN_DRUG = "baclofen 2 MG/ML Injection"


def cbc(
    chart: list[dict[str, Any]],
    order: dict[str, Any] | None = None,
    drugs: tuple[dict[str, Any], ...] | None = None,
) -> Determination:
    return determine(chart, order=order, drugs=drugs, policy_id=POLICY)


def morphine() -> tuple[dict[str, Any], ...]:
    return (infusate_request(MORPHINE, "7052"),)


def baclofen() -> tuple[dict[str, Any], ...]:
    return (infusate_request(IT_BACLOFEN_DRUG, "1666613"),)


def trial(before: float, after: float) -> list[dict[str, Any]]:
    """A catheter trial on 2026-10-01 with one pain score before and one after."""
    return [
        procedure("62324", "2026-10-01T09:00:00Z"),
        pain(before, "2026-09-30T15:00:00Z"),
        pain(after, "2026-10-01T12:00:00Z"),
    ]


def pain_chart(dx: str = "M96.1") -> list[dict[str, Any]]:
    """Non-malignant pain on Capital's list, and a trial with 62.5 % relief (8 → 3)."""
    return [condition(ICD, dx, "2023-03-01", "Postlaminectomy syndrome"), *trial(8, 3)]


def oral_baclofen(status: str = "stopped", reason: str | None = "no improvement in tone") -> dict[str, Any]:
    return med_request("baclofen 10 MG Oral Tablet", "2025-01-10", "2025-05-10", status, reason, code="1292")


def spasticity_chart(dx: str = "G80.1") -> list[dict[str, Any]]:
    """Spastic diplegic cerebral palsy; oral baclofen stopped for lack of effect."""
    return [condition(ICD, dx, "2012-06-01", "Spastic diplegic cerebral palsy"), oral_baclofen()]


def relief(pct: float) -> dict[str, Any]:
    return assessment("it-trial-pain-relief-pct", valueQuantity={"value": pct, "unit": "%"})


# --- pain ------------------------------------------------------------------------------------


def test_non_malignant_pain_with_morphine_and_a_good_trial_meets() -> None:
    d = cbc(pain_chart(), drugs=morphine())
    assert d.outcome == Outcome.MEETS, d.explanation
    assert (d.request_kind, d.indication) == ("permanent-implant", "non-malignant-pain")
    found = statuses(d)
    for cid in (PAIN, PAIN_DX, PAIN_DRUG, TRIAL_GT50):
        assert found[cid] == "met", cid
    # Only the pain branches are judged: each either/or stands for its pain branch.
    assert [r.id for r in d.criteria[:2]] == [PAIN, TRIAL_GT50]
    assert not {TOP, TRIAL, SPAS, IT_BACLOFEN, NO_TRIAL} & set(found)
    assert all(r.citation.startswith("Capital Blue Cross, Implantable Infusion Pumps") for r in d.criteria)


def test_cancer_pain_with_ziconotide_and_recorded_relief_meets() -> None:
    chart = [
        condition(ICD, "C50.911", "2024-02-01", "Malignant neoplasm of right female breast"),
        condition(ICD, "C79.51", "2025-08-01", "Secondary malignant neoplasm of bone"),
        condition(ICD, "G89.3", "2025-09-01", "Neoplasm related pain"),
        relief(70),
    ]
    d = cbc(chart, drugs=(infusate_request(ZICONOTIDE, "999998"),))
    assert d.indication == "cancer-pain"
    assert d.outcome == Outcome.MEETS, d.explanation
    found = statuses(d)
    assert [found[c] for c in (PAIN_DX, PAIN_DRUG, TRIAL_GT50)] == ["met"] * 3


def test_cancer_without_the_listed_pain_code_is_not_documented() -> None:
    chart = [condition(ICD, "C79.51", "2025-08-01", "Secondary malignant neoplasm of bone"), relief(70)]
    d = cbc(chart, drugs=morphine())
    assert d.indication == "cancer-pain"
    assert statuses(d)[PAIN_DX] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


@pytest.mark.parametrize("dx", ["M47.816", "B02.29", "M48.062"])
def test_pain_diagnosis_off_capitals_list_is_never_not_met(dx: str) -> None:
    """AMB-38 strict for a 'met', but the list 'may not be all-inclusive': off-list is a question."""
    d = cbc([condition(ICD, dx, "2023-03-01"), *trial(8, 3)], drugs=morphine())
    found = statuses(d)
    assert found[PAIN_DX] == "not-documented"
    assert found[PAIN] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


@pytest.mark.parametrize(("code", "display"), [("82423001", "Chronic pain"), ("128200000", "CRPS")])
def test_a_pain_diagnosis_of_the_list_coded_in_snomed_is_recognised(code: str, display: str) -> None:
    """Contract §3: a diagnosis MUST be recognised in ICD-10-CM or SNOMED CT. Before, a chart coded
    only in SNOMED CT (every Synthea chart) could never meet it, and the card asked for a pain diagnosis
    beside "Chronic pain" on the problem list (Synthea review, F4)."""
    d = cbc([condition(SCT, code, "2023-03-01", display), *trial(8, 3)], drugs=morphine())
    assert statuses(d)[PAIN_DX] == "met"


@pytest.mark.parametrize(
    ("pct", "expected", "outcome"),
    [
        (50, "not-met", Outcome.DOES_NOT_MEET),
        (50.5, "met", Outcome.MEETS),
        (49, "not-met", Outcome.DOES_NOT_MEET),
        (100, "met", Outcome.MEETS),
    ],
)
def test_recorded_relief_must_be_greater_than_50(pct: float, expected: str, outcome: Outcome) -> None:
    chart = [condition(ICD, "G89.29", "2023-03-01", "Other chronic pain"), relief(pct)]
    d = cbc(chart, drugs=morphine())
    found = statuses(d)
    assert found[TRIAL_GT50] == expected
    assert NO_TRIAL not in found  # the spasticity branch is not judged for a morphine pump
    assert d.outcome == outcome


@pytest.mark.parametrize(("after", "expected"), [(4, "not-met"), (3, "met")])
def test_computed_relief_exactly_half_is_not_enough(after: float, expected: str) -> None:
    """8 → 4 is exactly 50 % (AMB-01: Capital's 'greater than' fails it); 8 → 3 is 62.5 %."""
    d = cbc(pain_chart()[:1] + trial(8, after), drugs=morphine())
    assert statuses(d)[TRIAL_GT50] == expected


def test_no_trial_documented_is_insufficient() -> None:
    d = cbc([condition(ICD, "G89.4", "2023-03-01", "Chronic pain syndrome")], drugs=morphine())
    found = statuses(d)
    assert found[TRIAL_GT50] == "not-documented"
    assert found[PAIN_DX] == "met"
    assert d.outcome == Outcome.INSUFFICIENT


def test_epidural_steroid_injection_is_not_a_trial() -> None:
    esi = procedure("62323", "2026-10-01T09:00:00Z")
    esi["usedCode"] = [{"text": "triamcinolone acetonide 40 MG/ML"}]
    chart = [
        condition(ICD, "M96.1", "2023-03-01"),
        esi,
        pain(8, "2026-09-30T15:00:00Z"),
        pain(2, "2026-10-01T12:00:00Z"),
    ]
    assert statuses(cbc(chart, drugs=morphine()))[TRIAL_GT50] == "not-documented"


@pytest.mark.parametrize("rxcui", ["1085754", "6902", "578803"])
def test_a_steroid_recorded_by_rxnorm_code_alone_is_not_a_trial(rxcui: str) -> None:
    """s36 #6: a 62322 that used triamcinolone acetonide 40 MG/ML (or methylprednisolone, or
    betamethasone) recorded by its RxNorm code alone is an epidural steroid injection, not the trial."""
    chart = [
        condition(ICD, "M96.1", "2023-03-01"),
        steroid_injection("62322", "2026-10-01T09:00:00Z", rxcui=rxcui),
        pain(8, "2026-09-30T15:00:00Z"),
        pain(2, "2026-10-01T12:00:00Z"),
    ]
    assert statuses(cbc(chart, drugs=morphine()))[TRIAL_GT50] == "not-documented"


def test_spasticity_diagnosis_does_not_waive_the_pain_trial() -> None:
    """A morphine pump for central pain after spinal cord injury still needs its > 50 % trial."""
    chart = [
        condition(ICD, "G82.21", "2020-01-01", "Paraplegia, complete"),
        condition(ICD, "G89.0", "2021-01-01", "Central pain syndrome"),
        relief(40),
    ]
    d = cbc(chart, drugs=morphine())
    found = statuses(d)
    assert NO_TRIAL not in found
    assert found[TRIAL_GT50] == "not-met"
    assert found[PAIN] == "met"
    assert d.outcome == Outcome.DOES_NOT_MEET


# --- the FDA-approved drug ----------------------------------------------------------------------


def test_off_label_hydromorphone_is_not_met() -> None:
    d = cbc(pain_chart(), drugs=(infusate_request(HYDROMORPHONE, "3423"),))
    found = statuses(d)
    assert found[PAIN_DRUG] == "not-met"
    assert found[PAIN_DX] == "met"
    assert found[PAIN] == "not-met"
    assert SPAS not in found
    assert d.outcome == Outcome.DOES_NOT_MEET
    drug = next(r for r in d.criteria if r.id == PAIN).children[1]
    assert "hydromorphone" in drug.finding


def test_mixture_of_morphine_and_bupivacaine_is_not_met() -> None:
    mix = infusate_request("morphine 10 MG/ML / bupivacaine 20 MG/ML intrathecal compounded solution", "0")
    d = cbc(pain_chart(), drugs=(mix,))
    found = statuses(d)
    assert found[PAIN_DRUG] == "not-met"
    assert found[PAIN] == "not-met"
    drug = next(r for r in d.criteria if r.id == PAIN).children[1]
    assert drug.finding == "a mixture of drugs is ordered"


def test_two_drugs_for_the_pump_are_a_mixture() -> None:
    drugs = (infusate_request(MORPHINE, "7052"), infusate_request(ZICONOTIDE, "999998"))
    assert statuses(cbc(pain_chart(), drugs=drugs))[PAIN_DRUG] == "not-met"


def test_morphine_ordered_by_product_code_only_is_recognised() -> None:
    drug = infusate_request("", "892531")  # no display, no text: only the RxNorm product code
    d = cbc(pain_chart(), drugs=(drug,))
    assert statuses(d)[PAIN_DRUG] == "met"


def test_no_drug_named_is_not_documented_never_met() -> None:
    d = cbc(pain_chart(), drugs=())
    found = statuses(d)
    assert found[PAIN_DRUG] == "not-documented"
    assert found[PAIN] == "not-documented"
    assert IT_BACLOFEN not in found  # the pain diagnosis tells the indication
    assert found[TRIAL_GT50] == "met"
    assert d.outcome == Outcome.INSUFFICIENT


def test_failed_trial_of_a_pain_patient_without_a_named_drug_is_not_met() -> None:
    """The pain diagnosis tells the indication, so the baclofen-pump branch no longer keeps it open."""
    d = cbc([condition(ICD, "G89.29", "2023-03-01"), relief(40)], drugs=())
    found = statuses(d)
    assert found[TRIAL_GT50] == "not-met"
    assert NO_TRIAL not in found
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_with_nothing_telling_the_indication_both_branches_are_kept() -> None:
    d = cbc([relief(40)], drugs=())
    assert not d.indication_evident
    found = statuses(d)
    assert found[TOP] == found[PAIN] == found[SPAS] == "not-documented"
    trial = (found[TRIAL], found[TRIAL_GT50], found[NO_TRIAL])
    assert trial == ("not-documented", "not-met", "not-documented")
    assert d.outcome == Outcome.INSUFFICIENT


def test_baclofen_for_pain_only_is_not_a_pain_drug() -> None:
    """Baclofen is FDA-approved intrathecally for spasticity, not for the related indication of pain."""
    d = cbc(pain_chart(), drugs=baclofen())
    found = statuses(d)
    assert d.indication == "spasticity"  # the drug decides the class (criteria-and-codes.md §4.3)
    assert PAIN not in found and PAIN_DRUG not in found  # so only the spasticity branch is judged
    assert found[IT_BACLOFEN] == "met"
    assert found[SPAS_DX] == "not-documented"
    assert found[SPAS] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


# --- spasticity ---------------------------------------------------------------------------------


def test_spasticity_with_oral_baclofen_failure_and_it_baclofen_meets() -> None:
    d = cbc(spasticity_chart(), drugs=baclofen())
    assert (d.indication, d.outcome) == ("spasticity", Outcome.MEETS), d.explanation
    found = statuses(d)
    for cid in (SPAS, SPAS_DX, ORAL, ORAL_FORM, ORAL_FAIL, IT_BACLOFEN, NO_TRIAL):
        assert found[cid] == "met", cid
    assert not {TOP, TRIAL, TRIAL_GT50, PAIN, PAIN_DRUG} & set(found)  # no trial is named for spasticity


@pytest.mark.parametrize("dx", ["G35.A", "G35", "G04.1", "G82.54", "G83.84", "G95.11"])
def test_listed_spasticity_diagnoses_count(dx: str) -> None:
    d = cbc([condition(ICD, dx, "2015-01-01"), oral_baclofen()], drugs=baclofen())
    assert statuses(d)[SPAS_DX] == "met"


@pytest.mark.parametrize(
    ("code", "display"), [("24700007", "Multiple sclerosis"), ("128188000", "Cerebral palsy")]
)
def test_a_listed_spasticity_diagnosis_coded_in_snomed_counts(code: str, display: str) -> None:
    """Contract §3: a diagnosis MUST be recognised in ICD-10-CM or SNOMED CT (late review: after the
    pain list gained its SNOMED forms, a multiple sclerosis coded in SNOMED still never met this)."""
    d = cbc([condition(SCT, code, "2015-01-01", display), oral_baclofen()], drugs=baclofen())
    assert statuses(d)[SPAS_DX] == "met"


def test_spasticity_off_capitals_list_is_not_documented() -> None:
    chart = [
        condition(ICD, "I69.351", "2024-01-01", "Hemiplegia following cerebral infarction"),
        oral_baclofen(),
    ]
    d = cbc(chart, drugs=baclofen())
    assert d.indication == "spasticity"
    assert statuses(d)[SPAS_DX] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_oral_baclofen_documented_effective_is_not_met() -> None:
    chart = [
        condition(ICD, "G35.B1", "2018-01-01"),
        oral_baclofen(status="active", reason=None),
        coded_assessment("oral-antispasmodic-outcome", "effective"),
    ]
    d = cbc(chart, drugs=baclofen())
    found = statuses(d)
    assert found[ORAL_FORM] == "met"
    assert found[ORAL_FAIL] == "not-met"
    assert found[ORAL] == "not-met"
    assert found[SPAS] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_oral_baclofen_intolerance_meets() -> None:
    chart = [
        condition(ICD, "G80.0", "2010-01-01"),
        oral_baclofen(status="completed", reason=None),
        allergy("baclofen", code="1292", kind="intolerance"),
    ]
    d = cbc(chart, drugs=baclofen())
    assert statuses(d)[ORAL_FAIL] == "met"
    assert d.outcome == Outcome.MEETS


def test_ineffective_outcome_assessment_meets() -> None:
    chart = [
        condition(ICD, "G80.2", "2010-01-01"),
        oral_baclofen(status="completed", reason=None),
        coded_assessment("oral-antispasmodic-outcome", "ineffective"),
    ]
    assert statuses(cbc(chart, drugs=baclofen()))[ORAL] == "met"


def test_contraindicated_oral_baclofen_is_not_documented() -> None:
    chart = [
        condition(ICD, "G80.1", "2010-01-01"),
        oral_baclofen(status="completed", reason=None),
        coded_assessment("oral-antispasmodic-outcome", "contraindicated"),
    ]
    d = cbc(chart, drugs=baclofen())
    assert statuses(d)[ORAL_FAIL] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_an_oral_route_coded_without_words_is_oral_baclofen() -> None:
    """A pediatric order names no dose form ("baclofen 10 MG") and codes its route SNOMED 26643006
    with no text. Before, only words were read and the oral course was not documented (peds L1)."""
    coded = med_request("baclofen 10 MG", "2025-01-10", "2025-05-10", "stopped", "no effect", code="1292")
    coded["dosageInstruction"] = [{"route": concept(SCT, ORAL_ROUTE)}]
    chart = [condition(ICD, "G80.1", "2012-06-01"), coded]
    assert statuses(cbc(chart, drugs=baclofen()))[ORAL_FORM] == "met"
    uncoded = [condition(ICD, "G80.1", "2012-06-01"), {**coded, "dosageInstruction": []}]
    assert statuses(cbc(uncoded, drugs=baclofen()))[ORAL_FORM] == "not-documented"


def test_tizanidine_failure_is_not_oral_baclofen() -> None:
    chart = [
        condition(ICD, "G80.1", "2010-01-01"),
        med_request("tizanidine 4 MG Oral Tablet", "2025-01-10", "2025-05-10", "stopped", "drowsiness"),
    ]
    d = cbc(chart, drugs=baclofen())
    found = statuses(d)
    assert found[ORAL_FORM] == "not-documented"
    assert found[ORAL_FAIL] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_intrathecal_baclofen_history_is_not_oral_baclofen() -> None:
    chart = [
        condition(ICD, "G80.1", "2010-01-01"),
        med_request(
            IT_BACLOFEN_DRUG, "2025-01-10", "2025-01-11", "stopped", "trial dose", route="Intrathecal"
        ),
    ]
    assert statuses(cbc(chart, drugs=baclofen()))[ORAL_FORM] == "not-documented"


def test_baclofen_mixed_with_morphine_is_not_met() -> None:
    drugs = (infusate_request(IT_BACLOFEN_DRUG, "1666613"), infusate_request(MORPHINE, "7052"))
    d = cbc(spasticity_chart(), drugs=drugs)
    found = statuses(d)
    assert found[IT_BACLOFEN] == "not-met"
    assert found[SPAS] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


# --- scope: indications and request kinds -----------------------------------------------------


def test_dystonia_alone_is_not_addressed() -> None:
    d = cbc(
        [condition(ICD, "G24.1", "2015-01-01", "Genetic torsion dystonia"), oral_baclofen()], drugs=baclofen()
    )
    assert d.indication == "dystonia"
    assert d.outcome == Outcome.NOT_APPLICABLE
    assert "has no dystonia code" in d.explanation and "AMB-" not in d.explanation
    assert d.criteria == ()


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("62324", "trial", "no criteria for the trial itself"),
        ("62322", "trial", "no criteria for the trial itself"),
        ("62369", "refill-analysis", "states no refill or analysis criteria"),
        ("62365", "removal", "no criteria for removing"),
    ],
)
def test_request_kinds_without_capital_criteria_are_not_applicable(code: str, kind: str, words: str) -> None:
    chart = [*pain_chart(), procedure("62362", "2019-05-01")]
    d = cbc(chart, order=service_request(code), drugs=morphine())
    assert d.request_kind == kind
    assert d.outcome == Outcome.NOT_APPLICABLE
    assert words in d.explanation


def test_replacement_reapplies_the_implant_criteria() -> None:
    """AMB-31: no replacement criteria, and 62360-62362 are 'implantation or replacement'."""
    chart = [*spasticity_chart(), procedure("62362", "2016-05-01")]
    d = cbc(chart, order=service_request("62362"), drugs=baclofen())
    assert d.request_kind == "replacement"
    assert d.outcome == Outcome.MEETS
    assert statuses(d)[NO_TRIAL] == "met"
    d = cbc(
        [*pain_chart()[:1], procedure("62362", "2016-05-01")],
        order=service_request("62362"),
        drugs=morphine(),
    )
    assert d.request_kind == "replacement"
    assert statuses(d)[TRIAL_GT50] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_catheter_alone_is_judged_like_the_implant() -> None:
    d = cbc(pain_chart(), order=service_request("62350"), drugs=morphine())
    assert d.request_kind == "catheter"
    assert d.outcome == Outcome.MEETS
    assert TRIAL_GT50 in statuses(d)


def test_empty_chart_is_insufficient_and_never_not_met() -> None:
    d = cbc([], drugs=())
    assert d.outcome == Outcome.INSUFFICIENT
    assert "not-met" not in statuses(d).values()


# --- files --------------------------------------------------------------------------------------


def test_every_criterion_id_of_the_matrix_is_encoded() -> None:
    ids = {c.id for c in load_catalog().policies[POLICY].all_criteria()}
    for cid in (TOP, PAIN_DX, TRIAL, TRIAL_GT50, SPAS_DX, ORAL, IT_BACLOFEN):
        assert cid in ids


def test_value_sets_are_capitals_71_codes() -> None:
    terminology = load_catalog().terminology
    pain_set, spasticity_set = terminology["cbc-pain-diagnoses"], terminology["cbc-spasticity-diagnoses"]
    assert len(pain_set.icd10_prefixes) == 27
    assert len(spasticity_set.icd10_prefixes) == 44
    assert not set(pain_set.icd10_prefixes) & set(spasticity_set.icd10_prefixes)
    for code, in_pain, in_spasticity in [
        ("G89.3", True, False),
        ("G90.511", True, False),
        ("G57.73", True, False),
        ("M96.1", True, False),
        ("G89.11", False, False),  # acute pain is not on the list
        ("B02.29", False, False),
        ("G35.C2", False, True),
        ("G83.4", False, False),  # cauda equina syndrome: not on Capital's list
        ("G80.3", False, False),  # athetoid cerebral palsy: not on Capital's list
        ("G24.1", False, False),  # dystonia: not on Capital's list (AMB-18)
        ("I69.351", False, False),
    ]:
        icd = Code("icd10cm", code)
        assert pain_set.matches(icd) is in_pain, code
        assert spasticity_set.matches(icd) is in_spasticity, code


def test_drug_value_sets() -> None:
    terminology = load_catalog().terminology
    pain_drugs = {i.name for i in terminology["fda-it-labeled-pain"].ingredients}
    assert pain_drugs == {"morphine", "ziconotide"}
    assert {i.name for i in terminology["fda-it-labeled-spasticity"].ingredients} == {"baclofen"}
    oral = terminology["oral-baclofen"]
    assert [i.name for i in oral.ingredients] == ["baclofen"]
    assert oral.ingredient_for_code("1666613") is None  # the intrathecal product is not oral baclofen


@pytest.mark.parametrize(
    ("chart", "expected"), drug_failure_forms(BACLOFEN_TABLET, "oral-antispasmodic-outcome")
)
def test_the_most_recent_form_of_oral_baclofen_failure_decides(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert statuses(cbc(chart, drugs=baclofen()))[ORAL_FAIL] == expected
