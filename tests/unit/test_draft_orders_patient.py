"""order-select/-sign: a draft order whose subject names another patient than `context.patientId` is
not judged against this patient's chart and Coverage, and is given no coverage information (ehr20
M4: it was answered "meets", with this patient's coverage assertion written onto it). One in scope is
reported on a card; an unselected one is left out. The call is otherwise answered as before: it still
needs the patient and Coverage (412, 400), and a subject naming this patient in another form is
still this patient's."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from service.app import create_app
from service.hooks.models import RequestInvalid, parse_hook_request
from service.registry import service_for_hook
from tests.builders import catalog, meeting_chart
from tests.calls import sign_with_chart
from tests.support import FHIR_SERVER, no_client, open_settings, post_json, select_body, sign_body

OTHER = "someone-else"
SIGN_URL = "/cds-services/idds-crd-order-sign"


def _order(body: dict[str, Any], code: str) -> dict[str, Any]:
    [order] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if code in json.dumps(e["resource"].get("code") or e["resource"].get("codeCodeableConcept"))
    ]
    return order


def _ref(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _updated(answer: dict[str, Any]) -> set[str]:
    return {_ref(a["resource"]) for a in answer.get("systemActions", [])}


def _without_uuids(answer: dict[str, Any]) -> dict[str, Any]:
    cards = [{k: v for k, v in c.items() if k != "uuid"} for c in answer["cards"]]
    return {**answer, "cards": cards}


@pytest.mark.parametrize("make", [sign_body, select_body], ids=["sign", "select"])
def test_a_draft_order_of_another_patient_is_reported_not_judged_against_this_patients_chart(
    make: Callable[[], dict[str, Any]],
) -> None:
    body = make()
    pump = _order(body, "62362")
    pump["subject"] = {"reference": f"Patient/{OTHER}"}
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert _ref(pump) not in _updated(answer)  # no coverage information: it was not judged
    [card] = [c for c in answer["cards"] if _ref(pump) in json.dumps(c)]
    assert card["summary"] == "Coverage not checked: the draft order is an order for another patient"
    assert card["indicator"] == "warning"  # an order placed in the wrong patient's chart
    assert card["detail"] == (
        f"The draft order ({_ref(pump)}) was not judged: it is an order for another patient, so this "
        "service did not check the payer's coverage criteria for it. Check that the order being placed "
        "is this patient's."
    )
    assert not any("62362" in c["summary"] for c in answer["cards"])  # never judged as one of theirs
    # at order-sign, the patient's own orders are judged as ever
    drafts = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    own = {_ref(r) for r in drafts if r is not pump}
    assert _updated(answer) == (own if body["hook"] == "order-sign" else set())


def test_an_unselected_draft_order_of_another_patient_is_left_out_without_a_card() -> None:
    """The pump's drug selected: the pump order among the drafts is judged for it, unless it is another
    patient's (it was judged, "meets", for this patient's drug). The answer is the one to the same call
    without that order."""
    body = select_body()
    pump = _order(body, "62362")
    drug = next(e["resource"] for e in body["context"]["draftOrders"]["entry"] if e["resource"] is not pump)
    body["context"]["selections"] = [_ref(drug)]
    without = copy.deepcopy(body)
    without["context"]["draftOrders"]["entry"] = [
        e for e in without["context"]["draftOrders"]["entry"] if e["resource"]["id"] != pump["id"]
    ]
    pump["subject"] = {"reference": f"Patient/{OTHER}"}
    _, answer = sign_with_chart(meeting_chart(), body=body)
    _, expected = sign_with_chart(meeting_chart(), body=without)
    assert _without_uuids(answer) == _without_uuids(expected)
    assert not any("another patient" in json.dumps(c) for c in answer["cards"])


def _patient_entry(body: dict[str, Any], patient_id: str) -> str:
    """A Patient put among the draft orders under a `urn:uuid:` fullUrl, which a subject may name."""
    full_url = "urn:uuid:0b6a3c52-5a8e-4c43-9a4e-2f0f8f6d5a11"
    entry = {"fullUrl": full_url, "resource": {"resourceType": "Patient", "id": patient_id}}
    body["context"]["draftOrders"]["entry"].append(entry)
    return full_url


SUBJECTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "absolute-url": lambda b: {"reference": f"{FHIR_SERVER}/Patient/{b['context']['patientId']}"},
    "versioned": lambda b: {"reference": f"Patient/{b['context']['patientId']}/_history/2"},
    "fullurl-of-this-patient": lambda b: {"reference": _patient_entry(b, b["context"]["patientId"])},
    "unresolved-urn": lambda b: {"reference": "urn:uuid:7d1f3f0e-2b0c-4a49-8a43-8f3e2a7d9c10"},
    "identifier-only": lambda b: {"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}},
}


@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_a_draft_order_whose_subject_is_this_patient_however_written_is_still_judged(subject: str) -> None:
    """Only a subject naming another Patient sets an order aside: this patient written as an absolute
    URL of the call's server, a versioned reference, or the fullUrl of this patient's Patient in the
    Bundle; and a subject that names no Patient this service can read (the call says whose its drafts
    are, and nothing on the order says otherwise) is judged as before."""
    body = select_body()
    pump = _order(body, "62362")
    pump["subject"] = SUBJECTS[subject](body)
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert _ref(pump) in _updated(answer)
    assert answer["cards"][0]["summary"] == "GEHA: 62362 meets all 14 coverage criteria"


def test_a_draft_order_with_no_subject_is_refused_naming_it() -> None:
    """R4 requires a request's subject, and the answer's update must be the order as sent, valid (CRD
    §resp-37, §resp-47): a draft without one cannot be answered conformantly, and is refused naming it
    (review29e; it was judged, and its update sent back without a subject)."""
    body = select_body()
    pump = _order(body, "62362")
    del pump["subject"]
    index = [e["resource"] for e in body["context"]["draftOrders"]["entry"]].index(pump)
    service = service_for_hook("order-select")
    with pytest.raises(RequestInvalid) as refused:
        parse_hook_request(body, service)
    assert refused.value.field == f"context.draftOrders.entry[{index}].resource.subject"


@pytest.mark.parametrize(
    "written",
    [
        lambda b: {"reference": f"{FHIR_SERVER}/Patient/{OTHER}"},
        lambda b: {"reference": _patient_entry(b, OTHER)},
    ],
    ids=["absolute-url", "fullurl-of-another-patient"],
)
def test_a_draft_order_whose_subject_is_another_patient_however_written_is_not_judged(
    written: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    body = select_body()
    pump = _order(body, "62362")
    pump["subject"] = written(body)
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert _updated(answer) == set()
    [card] = answer["cards"]
    assert card["summary"] == "Coverage not checked: the draft order is an order for another patient"


def _non_pump_sign(patient: str) -> dict[str, Any]:
    """An order-sign of one order this service has no rules for (the Inferno kit's kind), whose
    subject is `patient`."""
    body = sign_body()
    order = _order(body, "62350")
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}
    order["subject"] = {"reference": f"Patient/{patient}"}
    body["context"]["draftOrders"]["entry"] = [
        e for e in body["context"]["draftOrders"]["entry"] if e["resource"] is order
    ]
    return body


def _answered(body: dict[str, Any]) -> tuple[int, Any]:
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    response = post_json(app.test_client(), SIGN_URL, body)
    return response.status_code, response.get_json()


def test_a_call_whose_only_order_is_another_patients_still_needs_the_coverage() -> None:
    """Neither prefetched nor readable (no fhirServer): 412 naming the Coverage, as for the patient's own
    order (the orders set aside count as the call's orders: it is not a call with nothing to answer). Not
    the Patient: no answer to these orders, none of them a pump order, reads it (prefetch33)."""
    own, others = _non_pump_sign("demo-meets"), _non_pump_sign(OTHER)
    for body in (own, others):
        del body["prefetch"]
    status, outcome = _answered(others)
    assert (status, outcome) == _answered(own)
    assert status == 412
    assert outcome["issue"][0]["expression"] == ["prefetch.coverage"]


def test_an_order_sign_whose_only_order_is_another_patients_with_no_coverage_is_400() -> None:
    """The IG's order-sign example (orders of Patient/1288992 for patient `example`, whom the kit's data
    gives no Coverage): 400 "no active Coverage" (tests/integration/test_inferno_bodies.py), as for the
    patient's own order, not `{"cards": []}`."""
    own, others = _non_pump_sign("demo-meets"), _non_pump_sign(OTHER)
    for body in (own, others):
        body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset"}
    status, outcome = _answered(others)
    assert (status, outcome) == _answered(own)
    assert status == 400
    assert outcome["issue"][0]["diagnostics"].startswith("prefetch.coverage: no active Coverage")


def _drug_of_the_pump(body: dict[str, Any], drug: str) -> dict[str, Any]:
    """The call's drug order for the pump written as `drug`: intrathecal baclofen by its route code,
    morphine as the sample writes it, ziconotide by its words alone (no code, no route), or an oral
    drug (not the pump's)."""
    entries = body["context"]["draftOrders"]["entry"]
    order = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "MedicationRequest")
    if drug == "baclofen":
        order["medicationCodeableConcept"] = {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1292"}],
            "text": "baclofen 2000 MCG/ML",
        }
    elif drug == "ziconotide":
        order["medicationCodeableConcept"] = {"text": "ziconotide 100 MCG/ML Intrathecal Solution"}
        del order["dosageInstruction"]
    elif drug == "brand":  # a pump drug by a brand name the catalog does not know, and its route
        order["medicationCodeableConcept"] = {"text": "Infumorph 25 MG/ML Injectable Solution"}
    elif drug == "epidural-steroid":
        order["medicationCodeableConcept"] = {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6902"}],
            "text": "methylprednisolone acetate 80 MG/ML Injectable Suspension",
        }
        order["dosageInstruction"] = [
            {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "404820008"}]}}
        ]
    elif drug == "oral":
        order["medicationCodeableConcept"] = {"text": "morphine sulfate 15 MG Oral Tablet"}
        order["dosageInstruction"] = [
            {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}], "text": "Oral"}}
        ]
    return order


def _another_patients_card(body: dict[str, Any], order: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The cards of the call with `order` alone in scope and another patient's, each without its uuid
    and with the order's reference written as ORDER: what an order of another patient is answered."""
    order["subject"] = {"reference": f"Patient/{OTHER}"}
    if body["hook"] == "order-select":
        body["context"]["selections"] = [_ref(order)]
    else:
        body["context"]["draftOrders"]["entry"] = [
            e for e in body["context"]["draftOrders"]["entry"] if e["resource"] is order
        ]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert _updated(answer) == set()  # not judged: no coverage information
    return tuple(
        json.loads(json.dumps({k: v for k, v in c.items() if k != "uuid"}).replace(_ref(order), "ORDER"))
        for c in answer["cards"]
    )


@pytest.mark.parametrize("make", [select_body, sign_body], ids=["select", "sign"])
@pytest.mark.parametrize("drug", ["baclofen", "morphine", "ziconotide", "brand"])
def test_a_pump_drug_order_of_another_patient_is_reported_as_a_pump_order_of_theirs_is(
    make: Callable[[], dict[str, Any]], drug: str
) -> None:
    """call25 L2: the pump's drug ordered for another patient, alone in scope (selected alone, or the
    only order signed), was left out without a word, while a pump order of theirs is reported on a
    'Coverage not checked' card: both are orders this service has rules for, set aside by the one
    rule (`references.names_another_patient`), and answered alike."""
    drug_body, pump_body = make(), make()
    drug_cards = _another_patients_card(drug_body, _drug_of_the_pump(drug_body, drug))
    pump_cards = _another_patients_card(pump_body, _order(pump_body, "62362"))
    assert len(pump_cards) == 1
    assert drug_cards == pump_cards


@pytest.mark.parametrize("make", [select_body, sign_body], ids=["select", "sign"])
def test_an_oral_drug_order_of_another_patient_alone_gets_no_card(make: Callable[[], dict[str, Any]]) -> None:
    """A drug order that is not the pump's (given orally) is no order this service has rules for, as an
    office visit is not: another patient's, alone in scope, it is answered with no card."""
    body = make()
    assert _another_patients_card(body, _drug_of_the_pump(body, "oral")) == ()


@pytest.mark.parametrize("make", [select_body, sign_body], ids=["select", "sign"])
def test_an_epidural_steroid_order_of_another_patient_alone_gets_no_card(
    make: Callable[[], dict[str, Any]],
) -> None:
    """review26d: an epidural steroid injection (methylprednisolone, by the epidural route) is no drug
    for the pump, as the record does not read one as an intrathecal trial (AMB-34): another patient's,
    alone in scope, it got the 'Coverage not checked' warning of a pump order, where this patient's is
    answered "no coverage rules" with no card. Its drug is one the catalog knows, and no pump drug."""
    body = make()
    assert _another_patients_card(body, _drug_of_the_pump(body, "epidural-steroid")) == ()
