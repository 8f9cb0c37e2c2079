"""HTTP-level validation of CDS Hooks calls, discovery and error mapping, through the Flask test client.

No network is ever used: every app is built with an injected client factory that returns None or a
fake FHIR client whose calls are recorded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.fhir.client import FhirError, NotAsked
from service.fhir.server_share import NOT_ASKED
from service.hooks.models import parse_hook_request
from service.registry import (
    CONFIGURATION_OPTIONS,
    DISPATCHED_PREFETCH,
    ENCOUNTER_PREFETCH,
    CallOptions,
    find_service,
)
from tests.builders import cards_of, catalog
from tests.support import (
    FHIR_SERVER,
    MISSING,
    REQUESTS_DIR,
    SELECT_URL,
    SELECTED_ORDER,
    SIGN_URL,
    TOKEN,
    ClientFactory,
    JsonPath,
    RecordingFactory,
    RecordingFhirClient,
    assert_outcome,
    load_sample,
    mutate,
    no_client,
    non_pump_body,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)


def build_app(factory: ClientFactory = no_client) -> Flask:
    return create_app(open_settings(), catalog(), client_factory=factory)


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        pytest.param(b'{"hook": "order-select", "hookInstance": ', "application/json", id="truncated-json"),
        pytest.param(b'{"hook": "order-select\xc3\x28"}', "application/json", id="invalid-utf8"),
        pytest.param(b'{"hook": "\xff\xfe\xfd"}', "application/json", id="invalid-utf8-bytes"),
        pytest.param(b"", "application/json", id="empty-body"),
        pytest.param(b"   ", "application/json", id="whitespace-body"),
        pytest.param(b"[]", "application/json", id="json-array"),
        pytest.param(b'[{"hook": "order-select"}]', "application/json", id="json-array-of-object"),
        pytest.param(b'"order-select"', "application/json", id="json-string"),
        pytest.param(b"42", "application/json", id="json-number"),
        pytest.param(b"null", "application/json", id="json-null"),
    ],
)
def test_malformed_body_is_400_at_document_root(client: FlaskClient, raw: bytes, content_type: str) -> None:
    response = client.post(SELECT_URL, data=raw, content_type=content_type)
    issue = assert_outcome(response, 400, "$", mention="request body")
    assert issue["code"] in {"structure", "required", "invalid"}


# --------------------------------------------------------------------------- field validation

ENTRY1: JsonPath = ("context", "draftOrders", "entry", 1)
ENTRY1_PATH = "context.draftOrders.entry[1]"
RESOURCE1: JsonPath = (*ENTRY1, "resource")
RESOURCE1_PATH = f"{ENTRY1_PATH}.resource"

FIELD_CASES = [
    # hook
    pytest.param(("hook",), MISSING, "hook", None, id="hook-missing"),
    pytest.param(("hook",), "", "hook", None, id="hook-empty"),
    pytest.param(("hook",), 42, "hook", None, id="hook-number"),
    pytest.param(("hook",), ["order-select"], "hook", None, id="hook-list"),
    pytest.param(("hook",), "patient-view", "hook", None, id="hook-other"),
    # hookInstance
    pytest.param(("hookInstance",), MISSING, "hookInstance", None, id="hookInstance-missing"),
    pytest.param(("hookInstance",), "", "hookInstance", None, id="hookInstance-empty"),
    pytest.param(("hookInstance",), "not-a-uuid", "hookInstance", None, id="hookInstance-not-uuid"),
    pytest.param(
        ("hookInstance",),
        "ec7ac8ad-1b2b-406b-aae1-2c972399d29",
        "hookInstance",
        None,
        id="hookInstance-short",
    ),
    pytest.param(("hookInstance",), 12345, "hookInstance", None, id="hookInstance-number"),
    # context
    pytest.param(("context",), MISSING, "context", None, id="context-missing"),
    pytest.param(("context",), [], "context", None, id="context-list"),
    pytest.param(("context",), "Patient/123", "context", None, id="context-string"),
    # context.userId
    pytest.param(("context", "userId"), MISSING, "context.userId", None, id="userId-missing"),
    pytest.param(("context", "userId"), "", "context.userId", None, id="userId-empty"),
    pytest.param(("context", "userId"), "   ", "context.userId", None, id="userId-blank"),
    pytest.param(("context", "userId"), 7, "context.userId", None, id="userId-number"),
    pytest.param(("context", "userId"), "abc", "context.userId", None, id="userId-no-type"),
    pytest.param(("context", "userId"), "Patient/", "context.userId", None, id="userId-no-id"),
    pytest.param(("context", "userId"), "Practitioner/", "context.userId", None, id="userId-bare-type"),
    pytest.param(("context", "userId"), "/123", "context.userId", None, id="userId-no-type-slash"),
    pytest.param(("context", "userId"), "Organization/1", "context.userId", None, id="userId-wrong-type"),
    pytest.param(("context", "userId"), "Practitioner/a b", "context.userId", None, id="userId-space"),
    # context.patientId
    pytest.param(("context", "patientId"), MISSING, "context.patientId", None, id="patientId-missing"),
    pytest.param(("context", "patientId"), "", "context.patientId", None, id="patientId-empty"),
    pytest.param(("context", "patientId"), 123, "context.patientId", None, id="patientId-number"),
    pytest.param(("context", "patientId"), "Patient/123", "context.patientId", None, id="patientId-ref"),
    pytest.param(("context", "patientId"), "a b", "context.patientId", None, id="patientId-space"),
    pytest.param(("context", "patientId"), "x" * 65, "context.patientId", None, id="patientId-too-long"),
    # context.encounterId (optional, but must be a bare id when present)
    pytest.param(("context", "encounterId"), "", "context.encounterId", None, id="encounterId-empty"),
    pytest.param(
        ("context", "encounterId"), "Encounter/1", "context.encounterId", None, id="encounterId-reference"
    ),
    pytest.param(("context", "encounterId"), 5, "context.encounterId", None, id="encounterId-number"),
    pytest.param(("context", "encounterId"), "enc 1", "context.encounterId", None, id="encounterId-space"),
    # context.draftOrders
    pytest.param(("context", "draftOrders"), MISSING, "context.draftOrders", None, id="draftOrders-missing"),
    pytest.param(("context", "draftOrders"), [], "context.draftOrders", None, id="draftOrders-list"),
    pytest.param(("context", "draftOrders"), "Bundle", "context.draftOrders", None, id="draftOrders-string"),
    pytest.param(
        ("context", "draftOrders", "resourceType"),
        "Parameters",
        "context.draftOrders.resourceType",
        "context.draftOrders",
        id="draftOrders-not-bundle",
    ),
    pytest.param(
        ("context", "draftOrders", "resourceType"),
        MISSING,
        "context.draftOrders.resourceType",
        "context.draftOrders",
        id="draftOrders-no-resourceType",
    ),
    pytest.param(
        ("context", "draftOrders", "entry"),
        {"resource": {}},
        "context.draftOrders.entry",
        None,
        id="entry-object",
    ),
    pytest.param(
        ("context", "draftOrders", "entry"), "entries", "context.draftOrders.entry", None, id="entry-string"
    ),
    pytest.param(ENTRY1, "MedicationRequest/x", ENTRY1_PATH, None, id="entry-item-not-object"),
    pytest.param(RESOURCE1, MISSING, RESOURCE1_PATH, None, id="entry-without-resource"),
    pytest.param(RESOURCE1, "MedicationRequest/x", RESOURCE1_PATH, None, id="entry-resource-string"),
    pytest.param(
        (*RESOURCE1, "resourceType"),
        MISSING,
        f"{RESOURCE1_PATH}.resourceType",
        None,
        id="resource-no-resourceType",
    ),
    pytest.param(
        (*RESOURCE1, "resourceType"),
        3,
        f"{RESOURCE1_PATH}.resourceType",
        None,
        id="resource-resourceType-number",
    ),
    pytest.param((*RESOURCE1, "id"), MISSING, f"{RESOURCE1_PATH}.id", None, id="resource-no-id"),
    pytest.param((*RESOURCE1, "id"), "", f"{RESOURCE1_PATH}.id", None, id="resource-id-empty"),
    pytest.param((*RESOURCE1, "id"), "has space", f"{RESOURCE1_PATH}.id", None, id="resource-id-space"),
    pytest.param(
        (*RESOURCE1, "id"), "MedicationRequest/x", f"{RESOURCE1_PATH}.id", None, id="resource-id-slash"
    ),
    pytest.param((*RESOURCE1, "id"), "x" * 65, f"{RESOURCE1_PATH}.id", None, id="resource-id-too-long"),
    pytest.param((*RESOURCE1, "id"), "mr_1", f"{RESOURCE1_PATH}.id", None, id="resource-id-underscore"),
    pytest.param((*RESOURCE1, "id"), 17, f"{RESOURCE1_PATH}.id", None, id="resource-id-number"),
    # an order's extensions are sent back with coverage information added: never one that is not FHIR's
    # (fidelity review F-5: an object or a null among them was dropped from the order sent back)
    pytest.param(
        (*RESOURCE1, "extension"), {"url": "x"}, f"{RESOURCE1_PATH}.extension", None, id="extension-object"
    ),
    pytest.param(
        (*RESOURCE1, "extension"), [None], f"{RESOURCE1_PATH}.extension[0]", None, id="extension-item-null"
    ),
    pytest.param(
        (*RESOURCE1, "extension"),
        [{"url": "x"}, "y"],
        f"{RESOURCE1_PATH}.extension[1]",
        None,
        id="extension-item-string",
    ),
    # context.selections (order-select only)
    pytest.param(("context", "selections"), MISSING, "context.selections", None, id="selections-missing"),
    pytest.param(("context", "selections"), [], "context.selections", None, id="selections-empty"),
    pytest.param(
        ("context", "selections"), SELECTED_ORDER, "context.selections", None, id="selections-string"
    ),
    pytest.param(
        ("context", "selections"), {"0": SELECTED_ORDER}, "context.selections", None, id="selections-object"
    ),
    pytest.param(("context", "selections"), [5], "context.selections[0]", None, id="selections-item-number"),
    pytest.param(
        ("context", "selections"),
        [{"reference": SELECTED_ORDER}],
        "context.selections[0]",
        None,
        id="selections-item-object",
    ),
    pytest.param(
        ("context", "selections"),
        ["demo-meets-select-sr-62362"],
        "context.selections[0]",
        None,
        id="selections-item-bare-id",
    ),
    pytest.param(
        ("context", "selections"),
        ["ServiceRequest/"],
        "context.selections[0]",
        None,
        id="selections-item-no-id",
    ),
    pytest.param(
        ("context", "selections"),
        ["ServiceRequest/unknown-order"],
        "context.selections[0]",
        None,
        id="selections-item-not-in-drafts",
    ),
    pytest.param(
        ("context", "selections"),
        ["DeviceRequest/demo-meets-select-sr-62362"],
        "context.selections[0]",
        None,
        id="selections-item-wrong-type",
    ),
    pytest.param(
        ("context", "selections"),
        [SELECTED_ORDER, "ServiceRequest/unknown-order"],
        "context.selections[1]",
        None,
        id="selections-second-item-not-in-drafts",
    ),
    # prefetch / extension
    pytest.param(("prefetch",), [], "prefetch", None, id="prefetch-list"),
    pytest.param(("prefetch",), "Patient/123", "prefetch", None, id="prefetch-string"),
    pytest.param(("extension",), [], "extension", None, id="extension-list"),
    pytest.param(("extension",), "davinci-crd.configuration", "extension", None, id="extension-string"),
    # fhirServer
    pytest.param(("fhirServer",), "ehr.example.org/fhir", "fhirServer", None, id="fhirServer-no-scheme"),
    pytest.param(("fhirServer",), "/fhir", "fhirServer", None, id="fhirServer-relative"),
    pytest.param(("fhirServer",), "ftp://ehr.example.org/fhir", "fhirServer", None, id="fhirServer-ftp"),
    pytest.param(("fhirServer",), "https://", "fhirServer", None, id="fhirServer-no-host"),
    pytest.param(("fhirServer",), "", "fhirServer", None, id="fhirServer-empty"),
    pytest.param(("fhirServer",), 443, "fhirServer", None, id="fhirServer-number"),
]


@pytest.mark.parametrize(("path", "value", "expression", "mention"), FIELD_CASES)
def test_invalid_field_is_400_naming_the_field(
    client: FlaskClient, path: JsonPath, value: Any, expression: str, mention: str | None
) -> None:
    response = post_json(client, SELECT_URL, mutate(select_body(), path, value))
    issue = assert_outcome(response, 400, expression, mention)
    assert issue["code"] in {"invalid", "required", "structure"}


@pytest.mark.parametrize(
    ("path", "value", "expression"),
    [
        pytest.param(("context", "patientId"), "demo-meets\n", "context.patientId", id="patientId"),
        pytest.param(("context", "userId"), "Practitioner/x\n", "context.userId", id="userId"),
        pytest.param(("context", "encounterId"), "enc1\n", "context.encounterId", id="encounterId"),
        pytest.param((*RESOURCE1, "id"), "mr1\n", f"{RESOURCE1_PATH}.id", id="resource-id"),
    ],
)
def test_id_with_trailing_newline_is_rejected(
    client: FlaskClient, path: JsonPath, value: str, expression: str
) -> None:
    """A FHIR id is [A-Za-z0-9-.]{1,64}: a trailing newline is not part of any valid id or reference."""
    response = post_json(client, SELECT_URL, mutate(select_body(), path, value))
    assert_outcome(response, 400, expression)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("urn:uuid:ec7ac8ad-1b2b-406b-aae1-2c972399d29d", id="urn-prefix"),
        pytest.param("{ec7ac8ad-1b2b-406b-aae1-2c972399d29d}", id="braces"),
        pytest.param("ec7ac8ad1b2b406baae12c972399d29d", id="no-hyphens"),
    ],
)
def test_hook_instance_must_be_a_canonical_uuid_string(client: FlaskClient, value: str) -> None:
    """hookInstance is a UUID string (8-4-4-4-12 hex); Inferno checks it with the UUID regex."""
    response = post_json(client, SELECT_URL, mutate(select_body(), ("hookInstance",), value))
    assert_outcome(response, 400, "hookInstance")


def test_fhir_server_with_space_in_host_is_rejected(client: FlaskClient) -> None:
    body = mutate(select_body(), ("fhirServer",), "https://ehr .example.org/fhir")
    assert_outcome(post_json(client, SELECT_URL, body), 400, "fhirServer")


@pytest.mark.parametrize(
    ("path", "value", "expression"),
    [
        pytest.param(("context", "patientId"), "Patient/demo-meets", "context.patientId", id="patientId"),
        pytest.param(("context", "userId"), "abc", "context.userId", id="userId"),
        pytest.param(("context", "draftOrders"), MISSING, "context.draftOrders", id="draftOrders-missing"),
        pytest.param(
            ("context", "draftOrders", "entry", 2, "resource", "id"),
            MISSING,
            "context.draftOrders.entry[2].resource.id",
            id="resource-no-id",
        ),
        pytest.param(("hookInstance",), "nope", "hookInstance", id="hookInstance"),
    ],
)
def test_order_sign_validates_the_same_fields(
    client: FlaskClient, path: JsonPath, value: Any, expression: str
) -> None:
    response = post_json(client, SIGN_URL, mutate(sign_body(), path, value))
    assert_outcome(response, 400, expression)


def test_order_sign_does_not_require_selections(client: FlaskClient) -> None:
    body = sign_body()
    assert "selections" not in body["context"]
    response = post_json(client, SIGN_URL, body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert isinstance(cards, list) and cards


@pytest.mark.parametrize(
    ("url", "body", "sent", "expected"),
    [
        pytest.param(SELECT_URL, sign_body, "order-sign", "order-select", id="sign-body-to-select-service"),
        pytest.param(SIGN_URL, select_body, "order-select", "order-sign", id="select-body-to-sign-service"),
    ],
)
def test_hook_not_matching_the_service_is_400(
    client: FlaskClient, url: str, body: Callable[[], dict[str, Any]], sent: str, expected: str
) -> None:
    issue = assert_outcome(post_json(client, url, body()), 400, "hook")
    assert sent in issue["diagnostics"] and expected in issue["diagnostics"]


# --------------------------------------------------------------------------- FHIR access fields


def test_fhir_authorization_without_fhir_server_is_400_on_fhir_server(client: FlaskClient) -> None:
    body = with_fhir(select_body())
    del body["fhirServer"]
    issue = assert_outcome(post_json(client, SELECT_URL, body), 400, "fhirServer")
    assert "fhirAuthorization" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("path", "value", "expression"),
    [
        pytest.param(("fhirAuthorization",), "Bearer abc", "fhirAuthorization", id="auth-string"),
        pytest.param(("fhirAuthorization",), [TOKEN], "fhirAuthorization", id="auth-list"),
        pytest.param(
            ("fhirAuthorization", "access_token"),
            MISSING,
            "fhirAuthorization.access_token",
            id="access_token-missing",
        ),
        pytest.param(
            ("fhirAuthorization", "access_token"),
            "",
            "fhirAuthorization.access_token",
            id="access_token-empty",
        ),
        pytest.param(
            ("fhirAuthorization", "access_token"),
            12345,
            "fhirAuthorization.access_token",
            id="access_token-number",
        ),
        pytest.param(
            ("fhirAuthorization", "token_type"), "", "fhirAuthorization.token_type", id="token_type-empty"
        ),
        pytest.param(
            ("fhirAuthorization", "token_type"), 1, "fhirAuthorization.token_type", id="token_type-number"
        ),
        pytest.param(
            ("fhirAuthorization", "token_type"), "MAC", "fhirAuthorization.token_type", id="token_type-mac"
        ),
        pytest.param(
            ("fhirAuthorization", "token_type"),
            "Basic",
            "fhirAuthorization.token_type",
            id="token_type-basic",
        ),
        pytest.param(("fhirServer",), "fhir.example.org", "fhirServer", id="fhirServer-not-absolute"),
        pytest.param(("fhirServer",), "file:///etc/passwd", "fhirServer", id="fhirServer-file"),
        pytest.param(("fhirServer",), "http://[::1", "fhirServer", id="fhirServer-open-bracket"),
        pytest.param(("fhirServer",), "http://[x]/fhir", "fhirServer", id="fhirServer-bad-ipv6"),
        pytest.param(("fhirServer",), "http://host:99999/fhir", "fhirServer", id="fhirServer-bad-port"),
        pytest.param(
            ("fhirAuthorization", "access_token"),
            "tök€n",
            "fhirAuthorization.access_token",
            id="token-non-ascii",
        ),
        pytest.param(
            ("fhirAuthorization", "access_token"), "a b", "fhirAuthorization.access_token", id="token-space"
        ),
        pytest.param(
            ("fhirAuthorization", "expires_in"),
            MISSING,
            "fhirAuthorization.expires_in",
            id="expires_in-missing",
        ),
        pytest.param(
            ("fhirAuthorization", "expires_in"), "30", "fhirAuthorization.expires_in", id="expires_in-string"
        ),
        pytest.param(("fhirAuthorization", "scope"), " ", "fhirAuthorization.scope", id="scope-blank"),
        pytest.param(("fhirAuthorization", "scope"), ["a"], "fhirAuthorization.scope", id="scope-list"),
        pytest.param(("fhirAuthorization", "subject"), 7, "fhirAuthorization.subject", id="subject-number"),
        pytest.param(
            ("fhirAuthorization", "expires_in"), -1, "fhirAuthorization.expires_in", id="expires_in-negative"
        ),
        pytest.param(("fhirAuthorization", "patient"), 7, "fhirAuthorization.patient", id="patient-number"),
        pytest.param(
            ("fhirAuthorization", "patient"),
            "another-patient",
            "fhirAuthorization.patient",
            id="patient-another",  # ehr20 L2: a token scoped to another patient than the context's
        ),
    ],
)
def test_invalid_fhir_access_is_400(client: FlaskClient, path: JsonPath, value: Any, expression: str) -> None:
    body = mutate(with_fhir(select_body()), path, value)
    response = post_json(client, SELECT_URL, body)
    assert_outcome(response, 400, expression)
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("token_type", ["Bearer", "bearer"])
def test_valid_fhir_access_is_accepted(client: FlaskClient, token_type: str) -> None:
    body = mutate(with_fhir(select_body()), ("fhirAuthorization", "token_type"), token_type)
    body["fhirAuthorization"]["patient"] = body["context"]["patientId"]
    body["fhirAuthorization"]["expires_in"] = 0
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200
    assert isinstance(response.get_json()["cards"], list)


def test_the_inferno_kits_token_alone_is_accepted_and_used(client: FlaskClient) -> None:
    """Today's Inferno kit, given a body without `fhirAuthorization`, sends only `access_token` and
    `expires_in` (jobs/invoke_hook.rb); the service uses only the token, as a Bearer one, so it is
    accepted: without token_type, scope or subject (inferno review s18 K-2)."""
    body = with_fhir(select_body())
    body["fhirAuthorization"] = {"expires_in": 300, "access_token": TOKEN}
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    request = parse_hook_request(body, find_service("idds-crd-order-select"))
    assert (request.fhir.access_token, request.fhir.usable) == (TOKEN, True)


# --------------------------------------------------------------------------- tolerated input


def _summaries(response: TestResponse) -> list[str]:
    return [card["summary"] for card in cards_of(response.get_json()["cards"])]


def test_unknown_fields_are_ignored(client: FlaskClient) -> None:
    baseline = post_json(client, SELECT_URL, select_body())
    assert baseline.status_code == 200

    body = select_body()
    body["unknownTopLevel"] = {"nested": [1, 2, 3]}
    body["x-vendor"] = "ignored"
    body["context"]["unknownContextField"] = "Patient/whatever"
    body["context"]["draftOrders"]["entry"][0]["resource"]["vendorExtension"] = True
    body["extension"] = {
        "org.example.unknown": {"a": 1},
        "davinci-crd.configuration": {"not-a-real-option": True},
    }
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200
    assert _summaries(response) == _summaries(baseline)
    assert len(_summaries(response)) == 1


def test_null_prefetch_is_accepted_and_data_is_queried() -> None:
    factory = RecordingFactory(RecordingFhirClient())
    client = build_app(factory).test_client()
    response = post_json(client, SELECT_URL, with_fhir(mutate(select_body(), ("prefetch",), None)))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1
    assert ("read", "Patient/demo-meets") in factory.client.calls


def test_null_prefetch_without_fhir_server_is_412(client: FlaskClient) -> None:
    response = post_json(client, SELECT_URL, mutate(select_body(), ("prefetch",), None))
    assert response.status_code == 412
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"][0] in ("prefetch.patient", "prefetch.coverage")


@pytest.mark.parametrize(
    ("failure", "remedy"),
    [
        (NotAsked(NOT_ASKED), "send it as prefetch, or call again in a moment"),
        (
            FhirError("HTTP 503"),
            "send it as prefetch or provide a reachable fhirServer with fhirAuthorization",
        ),
    ],
)
def test_a_412_says_to_call_again_when_the_server_was_not_asked(failure: FhirError, remedy: str) -> None:
    """A call held back from its FHIR server (service/fhir/server_share.py: the client's NotAsked) was
    not let ask a server that may well be reachable: the remedy is to call again, not to fix the
    fhirServer."""
    client = build_app(RecordingFactory(RecordingFhirClient(failure))).test_client()
    response = post_json(client, SELECT_URL, with_fhir(mutate(select_body(), ("prefetch",), None)))
    assert response.status_code == 412
    text = response.get_json()["issue"][0]["diagnostics"]
    read = "not read" if isinstance(failure, NotAsked) else "could not be read"
    assert text == (
        f"coverage and patient were not prefetched and {read} from the EHR's FHIR server "
        f"({failure.reason}); {remedy}"
    )


def test_prefetch_object_is_accepted(client: FlaskClient) -> None:
    prefetch = {"patient": {"resourceType": "Patient", "id": "demo-meets"}, "coverage": None}
    response = post_json(client, SELECT_URL, mutate(select_body(), ("prefetch",), prefetch))
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_sample_requests_are_valid(client: FlaskClient) -> None:
    samples = sorted(REQUESTS_DIR.glob("*.json"))
    assert len(samples) >= 2
    for sample in samples:
        body = load_sample(sample.name)
        response = post_json(client, f"/cds-services/idds-crd-{body['hook']}", body)
        assert response.status_code == 200, sample.name
        assert isinstance(response.get_json()["cards"], list), sample.name


# --------------------------------------------------------------------------- routing errors


def test_unknown_service_id_is_404(client: FlaskClient) -> None:
    response = post_json(client, "/cds-services/no-such-service", select_body())
    issue = assert_outcome(response, 404, None)
    assert issue["code"] == "not-found"
    assert "no-such-service" in issue["diagnostics"]


def test_an_unknown_service_id_holding_a_credential_is_not_echoed_with_it(client: FlaskClient) -> None:
    token = "eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtdG9rZW4tc2VudC1ieS1taXN0YWtl"
    for path in (f"idds-crd-order-select;access_token={token}", f"idds-crd-order-select;{token}"):
        response = post_json(client, f"/cds-services/{path}", select_body())
        issue = assert_outcome(response, 404, None)
        assert "idds-crd-order-select" in issue["diagnostics"]
        assert token[:20] not in issue["diagnostics"] and "[removed]" in issue["diagnostics"]


@pytest.mark.parametrize("route", ["/policies", "/fhir/CodeSystem", "/fhir/Questionnaire"])
def test_an_unknown_published_id_holding_a_credential_is_not_echoed_with_it(
    client: FlaskClient, route: str
) -> None:
    """review25a: the policy, CodeSystem and Questionnaire 404s quoted the id as sent, as the service
    404 did before (harden25 A3)."""
    token = "s3cr3t-opaque-7f3c1a9e"
    response = client.get(f"{route}/nope;access_token={token}")
    issue = assert_outcome(response, 404, None)
    assert "nope;access_token=[removed]" in issue["diagnostics"]
    assert token not in issue["diagnostics"]


def test_unknown_path_is_404_operation_outcome(client: FlaskClient) -> None:
    response = client.get("/no/such/path")
    issue = assert_outcome(response, 404, None)
    assert issue["code"] == "not-found"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_on_service_is_405_with_allow(client: FlaskClient, method: str) -> None:
    response = client.open(
        SELECT_URL, method=method, data=json.dumps(select_body()), content_type="application/json"
    )
    issue = assert_outcome(response, 405, None)
    assert issue["code"] == "not-supported"
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert "POST" in allow
    assert method not in allow


# --------------------------------------------------------------------------- discovery

VERSION_PATTERN = re.compile(r"^[1-9]\d*\.[1-9]\d*$")
OPTION_TYPES: dict[str, type] = {"boolean": bool, "integer": int}


def test_discovery_lists_a_service_for_every_crd_hook(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    services = response.get_json()["services"]
    assert isinstance(services, list)
    assert {(s["id"], s["hook"]) for s in services} == {
        ("idds-crd-order-select", "order-select"),
        ("idds-crd-order-sign", "order-sign"),
        ("idds-crd-appointment-book", "appointment-book"),
        ("idds-crd-order-dispatch", "order-dispatch"),
        ("idds-crd-encounter-start", "encounter-start"),
        ("idds-crd-encounter-discharge", "encounter-discharge"),
    }
    assert len(services) == 6


SERVICE_IDS = [
    "idds-crd-order-select",
    "idds-crd-order-sign",
    "idds-crd-order-dispatch",
    "idds-crd-appointment-book",
    "idds-crd-encounter-start",
    "idds-crd-encounter-discharge",
]


@pytest.mark.parametrize("service_id", SERVICE_IDS)
def test_discovery_service_entry(client: FlaskClient, service_id: str) -> None:
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    entry = services[service_id]
    for key in ("hook", "id", "title", "description"):
        assert isinstance(entry[key], str) and entry[key].strip(), key
    prefetch = entry["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert prefetch["coverage"] == "Coverage?patient={{context.patientId}}&status=active"  # CRD 2.2.1's
    assert prefetch["payerOrganizations"] == "Organization?_has:Coverage:payor:patient={{context.patientId}}"
    clinical = {
        "conditions": "Condition",
        "medicationRequests": "MedicationRequest",
        "medicationStatements": "MedicationStatement",
        "procedures": "Procedure",
        "observations": "Observation",
        "painScores": "Observation",
        "patientDevices": "Device",
        "allergyIntolerances": "AllergyIntolerance",
        "questionnaireResponses": "QuestionnaireResponse",
    }
    if entry["hook"].startswith("encounter-"):  # the open orders those services judge
        clinical |= {"openServiceRequests": "ServiceRequest", "openDeviceRequests": "DeviceRequest"}
    if entry["hook"] in ("order-select", "order-sign"):  # the trials already ordered (next_steps.py)
        clinical |= {"openTrialOrders": "ServiceRequest", "openTrialDeviceOrders": "DeviceRequest"}
    dispatched = DISPATCHED_PREFETCH if entry["hook"] == "order-dispatch" else {}
    encounter = ENCOUNTER_PREFETCH if entry["hook"].startswith("encounter-") else {}  # CRD 2.2.1's own
    assert set(prefetch) == {"patient", "coverage", "payerOrganizations", *clinical, *dispatched, *encounter}
    for key, template in encounter.items():
        assert prefetch[key] == template == "Encounter/{{context.encounterId}}"
    for key, template in dispatched.items():  # CRD 2.2.1's own (CRDServices.json)
        resource_type = template.split("?", 1)[0]
        assert prefetch[key] == (
            f"{resource_type}?_id={{{{context.dispatchedOrders.resolve().ofType({resource_type}).id}}}}"
        )
    for key, resource_type in clinical.items():
        assert prefetch[key].startswith(f"{resource_type}?patient={{{{context.patientId}}}}"), key
        assert not set(re.findall(r"\{\{([^}]*)\}\}", prefetch[key])) - {"context.patientId"}, key
    assert "&_include=MedicationRequest:medication" in prefetch["medicationRequests"]
    assert "&_include=MedicationStatement:medication" in prefetch["medicationStatements"]
    assert "http://loinc.org|72514-3" in prefetch["painScores"]
    assert "http://loinc.org|75327-7" in prefetch["observations"]
    assert "http://idds-crd.org/fhir/CodeSystem/idds-assessment|" in prefetch["observations"]
    versions = entry["extension"]["davinci-crd.version"]
    assert isinstance(versions, list) and versions
    for version in versions:
        assert isinstance(version, str) and VERSION_PATTERN.match(version), version

    options = entry["extension"]["davinci-crd.configuration-options"]
    assert isinstance(options, list) and options
    codes = [option["code"] for option in options]
    assert len(codes) == len(set(codes))
    for option in options:
        assert isinstance(option, dict)
        for key in ("code", "name", "description"):
            assert isinstance(option[key], str) and option[key].strip(), (option, key)
        assert option["type"] in OPTION_TYPES
        default = option["default"]
        assert isinstance(default, OPTION_TYPES[option["type"]]), option
        if option["type"] == "integer":
            assert not isinstance(default, bool), option
    assert any(o["type"] == "boolean" for o in options)


def test_a_call_reads_each_advertised_option_with_its_advertised_default() -> None:
    """The options a call is answered by are the ones discovery advertises, defaults included: one
    declaration (service/registry.py), read as given when of the declared type, else the default."""
    defaults = CallOptions.of(None)
    for option in CONFIGURATION_OPTIONS:
        field = option["code"].replace("-", "_")
        assert getattr(defaults, field) == option["default"], option["code"]
    given = CallOptions.of(
        {"guideline": False, "max-cards": 3, "coverage-info": "false", "unsolicited-determ": 0}
    )
    assert (given.guideline, given.max_cards, given.coverage_info, given.unsolicited_determ) == (
        False,
        3,
        True,
        True,
    )
    assert CallOptions.of({"max-cards": -1}).max_cards == CallOptions.of({"max-cards": True}).max_cards == 10


def test_discovery_service_ids_are_callable(client: FlaskClient) -> None:
    bodies = {
        "order-select": select_body,
        "order-sign": sign_body,
        "appointment-book": lambda: load_sample("appointment-book-62362-demo-meets.json"),
        "order-dispatch": lambda: load_sample("order-dispatch-62362-demo-meets.json"),
        "encounter-start": lambda: load_sample("encounter-start-demo-meets.json"),
        "encounter-discharge": lambda: load_sample("encounter-discharge-demo-meets.json"),
    }
    for entry in client.get("/cds-services").get_json()["services"]:
        response = post_json(client, f"/cds-services/{entry['id']}", bodies[entry["hook"]]())
        assert response.status_code == 200, entry["id"]


# --------------------------------------------------------------------------- no FHIR for non-pump orders


def test_non_pump_order_gets_no_card_no_clinical_query_and_honest_coverage_information() -> None:
    """CRD §resp-29: every order gets coverage information; one no policy here addresses says so
    (conditional, never covered or not-covered) and gets no card."""
    factory = RecordingFactory(RecordingFhirClient())
    client = build_app(factory).test_client()
    body = with_fhir(non_pump_body())
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["cards"] == []
    [action] = answer["systemActions"]
    text = json.dumps(action["resource"]["extension"])
    assert '"valueCode": "conditional"' in text and "holds no coverage rules for code 99213" in text
    assert '"valueCode": "covered"' not in text and "not-covered" not in text
    # the Coverage was prefetched without its payer Organization: that is read, nothing clinical is
    assert factory.client.calls == [("read", "Organization/demo-meets-org-geha")]


def test_behind_a_payer_gateway_orders_without_rules_get_no_answer() -> None:
    """The `only_orders_with_rules` switch: a payer's own CRD gateway answers the other orders."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(only_orders_with_rules=True), client_factory=factory)
    body = with_fhir(non_pump_body())
    response = post_json(app.test_client(), SELECT_URL, body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    assert len(factory.requests) == 1
    assert factory.requests[0].fhir.server == FHIR_SERVER
    assert factory.client.calls == []


def test_pump_order_does_query_the_fake_client() -> None:
    """Control for the test above: the same fake does see queries when the order is a pump order."""
    factory = RecordingFactory(RecordingFhirClient())
    client = build_app(factory).test_client()
    response = post_json(client, SELECT_URL, with_fhir(select_body()))
    assert response.status_code == 200
    assert len(cards_of(response.get_json()["cards"])) == 1
    searched = {args[0] for kind, args in factory.client.calls if kind == "search"}
    assert "Condition" in searched
    params = [args[1] for kind, args in factory.client.calls if kind == "search"]
    assert params and all(p["patient"] == "demo-meets" for p in params)


# --------------------------------------------------------------------------- token hygiene


def test_access_token_never_logged_when_fhir_fails(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    factory = RecordingFactory(RecordingFhirClient(error=FhirError("HTTP 500")))
    client = build_app(factory).test_client()
    response = post_json(client, SELECT_URL, with_fhir(select_body()))
    text = response.get_data(as_text=True)

    assert response.status_code == 200
    assert factory.client.calls, "the failing client was never used"
    assert "HTTP 500" in caplog.text  # the failures were logged ...
    assert TOKEN not in caplog.text  # ... without the token
    assert TOKEN not in text
    cards = cards_of(response.get_json()["cards"])
    assert len(cards) == 1
    assert "could not be checked" in cards[0]["detail"]
    assert "Traceback" not in text


def test_access_token_not_logged_on_validation_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = build_app().test_client()
    body = mutate(with_fhir(select_body()), ("context", "patientId"), "Patient/1")
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 400
    assert TOKEN not in caplog.text
    assert TOKEN not in response.get_data(as_text=True)


def test_empty_draft_orders_is_400(client: FlaskClient) -> None:
    body = mutate(select_body(), ("context", "draftOrders", "entry"), [])
    del body["context"]["selections"]
    response = post_json(client, SIGN_URL, dict(body, hook="order-sign"))
    assert_outcome(response, 400, "context.draftOrders.entry")


def test_deeply_nested_body_is_400(client: FlaskClient) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    response = client.post(SELECT_URL, data=raw, content_type="application/json")
    assert_outcome(response, 400, "$")


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(SELECT_URL, data=b" " * (17 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("coding",), [{"system": 5, "code": "62362"}], id="numeric-system"),
        pytest.param(("coding",), 5, id="coding-number"),
        pytest.param(("extension",), 5, id="extension-number"),
    ],
)
def test_odd_shapes_in_draft_orders_never_fail(client: FlaskClient, path: JsonPath, value: Any) -> None:
    body = select_body()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    mutate(order["code"], path, value)
    order["contained"] = 5
    order["reasonCode"] = 5
    order["orderDetail"] = {"text": "x"}
    body["context"]["draftOrders"]["entry"][1]["resource"]["dosageInstruction"] = 5
    body["context"]["draftOrders"]["entry"][1]["resource"]["medicationReference"] = "Medication/x"
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_every_card_type_switched_off_reads_nothing_and_returns_no_cards() -> None:
    factory = RecordingFactory(RecordingFhirClient())
    body = with_fhir(select_body())
    off = {"coverage-info": False, "guideline": False, "clinical-reminder": False}
    body["extension"] = {"davinci-crd.configuration": off}
    response = post_json(build_app(factory).test_client(), SELECT_URL, body)
    assert response.get_json() == {"cards": []}
    assert factory.client.calls == []


@pytest.mark.parametrize("url", [SELECT_URL, SIGN_URL])
def test_coverage_info_false_switches_off_its_card_type_and_the_coverage_information_only(url: str) -> None:
    """CDS Hooks §dev-5 (CRD): an option set to false suppresses that card type; discovery offers
    `guideline` and `clinical-reminder` as options of their own."""
    body = with_fhir(select_body() if url == SELECT_URL else sign_body())
    body["extension"] = {"davinci-crd.configuration": {"coverage-info": False}}
    answer = post_json(build_app(RecordingFactory(RecordingFhirClient())).test_client(), url, body).get_json()
    topics = {card["source"]["topic"]["code"] for card in answer["cards"]}
    assert topics == {"guideline", "clinical-reminder"} and "systemActions" not in answer


# Uncapped, the three signed lines (no data) give one decision card for the payer, one proposal to
# order the trial first, one list of what to document, and one policy link.
@pytest.mark.parametrize(("max_cards", "expected"), [(0, 0), (2, 2), ("three", 4), (None, 4)])
def test_max_cards_caps_the_cards(max_cards: Any, expected: int) -> None:
    body = with_fhir(sign_body())
    if max_cards is not None:
        body["extension"] = {"davinci-crd.configuration": {"max-cards": max_cards, "unknown-option": 1}}
    response = post_json(build_app(RecordingFactory(RecordingFhirClient())).test_client(), SIGN_URL, body)
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == expected
