"""The OpenAPI 3.1 description of the service (`GET /openapi.json`), generated, never written by hand.

The service calls and their feedback endpoints come from the registry (one path per service, each
with the request schema of its hook and order source), and the request schemas state what
`parse_hook_request` accepts: the same patterns, the same bounds, the same conditional fields. So
API tooling (and the fuzz test in CI) can drive every endpoint from this document, and a change to
validation that this file does not follow shows up as a failing test. The 400 a refused Host gets
(service/host_header.py) is listed on every operation, as the check runs before every route.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from service.feedback import MAX_COMMENT, MAX_ITEMS, OUTCOMES, RFC3339
from service.hooks.contexts import context_rules
from service.hooks.models import (
    BEARER_TOKEN,
    CANONICAL_UUID,
    HOOK_INSTANCE,
    ID_PATTERN,
    MAX_ORDERS,
    MAX_PREFETCH_ENTRIES,
    MAX_PREFETCH_LINKS,
    ORDER_REFERENCE,
    typed_reference,
)
from service.host_header import FIELDS as HOST_FIELDS
from service.http_input import JSON_MEDIA_TYPES
from service.registry import ANSWERED_VERSIONS, SERVICES, OrderSource, ServiceDefinition
from service.routes import PROBE_PATHS
from service.version import service_version

Schema = dict[str, Any]
NON_BLANK: Schema = {"type": "string", "pattern": r"\S"}
# A request whose Host is missing (HTTP/1.1) or invalid is refused on every route, before the route runs
# (`routes.install_http_edge`); the probes (`routes.PROBE_PATHS`) answer one with no Host at all.
HOST_REFUSED = (
    "The Host header (or, from a trusted proxy, X-Forwarded-Host or X-Forwarded-Proto) is missing in "
    "HTTP/1.1 or invalid: the OperationOutcome names the header (http.Host, ...)."
)
PROBE_HOST_REFUSED = (
    "The Host header (or, from a trusted proxy, X-Forwarded-Host or X-Forwarded-Proto) is invalid: the "
    "OperationOutcome names the header (http.Host, ...). A request with no Host at all is answered."
)
REFUSALS = {
    "400": "The body is not strict JSON, or a field is invalid (the OperationOutcome names it). "
    + HOST_REFUSED,
    "401": "The call carries no valid JWT of a trusted client (no detail is given).",
    "404": "No such service, or no such card for feedback.",
    "413": "The body is larger than the configured max_request_bytes.",
    "415": "The body is not application/json (or application/fhir+json) in UTF-8.",
}


def _anchored(pattern: str) -> str:
    """A pattern the code applies with fullmatch, anchored for JSON Schema."""
    core = pattern.removeprefix("^").removesuffix("$")
    return f"^(?:{core})$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _pattern(pattern: str) -> Schema:
    return {"type": "string", "pattern": _anchored(pattern)}


def _orders_bundle(must_hold: str | None = None) -> Schema:
    """context.draftOrders / context.appointments: a Bundle of 1..MAX_ORDERS resources with ids."""
    entry: Schema = {
        "type": "object",
        "required": ["resource"],
        "properties": {"resource": _ref("Resource"), "fullUrl": {"type": "string"}},
    }
    bundle: Schema = {
        "type": "object",
        "required": ["resourceType", "entry"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "entry": {"type": "array", "minItems": 1, "maxItems": MAX_ORDERS, "items": entry},
        },
    }
    if must_hold is not None:
        bundle["properties"]["entry"]["contains"] = {
            "properties": {"resource": {"properties": {"resourceType": {"const": must_hold}}}}
        }
    return bundle


def _references(item: Schema, min_items: int = 1) -> Schema:
    return {"type": "array", "minItems": min_items, "maxItems": MAX_ORDERS, "items": item}


def _precondition(service: ServiceDefinition) -> str:
    """What a 412 from the service means: what it needs and could neither find nor read."""
    if service.behaviour.orders_from == OrderSource.DISPATCHED:
        return (
            "Patient, Coverage or a dispatched order neither prefetched nor readable from fhirServer "
            "(the OperationOutcome names each: prefetch.patient, context.dispatchedOrders[0], ...)."
        )
    return "Patient or Coverage neither prefetched nor readable from fhirServer."


def _context(service: ServiceDefinition) -> Schema:
    """The context a service needs: who and where by its hook's row of HOOK_CONTEXTS, the orders by
    where it finds them."""
    source, rules = service.behaviour.orders_from, context_rules(service.hook)
    properties: Schema = {"patientId": _ref("FhirId"), "encounterId": _ref("FhirId")}
    required = ["patientId"]
    extra: Schema = {}
    if rules.encounter_required:
        required.append("encounterId")
    if rules.user_types:
        properties["userId"] = _pattern(typed_reference(rules.user_types).pattern)
        required.append("userId")
    if rules.performer:
        properties["performer"] = _pattern(ORDER_REFERENCE.pattern)
        required.append("performer")
    if source == OrderSource.DISPATCHED:
        order = _pattern(typed_reference(tuple(sorted(rules.order_types))).pattern)
        properties |= {"dispatchedOrders": _references(order), "order": order}
        extra["anyOf"] = [{"required": ["dispatchedOrders"]}, {"required": ["order"]}]
    if source in (OrderSource.DRAFT_ORDERS, OrderSource.SELECTIONS):
        properties["draftOrders"] = _orders_bundle()
        required.append("draftOrders")
    if source == OrderSource.SELECTIONS:
        properties["selections"] = _references(_pattern(ORDER_REFERENCE.pattern))
        required.append("selections")
        extra["description"] = "Each selection names an entry of draftOrders (Type/id or its fullUrl)."
    if source == OrderSource.APPOINTMENTS:
        properties["appointments"] = _orders_bundle(must_hold="Appointment")
        required.append("appointments")
    return {"type": "object", "required": required, "properties": properties, **extra}


def hook_request_schema(service: ServiceDefinition) -> Schema:
    """The body `POST /cds-services/{service.id}` accepts (CDS Hooks 2.0, the hook's context)."""
    return {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"const": service.hook},
            "hookInstance": _pattern(HOOK_INSTANCE.pattern),
            "fhirServer": {
                "type": "string",
                "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+(/\S*)?$",
                "description": "The EHR's FHIR base URL (absolute http(s), a host, a valid port).",
            },
            "fhirAuthorization": _ref("FhirAuthorization"),
            "context": _context(service),
            "prefetch": {
                "type": ["object", "null"],
                "description": "Key → resource, searchset Bundle, OperationOutcome or null. Values that "
                "are not FHIR resources, and Bundles of more than "
                f"{MAX_PREFETCH_ENTRIES} entries or {MAX_PREFETCH_LINKS} links, count as failed prefetch "
                "(queried where a fhirServer is given).",
            },
            "extension": {
                "type": "object",
                "properties": {"davinci-crd.requestedVersion": {"enum": list(ANSWERED_VERSIONS)}},
            },
        },
        "dependentRequired": {"fhirAuthorization": ["fhirServer"]},
    }


def feedback_schema() -> Schema:
    item: Schema = {
        "type": "object",
        "required": ["card", "outcome", "outcomeTimestamp"],
        "properties": {
            "card": _pattern(CANONICAL_UUID.pattern),
            "outcome": {"enum": list(OUTCOMES)},
            "outcomeTimestamp": _pattern(RFC3339.pattern),
            "acceptedSuggestions": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "required": ["id"], "properties": {"id": NON_BLANK}},
            },
            "overrideReason": {
                "type": "object",
                "anyOf": [{"required": ["reason"]}, {"required": ["userComment"]}],
                "properties": {
                    "reason": {
                        "type": "object",
                        "required": ["system", "code"],
                        "properties": {"system": {"type": "string"}, "code": {"type": "string"}},
                    },
                    "userComment": {**NON_BLANK, "maxLength": MAX_COMMENT},
                },
            },
        },
        "if": {"properties": {"outcome": {"const": "accepted"}}},
        "then": {"required": ["acceptedSuggestions"]},
    }
    return {
        "type": "object",
        "required": ["feedback"],
        "properties": {"feedback": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": item}},
    }


def _host_refusal(*codes: str) -> Schema:
    """The OperationOutcome of a refused Host: its issue `codes`, naming the header at fault."""
    issue: Schema = {
        "required": ["expression"],
        "properties": {"code": {"enum": list(codes)}, "expression": {"items": {"enum": list(HOST_FIELDS)}}},
    }
    return {"allOf": [_ref("OperationOutcome"), {"properties": {"issue": {"items": issue}}}]}


def _components() -> Schema:
    return {
        "schemas": {
            "FhirId": {"type": "string", "pattern": _anchored(ID_PATTERN.pattern)},
            "Resource": {
                "type": "object",
                "required": ["resourceType", "id"],
                "properties": {"resourceType": NON_BLANK, "id": _ref("FhirId")},
            },
            "FhirAuthorization": {
                "type": "object",
                "required": ["access_token", "expires_in"],  # token_type, scope, subject: hooks/models.py
                "properties": {
                    "access_token": _pattern(BEARER_TOKEN.pattern),
                    "token_type": {"type": "string", "pattern": "^[Bb][Ee][Aa][Rr][Ee][Rr]$"},
                    "expires_in": {"type": "integer", "minimum": 0},
                    "scope": NON_BLANK,
                    "subject": NON_BLANK,
                    "patient": NON_BLANK,  # context.patientId when present: hooks/models.py
                },
            },
            "OperationOutcome": {
                "type": "object",
                "required": ["resourceType", "issue"],
                "properties": {
                    "resourceType": {"const": "OperationOutcome"},
                    "issue": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["severity", "code"],
                            "properties": {
                                "severity": {"enum": ["fatal", "error", "warning", "information"]},
                                "code": {"type": "string"},
                                "diagnostics": {"type": "string"},
                                "expression": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
            },
            "HostRefusal": _host_refusal("required", "structure"),  # missing or invalid
            "InvalidHostRefusal": _host_refusal("structure"),  # a probe's: invalid only
            "CdsResponse": {
                "type": "object",
                "required": ["cards"],
                "properties": {
                    "cards": {"type": "array", "items": {"type": "object"}},
                    "systemActions": {"type": "array", "items": {"type": "object"}},
                },
            },
            "FhirResource": {
                "type": "object",
                "required": ["resourceType"],
                "properties": {"resourceType": {"type": "string"}},
            },
        },
        "responses": {
            status: {
                "description": text,
                "content": {"application/json": {"schema": _ref("OperationOutcome")}},
            }
            for status, text in REFUSALS.items()
        }
        | {
            name: {"description": text, "content": {"application/json": {"schema": _ref(schema)}}}
            for name, text, schema in (
                ("HostRefused", HOST_REFUSED, "HostRefusal"),
                ("ProbeHostRefused", PROBE_HOST_REFUSED, "InvalidHostRefusal"),
            )
        },
        "securitySchemes": {
            "cdsHooksJwt": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "CDS Hooks client JWT (ES384/RS384), when auth.required is true.",
            }
        },
    }


def _refusals(*statuses: str) -> Schema:
    return {status: {"$ref": f"#/components/responses/{status}"} for status in statuses}


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {media: {"schema": schema} for media in JSON_MEDIA_TYPES}}


def _ok(description: str, schema: Schema, media: str = "application/json") -> Schema:
    return {"200": {"description": description, "content": {media: {"schema": schema}}}}


def _service_paths(service: ServiceDefinition, only_orders_with_rules: bool) -> Schema:
    """The service's call and feedback paths, its call described as discovery describes it in the
    deployment (`only_orders_with_rules`: behind a payer's gateway, `ServiceDefinition.describe`)."""
    call = {
        "post": {
            "operationId": f"call-{service.id}",
            "summary": service.title,
            "description": service.describe(only_orders_with_rules),
            "security": [{"cdsHooksJwt": []}],
            "requestBody": _json_body(hook_request_schema(service)),
            "responses": {
                **_ok("Cards and system actions.", _ref("CdsResponse")),
                **_refusals("400", "401", "404", "413", "415"),
                "412": {
                    "description": _precondition(service),
                    "content": {"application/json": {"schema": _ref("OperationOutcome")}},
                },
            },
        }
    }
    feedback = {
        "post": {
            "operationId": f"feedback-{service.id}",
            "summary": f"Feedback on the cards of {service.id}",
            "security": [{"cdsHooksJwt": []}],
            "requestBody": _json_body(feedback_schema()),
            "responses": {
                **_ok("Recorded (idempotent).", {"type": "object"}),
                **_refusals("400", "401", "404", "413", "415"),
            },
        }
    }
    return {f"/cds-services/{service.id}": call, f"/cds-services/{service.id}/feedback": feedback}


def _read_path(operation_id: str, summary: str, parameter: str, ok: Schema) -> Schema:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": [{"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {**ok, **_refusals("404")},
        }
    }


def _host_refusals(paths: Schema) -> None:
    """The 400 a refused Host gets, on every operation: the check runs before any route
    (`routes.install_http_edge`), so every path answers it; a probe (`routes.PROBE_PATHS`) only for an
    invalid Host, not a missing one. An operation whose body may be refused 400 has that 400, whose
    description says the Host's too (OpenAPI gives a status one response)."""
    for path, item in paths.items():
        refused = "ProbeHostRefused" if path in PROBE_PATHS else "HostRefused"
        for operation in item.values():
            operation["responses"].setdefault("400", {"$ref": f"#/components/responses/{refused}"})


@cache
def openapi_document(only_orders_with_rules: bool = False) -> dict[str, Any]:
    """The document of a deployment: `only_orders_with_rules` its setting, which the encounter services'
    descriptions follow as discovery's do (behind a payer's gateway the Encounter gets no coverage
    information: the document said it did, where its discovery said it did not, review30b)."""
    paths: Schema = {
        "/cds-services": {
            "get": {
                "operationId": "discovery",
                "summary": "CDS Hooks discovery: the services and their prefetch templates",
                "responses": _ok(
                    "The services.",
                    {
                        "type": "object",
                        "required": ["services"],
                        "properties": {"services": {"type": "array"}},
                    },
                ),
            }
        }
    }
    for service in SERVICES:
        paths |= _service_paths(service, only_orders_with_rules)
    fhir_ok = _ok("The resource.", _ref("FhirResource"), "application/fhir+json")
    paths |= {
        "/policies/{policy_id}": _read_path(
            "policy-page",
            "A payer policy as the service checks it",
            "policy_id",
            _ok("HTML.", {}, "text/html"),
        ),
        "/fhir/CodeSystem/{resource_id}": _read_path(
            "code-system", "The assessment CodeSystem", "resource_id", fhir_ok
        ),
        "/fhir/Questionnaire/{resource_id}": _read_path(
            "questionnaire", "A policy's documentation Questionnaire", "resource_id", fhir_ok
        ),
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness",
                "responses": _ok("Alive.", {"type": "object", "properties": {"status": {"const": "ok"}}}),
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: policies compiled, audit store taking writes (else 503)",
                "responses": _ok("Ready.", {"type": "object", "properties": {"status": {"const": "ready"}}}),
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (404 when metrics.enabled is false)",
                "responses": _ok("The Prometheus text exposition format.", {"type": "string"}, "text/plain"),
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": _ok("OpenAPI 3.1.", {"type": "object"}),
            }
        },
    }
    _host_refusals(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "idds-crd",
            "version": service_version(),
            "description": "CDS Hooks / Da Vinci CRD service for intrathecal drug delivery system orders. "
            "Every error answer is a FHIR OperationOutcome; bodies are strict JSON (no NaN or Infinity, "
            "no duplicate keys, nesting and string length bounded).",
        },
        "paths": paths,
        "components": _components(),
    }
