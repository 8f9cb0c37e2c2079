"""Unit tests of `service.orders`: recognising intrathecal pump orders in `context.draftOrders`.

Pure dict-in / value-out tests against the real order-code table from `policies/order-codes.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import policies
from service.catalog import load_catalog
from service.codes import CPT, HCPCS, RXNORM, Code
from service.infusates import PUMP_DRUG, Infusate, infusates
from service.orders import BILLING_OPTIONS_URL, DraftOrders, OrderCodeTable, PumpOrder, recognise
from service.record import build_record
from tests.support import CountedItems

CPT_SYSTEMS = ["http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"]
HCPCS_SYSTEMS = [
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
    "urn:oid:2.16.840.1.113883.6.285",
]
CPT_URL = CPT_SYSTEMS[0]
HCPCS_URL = HCPCS_SYSTEMS[0]
SNOMED_URL = "http://snomed.info/sct"
RXNORM_URL = "http://www.nlm.nih.gov/research/umls/rxnorm"
SYSTEM_URL = {"cpt": CPT_URL, "hcpcs": HCPCS_URL}
ORDER_CODES_FILE = Path(policies.directory()) / "order-codes.yaml"


# --------------------------------------------------------------------------- builders


@pytest.fixture(scope="module")
def table() -> OrderCodeTable:
    return load_catalog().order_codes


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    result = {"system": system, "code": code}
    if display is not None:
        result["display"] = display
    return result


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"coding": list(codings)}
    if text is not None:
        result["text"] = text
    return result


def billing_extension(*codings: dict[str, Any]) -> dict[str, Any]:
    return {"url": BILLING_OPTIONS_URL, "valueCodeableConcept": concept(*codings)}


def service_request(code: dict[str, Any] | None, rid: str = "sr1") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    if code is not None:
        resource["code"] = code
    return resource


def device_request(
    code: dict[str, Any] | None = None,
    reference: str | None = None,
    rid: str = "dr1",
    contained: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DeviceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    if code is not None:
        resource["codeCodeableConcept"] = code
    if reference is not None:
        resource["codeReference"] = {"reference": reference}
    if contained is not None:
        resource["contained"] = contained
    return resource


def device(did: str, type_concept: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Device", "id": did, "type": type_concept}


def medication_request(
    rid: str = "mr1",
    medication: dict[str, Any] | None = None,
    route: dict[str, Any] | None = None,
    medication_reference: str | None = None,
    contained: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    if medication is not None:
        resource["medicationCodeableConcept"] = medication
    if medication_reference is not None:
        resource["medicationReference"] = {"reference": medication_reference}
    if contained is not None:
        resource["contained"] = contained
    if route is not None:
        resource["dosageInstruction"] = [{"text": "per pump", "route": route}]
    return resource


def bundle(*resources: dict[str, Any], full_urls: dict[str, str] | None = None) -> dict[str, Any]:
    """A draftOrders Bundle; `full_urls` maps `Type/id` to the entry's fullUrl (default urn:uuid:<id>)."""
    full_urls = full_urls or {}
    entries = []
    for r in resources:
        ref = f"{r['resourceType']}/{r['id']}"
        entries.append({"fullUrl": full_urls.get(ref, f"urn:uuid:{r['id']}"), "resource": r})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def recognise_alone(resource: dict[str, Any], table: OrderCodeTable) -> PumpOrder | None:
    return recognise(resource, DraftOrders(bundle(resource)), table)


def pump_code(order: PumpOrder | None) -> Code:
    assert order is not None
    return order.code


E0783 = coding(HCPCS_URL, "E0783", "Infusion pump system, implantable, programmable")
CPT_62362 = coding(CPT_URL, "62362", "Implantation of programmable pump")
SNOMED_PUMP = coding(SNOMED_URL, "427753009", "Insertion of intrathecal infusion pump")


# --------------------------------------------------------------------------- code-system aliases


@pytest.mark.parametrize("system", CPT_SYSTEMS)
def test_cpt_recognised_under_every_alias(table: OrderCodeTable, system: str) -> None:
    order = recognise_alone(service_request(concept(coding(system, "62362"))), table)
    assert order is not None
    assert order.code == Code(CPT, "62362", None)
    assert order.kind == "permanent-implant"
    assert order.reference == "ServiceRequest/sr1"
    assert order.resource_type == "ServiceRequest"


@pytest.mark.parametrize("system", HCPCS_SYSTEMS)
@pytest.mark.parametrize("code", ["E0783", "e0783", " E0783 "])
def test_hcpcs_recognised_under_every_alias_and_case(table: OrderCodeTable, system: str, code: str) -> None:
    order = recognise_alone(device_request(concept(coding(system, code))), table)
    assert order is not None
    assert order.code == Code(HCPCS, "E0783", None)
    assert order.kind == "permanent-implant"
    assert order.reference == "DeviceRequest/dr1"


@pytest.mark.parametrize("system", HCPCS_SYSTEMS)
def test_hcpcs_in_service_request_code_recognised(table: OrderCodeTable, system: str) -> None:
    order = recognise_alone(service_request(concept(coding(system, "e0782"))), table)
    assert pump_code(order) == Code(HCPCS, "E0782", None)


def test_system_with_surrounding_whitespace_still_recognised(table: OrderCodeTable) -> None:
    order = recognise_alone(service_request(concept(coding(f" {CPT_URL} ", "62362"))), table)
    assert pump_code(order).system == CPT


# --------------------------------------------------------------------------- code locations


def test_service_request_code(table: OrderCodeTable) -> None:
    order = recognise_alone(service_request(concept(CPT_62362)), table)
    assert order is not None
    assert order.kind == "permanent-implant"
    assert order.label == "CPT 62362 Implantation of programmable pump"


def test_service_request_code_text_used_for_label(table: OrderCodeTable) -> None:
    order = recognise_alone(service_request(concept(CPT_62362, text="Implant IT pump")), table)
    assert order is not None
    assert order.label == "CPT 62362 Implant IT pump"


def test_later_coding_in_same_concept_is_found(table: OrderCodeTable) -> None:
    order = recognise_alone(service_request(concept(SNOMED_PUMP, coding(CPT_URL, "99213"), CPT_62362)), table)
    assert pump_code(order) == Code(CPT, "62362", "Implantation of programmable pump")


def test_device_request_code_codeable_concept(table: OrderCodeTable) -> None:
    order = recognise_alone(device_request(concept(E0783)), table)
    assert order is not None
    assert order.kind == "permanent-implant"
    assert order.resource_type == "DeviceRequest"
    assert order.code.code == "E0783"


@pytest.mark.parametrize(
    ("reference", "full_url"),
    [
        pytest.param("Device/dev1", "urn:uuid:1f0c9a70-3a3e-4c41-9e43-7a8d3c7b5b01", id="by-type-id"),
        pytest.param(
            "urn:uuid:1f0c9a70-3a3e-4c41-9e43-7a8d3c7b5b01",
            "urn:uuid:1f0c9a70-3a3e-4c41-9e43-7a8d3c7b5b01",
            id="by-urn-fullUrl",
        ),
        pytest.param(
            "https://ehr.example.org/fhir/Device/dev1",
            "https://ehr.example.org/fhir/Device/dev1",
            id="by-absolute-fullUrl",
        ),
    ],
)
def test_device_request_code_reference_to_bundle_device(
    table: OrderCodeTable, reference: str, full_url: str
) -> None:
    dev = device("dev1", concept(E0783))
    request = device_request(reference=reference)
    drafts = DraftOrders(bundle(request, dev, full_urls={"Device/dev1": full_url}))
    calls: list[str] = []

    def fetch(ref: str) -> dict[str, Any] | None:
        calls.append(ref)
        return None

    order = recognise(request, drafts, table, fetch)
    assert order is not None
    assert order.code == Code(HCPCS, "E0783", E0783["display"])
    assert order.kind == "permanent-implant"
    assert order.reference == "DeviceRequest/dr1"
    assert calls == []


def test_device_request_code_reference_to_contained_device(table: OrderCodeTable) -> None:
    contained = [device("dev1", concept(coding(HCPCS_URL, "E0786")))]
    request = device_request(reference="#dev1", contained=contained)
    calls: list[str] = []

    def fetch(ref: str) -> dict[str, Any] | None:
        calls.append(ref)
        return None

    order = recognise(request, DraftOrders(bundle(request)), table, fetch)
    assert order is not None
    assert order.code == Code(HCPCS, "E0786", None)
    assert order.kind == "replacement"
    assert calls == []


def test_contained_reference_to_missing_device_is_not_pump(table: OrderCodeTable) -> None:
    request = device_request(reference="#nope", contained=[device("dev1", concept(E0783))])
    assert recognise(request, DraftOrders(bundle(request)), table) is None


def test_device_request_code_reference_fetched_through_callback(table: OrderCodeTable) -> None:
    request = device_request(reference="Device/remote1")
    calls: list[str] = []

    def fetch(ref: str) -> dict[str, Any] | None:
        calls.append(ref)
        return device("remote1", concept(coding(HCPCS_URL, "C1772")))

    order = recognise(request, DraftOrders(bundle(request)), table, fetch)
    assert calls == ["Device/remote1"]
    assert order is not None
    assert order.code == Code(HCPCS, "C1772", None)
    assert order.kind == "permanent-implant"


def test_fetched_resource_that_is_not_a_device_is_ignored(table: OrderCodeTable) -> None:
    request = device_request(reference="Device/remote1")

    def fetch(ref: str) -> dict[str, Any] | None:
        return {"resourceType": "Procedure", "id": "remote1", "type": concept(E0783)}

    assert recognise(request, DraftOrders(bundle(request)), table, fetch) is None


def test_fetch_returning_none_means_not_a_pump(table: OrderCodeTable) -> None:
    request = device_request(reference="Device/remote1")
    calls: list[str] = []

    def fetch(ref: str) -> dict[str, Any] | None:
        calls.append(ref)
        return None

    assert recognise(request, DraftOrders(bundle(request)), table, fetch) is None
    assert calls == ["Device/remote1"]


def test_code_reference_without_fetcher_and_not_local_is_not_pump(table: OrderCodeTable) -> None:
    request = device_request(reference="Device/remote1")
    assert recognise(request, DraftOrders(bundle(request)), table) is None


def test_billing_extension_on_service_request_code_with_snomed_only(table: OrderCodeTable) -> None:
    code = concept(SNOMED_PUMP)
    code["extension"] = [billing_extension(coding(CPT_URL, "62362", "Implant programmable pump"))]
    order = recognise_alone(service_request(code), table)
    assert order is not None
    assert order.code == Code(CPT, "62362", "Implant programmable pump")
    assert order.kind == "permanent-implant"


def test_billing_extension_on_referenced_device(table: OrderCodeTable) -> None:
    dev = device("dev1", concept(coding(SNOMED_URL, "360121008", "Infusion pump")))
    dev["extension"] = [billing_extension(coding(HCPCS_SYSTEMS[3], "E0782"))]
    request = device_request(reference="Device/dev1")
    order = recognise(request, DraftOrders(bundle(request, dev)), table)
    assert order is not None
    assert order.code == Code(HCPCS, "E0782", None)
    assert order.kind == "permanent-implant"


def test_billing_extension_on_device_type(table: OrderCodeTable) -> None:
    device_type = concept(coding(SNOMED_URL, "360121008", "Infusion pump"))
    device_type["extension"] = [billing_extension(coding(HCPCS_URL, "C1891"))]
    request = device_request(reference="#dev1", contained=[device("dev1", device_type)])
    order = recognise(request, DraftOrders(bundle(request)), table)
    assert pump_code(order) == Code(HCPCS, "C1891", None)


def test_snomed_only_without_billing_extension_is_not_pump(table: OrderCodeTable) -> None:
    assert recognise_alone(service_request(concept(SNOMED_PUMP)), table) is None


def test_billing_extension_on_device_request_code(table: OrderCodeTable) -> None:
    code = concept(coding(SNOMED_URL, "360121008", "Infusion pump"))
    code["extension"] = [billing_extension(coding(HCPCS_SYSTEMS[2], "e0785"))]
    order = recognise_alone(device_request(code), table)
    assert order is not None
    assert order.code == Code(HCPCS, "E0785", None)
    assert order.kind == "replacement"


def test_billing_extension_with_other_url_is_ignored(table: OrderCodeTable) -> None:
    code = concept(SNOMED_PUMP)
    code["extension"] = [
        {"url": "http://example.org/other-extension", "valueCodeableConcept": concept(CPT_62362)}
    ]
    assert recognise_alone(service_request(code), table) is None


# --------------------------------------------------------------------------- request kinds from the YAML


def _order_code_cases() -> list[Any]:
    raw = yaml.safe_load(ORDER_CODES_FILE.read_text(encoding="utf-8"))
    cases = []
    for kind, systems in raw["kinds"].items():
        for system, codes in systems.items():
            for code in codes:
                cases.append(pytest.param(system, str(code), kind, id=f"{kind}-{system}-{code}"))
    return cases


ORDER_CODE_CASES = _order_code_cases()


def test_order_code_file_lists_the_contract_and_reference_codes() -> None:
    """Contract §2 codes, plus the criteria-and-codes.md §4.2 supply and drug codes."""
    codes = {case.values[1] for case in ORDER_CODE_CASES}
    expected = {f"{n}" for n in range(62320, 62328)} | {
        "62350",
        "62351",
        "62355",
        "62360",
        "62361",
        "62362",
        "62365",
        "62367",
        "62368",
        "62369",
        "62370",
        "95990",
        "95991",
    }
    expected |= {"E0782", "E0783", "E0785", "E0786", "C1772", "C1891", "C2626"}
    expected |= {"J0476", "A4220", "S9328", "J0475", "J2274", "J2278"}
    assert codes == expected


@pytest.mark.parametrize(("system", "code", "kind"), ORDER_CODE_CASES)
def test_kind_for_every_listed_code(table: OrderCodeTable, system: str, code: str, kind: str) -> None:
    url = SYSTEM_URL[system]
    resource = (
        service_request(concept(coding(url, code)))
        if system == "cpt"
        else device_request(concept(coding(url, code)))
    )
    order = recognise_alone(resource, table)
    assert order is not None
    assert order.kind == kind
    assert order.code == Code(system, code.upper(), None)


@pytest.mark.parametrize(("system", "code", "kind"), ORDER_CODE_CASES)
def test_table_kind_of_matches_file(table: OrderCodeTable, system: str, code: str, kind: str) -> None:
    assert table.kind_of(Code(system, code.upper())) == kind


# --------------------------------------------------------------------------- not pump orders


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(service_request(concept(coding(CPT_URL, "99213"))), id="cpt-99213"),
        pytest.param(service_request(concept(coding(CPT_URL, "62328"))), id="cpt-62328-lumbar-puncture"),
        pytest.param(service_request(concept(coding(CPT_URL, "62329"))), id="cpt-62329"),
        pytest.param(service_request(concept(coding(CPT_URL, "62371"))), id="cpt-62371"),
        pytest.param(service_request(concept(SNOMED_PUMP)), id="snomed-only"),
        pytest.param(
            service_request(concept(coding("http://example.org/local-codes", "62362"))),
            id="unknown-system-62362",
        ),
        pytest.param(service_request(concept(coding("", "62362"))), id="empty-system-62362"),
        pytest.param(service_request(concept({"code": "62362"})), id="no-system-62362"),
        pytest.param(service_request(concept(coding(HCPCS_URL, "62362"))), id="cpt-code-under-hcpcs"),
        pytest.param(service_request(concept(coding(CPT_URL, "E0783"))), id="hcpcs-code-under-cpt"),
        pytest.param(service_request(None), id="no-code"),
        pytest.param(device_request(), id="device-request-no-code"),
        pytest.param(
            medication_request(medication=concept(coding(CPT_URL, "62362"))), id="medication-request-with-cpt"
        ),
        pytest.param({"resourceType": "Procedure", "id": "p1", "code": concept(CPT_62362)}, id="procedure"),
    ],
)
def test_not_a_pump_order(table: OrderCodeTable, resource: dict[str, Any]) -> None:
    assert recognise_alone(resource, table) is None


def test_medication_request_with_billing_extension_is_not_pump(table: OrderCodeTable) -> None:
    resource = medication_request(medication=concept(coding(RXNORM_URL, "7052", "morphine")))
    resource["extension"] = [billing_extension(CPT_62362)]
    assert recognise_alone(resource, table) is None


def test_malformed_codings_are_skipped(table: OrderCodeTable) -> None:
    code = {"coding": ["62362", None, {"system": CPT_URL}, {"system": CPT_URL, "code": 62362}, CPT_62362]}
    assert pump_code(recognise_alone(service_request(code), table)).code == "62362"


# --------------------------------------------------------------------------- DraftOrders.in_scope


def _two_pump_drafts() -> tuple[DraftOrders, dict[str, Any], dict[str, Any], dict[str, Any]]:
    visit = service_request(concept(coding(CPT_URL, "99213")), rid="sr-visit")
    implant = service_request(concept(CPT_62362), rid="sr-implant")
    pump = device_request(concept(E0783), rid="dr-pump")
    return DraftOrders(bundle(visit, implant, pump)), visit, implant, pump


def test_in_scope_order_select_returns_only_the_selection(table: OrderCodeTable) -> None:
    drafts, visit, _implant, pump = _two_pump_drafts()
    scoped = drafts.in_scope(["ServiceRequest/sr-visit"])
    assert scoped == [visit]
    assert [recognise(r, drafts, table) for r in scoped] == [None]
    assert recognise(pump, drafts, table) is not None  # the unselected pump order is a pump order


def test_in_scope_order_select_selected_pump(table: OrderCodeTable) -> None:
    drafts, _visit, _implant, pump = _two_pump_drafts()
    scoped = drafts.in_scope(("DeviceRequest/dr-pump",))
    assert scoped == [pump]
    orders = [recognise(r, drafts, table) for r in scoped]
    assert [o.reference for o in orders if o is not None] == ["DeviceRequest/dr-pump"]


def test_in_scope_order_sign_returns_all() -> None:
    drafts, visit, implant, pump = _two_pump_drafts()
    assert drafts.in_scope(None) == [visit, implant, pump]


def test_an_appointment_is_an_order_only_of_a_booking(table: OrderCodeTable) -> None:
    """appointment-book: an Appointment based on no order codes what is booked (CRD 2.2
    profile-appointment-no-order, `serviceType`), and is recognised as that order; among the draft
    orders of order-sign it is none (CRD's request Bundle holds no Appointment)."""
    booked = {
        "resourceType": "Appointment",
        "id": "apt",
        "status": "proposed",
        "serviceType": [concept(CPT_62362)],
    }
    drafts = DraftOrders(bundle(booked))
    assert drafts.in_scope(None) == []
    assert drafts.in_scope(None, appointments=True) == [booked]
    order = recognise(booked, drafts, table)
    assert order is not None and (order.reference, order.code.code) == ("Appointment/apt", "62362")
    typed = {
        **booked,
        "serviceType": [concept(coding(SNOMED_URL, "394882004"))],
        "appointmentType": concept(CPT_62362),
    }
    assert recognise(typed, drafts, table) is not None
    assert recognise({**booked, "serviceType": [concept(coding(CPT_URL, "99213"))]}, drafts, table) is None


def test_in_scope_ignores_unknown_selection() -> None:
    drafts, _visit, implant, _pump = _two_pump_drafts()
    assert drafts.in_scope(["ServiceRequest/unknown", "ServiceRequest/sr-implant"]) == [implant]


def test_in_scope_by_full_url() -> None:
    drafts, _visit, implant, _pump = _two_pump_drafts()
    assert drafts.in_scope(["urn:uuid:sr-implant"]) == [implant]


def test_draft_orders_get_by_absolute_reference() -> None:
    drafts, _visit, implant, _pump = _two_pump_drafts()
    assert drafts.get("https://ehr.example.org/fhir/ServiceRequest/sr-implant") is implant
    assert drafts.get("ServiceRequest/missing") is None


# --------------------------------------------------------------------------- infusates


def infusates_of(
    drafts: DraftOrders, orders: list[PumpOrder] | tuple[()] = (), chart: dict[str, Any] | None = None
) -> list[Infusate]:
    """`infusates` with the shipped catalog's ingredients and routes."""
    return list(infusates(drafts, load_catalog().terminology, orders, chart).found)


MORPHINE = concept(coding(RXNORM_URL, "7052", "morphine"), text="morphine 25 MG/ML")
INTRATHECAL = concept(coding(SNOMED_URL, "72607000", "Intrathecal route"))
EPIDURAL = concept(coding(SNOMED_URL, "404820008", "Epidural route"))
INTRAVENOUS = concept(coding(SNOMED_URL, "47625008", "Intravenous route"))
ORAL = concept(coding(SNOMED_URL, "26643006", "Oral route"))


def _only_infusate(*resources: dict[str, Any]) -> Infusate:
    found = infusates_of(DraftOrders(bundle(*resources)))
    assert len(found) == 1
    return found[0]


def test_infusate_codes_and_text() -> None:
    medication = concept(
        coding(RXNORM_URL, "7052", "morphine"),
        coding(SNOMED_URL, "373529000", "Morphine"),
        coding(RXNORM_URL, "892625", "morphine sulfate 25 MG/ML"),
        text="morphine 25 MG/ML",
    )
    infusate = _only_infusate(
        medication_request(medication=medication, route=INTRATHECAL), service_request(concept(CPT_62362))
    )
    assert infusate.reference == "MedicationRequest/mr1"
    assert infusate.codes == (
        Code(RXNORM, "7052", "morphine"),
        Code(RXNORM, "892625", "morphine sulfate 25 MG/ML"),
    )
    assert infusate.text == "morphine 25 MG/ML | morphine | Morphine | morphine sulfate 25 MG/ML"
    assert infusate.intrathecal_route is True


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        pytest.param(INTRATHECAL, True, id="intrathecal-72607000"),
        pytest.param(EPIDURAL, True, id="epidural-404820008"),
    ],
)
def test_infusate_intrathecal_route(route: dict[str, Any] | None, expected: bool) -> None:
    infusate = _only_infusate(medication_request(medication=MORPHINE, route=route))
    assert infusate.intrathecal_route is expected


@pytest.mark.parametrize(
    "route",
    [
        pytest.param({"text": "Oral"}, id="route-text-only"),
        pytest.param(concept(coding(SNOMED_URL, "26643006", "Oral")), id="oral-coded"),
        pytest.param(
            concept(coding(SNOMED_URL, "26643006", "Oral"), text="Oral (not for intrathecal use)"),
            id="snomed-code-decides-over-words",
        ),
        pytest.param({"text": "Non-intrathecal"}, id="negated-words"),
        pytest.param(None, id="no-route"),
    ],
)
def test_a_draft_drug_without_a_neuraxial_route_is_not_the_pump_drug(
    route: dict[str, Any] | None,
) -> None:
    """Contract §2: the infusate is a draft MedicationRequest with route SNOMED 72607000 or 404820008.
    An oral oxycodone drafted beside a catheter revision is not the pump's drug: the chart's is."""
    oxycodone = concept(coding(RXNORM_URL, "7804", "oxycodone"), text="oxycodone 5 MG Oral Tablet")
    chart = {"MedicationRequest": [chart_request("it-morphine")]}
    found = infusates_of(
        *_pump_call(medication_request(rid="oral", medication=oxycodone, route=route)), chart
    )
    assert [i.reference for i in found] == ["MedicationRequest/it-morphine"]


@pytest.mark.parametrize(
    "route",
    [
        pytest.param({"text": "Intrathecal"}, id="typed-route"),
        pytest.param(
            concept(coding("urn:oid:1.2.840.114350.1.13.0.1.7.4.698288.330", "24", "Intrathecal")),
            id="an-ehrs-own-route-code",
        ),
        pytest.param(EPIDURAL, id="snomed-epidural"),
    ],
)
def test_a_draft_drug_given_intrathecally_in_any_words_is_the_pump_drug(route: dict[str, Any]) -> None:
    """Contract §2 names the SNOMED route codes; a route an EHR codes its own way, or types, but
    whose words say intrathecal or epidural is read the same way as a drug named only in words."""
    chart = {"MedicationRequest": [chart_request("it-morphine")]}
    found = infusates_of(
        *_pump_call(medication_request(rid="drafted", medication=MORPHINE, route=route)), chart
    )
    assert [(i.reference, i.intrathecal_route) for i in found] == [("MedicationRequest/drafted", True)]


@pytest.mark.parametrize(
    ("detail", "names_a_drug"),
    [
        pytest.param({"text": "Programmable pump, 40 mL reservoir"}, False, id="hardware-words"),
        pytest.param({"text": "Left lower quadrant pocket"}, False, id="pocket-site"),
        pytest.param({"text": "Morphine 25 mg/mL, 2 mg/day"}, True, id="a-known-drug-in-words"),
        pytest.param(concept(coding(RXNORM_URL, "999999", "a drug")), True, id="an-rxnorm-code"),
    ],
)
def test_an_order_detail_is_the_pump_drug_only_when_it_names_one(
    detail: dict[str, Any], names_a_drug: bool
) -> None:
    """Contract §2: `orderDetail` naming the drug. One that names the reservoir or the pocket orders no
    drug, so the chart's pump drug is still the infusate."""
    drafts, pumps = _pump_call(code="62362")
    pumps[0].resource["orderDetail"] = [detail]
    found = infusates_of(drafts, pumps, {"MedicationRequest": [chart_request("it-morphine")]})
    expected = f"{pumps[0].reference} orderDetail" if names_a_drug else "MedicationRequest/it-morphine"
    assert [i.reference for i in found] == [expected]


@pytest.mark.parametrize(
    "route",
    [
        pytest.param(INTRAVENOUS, id="intravenous"),
        pytest.param(concept(coding(SNOMED_URL, "26643006", "Oral")), id="oral"),
    ],
)
def test_a_drug_for_another_route_is_not_the_infusate(route: dict[str, Any]) -> None:
    assert infusates_of(DraftOrders(bundle(medication_request(medication=MORPHINE, route=route)))) == []


@pytest.mark.parametrize(
    ("route", "named"),
    [
        pytest.param(None, True, id="no-route"),
        pytest.param({"text": "Intrathecal"}, True, id="intrathecal-words"),
        pytest.param(INTRAVENOUS, False, id="intravenous"),
        pytest.param(ORAL, False, id="oral"),
    ],
)
def test_a_draft_drug_the_pump_order_names_could_be_the_pumps_as_a_charts_could(
    route: dict[str, Any] | None, named: bool
) -> None:
    """Contract §2: the pump order's `reasonReference` naming its drug. A drug order it names could be
    the pump's drug by one definition, whether the call or the chart holds it: given by no route it
    says, or by a neuraxial one; a route said and not neuraxial says it is another drug (session
    review s18 R-6, then held for the chart's only: a drafted intravenous morphine the order named was
    the pump's, a charted one not)."""
    drug = medication_request(rid="mr-named", medication=MORPHINE, route=route)
    order = service_request(concept(CPT_62362))
    order["reasonReference"] = [{"reference": "MedicationRequest/mr-named"}]
    drafts = DraftOrders(bundle(order, drug))
    pump = recognise(order, drafts, load_catalog().order_codes)
    assert pump is not None
    found = [i.reference for i in infusates_of(drafts, [pump])]
    assert found == (["MedicationRequest/mr-named"] if named else [])
    chart = {"MedicationRequest": [{**drug, "status": "active"}]}
    drafts, pumps = _pump_call(code="95990")
    pumps[0].resource["reasonReference"] = [{"reference": "MedicationRequest/mr-named"}]
    assert [i.reference for i in infusates_of(drafts, pumps, chart)] == found


def test_order_detail_naming_the_drug_is_an_infusate() -> None:
    order = service_request(concept(CPT_62362))
    order["orderDetail"] = [concept(coding(RXNORM_URL, "7052", "morphine"))]
    drafts = DraftOrders(bundle(order))
    pump = recognise(order, drafts, load_catalog().order_codes)
    assert pump is not None
    found = infusates_of(drafts, [pump])
    assert [(i.reference.endswith("orderDetail"), [c.code for c in i.codes]) for i in found] == [
        (True, ["7052"])
    ]


def test_infusate_route_in_second_dosage_instruction() -> None:
    resource = medication_request(medication=MORPHINE)
    resource["dosageInstruction"] = [{"route": INTRAVENOUS}, {"route": EPIDURAL}]
    assert _only_infusate(resource).intrathecal_route is True


def test_infusate_medication_reference_to_contained_medication() -> None:
    medication = {
        "resourceType": "Medication",
        "id": "med1",
        "code": concept(coding(RXNORM_URL, "1815", "baclofen"), text="baclofen 2000 MCG/ML"),
    }
    resource = medication_request(medication_reference="#med1", contained=[medication], route=INTRATHECAL)
    infusate = _only_infusate(resource)
    assert infusate.codes == (Code(RXNORM, "1815", "baclofen"),)
    assert infusate.text == "baclofen 2000 MCG/ML | baclofen"
    assert infusate.intrathecal_route is True


def test_infusate_medication_reference_to_bundle_medication() -> None:
    medication = {
        "resourceType": "Medication",
        "id": "med2",
        "code": concept(coding(RXNORM_URL, "68139", "ziconotide")),
    }
    infusates_found = infusates_of(
        DraftOrders(
            bundle(medication_request(medication_reference="Medication/med2", route=INTRATHECAL), medication)
        )
    )
    expected = [((Code(RXNORM, "68139", "ziconotide"),), "ziconotide")]
    assert [(i.codes, i.text) for i in infusates_found] == expected


def test_infusate_unresolvable_medication_reference() -> None:
    infusate = _only_infusate(medication_request(medication_reference="#missing", route=INTRATHECAL))
    assert infusate.codes == ()
    assert infusate.text == ""
    assert infusate.intrathecal_route is True


def test_infusates_one_per_medication_request_in_order() -> None:
    found = infusates_of(
        DraftOrders(
            bundle(
                medication_request(rid="mr-a", medication=MORPHINE, route=INTRATHECAL),
                service_request(concept(CPT_62362)),
                medication_request(
                    rid="mr-b", medication=concept(coding(RXNORM_URL, "1815", "baclofen")), route=INTRAVENOUS
                ),
            )
        )
    )
    assert [(i.reference, i.intrathecal_route) for i in found] == [("MedicationRequest/mr-a", True)]


def test_no_medication_requests_means_no_infusates() -> None:
    drafts = DraftOrders(bundle(service_request(concept(CPT_62362)), device_request(concept(E0783))))
    assert infusates_of(drafts) == []


def test_duplicate_selections_yield_the_order_once() -> None:
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62362"}]},
    }
    drafts = DraftOrders(
        {"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:sr1", "resource": order}]}
    )
    assert drafts.in_scope(["ServiceRequest/sr1", "ServiceRequest/sr1", "urn:uuid:sr1"]) == [order]


# --------------------------------------------------------------------------- the pump's drug from the chart


def chart_request(
    rid: str, status: str = "active", route: dict[str, Any] | None = INTRATHECAL, **drug: Any
) -> dict[str, Any]:
    """A MedicationRequest as the chart holds it (morphine unless `drug` names another medication)."""
    resource = medication_request(rid=rid, route=route, **(drug or {"medication": MORPHINE}))
    return {**resource, "status": status}


def _pump_call(*drafts_resources: dict[str, Any], code: str = "62350") -> tuple[DraftOrders, list[PumpOrder]]:
    order = service_request(concept(coding(CPT_URL, code)))
    drafts = DraftOrders(bundle(order, *drafts_resources))
    pump = recognise(order, drafts, load_catalog().order_codes)
    assert pump is not None
    return drafts, [pump]


@pytest.mark.parametrize("code", ["62350", "62355", "62369", "95990"])
def test_when_the_call_orders_no_drug_the_charts_active_neuraxial_one_is_the_infusate(code: str) -> None:
    chart = {
        "MedicationRequest": [
            chart_request("it-morphine"),
            chart_request("epidural", route=EPIDURAL),
            chart_request("stopped", status="stopped"),
            chart_request("completed", status="completed"),
            chart_request("oral", route=concept(coding(SNOMED_URL, "26643006", "Oral"))),
            chart_request("no-route", route=None),
            chart_request("text-route", route={"text": "intrathecal"}),
        ]
    }
    found = infusates_of(*_pump_call(code=code), chart)
    assert [(i.reference, i.intrathecal_route) for i in found] == [
        ("MedicationRequest/it-morphine", True),
        ("MedicationRequest/epidural", True),
        ("MedicationRequest/text-route", True),  # its route typed: still the intrathecal drug
    ]
    assert found[0].codes == (Code(RXNORM, "7052", "morphine"),)


def test_a_chart_drug_given_as_a_medication_reference_is_resolved_from_the_charts_medications() -> None:
    baclofen = concept(coding(RXNORM_URL, "1292", "baclofen"))
    medication = {"resourceType": "Medication", "id": "bac", "code": baclofen}
    chart_drug = chart_request("mr", medication_reference="Medication/bac")
    found = infusates_of(*_pump_call(), {"MedicationRequest": [chart_drug], "Medication": [medication]})
    assert [(i.codes, i.text) for i in found] == [((Code(RXNORM, "1292", "baclofen"),), "baclofen")]


def test_a_drafted_drugs_medication_is_found_among_the_gathered_ones() -> None:
    """A draft order naming its drug by `medicationReference` to a Medication the EHR prefetched (with
    `_include=MedicationRequest:medication`) rather than put among the draft orders."""
    baclofen = concept(coding(RXNORM_URL, "1292", "baclofen"))
    medication = {"resourceType": "Medication", "id": "bac", "code": baclofen}
    drafted = medication_request(
        rid="drafted", medication_reference="Medication/bac/_history/1", route=INTRATHECAL
    )
    found = infusates_of(*_pump_call(drafted), {"Medication": [medication]})
    assert [(i.reference, i.codes) for i in found] == [
        ("MedicationRequest/drafted", (Code(RXNORM, "1292", "baclofen"),))
    ]


def test_a_drug_the_call_orders_wins_over_the_chart() -> None:
    chart = {"MedicationRequest": [chart_request("chart-drug")]}
    drafted = infusates_of(
        *_pump_call(medication_request(rid="drafted", medication=MORPHINE, route=INTRATHECAL)), chart
    )
    assert [i.reference for i in drafted] == ["MedicationRequest/drafted"]
    drafts, pumps = _pump_call()
    pumps[0].resource["orderDetail"] = [concept(coding(RXNORM_URL, "1292", "baclofen"))]
    assert [i.reference for i in infusates_of(drafts, pumps, chart)] == ["ServiceRequest/sr1 orderDetail"]


WHAT_IF = {"url": "http://ehr.example/fhir/StructureDefinition/what-if", "valueBoolean": True}


def test_a_drug_order_carrying_a_modifier_is_left_out_and_the_chart_does_not_stand_in_for_it() -> None:
    """A drafted pump drug whose order carries a modifier extension (gather walked it: `modified`) is
    left out, and is still the drug the call orders: the chart's is not read in its place (contract
    §2: the chart's only when the call orders none). A chart record carrying one at its top is left
    out too, as every chart record carrying one is."""
    chart = {"MedicationRequest": [chart_request("chart-drug")]}
    drafts, pumps = _pump_call(medication_request(rid="drafted", medication=MORPHINE, route=INTRATHECAL))
    terminology = load_catalog().terminology
    drugs = infusates(drafts, terminology, pumps, chart, modified={"MedicationRequest/drafted"})
    assert (drugs.found, drugs.left_out) == ((), ("MedicationRequest/drafted",))
    assert drugs.unavailable == {
        PUMP_DRUG: "1 record(s) carry a modifier extension this service does not understand"
    }
    chart["MedicationRequest"][0]["modifierExtension"] = [WHAT_IF]
    drafts, pumps = _pump_call()
    drugs = infusates(drafts, terminology, pumps, chart)
    assert (drugs.found, drugs.left_out) == ((), ("MedicationRequest/chart-drug",))


@pytest.mark.parametrize(
    ("status", "route", "followed"),
    [
        ("active", None, True),  # no route: the pump order's naming it makes it the pump's drug
        ("active", INTRATHECAL, True),
        ("active", EPIDURAL, True),
        ("active", {"text": "intrathecal"}, True),
        ("active", {"text": ""}, True),  # a route that says nothing is none
        ("active", INTRAVENOUS, False),  # another route: another drug (session review s18 R-6)
        ("active", ORAL, False),
        ("completed", INTRATHECAL, False),  # history (contract §3), not what the pump is to deliver
        ("stopped", None, False),
        ("on-hold", None, False),
        ("entered-in-error", INTRATHECAL, False),
        ("cancelled", INTRATHECAL, False),
    ],
)
def test_a_drug_order_of_the_chart_the_pump_order_names_is_the_infusate(
    status: str, route: dict[str, Any] | None, followed: bool
) -> None:
    """Contract §2: the infusate is "... or `ServiceRequest.orderDetail` / `reasonReference` naming it"; a
    reasonReference to the chart's drug order, not the call's, was followed only among the draft orders
    (contract review s17 F7). It is found among the chart's gathered MedicationRequests; a refill
    naming it is judged for that drug, not for the chart's active intrathecal one beside it. Only one
    that could be the pump's drug (session review s18 R-6): active, as the chart's current pump drug
    is, and by no route but a neuraxial one; else it is the order's reason (the failed oral opioid),
    and the chart's active intrathecal drug is the pump's."""
    drafts, pumps = _pump_call(code="95990")
    pumps[0].resource["reasonReference"] = [{"reference": "MedicationRequest/named"}]
    baclofen = {"medication": concept(coding(RXNORM_URL, "1292", "baclofen"))}
    chart = {"MedicationRequest": [chart_request("named", status, route, **baclofen), chart_request("it")]}
    found = infusates_of(drafts, pumps, chart)
    expected = "MedicationRequest/named" if followed else "MedicationRequest/it"
    assert [i.reference for i in found] == [expected]


def test_a_charts_drug_order_the_pump_order_names_carrying_a_modifier_is_left_out() -> None:
    """Read as a chart record is: one carrying a modifier extension is left out (the pump's drug could
    not be checked), and the chart's active pump drug does not stand in for it."""
    drafts, pumps = _pump_call(code="95990")
    pumps[0].resource["reasonReference"] = [{"reference": "MedicationRequest/named"}]
    named = {**chart_request("named", route=None), "modifierExtension": [WHAT_IF]}
    terminology = load_catalog().terminology
    drugs = infusates(drafts, terminology, pumps, {"MedicationRequest": [named, chart_request("it")]})
    assert (drugs.found, drugs.left_out) == ((), ("MedicationRequest/named",))


def test_a_drug_order_of_another_fhir_server_the_pump_order_names_is_not_the_charts() -> None:
    drafts, pumps = _pump_call(code="95990")
    pumps[0].resource["reasonReference"] = [
        {"reference": "https://other.example/fhir/MedicationRequest/named"}
    ]
    chart = {"MedicationRequest": [chart_request("named", route=None)]}
    terminology = load_catalog().terminology
    drugs = infusates(drafts, terminology, pumps, chart, server="https://ehr.example.org/fhir")
    assert drugs.found == ()


def test_without_a_chart_or_a_drug_there_is_no_infusate() -> None:
    assert infusates_of(*_pump_call()) == []
    assert infusates_of(*_pump_call(), {"MedicationRequest": ["not a resource"]}) == []


@pytest.mark.parametrize("count", [10, 400])
def test_an_orders_contained_reasons_are_found_in_one_pass_over_its_contained(
    table: OrderCodeTable, count: int
) -> None:
    """Each `#id` of `reasonReference` was found by scanning `contained` again (security review S-2)."""
    order = service_request(concept(CPT_62362))
    order["reasonReference"] = [{"reference": f"#why{n}"} for n in range(count)]
    reasons = [{"resourceType": "Condition", "id": f"why{n}"} for n in range(count)]
    later = {"resourceType": "Condition", "id": "why0", "note": "a second why0: the first is meant"}
    order["contained"] = CountedItems([*reasons, later])
    recognised = recognise_alone(order, table)
    assert recognised is not None and list(recognised.reasons) == reasons
    assert order["contained"].read == count + 1


@pytest.mark.parametrize(
    ("route", "drug", "intrathecal"),
    [
        pytest.param(INTRATHECAL, "baclofen 2000 MCG/ML", True, id="intrathecal-route"),
        pytest.param(None, "Baclofen 2000 MCG/ML Intrathecal Solution", True, id="its-name-says-intrathecal"),
        pytest.param(None, "Morphine Sulfate 25 MG/ML Epidural Injection", True, id="its-name-says-epidural"),
        pytest.param(None, "baclofen 2000 MCG/ML", False, id="nothing-says"),
        pytest.param(ORAL, "baclofen 10 MG Oral Tablet", False, id="oral"),
        pytest.param(ORAL, "baclofen (not for intrathecal use)", False, id="negated-words"),
        pytest.param(ORAL, "Baclofen 2000 MCG/ML Intrathecal Solution", False, id="its-route-decides"),
    ],
)
def test_the_record_and_the_pumps_drug_read_a_drug_order_as_intrathecal_by_one_definition(
    route: dict[str, Any] | None, drug: str, intrathecal: bool
) -> None:
    """Contract §2: "the patient's active intrathecal or epidural MedicationRequest in the chart" is
    the pump's drug; the record reads the same orders as pump or trial drugs, never a systemic drug
    trial (`MedicationFact.neuraxial`). The two read an order's route and its drug's own words alike
    (the route it says decides; with none, the drug's words): an order whose drug's name says
    intrathecal, with no route, was the record's intrathecal drug but not the pump's (its route alone
    was read there), and one given orally was the record's intrathecal drug by its name."""
    resource = chart_request("drug", route=route, medication=concept(text=drug))
    chart = {"MedicationRequest": [resource]}
    [fact] = build_record("p1", chart, load_catalog().terminology).medications
    found = infusates_of(*_pump_call(code="95990"), chart)
    assert (fact.neuraxial, [i.reference for i in found]) == (
        intrathecal,
        ["MedicationRequest/drug"] if intrathecal else [],
    )
