"""The CRD hooks beyond order-select/-sign: order-dispatch, encounter-start/-discharge, and what a
call may ask of the answer (the CRD version it speaks)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from service.app import create_app
from service.fhir.client import FhirError
from service.fhir.prefetch import render
from service.hooks.contexts import HOOK_CONTEXTS
from service.hooks.models import parse_hook_request
from service.registry import DISPATCHED_PREFETCH, SERVICES, service_for_hook
from tests.builders import cards_of, catalog, meeting_chart, service_request, without_codes
from tests.calls import sample, sign_with_chart
from tests.demo_support import packaged_sample
from tests.support import (
    FHIR_SERVER,
    REQUESTS_DIR,
    SELECT_URL,
    RecordingFactory,
    RecordingFhirClient,
    as_queried,
    assert_outcome,
    assertion_of,
    no_client,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

DISPATCHED = "ServiceRequest/demo-meets-sign-sr-62362"
ENCOUNTER_START = "/cds-services/idds-crd-encounter-start"


def targets(answer: dict[str, Any]) -> list[str]:
    return sorted(f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in answer["systemActions"])


# --------------------------------------------------------------------------- order-dispatch


def test_a_dispatched_pump_order_is_judged_as_on_order_sign() -> None:
    chart = meeting_chart()
    _, dispatched = sign_with_chart(chart, body=sample("order-dispatch-62362-demo-meets"))
    _, signed = sign_with_chart(chart)
    [decision] = cards_of(dispatched["cards"])
    assert decision["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    [signed_decision] = cards_of(signed["cards"])  # the pump, its catheter and hardware as one decision
    assert signed_decision["summary"] == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    assert targets(dispatched) == [DISPATCHED]
    assert assertion_of(dispatched["systemActions"][0])["covered"] == "covered"


def test_a_dispatched_order_not_prefetched_is_read_or_reported() -> None:
    body = sample("order-dispatch-62362-demo-meets")
    del body["prefetch"]["dispatchedServiceRequests"]
    _, answer = sign_with_chart(meeting_chart(), body=body)  # the fake EHR does not hold the order
    [card] = answer["cards"]
    assert card["summary"] == "Coverage not checked: the dispatched order could not be read"
    assert card["detail"].startswith(
        f"The dispatched order ({DISPATCHED}) could not be used: the EHR's FHIR server does not have it"
    )
    assert "Dispatch it again" in card["detail"] and "Book" not in card["detail"]


@pytest.mark.parametrize(
    ("status", "reason"), [("revoked", "revoked"), ("entered-in-error", "entered in error")]
)
def test_a_dispatched_order_that_was_withdrawn_is_reported_not_judged(status: str, reason: str) -> None:
    """An order revoked or entered in error will not be carried out: before, it was judged ('meets all
    14 coverage criteria') and coverage information was written on it (ehr20)."""
    body = sample("order-dispatch-62362-demo-meets")
    body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"]["status"] = status
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [card] = answer["cards"]
    assert card["summary"] == f"Coverage not checked: the dispatched order was {reason}"
    assert card["detail"].startswith(f"The dispatched order ({DISPATCHED}) was not judged: it was {reason}")
    assert "Do not dispatch it again" in card["detail"]
    assert "once the order is available" not in card["detail"]
    assert "systemActions" not in answer


def test_a_dispatched_order_of_another_patient_says_so_not_that_it_could_not_be_read() -> None:
    """The order was read: it is another patient's. Before, "the dispatched order could not be read
    … Dispatch it again once the order is available" (ehr20 C1)."""
    body = sample("order-dispatch-62362-demo-meets")
    body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"]["subject"] = {
        "reference": "Patient/someone-else"
    }
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [card] = answer["cards"]
    assert card["summary"] == "Coverage not checked: the dispatched order is an order for another patient"
    assert card["indicator"] == "warning"  # an order in the wrong patient's chart: not a mere notice
    assert "Check that the order dispatched is this patient's" in card["detail"]
    assert "Dispatch it again" not in card["detail"]
    assert "systemActions" not in answer


def test_a_dispatch_whose_order_patient_and_coverage_cannot_be_had_is_412() -> None:
    body = sample("order-dispatch-62362-demo-meets")
    del body["prefetch"]
    assert "fhirServer" not in body
    client = create_app(open_settings(), catalog()).test_client()
    response = post_json(client, "/cds-services/idds-crd-order-dispatch", body)
    issue = assert_outcome(response, 412, None)
    assert issue["expression"][0] in ("prefetch.patient", "prefetch.coverage")
    assert sorted(issue["expression"]) == [
        "context.dispatchedOrders[0]",
        "prefetch.coverage",
        "prefetch.patient",
    ]
    assert f"{DISPATCHED}, coverage and patient were not prefetched" in issue["diagnostics"]


def dispatch(body: dict[str, Any], factory: Any = None) -> Any:
    app = create_app(open_settings(), catalog(), **({"client_factory": factory} if factory else {}))
    return post_json(app.test_client(), "/cds-services/idds-crd-order-dispatch", body)


def test_a_dispatched_order_neither_prefetched_nor_readable_is_412_naming_it() -> None:
    """CDS Hooks 2.0: data the service needs, not prefetched and with no fhirServer to read it from,
    is a 412 (as for the Patient and Coverage). The order is what the call is about: without it there
    is nothing to put coverage information on. Before, 200 with a "could not be read" card and no
    systemActions on a primary hook (hooks review H6)."""
    body = sample("order-dispatch-62362-demo-meets")
    del body["prefetch"]["dispatchedServiceRequests"]  # the Patient, Coverage and chart are prefetched
    assert "fhirServer" not in body
    issue = assert_outcome(dispatch(body), 412, "context.dispatchedOrders[0]", mention=DISPATCHED)
    assert issue["expression"] == ["context.dispatchedOrders[0]"]
    assert issue["diagnostics"] == (
        f"{DISPATCHED} was not prefetched and could not be read from the EHR's FHIR server (the call "
        "gave no FHIR server to read it from); send it as prefetch or provide a reachable fhirServer "
        "with fhirAuthorization"
    )


def test_discovery_asks_a_crd_2_2_client_to_prefetch_the_dispatched_orders() -> None:
    """CRD 2.2.1's expressions for the dispatched orders (§found-29), one key per request type; each
    renders to the ids of the dispatched orders of its type, and an EHR that prefetches the order under
    its key, with no FHIR server named, is answered from it (before, only under a key no discovery
    declared: a prefetch-only EHR got a 412, hooks review H6)."""
    body = sample("order-dispatch-62362-demo-meets")
    body["context"]["dispatchedOrders"] = [DISPATCHED, "DeviceRequest/pump-1", "ServiceRequest/sr-2"]
    request = parse_hook_request(body, service_for_hook("order-dispatch"))
    rendered = {key: render(template, request) for key, template in DISPATCHED_PREFETCH.items()}
    assert rendered["dispatchedServiceRequests"] == "ServiceRequest?_id=demo-meets-sign-sr-62362,sr-2"
    assert rendered["dispatchedDeviceRequests"] == "DeviceRequest?_id=pump-1"
    assert rendered["dispatchedMedicationRequests"] is None  # none dispatched: the key is not needed
    order = sample("order-dispatch-62362-demo-meets")  # the order prefetched as that template asks
    assert [e["resource"]["id"] for e in order["prefetch"]["dispatchedServiceRequests"]["entry"]] == [
        "demo-meets-sign-sr-62362"
    ]
    assert "fhirServer" not in order
    answer = dispatch(order)
    assert answer.status_code == 200
    assert targets(answer.get_json()) == [DISPATCHED]


@pytest.mark.parametrize(
    ("context", "expressions"),
    [
        ({"dispatchedOrders": ["DeviceRequest/pump-2", "DeviceRequest/pump-1"]}, [0, 1]),
        ({"order": "DeviceRequest/pump-1"}, None),  # the Inferno kit's 2.0.1 shape
    ],
    ids=["two-of-two", "inferno-order"],
)
def test_the_412_names_where_the_request_names_the_orders_it_could_not_have(
    context: dict[str, Any], expressions: list[int] | None
) -> None:
    body = sample("order-dispatch-62362-demo-meets")
    body["context"].pop("dispatchedOrders")
    body["context"].update(context)
    named = [f"context.dispatchedOrders[{i}]" for i in expressions] if expressions else ["context.order"]
    issue = assert_outcome(dispatch(body), 412, named[0], mention="DeviceRequest/pump-1")
    assert sorted(issue["expression"]) == named


def test_an_order_that_cannot_be_had_beside_one_at_hand_is_reported_and_the_other_answered() -> None:
    """A lab order dispatched with the pump, not prefetched and with no FHIR server to read it from:
    the pump order still gets its coverage information and the lab a "could not be read" card; a 412
    would lose what the call can answer (session review s37, S37-5)."""
    body = sample("order-dispatch-62362-demo-meets")
    body["context"]["dispatchedOrders"] = [DISPATCHED, "ServiceRequest/lab-xyz"]
    answer = dispatch(body)
    assert answer.status_code == 200
    found = answer.get_json()
    assert targets(found) == [DISPATCHED]
    assert any("ServiceRequest/lab-xyz" in card.get("detail", "") for card in found["cards"])


def test_a_dispatched_order_the_fhir_server_fails_to_give_is_still_a_degraded_answer() -> None:
    """A FHIR server that fails degrades the answer, never ends it: a "could not be read" card."""
    body = with_fhir(sample("order-dispatch-62362-demo-meets"))
    del body["prefetch"]["dispatchedServiceRequests"]
    factory = RecordingFactory(RecordingFhirClient(FhirError("HTTP 503", 503)))
    response = dispatch(body, factory)
    assert response.status_code == 200, response.get_data(as_text=True)
    [card] = response.get_json()["cards"]
    assert card["summary"] == "Coverage not checked: the dispatched order could not be read"
    assert ("read", DISPATCHED) in factory.client.calls


@responses.activate
def test_a_dispatched_order_nested_too_deeply_to_copy_is_reported_unread_not_a_500() -> None:
    body = with_fhir(sample("order-dispatch-62362-demo-meets"))
    [entry] = body["prefetch"].pop("dispatchedServiceRequests")["entry"]
    order = entry["resource"]
    deep: Any = []
    for _ in range(600):
        deep = [deep]
    responses.get(f"{FHIR_SERVER}/{DISPATCHED}", json={**order, "extension": [{"url": "x", "_deep": deep}]})
    client = create_app(open_settings()).test_client()
    response = client.post("/cds-services/idds-crd-order-dispatch", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    [card] = response.get_json()["cards"]
    assert card["summary"] == "Coverage not checked: the dispatched order could not be read"
    assert DISPATCHED in card["detail"]


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda c: c.pop("dispatchedOrders"), "context.dispatchedOrders"),
        (lambda c: c.update(dispatchedOrders=[]), "context.dispatchedOrders"),
        (lambda c: c.update(dispatchedOrders=["not a reference"]), "context.dispatchedOrders[0]"),
        (lambda c: c.pop("performer"), "context.performer"),
    ],
    ids=["missing", "empty", "malformed", "no-performer"],
)
def test_a_malformed_dispatch_is_400_naming_the_field(change: Any, expression: str) -> None:
    body = sample("order-dispatch-62362-demo-meets")
    change(body["context"])
    response = post_json(
        create_app(open_settings(), catalog()).test_client(), "/cds-services/idds-crd-order-dispatch", body
    )
    assert_outcome(response, 400, expression)


# --------------------------------------------------------------------------- each hook's own context
# The hook definitions (CDS Hooks library; the Inferno kit checks the same): service/hooks/contexts.py

SAMPLES = {
    "order-select": "order-select-62362-demo-meets",
    "order-sign": "order-sign-implant-demo-meets",
    "order-dispatch": "order-dispatch-62362-demo-meets",
    "appointment-book": "appointment-book-62362-demo-meets",
    "encounter-start": "encounter-start-demo-meets",
    "encounter-discharge": "encounter-discharge-demo-meets",
}


def called(hook: str, change: Any) -> Any:
    body = sample(SAMPLES[hook])
    change(body["context"])
    return post_json(
        create_app(open_settings(), catalog()).test_client(), f"/cds-services/idds-crd-{hook}", body
    )


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_encounter_hook_without_its_encounter_is_400(hook: str) -> None:
    """encounterId is REQUIRED for encounter-start/-discharge (the Encounter being started or ended).
    Before, answered 200 (hooks review H8)."""
    response = called(hook, lambda c: c.pop("encounterId"))
    issue = assert_outcome(response, 400, "context.encounterId")
    assert issue["diagnostics"] == f"context.encounterId is required for {hook}"


@pytest.mark.parametrize("hook", ["order-select", "order-sign", "order-dispatch", "appointment-book"])
def test_the_encounter_stays_optional_where_the_hook_says_so(hook: str) -> None:
    response = called(hook, lambda c: c.pop("encounterId", None))
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("hook", "user"),
    [
        ("encounter-start", "Patient/demo-meets"),
        ("encounter-discharge", "RelatedPerson/mother"),
        ("order-select", "Patient/demo-meets"),
        ("order-sign", "RelatedPerson/mother"),
        ("appointment-book", "Organization/front-desk"),
    ],
)
def test_a_user_the_hook_does_not_allow_is_400(hook: str, user: str) -> None:
    """Order and encounter hooks are a clinician's (or staff's): Practitioner or PractitionerRole;
    appointment-book also lets the patient or their proxy book. Before, a Patient user was accepted
    on every hook (hooks review H8)."""
    response = called(hook, lambda c: c.update(userId=user))
    issue = assert_outcome(response, 400, "context.userId")
    assert f"(the users {hook} allows)" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("hook", "user"),
    [
        ("encounter-start", "PractitionerRole/nurse"),
        ("order-sign", "PractitionerRole/nurse"),
        ("appointment-book", "Patient/demo-meets"),  # self-scheduling in a patient portal
        ("appointment-book", "RelatedPerson/mother"),
    ],
)
def test_a_user_the_hook_allows_is_answered(hook: str, user: str) -> None:
    response = called(hook, lambda c: c.update(userId=user))
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda c: c.update(performer="Dr. Smith"), "context.performer"),
        (lambda c: c.update(performer="Organization/"), "context.performer"),
        (lambda c: c.update(dispatchedOrders=["Patient/demo-meets"]), "context.dispatchedOrders[0]"),
        (lambda c: c.update(dispatchedOrders=[DISPATCHED, "Encounter/e1"]), "context.dispatchedOrders[1]"),
        (lambda c: (c.pop("dispatchedOrders"), c.update(order="Coverage/c1")), "context.order"),
    ],
    ids=[
        "performer-free-text",
        "performer-no-id",
        "order-a-patient",
        "second-an-encounter",
        "order-coverage",
    ],
)
def test_a_dispatch_naming_what_the_hook_does_not_define_is_400(change: Any, expression: str) -> None:
    """The performer is a `{type}/{id}` reference (ord-1); the dispatched orders are request
    resources. Before, 200 (for a Patient: {"cards": []}, no systemActions; hooks review H8)."""
    assert_outcome(called("order-dispatch", change), 400, expression)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(performer="CareTeam/implant-team"),
        lambda c: c.update(performer="Organization/implant-center"),
        lambda c: c.update(dispatchedOrders=[DISPATCHED, DISPATCHED]),
    ],
    ids=["careteam", "organization", "named-twice"],
)
def test_a_dispatch_the_hook_defines_is_answered(change: Any) -> None:
    response = called("order-dispatch", change)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert targets(response.get_json()) == [DISPATCHED]


def test_every_served_hook_has_its_context_rules() -> None:
    assert {s.hook for s in SERVICES} == set(HOOK_CONTEXTS) == set(SAMPLES)


# --------------------------------------------------------------------------- encounter-start/-discharge


ENCOUNTER = "Encounter/demo-meets-encounter"  # the encounter samples' Encounter, prefetched


def open_pump_order(status: str) -> dict[str, Any]:
    order = service_request("62362")
    order["status"] = status
    return order


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
@pytest.mark.parametrize("status", ["draft", "active"])
def test_an_encounter_judges_the_open_pump_orders_in_the_chart(hook: str, status: str) -> None:
    order = open_pump_order(status)
    _, answer = sign_with_chart([*meeting_chart(), order], body=sample(f"{hook}-demo-meets"))
    [decision] = cards_of(answer["cards"])
    assert decision["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    assert targets(answer) == [ENCOUNTER, f"ServiceRequest/{order['id']}"]  # the Encounter its own
    subs = assertion_of(answer["systemActions"][0])
    assert "doc-needed" not in subs  # a secondary hook never asks for documentation (CRD §hook-19)


@pytest.mark.parametrize("status", ["completed", "revoked", "on-hold"])
def test_an_encounter_without_open_pump_orders_gets_no_card_and_coverage_information_on_itself(
    status: str,
) -> None:
    chart = [*meeting_chart(), open_pump_order(status), service_request("99213")]
    _, answer = sign_with_chart(chart, body=sample("encounter-start-demo-meets"))
    assert answer["cards"] == [] and targets(answer) == [ENCOUNTER]


def test_an_encounter_does_not_read_the_chart_without_open_pump_orders() -> None:
    """Only the open-order searches run, and the payer read for the Encounter's coverage information
    (the Patient and Coverage prefetched): the clinical queries wait for a pump order."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(), catalog(), client_factory=factory)
    body = with_fhir(sample("encounter-start-demo-meets"))
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body)
    assert response.get_json()["cards"] == [] and targets(response.get_json()) == [ENCOUNTER]
    asked = sorted(c[1][0] if c[0] == "search" else c[1] for c in factory.client.calls)
    assert asked == ["DeviceRequest", "Organization/demo-meets-org-geha", "ServiceRequest"]


def test_an_encounter_whose_ehr_says_its_open_order_prefetch_failed_says_they_were_not_searched() -> None:
    """No FHIR server to search, and the EHR's own prefetch of the open ServiceRequests failed (an
    OperationOutcome): not "no open orders" but a card naming what could not be searched, which
    claims no search of a FHIR server the call did not name. Before, no card."""
    body = copy.deepcopy(sample("encounter-start-demo-meets"))
    body.pop("fhirServer", None)
    body["prefetch"]["openServiceRequests"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception"}],
    }
    body["prefetch"]["openDeviceRequests"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    app = create_app(open_settings(), catalog())
    answer = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body).get_json()
    [card] = answer["cards"]
    assert (
        card["summary"] == "Coverage not checked: the patient's open procedure orders could not be searched"
    )
    assert card["detail"].startswith(
        "The patient's open procedure orders could not be searched (the EHR reported an error for prefetch "
        "'openServiceRequests')"
    )
    assert "FHIR server" not in card["detail"], card["detail"]
    assert "whether another intrathecal pump order is open" in card["detail"]


def paged_open_orders(body: dict[str, Any]) -> dict[str, Any]:
    """`body` (a whole encounter-start sample) whose open ServiceRequests are page one, empty, of a
    search with a `next` page on the call's FHIR server."""
    body["prefetch"]["openServiceRequests"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "next", "url": f"{FHIR_SERVER}/ServiceRequest?page=2"}],
    }
    return body


@responses.activate
def test_an_encounter_reads_the_rest_of_a_paged_open_order_prefetch_by_the_keys_own_search() -> None:
    """CDS Hooks: a prefetched search may be paged. Before, only page one was read: the pump order on
    page two was missed and the answer was {"cards": []} (ehr20); then its `next` pages were followed
    one round trip each. Now the key's own search gives the whole (a prefetch holds what its template's
    query does): one request at the service's page size, no `next` page asked."""
    order = {**open_pump_order("active"), "subject": {"reference": "Patient/demo-meets"}}
    whole = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]}
    responses.get(f"{FHIR_SERVER}/ServiceRequest", json=whole)
    body = with_fhir(paged_open_orders(packaged_sample("encounter-start-demo-meets")))
    answer = post_json(create_app(open_settings()).test_client(), ENCOUNTER_START, body).get_json()
    assert targets(answer) == [ENCOUNTER, f"ServiceRequest/{order['id']}"]
    [asked] = [c.request.url for c in responses.calls]
    assert asked == f"{FHIR_SERVER}/ServiceRequest?_count=500&patient=demo-meets&status=draft%2Cactive"


@responses.activate
def test_an_encounter_whose_paged_open_order_search_fails_judges_page_one_and_says_what_failed() -> None:
    """The key's own search, run instead of the `next` pages, fails: page one's orders are judged and
    the answer says the rest could not be searched (as a failed `next` page did)."""
    order = {**open_pump_order("active"), "subject": {"reference": "Patient/demo-meets"}}
    responses.get(f"{FHIR_SERVER}/ServiceRequest", status=503)
    body = with_fhir(paged_open_orders(packaged_sample("encounter-start-demo-meets")))
    body["prefetch"]["openServiceRequests"]["entry"] = [{"resource": order}]
    answer = post_json(create_app(open_settings()).test_client(), ENCOUNTER_START, body).get_json()
    assert targets(answer) == [ENCOUNTER, f"ServiceRequest/{order['id']}"]
    assert "HTTP 503" in json.dumps(answer)


def test_an_encounter_with_a_paged_open_order_prefetch_and_no_fhir_server_says_so() -> None:
    """Page one of the open orders and no server to read the others from: not "no open orders"."""
    body = paged_open_orders(packaged_sample("encounter-start-demo-meets"))
    body.pop("fhirServer", None)
    answer = post_json(create_app(open_settings(), catalog()).test_client(), ENCOUNTER_START, body).get_json()
    [card] = answer["cards"]
    assert (
        card["summary"] == "Coverage not checked: the patient's open procedure orders could not be searched"
    )
    assert "has more pages" in card["detail"]


def test_an_encounter_with_no_open_order_prefetch_and_no_fhir_server_says_they_were_not_searched() -> None:
    """The EHR left the open-order keys out and names no FHIR server: the open orders were never
    looked at, so the answer says so instead of an empty "nothing to say" (Inferno review 2, B).
    Before, {"cards": []}."""
    body = copy.deepcopy(sample("encounter-start-demo-meets"))
    body.pop("fhirServer", None)
    assert "openServiceRequests" not in body["prefetch"] and "openDeviceRequests" not in body["prefetch"]
    app = create_app(open_settings(), catalog())
    answer = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body).get_json()
    [card] = answer["cards"]
    assert card["summary"] == "Coverage not checked: the patient's open orders could not be searched"
    assert "not prefetched, and the call gave no FHIR server to search" in card["detail"]


def test_an_encounter_with_nothing_prefetched_and_no_fhir_server_is_a_precondition_failure() -> None:
    """No prefetch and no FHIR server: neither the open orders nor the Patient and Coverage can be
    had, which CDS Hooks answers with 412. Before, 200 with {"cards": []}."""
    body = copy.deepcopy(sample("encounter-start-demo-meets"))
    body.pop("fhirServer", None)
    body.pop("prefetch")
    app = create_app(open_settings(), catalog())
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body)
    outcome = assert_outcome(response, 412, None)
    assert "coverage and patient were not prefetched" in outcome["diagnostics"]


# --------------------------------------------------------------------------- CRD version negotiation


def versioned(version: str | None) -> dict[str, Any]:
    body = sign_body()
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    return body


def test_a_2_2_client_gets_indeterminate_when_the_ehr_data_could_not_be_read() -> None:
    """CRD 2.2 §resp-43: a technical failure is `indeterminate` with reason `technical`."""
    _, answer = sign_with_chart(meeting_chart(), body=versioned("2.2"), failing=("Procedure",))
    pump = next(a for a in answer["systemActions"] if a["resource"]["id"] == "demo-meets-sign-sr-62362")
    subs = assertion_of(pump)
    assert subs["covered"] == "indeterminate"
    assert subs["reason"]["coding"] == [
        {"system": "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp", "code": "technical"}
    ]
    assert "could not be read" in subs["reason"]["text"]
    assert "info-needed" not in subs


@pytest.mark.parametrize("version", [None, "2.0", "2.1"])
def test_an_older_client_gets_only_what_crd_2_0_1_allows(version: str | None) -> None:
    _, answer = sign_with_chart(meeting_chart(), body=versioned(version), failing=("Procedure",))
    text = json.dumps(answer["systemActions"])
    assert "indeterminate" not in text and "technical" not in text
    pump = next(a for a in answer["systemActions"] if a["resource"]["id"] == "demo-meets-sign-sr-62362")
    assert (assertion_of(pump)["covered"], assertion_of(pump)["info-needed"]) == ("conditional", "OTH")


@pytest.mark.parametrize(
    ("version", "system"),
    [
        (None, "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"),
        ("2.0", "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"),
        ("2.1", "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"),
        ("2.2", "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"),
    ],
)
def test_card_topics_are_in_the_card_type_system_of_the_callers_crd_version(
    version: str | None, system: str
) -> None:
    """CRD 2.2.1 moved the card types to terminology.hl7.org; 2.0.1's value set holds them in `temp`."""
    _, answer = sign_with_chart(meeting_chart(), body=versioned(version))
    topics = [card["source"]["topic"] for card in answer["cards"]]
    assert len(topics) >= 3 and {t["system"] for t in topics} == {system}
    assert {t["code"] for t in topics} == {"coverage-info", "clinical-reminder", "guideline"}


def test_a_2_2_client_with_readable_data_gets_the_same_determination() -> None:
    _, older = sign_with_chart(meeting_chart(), body=versioned(None))
    _, newer = sign_with_chart(meeting_chart(), body=versioned("2.2"))
    assert [assertion_of(a)["covered"] for a in older["systemActions"]] == [
        assertion_of(a)["covered"] for a in newer["systemActions"]
    ]


def test_a_2_2_client_gets_conditional_for_documentation_the_chart_lacks() -> None:
    """CRD 2.2's `indeterminate` (reason `technical`) is for data that could not be read; documentation
    the chart does not hold is `conditional` with info-needed, whatever the version."""
    _, answer = sign_with_chart(without_codes(meeting_chart(), "62324"), body=versioned("2.2"))
    pump = next(a for a in answer["systemActions"] if a["resource"]["id"] == "demo-meets-sign-sr-62362")
    subs = assertion_of(pump)
    assert (subs["covered"], subs["info-needed"]) == ("conditional", "OTH")
    assert "coding" not in subs["reason"] and "documentation needed" in subs["reason"]["text"]


def _coverages(body: dict[str, Any], how: str) -> dict[str, Any]:
    """The sample's Coverage prefetch made none, one that ended in 2020, two, or one of a payer this
    service does not serve."""
    bundle = body["prefetch"]["coverage"]
    if how == "none":
        bundle["entry"] = []
    elif how == "ended":
        bundle["entry"][0]["resource"]["period"] = {"start": "2020-01-01", "end": "2020-12-31"}
    elif how == "two":
        second = copy.deepcopy(bundle["entry"][0])
        second["resource"]["id"] += "-2"
        bundle["entry"].append(second)
    else:
        bundle["entry"][0]["resource"]["payor"] = [{"display": "Acme Health Plan"}]
        bundle["entry"][0]["resource"].pop("contained", None)
    return body


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("none", "no active Coverage was sent or found"),
        ("two", "2 active Coverages were sent or found, not one"),
        ("other-payer", "the Coverage's payer is not one this service answers for"),
    ],
)
def test_a_2_2_call_not_for_one_coverage_of_a_served_payer_is_400(how: str, why: str) -> None:
    """CRD 2.2 §hook-13: a call is sent for its one primary Coverage; none, several, or one whose payer
    this endpoint does not serve is a 400 (Inferno review C). A 2.0.1 call is answered for each active
    Coverage it carries, but with none, a primary hook has no coverage information to give: 400 too
    (`test_a_primary_hook_with_no_coverage_is_400_in_every_version`). One Coverage that has ended is
    answered not covered (tests/unit/test_no_active_coverage.py)."""
    app = create_app(open_settings(), catalog())
    body = _coverages(versioned("2.2"), how)
    refused = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    issue = assert_outcome(refused, 400, "prefetch.coverage")
    assert issue["diagnostics"].startswith(f"prefetch.coverage: {why}")
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    assert (record["http_status"], record["response"]) == (400, refused.get_json())
    answered = post_json(
        app.test_client(), "/cds-services/idds-crd-order-sign", _coverages(versioned(None), how)
    )
    assert answered.status_code == (400 if how == "none" else 200)  # no Coverage: I-6


INFERNO_BODIES = Path(__file__).resolve().parents[3] / "shared" / "inferno-crd" / "preset-bodies"
KIT_PRIMARY = (
    "order_sign_request_bodies_1",
    "appointment_book_request_bodies_1",
    "order_dispatch_request_bodies_1",
)


@pytest.mark.parametrize("version", [None, "2.1"])
@pytest.mark.parametrize("coverage", ["null", "empty"])
@pytest.mark.parametrize(
    "name", ["order-sign-implant-demo-meets", "appointment-book-62362-demo-meets", *KIT_PRIMARY]
)
def test_a_primary_hook_with_no_coverage_is_400_in_every_version(
    name: str, coverage: str, version: str | None
) -> None:
    """A primary hook's answer SHALL carry coverage information unless erroring (§hook-16; CRD 2.0.1
    §8.1), and coverage information names a Coverage: with none sent or found, the EHR is told it
    could not be looked at (400 naming the Coverage), not answered `{"cards": []}`, which says
    "nothing to say" (review s16 inferno I-6). Pump orders and any other (the Inferno kit's) alike."""
    kit = INFERNO_BODIES / f"{name}.json"
    if not name.endswith("demo-meets") and not kit.is_file():
        pytest.skip(f"the Inferno CRD test data is not beside the repository (looked for {kit})")
    body = (
        packaged_sample(name) if name.endswith("demo-meets") else json.loads(kit.read_text(encoding="utf-8"))
    )
    body["prefetch"]["coverage"] = (
        None if coverage == "null" else {"resourceType": "Bundle", "type": "searchset"}
    )
    if version is not None:
        body.setdefault("extension", {})["davinci-crd.requestedVersion"] = version
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    refused = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", body)
    issue = assert_outcome(refused, 400, "prefetch.coverage")
    assert issue["diagnostics"].startswith("prefetch.coverage: no active Coverage was sent or found")


def test_a_secondary_hook_with_no_coverage_still_says_so_on_a_card() -> None:
    """order-select may answer with nothing (§hook-17): with no Coverage, a pump order is told on a card
    that its coverage rules were not checked, as before."""
    body = packaged_sample("order-select-62362-demo-meets")
    body["prefetch"]["coverage"] = None
    answer = post_json(
        create_app(open_settings(), catalog(), client_factory=no_client).test_client(), SELECT_URL, body
    )
    assert answer.status_code == 200
    assert [c["summary"] for c in answer.get_json()["cards"]] == [
        "No active coverage found: coverage rules for 62362 were not checked"
    ]


CALL_AT = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)  # 22:00 on 31 December 2026 in New York


@pytest.mark.parametrize(("zone", "judged"), [("UTC", False), ("America/New_York", True)])
def test_a_coverage_ending_the_day_before_the_call_is_not_judged_on_the_services_day(
    monkeypatch: pytest.MonkeyPatch, zone: str, judged: bool
) -> None:
    """Contract §6, "the single relevant Coverage": one whose period ended is not (contract review s17
    F5). The call's day is the service's (its `timezone`, service/call_day.py): a Coverage to 31
    December still holds at 22:00 in New York, not on UTC's 1 January."""
    monkeypatch.setattr("service.call_day._now", lambda: CALL_AT)
    body = versioned(None)
    body["prefetch"]["coverage"]["entry"][0]["resource"]["period"] = {
        "start": "2020-01-01",
        "end": "2026-12-31",
    }
    app = create_app(open_settings(timezone=zone), catalog())
    answered = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answered.status_code == 200
    covered = {assertion_of(a)["covered"] for a in answered.get_json()["systemActions"]}
    if not judged:  # no Coverage in force: not covered, no active coverage (inferno s18 K-1)
        assert covered == {"not-covered"}
        return
    assert "not-covered" not in covered
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    assert record["payers"] and record["payers"][0]["policy_id"]


@pytest.mark.parametrize(
    ("end", "zone", "judged"),
    [
        ("2026-12-31T23:59:59-05:00", "UTC", True),  # 04:59:59 UTC on 1 January: still in force at 03:00
        ("2026-12-31T21:00:00-05:00", "America/New_York", False),  # ended at 02:00 UTC, an hour before
    ],
)
def test_a_coverage_period_ending_at_an_instant_is_judged_at_the_calls_instant(
    monkeypatch: pytest.MonkeyPatch, end: str, zone: str, judged: bool
) -> None:
    """A dateTime `end` is an instant, compared with the call's instant whatever the service's time zone
    (session review s17 F-8): a plan ending 23:59:59 in New York was out of force for a UTC service's
    call at 03:00 UTC, and one that ended at 21:00 there still held at 22:00, because each end was read
    by its own calendar date."""
    monkeypatch.setattr("service.call_day._now", lambda: CALL_AT)
    body = versioned(None)
    body["prefetch"]["coverage"]["entry"][0]["resource"]["period"] = {"start": "2020-01-01", "end": end}
    app = create_app(open_settings(timezone=zone), catalog())
    answered = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answered.status_code == 200
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    [payer] = record["payers"]
    # ended: answered not covered, no active coverage (inferno review s18 K-1), judged by no policy
    assert (payer["policy_id"] is not None) == judged, payer
    assert ({a["covered"] for a in record["assertions"]} == {"not-covered"}) != judged


def test_an_unknown_requested_version_is_400() -> None:
    response = post_json(
        create_app(open_settings(), catalog()).test_client(),
        "/cds-services/idds-crd-order-sign",
        versioned("3.0"),
    )
    assert_outcome(response, 400, "extension.davinci-crd.requestedVersion")


def test_discovery_advertises_the_served_versions() -> None:
    """More than one, so a CRD 2.2 client names the version it wants (§dev-2, §dev-3): with 2.2 alone
    advertised it could omit it and be answered as a 2.0.1 client (UM review UM-3)."""
    app = create_app(open_settings(), catalog())
    services = app.test_client().get("/cds-services").get_json()["services"]
    assert all(s["extension"]["davinci-crd.version"] == ["2.1", "2.2"] for s in services)


# --------------------------------------------------------------------------- suggested orders


@pytest.mark.parametrize("user", [None, "PractitionerRole/pain-clinic-md"])
def test_the_proposed_trial_is_a_complete_crd_order(user: str | None) -> None:
    """CRD profile-servicerequest: status, intent, code, subject, authoredOn, requester: the hook's
    user, who places the order (on the ordering hooks a practitioner: any other user is refused there,
    `service/hooks/contexts.py`; the dispatch performer or a patient booking is offered no orders,
    hooks review H7)."""
    chart = without_codes(meeting_chart(), "62324")  # no trial on the chart
    body = copy.deepcopy(sign_body())
    body["context"]["encounterId"] = "enc-1"
    if user is not None:
        body["context"]["userId"] = user
    _, answer = sign_with_chart(chart, body=body)
    [proposal] = [c for c in answer["cards"] if "suggestions" in c]
    for suggestion in proposal["suggestions"]:
        [action] = suggestion["actions"]
        order = action["resource"]
        assert (order["status"], order["intent"]) == ("draft", "order")
        assert order["subject"] == {"reference": "Patient/demo-meets"}
        assert order["requester"] == {"reference": body["context"]["userId"]}
        assert order["encounter"] == {"reference": "Encounter/enc-1"}
        assert order["authoredOn"] and order["code"]["coding"][0]["code"].startswith("623")


def test_a_2_2_client_is_asked_for_the_documentation_the_readable_chart_lacks() -> None:
    """Open both for data that could not be read and for documentation the chart lacks (no psychological
    evaluation): under 2.2 too the answer asks for the documentation (doc-needed launches DTR); only a
    determination open for unread data alone asks for none (s35 review R7)."""
    chart = without_codes(meeting_chart(), "90791")
    for version in (None, "2.2"):
        _, answer = sign_with_chart(chart, body=versioned(version), failing=("MedicationRequest",))
        pump = next(a for a in answer["systemActions"] if a["resource"]["id"] == "demo-meets-sign-sr-62362")
        assert assertion_of(pump).get("doc-needed") == "clinical", version


# --------------------------------------------------------------------------- what each hook's answer carries

ORDERING = {"order-select", "order-sign"}  # the hooks whose user places the order


def implant_call(hook: str, chart: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer of `hook` about the sample patient's 62362 implant against a FHIR server holding
    `chart`: drafted on order-select/-sign, signed (active) on the hooks that come after."""
    if hook in ORDERING:
        body = select_body() if hook == "order-select" else sign_body()
    elif hook == "order-dispatch":
        body = sample("order-dispatch-62362-demo-meets")
    elif hook == "appointment-book":
        booked = REQUESTS_DIR / "appointment-book-62362-demo-meets.json"
        raw = json.loads(booked.read_text(encoding="utf-8"))
        body = as_queried(copy.deepcopy(raw))
        body["context"]["appointments"] = raw["context"]["appointments"]  # the booked order in the call
    else:
        body = sample(f"{hook}-demo-meets")
        chart = [*chart, open_pump_order("active")]
    return sign_with_chart(chart, body=body)[1]


def test_the_registry_says_whose_user_places_the_order() -> None:
    assert {s.hook for s in SERVICES if s.behaviour.places_order} == ORDERING


@pytest.mark.parametrize("hook", [s.hook for s in SERVICES])
def test_only_the_user_placing_the_order_is_offered_orders_and_what_to_order_next(hook: str) -> None:
    """The trial proposal and the Instructions card ("request prior authorization") are for whoever
    places the order; on the hooks after it (dispatch to a performer, booking, an encounter, a
    discharge after the implant) the answer is the decision and the policy (hooks review H2, H7)."""
    places_order = service_for_hook(hook).behaviour.places_order
    no_trial = implant_call(hook, without_codes(meeting_chart(), "62324"))
    meeting = implant_call(hook, meeting_chart())
    proposals = [c["summary"] for c in no_trial["cards"] if "suggestions" in c]
    reminders = [c["summary"] for c in cards_of(meeting["cards"], "clinical-reminder")]
    for answer in (no_trial, meeting):
        assert cards_of(answer["cards"]) and cards_of(answer["cards"], "guideline")
    if places_order:
        assert [p.split(" before ")[0] for p in proposals] == ["GEHA: order the trial"]
        assert [r.split(" for ")[0] for r in reminders] == ["GEHA: request prior authorization"]
    else:
        assert proposals == [] and reminders == []
        assert '"requester"' not in json.dumps(no_trial["cards"])  # no order proposed, by the performer least
