"""The record leaves out the Procedures no policy can read (service/relevance.py, issue 12), and only those:
every code a value set holds or a removal undoes, what a Procedure used, the orders it carried out and the
devices it put in keep it, whatever else it says; one left out is not counted unreadable, as before."""

from __future__ import annotations

from typing import Any

import pytest

from service import codes as keys
from service.record import build_record
from tests.builders import (
    ASSESS,
    CPT,
    HCPCS,
    ICD,
    LOINC,
    RX,
    SCT,
    catalog,
    meeting_chart,
    procedure,
    steroid_injection,
)
from tests.calls import sign_with_chart

UNREAD = "10509002"  # SNOMED CT "Acute bronchitis": no value set's
URLS = {keys.CPT: CPT, keys.HCPCS: HCPCS, keys.SNOMED: SCT, keys.LOINC: LOINC}


def record(*resources: dict[str, Any]) -> Any:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return build_record("p1", by_type, catalog().terminology)


def _every_read_code() -> list[tuple[str, str]]:
    """(system URL, code) of every code the shipped value sets hold or undo: each system's codes, each
    ICD-10-CM prefix, each RxNorm ingredient and product, each removal, and the assessment codes."""
    terminology = catalog().terminology
    found: set[tuple[str, str]] = set()
    for value_set in (terminology[i] for i in terminology.ids()):
        for system, codes in value_set.codes.items():
            found |= {(URLS[system], code) for code in codes}
        found |= {(ICD, prefix) for prefix in value_set.icd10_prefixes}
        for ingredient in value_set.ingredients:
            found |= {(RX, code) for code in (ingredient.code, *ingredient.products) if code}
        found |= {(CPT, code) for code in value_set.removals}
    found |= {(ASSESS, code) for code in terminology.assessment_codes}
    return sorted(found)


def test_a_procedure_coded_by_any_code_a_policy_reads_is_kept() -> None:
    """Every code of every value set, removal and assessment keeps a completed Procedure coded by it alone
    (a removal's CPT code, 62365, is in no value set's codes: `removals` lists it)."""
    codes = _every_read_code()
    procedures = [procedure(code, "2024-05-02", system=system) for system, code in codes]
    kept = {p.source for p in record(*procedures).procedures}
    left_out = [
        code for (_, code), p in zip(codes, procedures, strict=True) if f"Procedure/{p['id']}" not in kept
    ]
    assert len(codes) > 500
    assert left_out == []


def test_a_procedure_no_policy_reads_is_left_out_and_not_counted_unreadable() -> None:
    found = record(procedure(UNREAD, "2024-05-02", system=SCT), procedure("62324", "2025-10-01T09:00:00Z"))
    assert [c.code for p in found.procedures for c in p.codes] == ["62324"]
    assert "Procedure" not in found.unavailable


@pytest.mark.parametrize("modified", [False, True])
def test_an_unread_procedure_that_cannot_be_read_still_makes_procedures_unavailable(modified: bool) -> None:
    """One whose status JSON makes no text of is counted as before (its codes are not reached); one that
    carries a modifier extension and that no policy reads is left out uncounted, as before."""
    unread = procedure(UNREAD, "2024-05-02", system=SCT)
    if modified:
        unread["modifierExtension"] = [{"url": "http://example.org/x", "valueBoolean": True}]
    else:
        unread["status"] = ["completed"]
    found = record(unread)
    assert found.procedures == ()
    assert ("Procedure" in found.unavailable) is not modified


def test_an_unread_procedure_that_used_a_steroid_by_its_words_is_kept() -> None:
    """Relevant through its text alone: what it used names a corticosteroid (AMB-34)."""
    injection = steroid_injection(UNREAD, "2024-05-02")
    injection["code"]["coding"][0]["system"] = SCT
    found = record(injection)
    assert [p.steroid_injection for p in found.procedures] == [True]


@pytest.mark.parametrize("names", [("basedOn",), ("focalDevice",), ("basedOn", "focalDevice")])
def test_an_unread_procedure_that_put_a_device_in_is_kept(names: tuple[str, ...]) -> None:
    """`PatientRecord.before` takes out what an order's Procedure put in, whatever its code: the Device
    it names is not one already in place when the order is judged on the chart it was placed on. One done
    for an order and naming no device is read by nothing (`before` takes out only the Procedure itself)."""
    done = procedure(UNREAD, "2024-05-02", system=SCT)
    written = {
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "focalDevice": [{"manipulated": {"reference": "Device/pump1"}}],
    }
    done |= {name: written[name] for name in names}
    pump = {"resourceType": "Device", "id": "pump1", "status": "active", "type": {"text": "Intrathecal pump"}}
    found = record(done, pump)
    based_on = ("ServiceRequest/sr1",) if "basedOn" in names else ()
    kept = [(based_on, ("Device/pump1",))] if "focalDevice" in names else []
    assert [(p.based_on, p.devices) for p in found.procedures] == kept
    assert len(found.before(["ServiceRequest/sr1"]).devices) == (0 if len(names) == 2 else 1)


MODIFIER = [{"url": "http://example.org/unknown", "valueBoolean": True}]


def _diagnosis(code: str, display: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c-{code}",
        "code": {"coding": [{"system": SCT, "code": code, "display": display}]},
        "onsetDateTime": "2025-01-01",
    }


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Procedure", procedure("62365", "2024-03-01")),  # a pump removal: its code is a removal's alone
        (
            "Procedure",
            procedure(UNREAD, "2024-05-02", system=SCT)
            | {"focalDevice": [{"manipulated": {"reference": "Device/d1"}}]},
        ),
        ("Condition", _diagnosis("1234567", "Infection of tooth")),  # named by its words alone
    ],
)
def test_a_record_a_policy_reads_that_carries_a_modifier_is_counted_unreadable(
    kind: str, resource: dict[str, Any]
) -> None:
    """A removal left out unnoticed would leave the pump it took out in place (an implant read as a
    replacement), an infection named by words alone would leave the reviewer's "documented, under a code
    this service does not list" unsaid: each is counted, so the card says what could not be read."""
    found = record(procedure("62362", "2022-03-01"), resource | {"modifierExtension": MODIFIER})
    assert "modifier extension" in found.unavailable.get(kind, "")


@pytest.mark.parametrize(
    "resource",
    [procedure(UNREAD, "2024-05-02", system=SCT), _diagnosis("196416002", "Impacted molars")],
)
def test_a_record_no_policy_reads_that_carries_a_modifier_is_left_out_uncounted(
    resource: dict[str, Any],
) -> None:
    found = record(resource | {"modifierExtension": MODIFIER})
    assert (found.procedures, found.conditions, dict(found.unavailable)) == ((), (), {})


def test_a_diagnosis_whose_words_hold_a_value_sets_word_only_inside_another_is_not_counted() -> None:
    """ "Gingivitis" holds the route word "iv" but names no route: carrying a modifier, it is left out
    uncounted, as one no policy reads."""
    found = record(_diagnosis("66383009", "Gingivitis") | {"modifierExtension": MODIFIER})
    assert (found.conditions, dict(found.unavailable)) == ((), {})


@pytest.mark.parametrize(
    ("system", "code", "display"),
    [
        (SCT, "79740000", "Oral candidiasis"),  # a route's word ("oral"), read only of a drug's route
        (SCT, "95376002", "Injection site reaction"),  # route-injectable's
        (SCT, "300910009", "Transdermal patch allergy"),  # route-transdermal's two
        (ICD, "F31.71", "Bipolar disorder, in remission"),  # psych-acute excludes F31.7; none lists it
    ],
)
def test_a_diagnosis_no_policy_reads_that_carries_a_modifier_is_not_counted_unreadable(
    system: str, code: str, display: str
) -> None:
    """Counted, it would make the whole problem list not wholly available: a chart meeting every criterion
    would read "could not be checked" (review29c). A diagnosis's words are read only against a value set of
    diagnoses (`worded_conditions`, the no-condition test's), never against a route's words; and its code
    as the value sets read it, exclusions and all."""
    diagnosis = _diagnosis(code, display)
    diagnosis["code"]["coding"][0]["system"] = system
    found = record(diagnosis | {"modifierExtension": MODIFIER})
    assert (found.conditions, dict(found.unavailable)) == ((), {})


WORDED_BY_NO_TEST = [
    ("429029008", "Pacemaker syndrome"),  # programmable-device's words, read only of a Device
    ("1234500", "Spinal cord stimulator malfunction"),
    ("1234503", "Intrathecal pump site pain"),  # idds-in-place's words, read only of a Device
]


@pytest.mark.parametrize(("code", "display"), WORDED_BY_NO_TEST)
def test_a_diagnosis_named_only_by_words_no_test_reads_a_diagnosis_by_is_not_counted(
    code: str, display: str
) -> None:
    """review29c's residual: a value set of diagnoses names them by words, but no policy's test reads a
    diagnosis by those words (only no-condition's value sets are, `Catalog.worded_diagnoses`): carrying a
    modifier, each is left out uncounted; "Infection of tooth" (infection, a no-condition test's) still
    counts."""
    worded = catalog().worded_diagnoses
    found = build_record(
        "p1",
        {"Condition": [_diagnosis(code, display) | {"modifierExtension": MODIFIER}]},
        catalog().terminology,
        worded=worded,
    )
    assert (found.conditions, dict(found.unavailable)) == ((), {})
    infection = _diagnosis("109570002", "Infection of tooth") | {"modifierExtension": MODIFIER}
    read = build_record("p1", {"Condition": [infection]}, catalog().terminology, worded=worded)
    assert "modifier extension" in read.unavailable.get("Condition", "")


def test_through_the_service_a_modified_diagnosis_no_test_reads_leaves_the_answer_whole() -> None:
    """The call passes the catalog's list (service/pipeline.py): GEHA's "meets all 14 coverage criteria"
    stays so beside a modified "Pacemaker syndrome" (it read "could not be checked")."""
    diagnosis = _diagnosis(*WORDED_BY_NO_TEST[0]) | {"modifierExtension": MODIFIER}
    _, response = sign_with_chart([*meeting_chart(), diagnosis])
    assert "meet all 14 coverage criteria" in response["cards"][0]["summary"]
