"""HTTP edge: the CDS Hooks routes (discovery, service calls, feedback, the pages the cards link to)
and their error mapping.

Everything HTTP-specific lives here: reading the body (`service.http_input`: 415, 413, 400), mapping
validation failures to 400, unknown services to 404, wrong methods to 405, and any unexpected
failure to a 500 whose body is an OperationOutcome without internals. Every answer is strict JSON
(never NaN), and every call notes its outcome for the request log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from cards.render import review_overdue_line
from service.arrival import arrived_at
from service.audit_call import CallClock, audited, store_feedback
from service.call_day import call_date, call_instant
from service.caller import current_caller
from service.cors import install_cors
from service.errors import RETRY_AFTER, operation_outcome, retry_after
from service.feedback import parse_feedback
from service.fhir.outbound import refusal as fhir_server_refusal
from service.fhir.query_pool import FhirUse
from service.flask_context import current_request
from service.hooks.models import HOOK_INSTANCE, HookRequest, RequestInvalid, parse_hook_request
from service.host_header import TrustedProxies, UnreadForwarding, host_refused, url_root
from service.http_input import InputRefused, decode_json_body, read_body, read_json_body
from service.modifiers import text_may_carry
from service.observability import (
    EXPOSITION_CONTENT_TYPE,
    install_metrics,
    metrics_exposition,
    observe_determinations,
    readiness_problems,
)
from service.pipeline import HookOutcome, handle_hook
from service.registry import ServiceDefinition, discovery_document, find_service
from service.request_log import annotate, install_request_log, redacted
from service.settings import Settings
from service.shapes import dicts
from service.strict_json import dumps_utf8
from service.wording import aside

if TYPE_CHECKING:
    from service.app import AppState

log = logging.getLogger(__name__)
bp = Blueprint("cds", __name__)
# a policy's own parenthesised words set apart on its page as on the cards, never one aside in another
bp.add_app_template_filter(aside, "aside")


def json_response(body: Any, status: int = 200) -> Response:
    """`body` as compact JSON, its UTF-8 bytes as written (`dumps_utf8`: not decoded to be encoded again)."""
    return Response(dumps_utf8(body), status=status, mimetype="application/json")


def refusal(status: int, code: str, message: str, field: str | None = None) -> Response:
    """A 4xx answer with an OperationOutcome, noted for the request log (the field, not the text)."""
    annotate(outcome=code, **({"field": field} if field else {}))
    return json_response(operation_outcome(code, message, field), status)


def refused_input(exc: InputRefused | RequestInvalid) -> Response:
    if isinstance(exc, InputRefused):
        return refusal(exc.status, exc.code, exc.message, exc.field)
    return refusal(400, "invalid", exc.message, exc.field)


def _note_hook_instance(body: Any) -> None:
    """The call's hookInstance for the log, when it has a valid one (even if the call is refused)."""
    instance = body.get("hookInstance") if isinstance(body, dict) else None
    if isinstance(instance, str) and HOOK_INSTANCE.fullmatch(instance):
        annotate(hookInstance=instance)


@bp.get("/cds-services")
def discovery() -> Response:
    environment = current_app.extensions["idds_crd"].environment
    gatherer = environment.gatherer
    document = discovery_document(
        gatherer.clinical_templates, gatherer.trial_templates, environment.only_orders_with_rules
    )
    return json_response(document)


@bp.get("/openapi.json")
def openapi() -> Response:
    """An OpenAPI 3.1 description of every endpoint, generated from the service registry."""
    from service.openapi import openapi_document  # no hook call needs it: imported on first use

    environment = current_app.extensions["idds_crd"].environment
    return json_response(openapi_document(environment.only_orders_with_rules))


def _no_service(service_id: str) -> Response:
    return refusal(404, "not-found", _no_such("CDS service", service_id))


def _no_such(what: str, asked_id: str) -> str:
    """What a 404 says of an id it has no `what` for (a service, policy, CodeSystem, Questionnaire),
    quoting the id without any credential sent in it (a path parameter such as `;access_token=`): an
    answer's text may be kept where a log is."""
    return f"no {what} with id '{redacted(asked_id)[:100]}'"


def internal_error(exc: Exception) -> dict[str, Any]:
    """Log an unexpected failure with its traceback; the OperationOutcome to answer, without internals."""
    failure = type(exc).__name__
    log.error("unexpected failure handling %s %s: %s", request.method, request.path, failure, exc_info=exc)
    annotate(outcome="exception")
    return operation_outcome("exception", "internal error; the failure has been logged")


def _recorded_refusal(
    state: Any,
    clock: CallClock,
    service: ServiceDefinition,
    body: Any,
    hook_request: HookRequest | None,
    why: tuple[str, str, str | None],
) -> Response:
    """A call answered 400 once its body is JSON: noted for the request log (code and field) and
    recorded in the audit trail like every call. `why` is (issue code, message, field)."""
    code, message, field = why
    annotate(outcome=code, field=field)
    refused = HookOutcome(operation_outcome(code, message, field), status=400)
    return json_response(*audited(state, clock, service, body, hook_request, refused))


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    started = CallClock()
    service = find_service(service_id)
    if service is None:
        return _no_service(service_id)
    annotate(service=service_id)
    try:
        raw = read_body(current_request())
    except InputRefused as exc:
        return refused_input(exc)
    state = current_app.extensions["idds_crd"]
    with state.environment.turns.held():  # the body read whole first: a slow sender holds no turn
        return _answer(state, started, service, raw)


def _answer(state: AppState, started: CallClock, service: ServiceDefinition, raw: bytes) -> Response:
    """The answer to a hook call whose body has been read: decoded, validated, handled, recorded."""
    try:
        body = decode_json_body(raw)
    except InputRefused as exc:
        return refused_input(exc)
    _note_hook_instance(body)
    try:
        hook_request = parse_hook_request(body, service, text_may_carry(raw))
    except RequestInvalid as exc:
        return _recorded_refusal(state, started, service, body, None, ("invalid", exc.message, exc.field))
    caller = current_caller(state.settings.auth)
    not_allowed = fhir_server_refusal(hook_request.fhir.server, caller.fhir_servers)
    if not_allowed is not None:
        why = ("security", not_allowed, "fhirServer")
        return _recorded_refusal(state, started, service, body, hook_request, why)
    called = current_request()
    base_url = state.settings.public_base_url or (lambda: url_root(called))  # asked only to link a policy
    use = FhirUse()  # the call's queries, counted: read for the 500's token outcome too (review30b L3)
    try:
        now = call_instant()
        today = call_date(state.settings.timezone, now)
        outcome = handle_hook(
            hook_request, service, state.environment, today, base_url, caller.iss, arrived_at(), now, use
        )
    except Exception as exc:  # recorded like every answer (CRD §found-37), then answered 500
        failed = HookOutcome(
            internal_error(exc),
            status=500,
            token_use=use.token_use,
            fhir_reads=use.reads,
        )
        return json_response(*audited(state, started, service, body, hook_request, failed))
    if outcome.status == 200:
        annotate(outcome="answered", cards=len(outcome.response["cards"]))
    else:
        annotate(**_refusal_note(outcome))
    answer, status = audited(state, started, service, body, hook_request, outcome)
    if status == outcome.status:  # answered as decided, not refused because it could not be recorded
        observe_determinations(outcome.determinations)
    return json_response(answer, status)


def _refusal_note(outcome: HookOutcome) -> dict[str, str]:
    """How the request log and the hook-call metric name a call the pipeline did not answer 200: a 412
    "precondition-failed", any other (a 400 about the Coverage: none active; under CRD 2.2 several, or
    a payer not served) by its issue code, as every refusal is; each with the field its OperationOutcome
    names first (docs/api.md "Logs"). Before, every one was "precondition-failed", with no field
    (review24 L3)."""
    issue = next(iter(dicts(outcome.response.get("issue"))), {})
    code = "precondition-failed" if outcome.status == 412 else str(issue.get("code") or "invalid")
    fields = [f for f in issue.get("expression") or [] if isinstance(f, str)]
    return {"outcome": code, **({"field": fields[0]} if fields else {})}


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """CDS Hooks feedback on this service's cards: kept once, with the record of the card it answers."""
    if find_service(service_id) is None:
        return _no_service(service_id)
    annotate(service=service_id)
    try:
        items = parse_feedback(read_json_body(request))
    except (InputRefused, RequestInvalid) as exc:
        return refused_input(exc)
    answer, status = store_feedback(current_app.extensions["idds_crd"], service_id, items)
    annotate(outcome="recorded" if status == 200 else "not-recorded")
    return json_response(answer, status)


@bp.get("/policies/<policy_id>")
def policy_page(policy_id: str) -> Response:
    """The policy as the service checks it: criteria, readings, version and the source text."""
    state = current_app.extensions["idds_crd"]
    policy = state.environment.catalog.policies.get(policy_id)
    if policy is None:
        return refusal(404, "not-found", _no_such("policy", policy_id))
    catalog = state.environment.catalog
    source_text = catalog.sources.get(policy_id)  # as compiled: an edit shows after the restart
    today = call_date(state.settings.timezone)
    overdue = policy.currency.overdue(today)
    overdue_line = review_overdue_line(policy.payer, overdue) if overdue else None
    standing = catalog.successions[policy_id].standing(policy_id, today)
    html = render_template(
        "policy.html", policy=policy, source_text=source_text, overdue_line=overdue_line, standing=standing
    )
    return Response(html, mimetype="text/html")


@bp.get("/fhir/CodeSystem/<resource_id>")
def code_system(resource_id: str) -> Response:
    """The project's assessment CodeSystem (clinical-data-contract.md §5) as a FHIR resource."""
    resource = current_app.extensions["idds_crd"].environment.published.code_system
    if resource_id != resource["id"]:
        return refusal(404, "not-found", _no_such("CodeSystem", resource_id))
    return fhir_response(resource)


@bp.get("/fhir/Questionnaire/<resource_id>")
def documentation_questionnaire(resource_id: str) -> Response:
    """A policy's documentation Questionnaire, or the part of it a call named (coverage information)."""
    published = current_app.extensions["idds_crd"].environment.published
    form = published.questionnaire(resource_id)
    if form is None:
        said = _no_such("Questionnaire", resource_id)
        if (current := published.earlier_part(resource_id)) is not None:
            said += f": a part named for an earlier version of {current}, whose items may differ; "
            said += "call the hook again"
        return refusal(404, "not-found", said)
    return fhir_response(form)


def fhir_response(resource: dict[str, Any]) -> Response:
    response = json_response(resource)
    response.mimetype = "application/fhir+json"
    return response


@bp.get("/healthz")
def health() -> Response:
    """Liveness: the process answers HTTP."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readiness() -> Response:
    """Readiness: policies compiled and the audit store taking writes; else 503 naming what is not."""
    problems = readiness_problems(current_app.extensions["idds_crd"])
    if problems:
        return json_response(operation_outcome("transient", "not ready: " + "; ".join(problems)), 503)
    return json_response({"status": "ready"})


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (text format), unless `metrics.enabled` is false."""
    exposition = metrics_exposition(current_app)
    if exposition is None:
        return refusal(404, "not-found", "metrics are switched off (metrics.enabled: false)")
    return Response(exposition, content_type=EXPOSITION_CONTENT_TYPE)


PROBE_PATHS = frozenset({"/healthz", "/readyz"})  # answered with no Host (service.host_header)


def install_http_edge(app: Flask, settings: Settings) -> None:
    """The routes, the body size bound, CORS for the configured origins, the request log, the error
    answers (OperationOutcomes) for whatever the routes do not answer themselves, and `Retry-After`
    on every 503. A request whose Host is missing or invalid is answered 400 on every route
    (`service.host_header`), once its request log line and metrics have begun, before anything else;
    from a configured `trusted_proxies` peer, the address it called is what the proxy forwarded."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    if settings.trusted_proxies:  # none by default: nobody's X-Forwarded-Proto or -Host is read
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    unread = None if settings.trusted_proxies or settings.public_base_url else UnreadForwarding()
    app.register_blueprint(bp)
    install_request_log(app)
    install_metrics(app, settings)
    install_cors(app, settings.cors_origins)

    @app.before_request
    def host_checked() -> Response | None:
        """RFC 9112 §3.2: 400 for an HTTP/1.1 request with no Host or with one that is invalid (gunicorn
        refuses two Host lines itself), on every route; the probes answer one with no Host at all
        (`PROBE_PATHS`: a load balancer's HTTP/1.1 check may send none), never an invalid one. The
        OperationOutcome names the header at fault (a trusted proxy's X-Forwarded-Host, ...). With no
        `trusted_proxies` nor `public_base_url`, the first request forwarded by a proxy is said in the log
        (`UnreadForwarding`)."""
        called = current_request()
        if unread is not None and not unread.said:
            unread(called.environ)
        refused = host_refused(called.environ, none_allowed=called.path in PROBE_PATHS)
        if refused is None:
            return None
        return refusal(400, *refused)

    @app.after_request
    def unavailable_for_a_moment(response: Response) -> Response:
        """Every 503 the app answers (the audit store down or refusing writes, the replay store, not
        ready) says when to try again: when the database is next tried (`store.retry_after_seconds`)."""
        if response.status_code == 503:
            response.headers.setdefault(RETRY_AFTER, retry_after(settings.store.retry_after_seconds))
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "processing")
        if status == 413:
            message = f"the request body is larger than {settings.max_request_bytes} bytes"
        else:
            message = exc.description or exc.name
        response = refusal(status, code, message)
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        return json_response(internal_error(exc), 500)
