"""A hardware order coded through its Device (contract §2: `DeviceRequest.codeReference` to a Device
whose `type` carries the code) is recognised wherever the call carries that Device: contained, among
the draft orders, or in the prefetch; with no FHIR server to ask."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from service.app import create_app
from service.codes import CANONICAL_SYSTEM, CPT
from service.fhir.client import FhirError
from service.hooks.models import parse_hook_request
from service.order_devices import DeviceReader
from service.pipeline import handle_hook
from service.registry import find_service
from tests.builders import catalog
from tests.calls import prefetch_app
from tests.conformance import check_response
from tests.observability_support import scrape, value
from tests.support import (
    REQUESTS_DIR,
    SELECT_URL,
    RecordingFactory,
    RecordingFhirClient,
    assertion_of,
    open_settings,
    post_json,
    select_body,
    with_fhir,
)

SAMPLE = "order-select-62362-demo-cmm210-replacement.json"
HARDWARE = "DeviceRequest/demo-cmm210-replacement-select-dr-e0786"
CPT_URL = CANONICAL_SYSTEM[CPT]


def device(rid: str, patient: str = "demo-cmm210-replacement") -> dict[str, Any]:
    hcpcs = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    return {
        "resourceType": "Device",
        "id": rid,
        "status": "active",
        "patient": {"reference": f"Patient/{patient}"},
        "type": {"coding": [{"system": hcpcs, "code": "E0786"}]},
    }


def hardware_by_reference(where: str) -> dict[str, Any]:
    """The sample with its E0786 order selected alone, coded through Device/dev-e0786 kept `where`."""
    body = json.loads((REQUESTS_DIR / SAMPLE).read_text(encoding="utf-8"))  # its whole chart prefetched
    body["context"]["selections"] = [HARDWARE]
    order = next(
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "DeviceRequest"
    )
    del order["codeCodeableConcept"]
    if where in ("contained", "not-contained", "contained-not-a-device"):
        contained = {  # (none: `contained: []`, an empty element, is a 400 of its own)
            "contained": [device("dev-e0786")],
            "contained-not-a-device": [{**device("dev-e0786"), "resourceType": "Substance"}],
        }.get(where)
        if contained:
            order["contained"] = contained
        order["codeReference"] = {"reference": "#dev-e0786"}
        return body
    if where == "urn-not-in-bundle":
        order["codeReference"] = {"reference": "urn:uuid:6f1c2a4e-0b7d-4a57-9d3e-2c8f1b0a9e11"}
        return body
    order["codeReference"] = {"reference": "Device/dev-e0786"}
    if where == "draft-orders":
        body["context"]["draftOrders"]["entry"].append({"resource": device("dev-e0786")})
    elif where == "prefetch":
        body["prefetch"]["patientDevices"]["entry"].append({"resource": device("dev-e0786")})
    elif where == "draft-orders-not-a-device":
        fullurl = "http://ehr.example/fhir/Device/dev-e0786"
        entry = {"fullUrl": fullurl, "resource": {**device("dev-x"), "resourceType": "Substance"}}
        body["context"]["draftOrders"]["entry"].append(entry)
        order["codeReference"] = {"reference": fullurl}
    return body  # "nowhere": on the EHR's FHIR server at best


@pytest.mark.parametrize("where", ["contained", "draft-orders", "prefetch"])
def test_a_hardware_order_coded_through_its_device_is_judged(where: str) -> None:
    body = hardware_by_reference(where)
    answer = prefetch_app().test_client().post("/cds-services/idds-crd-order-select", json=body)
    assert answer.status_code == 200
    cards = answer.get_json()["cards"]
    decision = next(c for c in cards if c["source"]["topic"]["code"] == "coverage-info")
    assert "E0786" in decision["summary"], decision["summary"]


class DeviceReadsFail(RecordingFhirClient):
    """The EHR's FHIR server, failing every read of a Device."""

    def read(self, reference: str) -> dict[str, Any] | None:
        if reference.startswith("Device/"):
            super().read(reference)
            raise FhirError("HTTP 503", 503)
        return super().read(reference)


def selected(body: dict[str, Any], server: bool) -> dict[str, Any]:
    """The order-select answer for `body` (pointed at the FHIR server, when `server`, in place), its
    Devices read from a server failing every read, or prefetch alone."""
    if server:
        app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(DeviceReadsFail()))
        body = with_fhir(body)
    else:
        app = prefetch_app()
    answer: dict[str, Any] = post_json(app.test_client(), SELECT_URL, body).get_json()
    return answer


@pytest.mark.parametrize(
    ("where", "server", "why"),
    [
        ("nowhere", False, "Device/dev-e0786, but the call gave no FHIR server to read it from"),
        ("nowhere", True, "Device/dev-e0786, but the EHR's FHIR server did not return it (HTTP 503)"),
        ("not-contained", False, "#dev-e0786, but the order does not contain it"),
        ("contained-not-a-device", False, "#dev-e0786, but it is a Substance, not a Device"),
        (
            "draft-orders-not-a-device",
            False,
            "http\\://ehr.example/fhir/Device/dev-e0786, but it is a Substance, not a Device",
        ),
        (
            "urn-not-in-bundle",
            False,
            "urn:uuid:6f1c2a4e-0b7d-4a57-9d3e-2c8f1b0a9e11, but the call's orders do not hold it",
        ),
    ],
    ids=["no-server", "read-fails", "not-contained", "contained-not-device", "bundle-not-device", "urn"],
)
def test_a_hardware_order_whose_device_cannot_be_read_is_said_not_checked(
    where: str, server: bool, why: str
) -> None:
    """Its code is its Device's: not readable, the order is not known to be a pump order or not.
    Before, it silently left the episode and its coverage information said this service holds no
    coverage rules for it (clinical review 3, M1; session review s34, F6 for the contained one; the
    late review for one that names no Device, or a Bundle entry the call does not hold)."""
    answer = selected(hardware_by_reference(where), server)
    [card] = [c for c in answer["cards"] if c["summary"].startswith("Coverage not checked")]
    assert card["summary"] == "Coverage not checked: the device this order is for could not be read"
    assert card["detail"].startswith(f"{HARDWARE} orders the device {why}"), card["detail"]
    [action] = [a for a in answer["systemActions"] if f"DeviceRequest/{a['resource']['id']}" == HARDWARE]
    reason = assertion_of(action)["reason"]["text"]
    assert "the device it orders could not be read" in reason and "no coverage rules" not in reason, reason


@pytest.mark.parametrize(("server", "covered"), [(True, "indeterminate"), (False, "conditional")])
def test_under_crd_2_2_a_device_the_fhir_server_failed_to_return_is_indeterminate(
    server: bool, covered: str
) -> None:
    """CRD 2.2 §resp-43: the FHIR server's failure is a technical issue, `indeterminate` with reason
    `technical`; a call that gave no server to read it from failed nothing (review H5)."""
    body = hardware_by_reference("nowhere")
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    answer = selected(body, server)
    assert check_response(answer, body) == []
    [action] = [a for a in answer["systemActions"] if f"DeviceRequest/{a['resource']['id']}" == HARDWARE]
    told = assertion_of(action)
    assert (told["covered"], told["pa-needed"]) == (covered, covered)
    assert ("technical" in json.dumps(told["reason"])) == server


def test_a_prefetched_device_is_found_by_any_form_of_its_reference_and_only_the_patients() -> None:
    mine, theirs = device("pump", "p1"), device("other", "p2")
    prefetch = {
        "patientDevices": {"resourceType": "Bundle", "entry": [{"resource": mine}, {"resource": theirs}]}
    }
    read = DeviceReader(None, "p1", prefetch=prefetch)
    assert read("Device/pump") is mine
    assert read("https://ehr.example.org/fhir/Device/pump/_history/3") is mine
    assert read("Device/other") is None
    assert read("Device/absent") is None


def test_on_order_sign_the_device_among_the_draft_orders_gets_no_coverage_information() -> None:
    """Only orders carry coverage information; a Device (Medication, Condition) an order references
    and the EHR sends beside it in draftOrders is no order. Before, each got an update of its own."""
    body = hardware_by_reference("draft-orders")
    body["hook"] = "order-sign"
    del body["context"]["selections"]
    answer = prefetch_app().test_client().post("/cds-services/idds-crd-order-sign", json=body)
    assert answer.status_code == 200
    updated = [action["resource"]["resourceType"] for action in answer.get_json()["systemActions"]]
    assert "DeviceRequest" in updated and "Device" not in updated
    assert check_response(answer.get_json(), body) == []


class DeviceServer:
    """Stands in for the call's FHIR client: reads answer with a Device of the patient's."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def read(self, reference: str) -> dict[str, Any]:
        self.reads.append(reference)
        return device(reference.split("/")[1], "p1")


def test_a_device_is_read_from_the_calls_server_however_named_and_never_from_another() -> None:
    server = DeviceServer()
    read = DeviceReader(server, "p1", "https://ehr.example.org/fhir")  # type: ignore[arg-type]
    assert read("https://ehr.example.org/fhir/Device/pump")["id"] == "pump"  # type: ignore[index]
    assert read("Device/other")["id"] == "other"  # type: ignore[index]
    assert read("https://elsewhere.example.org/fhir/Device/far") is None
    assert server.reads == ["Device/pump", "Device/other"]


@pytest.mark.parametrize("client", [None, DeviceServer()], ids=["prefetch alone", "server to read"])
def test_a_prefetched_device_is_not_another_servers_device_of_the_same_id(client: Any) -> None:
    """The prefetch is the call's FHIR server's: another server's Device/pump is not the prefetched
    Device/pump, and the call's server is not asked for it. Before, the prefetch was looked up by
    `Type/id` before the server was compared (fix-q, s18)."""
    mine = device("pump", "p1")
    prefetch = {"patientDevices": {"resourceType": "Bundle", "entry": [{"resource": mine}]}}
    read = DeviceReader(client, "p1", "https://ehr.example.org/fhir", prefetch)
    assert read("https://ehr.example.org/fhir/Device/pump") is mine
    assert read("https://elsewhere.example.org/fhir/Device/pump") is None
    assert read.failed == {
        "https://elsewhere.example.org/fhir/Device/pump": "it is held on another FHIR server"
    }
    assert client is None or client.reads == []


def implant_without_its_pump_line(hardware_via_device: bool) -> dict[str, Any]:
    """demo-meets's order-sign of a pump implant with the 62362 line taken out, so the pump is known
    from its E0783 hardware order alone: coded on the order, or through a prefetched Device."""
    body = json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text(encoding="utf-8"))
    entries = body["context"]["draftOrders"]["entry"]
    entries[:] = [e for e in entries if e["resource"]["id"] != "demo-meets-sign-sr-62362"]
    if hardware_via_device:
        order = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "DeviceRequest")
        concept = order.pop("codeCodeableConcept")
        body["prefetch"]["orderDevice"] = {
            "resourceType": "Device",
            "id": "dev-e0783",
            "status": "inactive",
            "patient": order["subject"],
            "type": concept,
        }
        order["codeReference"] = {"reference": "Device/dev-e0783"}
    return body


def test_an_episode_whose_pump_is_known_through_its_device_judges_the_catheter_as_part_of_the_implant() -> (
    None
):
    """The catheter ordered with a pump is judged as the implant it is part of. Before, the episode
    was worked out again in `decide` without the Device: the catheter was judged on its own."""
    env = prefetch_app().extensions["idds_crd"].environment
    service = find_service("idds-crd-order-sign")
    kinds = {}
    for via_device in (False, True):
        request = parse_hook_request(implant_without_its_pump_line(via_device), service)
        outcome = handle_hook(request, service, env, date(2026, 1, 5))
        kinds[via_device] = sorted((d.billing_code, d.request_kind) for d in outcome.determinations)
    assert kinds[True] == kinds[False] == [("62350", "permanent-implant"), ("E0783", "permanent-implant")]


def test_the_devices_of_unselected_orders_are_read_only_when_a_selected_order_is_a_pump_order() -> None:
    """order-select reads the Device of an unselected DeviceRequest only for the episode of a selected
    pump order: a call that selects no pump order reads none (each read waits in the call's thread)."""
    reads = {}
    for pump_selected in (False, True):
        body = with_fhir(select_body())
        entries = body["context"]["draftOrders"]["entry"]
        if not pump_selected:
            entries[0]["resource"]["code"] = {"coding": [{"system": CPT_URL, "code": "99213"}]}
        entries.append(
            {
                "resource": {
                    "resourceType": "DeviceRequest",
                    "id": "dr-unselected",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": f"Patient/{body['context']['patientId']}"},
                    "codeReference": {"reference": "Device/dev-unselected"},
                }
            }
        )
        client = RecordingFhirClient()
        app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(client))
        assert post_json(app.test_client(), SELECT_URL, body).status_code == 200
        reads[pump_selected] = [args for kind, args in client.calls if kind == "read" and "Device/" in args]
    assert reads == {False: [], True: ["Device/dev-unselected"]}


class DeviceReadsRefused(RecordingFhirClient):
    """The EHR's FHIR server, refusing the call's token on a read of a Device (`status`), or answering
    it with the patient's Device (None)."""

    def __init__(self, status: int | None) -> None:
        super().__init__()
        self.status = status

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        if not reference.startswith("Device/"):
            return None
        if self.status is not None:
            raise FhirError(f"HTTP {self.status}", self.status)
        return device(reference.split("/")[1])


@pytest.mark.parametrize(("status", "token_use"), [(401, "rejected"), (None, "used")])
def test_a_device_read_from_the_server_counts_toward_the_token_outcome(
    status: int | None, token_use: str
) -> None:
    """An order's Device read from the EHR's FHIR server is a query of the call like any other
    (`FhirUse.read`): counted toward the audit's token outcome (CRD metrics' tokenUse). With the chart
    prefetched it is all the call asks the server: refused, the record said `not-used`."""
    server = DeviceReadsRefused(status)
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    answer = post_json(app.test_client(), SELECT_URL, with_fhir(hardware_by_reference("nowhere")))
    assert answer.status_code == 200 and ("read", "Device/dev-e0786") in server.calls
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == token_use
    errors = value(scrape(app), "idds_crd_fhir_query_errors_total", resource_type="Device")
    assert errors == (status is not None)  # a query of the FHIR query metric too (encounter30)
