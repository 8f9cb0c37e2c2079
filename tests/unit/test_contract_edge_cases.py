"""Edges of the clinical data contract (shared spec clinical-data-contract.md) that its clause-by-clause
audit (test_contract_audit.py) does not reach: the recently changed clauses of sections 2, 3 and 6
(the pump drug from the chart, several forms of one fact, falling short, Medicare by coded type)
driven with charts whose forms disagree, sit on a boundary, carry codes in another system or a
status that does not count. Each test sends an order-sign call as an EHR would and reads only the
answer; the expected answers come from the contract's wording and the seed policies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    HCPCS,
    ICD,
    LOINC,
    RX,
    SCT,
    SOPT,
    allergy,
    assessment,
    condition,
    infusate_request,
    med_request,
    med_statement,
    meeting_chart,
    observation,
    payer_coverage,
    procedure,
    service_request,
    without_codes,
)
from tests.contract_support import (
    MET,
    NOT_DOCUMENTED,
    NOT_MET,
    call,
    coverage_card,
    days_ago,
    device_request,
    mark_of,
    marks,
    policy_title,
)
from tests.policy_charts import cancer_chart

NCD_TITLE = "National Coverage Determination for Infusion Pumps (280.14)"
NO_ALLERGY = "H. No allergy to the infused agent"
COHERE_NO_ALLERGY = "No allergy to the drug to be infused"
OPIOIDS_6WK = "B. Opioids > 6 weeks"
CHRONIC_6MO = "A. Chronic pain > 6 months"
TRIAL_RELIEF = "D. Trial relief >= 50 %"
NO_DEVICE = "No other implanted programmable device"
REPLACEMENT = "a pump is already in place"
FBSS = "M96.1"
ORAL_OXYCODONE = ("Oxycodone Hydrochloride 10 MG Oral Tablet", "1049683")
INJECTABLE_MORPHINE = ("morphine sulfate 10 MG/ML Injectable Solution", "892531")
MORPHINE_ALLERGY = ("morphine", "7052")


def implant(*chart: dict[str, Any]) -> dict[str, Any]:
    """GEHA's answer to a 62362 pump with an intrathecal morphine order, on `chart`."""
    return call(list(chart), service_request("62362"), infusate_request())


# --- §6 Medicare by coded type ---------------------------------------------------------------------


def kaiser_title(**coverage_fields: Any) -> str:
    coverage = payer_coverage("kpwa", **coverage_fields)
    return policy_title(
        call(meeting_chart(), service_request("62362"), infusate_request(), coverage=coverage)
    )


@pytest.mark.parametrize(
    ("type_concept", "medicare"),
    [
        pytest.param(
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EHCPOL"},
                    {"system": SOPT, "code": "1"},
                ]
            },
            True,
            id="sopt-1-second-of-two-codings",
        ),
        pytest.param(
            {"coding": [{"system": SOPT, "code": "12"}], "text": "non-Medicare"}, True, id="sopt-12"
        ),
        pytest.param(
            {"coding": [{"system": SOPT, "code": "5"}, {"system": SOPT, "code": "1"}]}, True, id="5-and-1"
        ),
        pytest.param({"coding": [{"system": SOPT, "code": "21"}], "text": "Medicare"}, False, id="sopt-21"),
        pytest.param({"coding": [{"system": SOPT, "code": "9"}], "text": "Medicare"}, False, id="sopt-9"),
        pytest.param({"text": "Non Medicare"}, False, id="uncoded-non-space-medicare"),
        pytest.param({"text": "NON-MEDICARE COMMERCIAL"}, False, id="uncoded-upper-non-medicare"),
        pytest.param({"text": "Medicare Advantage HMO"}, True, id="uncoded-medicare-advantage"),
    ],
)
def test_s6_medicare_edges_of_the_coded_type(type_concept: dict[str, Any], medicare: bool) -> None:
    """§6: SOPT 1, 1x, 1xx are Medicare wherever the coding sits; any other coded type is not;
    an uncoded type falls back to its words, where "non-Medicare" never counts."""
    assert (NCD_TITLE in kaiser_title(type=type_concept)) is medicare


COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


@pytest.mark.parametrize(
    ("names", "medicare"),
    [
        pytest.param(
            [("group", "Medicare Advantage"), ("plan", "non-Medicare retiree")], True, id="one-medicare"
        ),
        pytest.param([("group", "Employer group"), ("plan", "non-Medicare retiree")], False, id="only-non"),
    ],
)
def test_s6_a_non_medicare_name_does_not_undo_another_name_that_says_medicare(
    names: list[tuple[str, str]], medicare: bool
) -> None:
    """§6: a Coverage with no coded type falls back to "words in the type text and plan or group names,
    and there 'non-Medicare' or 'not Medicare' never counts as Medicare": the negated name counts for
    nothing either way, so a group named "Medicare Advantage" still makes a Medicare product
    (contract29's probe 6.4)."""
    classes = [
        {"type": {"coding": [{"system": COVERAGE_CLASS, "code": kind}]}, "value": "x", "name": name}
        for kind, name in names
    ]
    assert (NCD_TITLE in kaiser_title(**{"class": classes})) is medicare


# --- §2 the pump drug from the chart ---------------------------------------------------------------

BUPIVACAINE_IT = ("bupivacaine hydrochloride 7.5 MG/ML Injectable Solution", "1815")
END_OF_BATTERY = (
    assessment("device-status", valueCodeableConcept={"text": "end-of-battery"}),
    assessment("device-abuse-neglect", valueBoolean=False),
)


def charted_pump_drug(display: str, code: str, route: str = "72607000") -> dict[str, Any]:
    return infusate_request(display, code, status="active", route=route)


def cohere_pump_replacement(*chart: dict[str, Any]) -> dict[str, Any]:
    """Cohere's answer to a replacement pump ordered as hardware (HCPCS E0786) with no drug."""
    order = device_request("E0786", HCPCS)
    return call([*meeting_chart(), *END_OF_BATTERY, *chart], order, coverage=payer_coverage("cohere"))


def test_s2_the_pump_drug_of_a_hardware_replacement_is_the_charts() -> None:
    """§2 infusate: a replacement (here HCPCS E0786) orders no drug: the chart's active intrathecal
    MedicationRequest is the infusate, so an allergy to it fails Cohere's allergy non-indication."""
    answer = cohere_pump_replacement(
        charted_pump_drug("morphine sulfate 25 MG/ML Injectable Solution", "7052"), allergy(*MORPHINE_ALLERGY)
    )
    assert mark_of(answer, COHERE_NO_ALLERGY) == NOT_MET, marks(answer)


def test_s2_every_active_pump_drug_of_the_chart_is_the_infusate() -> None:
    """§2: "the patient's active intrathecal or epidural MedicationRequest" — with two (morphine and
    bupivacaine, an ordinary mix), an allergy to the second is one to the infusate."""
    answer = cohere_pump_replacement(
        charted_pump_drug("morphine sulfate 25 MG/ML Injectable Solution", "7052"),
        charted_pump_drug(*BUPIVACAINE_IT, route="404820008"),
        allergy("bupivacaine", "1815"),
    )
    assert mark_of(answer, COHERE_NO_ALLERGY) == NOT_MET, marks(answer)


def test_s2_a_catheter_with_an_oral_drug_in_the_call_takes_the_charts_pump_drug() -> None:
    """§2: an oral drug ordered beside a catheter is no infusate, so the call orders none and the
    chart's active intrathecal morphine is the pump drug (its allergy fails)."""
    oral = infusate_request("Oxycodone Hydrochloride 10 MG Oral Tablet", "1049683", route="26643006")
    chart = [*meeting_chart(), charted_pump_drug("morphine sulfate 25 MG/ML Injectable Solution", "7052")]
    answer = call([*chart, allergy(*MORPHINE_ALLERGY)], service_request("62350"), oral)
    assert mark_of(answer, NO_ALLERGY) == NOT_MET, marks(answer)


def by_reference(order: dict[str, Any], medication_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`order` with its drug moved to a Medication it references (as Epic writes it)."""
    medication = {
        "resourceType": "Medication",
        "id": medication_id,
        "code": order["medicationCodeableConcept"],
    }
    referring = {k: v for k, v in order.items() if k != "medicationCodeableConcept"}
    referring["medicationReference"] = {"reference": f"Medication/{medication_id}"}
    return referring, medication


def test_s2_a_draft_pump_drug_by_medication_reference() -> None:
    """§2 infusate: a draft MedicationRequest (RxNorm product, intrathecal route) naming its drug by
    `medicationReference` to a Medication in the same draftOrders Bundle is still the infusate."""
    order, medication = by_reference(infusate_request(), "med-morphine")
    answer = call([*meeting_chart(), allergy(*MORPHINE_ALLERGY)], service_request("62362"), order, medication)
    assert mark_of(answer, NO_ALLERGY) == NOT_MET, marks(answer)


def test_s2_a_pump_drug_routed_in_its_second_dosage_instruction() -> None:
    """§2 infusate: the route may be on any dosage instruction."""
    order = infusate_request()
    order["dosageInstruction"] = [{"text": "bolus first"}, *order["dosageInstruction"]]
    answer = call([*meeting_chart(), allergy(*MORPHINE_ALLERGY)], service_request("62362"), order)
    assert mark_of(answer, NO_ALLERGY) == NOT_MET, marks(answer)


INSULIN = ("insulin regular, human 100 UNT/ML Injectable Solution", "5856")
EXCLUDED_INFUSATE = "Not a pump for insulin, heparin or chemotherapy"


@pytest.mark.parametrize(
    ("status", "route", "mark"),
    [
        pytest.param("active", "72607000", NOT_MET, id="active-intrathecal"),
        pytest.param("on-hold", "72607000", MET, id="on-hold"),
        pytest.param("active", "26643006", MET, id="active-oral"),
    ],
)
def test_s2_the_charts_pump_drug_is_an_active_intrathecal_or_epidural_order(
    status: str, route: str, mark: str
) -> None:
    """§2: when the call orders no drug (a catheter), the infusate is "the patient's active intrathecal or
    epidural MedicationRequest in the chart": an insulin order on hold, or given by mouth, is not the pump's
    drug, so GEHA's exclusion of insulin pumps finds none (met, none documented); the active intrathecal
    one is the pump's drug and excluded (contract29's probe 2.4)."""
    chart_drug = infusate_request(*INSULIN, status=status, route=route)
    answer = call([*meeting_chart(), chart_drug], service_request("62350"))
    assert mark_of(answer, EXCLUDED_INFUSATE) == mark, marks(answer)


# --- §3 allergy: an ingredient, not a substring ----------------------------------------------------


@pytest.mark.parametrize(
    ("infusate", "allergen", "mark"),
    [
        pytest.param(("hydromorphone 10 MG/ML Injectable Solution", "3423"), "Morphine", MET, id="hm-vs-m"),
        pytest.param(
            ("morphine sulfate 25 MG/ML Injectable Solution", "7052"), "Hydromorphone", MET, id="m-vs-hm"
        ),
        pytest.param(
            ("hydromorphone 10 MG/ML Injectable Solution", "3423"), "Hydromorphone", NOT_MET, id="hm"
        ),
    ],
)
def test_s3_an_allergy_matches_an_ingredient_not_part_of_a_word(
    infusate: tuple[str, str], allergen: str, mark: str
) -> None:
    """§3 allergy: matching an *ingredient* of the infusate; morphine and hydromorphone are two."""
    record = allergy("x")
    record["code"] = {"text": allergen}
    answer = call([*meeting_chart(), record], service_request("62362"), infusate_request(*infusate))
    assert mark_of(answer, NO_ALLERGY) == mark, marks(answer)


# --- §3 codes in another system --------------------------------------------------------------------


def test_s3_a_trial_code_in_another_system_is_no_trial() -> None:
    """§3: a trial is a Procedure with CPT 62320-62327: the digits 62324 in SNOMED CT are not it."""
    chart = [r for r in meeting_chart() if "62324" not in str(r.get("code"))]
    answer = implant(*chart, procedure("62324", "2025-10-01T09:00:00Z", system=SCT))
    assert mark_of(answer, TRIAL_RELIEF) == NOT_DOCUMENTED, marks(answer)


def test_s3_a_device_code_in_another_system_is_no_device() -> None:
    """§3 implanted devices: ICD-10-CM Z95.0; the same characters in SNOMED CT are not a pacemaker."""
    answer = implant(*meeting_chart(), condition(SCT, "Z95.0", "2020-01-01"))
    assert mark_of(answer, NO_DEVICE) == MET, marks(answer)


# --- §3 dates: the first present form --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dated", "mark"),
    [
        # onsetPeriod without a start is no onset: recordedDate (two years ago) dates it
        pytest.param(
            lambda: {"onsetPeriod": {"end": days_ago(30)}, "recordedDate": days_ago(730)},
            MET,
            id="period-end-only",
        ),
        # onsetString is not a listed form: recordedDate (two months ago) dates it
        pytest.param(
            lambda: {"onsetString": "2015", "recordedDate": days_ago(60)}, NOT_MET, id="onset-string"
        ),
        # onsetAge is not a listed form either
        pytest.param(
            lambda: {"onsetAge": {"value": 30, "unit": "a"}, "recordedDate": days_ago(60)},
            NOT_MET,
            id="onset-age",
        ),
    ],
)
def test_s3_a_conditions_date_is_the_first_listed_form_present(dated: Any, mark: str) -> None:
    """§3: a Condition's date is the first present of onsetDateTime / onsetPeriod.start / recordedDate."""
    answer = implant(*without_codes(meeting_chart(), FBSS), condition(ICD, FBSS, onset=None, **dated()))
    assert mark_of(answer, CHRONIC_6MO) == mark, marks(answer)


# --- §3 falling short and a course still running ----------------------------------------------------


def opioid_courses(*courses: dict[str, Any]) -> dict[str, Any]:
    return implant(*without_codes(meeting_chart(), ORAL_OXYCODONE[1], INJECTABLE_MORPHINE[1]), *courses)


def test_s3_an_active_statement_still_running_is_not_documented_not_short() -> None:
    """§3: the same with a MedicationStatement active since 35 days ago, its period still open."""
    drug = {"coding": [{"system": RX, "code": ORAL_OXYCODONE[1], "display": ORAL_OXYCODONE[0]}]}
    running = med_statement(drug, status="active", start=days_ago(35))
    stopped = med_request(
        *INJECTABLE_MORPHINE[:1], days_ago(35), days_ago(30), "stopped", "nausea", code=INJECTABLE_MORPHINE[1]
    )
    assert mark_of(opioid_courses(running, stopped), OPIOIDS_6WK) == NOT_DOCUMENTED


# --- §2 the order under review: where the hardware's code is found ----------------------------------


def test_s2_a_device_request_code_reference_read_from_the_fhir_server() -> None:
    """§2: `DeviceRequest.codeReference` to a `Device` whose `type` carries the code — the Device
    is the EHR's, neither contained nor in the draft orders: read from its FHIR server."""
    pump = {
        "resourceType": "Device",
        "id": "dev-e0786",
        "status": "active",
        "type": {"coding": [{"system": HCPCS, "code": "E0786"}]},
    }
    order = device_request("E0786", HCPCS, codeReference={"reference": "Device/dev-e0786"})
    answer = call([*meeting_chart(), pump], order, infusate_request(), coverage=payer_coverage("cohere"))
    assert "for E0786 replacement" in coverage_card(answer)["detail"]


OPIOID_FAILURE = "B. Opioid failure or side effects"
TRIAL_START = "2025-10-01T09:00:00Z"


def completed_courses() -> list[dict[str, Any]]:
    return [
        med_request(*ORAL_OXYCODONE[:1], "2025-01-10", "2025-04-10", "completed", code=ORAL_OXYCODONE[1]),
        med_request(
            *INJECTABLE_MORPHINE[:1], "2025-04-15", "2025-06-15", "completed", code=INJECTABLE_MORPHINE[1]
        ),
    ]


def failure_chart(*evidence: dict[str, Any]) -> dict[str, Any]:
    chart = [*without_codes(meeting_chart(), ORAL_OXYCODONE[1], INJECTABLE_MORPHINE[1]), *completed_courses()]
    return implant(*chart, *evidence)


def intolerance(**dated: Any) -> dict[str, Any]:
    record = allergy(*ORAL_OXYCODONE, kind="intolerance")
    record.update(dated)
    return record


def outcome(value: str, when: str) -> dict[str, Any]:
    return assessment("opioid-trial-outcome", when, valueCodeableConcept={"text": value})


@pytest.mark.parametrize(
    ("evidence", "mark"),
    [
        pytest.param(
            [intolerance(onsetDateTime="2025-09-01"), outcome("effective", "2025-06-01")],
            MET,
            id="onset-newer",
        ),
        pytest.param(
            [intolerance(onsetDateTime="2025-03-01"), outcome("effective", "2025-06-01")],
            NOT_MET,
            id="onset-older",
        ),
        pytest.param(
            [intolerance(recordedDate="2025-09-01"), outcome("effective", "2025-06-01")],
            MET,
            id="recorded-newer",
        ),
        pytest.param(
            [intolerance(recordedDate="2025-03-01"), outcome("effective", "2025-06-01")],
            NOT_MET,
            id="recorded-older",
        ),
    ],
)
def test_s3_an_intolerance_dated_by_its_onset_or_recorded_date(
    evidence: list[dict[str, Any]], mark: str
) -> None:
    """§3 several forms of one fact (drug failure): an intolerance on the allergy list against an
    opioid-trial-outcome "effective": the most recent documented one decides."""
    assert mark_of(failure_chart(*evidence), OPIOID_FAILURE) == mark


def test_s3_a_stopped_order_with_a_coded_status_reason_is_a_failure() -> None:
    """§3 drug failure: "a stopped MedicationRequest with statusReason" — coded, with no text."""
    stopped = med_request(*ORAL_OXYCODONE[:1], "2025-06-20", "2025-07-20", "stopped", code=ORAL_OXYCODONE[1])
    stopped["statusReason"] = {"coding": [{"system": SCT, "code": "62014003"}]}
    assert mark_of(failure_chart(stopped), OPIOID_FAILURE) == MET


def trial_chart(*scores: dict[str, Any]) -> list[dict[str, Any]]:
    kept = [
        r
        for r in meeting_chart()
        if not (r["resourceType"] == "Observation" and "loinc" in str(r["code"]))
        and not (r["resourceType"] == "Procedure" and "62324" in str(r["code"]))
    ]
    return [*kept, procedure("62324", TRIAL_START), *scores]


def pain_at(value: Any, when: str, key: str = "valueInteger") -> dict[str, Any]:
    return observation(LOINC, "72514-3", when, **{key: value})


@pytest.mark.parametrize(
    ("scores", "mark"),
    [
        pytest.param(
            [pain_at(8, "2025-09-30T15:00:00Z"), pain_at(0, "2025-10-01T13:00:00Z")],
            MET,
            id="post-score-zero",
        ),
        pytest.param(
            [
                pain_at(8, "2025-09-30T15:00:00Z"),
                pain_at({"value": 0, "unit": "{score}"}, "2025-10-01T13:00:00Z", "valueQuantity"),
            ],
            MET,
            id="post-quantity-zero",
        ),
        pytest.param(
            [pain_at(8, "2025-09-30T15:00:00Z"), pain_at(40, "2025-10-01T13:00:00Z")],
            NOT_DOCUMENTED,
            id="post-score-out-of-range-is-no-score",
        ),
        pytest.param(
            [pain_at(80, "2025-09-30T15:00:00Z"), pain_at(3, "2025-10-01T13:00:00Z")],
            NOT_DOCUMENTED,
            id="baseline-out-of-range-is-no-score",
        ),
    ],
)
def test_s3_s4_pain_scores_0_to_10(scores: list[dict[str, Any]], mark: str) -> None:
    """§3 pain severity: `valueQuantity.value` or `valueInteger` 0-10 (a 0 is a score; 40 is not one)."""
    assert mark_of(implant(*trial_chart(*scores)), TRIAL_RELIEF) == mark


@pytest.mark.parametrize(
    ("baseline", "post", "mark"),
    [
        pytest.param("2025-09-01T09:00:00Z", "2025-10-01T12:00:00Z", MET, id="baseline-exactly-30-days-old"),
        pytest.param(
            "2025-09-01T08:00:00Z", "2025-10-01T12:00:00Z", NOT_DOCUMENTED, id="baseline-30-days-1-hour"
        ),
        pytest.param("2025-09-30T15:00:00Z", "2025-10-03T09:00:00Z", MET, id="post-at-exactly-48-hours"),
        pytest.param(
            "2025-09-30T15:00:00Z", "2025-10-03T09:01:00Z", NOT_DOCUMENTED, id="post-48-hours-1-minute"
        ),
    ],
)
def test_s4_the_windows_are_inclusive(baseline: str, post: str, mark: str) -> None:
    """§4: the baseline "no older than 30 days" (30 days exactly is not older), the post scores "from
    the trial's start to 48 hours after it" (48 hours exactly is within)."""
    assert mark_of(implant(*trial_chart(pain_at(8, baseline), pain_at(3, post))), TRIAL_RELIEF) == mark


def test_s4_a_baseline_of_zero_does_not_break_the_call() -> None:
    """§4 relief % = (baseline - lowest) / baseline: a baseline of 0 leaves nothing to relieve."""
    answer = implant(*trial_chart(pain_at(0, "2025-09-30T15:00:00Z"), pain_at(0, "2025-10-01T13:00:00Z")))
    assert mark_of(answer, TRIAL_RELIEF) in (NOT_MET, NOT_DOCUMENTED)


def life_mark(answer: dict[str, Any]) -> str:
    found = {mark for label, mark in marks(answer).items() if "Life expectancy" in label}
    return found.pop() if found else MET


def kaiser_life(*forms: dict[str, Any]) -> dict[str, Any]:
    chart = [
        *meeting_chart(),
        assessment("opioid-reduction-agreement", valueBoolean=True),
        assessment("it-trial-function-improved", valueBoolean=True),
        *forms,
    ]
    return call(chart, service_request("62362"), infusate_request(), coverage=payer_coverage("kpwa"))


def test_s3_s5_an_amended_answer_is_the_most_recent() -> None:
    """§3 Observation counts when final, amended or corrected; §5 the most recent wins: an answer
    amended to "no" last week decides over a final "yes" two months ago."""
    amended = {**assessment("life-expectancy-ge-3mo", days_ago(7), valueBoolean=False), "status": "amended"}
    answer = kaiser_life(assessment("life-expectancy-ge-3mo", days_ago(60), valueBoolean=True), amended)
    assert life_mark(answer) == NOT_MET


COHERE_METASTATIC = "Metastatic lesion(s) present"


def stage(value: dict[str, Any], when: str) -> dict[str, Any]:
    return observation(LOINC, "21907-1", when, **value)


@pytest.mark.parametrize(
    ("value", "mark"),
    [
        pytest.param({"valueCodeableConcept": {"text": "M1"}}, MET, id="text-only-M1"),
        pytest.param({"valueCodeableConcept": {"text": "cM1"}}, MET, id="cM1"),
        pytest.param({"valueCodeableConcept": {"text": "M1c"}}, MET, id="M1c"),
        pytest.param({"valueCodeableConcept": {"text": "M0(i+)"}}, NOT_MET, id="M0-i-plus"),
        pytest.param({"valueString": "M1"}, MET, id="valueString-M1"),
    ],
)
def test_s3_metastasis_stage_values(value: dict[str, Any], mark: str) -> None:
    """§3 metastatic disease: LOINC 21907-1 / 21901-4 "with an M1 value"."""
    chart = [*without_codes(cancer_chart(), "C78.7"), stage(value, days_ago(30))]
    answer = call(chart, service_request("62324"), infusate_request(), coverage=payer_coverage("cohere"))
    assert mark_of(answer, COHERE_METASTATIC) == mark, marks(answer)
