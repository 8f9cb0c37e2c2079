"""A reference written as another FHIR server's URL names none of the call's drafts (service/orders.py
`DraftOrders`, given the call's FHIR server), whatever their entry's fullUrl: a draft is the call's, held
on the call's server, as a chart resource is (service/references.py `local_reference`, `chart_lookup`).
Before, a draft whose fullUrl was `urn:uuid:` (as EHRs and the samples send it) or absent was taken for
`https://other.example/fhir/Type/id` of its id: the pump order's reason Condition, the drug order its
reasonReference names, a drug's Medication, a hardware order's Device and a booked Appointment's order
(fix-m's leftover, s18)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.appointments import appointment_orders, based_on
from service.infusates import infusates
from service.orders import DraftOrders, recognise
from tests.booking_support import PATIENT_ID, actions_on, appointment, pump_order
from tests.builders import (
    ICD,
    PUMP_IN_PLACE,
    RX,
    baclofen_request,
    bundle,
    catalog,
    concept,
    condition,
    device,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sign_with_chart
from tests.demo_support import packaged_sample
from tests.reference_support import OTHER, WRITTEN, WRITTEN_IDS, indications
from tests.support import FHIR_SERVER, assertion_of

# the fullUrl a draft's entry is sent with (None: none); an http(s) one names the server it is held on
FULL_URLS = ["urn:uuid:5f1c2a4e-0b7d-4a57-9d3e-2c8f1b0a9e11", None, f"{FHIR_SERVER}/MedicationRequest/mr1"]
FULL_URL_IDS = ["urn:uuid fullUrl", "no fullUrl", "fullUrl on the call's server"]


def drafts_of(*resources: dict[str, Any], server: str | None = FHIR_SERVER) -> DraftOrders:
    """The call's drafts (entries with `urn:uuid:` fullUrls, as the samples send), on `server`."""
    return DraftOrders(bundle(*resources), server)


@pytest.mark.parametrize("full_url", FULL_URLS, ids=FULL_URL_IDS)
@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_a_draft_is_named_only_by_a_reference_to_the_server_it_is_held_on(
    written: str, names: bool, full_url: str | None
) -> None:
    """The fix-m reproduction (m2_draft_orders_other_server.py): its `urn:uuid:` case failed."""
    drug = {"resourceType": "MedicationRequest", "id": "mr1", "status": "draft"}
    entry = {"resource": drug} if full_url is None else {"fullUrl": full_url, "resource": drug}
    drafts = DraftOrders({"entry": [entry]}, FHIR_SERVER)
    assert (drafts.get(written.format("MedicationRequest/mr1")) is drug) is names
    if full_url is not None:
        assert drafts.get(full_url) is drug  # its fullUrl, however written, always names it


def test_with_no_server_known_any_servers_url_names_the_draft_as_before() -> None:
    """A prefetch-only call names no FHIR server: every reference is the call's (`_same_server`)."""
    drug = {"resourceType": "MedicationRequest", "id": "mr1", "status": "draft"}
    assert drafts_of(drug, server=None).get(f"{OTHER}/MedicationRequest/mr1") is drug


def cancer_and_order(written: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A drafted breast cancer Condition and a 62362 whose reasonReference names it as `written`."""
    cancer = condition(ICD, "C50.911", "2025-01-01", "Malignant neoplasm of right female breast")
    order = service_request("62362")
    order["reasonReference"] = [{"reference": written.format(f"Condition/{cancer['id']}")}]
    return cancer, order


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_orders_reason_is_the_drafted_condition_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    cancer, order = cancer_and_order(written)
    pump = recognise(order, drafts_of(order, cancer), catalog().order_codes)
    assert pump is not None and pump.reasons == ((cancer,) if names else ())


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_through_the_app_the_drafted_reason_tells_the_indication_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    """The pipeline builds the call's drafts with its FHIR server: the drafted breast cancer makes it
    cancer pain; another server's Condition of that id says nothing here, and the problem list makes
    it non-malignant pain (as for the chart's Condition, test_other_servers_references.py)."""
    cancer, order = cancer_and_order(written)
    call = sign_request(order, infusate_request(), cancer, coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart(meeting_chart(), body=call)
    assert indications(response) == {"cancer-pain" if names else "non-malignant-pain"}


def refill_naming_baclofen(written: str, code: str = "95990") -> tuple[dict[str, Any], dict[str, Any]]:
    """A drafted baclofen order with no route and a refill whose reasonReference names it as `written`."""
    named = baclofen_request(status="draft")
    del named["dosageInstruction"]
    order = service_request(code)
    order["reasonReference"] = [{"reference": written.format(f"MedicationRequest/{named['id']}")}]
    return named, order


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_drafted_drug_order_a_refill_names_is_the_pumps_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    named, order = refill_naming_baclofen(written)
    drafts = drafts_of(order, named)
    pump = [recognise(order, drafts, catalog().order_codes)]
    found = infusates(drafts, catalog().terminology, pump, server=FHIR_SERVER).found  # type: ignore[arg-type]
    assert [{c.code for c in drug.codes} for drug in found] == ([{"1292"}] if names else [])


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_through_the_app_the_drafted_drug_a_refill_names_tells_the_indication_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    """Named, the baclofen is the pump's (contract §2, `reasonReference`): spasticity. Another server's
    drug order of that id is not this draft; the draft, given by no route, is not the pump's, so the
    chart (a pump in place, no drug of its own) and the problem list tell it: non-malignant pain."""
    named, order = refill_naming_baclofen(written)
    call = sign_request(order, named, coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=call)
    assert indications(response) == {"spasticity" if names else "non-malignant-pain"}


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_a_drafted_drugs_medication_is_the_drafted_one_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    baclofen = {"resourceType": "Medication", "id": "bac", "code": concept(RX, "1292", "baclofen")}
    drug = infusate_request(status="draft")
    del drug["medicationCodeableConcept"]
    drug["medicationReference"] = {"reference": written.format("Medication/bac")}
    order = service_request("62350")
    drafts = drafts_of(order, drug, baclofen)
    pump = [recognise(order, drafts, catalog().order_codes)]
    found = infusates(drafts, catalog().terminology, pump, server=FHIR_SERVER).found  # type: ignore[arg-type]
    assert [{c.code for c in d.codes} for d in found] == [{"1292"} if names else set()]


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_a_hardware_orders_drafted_device_codes_it_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    """An E0786 order coded through its Device (`codeReference`): another server's Device of the draft's
    id is read by the call's Device reader (here it cannot be had), not taken for the draft."""
    e0786 = device(
        {"coding": [{"system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "E0786"}]}
    )
    hardware = {
        "resourceType": "DeviceRequest",
        "id": "dr-e0786",
        "status": "draft",
        "intent": "order",
        "codeReference": {"reference": written.format(f"Device/{e0786['id']}")},
    }
    asked: list[str] = []

    def fetch_device(reference: str) -> None:
        asked.append(reference)

    pump = recognise(hardware, drafts_of(hardware, e0786), catalog().order_codes, fetch_device)
    assert (pump is not None and pump.code.code == "E0786") is names
    assert asked == ([] if names else [written.format(f"Device/{e0786['id']}")])


def booking(written: str) -> dict[str, Any]:
    """An appointment-book's Bundle: an Appointment based on the order `written` names, and that order
    (a `urn:uuid:` fullUrl)."""
    order = pump_order()
    booked = appointment(written.format(f"ServiceRequest/{order['id']}"))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": booked},
            {"fullUrl": "urn:uuid:0e7c1d2a-8b4f-4c39-a6d5-3f2e9b1c7a48", "resource": copy.deepcopy(order)},
        ],
    }


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_a_booked_appointment_is_based_on_the_booked_order_only_on_the_calls_server(
    written: str, names: bool
) -> None:
    """Another server's ServiceRequest of the booked order's id is another order: not read here (the
    call's server is not asked for it), said unread as held on another server; and the Appointment's
    coverage information is not that order's (cards/response.py and the pipeline's `based_on`)."""
    appointments = booking(written)
    orders, unread = appointment_orders(appointments, PATIENT_ID, None, FHIR_SERVER)
    assert [e["resource"]["id"] for e in orders["entry"]] == (["sr-implant"] if names else [])
    assert [u.reason for u in unread] == (
        [] if names else ["it is held on another FHIR server than the one this call names"]
    )
    booked = appointments["entry"][0]["resource"]
    assert based_on(booked, DraftOrders(appointments, FHIR_SERVER), FHIR_SERVER) == (
        ["ServiceRequest/sr-implant"] if names else []
    )


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_through_the_app_a_booked_appointment_carries_the_booked_orders_determination_only_on_its_server(
    written: str, names: bool
) -> None:
    """The sample booking, its ServiceRequest's entry sent with a `urn:uuid:` fullUrl and the call
    pointed at the FHIR server: the Appointment carries the order's assertion only when it is based on
    that order; based on another server's ServiceRequest of that id, neither is judged."""
    body = packaged_sample("appointment-book-62362-demo-meets")
    booked, order = (e["resource"] for e in body["context"]["appointments"]["entry"])
    body["context"]["appointments"]["entry"][1]["fullUrl"] = "urn:uuid:0e7c1d2a-8b4f-4c39-a6d5-3f2e9b1c7a48"
    booked["basedOn"] = [{"reference": written.format(f"ServiceRequest/{order['id']}")}]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [on_appointment] = actions_on(answer, "Appointment")
    assert (assertion_of(on_appointment)["covered"] == "covered") is names
    assert bool(actions_on(answer, "ServiceRequest")) is names


WHAT_IF = {"url": "http://example.org/fhir/StructureDefinition/what-if", "valueBoolean": True}


@pytest.mark.parametrize("modified", [False, True], ids=["plain", "carrying a modifier extension"])
def test_an_appointment_based_on_another_servers_order_of_the_booked_orders_id_is_not_booking_it(
    modified: bool,
) -> None:
    """The sample booking (its order's entry with a `urn:uuid:` fullUrl) and a second Appointment based
    on another server's ServiceRequest of the booked order's id. Before, the second carried the booked
    order's assertion (cards/response.py), and, carrying a modifier extension, held the booked order
    out as not understood (pipeline `_bookings`). It is said not checked for what it is itself."""
    body = packaged_sample("appointment-book-62362-demo-meets")
    booked, order = (e["resource"] for e in body["context"]["appointments"]["entry"])
    body["context"]["appointments"]["entry"][1]["fullUrl"] = "urn:uuid:0e7c1d2a-8b4f-4c39-a6d5-3f2e9b1c7a48"
    other = {**copy.deepcopy(booked), "id": "apt-other"}
    other["basedOn"] = [{"reference": f"{OTHER}/ServiceRequest/{order['id']}"}]
    if modified:
        other["modifierExtension"] = [copy.deepcopy(WHAT_IF)]
    body["context"]["appointments"]["entry"].append({"resource": other})
    _, answer = sign_with_chart(meeting_chart(), body=body)
    on = {a["resource"]["id"]: assertion_of(a) for a in actions_on(answer, "Appointment")}
    assert on[booked["id"]]["covered"] == "covered"
    assert on["apt-other"]["covered"] == "conditional"
    why = "a modifier extension" if modified else "held on another FHIR server"
    assert why in on["apt-other"]["reason"]["text"]
    assert next(c["summary"] for c in answer["cards"]) == "GEHA: 62362 meets all 14 coverage criteria"
