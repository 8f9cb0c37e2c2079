"""HTTP edge: the CDS Hooks routes (discovery and service calls) and their error mapping.

Everything HTTP-specific lives here: decoding the body, mapping validation failures to 400,
unknown services to 404, wrong methods to 405, and any unexpected failure to a 500 whose body is
an OperationOutcome without internals.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

import policies
from cards.render import review_overdue_line
from service.audit_call import CallClock, audited, store_feedback
from service.caller import current_caller
from service.errors import operation_outcome
from service.feedback import parse_feedback
from service.fhir.outbound import refusal
from service.hooks.models import RequestInvalid, parse_hook_request
from service.pipeline import HookOutcome, handle_hook
from service.registry import discovery_document, find_service

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response(discovery_document())


def _json_body() -> tuple[Any, Response | None]:
    """The decoded JSON body, or the 400 answer saying why there is none."""
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw) if raw else None
    except RecursionError:
        return None, json_response(
            operation_outcome("structure", "the request body ($) is nested too deeply", "$"), 400
        )
    except (ValueError, UnicodeDecodeError) as exc:
        return None, json_response(
            operation_outcome("structure", f"the request body is not valid JSON: {exc}", "$"), 400
        )
    if body is None:
        return None, json_response(operation_outcome("required", "the request body is empty", "$"), 400)
    return body, None


def _no_service(service_id: str) -> Response:
    return json_response(operation_outcome("not-found", f"no CDS service with id '{service_id}'"), 404)


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    started = CallClock()
    service = find_service(service_id)
    if service is None:
        return _no_service(service_id)
    body, refused = _json_body()
    if refused is not None:
        return refused
    state = current_app.extensions["idds_crd"]
    try:
        hook_request = parse_hook_request(body, service)
    except RequestInvalid as exc:
        invalid = HookOutcome(operation_outcome("invalid", exc.message, exc.field), status=400)
        return json_response(*audited(state, started, service, body, None, invalid))
    not_allowed = refusal(hook_request.fhir.server, current_caller(state.settings.auth).fhir_servers)
    if not_allowed is not None:
        forbidden = HookOutcome(operation_outcome("security", not_allowed, "fhirServer"), status=400)
        return json_response(*audited(state, started, service, body, hook_request, forbidden))
    base_url = state.settings.public_base_url or request.url_root
    outcome = handle_hook(hook_request, service, state.environment, datetime.now(UTC).date(), base_url)
    return json_response(*audited(state, started, service, body, hook_request, outcome))


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """CDS Hooks feedback on this service's cards: kept once, however often it is sent."""
    if find_service(service_id) is None:
        return _no_service(service_id)
    body, refused = _json_body()
    if refused is not None:
        return refused
    try:
        items = parse_feedback(body)
    except RequestInvalid as exc:
        return json_response(operation_outcome("invalid", exc.message, exc.field), 400)
    return json_response(*store_feedback(current_app.extensions["idds_crd"], service_id, items))


@bp.get("/policies/<policy_id>")
def policy_page(policy_id: str) -> Response:
    """The policy as the service checks it: criteria, readings, version and the source text."""
    state = current_app.extensions["idds_crd"]
    policy = state.environment.catalog.policies.get(policy_id)
    if policy is None:
        return json_response(operation_outcome("not-found", f"no policy with id '{policy_id}'"), 404)
    source = policies.directory() / "sources" / Path(policy.source).name
    source_text = source.read_text(encoding="utf-8") if source.is_file() else None
    overdue = policy.currency.overdue(datetime.now(UTC).date())
    overdue_line = review_overdue_line(policy.payer, overdue) if overdue else None
    html = render_template("policy.html", policy=policy, source_text=source_text, overdue_line=overdue_line)
    return Response(html, mimetype="text/html")


@bp.get("/fhir/CodeSystem/<resource_id>")
def code_system(resource_id: str) -> Response:
    """The project's assessment CodeSystem (clinical-data-contract.md §5) as a FHIR resource."""
    resource = current_app.extensions["idds_crd"].environment.published.code_system
    if resource_id != resource["id"]:
        return json_response(operation_outcome("not-found", f"no CodeSystem with id '{resource_id}'"), 404)
    return fhir_response(resource)


@bp.get("/fhir/Questionnaire/<resource_id>")
def documentation_questionnaire(resource_id: str) -> Response:
    """A policy's documentation Questionnaire, or the part of it a call named (coverage information)."""
    form = current_app.extensions["idds_crd"].environment.published.questionnaire(resource_id)
    if form is None:
        return json_response(operation_outcome("not-found", f"no Questionnaire with id '{resource_id}'"), 404)
    return fhir_response(form)


def fhir_response(resource: dict[str, Any]) -> Response:
    response = json_response(resource)
    response.mimetype = "application/fhir+json"
    return response


@bp.get("/healthz")
def health() -> Response:
    return json_response({"status": "ok"})


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(exc.code or 500, "processing")
        response = json_response(operation_outcome(code, exc.description or exc.name), exc.code or 500)
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.error(
            "unexpected failure handling %s %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc_info=exc,
        )
        return json_response(
            operation_outcome("exception", "internal error; the failure has been logged"), 500
        )

    @app.after_request
    def cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        return response
