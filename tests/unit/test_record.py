"""The PatientRecord: contract §3 filters, de-duplication, exposures and questionnaire answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from service.record import build_record
from tests.builders import (
    ASSESS,
    ICD,
    RX,
    SCT,
    STEROID_RXCUIS,
    assessment,
    catalog,
    condition,
    med_request,
    med_statement,
    procedure,
    steroid_injection,
)


def record(*resources: dict[str, Any]) -> Any:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return build_record("p1", by_type, catalog().terminology)


def test_duplicate_conditions_become_one_fact_with_the_earliest_onset() -> None:
    copies = [condition(SCT, "82423001", onset) for onset in ("2010-01-01", "2005-01-01", "2019-01-01")]
    facts = record(*copies).conditions
    assert len(facts) == 1
    assert facts[0].onset.year == 2005
    assert len(facts[0].duplicates) == 2
    assert facts[0].source == f"Condition/{copies[1]['id']}"


def test_duplicate_conditions_are_dated_by_the_earliest_dated_one() -> None:
    """Contract §3: the earliest matching Condition wins; an undated duplicate does not hide its date."""
    [fact] = record(condition(ICD, "M96.1", None), condition(ICD, "M96.1", "2023-03-01")).conditions
    assert fact.date is not None and fact.date.date().isoformat() == "2023-03-01"


def test_an_answer_coded_in_another_system_too_is_read_by_its_assessment_code() -> None:
    """Contract §5: a CodeableConcept answer is the coding in the assessment CodeSystem, wherever it is."""
    coded = {
        "coding": [
            {"system": SCT, "code": "260413007", "display": "None"},
            {"system": ASSESS, "code": "none"},
        ]
    }
    found = record(assessment("it-trial-side-effects", valueCodeableConcept=coded))
    assert found.latest_assessment("it-trial-side-effects").value == "none"


def test_different_concepts_stay_apart() -> None:
    assert len(record(condition(ICD, "M96.1"), condition(ICD, "G89.29")).conditions) == 2


def test_exposures_group_orders_by_ingredient_including_product_codes() -> None:
    facts = record(
        med_request(
            "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
            "2025-01-01",
            "2025-02-01",
            code="1049621",
        ),
        med_request("Oxycodone Hydrochloride 10 MG Oral Tablet", "2025-03-01", "2025-04-01", code="1049683"),
        med_request("Zzzfakeamine 5 MG Oral Tablet", "2025-01-01", "2025-01-10", code="999999"),
    )
    exposures = {e.ingredient: e for e in facts.exposures}
    assert exposures["oxycodone"].days == pytest.approx(90)
    assert len(exposures["oxycodone"].sources) == 2
    assert not any("zzzfakeamine" in name for name in exposures)  # only ingredients a value set names


def ordered_by_reference(**medication: Any) -> Any:
    """The record of an order whose drug is the referenced Medication with these elements."""
    order = med_request("x", "2025-01-01", "2025-03-01")
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/m1"}
    return record(order, {"resourceType": "Medication", "id": "m1", **medication})


def test_medication_reference_is_resolved() -> None:
    facts = ordered_by_reference(code={"text": "Morphine Sulfate 15 MG Oral Tablet"})
    assert [e.ingredient for e in facts.exposures] == ["morphine"]


def test_a_medications_ingredient_named_only_in_its_text_is_read() -> None:
    """Contract §3: a referenced `Medication.ingredient.itemCodeableConcept` is a form of the drug; its
    text names the ingredient ("Percocet 10/325" with "Oxycodone Hydrochloride" is oxycodone)."""
    facts = ordered_by_reference(
        code={"text": "Percocet 10/325"},
        ingredient=[
            {"itemCodeableConcept": {"text": "Oxycodone Hydrochloride"}},
            {"itemCodeableConcept": {"text": "Acetaminophen"}},
        ],
    )
    assert [e.ingredient for e in facts.exposures] == ["oxycodone"]
    assert facts.medications[0].text == "Percocet 10/325 | Oxycodone Hydrochloride | Acetaminophen"


OXYCODONE_10 = {
    "coding": [{"system": RX, "code": "1049683", "display": "Oxycodone Hydrochloride 10 MG Oral Tablet"}]
}


@pytest.mark.parametrize(
    ("kind", "status", "kept"),
    [
        *(
            (kind, status, 1)
            for kind in ("request", "statement")
            for status in ("active", "completed", "stopped")
        ),
        ("statement", "on-hold", 1),
        *(("request", status, 0) for status in ("entered-in-error", "draft", "cancelled")),
        *(("statement", status, 0) for status in ("entered-in-error", "not-taken", "intended")),
    ],
)
def test_drug_status_filter(kind: str, status: str, kept: int) -> None:
    """Contract §3: an order or a statement of a drug taken (active, completed, or stopped:
    history) is a drug exposure; a draft, a cancelled order, a drug not taken or only intended is not.
    The contract names no filter for statements: one on hold records a drug taken, then paused
    (contract review F8)."""
    if kind == "request":
        drug = med_request(
            "Oxycodone Hydrochloride 10 MG Oral Tablet",
            "2025-01-01",
            "2025-03-01",
            status=status,
            code="1049683",
        )
    else:
        drug = med_statement(OXYCODONE_10, status, "2025-01-01", "2025-03-01")
    found = record(drug)
    assert len(found.medications) == kept
    assert [(e.ingredient, e.days) for e in found.exposures] == [("oxycodone", 59.0)] * kept


def test_a_medication_statement_dated_by_effective_date_time_is_read_from_that_date() -> None:
    """Contract §3: a MedicationStatement's date is effectiveDateTime, else effectivePeriod.start."""
    statement = med_statement({"text": "oxycodone 5 mg oral tablet"}, effectiveDateTime="2025-02-01")
    [med] = record(statement).medications
    assert med.start is not None and med.start.date().isoformat() == "2025-02-01"
    assert med.end == med.start  # no period: its end is its date


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        ("final", True),
        ("amended", True),
        ("corrected", True),
        ("preliminary", False),
        ("registered", False),
        ("cancelled", False),
        ("entered-in-error", False),
    ],
)
def test_observation_status_filter(status: str, kept: bool) -> None:
    """Contract §3: an Observation counts when its status is final, amended or corrected."""
    answer = assessment("life-expectancy-ge-3mo", "2025-10-01", valueBoolean=True)
    answer["status"] = status
    assert (record(answer).latest_assessment("life-expectancy-ge-3mo") is not None) is kept


def test_an_amended_questionnaire_response_is_read() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-amended",
        "status": "amended",
        "authored": "2025-10-03",
        "item": [{"linkId": "psych-clearance", "answer": [{"valueBoolean": True}]}],
    }
    found = record(response).latest_assessment("psych-clearance")
    assert found is not None and found.value is True


def test_an_observation_dated_by_its_effective_period_is_dated_by_its_start() -> None:
    """Contract §3: an Observation's date is effectiveDateTime, else effectivePeriod.start."""
    answer = assessment("psych-clearance", valueBoolean=True)
    del answer["effectiveDateTime"]
    answer["effectivePeriod"] = {"start": "2025-09-01T10:00:00Z", "end": "2025-09-02T10:00:00Z"}
    found = record(answer).latest_assessment("psych-clearance")
    assert found is not None and found.effective is not None
    assert found.effective.isoformat() == "2025-09-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        ("completed", 1),
        ("in-progress", 0),
        ("preparation", 0),
        ("not-done", 0),
        ("stopped", 0),
        ("entered-in-error", 0),
    ],
)
def test_procedure_status_filter(status: str, kept: int) -> None:
    """Contract §3: a Procedure counts when its status is completed (a trial not done is no trial)."""
    found = record(procedure("62324", "2025-10-01T09:00:00Z", status=status))
    assert len(found.procedures) == kept
    assert (found.trial.procedure is not None) == bool(kept)


@pytest.mark.parametrize("rxcui", sorted(STEROID_RXCUIS))
def test_a_steroid_used_by_rxnorm_code_alone_makes_a_steroid_injection_not_a_trial(rxcui: str) -> None:
    """AMB-34: a 62322 whose usedCode is only an RxNorm coding of a corticosteroid (ingredient or
    injectable product, no text or display) is an epidural steroid injection, so the trial module
    finds no trial in it (s36 #6)."""
    found = record(steroid_injection("62322", "2025-10-01T09:00:00Z", rxcui=rxcui))
    assert [p.steroid_injection for p in found.procedures] == [True]
    assert found.trial.procedure is None


@pytest.mark.parametrize("rxcui", ["7052", "892531", "1292", "1815"])
def test_an_analgesic_used_by_rxnorm_code_alone_leaves_the_trial_a_trial(rxcui: str) -> None:
    """A 62322 that used morphine, baclofen or bupivacaine (by code alone) is the trial it is coded as."""
    trial = procedure("62322", "2025-10-01T09:00:00Z")
    trial["usedCode"] = [{"coding": [{"system": RX, "code": rxcui}]}]
    found = record(trial)
    assert [p.steroid_injection for p in found.procedures] == [False]
    assert found.trial.procedure is not None


@pytest.mark.parametrize("unit", [{"code": "d"}, {"unit": "days"}, {"unit": "Days"}, {"unit": "DAY"}])
def test_a_supply_duration_unit_is_read_whatever_its_case(unit: dict[str, str]) -> None:
    """Contract §3: an order's end is authoredOn + expectedSupplyDuration; EHRs write the unit's
    words in any case ("Days"), and a 90-day supply is not the 30-day default."""
    order = med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01")
    order["dispenseRequest"] = {"expectedSupplyDuration": {"value": 90, **unit}}
    [med] = record(order).medications
    assert med.start is not None and med.end is not None
    assert (med.end - med.start).days == 90


@pytest.mark.parametrize(("unit", "days"), [({"unit": "yr"}, 365), ({"code": "a"}, 365), ({"unit": "wk"}, 7)])
def test_a_supply_of_years_or_weeks_ends_a_calendar_year_or_seven_days_later(
    unit: dict[str, str], days: int
) -> None:
    """A year's supply, whichever spelling the chart uses for it (one table of time units serves
    supplies and life expectancies alike), ends the same day a year later."""
    order = med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01")
    order["dispenseRequest"] = {"expectedSupplyDuration": {"value": 1, **unit}}
    [med] = record(order).medications
    assert med.start is not None and med.end is not None
    assert (med.end - med.start).days == days


def test_questionnaire_answers_are_read_as_assessments() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "authored": "2025-10-03",
        "subject": {"reference": "Patient/p1"},
        "item": [
            {"linkId": "it-trial-patient-acceptance", "answer": [{"valueBoolean": True}]},
            {
                "linkId": "group",
                "item": [
                    {"linkId": "it-trial-side-effects", "answer": [{"valueCoding": {"code": "none"}}]},
                    {"linkId": "it-trial-pain-relief-pct", "answer": [{"valueDecimal": 65}]},
                ],
            },
        ],
    }
    facts = record(response)
    assert facts.latest_assessment("it-trial-patient-acceptance").value is True
    assert facts.latest_assessment("it-trial-side-effects").value == "none"
    assert facts.trial.relief_pct == 65
    assert facts.latest_assessment("it-trial-side-effects").source == "QuestionnaireResponse/qr1"


@pytest.mark.parametrize(
    ("system", "read"),
    [
        ("http://idds-crd.org/fhir/CodeSystem/idds-assessment", "none"),
        (None, "none"),  # the code written bare
        ("http://snomed.info/sct", None),
    ],
)
def test_a_questionnaire_answer_coded_in_another_system_is_no_answer(
    system: str | None, read: str | None
) -> None:
    """Contract §5 (a coded value's system is the assessment CodeSystem), for the answers to the
    service's own Questionnaire as for Observations (contract review s17 F4)."""
    coding = {"code": "none", **({"system": system} if system else {})}
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "authored": "2025-10-03",
        "item": [{"linkId": "it-trial-side-effects", "answer": [{"valueCoding": coding}]}],
    }
    found = record(response).latest_assessment("it-trial-side-effects")
    assert found is not None  # one of another system is kept, as that Observation is (review s17 F-9)
    assert found.value == read
    if read is None:
        assert found.value_text() == "“none” in another code system"


def test_in_progress_questionnaire_is_ignored() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr2",
        "status": "in-progress",
        "item": [{"linkId": "psych-clearance", "answer": [{"valueBoolean": True}]}],
    }
    assert record(response).latest_assessment("psych-clearance") is None


def test_malformed_resources_do_not_break_the_record() -> None:
    odd = [
        {"resourceType": "Condition", "id": "c1", "code": {"coding": "not-a-list"}},
        {"resourceType": "Condition", "id": "c2", "code": "text", "onsetDateTime": "yesterday"},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "dosageInstruction": {}},
        {"resourceType": "Observation", "id": "o1", "status": "final", "valueQuantity": {"value": "high"}},
        {"resourceType": "Procedure", "id": "p1", "status": "completed", "performedPeriod": []},
        {"resourceType": "QuestionnaireResponse", "id": "q1", "status": "completed", "item": "x"},
    ]
    facts = record(*odd)
    assert len(facts.conditions) == 2


def test_a_dated_assessment_is_later_than_an_undated_one_in_either_order() -> None:
    """Contract §5: the most recent Observation of a code wins; one with no date is not more recent."""
    dated = assessment("psych-clearance", "2025-10-02", valueBoolean=True)
    undated = assessment("psych-clearance", valueBoolean=False)
    del undated["effectiveDateTime"]
    for chart in ([dated, undated], [undated, dated]):
        latest = record(*chart).latest_assessment("psych-clearance")
        assert latest is not None and latest.value is True


def test_the_trial_and_the_criteria_cite_the_same_assessment_on_a_timestamp_tie() -> None:
    first = assessment("it-trial-pain-relief-pct", "2025-10-02", valueQuantity={"value": 40, "unit": "%"})
    second = assessment("it-trial-pain-relief-pct", "2025-10-02", valueQuantity={"value": 60, "unit": "%"})
    cited = set()
    for chart in ([first, second], [second, first]):
        record = build_record("p1", {"Observation": chart}, catalog().terminology)
        latest = record.latest_assessment("it-trial-pain-relief-pct")
        assert latest is not None and record.trial.relief_pct == latest.value
        cited.add(latest.source)
    assert len(cited) == 1  # whatever order the chart gives them in (review27f)


@pytest.mark.parametrize(
    ("name", "route", "neuraxial"),
    [
        ("Baclofen 10 MG Oral Tablet (not for intrathecal use)", "oral", False),
        ("Baclofen 10 MG Oral Tablet, non-intrathecal", None, False),
        ("Baclofen 0.05 MG/ML Intrathecal Solution", None, True),
        ("Morphine Sulfate 25 MG/ML Injection", "intrathecal", True),
    ],
)
def test_a_drug_is_neuraxial_by_its_route_or_name_but_not_by_a_name_that_negates_it(
    name: str, route: str | None, neuraxial: bool
) -> None:
    """A neuraxial drug is the pump's or a trial's and never counts as a systemic drug trial. The
    name is read by the route's own words rule: before, "not for intrathecal use" made an oral
    baclofen neuraxial, and a documented failed oral trial no longer counted."""
    order = med_request(name, "2025-01-01", "2025-03-01")
    if route is not None:
        order["dosageInstruction"] = [{"route": {"text": route}}]
    [fact] = record(order).medications
    assert fact.neuraxial is neuraxial


def test_a_response_left_out_for_a_modifier_is_unavailable_for_the_assessments_it_answers() -> None:
    """A questionnaire response is read answer by answer, each by its own code: left out for a
    modifier, the answers it gives are unread (`unavailable_codes`), the kind is not (fix-f's
    leftover, s17); a failed search still makes the whole kind unavailable."""
    modifier = [{"url": "http://ehr.example/fhir/StructureDefinition/not-asked", "valueBoolean": True}]
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "authored": "2025-10-03",
        "modifierExtension": modifier,
        "item": [
            {"linkId": "it-trial-side-effects", "answer": [{"valueString": "none"}]},
            {"linkId": "favourite-colour", "answer": [{"valueString": "blue"}]},
        ],
    }
    facts = record(response)
    why = "1 record(s) carry a modifier extension this service does not understand"
    assert not facts.unavailable and not facts.observations
    assert facts.unavailable_codes == {"QuestionnaireResponse": {"it-trial-side-effects": why}}
    assert facts.unread("QuestionnaireResponse", ("it-trial-side-effects",)) == why
    assert facts.unread("QuestionnaireResponse", ("it-trial-patient-acceptance",)) is None
    assert facts.unread("QuestionnaireResponse") == why  # a reader of any code
    assert facts.unread("Observation", ("it-trial-side-effects",)) is None
    failed = build_record("p1", {}, catalog().terminology, {"QuestionnaireResponse": "HTTP 503"})
    assert failed.unread("QuestionnaireResponse", ()) == "HTTP 503"


def test_a_chart_date_is_read_once_a_call_and_again_by_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chart repeats its dates (an encounter's diagnoses, orders and procedures share its instant):
    one `build_record` call reads each distinct text once, and keeps nothing for the next call (a cache
    outliving the call would carry one request's texts into another: test_no_leakage)."""
    import service.record

    read: list[Any] = []
    parse = service.record.parse_datetime
    monkeypatch.setattr(service.record, "parse_datetime", lambda value: read.append(value) or parse(value))
    when = "2024-03-05T10:00:00-05:00"
    chart = (
        condition(SCT, "82423001", when),
        condition(ICD, "M96.1", when),
        med_request("Morphine 15 MG Oral Tablet", when),
        procedure("62322", when),
        procedure("62323", when),
    )
    first = record(*chart)
    assert [fact.onset for fact in first.conditions] == [datetime.fromisoformat(when)] * 2
    assert read.count(when) == 1
    second = record(*chart)
    assert read.count(when) == 2
    assert second == first
