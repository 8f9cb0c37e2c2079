"""GET /openapi.json: every endpoint, generated from the registry, and request schemas that accept
and refuse what the service's own validation accepts and refuses."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from service.app import create_app
from service.feedback import parse_feedback
from service.hooks.models import MAX_ORDERS, MAX_PREFETCH_ENTRIES, RequestInvalid, parse_hook_request
from service.openapi import openapi_document
from service.registry import SERVICES, find_service
from tests.builders import catalog
from tests.host_support import refused_naming, sent
from tests.support import (
    MISSING,
    REQUESTS_DIR,
    load_sample,
    mutate,
    open_settings,
    select_body,
    sign_body,
    with_fhir,
)

Body = dict[str, Any]


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for one schema of the document, its `#/components/...` references resolvable."""
    return Draft202012Validator({**schema, "components": openapi_document()["components"]})


def request_validator(service_id: str) -> Draft202012Validator:
    operation = openapi_document()["paths"][f"/cds-services/{service_id}"]["post"]
    return _validator(operation["requestBody"]["content"]["application/json"]["schema"])


def test_openapi_json_is_served_and_describes_every_registered_service(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    expected = {"/cds-services", "/healthz", "/readyz", "/metrics", "/openapi.json", "/policies/{policy_id}"}
    expected |= {"/fhir/CodeSystem/{resource_id}", "/fhir/Questionnaire/{resource_id}"}
    for service in SERVICES:
        expected |= {f"/cds-services/{service.id}", f"/cds-services/{service.id}/feedback"}
        hook = document["paths"][f"/cds-services/{service.id}"]["post"]
        assert hook["requestBody"]["content"]["application/json"]["schema"]["properties"]["hook"] == {
            "const": service.hook
        }
        for status in ("400", "401", "404", "412", "413", "415"):
            assert status in hook["responses"]
    assert set(document["paths"]) == expected


@pytest.mark.parametrize("gateway", [False, True], ids=["own-answers", "behind-a-gateway"])
def test_each_service_is_described_as_its_deployments_discovery_describes_it(gateway: bool) -> None:
    """`GET /openapi.json` and `GET /cds-services` of one deployment say the same of each service:
    behind a payer's gateway (`only_orders_with_rules`) the encounter services' Encounter gets no
    coverage information, which discovery no longer says and the document still did (review30b)."""
    client = create_app(open_settings(only_orders_with_rules=gateway), catalog()).test_client()
    paths = client.get("/openapi.json").get_json()["paths"]
    for service in client.get("/cds-services").get_json()["services"]:
        assert paths[f"/cds-services/{service['id']}"]["post"]["description"] == service["description"]


def test_every_schema_in_the_document_is_a_valid_json_schema() -> None:
    document = openapi_document()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path in document["paths"].values():
        for operation in path.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                Draft202012Validator.check_schema(media["schema"])


def test_refusals_are_documented_as_operation_outcomes_the_service_really_sends(client: FlaskClient) -> None:
    outcome = _validator({"$ref": "#/components/schemas/OperationOutcome"})
    refused = [
        client.post("/cds-services/idds-crd-order-sign", data="{", content_type="application/json"),
        client.post("/cds-services/nope", json={}),
        client.post("/cds-services/idds-crd-order-sign", data="{}", content_type="text/plain"),
    ]
    for response in refused:
        assert response.status_code in (400, 404, 415)
        outcome.validate(response.get_json())


@pytest.mark.parametrize("path", sorted(REQUESTS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_sample_request_fits_its_service_schema(path: Any) -> None:
    body = load_sample(path.name)
    service = next(s for s in SERVICES if s.hook == body["hook"])
    request_validator(service.id).validate(body)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Body], Body]:
    return lambda body: mutate(body, path, value)


AGREEMENT_CASES = [
    pytest.param(select_body, lambda b: b, id="sample"),
    pytest.param(sign_body, lambda b: with_fhir(b), id="with-fhir-authorization"),
    pytest.param(sign_body, _set(("hook",), MISSING), id="no-hook"),
    pytest.param(sign_body, _set(("hook",), "order-select"), id="other-hook"),
    pytest.param(sign_body, _set(("hookInstance",), "not-a-uuid"), id="bad-hookInstance"),
    pytest.param(sign_body, _set(("context",), []), id="context-list"),
    pytest.param(sign_body, _set(("context", "patientId"), ".."), id="patientId-dotdot"),
    pytest.param(sign_body, _set(("context", "patientId"), "Patient/1"), id="patientId-reference"),
    pytest.param(sign_body, _set(("context", "encounterId"), 5), id="encounterId-number"),
    pytest.param(sign_body, _set(("context", "userId"), "Organization/1"), id="userId-organization"),
    pytest.param(sign_body, _set(("context", "userId"), "PractitionerRole/r-1"), id="userId-role"),
    pytest.param(sign_body, _set(("context", "draftOrders", "entry"), []), id="no-orders"),
    pytest.param(
        sign_body,
        lambda b: mutate(
            b, ("context", "draftOrders", "entry"), b["context"]["draftOrders"]["entry"] * MAX_ORDERS
        ),
        id="too-many-orders",
    ),
    pytest.param(
        sign_body,
        _set(("context", "draftOrders", "entry", 0, "resource", "id"), "a b"),
        id="order-id-space",
    ),
    pytest.param(sign_body, _set(("context", "draftOrders", "entry", 0), 5), id="order-entry-number"),
    pytest.param(sign_body, _set(("fhirServer",), "ftp://ehr"), id="fhirServer-ftp"),
    pytest.param(
        sign_body, lambda b: mutate(with_fhir(b), ("fhirServer",), MISSING), id="authorization-without-server"
    ),
    pytest.param(
        sign_body,
        lambda b: mutate(with_fhir(b), ("fhirAuthorization", "token_type"), "BEARER"),
        id="token-type-case",
    ),
    pytest.param(
        sign_body,
        lambda b: mutate(with_fhir(b), ("fhirAuthorization", "expires_in"), "30"),
        id="expires-in-string",
    ),
    pytest.param(
        sign_body,
        lambda b: mutate(with_fhir(b), ("fhirAuthorization",), {"access_token": "t", "expires_in": 300}),
        id="token-and-expiry-alone",
    ),
    pytest.param(
        sign_body,
        lambda b: mutate(with_fhir(b), ("fhirAuthorization", "token_type"), "MAC"),
        id="token-type-mac",
    ),
    pytest.param(sign_body, _set(("prefetch",), None), id="prefetch-null"),
    pytest.param(sign_body, _set(("prefetch",), []), id="prefetch-list"),
    pytest.param(sign_body, _set(("prefetch", "coverage"), 5), id="prefetch-junk-value"),
    pytest.param(
        sign_body,
        lambda b: mutate(
            b,
            ("prefetch", "coverage", "entry"),
            b["prefetch"]["coverage"]["entry"] * (MAX_PREFETCH_ENTRIES + 1),
        ),
        id="prefetch-too-many-entries",
    ),
    pytest.param(sign_body, _set(("extension",), {"davinci-crd.requestedVersion": "2.2"}), id="version-2.2"),
    pytest.param(sign_body, _set(("extension",), {"davinci-crd.requestedVersion": "9"}), id="version-9"),
    pytest.param(select_body, _set(("context", "selections"), []), id="no-selections"),
    pytest.param(select_body, _set(("context", "selections", 0), "ServiceRequest/.."), id="selection-dotdot"),
]


@pytest.mark.parametrize(("make", "change"), AGREEMENT_CASES)
def test_the_request_schema_accepts_what_the_service_accepts(
    make: Callable[[], Body], change: Callable[[Body], Body]
) -> None:
    body = change(copy.deepcopy(make()))
    service = find_service("idds-crd-order-select" if make is select_body else "idds-crd-order-sign")
    assert service is not None
    try:
        parse_hook_request(body, service)
        service_accepts = True
    except RequestInvalid:
        service_accepts = False
    assert request_validator(service.id).is_valid(body) == service_accepts


def _context_change(change: Callable[[Body], Any]) -> Callable[[Body], Body]:
    def changed(body: Body) -> Body:
        change(body["context"])
        return body

    return changed


HOOK_CASES = [  # each hook's own context rules (service/hooks/contexts.py)
    pytest.param("encounter-start-demo-meets", lambda b: b, id="encounter-sample"),
    pytest.param(
        "encounter-start-demo-meets", _context_change(lambda c: c.pop("encounterId")), id="encounter-no-id"
    ),
    pytest.param(
        "encounter-discharge-demo-meets",
        _context_change(lambda c: c.update(userId="Patient/demo-meets")),
        id="discharge-patient-user",
    ),
    pytest.param(
        "appointment-book-62362-demo-meets",
        _context_change(lambda c: c.update(userId="RelatedPerson/r-1")),
        id="booking-proxy-user",
    ),
    pytest.param(
        "appointment-book-62362-demo-meets",
        _context_change(lambda c: c.update(userId="Organization/o-1")),
        id="booking-organization-user",
    ),
    pytest.param(
        "order-dispatch-62362-demo-meets",
        _context_change(lambda c: c.update(performer="Dr. Smith")),
        id="dispatch-performer-text",
    ),
    pytest.param(
        "order-dispatch-62362-demo-meets",
        _context_change(lambda c: c.update(performer="CareTeam/t-1")),
        id="dispatch-performer-careteam",
    ),
    pytest.param(
        "order-dispatch-62362-demo-meets",
        _context_change(lambda c: c.update(dispatchedOrders=["Patient/demo-meets"])),
        id="dispatch-a-patient",
    ),
    pytest.param(
        "order-dispatch-62362-demo-meets",
        _context_change(lambda c: (c.pop("dispatchedOrders"), c.update(order="DeviceRequest/d-1"))),
        id="dispatch-inferno-order",
    ),
    pytest.param(
        "order-dispatch-62362-demo-meets",
        _context_change(lambda c: (c.pop("dispatchedOrders"), c.update(order="Coverage/c-1"))),
        id="dispatch-inferno-order-coverage",
    ),
]


@pytest.mark.parametrize(("name", "change"), HOOK_CASES)
def test_each_hooks_request_schema_accepts_what_the_service_accepts(
    name: str, change: Callable[[Body], Body]
) -> None:
    body = change(load_sample(f"{name}.json"))
    service = next(s for s in SERVICES if s.hook == body["hook"])
    try:
        parse_hook_request(body, service)
        service_accepts = True
    except RequestInvalid:
        service_accepts = False
    assert request_validator(service.id).is_valid(body) == service_accepts


CARD = "1b0f1a4e-3c2d-4e5f-8a9b-0c1d2e3f4a5b"


def feedback_of(**item: Any) -> Body:
    return {"feedback": [{"card": CARD, "outcomeTimestamp": "2025-10-01T10:00:00Z", **item}]}


FEEDBACK_CASES = [
    (feedback_of(outcome="overridden", overrideReason={"userComment": "no"}), True),
    (feedback_of(outcome="accepted", acceptedSuggestions=[{"id": "s-1"}]), True),
    (feedback_of(outcome="accepted"), False),
    (feedback_of(outcome="overridden", card="card-1"), False),
    (feedback_of(outcome="ignored"), False),
    (feedback_of(outcome="overridden", overrideReason={}), False),
    ({"feedback": []}, False),
]


@pytest.mark.parametrize(("body", "valid"), FEEDBACK_CASES)
def test_the_feedback_schema_accepts_what_the_service_accepts(body: Body, valid: bool) -> None:
    operation = openapi_document()["paths"]["/cds-services/idds-crd-order-sign/feedback"]["post"]
    schema = _validator(operation["requestBody"]["content"]["application/json"]["schema"])
    try:
        parse_feedback(body)
        accepted = True
    except RequestInvalid:
        accepted = False
    assert accepted == valid
    assert schema.is_valid(body) == valid


def _response(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """A response object, its `$ref` to `#/components/responses/...` followed."""
    while "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_operation_documents_the_400_a_refused_host_gets_as_the_service_answers_it(app: Flask) -> None:
    """The Host check runs before every route (routes.install_http_edge): each operation of the document
    lists its 400, whose schema fits the answer to an invalid Host, and fits the answer to a missing one
    exactly where that answer is a 400 (not on the probes). Before, discovery, the pages, the FHIR
    resources, the probes, /metrics and /openapi.json listed no 400 at all."""
    document = openapi_document()
    missing = sent(app, None, SERVER_PROTOCOL="HTTP/1.1")  # a hook call with no Host: 400 `required`
    assert refused_naming(missing, "required")
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method, operation in item.items():
            documented = operation["responses"].get("400")
            assert documented is not None, (method, path)
            fits = _validator(_response(document, documented)["content"]["application/json"]["schema"])
            invalid = sent(app, "a b", concrete, method.upper())
            assert refused_naming(invalid, "structure") and fits.is_valid(invalid.json()), (method, path)
            none = sent(app, None, concrete, method.upper(), SERVER_PROTOCOL="HTTP/1.1")
            assert fits.is_valid(missing.json()) is (none.status == 400), (method, path, none.status)
