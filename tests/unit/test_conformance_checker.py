"""The conformance checker itself: it passes the service's own answers and catches broken ones."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from service.demo.runner import request_files
from tests.calls import answer, prefetch_app
from tests.conformance import COVERAGE_INFO, check_response
from tests.demo_support import packaged_sample


def coverage_subs(body: dict[str, Any]) -> list[dict[str, Any]]:
    extension = next(
        e for e in body["systemActions"][0]["resource"]["extension"] if e["url"] == COVERAGE_INFO
    )
    subs: list[dict[str, Any]] = extension["extension"]
    return subs


def set_sub(body: dict[str, Any], url: str, key: str, value: Any) -> None:
    subs = coverage_subs(body)
    existing = next((s for s in subs if s["url"] == url), None)
    if existing is None:
        subs.append({"url": url, key: value})
    else:
        existing[key] = value


def drop_sub(body: dict[str, Any], url: str) -> None:
    subs = coverage_subs(body)
    subs[:] = [s for s in subs if s["url"] != url]


@pytest.mark.parametrize("name", [p.stem for p in request_files()])
def test_every_sample_answer_conforms(name: str) -> None:
    body, request = answer(name)
    assert check_response(body, request) == []


def test_order_sign_carries_one_coverage_action_per_order() -> None:
    """The pump, its catheter and hardware, and its drug (which shares the pump's determination)."""
    body, _ = answer("order-sign-implant-demo-meets")
    refs = sorted(f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in body["systemActions"])
    assert refs == [
        "DeviceRequest/demo-meets-sign-dr-e0783",
        "MedicationRequest/demo-meets-sign-mr-infusate",
        "ServiceRequest/demo-meets-sign-sr-62350",
        "ServiceRequest/demo-meets-sign-sr-62362",
    ]


Breaker = Callable[[dict[str, Any]], None]


def suggest(*resources: dict[str, Any], behavior: str = "any", recommended: bool = False) -> dict[str, Any]:
    """Card fields proposing one `create` per resource."""
    return {
        "selectionBehavior": behavior,
        "suggestions": [
            {
                "label": f"create {i}",
                "uuid": f"s{i}",
                "isRecommended": recommended,
                "actions": [{"type": "create", "description": "d", "resource": r}],
            }
            for i, r in enumerate(resources)
        ],
    }


VALID_ORDER = {
    "resourceType": "ServiceRequest",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p"},
}

BREAKERS: list[tuple[str, Breaker, str]] = [
    ("long summary", lambda b: b["cards"][0].update(summary="x" * 140), "summary"),
    ("no uuid", lambda b: b["cards"][0].pop("uuid"), "uuid"),
    ("empty string", lambda b: b["cards"][0].update(detail=""), "empty value"),
    ("no topic", lambda b: b["cards"][0]["source"].pop("topic"), "source.topic"),
    ("bad indicator", lambda b: b["cards"][0].update(indicator="hint"), "indicator"),
    (
        "absolute link with appContext",
        lambda b: b["cards"][0].update(
            links=[{"label": "x", "url": "https://x.org", "type": "absolute", "appContext": "a"}]
        ),
        "appContext",
    ),
    (
        "suggestions without selectionBehavior",
        lambda b: b["cards"][0].update(
            suggestions=[
                {
                    "label": "x",
                    "uuid": "u",
                    "actions": [{"type": "create", "description": "d", "resource": {"resourceType": "Task"}}],
                }
            ]
        ),
        "selectionBehavior",
    ),
    (
        "suggested resource not valid FHIR",
        lambda b: b["cards"][0].update(suggest({"resourceType": "ServiceRequest", "status": "draft"})),
        "not valid FHIR",
    ),
    (
        "two recommended of at most one",
        lambda b: b["cards"][0].update(
            suggest(VALID_ORDER, VALID_ORDER, behavior="at-most-one", recommended=True)
        ),
        "cds-resp-1",
    ),
    ("links and suggestions", lambda b: b["cards"][-1].update(suggest(VALID_ORDER)), "§resp-19"),
    ("action without description", lambda b: b["systemActions"][0].pop("description"), "description"),
    ("not-covered with pa-needed", lambda b: set_sub(b, "covered", "valueCode", "not-covered"), "q2"),
    ("covered without pa-needed", lambda b: drop_sub(b, "pa-needed"), "q2 (2.0.1)"),
    (
        "conditional without info-needed",
        lambda b: (set_sub(b, "covered", "valueCode", "conditional"), drop_sub(b, "info-needed")),
        "q3",
    ),
    (
        "2.2-only code",
        lambda b: set_sub(b, "covered", "valueCode", "indeterminate"),
        "is not valid under CRD 2.0.1",
    ),
    (
        "questionnaire without doc-needed",
        lambda b: set_sub(b, "questionnaire", "valueCanonical", "https://x.org/Questionnaire/q"),
        "q1",
    ),
    ("satisfied without id", lambda b: set_sub(b, "pa-needed", "valueCode", "satisfied"), "q5"),
    (
        "doc-purpose without reason",
        lambda b: (set_sub(b, "doc-purpose", "valueCode", "withclaim"), drop_sub(b, "reason")),
        "q6/q8",
    ),
    ("no assertion id", lambda b: drop_sub(b, "coverage-assertion-id"), "coverage-assertion-id"),
    ("changed order", lambda b: b["systemActions"][0]["resource"].update(status="active"), "§resp-37"),
    (
        "unknown order",
        lambda b: b["systemActions"][0]["resource"].update(id="elsewhere"),
        "is not an order (or booked Appointment) of the request",
    ),
    (
        "coverage info in a card",
        lambda b: b["cards"][0].update(extension={"x": [{"url": COVERAGE_INFO}]}),
        "§resp-25",
    ),
]


def test_a_valid_suggestion_passes() -> None:
    body, request = answer("order-select-62362-demo-meets")
    body["cards"][0].update(suggest(VALID_ORDER, VALID_ORDER, behavior="at-most-one"))
    assert check_response(body, request) == []


@pytest.mark.parametrize(("label", "breaker", "message"), BREAKERS, ids=[b[0] for b in BREAKERS])
def test_the_checker_catches_broken_answers(label: str, breaker: Breaker, message: str) -> None:
    body, request = answer("order-select-62362-demo-meets")
    assert "links" in body["cards"][-1]
    broken = copy.deepcopy(body)
    breaker(broken)
    errors = check_response(broken, request)
    assert any(message in e for e in errors), (label, errors)


def test_doc_needed_clinical_is_refused_on_order_select() -> None:
    body, request = answer("order-select-62362-demo-meets")
    set_sub(body, "covered", "valueCode", "conditional")
    set_sub(body, "info-needed", "valueCode", "OTH")
    set_sub(body, "reason", "valueCodeableConcept", {"text": "documentation needed"})
    set_sub(body, "doc-needed", "valueCode", "clinical")
    assert any("§hook-19" in e for e in check_response(body, request))


def test_same_coverage_must_share_the_assertion_id() -> None:
    body, request = answer("order-select-62362-demo-meets")
    resource = body["systemActions"][0]["resource"]
    twin = copy.deepcopy(next(e for e in resource["extension"] if e["url"] == COVERAGE_INFO))
    next(s for s in twin["extension"] if s["url"] == "coverage-assertion-id")["valueString"] = "other-id"
    resource["extension"].append(twin)
    assert any("same coverage, different coverage-assertion-id" in e for e in check_response(body, request))


def test_order_sign_without_coverage_information_is_refused() -> None:
    body, request = answer("order-sign-implant-demo-meets")
    body.pop("systemActions")
    assert any("required on order-sign" in e for e in check_response(body, request))


def test_a_call_that_switches_coverage_information_off_gets_none_and_is_not_faulted_for_it() -> None:
    """§resp-28: coverage information is SHALL on a primary hook unless `coverage-info` is false."""
    body, request = answer("order-sign-implant-demo-meets")
    request = {**request, "extension": {"davinci-crd.configuration": {"coverage-info": False}}}
    assert not any(
        "required on order-sign" in e for e in check_response({**body, "systemActions": []}, request)
    )
    assert any("coverage-info false" in e for e in check_response(body, request))


def test_an_order_sign_answer_missing_one_order_is_refused() -> None:
    """CRD §resp-29: on a primary hook every order gets coverage information."""
    body, request = answer("order-sign-implant-demo-meets")
    body["systemActions"] = [
        a for a in body["systemActions"] if a["resource"]["resourceType"] != "MedicationRequest"
    ]
    assert any(
        "no coverage information for MedicationRequest/demo-meets-sign-mr-infusate" in e
        for e in check_response(body, request)
    )


@pytest.mark.parametrize(
    "subject", ["Patient/someone-else", "https://ehr.example.org/fhir/Patient/someone-else"]
)
def test_an_order_sign_answer_is_not_faulted_for_no_coverage_information_on_another_patients_draft(
    subject: str,
) -> None:
    """Another patient's draft order is reported, not judged (ehr20 M4): §resp-29 asks coverage
    information of the call's patient's orders, and still of every one of them."""
    body, request = answer("order-sign-implant-demo-meets")
    for entry in request["context"]["draftOrders"]["entry"]:
        if entry["resource"]["resourceType"] == "MedicationRequest":
            entry["resource"]["subject"] = {"reference": subject}
    body["systemActions"] = [
        a for a in body["systemActions"] if a["resource"]["resourceType"] != "MedicationRequest"
    ]
    assert check_response(body, request) == []
    body["systemActions"] = body["systemActions"][1:]
    assert any("no coverage information for ServiceRequest/" in e for e in check_response(body, request))


@pytest.mark.parametrize(
    ("subject", "another"),
    [
        ("https://elsewhere.example.org/fhir/Patient/demo-meets", True),  # this id, another server's
        ("https://EHR.example.org:443/fhir/Patient/demo-meets", False),  # the call's server, however written
        ("Group/g1", False),  # names no other patient: the service judges it (review25a M1)
        ("Device/d1", False),
        ("urn:uuid:7d1f3f0e-2b0c-4a49-8a43-8f3e2a7d9c10", False),  # names nothing in the call
    ],
)
def test_the_checker_reads_another_patients_order_as_the_service_does(subject: str, another: bool) -> None:
    """§resp-29 asks coverage information of every order of the call's patient: of the orders
    `service.references.names_another_patient` judges, and of no other (review25a M1: the checker
    read this id on another server as the call's patient, and faulted an answer that set it aside)."""
    body, request = answer("order-sign-implant-demo-meets")
    request = {**request, "fhirServer": "https://ehr.example.org/fhir"}
    for entry in request["context"]["draftOrders"]["entry"]:
        if entry["resource"]["resourceType"] == "MedicationRequest":
            entry["resource"]["subject"] = {"reference": subject}
    body["systemActions"] = [
        a for a in body["systemActions"] if a["resource"]["resourceType"] != "MedicationRequest"
    ]
    errors = check_response(body, request)
    if another:
        assert errors == []
    else:
        assert errors and all("no coverage information for MedicationRequest/" in e for e in errors)


def as_2_2(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "extension": {"davinci-crd.requestedVersion": "2.2"}}


def test_a_2_2_answer_may_be_indeterminate_with_a_reason() -> None:
    body, request = answer("order-select-62362-demo-meets")
    set_sub(body, "covered", "valueCode", "indeterminate")
    technical = [{"system": "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp", "code": "technical"}]
    set_sub(body, "reason", "valueCodeableConcept", {"coding": technical, "text": "data could not be read"})
    drop_sub(body, "info-needed")
    assert check_response(body, as_2_2(request)) == []
    errors = check_response(body, request)  # the same answer to a 2.0.1 client
    assert any("'indeterminate' is not valid under CRD 2.0.1" in e for e in errors)
    assert any("coded reasons (e.g. technical) exist only in CRD 2.2" in e for e in errors)


def test_a_2_2_indeterminate_without_a_reason_is_refused() -> None:
    body, request = answer("order-select-62362-demo-meets")
    set_sub(body, "covered", "valueCode", "indeterminate")
    drop_sub(body, "info-needed")
    drop_sub(body, "reason")
    assert any("q9" in e for e in check_response(body, as_2_2(request)))


def test_coverage_information_on_an_appointment_only_on_appointment_book() -> None:
    body, request = answer("order-select-62362-demo-meets")
    body["systemActions"][0]["resource"]["resourceType"] = "Appointment"
    assert any("coverage information on a non-order resource" in e for e in check_response(body, request))


@pytest.mark.parametrize("url", ["coverage-assertion-id", "satisfied-pa-id"])
def test_an_appointment_repeating_its_orders_assertion_must_carry_its_ids(url: str) -> None:
    """One booked service, one assertion and one PA number (CRD §resp-31: the claim carries one)."""
    request = packaged_sample("appointment-book-62362-demo-meets")  # the order in the booking's Bundle
    response = prefetch_app().test_client().post("/cds-services/idds-crd-appointment-book", json=request)
    body = response.get_json()
    orders = [e["resource"] for e in request["context"]["appointments"]["entry"][1:]]
    assert check_response(body, request, orders) == []
    by_type = {a["resource"]["resourceType"]: a for a in body["systemActions"]}
    for action in by_type.values():  # the order approved, and the Appointment repeating it
        [info] = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
        for sub in info["extension"]:
            if sub["url"] == "pa-needed":
                sub["valueCode"] = "satisfied"
        info["extension"].append({"url": "satisfied-pa-id", "valueString": "IDDS-0123456789ABCDEF"})
    assert check_response(body, request, orders) == []
    [info] = [e for e in by_type["Appointment"]["resource"]["extension"] if e["url"] == COVERAGE_INFO]
    next(s for s in info["extension"] if s["url"] == url)["valueString"] = "IDDS-FEDCBA9876543210"
    assert any(f"with another {url}" in e for e in check_response(body, request, orders))


TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
RETIRED = {"system": TEMP, "code": "auth-out-network-only"}  # a 2.0.1 detail code that 2.2 dropped


def policy_link(**changes: Any) -> dict[str, Any]:
    """A CRD 2.2 `detail` coded policy-link (the IG's annotated example), its parts changed by `changes`
    (a part set to None is dropped)."""
    parts: dict[str, Any] = {
        "category": {"valueCode": "cat-other"},
        "code": {"valueCodeableConcept": {"coding": [{"system": TEMP, "code": "policy-link"}]}},
        "value": {"valueUrl": "https://crd.example.org/policies/geha-idds-chronic-pain"},
        "qualification": {"valueString": "GEHA policy as checked"},
        **changes,
    }
    return {"url": "detail", "extension": [{"url": u, **v} for u, v in parts.items() if v is not None]}


def with_detail(detail: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    body, request = answer("order-select-62362-demo-meets")
    coverage_subs(body).append(detail)
    return body, request


def test_a_2_2_answer_may_carry_a_policy_link_detail() -> None:
    body, request = with_detail(policy_link())
    assert check_response(body, as_2_2(request)) == []


def test_no_detail_is_valid_under_both_versions() -> None:
    """A 2.0.1 client (Inferno) gets no detail: 2.0.1 has no category, which 2.2 requires, and no
    policy-link code (its temp CodeSystem is complete without it) nor url value."""
    errors = check_response(*with_detail(policy_link()))
    assert any("no detail is valid under both CRD 2.0.1 and 2.2" in e for e in errors)
    assert any("'category' is not a part of a detail in CRD 2.0.1" in e for e in errors)
    assert any("'policy-link' is not a detail code of CRD 2.0.1" in e for e in errors)
    assert any("['valueUrl'] is not a detail value type in CRD 2.0.1" in e for e in errors)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"category": None}, "'category' required (1..1) in CRD 2.2"),
        ({"category": {"valueCode": "cat-policy"}}, "'cat-policy' is not a detail category"),
        ({"category": {"valueCode": "cat-limitation"}}, "a policy-link is category cat-other"),
        ({"value": {"valueString": "https://crd.example.org/p"}}, "category cat-other with a valueUrl"),
        ({"value": {"valueCode": "x"}}, "['valueCode'] is not a detail value type in CRD 2.2"),
        ({"value": None}, "'value' required (1..1) in CRD 2.2"),
        ({"code": None}, "'code' required (1..1) in CRD 2.2"),
        (
            {"code": {"valueCodeableConcept": {"coding": [RETIRED]}}},
            "'auth-out-network-only' is not a detail",
        ),
        ({"qualification": {"valueCode": "x"}}, "qualification: a valueString"),
        ({"dependency": {"valueString": "x"}}, "'dependency' is not a part of a detail in CRD 2.2"),
    ],
)
def test_a_2_2_detail_out_of_shape_is_refused(changes: dict[str, Any], error: str) -> None:
    body, request = with_detail(policy_link(**changes))
    assert any(error in e for e in check_response(body, as_2_2(request)))
