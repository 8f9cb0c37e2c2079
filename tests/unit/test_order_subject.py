"""One rule, on every hook that is handed its orders (order-select/-sign, order-dispatch,
appointment-book), for "this order is another patient's" (review25a M1): only a subject (first patient
link) that clearly names a Patient of another id, or this id on another server, sets an order aside.
Before, order-dispatch and appointment-book set aside as "an order for another patient" any order whose
subject was not this patient written as a reference (identifier or display only, an unresolved urn),
taking its coverage information away; and every hook called a Group, Location or Device subject
(which R4 ServiceRequest.subject allows) another patient. The conformance checker reads the same rule
(sign_with_chart checks every answer with it)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from unittest.mock import ANY

import pytest

from service.app import create_app
from service.appointments import whose_appointment
from service.demo.runner import request_files
from service.fhir.client import SearchResult
from service.hooks.models import REPEATING_PRIMITIVES, malformed_order
from service.references import malformed_patient_link, names_another_patient
from service.shapes import reference_of
from tests.builders import catalog, meeting_chart
from tests.calls import sample, sign_with_chart
from tests.conformance import check_response
from tests.contract_support import ChartServer
from tests.support import (
    FHIR_SERVER,
    RecordingFactory,
    as_queried,
    assert_outcome,
    no_client,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

OTHER_SERVER = "https://elsewhere.example.org/fhir"
MEETS = "GEHA: 62362 meets all 14 coverage criteria"


def _select() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    body = select_body()
    orders = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if "62362" in json.dumps(e["resource"].get("code"))
    ]
    return body, orders


def _dispatch() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    body = sample("order-dispatch-62362-demo-meets")
    bundle = body["prefetch"]["dispatchedServiceRequests"]
    return body, [e["resource"] for e in bundle["entry"]]


def _book() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    name = "appointment-book-62362-demo-meets"
    raw = json.loads(next(p for p in request_files() if p.stem == name).read_text(encoding="utf-8"))
    body = {**as_queried(raw), "context": raw["context"]}  # the booked order in the call, not read
    orders = []
    for entry in body["context"]["appointments"]["entry"]:
        if (order := entry["resource"])["resourceType"] == "ServiceRequest":
            entry["fullUrl"] = f"{FHIR_SERVER}/ServiceRequest/{order['id']}"  # the server the call names
            orders.append(order)
    return body, orders


HOOKS: dict[str, Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]]] = {
    "order-select": _select,
    "order-dispatch": _dispatch,
    "appointment-book": _book,
}
THIS_PATIENTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "identifier-only": lambda p: {"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}},
    "display-only": lambda p: {"display": "Demo Meets"},
    "unresolved-urn": lambda p: {"reference": "urn:uuid:7d1f3f0e-2b0c-4a49-8a43-8f3e2a7d9c10"},
    "this-server-url": lambda p: {"reference": f"{FHIR_SERVER}/Patient/{p}"},
    "group": lambda p: {"reference": "Group/g1"},
    "location": lambda p: {"reference": "Location/l1"},
    "device": lambda p: {"reference": "Device/d1"},
}
ANOTHER_PATIENTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "another-id": lambda p: {"reference": "Patient/someone-else"},
    "another-server-same-id": lambda p: {"reference": f"{OTHER_SERVER}/Patient/{p}"},
}


def _answer(hook: str, subject: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    body, orders = HOOKS[hook]()
    for order in orders:
        order["subject"] = subject(body["context"]["patientId"])
    _, answer = sign_with_chart(meeting_chart(), body=body)  # checked by tests/conformance.py too
    return answer


@pytest.mark.parametrize("form", list(THIS_PATIENTS))
@pytest.mark.parametrize("hook", list(HOOKS))
def test_an_order_whose_subject_names_no_other_patient_is_judged_on_every_hook(hook: str, form: str) -> None:
    """The call says whose its orders are; a subject that names no other Patient does not contradict it.
    A Group, Location or Device subject is judged for the call's patient, as it was before a0169dc and
    as an order naming a Group by a Bundle fullUrl already was."""
    answer = _answer(hook, THIS_PATIENTS[form])
    assert answer["cards"][0]["summary"] == MEETS
    assert "another patient" not in json.dumps(answer)
    assert answer.get("systemActions")  # its coverage information is given


@pytest.mark.parametrize("form", list(ANOTHER_PATIENTS))
@pytest.mark.parametrize("hook", list(HOOKS))
def test_an_order_whose_subject_names_another_patient_is_set_aside_on_every_hook(
    hook: str, form: str
) -> None:
    answer = _answer(hook, ANOTHER_PATIENTS[form])
    summaries = [c["summary"] for c in answer["cards"]]
    assert any(s.endswith("is an order for another patient") for s in summaries), summaries
    assert MEETS not in summaries
    updated = {a["resource"]["resourceType"] for a in answer.get("systemActions", [])}
    assert updated <= {"Appointment"}  # the order takes none (a booked Appointment says it was not checked)


@pytest.mark.parametrize(
    ("subject", "server", "resolved", "another"),
    [
        (None, FHIR_SERVER, None, False),
        ({"reference": "Patient/p1"}, FHIR_SERVER, None, False),
        ({"reference": "Patient/p2"}, FHIR_SERVER, None, True),
        ({"reference": f"{FHIR_SERVER}/Patient/p1/_history/3"}, FHIR_SERVER, None, False),
        ({"reference": f"{OTHER_SERVER}/Patient/p1"}, FHIR_SERVER, None, True),
        ({"reference": f"{OTHER_SERVER}/Patient/p1"}, None, None, False),  # no server: any may name it
        ({"reference": "Group/g1"}, FHIR_SERVER, None, False),
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, None, False),
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, {"resourceType": "Patient", "id": "p2"}, True),
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, {"resourceType": "Patient", "id": "p1"}, False),
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, {"resourceType": "Group", "id": "g1"}, False),
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, {"resourceType": "Patient"}, False),  # no id (review29g)
        ({"reference": "urn:uuid:1"}, FHIR_SERVER, {"resourceType": "Patient", "id": 7}, False),
        ({"display": "Someone Else"}, FHIR_SERVER, None, False),
        # review28e: a link that is not a Reference element, read as `belongs_to_patient` reads it (not
        # valid R4: a string in its place, or an array's items), names another patient however written
        ("Patient/p2", FHIR_SERVER, None, True),
        ("Patient/p1", FHIR_SERVER, None, False),
        (f"{OTHER_SERVER}/Patient/p1", FHIR_SERVER, None, True),
        ([{"reference": "Patient/p2"}], FHIR_SERVER, None, True),
        # review29b LOW 2: an array naming this patient and another is not another patient's (nor this
        # one's: not valid, and reported on this patient's card)
        (["Patient/p1", {"reference": "Patient/p2"}], FHIR_SERVER, None, False),
        ([{"reference": "Patient/p2"}, {"reference": "Patient/p1"}], FHIR_SERVER, None, False),
        (
            [{"reference": "urn:uuid:1"}, "Patient/p1"],
            FHIR_SERVER,
            {"resourceType": "Patient", "id": "p2"},
            False,
        ),
        ([{"reference": "Patient/p2"}, {"reference": "Group/g1"}], FHIR_SERVER, None, True),
        ([{"reference": "Patient/p1"}], FHIR_SERVER, None, False),
        ([{"reference": "urn:uuid:1"}], FHIR_SERVER, {"resourceType": "Patient", "id": "p2"}, True),
        ([], FHIR_SERVER, None, False),
    ],
)
def test_names_another_patient_only_when_the_subject_clearly_names_one(
    subject: Any, server: str | None, resolved: dict[str, Any] | None, another: bool
) -> None:
    order: dict[str, Any] = {"resourceType": "ServiceRequest", "id": "o1"}
    if subject is not None:
        order["subject"] = subject
    assert names_another_patient(order, "p1", server, lambda _: resolved) is another


def test_the_first_patient_link_is_the_one_read() -> None:
    order = {"patient": {"reference": "Patient/p2"}, "for": {"reference": "Patient/p1"}}
    assert names_another_patient(order, "p1") is True


MALFORMED: dict[str, tuple[Any, str, str]] = {  # the link as written, where the 400 points, what it says
    "null": (None, "subject", "must be a Reference, not null"),
    "empty-object": ({}, "subject", "must be a Reference, not an empty object"),
    "string": ("Patient/p1", "subject", "must be a Reference (a JSON object)"),
    "array": ([{"reference": "Patient/p1"}], "subject", "must be a Reference (a JSON object)"),
    "null-reference": ({"reference": None}, "subject.reference", "must be a non-empty string"),
    "blank-reference": ({"reference": " "}, "subject.reference", "must be a non-empty string"),
    "empty-reference": ({"reference": ""}, "subject.reference", "must be a non-empty string"),
    # review26d: a Reference holding only nulls holds nothing, as {} does; and one null or empty beside
    # a good reference was sent back in the order's update as it came
    "null-display": ({"display": None}, "subject.display", "must hold a value, not null or empty"),
    "null-identifier": ({"identifier": None}, "subject.identifier", "must hold a value, not null or empty"),
    "empty-display-beside": (
        {"reference": "Patient/p1", "display": ""},
        "subject.display",
        "must hold a value, not null or empty",
    ),
    # review26d: a Patient by no valid id (read as naming none, it was judged for the call's patient)
    "invalid-patient-id": (
        {"reference": "Patient/s\u00f3meone"},
        "subject.reference",
        "must be a valid reference",
    ),
    "overlong-patient-id": (
        {"reference": "Patient/" + "x" * 100_000},
        "subject.reference",
        "must be a valid",
    ),
    # review26h: an earlier `Patient/` of a reference that is no URL (4337504 read only the last one, so
    # this was read as naming no Patient and judged for the call's patient again)
    "invalid-patient-before-another": (
        {"reference": "Patient/s\u00f3meone/Patient/p2"},
        "subject.reference",
        "must be a valid reference",
    ),
    "patient-in-a-query-before-another": (
        {"reference": "Patient/p2?x=/Patient/p1"},
        "subject.reference",
        "must be a valid reference",
    ),
    # ehr26: white space before it (which parse_reference reads past) slipped the check of its id
    "invalid-patient-id-after-a-space": (
        {"reference": " Patient/s\u00f3meone"},
        "subject.reference",
        "must be a valid reference",
    ),
    "invalid-patient-id-after-a-tab-on-a-server": (
        {"reference": "\thttps://ehr.example/fhir/Patient/s\u00f3meone"},
        "subject.reference",
        "must be a valid reference",
    ),
}


def _sign() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    body = sign_body()
    drafts = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    return body, [r for r in drafts if "62362" in json.dumps(r.get("code"))]


# every hook whose call carries its orders: where it holds them (a Bundle, by its path in the request)
CARRIED: dict[str, tuple[Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]], str]] = {
    "order-select": (_select, "context.draftOrders"),
    "order-sign": (_sign, "context.draftOrders"),
    "appointment-book": (_book, "context.appointments"),
    "order-dispatch": (_dispatch, "prefetch.dispatchedServiceRequests"),  # the dispatched order prefetched
}


@pytest.mark.parametrize("form", list(MALFORMED))
@pytest.mark.parametrize("hook", list(CARRIED))
def test_an_order_of_the_call_whose_subject_is_no_reference_is_a_400_naming_it(hook: str, form: str) -> None:
    """patient25: a draft order with `subject: null` (or a subject that is no Reference) was read as an
    order without one, judged for the call's patient, and sent back in its coverage-information update
    with the null (CDS Hooks: no element is null; the update must be the order as sent, valid: CRD
    §resp-37, §resp-47). It is bad input, refused as the call's other malformed elements are: 400 with an
    OperationOutcome naming the field, on every hook whose orders the call carries (a dispatched order
    when prefetched)."""
    written, where, must = MALFORMED[form]
    _assert_refused(hook, "subject", written, where, must)


def _assert_refused(
    hook: str, element: str, written: Any, where: str, must: str, beside: Mapping[str, Any] | None = None
) -> None:
    """The call's pump order (its first), `element` written so (and the elements `beside` it), is a 400
    naming `where` in it."""
    make, bundle_path = CARRIED[hook]
    body, orders = make()
    order = orders[0]
    bundle: dict[str, Any] = body
    for part in bundle_path.split("."):
        bundle = bundle[part]
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"] is order)
    if written is ...:  # absent
        del order[element]
    else:
        order[element] = written
    order.update(beside or {})
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    field = f"{bundle_path}.entry[{index}].resource.{where}"
    issue = assert_outcome(response, 400, field)
    assert issue["diagnostics"].startswith(f"{field} {must}"), issue


EXTENSIONS: dict[str, tuple[Any, str, str]] = {  # as for MALFORMED
    "object": ({"url": "http://ehr.example/x"}, "extension", "must be an array of extensions"),
    "item": ([{"url": "http://ehr.example/x"}, "x"], "extension[1]", "must be an extension (a JSON object)"),
}


@pytest.mark.parametrize("form", list(EXTENSIONS))
@pytest.mark.parametrize("hook", list(CARRIED))
def test_an_order_of_the_call_whose_extension_is_no_array_of_extensions_is_a_400_naming_it(
    hook: str, form: str
) -> None:
    """The answer's update is the order as sent with coverage information among its `extension`: one
    that is no array of objects cannot be kept as it is. A draft's was refused; a dispatched order the
    EHR prefetched, the call's own order too (62ed0a0), was judged ('could not be checked — the EHR's
    data was not available', for `{"url": …}`)."""
    _assert_refused(hook, "extension", *EXTENSIONS[form])


@pytest.mark.parametrize("form", list(THIS_PATIENTS))
def test_a_subject_that_is_a_reference_is_well_formed_whatever_it_names(form: str) -> None:
    """The 400 is for a link that is no Reference, never for one naming no Patient (those are judged)."""
    order = {"resourceType": "ServiceRequest", "id": "o1", "subject": THIS_PATIENTS[form]("p1")}
    assert malformed_patient_link(order) is None
    assert malformed_patient_link({"resourceType": "ServiceRequest", "id": "o1"}) is None  # absent


@pytest.mark.parametrize(
    "reference",
    ["https://ehr.example/Patient/fhir/Patient/p1", "https://ehr.example/Patient/fhir/Patient/p1/_history/2"],
)
def test_a_server_whose_address_holds_a_patient_folder_is_read_by_the_reference_s_end(reference: str) -> None:
    """review26g: the Patient a reference names is its last `Patient/…`, as `parse_reference` reads it; a
    valid reference on such a server is no 400."""
    order = {"resourceType": "ServiceRequest", "id": "o1", "subject": {"reference": reference}}
    assert malformed_patient_link(order) is None
    order["subject"] = {"reference": reference.replace("/p1", "/s\u00f3meone")}
    assert malformed_patient_link(order) == (".subject.reference", ANY)


ORDER_CODES = {"pump": "62362", "office-visit": "99213"}


@pytest.mark.parametrize("what", list(ORDER_CODES))
@pytest.mark.parametrize("hook", [*HOOKS, "order-sign"])
def test_another_patients_order_is_reported_by_one_rule_on_every_hook(hook: str, what: str) -> None:
    """ehr26: an order of another patient is reported ('Coverage not checked', a warning) when it is one
    this service has rules for (`infusates.for_a_pump`), on every hook that is handed its orders: a
    dispatched or booked office visit (99213) of another patient got the warning while the same order
    as a draft got none. A pump order of theirs gets it on every hook."""
    body, orders = CARRIED[hook][0]()
    for order in orders:
        order["subject"] = {"reference": "Patient/someone-else"}
        order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": ORDER_CODES[what]}]}
    if hook == "order-sign":  # the order alone signed, as it alone is selected, dispatched or booked
        entries = body["context"]["draftOrders"]["entry"]
        body["context"]["draftOrders"]["entry"] = [e for e in entries if e["resource"] is orders[0]]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    reported = [c for c in answer["cards"] if "for another patient" in c["summary"]]
    assert [c["indicator"] for c in reported] == (["warning"] if what == "pump" else []), answer["cards"]
    if (
        hook == "appointment-book"
    ):  # not reported or reported, the Appointment's coverage information says why
        (booking,) = [a["resource"] for a in answer["systemActions"]]
        assert "(it is an order for another patient)" in json.dumps(booking["extension"])


def _read_from_server(hook: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the call, its pump order) where the order is not in the call but read from the EHR's FHIR server:
    a dispatched order not prefetched, read by id; a booked ServiceRequest read by the Appointment's
    `basedOn`."""
    make = {"order-dispatch": _dispatch, "appointment-book": _book}[hook]
    body, [order] = make()
    if hook == "order-dispatch":
        del body["prefetch"]["dispatchedServiceRequests"]
    else:
        entries = body["context"]["appointments"]["entry"]
        body["context"]["appointments"]["entry"] = [e for e in entries if e["resource"] is not order]
    return body, order


def _answered_reading(body: dict[str, Any], held: dict[str, Any]) -> dict[str, Any]:
    """The answer to `body` from an EHR whose FHIR server holds the meeting chart and the order `held`."""
    patient = {"reference": f"Patient/{body['context']['patientId']}"}
    chart = [{**r, "subject": patient} for r in meeting_chart()]
    server = RecordingFactory(ChartServer([*chart, held]))
    app = create_app(open_settings(), catalog(), client_factory=server)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert ("read", f"ServiceRequest/{held['id']}") in server.client.calls
    answer: dict[str, Any] = response.get_json()
    assert check_response(answer, body, [held]) == []
    return answer


NOT_VALID_SUMMARY = {
    "order-dispatch": "Coverage not checked: the dispatched order is not valid FHIR as the EHR's FHIR server"
    " holds it (subject must be a Reference, not null)",
    "appointment-book": "Coverage not checked: the order this appointment is for is not valid FHIR as the"
    " EHR's FHIR server holds it",  # its aside left out: a summary is at most 140 characters
}


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_an_order_read_from_the_ehr_s_server_whose_subject_is_null_is_set_aside_not_judged(hook: str) -> None:
    """ehr26: a dispatched order read by id, or a booked ServiceRequest read by `basedOn`, with `subject:
    null` was judged ('meets all 14') and sent back in the update with the null. It is the server's data,
    not the request's (no 400): it is set aside, said on a card naming the element, and given no coverage
    information; a booked one's Appointment says why it was not checked."""
    body, order = _read_from_server(hook)
    order["subject"] = None
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert (card["summary"], card["indicator"]) == (NOT_VALID_SUMMARY[hook], "info")
    assert "(subject must be a Reference, not null)" in card["detail"]
    assert card["detail"].endswith(f"then {'book' if hook == 'appointment-book' else 'dispatch it'} again.")
    updated = [a["resource"] for a in answer.get("systemActions", [])]
    assert [r["resourceType"] for r in updated] == (["Appointment"] if hook == "appointment-book" else [])
    for booking in updated:
        assert "it is not valid FHIR as the EHR's FHIR server holds it" in json.dumps(booking["extension"])


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_a_valid_order_read_from_the_ehr_s_server_is_judged(hook: str) -> None:
    """The control: the same order with its subject is judged and given coverage information."""
    body, order = _read_from_server(hook)
    answer = _answered_reading(body, order)
    assert answer["cards"][0]["summary"] == MEETS
    assert f"ServiceRequest/{order['id']}" in {reference_of(a["resource"]) for a in answer["systemActions"]}


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_a_non_pump_order_read_not_valid_is_set_aside_and_reported_whatever_it_orders(hook: str) -> None:
    """ehr27, review27c: an office visit read not valid got no card, as another patient's does (one rule:
    `infusates.for_a_pump`), and it can get no coverage information (it cannot be sent back valid), so
    order-dispatch, a primary hook, answered it with nothing at all (`{"cards": []}`; CRD §hook-16), where
    the valid one gets coverage information. What the EHR holds of the order is to be corrected there, as
    a withdrawn order is not to be sent again: reported whatever it orders, as a withdrawn one is. It is
    not judged, nor sent back with its null."""
    body, order = _read_from_server(hook)
    order["subject"] = None
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert card["summary"] == NOT_VALID_SUMMARY[hook] and card["indicator"] == "info", card
    assert card["detail"].endswith(
        {"order-dispatch": "dispatch it again.", "appointment-book": "book again."}[hook]
    )
    assert "ServiceRequest" not in {a["resource"]["resourceType"] for a in answer.get("systemActions", [])}


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_a_withdrawn_order_read_not_valid_is_reported_as_withdrawn(hook: str) -> None:
    """review27c: validity was asked before the status, so a revoked office visit read with `requester:
    null` was set aside as not valid and, not a pump order, unreported, where revoked alone it is reported
    whatever it orders (do not send it again). The status is asked first; neither is judged nor sent back."""
    body, order = _read_from_server(hook)
    order.update(status="revoked", requester=None)
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert card["summary"].startswith("Coverage not checked: ") and card["summary"].endswith(" was revoked")
    assert "ServiceRequest" not in {a["resource"]["resourceType"] for a in answer.get("systemActions", [])}


UNKNOWN_MODIFIER = {
    "url": "https://ehr.example/fhir/StructureDefinition/status-means-active",
    "valueBoolean": True,
}


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
@pytest.mark.parametrize(
    "modifiers, said",
    [
        ([UNKNOWN_MODIFIER], "Coverage not checked: the order carries an extension that changes its meaning"),
        (UNKNOWN_MODIFIER, "is not valid FHIR as the EHR's FHIR server holds it"),  # no array: malformed
    ],
    ids=["not-understood", "malformed"],
)
def test_a_revoked_order_read_with_a_modifier_of_its_own_is_not_read_as_revoked(
    hook: str, modifiers: Any, said: str
) -> None:
    """review27d: a revoked order read from the EHR's FHIR server with a `modifierExtension` of its own was
    reported 'was revoked', whether the modifier was one not understood or none of FHIR's. A modifier may
    change what the status means (this one says so), and FHIR forbids reading a resource past a modifier
    not understood: the status is not read as withdrawn (a withdrawn order is reported whatever it is,
    `requester: null` and all, but not whatever it says); the order is the one with a modifier not
    understood, or not valid, that it would be with any other status."""
    body, order = _read_from_server(hook)
    order.update(status="revoked", modifierExtension=modifiers)
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert said in card["summary"] and "revoked" not in card["summary"], card["summary"]


NO_VALUE: dict[
    str, tuple[str, Any, str, str]
] = {  # the element, as written; where the 400 points, what it says
    "null": ("requester", None, "requester", "must hold a value, not null"),
    "empty-object": ("requester", {}, "requester", "must hold a value, not be empty"),
    "null-member": ("requester", {"reference": None}, "requester.reference", "must hold a value, not null"),
    "empty-array": ("note", [], "note", "must hold a value, not be empty"),
    "null-item": ("reasonCode", [None], "reasonCode[0]", "must hold a value, not null"),
    "null-deep": (
        "note",
        [{"text": "x", "authorReference": {"display": None}}],
        "note[0].authorReference.display",
        "must hold a value, not null",
    ),
}


@pytest.mark.parametrize("form", list(NO_VALUE))
@pytest.mark.parametrize("hook", list(CARRIED))
def test_an_order_of_the_call_holding_a_null_or_empty_element_is_a_400_naming_it(
    hook: str, form: str
) -> None:
    """ehr26/review26d: `requester: null` (or any element of the call's order null, `{}` or `[]`) was
    judged and sent back in the coverage-information update as it came (CDS Hooks: no element is null
    or empty; the update must be the order as sent, and valid: CRD §resp-37, §resp-47). Refused as a
    null subject is (0317706), on every hook whose orders the call carries."""
    element, written, where, must = NO_VALUE[form]
    _assert_refused(hook, element, written, where, must)


def test_a_null_in_a_primitive_s_array_beside_its_extensions_is_valid_fhir() -> None:
    """FHIR JSON writes a repeating primitive's item that has only an extension as null in the values'
    array (and one with no extension as null in the extensions'): such an order is judged and sent back
    as it came (tests/conformance.py's check of the answer, stricter, would call the null an empty value)."""
    body, [order] = _sign()
    order["instantiatesUri"] = ["https://ehr.example/protocol", None]
    order["_instantiatesUri"] = [None, {"extension": [{"url": "https://ehr.example/x", "valueString": "y"}]}]
    app = create_app(open_settings(), catalog(), client_factory=no_client)  # its chart prefetched
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    [updated] = [
        a["resource"]
        for a in response.get_json()["systemActions"]
        if a["resource"] == {**order, "extension": ANY}
    ]
    assert updated["instantiatesUri"] == ["https://ehr.example/protocol", None]  # sent back as it came


AN_EXTENSION = {"extension": [{"url": "https://ehr.example/x", "valueString": "y"}]}
# R4's repeating primitives REPEATING_PRIMITIVES missed (review28a), in a resource an order may contain:
# R4's own, of the resources R4B dropped (MedicinalProduct.specialMeasures, SubstancePolymer.modification),
# and TestScript.metadata.capability's in every release (its module was never read: "testscript" starts
# with "tests")
R4_REPEATING_PRIMITIVES: dict[str, dict[str, Any]] = {
    "specialMeasures": {"resourceType": "MedicinalProduct", "id": "held"},
    "modification": {"resourceType": "SubstancePolymer", "id": "held"},
    "link": {"resourceType": "TestScript", "id": "held", "url": "https://ehr.example/ts", "name": "ts"},
    "origin": {"resourceType": "TestScript", "id": "held", "url": "https://ehr.example/ts", "name": "ts"},
}


@pytest.mark.parametrize("name", list(R4_REPEATING_PRIMITIVES))
def test_a_null_in_any_r4_repeating_primitive_s_array_beside_its_extensions_is_valid_fhir(name: str) -> None:
    """review28a: REPEATING_PRIMITIVES was read from R4B, R5 and STU3 only, and past TestScript, so an
    order containing a resource of R4's with a null FHIR JSON writes in one of these (R4
    json.html#primitive) was refused with a 400 ('must hold a value, not null'): it is judged and sent
    back as it came."""
    body, [order] = _sign()
    values = [1, None] if name == "origin" else ["https://ehr.example/a", None]
    held = {**R4_REPEATING_PRIMITIVES[name], name: values, f"_{name}": [None, AN_EXTENSION]}
    if held["resourceType"] == "TestScript":  # TestScript.metadata.capability's
        capability = {"required": True, "validated": False, "capabilities": "https://ehr.example/cs"}
        capability.update((k, held.pop(k)) for k in (name, f"_{name}"))
        held["metadata"] = {"capability": [capability]}
    order["contained"] = [held]
    app = create_app(open_settings(), catalog(), client_factory=no_client)  # its chart prefetched
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [
        a["resource"]["contained"]
        for a in response.get_json()["systemActions"]
        if a["resource"] == {**order, "extension": ANY}
    ] == [[held]]  # sent back as it came


# nulls FHIR JSON does not write beside a `_` array: (the element, as written; the elements beside it;
# where the 400 points)
NOT_FHIR_JSON_NULLS: dict[str, tuple[str, Any, dict[str, Any], str]] = {
    "both-null": ("instantiatesUri", [None], {"_instantiatesUri": [None]}, "instantiatesUri[0]"),
    "both-null-after-a-value": (
        "instantiatesUri",
        ["https://ehr.example/p", None],
        {"_instantiatesUri": [AN_EXTENSION, None]},
        "instantiatesUri[1]",
    ),
    "past-the-extensions": (
        "instantiatesUri",
        ["https://ehr.example/p", None],
        {"_instantiatesUri": [AN_EXTENSION]},
        "instantiatesUri[1]",
    ),
    "extensions-null-past-the-values": (
        "_instantiatesUri",
        [AN_EXTENSION, None],
        {"instantiatesUri": [None]},
        "_instantiatesUri[1]",
    ),
    "no-primitive-of-fhir-s": ("reasonCode", [None], {"_reasonCode": [AN_EXTENSION]}, "reasonCode[0]"),
    "objects-beside": (  # `category` is a primitive somewhere (R5), a CodeableConcept here
        "category",
        [{"text": "x"}, None],
        {"_category": [None, AN_EXTENSION]},
        "category[1]",
    ),
    "nested": ("instantiatesUri", [[None]], {"_instantiatesUri": [AN_EXTENSION]}, "instantiatesUri[0][0]"),
    "extensions-no-objects": (
        "instantiatesUri",
        ["https://ehr.example/p", None],
        {"_instantiatesUri": [None, "x"]},
        "instantiatesUri[1]",
    ),
}


@pytest.mark.parametrize("form", list(NOT_FHIR_JSON_NULLS))
@pytest.mark.parametrize("hook", list(CARRIED))
def test_a_null_beside_a_primitive_s_extensions_is_taken_only_where_fhir_json_writes_one(
    hook: str, form: str
) -> None:
    """review27c: any null was taken in an array with a `_` sibling array, so an order was judged and
    sent back with nulls FHIR JSON never writes: where the other array's item is null too (or absent), in
    an array of no primitive's (`reasonCode`, objects), in an array inside one. A null is taken only in a
    repeating primitive's values or extensions where the other holds that item; else a 400 naming it."""
    element, written, beside, where = NOT_FHIR_JSON_NULLS[form]
    _assert_refused(hook, element, written, where, "must hold a value, not null", beside)


def test_the_repeating_primitives_are_fhir_s() -> None:
    """Every element FHIR R4B defines as a repeating primitive (fhir.resources models its `_` array as a
    list-typed `<name>__ext` field) is one a null may be written in beside its extensions: none of FHIR
    JSON's own nulls is refused."""
    package = importlib.import_module("fhir.resources.R4B")
    defined = set()
    for module in pkgutil.iter_modules(package.__path__):
        # `tests` is a package; not `testscript`, whose TestScript.metadata.capability holds two
        if module.ispkg or module.name.startswith(("fhirtypes", "_")):
            continue
        for model in vars(importlib.import_module(f"{package.__name__}.{module.name}")).values():
            for name, spec in (getattr(model, "model_fields", None) or {}).items():
                if isinstance(name, str) and name.endswith("__ext") and "List" in str(spec.annotation):
                    defined.add(spec.alias[1:] if spec.alias else name.removesuffix("__ext"))
    assert {"given", "line", "instantiatesUri", "event"} <= defined  # the reading finds them
    assert defined <= REPEATING_PRIMITIVES, sorted(defined - REPEATING_PRIMITIVES)
    assert not {"reasonCode", "note", "identifier", "extension"} & REPEATING_PRIMITIVES


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_an_order_read_from_the_ehr_s_server_holding_a_null_element_is_set_aside(hook: str) -> None:
    """The server's data, not the request's: set aside as an order with a null subject is, never sent
    back with its `requester: null`."""
    body, order = _read_from_server(hook)
    order["requester"] = None
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert card["summary"].startswith("Coverage not checked: ") and "is not valid FHIR" in card["summary"]
    assert "(requester must hold a value, not null)" in card["detail"]
    assert "ServiceRequest" not in {a["resource"]["resourceType"] for a in answer.get("systemActions", [])}


def test_the_look_for_an_empty_element_costs_no_path_an_element() -> None:
    """review27c: `_empty_value` wrote every element's whole path as it went, so an order whose wide
    array lies under a chain of long keys cost the chain's length an item: 0.45 MB of order (30 keys of
    5,000 letters over 100,000 items, a 'null' in a note for it to be walked) took 14.7 GB and 32 s of CPU,
    well within a request's bounds (5 MB, 40 levels, 1 MB strings). A path is now written only for the
    element found. Here 20 keys of 500 letters over 5,000 items: some 50 MB before, under 2 MB now."""
    wide: Any = [0] * 5000
    for level in range(20):
        wide = {chr(ord("a") + level) * 500: wide}
    order = {**sign_body()["context"]["draftOrders"]["entry"][0]["resource"], "_wide": wide}
    order["note"] = [{"text": "null"}]  # text the written order must not hold for the walk to be skipped
    tracemalloc.start()
    try:
        found = malformed_order(order)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is None
    assert peak < 2_000_000, peak
    order["_wide"] = {**order["_wide"], "after": None}  # the path of what is found is still written whole
    assert malformed_order(order) == ("._wide.after", "must hold a value, not null")
    deep = order["_wide"]
    for level in range(19):
        deep = deep[chr(ord("a") + 19 - level) * 500]
    deep["a" * 500][4999] = None
    del order["_wide"]["after"]
    where, must = malformed_order(order) or ("", "")
    assert where == "._wide" + "".join(f".{chr(ord('a') + 19 - k) * 500}" for k in range(20)) + "[4999]"
    assert must == "must hold a value, not null"


def _open_order_prefetched(hook: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An encounter hook's call with its open orders and chart prefetched (the EHR's data, as its FHIR
    server holds it), and its first open order."""
    body = sample(f"{hook}-demo-meets")
    raw = json.loads(next(p for p in request_files() if p.stem == f"{hook}-demo-meets").read_text("utf-8"))
    body["prefetch"] = raw["prefetch"]
    return body, body["prefetch"]["openServiceRequests"]["entry"][0]["resource"]


OPEN_NOT_VALID = {  # the element, as written; what the card says of it
    "requester-null": ("requester", None, "requester must hold a value, not null"),
    "note-empty": ("note", [], "note must hold a value, not be empty"),
    "subject-null": ("subject", None, "subject must be a Reference, not null"),
    "subject-empty": ("subject", {}, "subject must be a Reference, not an empty object"),
}


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
@pytest.mark.parametrize("form", list(OPEN_NOT_VALID))
def test_an_open_order_of_an_encounter_holding_a_null_element_is_set_aside(hook: str, form: str) -> None:
    """review27c: an encounter hook's open order (the EHR's data: prefetched here, as its FHIR server
    holds it) with `requester: null` or `note: []` was judged and sent back in the coverage-information
    update with it, as a dispatched or booked order read from the server was before 8a6b8fb: set aside
    as those are (`appointments.not_to_judge`), said on a card, given no coverage information. One with
    `subject: null` (or `{}`) was dropped without a word, taken for another patient's by the filter
    before that rule (review27c LOW 4): whose it is cannot be told, and it was among the patient's open
    orders, so it is set aside by the same rule."""
    body, order = _open_order_prefetched(hook)
    element, value, said = OPEN_NOT_VALID[form]
    order[element] = value
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert reference_of(order) not in {reference_of(a["resource"]) for a in answer.get("systemActions", [])}
    [card] = answer["cards"]
    assert card["summary"].startswith("Coverage not checked: the open order is not valid FHIR"), card
    assert f"({said})" in card["detail"], card["detail"]
    assert card["detail"].endswith("Correct the order in the EHR."), card["detail"]


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Patient/someone-else"},
        {"reference": "Patient/someone-else", "display": ""},
        {"reference": "Patient/someone-else", "display": None},
    ],
    ids=["valid", "display-empty", "display-null"],
)
def test_an_open_order_naming_another_patient_is_left_out_whether_its_link_is_valid_or_not(
    hook: str, subject: dict[str, Any]
) -> None:
    """review28a: since f8df721 an open order whose patient link is not valid went past the filter to
    `not_to_judge`, which found one naming another patient (`"display": ""` beside its reference) to be
    another patient's: a reason the encounter hooks' cards have no words for, and the call a 500. An
    open order naming another patient is not among this patient's, its link valid or not: left out."""
    body, order = _open_order_prefetched(hook)
    order["subject"] = subject
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"] == []


class _PatientIgnoringServer(ChartServer):
    """A FHIR server that answers a search with every patient's resources of the type, saying (by its
    self link) that it ignored `patient`, as sekmet-fhir does for DeviceRequest."""

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        found = super().search(resource_type, params, first_page)
        return replace(found, scope_ignored=("patient",)) if "patient" in params else found


def test_an_open_order_whose_owner_cannot_be_told_from_a_server_ignoring_patient_is_left_out() -> None:
    """review28a: since f8df721 an open order whose patient link is not valid (`subject: {}`) is set aside
    as one of the patient's not valid: the EHR gave it as the patient's (prefetched, or found by a search
    for the patient). A server that ignores the search's `patient` gives every patient's, so such an
    order there may be anyone's: it was reported on this patient's encounter-start (a card naming it). It
    is left out, as a valid link to another patient is; the patient's own open orders are judged."""
    hook = "encounter-start"
    body = with_fhir(sample(f"{hook}-demo-meets"))
    patient = {"reference": f"Patient/{body['context']['patientId']}"}
    prefetched, _ = _open_order_prefetched(hook)  # its open orders, here on the server instead
    opened = [
        e["resource"]
        for key in ("openServiceRequests", "openDeviceRequests")
        for e in prefetched["prefetch"][key].get("entry", [])
    ]
    stray = {**opened[0], "id": "stray", "subject": {}}
    chart = [{**r, "subject": patient} for r in meeting_chart()] + opened + [stray]
    app = create_app(
        open_settings(), catalog(), client_factory=RecordingFactory(_PatientIgnoringServer(chart))
    )
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert MEETS in summaries, summaries  # the patient's own open pump order, judged
    assert not [s for s in summaries if "not valid FHIR" in s], summaries


def _encounter_cards(hook: str, change: Callable[[dict[str, Any]], None], how: str) -> list[dict[str, Any]]:
    """The cards of `_encounter_answer`."""
    cards: list[dict[str, Any]] = _encounter_answer(hook, change, how)["cards"]
    return cards


def _encounter_answer(hook: str, change: Callable[[dict[str, Any]], None], how: str) -> dict[str, Any]:
    """An encounter hook's answer for demo-meets whose first open order is `change`d, the
    orders given `how`: "prefetched", "searched" from a server that kept to the search's `patient`, or
    "searched-ignoring" one that ignored it (every patient's, `_PatientIgnoringServer`)."""
    prefetched, order = _open_order_prefetched(hook)
    change(order)
    if how == "prefetched":
        body, factory = prefetched, no_client
    else:
        body = with_fhir(sample(f"{hook}-demo-meets"))
        patient = {"reference": f"Patient/{body['context']['patientId']}"}
        opened = [
            e["resource"]
            for key in ("openServiceRequests", "openDeviceRequests")
            for e in prefetched["prefetch"][key].get("entry", [])
        ]
        chart = [{**r, "subject": patient} for r in meeting_chart()] + opened
        server = ChartServer(chart) if how == "searched" else _PatientIgnoringServer(chart)
        factory = RecordingFactory(server)
    app = create_app(open_settings(), catalog(), client_factory=factory)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


ANOTHER_NOT_AN_OBJECT = {
    "string": "Patient/someone-else",
    "array": [{"reference": "Patient/someone-else"}],
    "another-server-string": "https://elsewhere.example.org/fhir/Patient/someone-else",
}


@pytest.mark.parametrize("how", ["prefetched", "searched"])
@pytest.mark.parametrize("form", list(ANOTHER_NOT_AN_OBJECT))
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_naming_another_patient_by_a_link_not_an_object_is_left_out(
    hook: str, form: str, how: str
) -> None:
    """review28e LOW 1: `names_another_patient` read only a Reference object while `belongs_to_patient`
    read a string too, so an open order naming another patient by a string, an array or another server's
    URL as a string was neither this patient's nor another's: as the patient's not valid, it was reported
    on this patient's encounter ("the open order is not valid FHIR ... subject must be a Reference"). It
    names another patient, as `{"reference": "Patient/someone-else"}` does: left out."""

    def naming_another(order: dict[str, Any]) -> None:
        order["subject"] = ANOTHER_NOT_AN_OBJECT[form]

    summaries = [c["summary"] for c in _encounter_cards(hook, naming_another, how)]
    assert not [s for s in summaries if "not valid FHIR" in s], summaries
    assert MEETS not in summaries  # not judged as this patient's either


@pytest.mark.parametrize("how", ["prefetched", "searched"])
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_with_no_subject_is_set_aside_as_one_with_a_null_subject_is(
    hook: str, how: str
) -> None:
    """review28e LOW 2: an open order with no `subject` was left out without a word, where one with
    `subject: null` or `{}` is set aside as not valid, said on a card: the same invalid R4 (subject 1..1),
    and given as the patient's (prefetched, or found by a search that kept to `patient`). Set aside alike."""
    for subject in (None, {}, ...):  # null, empty, absent: one card each, saying what is wrong

        def linked(order: dict[str, Any], subject: Any = subject) -> None:
            if subject is ...:
                del order["subject"]
            else:
                order["subject"] = subject

        cards = _encounter_cards(hook, linked, how)
        [card] = [c for c in cards if "not valid FHIR" in c["summary"]] or [{"detail": str(cards)}]
        assert "(subject must be a Reference, not " in card["detail"], (subject, card["detail"])
        assert MEETS not in [c["summary"] for c in cards]


def test_an_open_order_with_no_subject_from_a_server_ignoring_patient_is_left_out() -> None:
    """The rule f01aa41 kept (review28a): an order whose owner cannot be told is counted the patient's only
    when the EHR gave it as theirs; from a server that ignored `patient` one with no subject is anyone's,
    and left out, as one with `subject: null` is (a control: it was left out before review28e too)."""

    def unlinked(order: dict[str, Any]) -> None:
        del order["subject"]

    summaries = [c["summary"] for c in _encounter_cards("encounter-start", unlinked, "searched-ignoring")]
    assert MEETS not in summaries
    assert not [s for s in summaries if "not valid FHIR" in s], summaries


BOTH_PATIENTS = {
    "this-then-another": lambda p: [{"reference": f"Patient/{p}"}, {"reference": "Patient/someone-else"}],
    "another-then-this": lambda p: [{"reference": "Patient/someone-else"}, {"reference": f"Patient/{p}"}],
}


@pytest.mark.parametrize("how", ["prefetched", "searched", "searched-ignoring"])
@pytest.mark.parametrize("form", list(BOTH_PATIENTS))
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_whose_subject_array_names_this_patient_and_another_is_reported_not_valid(
    hook: str, form: str, how: str
) -> None:
    """review29b LOW 2: since 1606d41 an open order whose subject is an array naming this patient and
    another was another patient's (any item naming one) and left out without a word, where before it got
    the "not valid" card. R4's subject is 1..1: whose it is cannot be told, and it names this patient, so
    it is reported on their card as not valid, from a server that ignored `patient` too (it names them)."""

    def naming_both(order: dict[str, Any]) -> None:
        order["subject"] = BOTH_PATIENTS[form](order["subject"]["reference"].split("/")[-1])

    cards = _encounter_cards(hook, naming_both, how)
    [card] = [c for c in cards if "not valid FHIR" in c["summary"]] or [{"detail": str(cards)}]
    assert "(subject must be a Reference (a JSON object))" in card["detail"], card["detail"]
    assert MEETS not in [c["summary"] for c in cards]


NAMING_NO_PATIENT = [f for f in THIS_PATIENTS if f != "this-server-url"] + ["contained"]
UNTOLD = "names no patient by its subject, so whose order it is cannot be told"


def _naming_no_patient(form: str) -> Callable[[dict[str, Any]], None]:
    def change(order: dict[str, Any]) -> None:
        if form == "contained":
            order["contained"] = [{"resourceType": "Patient", "id": "p1"}]
            order["subject"] = {"reference": "#p1"}
        else:
            order["subject"] = THIS_PATIENTS[form](order["subject"]["reference"].split("/")[-1])

    return change


@pytest.mark.parametrize("how", ["prefetched", "searched"])
@pytest.mark.parametrize("form", NAMING_NO_PATIENT)
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_whose_subject_names_no_patient_is_reported_whose_it_is_cannot_be_told(
    hook: str, form: str, how: str
) -> None:
    """review29e MEDIUM 2: since 8ec4336 an open order the EHR gave as the patient's (prefetched, or found
    by a search that kept to `patient`) whose subject names no Patient this service can tell (an identifier
    or display alone, a Group, Location or Device, a contained Patient, an unresolved `urn:uuid:`) was
    judged for the patient and sent back with their coverage information. R4's `patient` search parameter
    is `subject.where(resolve() is Patient)`: a server keeping to it never returns one, so whose it is
    cannot be told. Not judged, given no coverage information, and said on a card (as an open order not
    valid is), not dropped without a word as before 8ec4336."""
    answer = _encounter_answer(hook, _naming_no_patient(form), how)
    summaries = [c["summary"] for c in answer["cards"]]
    assert MEETS not in summaries, summaries
    [card] = [c for c in answer["cards"] if UNTOLD in c["summary"]] or [{"summary": str(summaries)}]
    assert card["summary"] == f"Coverage not checked: the open order {UNTOLD}", card
    assert card["detail"].endswith(
        "Check in the EHR whose order it is, and that it names the patient it is for."
    )
    assert card["indicator"] == "info"
    assert not [s for s in summaries if "not valid FHIR" in s or "another patient" in s], summaries
    updated = [reference_of(a["resource"]) for a in answer.get("systemActions", [])]
    assert not [r for r in updated if r.startswith("ServiceRequest/")], updated


@pytest.mark.parametrize("how", ["prefetched", "searched"])
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_naming_the_patient_by_the_server_s_url_is_judged(hook: str, how: str) -> None:
    """The control: a subject naming this patient, written as the call's server's URL, is theirs."""

    def by_url(order: dict[str, Any]) -> None:
        order["subject"] = THIS_PATIENTS["this-server-url"](order["subject"]["reference"].split("/")[-1])

    summaries = [c["summary"] for c in _encounter_cards(hook, by_url, how)]
    assert MEETS in summaries, summaries
    assert not [s for s in summaries if UNTOLD in s], summaries


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_whose_urn_names_the_patient_in_its_prefetched_bundle_is_judged(hook: str) -> None:
    """The control: a `urn:uuid:` the prefetched Bundle gives to this patient names them (`_within`)."""
    body, order = _open_order_prefetched(hook)
    uuid = "urn:uuid:0b9a3f7e-2222-4c64-bb8a-4f1f8d7f0c1a"
    patient = {"resourceType": "Patient", "id": order["subject"]["reference"].split("/")[-1]}
    order["subject"] = {"reference": uuid}
    body["prefetch"]["openServiceRequests"]["entry"].append({"fullUrl": uuid, "resource": patient})
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert MEETS in summaries, summaries


ANOTHER_BY_UUID = "urn:uuid:0b9a3f7e-1111-4c64-bb8a-4f1f8d7f0c1a"


def _naming_another_in_its_bundle(body: dict[str, Any], key: str, order: dict[str, Any]) -> None:
    """`order`'s subject a `urn:uuid:` the prefetched Bundle `key` holding it gives to another Patient."""
    order["subject"] = {"reference": ANOTHER_BY_UUID}
    another = {"resourceType": "Patient", "id": "someone-else"}
    body["prefetch"][key]["entry"].append({"fullUrl": ANOTHER_BY_UUID, "resource": another})


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_an_open_order_whose_urn_names_another_patient_in_its_prefetched_bundle_is_left_out(
    hook: str,
) -> None:
    """review29e: since 8ec4336 an open order given as the patient's whose subject names no other patient
    is judged for them, and `_chart` read a `urn:uuid:` subject unresolved, though the prefetched Bundle
    holding the order gave that fullUrl to another Patient: another patient's pump order was judged on this
    patient's encounter and sent back with their coverage information. Read as a draft's is, in its
    Bundle, it names another patient: left out (an unresolved one is judged: the test above)."""
    body, order = _open_order_prefetched(hook)
    _naming_another_in_its_bundle(body, "openServiceRequests", order)
    response = post_json(
        create_app(open_settings(), catalog()).test_client(), f"/cds-services/idds-crd-{hook}", body
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert MEETS not in [c["summary"] for c in answer["cards"]]
    assert reference_of(order) not in [reference_of(a["resource"]) for a in answer.get("systemActions", [])]


def test_a_prefetched_dispatched_order_whose_urn_names_another_patient_in_its_bundle_is_another_s() -> None:
    """review29e (before 8ec4336 too): `_dispatched` asked `not_to_judge` with no resolver, so a prefetched
    dispatched order whose `urn:uuid:` subject its Bundle gives to another Patient was judged for the call's
    patient, where the same order drafted, or booked in the call's Bundle, is "an order for another
    patient"."""
    body = sample("order-dispatch-62362-demo-meets")
    body["prefetch"] = json.loads(
        next(p for p in request_files() if p.stem == "order-dispatch-62362-demo-meets").read_text("utf-8")
    )["prefetch"]
    order = body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"]
    _naming_another_in_its_bundle(body, "dispatchedServiceRequests", order)
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-dispatch", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert reference_of(order) not in [reference_of(a["resource"]) for a in answer.get("systemActions", [])]
    assert [c for c in answer["cards"] if "another patient" in c["summary"] + c.get("detail", "")], answer


@pytest.mark.parametrize("form", ["identifier-only", "group"])
def test_an_open_order_naming_no_patient_from_a_server_ignoring_patient_is_left_out(form: str) -> None:
    """The control (review28a's rule, kept): from a server that ignored `patient` such an order may be any
    patient's, and is left out without a card."""

    def naming_no_patient(order: dict[str, Any]) -> None:
        order["subject"] = THIS_PATIENTS[form]("")

    summaries = [
        c["summary"] for c in _encounter_cards("encounter-start", naming_no_patient, "searched-ignoring")
    ]
    assert MEETS not in summaries
    assert not [s for s in summaries if "not valid FHIR" in s], summaries


@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_an_order_read_from_the_ehr_s_server_with_no_subject_is_set_aside_not_judged(hook: str) -> None:
    """lows29 Q2: a dispatched order read by id, or a booked ServiceRequest read by `basedOn`, holding no
    `subject` was judged for the call's patient, though R4 requires it (1..1) as it requires the encounter
    hooks' open orders to hold one: the EHR's data as its FHIR server holds it, not valid, set aside as one
    with `subject: null` is (`appointments.not_to_judge_as_held`, the one place that says so)."""
    body, order = _read_from_server(hook)
    del order["subject"]
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert card["summary"].startswith(NOT_VALID_SUMMARY[hook].split(" (")[0]), card["summary"]
    assert card["indicator"] == "info"
    assert "(subject must be a Reference, not absent)" in card["detail"], card["detail"]
    updated = [a["resource"] for a in answer.get("systemActions", [])]
    assert [r["resourceType"] for r in updated] == (["Appointment"] if hook == "appointment-book" else [])


@pytest.mark.parametrize("hook", list(CARRIED))
def test_an_order_the_call_hands_over_with_no_subject_is_a_400_naming_it(hook: str) -> None:
    """review29e (subject29 Q1): a draft order (a dispatched order prefetched, a booked one in the call's
    Bundle) with no `subject` was judged and its update sent back without one, not valid R4 (subject 1..1).
    CRD requires the update valid against its profile (§resp-47) and forbids adding the element (§resp-37):
    no conformant answer exists, so it is bad input, as `subject: null` is: a 400 naming the element."""
    _assert_refused(hook, "subject", ..., "subject", "must be a Reference, not absent")


@pytest.mark.parametrize("written", ["patient", "for"])
@pytest.mark.parametrize("hook", list(CARRIED))
def test_an_order_of_the_call_holding_its_link_under_another_element_is_a_400_naming_it(
    hook: str, written: str
) -> None:
    """review29e LOW 3: a ServiceRequest holding `patient` or `for` (elements R4 does not define for it) in
    place of `subject` passed the table (any of subject/patient/beneficiary/for counted as the link) and was
    judged, its update sent back without a subject."""
    _assert_refused(
        hook,
        "subject",
        ...,
        written,
        "is no element of ServiceRequest: its patient link is subject",
        beside={written: {"reference": "Patient/demo-meets"}},
    )


@pytest.mark.parametrize("written", ["patient", "for"])
@pytest.mark.parametrize("hook", ["order-dispatch", "appointment-book"])
def test_an_order_read_from_the_ehr_s_server_holding_its_link_under_another_element_is_set_aside(
    hook: str, written: str
) -> None:
    """review29e LOW 3, the EHR's data: set aside as not valid (no 400), said on a card naming the element."""
    body, order = _read_from_server(hook)
    order[written] = order.pop("subject")
    answer = _answered_reading(body, order)
    [card] = answer["cards"]
    assert f"({written} is no element of ServiceRequest: its patient link is subject)" in card["detail"], card
    updated = [a["resource"]["resourceType"] for a in answer.get("systemActions", [])]
    assert updated == (["Appointment"] if hook == "appointment-book" else [])


REQUIRED = {  # R4's patient link of each request type, 1..1 (CommunicationRequest.subject is 0..1)
    "ServiceRequest": "subject",
    "DeviceRequest": "subject",
    "MedicationRequest": "subject",
    "NutritionOrder": "patient",
    "VisionPrescription": "patient",
}


@pytest.mark.parametrize("kind", list(REQUIRED))
def test_an_order_of_each_type_must_hold_the_link_r4_requires_of_it(kind: str) -> None:
    """One place decides (`malformed_order`): each request type without its link, or with another of the
    links in its place, is named where its link must be or where the other is written."""
    link = REQUIRED[kind]
    assert malformed_order({"resourceType": kind, "id": "o1"}) == (
        f".{link}",
        "must be a Reference, not absent",
    )
    other = "subject" if link == "patient" else "patient"
    held = {"resourceType": kind, "id": "o1", other: {"reference": "Patient/p1"}}
    assert malformed_order(held) == (f".{other}", f"is no element of {kind}: its patient link is {link}")
    assert malformed_order({**held, link: {"reference": "Patient/p1"}}) is None


def test_a_communication_request_may_name_no_patient() -> None:
    """The control: CommunicationRequest.subject is 0..1."""
    assert malformed_order({"resourceType": "CommunicationRequest", "id": "c1"}) is None


def test_a_draft_nutrition_order_with_no_patient_is_a_400_naming_its_patient() -> None:
    """review29e: the table's other link, through the same check as a ServiceRequest's subject."""
    body = select_body()
    entries = body["context"]["draftOrders"]["entry"]
    nutrition = {"resourceType": "NutritionOrder", "id": "n1", "status": "draft", "intent": "order"}
    nutrition["dateTime"] = "2026-12-07"
    entries.append({"resource": nutrition})
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-select", body)
    field = f"context.draftOrders.entry[{len(entries) - 1}].resource.patient"
    issue = assert_outcome(response, 400, field)
    assert issue["diagnostics"] == f"{field} must be a Reference, not absent", issue


def _booking_naming(
    actor: dict[str, Any], based: bool, patient_in_bundle: bool, participant_type: Any = None
) -> dict[str, Any]:
    """appointment-book's answer for demo-meets, its Appointment's Patient participant `actor` (with a
    Patient of another id given `ANOTHER_BY_UUID` in the call's Bundle when `patient_in_bundle`), based on
    the booked ServiceRequest or on no order (it is then the order, coded by its serviceType); the
    participant's `type` given `participant_type`."""
    name = "appointment-book-62362-demo-meets"  # its chart prefetched
    body = json.loads(next(p for p in request_files() if p.stem == name).read_text(encoding="utf-8"))
    entries = body["context"]["appointments"]["entry"]
    appointment = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Appointment")
    if not based:
        del appointment["basedOn"]
        body["context"]["appointments"]["entry"] = entries = [{"resource": appointment}]
        appointment["serviceType"] = [
            {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62362"}]}
        ]
    others = [p for p in appointment["participant"] if "Patient/" not in json.dumps(p.get("actor"))]
    participant = {"actor": actor, "status": "accepted"}
    if participant_type is not None:
        participant["type"] = participant_type
    appointment["participant"] = [participant, *others]
    if patient_in_bundle:
        entries.append(
            {"fullUrl": ANOTHER_BY_UUID, "resource": {"resourceType": "Patient", "id": "someone-else"}}
        )
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), "/cds-services/idds-crd-appointment-book", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize("based", [True, False], ids=["based-on-order", "no-order"])
def test_an_appointment_whose_participant_s_urn_names_another_patient_in_the_call_s_bundle_is_another_s(
    based: bool,
) -> None:
    """review29e LOW 4: `appointments.for_patient` read its participants' references alone, never looking a
    `urn:uuid:` up in the call's Bundle as a draft's subject is: an Appointment whose Patient participant
    the Bundle gives to another Patient was judged on this patient's answer (and its order given their
    coverage information)."""
    answer = _booking_naming({"reference": ANOTHER_BY_UUID}, based, patient_in_bundle=True)
    summaries = [c["summary"] for c in answer["cards"]]
    assert MEETS not in summaries, summaries
    updated = [a["resource"]["resourceType"] for a in answer.get("systemActions", [])]
    assert "ServiceRequest" not in updated, updated
    if based:
        assert [s for s in summaries if "another patient" in s], summaries
    else:
        assert updated == [], updated


@pytest.mark.parametrize("based", [True, False], ids=["based-on-order", "no-order"])
@pytest.mark.parametrize(
    "actor",
    [
        {"reference": "Patient/demo-meets"},
        {"reference": "Practitioner/demo-practitioner"},
        {"type": "Practitioner", "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}},
    ],
    ids=["this-patient", "practitioner", "identifier-typed-practitioner"],
)
def test_an_appointment_whose_participant_names_no_other_patient_is_the_call_s(
    actor: dict[str, Any], based: bool
) -> None:
    """The control: a participant naming this patient is the call's patient's; so is an Appointment whose
    participants name no patient at all (a Practitioner, by reference or by an identifier its `type` says
    is one's): the call says whose its orders are."""
    answer = _booking_naming(actor, based, patient_in_bundle=True)
    assert MEETS in [c["summary"] for c in answer["cards"]], answer["cards"]


UNTOLD_APPOINTMENT = "names no patient by its participants, so whose appointment it is cannot be told"


@pytest.mark.parametrize("based", [True, False], ids=["based-on-order", "no-order"])
@pytest.mark.parametrize(
    "actor",
    [
        {"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}},
        {"type": "Patient", "identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}},
        {"display": "Someone Else"},
        {"reference": ANOTHER_BY_UUID},  # no Patient of that fullUrl in the call's Bundle
    ],
    ids=["identifier-only", "identifier-typed-patient", "display-only", "unresolved-urn"],
)
def test_an_appointment_whose_participants_name_no_patient_this_service_can_tell_is_reported(
    actor: dict[str, Any], based: bool
) -> None:
    """subject29b (review29e LOW 4 continued): an Appointment whose Patient participant was an identifier
    alone (another patient's MRN, say) was the call's patient's, judged and given their coverage
    information, as a draft's subject so written is. An Appointment says whose it is by its participants
    alone, and such a participant names no Patient this service can tell: whose it is cannot be told. Not
    judged, no coverage information on it or its order, and said on a card (as an open order so linked is)."""
    answer = _booking_naming(actor, based, patient_in_bundle=False)
    summaries = [c["summary"] for c in answer["cards"]]
    assert MEETS not in summaries, summaries
    assert answer.get("systemActions", []) == [], answer.get("systemActions")
    [card] = [c for c in answer["cards"] if UNTOLD_APPOINTMENT in c["summary"]] or [{"summary": summaries}]
    assert card["summary"] == f"Coverage not checked: the appointment {UNTOLD_APPOINTMENT}", card
    assert card["detail"].endswith(
        "Check in the EHR whose appointment it is, and that it names the patient it is for."
    ), card["detail"]
    assert not [s for s in summaries if "another patient" in s], summaries


@pytest.mark.parametrize(
    ("contained", "whose"),
    [
        ({"resourceType": "Patient", "id": "p1"}, None),  # a contained Patient names none this service tells
        ({"resourceType": "Practitioner", "id": "p1"}, True),  # no patient at all: the call's
    ],
)
def test_whose_an_appointment_is_by_a_contained_participant(
    contained: dict[str, Any], whose: bool | None
) -> None:
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "contained": [contained],
        "participant": [{"actor": {"reference": "#p1"}, "status": "accepted"}],
    }
    assert whose_appointment(appointment, "demo-meets") is whose


V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def role(system: str, code: str) -> list[dict[str, Any]]:
    """A participant's `type`: one CodeableConcept of one coding."""
    return [{"coding": [{"system": system, "code": code}]}]


@pytest.mark.parametrize(
    ("participants", "whose"),
    [
        ([{"actor": {"display": "Dr Smith"}, "type": role(V3_ROLE, "ATND")}], True),
        (
            [
                {"actor": {"reference": "Practitioner/1"}},
                {"actor": {"display": "Dr Smith"}, "type": role(V3_ROLE, "ATND")},
            ],
            True,
        ),
        (
            [
                {"actor": {"reference": "HealthcareService/1"}},
                {"actor": {"display": "Dr Smith"}, "type": role(V3_ROLE, "PPRF")},
            ],
            True,
        ),
        (
            [
                {"actor": {"reference": "Location/1"}},
                {
                    "actor": {"display": "A. Interpreter"},
                    "type": role("http://hl7.org/fhir/participant-type", "translator"),
                },
            ],
            True,
        ),
        (
            [
                {
                    "actor": {"display": "Dr Smith"},
                    "type": role("http://hl7.org/fhir/v3/ParticipationType", "CON"),
                }
            ],
            True,
        ),
        # what reads as no role only another takes: still whose it is cannot be told
        ([{"actor": {"reference": "Practitioner/1"}}, {"actor": {"display": "Dr Smith"}}], None),
        ([{"actor": {"reference": "HealthcareService/1"}}, {"actor": {"display": "Jane Doe"}}], None),
        ([{"actor": {"display": "Jane Doe"}, "type": role(V3_ROLE, "PART")}], None),
        ([{"actor": {"display": "Jane Doe"}, "type": [{"text": "attending"}]}], None),
        ([{"actor": {"display": "Jane Doe"}, "type": role("http://example.org/roles", "ATND")}], None),
        # a Patient named stays named, whatever the type beside it
        ([{"actor": {"reference": "Patient/someone-else"}, "type": role(V3_ROLE, "ATND")}], False),
        ([{"actor": {"reference": "Patient/demo-meets"}}, {"actor": {"display": "Dr Smith"}}], True),
    ],
    ids=[
        "display-only-attender",
        "practitioner-and-display-only-attender",
        "healthcare-service-and-display-only-performer",
        "location-and-display-only-translator",
        "display-only-consultant-stu3-system",
        "practitioner-and-untyped-display-only",
        "healthcare-service-and-untyped-display-only",
        "display-only-participation",
        "display-only-role-in-words",
        "display-only-role-of-another-system",
        "another-patient-typed-attender",
        "this-patient-and-untyped-display-only",
    ],
)
def test_a_participant_whose_type_says_a_role_only_another_takes_is_not_the_appointments_patient(
    participants: list[dict[str, Any]], whose: bool | None
) -> None:
    """review30c item 4: a display-only participant counted as a possible Patient even when its
    `participant.type` said it was the attender (v3 ParticipationType ATND), the performer or a translator,
    so an Appointment with a Practitioner, a HealthcareService or a Location beside it was one whose patient
    cannot be told. Its type is read first (service/codes.py `NOT_THE_PATIENTS_ROLES`): such an Appointment
    names no patient, and is the call's. A display-only participant with no type, a generic participation
    (PART), a role in words or in a system not listed still may be the patient."""
    appointment = {"resourceType": "Appointment", "id": "a1", "participant": participants}
    assert whose_appointment(appointment, "demo-meets") is whose


def roles(*codings: tuple[str, str]) -> list[dict[str, Any]]:
    """A participant's `type`: one CodeableConcept of each (system, code)."""
    return [{"coding": [{"system": system, "code": code}]} for system, code in codings]


@pytest.mark.parametrize(
    "typed",
    [
        roles((V3_ROLE, "SBJ"), (V3_ROLE, "ATND")),
        roles((V3_ROLE, "ATND"), (V3_ROLE, "PART")),
        [{"coding": [{"system": V3_ROLE, "code": "PPRF"}, {"system": V3_ROLE, "code": "SBJ"}]}],
        roles(
            ("http://hl7.org/fhir/participant-type", "translator"),
            ("http://hl7.org/fhir/v3/ParticipationType", "SBJ"),
        ),
    ],
    ids=[
        "subject-and-attender",
        "attender-and-participation",
        "performer-and-subject-in-one-concept",
        "translator-and-subject-stu3",
    ],
)
def test_a_participant_whose_types_contradict_each_other_may_be_the_patient(
    typed: list[dict[str, Any]],
) -> None:
    """review31c LOW 4: a display-only participant typed both a role the patient may take (SBJ, the subject;
    PART) and one only another takes (ATND) was read as not the patient, so the Appointment beside a
    Practitioner was judged as the call's patient's; its roles contradict each other, and whose it is cannot
    be told (None, as before 6e31e3c). A coding of a system not listed beside the attender says nothing."""
    practitioner = {"actor": {"reference": "Practitioner/1"}}
    contradicting = {"actor": {"display": "Jane Doe"}, "type": typed}
    appointment = {"resourceType": "Appointment", "id": "a1", "participant": [practitioner, contradicting]}
    assert whose_appointment(appointment, "demo-meets") is None
    beside_another_system = {
        "actor": {"display": "Dr Smith"},
        "type": roles((V3_ROLE, "ATND"), ("http://example.org/roles", "SBJ")),
    }
    appointment["participant"] = [practitioner, beside_another_system]
    assert whose_appointment(appointment, "demo-meets") is True


@pytest.mark.parametrize(
    "actor",
    [
        {"type": "Patient", "identifier": {"system": "urn:mrn", "value": "OTHER-42"}},
        {"type": "http://hl7.org/fhir/StructureDefinition/Patient", "display": "Jane Roe"},
        {"reference": "#pt"},
    ],
    ids=["identifier-of-a-patient", "display-of-a-patient-by-url", "contained-patient"],
)
def test_a_participant_whose_actor_says_it_is_a_patient_may_be_another_whatever_its_role(
    actor: dict[str, Any],
) -> None:
    """review31c: 6e31e3c let a participant's role outweigh what its actor says it is: an actor that says it
    is a Patient (its `type`, or a contained Patient) but names none this service can tell, typed the
    attender, was read as no patient, and the Appointment (another patient's MRN) was judged as the call's
    patient's. Its role is read only where the actor does not say it is a Patient: still cannot be told."""
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "contained": [{"resourceType": "Patient", "id": "pt", "name": [{"family": "Roe"}]}],
        "participant": [
            {"actor": {"reference": "Practitioner/1"}},
            {"actor": actor, "type": role(V3_ROLE, "ATND")},
        ],
    }
    assert whose_appointment(appointment, "demo-meets") is None


def test_an_appointment_whose_display_only_participant_is_typed_the_attender_is_judged_for_the_patient() -> (
    None
):
    """Through the service: booked beside the Practitioner, a display-only participant typed the attender is
    no patient, and the Appointment's order is judged for the call's patient (it was reported as one whose
    patient cannot be told)."""
    actor = {"display": "Dr Smith"}
    answer = _booking_naming(
        actor, based=True, patient_in_bundle=False, participant_type=role(V3_ROLE, "ATND")
    )
    summaries = [c["summary"] for c in answer["cards"]]
    assert MEETS in summaries and not [s for s in summaries if UNTOLD_APPOINTMENT in s], summaries
