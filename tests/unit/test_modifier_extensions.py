"""Resources carrying a modifier extension: FHIR R4 forbids reading them as if the modifier were not
there (a modifier can negate a Condition or make an order something else), and this service knows
none. An order carrying one is not judged, and says so; a chart resource carrying one is left out and
its kind reads as not wholly available (fidelity review F-7)."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from service.app import create_app
from service.infusates import infusates
from service.modifiers import modifies, not_understood, order_modifiers, read_through, text_may_carry
from service.orders import DraftOrders, recognise
from service.record import build_record
from tests.builders import (
    PATIENT,
    PUMP_IN_PLACE,
    bundle,
    cards_of,
    catalog,
    condition,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import prefetch_app, sign_with_chart
from tests.demo_support import packaged_sample
from tests.support import (
    CountedItems,
    RecordingFactory,
    RecordingFhirClient,
    assert_outcome,
    assertion_of,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

SIGN_URL = "/cds-services/idds-crd-order-sign"

IMPLANT = "ServiceRequest/demo-meets-sign-sr-62362"
WHAT_IF = {"url": "http://ehr.example/fhir/StructureDefinition/what-if", "valueBoolean": True}


def signed_with_modified_implant() -> dict[str, Any]:
    body = sign_body()
    [implant] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if f"{e['resource']['resourceType']}/{e['resource']['id']}" == IMPLANT
    ]
    implant["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    return body


def action_on(answer: dict[str, Any], reference: str) -> dict[str, Any]:
    [action] = [
        a
        for a in answer["systemActions"]
        if f"{a['resource']['resourceType']}/{a['resource']['id']}" == reference
    ]
    return action


def test_an_order_with_a_modifier_extension_is_not_judged_and_says_why() -> None:
    _, answer = sign_with_chart(meeting_chart(), body=signed_with_modified_implant())
    told = assertion_of(action_on(answer, IMPLANT))
    assert told["covered"] == "conditional" and told["pa-needed"] == "conditional"
    reason = action_on(answer, IMPLANT)["description"]
    assert "modifier extension this service does not understand" in reason and WHAT_IF["url"] in reason
    summaries = [c["summary"] for c in cards_of(answer["cards"])]
    assert "Coverage not checked: the order carries an extension that changes its meaning" in summaries
    assert not any("meets" in s and "62362" in s for s in summaries)


@pytest.mark.parametrize("limit", [1, 2])
def test_max_cards_keeps_the_notice_of_an_order_not_checked(limit: int) -> None:
    """Session review s17 F-10: the notice came last and was the first card `max-cards` left out, so
    no card told the clinician the order was not checked."""
    body = signed_with_modified_implant()
    body["extension"] = {"davinci-crd.configuration": {"max-cards": limit}}
    _, answer = sign_with_chart(meeting_chart(), body=body)
    summaries = [c["summary"] for c in answer["cards"]]
    assert len(summaries) == limit
    assert summaries[-1] == "Coverage not checked: the order carries an extension that changes its meaning"


def test_the_same_order_without_one_is_judged() -> None:
    _, answer = sign_with_chart(meeting_chart())
    assert assertion_of(action_on(answer, IMPLANT))["covered"] == "covered"


def test_a_condition_with_a_modifier_extension_is_not_evidence() -> None:
    """The only pain diagnosis carries a modifier (it might say "not present"): the diagnosis criterion
    cannot be met by it, and the problem list reads as not wholly available."""
    chart = meeting_chart()
    [diagnosis] = [r for r in chart if r["resourceType"] == "Condition"]
    diagnosis["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    _, answer = sign_with_chart(chart)
    [decision] = [c for c in cards_of(answer["cards"]) if c["summary"].startswith("GEHA: 62362")]
    assert decision["summary"].endswith("could not be checked — records in the chart could not be read")
    assert "carry a modifier extension this service does not understand" in decision["detail"]
    # calling again reads the same records: the card says where to look instead
    assert "check those records in the chart" in decision["detail"]
    # the one item, its own step, said whole there: no Instructions card says it again (cards23 LOW)
    assert cards_of(answer["cards"], "clinical-reminder") == []


def test_a_record_no_policy_reads_carrying_one_changes_nothing() -> None:
    """Hypertension with a modifier is left unread as it always was: the problem list is still wholly
    read (session review s39, S39-1: the whole kind was "not available" for it)."""
    chart = [*meeting_chart(), condition("http://hl7.org/fhir/sid/icd-10-cm", "I10", "2020-01-01")]
    chart[-1]["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    _, answer = sign_with_chart(chart)
    assert [c["summary"] for c in cards_of(answer["cards"])] == [
        "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    ]


def with_modified_drug(body: dict[str, Any]) -> str:
    """`body`'s drug order given a modifier on its dosage instruction; its reference."""
    [drug] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    drug.setdefault("dosageInstruction", [{"text": "as programmed"}])[0]["modifierExtension"] = [
        copy.deepcopy(WHAT_IF)
    ]
    return f"MedicationRequest/{drug['id']}"


# what a decision card says of the criteria that read the pump's drug, when its order was left out
PUMP_DRUG_LEFT_OUT = (
    "some of the EHR's pump drug orders could not be read (1 record(s) carry a modifier extension this"
    " service does not understand) — check those records in the chart: calling again reads the same"
)


def test_the_pumps_drug_with_a_modifier_deep_in_it_is_not_checked() -> None:
    """A modifier on a dosage instruction changes the drug order as much as one at its top (S39-4,
    S39-5): the drug order's coverage information says it was not checked, and the pump orders'
    criteria that read the pump's drug are not judged by it either: they could not be checked, and
    the card says to check that order (before, the drug still counted as the pump's: "covered")."""
    body = sign_body()
    drug = with_modified_drug(body)
    _, answer = sign_with_chart(meeting_chart(), body=body)
    told = action_on(answer, drug)
    assert assertion_of(told)["covered"] == "conditional"
    assert WHAT_IF["url"] in told["description"]
    assert assertion_of(action_on(answer, IMPLANT))["covered"] == "conditional"
    [decision] = cards_of(answer["cards"])
    assert decision["summary"].endswith("could not be checked — records in the chart could not be read")
    assert f"2 of 14 criteria could not be checked**: {PUMP_DRUG_LEFT_OUT}" in decision["detail"]


def test_an_unselected_drug_with_a_modifier_is_not_read_as_the_pumps_drug() -> None:
    """order-select of the pump order alone: the drug drafted beside it, which it would be read from,
    carries a modifier, so what reads the pump's drug could not be checked."""
    body = select_body()
    with_modified_drug(body)
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [decision] = cards_of(answer["cards"])
    assert PUMP_DRUG_LEFT_OUT in decision["detail"]


@pytest.mark.parametrize("where", ["top", "dosageInstruction"])
def test_the_charts_pump_drug_with_a_modifier_is_not_read_as_the_pumps_drug(where: str) -> None:
    """A catheter ordered without a drug is judged by the pump's drug in the chart (contract §2); that
    record carrying a modifier (at its top, or on the dosage its route is read from) is left out as
    every chart record carrying one is, and the card says to check it rather than judging by it."""

    def decision(drug: dict[str, Any]) -> dict[str, Any]:
        call = sign_request(service_request("62350"), coverage=payer_coverage("kpwa"))
        _, answer = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE, drug], body=call)
        [card] = cards_of(answer["cards"])
        return card

    assert PUMP_DRUG_LEFT_OUT not in decision(infusate_request(status="active"))["detail"]
    modified = infusate_request(status="active")
    holder = modified if where == "top" else modified[where][0]
    holder["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    assert f"2 of 6 criteria could not be checked**: {PUMP_DRUG_LEFT_OUT}" in decision(modified)["detail"]


def assert_told_to_check(answer: dict[str, Any], kind: str) -> None:
    """GEHA's decision card could not check the pump: one record of the chart's `kind` (in the card's
    words) carries a modifier, and the card says to check those records."""
    [decision] = [c for c in cards_of(answer["cards"]) if c["summary"].startswith("GEHA: 62362")]
    assert decision["summary"].endswith("could not be checked — records in the chart could not be read")
    assert (
        f"some of the EHR's {kind} could not be read (1 record(s) carry a modifier extension this service"
        " does not understand) — check those records in the chart" in decision["detail"]
    )


def test_a_chart_record_with_a_modifier_on_a_part_that_is_read_is_not_evidence() -> None:
    """R4 allows a modifier on any backbone element: one on a component of a pain score (an
    Observation's components are read: contract §5's `scale`) changes that score, so the record is
    left out and the card says to check it (before, only a record's top was looked at)."""
    chart = meeting_chart()
    [score, *_] = [r for r in chart if r["resourceType"] == "Observation"]
    score["component"] = [
        {
            "code": {"text": "position"},
            "valueString": "sitting",
            "modifierExtension": [copy.deepcopy(WHAT_IF)],
        }
    ]
    _, answer = sign_with_chart(chart)
    assert_told_to_check(answer, "observations")


@pytest.mark.parametrize("where", ["top", "dispenseRequest"])
def test_a_drug_order_read_by_its_ingredient_with_a_modifier_is_not_silently_left_out(where: str) -> None:
    """The oral opioid course is coded with a product code no value set lists, and read by the
    ingredient its display names (contract §3). Carrying a modifier (at its top, or on the dispense
    request its span is read from), it is left out, and the card says so and to check it: before, it
    was taken for a record no policy reads and left out silently (the oral form read as undocumented)."""
    chart = meeting_chart()
    [course, *_] = [r for r in chart if r["resourceType"] == "MedicationRequest"]
    assert "Oxycodone" in course["medicationCodeableConcept"]["coding"][0]["display"]
    holder = course if where == "top" else course[where]
    holder["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    _, answer = sign_with_chart(chart)
    assert_told_to_check(answer, "medication orders")


def test_a_modifier_on_a_part_of_a_chart_record_that_is_not_read_changes_nothing() -> None:
    """A modifier changes the element holding it: on the evidence of the pain diagnosis (not read), the
    diagnosis still counts, and the problem list is wholly read."""
    chart = meeting_chart()
    [diagnosis] = [r for r in chart if r["resourceType"] == "Condition"]
    diagnosis["evidence"] = [{"detail": [{"display": "MRI"}], "modifierExtension": [copy.deepcopy(WHAT_IF)]}]
    _, answer = sign_with_chart(chart)
    assert [c["summary"] for c in cards_of(answer["cards"])] == [
        "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    ]


def test_behind_a_payers_gateway_the_modified_pump_order_still_gets_coverage_information() -> None:
    """`only_orders_with_rules` keeps the pump orders: the one not checked says so (S39-7)."""
    app = create_app(open_settings(only_orders_with_rules=True))
    answer = post_json(app.test_client(), SIGN_URL, signed_with_modified_implant()).get_json()
    assert "modifier extension" in action_on(answer, IMPLANT)["description"]


MODIFIED_PART = {"modifierExtension": [WHAT_IF]}
MEDICATION = {"resourceType": "Medication", "id": "m"}
MEDICATION_REFERENCE = {"resourceType": "MedicationStatement", "medicationReference": {"reference": "#m"}}


@pytest.mark.parametrize(
    ("record", "left_out"),
    [
        ({"resourceType": "MedicationRequest", "dosageInstruction": [{"timing": MODIFIED_PART}]}, True),
        ({"resourceType": "MedicationRequest", "dispenseRequest": MODIFIED_PART}, True),
        ({"resourceType": "MedicationRequest", "substitution": MODIFIED_PART}, False),  # not read
        ({"resourceType": "MedicationStatement", "dosage": [MODIFIED_PART]}, True),
        ({"resourceType": "Procedure", "focalDevice": [MODIFIED_PART]}, True),
        ({"resourceType": "Procedure", "performer": [MODIFIED_PART]}, False),
        ({"resourceType": "Observation", "component": [MODIFIED_PART]}, True),
        ({"resourceType": "Observation", "referenceRange": [MODIFIED_PART]}, False),
        ({"resourceType": "Device", "deviceName": [MODIFIED_PART]}, True),
        ({"resourceType": "QuestionnaireResponse", "item": [{"answer": [{"item": [MODIFIED_PART]}]}]}, True),
        ({"resourceType": "Condition", "evidence": [MODIFIED_PART]}, False),
        ({"resourceType": "Condition", **MODIFIED_PART}, True),
        ({"resourceType": "Observation", "component": [{"modifierExtension": []}]}, False),  # empty
        # read through a contained Medication (READ_THROUGH): its top, an ingredient, a part not read
        ({**MEDICATION_REFERENCE, "contained": [{**MEDICATION, **MODIFIED_PART}]}, True),
        ({**MEDICATION_REFERENCE, "contained": [{**MEDICATION, "ingredient": [MODIFIED_PART]}]}, True),
        ({**MEDICATION_REFERENCE, "contained": [{**MEDICATION, "batch": MODIFIED_PART}]}, False),
        (
            {"resourceType": "MedicationStatement", "contained": [{**MEDICATION, **MODIFIED_PART}]},
            False,
        ),  # unnamed
    ],
)
def test_a_chart_record_is_looked_at_for_modifiers_where_it_is_read(
    record: dict[str, Any], left_out: bool
) -> None:
    assert modifies(record) is left_out


# What an order or record is read through (service/modifiers.py READ_THROUGH): a modifier there is one
# on the order or record (json review F4, fixer s16-a's remaining medium).

HARDWARE = "DeviceRequest/demo-meets-sign-dr-e0783"
DRUG = "MedicationRequest/demo-meets-sign-mr-infusate"


def draft(body: dict[str, Any], reference: str) -> dict[str, Any]:
    [resource] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if f"{e['resource']['resourceType']}/{e['resource']['id']}" == reference
    ]
    return resource


def carrying(resource: dict[str, Any], modified: bool) -> dict[str, Any]:
    return {**resource, "modifierExtension": [copy.deepcopy(WHAT_IF)]} if modified else resource


class DeviceOnServer(RecordingFhirClient):
    """The EHR's FHIR server holding one Device, the chart's searches finding nothing."""

    def __init__(self, held: dict[str, Any]) -> None:
        super().__init__()
        self.held = held

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        return self.held if reference == f"Device/{self.held['id']}" else None


def hardware_coded_by_its_device(where: str, modified: bool) -> dict[str, Any]:
    """demo-meets's order-sign (its chart prefetched) answered, its E0783 order coded by a Device
    (`codeReference`) kept `where`, the Device carrying a modifier when `modified`."""
    body = packaged_sample("order-sign-implant-demo-meets")
    order = draft(body, HARDWARE)
    held = carrying(
        {
            "resourceType": "Device",
            "id": "pump-dev",
            "patient": order["subject"],
            "type": order["codeCodeableConcept"],
        },
        modified,
    )
    del order["codeCodeableConcept"]
    order["codeReference"] = {"reference": "#pump-dev" if where == "contained" else "Device/pump-dev"}
    app = prefetch_app()
    if where == "contained":
        order["contained"] = [held]
    elif where == "draft-orders":
        body["context"]["draftOrders"]["entry"].append({"resource": held})
    elif where == "prefetch":
        body["prefetch"]["patientDevices"]["entry"] = [{"resource": held}]
    else:  # read from the EHR's FHIR server
        app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(DeviceOnServer(held)))
        body = with_fhir(body)
    answer: dict[str, Any] = post_json(app.test_client(), SIGN_URL, body).get_json()
    return answer


@pytest.mark.parametrize("where", ["contained", "draft-orders", "prefetch", "server"])
def test_a_hardware_order_coded_by_a_device_carrying_a_modifier_is_not_judged(where: str) -> None:
    """The E0783 order's code is its Device's type: a modifier on that Device changes what is ordered
    as one on the order does. Before, only a contained Device was looked at (the order is walked whole):
    one among the call's orders, prefetched or read from the FHIR server was read as if it carried none,
    and the order judged "covered"."""
    assert (
        assertion_of(action_on(hardware_coded_by_its_device(where, False), HARDWARE))["covered"] == "covered"
    )
    answer = hardware_coded_by_its_device(where, True)
    told = action_on(answer, HARDWARE)
    assert assertion_of(told)["covered"] == "conditional" and WHAT_IF["url"] in told["description"]
    summaries = [c["summary"] for c in cards_of(answer["cards"])]
    # worded as on the Device, not the order (review2 F-5)
    assert (
        "Coverage not checked: the order's device record carries an extension that changes its meaning"
        in summaries
    )
    assert "its device record (" in told["description"] and "it carries" not in told["description"]
    # the others are judged (a prefetched Device is a chart record too: left out, the record's devices
    # read as not wholly available)
    assert any(s.startswith("GEHA: 62362, 62350 ") for s in summaries), summaries


def drug_coded_by_its_medication(where: str, modified: bool) -> dict[str, Any]:
    """demo-meets's order-sign (its chart prefetched) answered, the pump's drug order naming its drug by
    a Medication kept `where` (among the draft orders, contained, or the chart's: prefetched with the
    medication orders), the Medication carrying a modifier when `modified`."""
    body = packaged_sample("order-sign-implant-demo-meets")
    order = draft(body, DRUG)
    held = carrying(
        {"resourceType": "Medication", "id": "drug", "code": order.pop("medicationCodeableConcept")}, modified
    )
    order["medicationReference"] = {"reference": "#drug" if where == "contained" else "Medication/drug"}
    if where == "contained":
        order["contained"] = [held]
    elif where == "draft-orders":
        body["context"]["draftOrders"]["entry"].append({"resource": held})
    else:
        body["prefetch"]["medicationRequests"]["entry"].append(
            {"resource": held, "search": {"mode": "include"}}
        )
    answer: dict[str, Any] = post_json(prefetch_app().test_client(), SIGN_URL, body).get_json()
    return answer


@pytest.mark.parametrize("where", ["contained", "draft-orders", "chart"])
def test_the_pumps_drug_named_by_a_medication_carrying_a_modifier_is_not_read(where: str) -> None:
    """The drug order's drug is its Medication's code: with a modifier on that Medication, the order
    says it was not checked and the pump's drug is not read from it (the criteria reading it could not
    be checked), as with one on the order. Before, a Medication among the call's orders or the chart's
    was read as if it carried none: "meets all 14"."""
    assert assertion_of(action_on(drug_coded_by_its_medication(where, False), DRUG))["covered"] == "covered"
    answer = drug_coded_by_its_medication(where, True)
    told = action_on(answer, DRUG)
    assert assertion_of(told)["covered"] == "conditional" and WHAT_IF["url"] in told["description"]
    named = "#drug" if where == "contained" else "Medication/drug"  # worded as on it (review2 F-5)
    assert f"GEHA: its drug record ({named}) carries a modifier extension" in told["description"]
    [decision, *_] = cards_of(answer["cards"])
    assert f"2 of 14 criteria could not be checked**: {PUMP_DRUG_LEFT_OUT}" in decision["detail"]


def test_an_orders_reason_among_the_calls_orders_carrying_a_modifier_is_not_read() -> None:
    """A pump order's reason may be a Condition the call carries beside it (`reasonReference`): read
    as the order's indication, a modifier on it (it might say "not present") changes the order's
    reason, so the order is not judged by it."""
    body = packaged_sample("order-sign-implant-demo-meets")
    implant = draft(body, IMPLANT)
    reason = {"resourceType": "Condition", "id": "why", "code": implant.pop("reasonCode")[0]}
    implant["reasonReference"] = [{"reference": "Condition/why"}]
    body["context"]["draftOrders"]["entry"].append({"resource": carrying(reason, True)})
    answer = post_json(prefetch_app().test_client(), SIGN_URL, body).get_json()
    told = action_on(answer, IMPLANT)
    assert assertion_of(told)["covered"] == "conditional" and WHAT_IF["url"] in told["description"]
    assert "GEHA: its reason (Condition/why) carries a modifier extension" in told["description"]
    summaries = [c["summary"] for c in cards_of(answer["cards"])]
    assert (
        "Coverage not checked: the order's reason carries an extension that changes its meaning" in summaries
    )


def test_a_modifier_on_the_order_and_on_its_device_is_worded_on_each() -> None:
    """Each holder is named with what it carries, the order first (review2 F-5)."""
    device = {"resourceType": "Device", "id": "d", "modifierExtension": [{"url": "http://x/on-device"}]}
    order = {
        "resourceType": "DeviceRequest",
        "modifierExtension": [{"url": "http://x/on-order"}],
        "codeReference": {"reference": "#d"},
        "contained": [device],
    }
    carried = order_modifiers(order)
    assert carried.holder("the order's") == "the order"
    assert not_understood(carried) == (
        "it carries a modifier extension this service does not understand (http://x/on-order); "
        "its device record (#d) carries a modifier extension this service does not understand (http://x/on-device)"
    )
    del order["modifierExtension"]
    assert order_modifiers(order).holder("the order's") == "the order's device record"


def test_an_orders_reasons_naming_devices_are_never_read() -> None:
    """R4 allows a reason to be a Condition, Observation, DiagnosticReport or DocumentReference; only a
    Condition is read there (READ_THROUGH). An order whose reasons name 500 Devices made 500 reads on the
    EHR's FHIR server, enough against a slow one to use up the call's deadline (review2 F-4): none is
    read, and the order is judged on its Device read once."""
    body = packaged_sample("order-sign-implant-demo-meets")
    implant = draft(body, IMPLANT)
    implant["reasonReference"] = [{"reference": f"Device/d{i}"} for i in range(500)]
    hardware = draft(body, HARDWARE)
    held = {"resourceType": "Device", "id": "pump-dev", "patient": hardware["subject"]}
    held["type"] = hardware.pop("codeCodeableConcept")
    hardware["codeReference"] = {"reference": "Device/pump-dev"}
    server = DeviceOnServer(held)
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    answer = post_json(app.test_client(), SIGN_URL, with_fhir(body)).get_json()
    assert [r for kind, r in server.calls if kind == "read"] == ["Device/pump-dev"]
    assert answer["cards"][0]["summary"] == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    assert read_through(implant, lambda reference: pytest.fail(f"{reference} resolved")) == []


def the_charts_pump_drug_by_its_medication(contained: bool, modified: bool) -> dict[str, Any]:
    """The chart's pump drug (a catheter is ordered without one: contract §2) named by a Medication,
    contained in it or the chart's, carrying a modifier when `modified`: the records as gathered."""
    drug = infusate_request(status="active")
    medication = carrying(
        {"resourceType": "Medication", "id": "bac", "code": drug.pop("medicationCodeableConcept")}, modified
    )
    if contained:
        drug["contained"] = [medication]
        drug["medicationReference"] = {"reference": "#bac"}
        return {"MedicationRequest": [drug]}
    drug["medicationReference"] = {"reference": "Medication/bac"}
    return {"MedicationRequest": [drug], "Medication": [medication]}


@pytest.mark.parametrize("contained", [True, False])
def test_the_charts_pump_drug_is_not_read_from_a_medication_carrying_a_modifier(contained: bool) -> None:
    """The chart's drug record read through its Medication: one with a modifier is left out, as the
    record itself carrying one is. Before, the Medication was never looked at (fixer s16-a's
    probe_medication_modifier.py; json review F5, D, for a contained one)."""
    catalog_ = catalog()
    order = service_request("62350")
    drafts = DraftOrders(bundle(order))
    pump = [recognise(order, drafts, catalog_.order_codes)]
    terminology = catalog_.terminology
    plain = infusates(drafts, terminology, pump, the_charts_pump_drug_by_its_medication(contained, False))
    assert [d.text for d in plain.found] and not plain.left_out
    modified = infusates(drafts, terminology, pump, the_charts_pump_drug_by_its_medication(contained, True))
    assert not modified.found and len(modified.left_out) == 1


@pytest.mark.parametrize("contained", [True, False])
def test_a_chart_drug_record_read_through_a_medication_carrying_a_modifier_is_left_out(
    contained: bool,
) -> None:
    """build_record reads a drug record's drug from its Medication: with a modifier there, the record
    is left out and its kind reads as not wholly available."""
    catalog_ = catalog()
    for modified in (False, True):
        chart = the_charts_pump_drug_by_its_medication(contained, modified)
        record = build_record(PATIENT, chart, catalog_.terminology)
        assert len(record.medications) == (0 if modified else 1)
        assert ("MedicationRequest" in record.unavailable) is modified


# A modifierExtension that is not an array of extensions is never taken for none (json review F9):
# the request's own (a dispatched order prefetched too) is refused, naming it; a chart record's is a
# modifier not understood.

ILL_FORMED = [False, 0, "", {}, "what-if", {"url": WHAT_IF["url"]}, [None], [[WHAT_IF]], [WHAT_IF, "x"]]


@pytest.mark.parametrize("value", ILL_FORMED, ids=repr)
@pytest.mark.parametrize(
    ("hook", "where"),
    [
        ("order-sign", "top"),
        ("order-sign", "dosage"),
        ("order-sign", "contained"),
        ("appointment-book", "top"),
        ("order-dispatch", "top"),
    ],
)
def test_a_draft_order_or_appointment_whose_modifier_extension_is_no_array_of_extensions_is_400(
    hook: str, where: str, value: Any
) -> None:
    """Before, `false`, `0`, `""` and `{}` read as no modifier and the order was judged covered (and
    the others as one without a url): like a draft order's `extension`, the request is refused. So is a
    dispatched order the EHR prefetched, the call's own order as a draft is (ehr26, 62ed0a0's reasoning):
    it was judged as one carrying a modifier not understood, and sent back in the update as it came."""
    if hook == "order-dispatch":
        body = packaged_sample("order-dispatch-62362-demo-meets")
        holder = body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"]
        field = "prefetch.dispatchedServiceRequests.entry[0].resource"
    elif hook == "appointment-book":
        body = packaged_sample("appointment-book-62362-demo-meets")
        holder = body["context"]["appointments"]["entry"][0]["resource"]
        field = "context.appointments.entry[0].resource"
        assert holder["resourceType"] == "Appointment"
    else:
        body = packaged_sample("order-sign-implant-demo-meets")
        holder, field = draft(body, DRUG), "context.draftOrders.entry[0].resource"
    if where == "dosage":
        holder, field = holder["dosageInstruction"][0], f"{field}.dosageInstruction[0]"
    elif where == "contained":
        holder["contained"] = [{"resourceType": "Condition", "id": "c"}]
        holder, field = holder["contained"][0], f"{field}.contained[0]"
    holder["modifierExtension"] = copy.deepcopy(value)
    field += ".modifierExtension"
    if isinstance(value, list):
        field += f"[{next(i for i, e in enumerate(value) if not isinstance(e, dict))}]"
    if hook == "order-sign":
        draft_orders = body["context"]["draftOrders"]["entry"]
        draft_orders.insert(0, draft_orders.pop(3))  # the drug order first: entry[0]
    response = post_json(prefetch_app().test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert_outcome(response, 400, field)


@pytest.mark.parametrize("value", [[], None])
def test_an_empty_or_null_modifier_extension_on_the_call_s_order_is_a_400(value: Any) -> None:
    """`[]` holds nothing and null is no value: read as none, the order was judged and sent back with
    it in its update; now refused as any null or empty element of the call's order is (CDS Hooks)."""
    body = packaged_sample("order-sign-implant-demo-meets")
    order = draft(body, IMPLANT)
    order["modifierExtension"] = value
    index = next(i for i, e in enumerate(body["context"]["draftOrders"]["entry"]) if e["resource"] is order)
    response = post_json(prefetch_app().test_client(), SIGN_URL, body)
    assert_outcome(response, 400, f"context.draftOrders.entry[{index}].resource.modifierExtension")


@pytest.mark.parametrize("value", [[], None])
def test_an_empty_or_null_modifier_extension_on_a_chart_record_is_none(value: Any) -> None:
    """A chart record's is the EHR's: it holds nothing, so the record is read (`modifies`)."""
    assert not modifies({"resourceType": "Condition", "modifierExtension": value})


@pytest.mark.parametrize("value", ILL_FORMED, ids=repr)
def test_a_chart_record_whose_modifier_extension_is_no_array_of_extensions_is_left_out(value: Any) -> None:
    """A chart record is the EHR's: one whose modifierExtension (at its top, or on a part that is read)
    is no array of extensions is left out, as one carrying a modifier is, never read as carrying none."""
    assert modifies({"resourceType": "Condition", "modifierExtension": copy.deepcopy(value)})
    assert modifies(
        {"resourceType": "Observation", "component": [{"modifierExtension": copy.deepcopy(value)}]}
    )


@pytest.mark.parametrize(
    ("component", "carries"),
    [
        ({"valueString": "modifierExtension"}, False),  # the word as a value is no modifier
        ({"modifierExtension": []}, False),
        ({"modifierExtension": [{"url": "http://example.org/x"}]}, True),
        ({"valueInteger": 2**70, "modifierExtension": [{"url": "http://example.org/x"}]}, True),
        ({"valueInteger": 2**70}, False),
    ],
)
def test_a_read_part_is_looked_at_whatever_it_holds(component: dict[str, Any], carries: bool) -> None:
    """The quick look (the key in the part written by orjson) and the walk agree: a part orjson cannot
    write (an integer past 64 bits) is walked."""
    record = {"resourceType": "Observation", "id": "o", "component": [{"code": {"text": "c"}, **component}]}
    assert modifies(record) is carries


@pytest.mark.parametrize("count", [10, 400])
def test_what_an_order_is_read_through_is_found_in_one_pass_over_its_contained(count: int) -> None:
    """Each `#id` reason was found by indexing `contained` again (review s16 review2 F-1: 16,000 took
    37 s, as security review S-2 had found for the reasons themselves)."""
    order: dict[str, Any] = {"resourceType": "ServiceRequest", "id": "sr"}
    order["reasonReference"] = [{"reference": f"#why{n}"} for n in range(count)]
    reasons = [{"resourceType": "Condition", "id": f"why{n}"} for n in range(count)]
    order["contained"] = CountedItems(reasons)
    assert read_through(order) == reasons
    assert order["contained"].read == count


def _record_looks(monkeypatch: pytest.MonkeyPatch, chart: list[dict[str, Any]]) -> tuple[int, Any]:
    """How many records `build_record` looks at for modifiers one by one, and the record it builds."""
    looked: list[str] = []

    def counted(resource: dict[str, Any], resolve: Any = None) -> bool:
        looked.append(resource["id"])
        return modifies(resource, resolve)

    monkeypatch.setattr("service.record.modifies", counted)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chart:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    record = build_record(PATIENT, by_type, catalog().terminology)
    return len(looked), record


def test_a_chart_holding_no_modifier_anywhere_is_not_looked_at_record_by_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked, record = _record_looks(monkeypatch, meeting_chart())
    assert looked == 0 and not record.unavailable


@pytest.mark.parametrize("huge", [False, True])
def test_a_chart_holding_one_anywhere_is_looked_at_record_by_record(
    monkeypatch: pytest.MonkeyPatch, huge: bool
) -> None:
    """Found by the quick look over the whole chart, or (an integer past 64 bits, which orjson cannot
    write) looked for in every record."""
    chart = meeting_chart()
    [diagnosis] = [r for r in chart if r["resourceType"] == "Condition"]
    diagnosis["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    if huge:
        chart.append(
            {"resourceType": "Observation", "id": "huge", "code": {"text": "x"}, "valueInteger": 2**70}
        )
    looked, record = _record_looks(monkeypatch, chart)
    assert looked > 0 and "Condition" in record.unavailable


class _Unwalked(dict):  # type: ignore[type-arg]
    """An object whose members may not be walked in Python (orjson writes a dict subclass natively)."""

    def items(self) -> Any:
        raise AssertionError("walked")

    def values(self) -> Any:
        raise AssertionError("walked")


def test_an_order_holding_no_modifier_key_is_not_walked_for_one() -> None:
    """`order_modifiers` and `malformed` walk an order (a dozen a call, each twice) only where its text
    as orjson writes it holds the key, as the chart's records are looked at (`may_carry`)."""
    from service.modifiers import malformed

    order = service_request()
    order["code"] = _Unwalked(order["code"])
    order["contained"] = [_Unwalked({"resourceType": "Condition", "id": "c"})]
    order["reasonReference"] = [{"reference": "#c"}]
    assert not order_modifiers(order) and malformed(order) is None
    order["code"]["modifierExtension"] = [{"url": "http://example.org/x"}]
    with pytest.raises(AssertionError, match="walked"):
        order_modifiers(order)


def _demo_meets_sign(escape_key: bool = False, **changed: Any) -> bytes:
    """demo-meets's order-sign (its chart prefetched) as the EHR's bytes, each prefetched Condition
    carrying `changed` (a `modifierExtension` key written `modifier\\u0045xtension` with `escape_key`)."""
    body = packaged_sample("order-sign-implant-demo-meets")
    for entry in body["prefetch"]["conditions"]["entry"]:
        entry["resource"].update(copy.deepcopy(changed))
    raw = json.dumps(body).encode()
    return raw.replace(b'"modifierExtension"', b'"modifier\\u0045xtension"') if escape_key else raw


def _posted(raw: bytes) -> dict[str, Any]:
    response = prefetch_app().test_client().post(SIGN_URL, data=raw, content_type="application/json")
    assert response.status_code == 200, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize("escape_key", [False, True])
def test_a_prefetched_record_carrying_a_modifier_is_left_out_however_the_key_is_written(
    escape_key: bool,
) -> None:
    """The chart-wide look is skipped when the request's text holds no `modifierExtension`
    (`modifiers.text_may_carry`): a prefetched record carrying one is still found, the key written
    plainly or with a letter escaped (`\\u0045` is `E`: the text then holds no `modifierExtension`)."""
    raw = _demo_meets_sign(escape_key, modifierExtension=[WHAT_IF])
    assert (b"modifierExtension" in raw) is not escape_key
    answer = _posted(raw)
    [decision] = [c for c in cards_of(answer["cards"]) if c["summary"].startswith("GEHA: 62362")]
    assert decision["summary"].endswith("could not be checked — records in the chart could not be read")
    assert "carry a modifier extension this service does not understand" in decision["detail"]


class _Written:
    """What `may_carry` writes with orjson to look for the key (its argument), kept to be looked at."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.JSONEncodeError = orjson.JSONEncodeError

    def dumps(self, value: Any, **options: Any) -> bytes:
        self.values.append(value)
        return orjson.dumps(value, **options)

    def resources(self) -> set[tuple[str, str]]:
        """`(type, id)` of every resource anywhere in what was written."""
        found: set[tuple[str, str]] = set()
        stack = list(self.values)
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if isinstance(item.get("resourceType"), str) and isinstance(item.get("id"), str):
                    found.add((item["resourceType"], item["id"]))
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return found


@pytest.mark.parametrize("key_in_text", [False, True])
def test_the_prefetch_is_looked_at_for_modifiers_only_where_the_requests_text_may_hold_one(
    monkeypatch: pytest.MonkeyPatch, key_in_text: bool
) -> None:
    """The chart-wide look (`may_carry`: the whole prefetched chart written by orjson, 0.7-1.7 ms of a
    Synthea-sized call) is not made when the request's bytes hold no `modifierExtension`: none of the
    prefetched records is written. Where the text holds the key (here an empty one, which is none),
    the chart is looked at as before, and the answer is the same."""
    written = _Written()
    monkeypatch.setattr("service.modifiers.orjson", written)
    body = packaged_sample("order-sign-implant-demo-meets")
    prefetched = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for value in body["prefetch"].values()
        if value and value.get("resourceType") == "Bundle"
        for e in value.get("entry", [])
    }
    raw = _demo_meets_sign(modifierExtension=[]) if key_in_text else _demo_meets_sign()
    answer = _posted(raw)
    assert [c["summary"] for c in cards_of(answer["cards"])] == [
        "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    ]
    looked_at = written.resources() & prefetched
    assert looked_at == (prefetched if key_in_text else set())


@pytest.mark.parametrize(
    ("text", "may"),
    [
        (b'{"modifierExtension":[]}', True),
        (b'{"\\u006dodifierExtension":[]}', True),
        (b'{"modifier\\u0045xtension":[]}', True),
        (b'{"modifierExtensio\\u006E":[]}', True),
        (b'{"extension":[],"text":"caf\\u00e9 \\u003cdiv\\u003e \\u2014"}', False),
        (b'{"text":"modifier extension"}', False),
    ],
)
def test_a_requests_text_may_hold_the_key_written_plainly_or_with_an_escaped_letter(
    text: bytes, may: bool
) -> None:
    assert text_may_carry(text) is may
    assert may or "modifierExtension" not in json.dumps(json.loads(text))
