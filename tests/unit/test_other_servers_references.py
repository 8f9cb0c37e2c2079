"""A reference written as another FHIR server's URL names none of the chart's resources, whatever its id
(service/references.py `local_reference`, `chart_lookup`, given the call's FHIR server): the record, the
pump's drug and the order's reason read only the call's server's resources, as routing reads a payor
(c2e098c). Before, `https://other.example/fhir/Condition/1` was read as the chart's Condition/1."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.infusates import infusates
from service.orders import DraftOrders, recognise
from service.record import build_record
from tests.builders import (
    ICD,
    PUMP_IN_PLACE,
    RX,
    bundle,
    cards_of,
    catalog,
    concept,
    condition,
    infusate_request,
    meeting_chart,
    payer_coverage,
    procedure,
    searchset,
    service_request,
    sign_request,
)
from tests.calls import sample, sign_with_chart
from tests.reference_support import WRITTEN, WRITTEN_IDS, indications
from tests.support import FHIR_SERVER

WHAT_IF = {"url": "http://example.org/fhir/StructureDefinition/what-if", "valueBoolean": True}


def record(*resources: dict[str, Any]) -> Any:
    """The record of `resources`, read from the call's FHIR server (FHIR_SERVER)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return build_record("p1", by_type, catalog().terminology, server=FHIR_SERVER)


def ibuprofen(modified: bool = False) -> dict[str, Any]:
    medication = {"resourceType": "Medication", "id": "ibu", "code": concept(RX, "5640", "ibuprofen")}
    return {**medication, "modifierExtension": [copy.deepcopy(WHAT_IF)]} if modified else medication


def stopped_by(written: str) -> dict[str, Any]:
    """A stopped drug order whose drug is the Medication `written` names."""
    return {
        "resourceType": "MedicationRequest",
        "id": "mr-nsaid",
        "status": "stopped",
        "intent": "order",
        "authoredOn": "2025-01-01",
        "statusReason": {"text": "ineffective"},
        "medicationReference": {"reference": written.format("Medication/ibu")},
    }


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_a_drug_records_medication_is_the_charts_only_when_the_reference_names_the_calls_server(
    written: str, names: bool
) -> None:
    [fact] = record(stopped_by(written), ibuprofen()).medications
    assert [c.code for c in fact.codes] == (["5640"] if names else [])


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_another_servers_medication_of_the_same_id_does_not_leave_a_drug_record_out(
    written: str, names: bool
) -> None:
    """The chart's Medication/ibu carries a modifier extension: the drug record read through it is left
    out (service/modifiers.py), one naming another server's Medication/ibu is not read through it."""
    found = record(stopped_by(written), ibuprofen(modified=True))
    assert ("MedicationRequest" in found.unavailable) is names
    assert len(found.medications) == (0 if names else 1)


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_order_a_procedure_was_done_for_and_the_device_it_put_in_are_the_charts_only_on_its_server(
    written: str, names: bool
) -> None:
    done = procedure("62362", "2026-11-01T08:00:00Z")
    done["basedOn"] = [{"reference": written.format("ServiceRequest/sr-1")}]
    done["focalDevice"] = [{"manipulated": {"reference": written.format("Device/pump")}}]
    [fact] = record(done).procedures
    assert fact.based_on == (("ServiceRequest/sr-1",) if names else ())
    assert fact.devices == (("Device/pump",) if names else ())


def pump_drugs(chart: dict[str, list[dict[str, Any]]], *drafted: dict[str, Any]) -> list[set[str]]:
    """The RxNorm codes of each drug `infusates` finds for a 62350 (and `drafted`), read from FHIR_SERVER."""
    order = service_request("62350")
    drafts = DraftOrders(bundle(order, *drafted))
    pump = [recognise(order, drafts, catalog().order_codes)]
    terminology = catalog().terminology
    found = infusates(drafts, terminology, pump, chart, server=FHIR_SERVER).found  # type: ignore[arg-type]
    return [{c.code for c in drug.codes} for drug in found]


def by_medication(written: str, status: str) -> dict[str, Any]:
    """An intrathecal drug order whose drug is the Medication `written` names."""
    drug = infusate_request(status=status)
    del drug["medicationCodeableConcept"]
    drug["medicationReference"] = {"reference": written.format("Medication/bac")}
    return drug


BACLOFEN = {"resourceType": "Medication", "id": "bac", "code": concept(RX, "1292", "baclofen")}


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_pumps_drug_is_read_through_the_charts_medication_only_when_it_names_the_calls_server(
    written: str, names: bool
) -> None:
    drafted = pump_drugs({"Medication": [BACLOFEN]}, by_medication(written, "draft"))
    in_the_pump = pump_drugs(
        {"MedicationRequest": [by_medication(written, "active")], "Medication": [BACLOFEN]}
    )
    assert drafted == in_the_pump == [{"1292"} if names else set()]


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_orders_reason_is_the_charts_condition_only_when_it_names_the_calls_server(
    written: str, names: bool
) -> None:
    """The order's reasonReference tells the indication (contract §2): the chart's breast cancer makes it
    cancer pain; another server's Condition of that id says nothing here, and the problem list (a
    coded cause of pain beside the cancer, AMB-11) makes it non-malignant pain."""
    cancer = condition(ICD, "C50.911", "2025-01-01", "Malignant neoplasm of right female breast")
    order = service_request("62362")
    order["reasonReference"] = [{"reference": written.format(f"Condition/{cancer['id']}")}]
    call = sign_request(order, infusate_request(), coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart([*meeting_chart(), cancer], body=call)
    assert indications(response) == {"cancer-pain" if names else "non-malignant-pain"}


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_the_charts_pump_drug_tells_the_indication_only_through_the_calls_servers_medication(
    written: str, names: bool
) -> None:
    """The call's pipeline reads the chart's pump drug with its server: a catheter ordered beside a pump
    in place whose drug order names Medication/bac (baclofen on this server, prefetched with the drug
    orders as `_include` brings it) is for spasticity only when it names this server's."""
    call = sign_request(service_request("62350"), coverage=payer_coverage("kpwa"))
    drugs = [by_medication(written, "active"), BACLOFEN]
    call["prefetch"]["medicationRequests"] = searchset(drugs)
    _, response = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=call)
    assert indications(response) == {"spasticity" if names else "non-malignant-pain"}


@pytest.mark.parametrize(("written", "names"), WRITTEN, ids=WRITTEN_IDS)
def test_an_implant_done_for_another_servers_order_of_the_same_id_is_a_pump_in_place(
    written: str, names: bool
) -> None:
    """encounter-discharge: the order's own Procedure is not a pump already in place
    (PatientRecord.before); a 62362 done for another server's ServiceRequest of the order's id is."""
    order = service_request("62362")
    order["status"] = "active"
    done = procedure("62362", "2026-12-04T10:00:00Z")
    done["basedOn"] = [{"reference": written.format(f"ServiceRequest/{order['id']}")}]
    _, answer = sign_with_chart(
        [*meeting_chart(), order, done], body=sample("encounter-discharge-demo-meets")
    )
    [guideline] = cards_of(answer["cards"], "guideline")
    kind = "a permanent pump implant" if names else "a pump replacement"
    assert f"criteria for {kind}" in guideline["detail"], guideline["detail"]
