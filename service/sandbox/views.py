"""The sandbox's HTTP side: the page, its static files, and the few JSON endpoints it needs that a
browser cannot do for itself (list the FHIR server's patients, build draft orders from the
service's order table, mint a short-lived call token). The hook calls and the feedback go to the
service's ordinary CDS Hooks endpoints, exactly as an EHR's would.

Every sandbox answer forbids loading anything from elsewhere (Content-Security-Policy), and the
token endpoint answers only the origins the page is served at, whatever `cors_origins` allows. The
patient and coverage lists, which need no token, search the FHIR server in a place of the worker's
share of threads for it, as the hook calls asking it take theirs (service/fhir/server_share.py): page
loads waiting on a server that does not answer cannot hold every thread of the service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request, send_from_directory

from service.call_day import call_date, call_instant
from service.fhir.outbound import origin
from service.fhir.server_share import NOT_ASKED_PREFIX
from service.host_header import called_host, url_root
from service.http_input import InputRefused, read_json_body
from service.questionnaires import QUESTIONNAIRE_BASE
from service.registry import SERVICES
from service.routes import json_response, refusal, refused_input
from service.sandbox import chart
from service.sandbox.orders import DEFAULT_KITS, Infusate, OrderChoiceInvalid, OrderKit, draft_orders
from service.sandbox.signer import SandboxSigner, UnknownEndpoint
from service.settings import SandboxSettings

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SANDBOX_HOOKS = ("order-select", "order-sign", "appointment-book")

bp = Blueprint("sandbox", __name__, static_folder="static", static_url_path="/sandbox/static")


@dataclass(frozen=True)
class SandboxState:
    """What the sandbox's endpoints share, built once by `install_sandbox`."""

    settings: SandboxSettings
    signer: SandboxSigner
    kits: tuple[OrderKit, ...]
    infusates: tuple[Infusate, ...]
    patient_infusates: dict[str, str | None]  # the infusate each demo patient's sample requests draft
    patient_kits: dict[str, list[str]]  # the kits each demo patient's sample requests draft
    demo_patients: frozenset[str]  # listed first


def _state() -> SandboxState:
    state: SandboxState = current_app.extensions["idds_crd_sandbox"]
    return state


def base_url() -> str:
    """The service's public base URL: what a token's aud and the page's calls are relative to; without
    one configured, the address the request called, read as the policy links read it (`url_root`)."""
    configured: str | None = current_app.extensions["idds_crd"].settings.public_base_url
    return configured or url_root(request).rstrip("/")


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _answered_hosts(public_base_url: str) -> set[str]:
    """The Host values the sandbox answers: the public address's (and, for a loopback address, the
    other spellings of loopback on the same port, so the demo opens as localhost too)."""
    public = urlsplit(public_base_url)
    hosts = {public.netloc.lower()}
    if public.hostname in ("127.0.0.1", "localhost", "::1"):
        port = f":{public.port}" if public.port else ""
        hosts |= {f"{name}{port}" for name in LOOPBACK_NAMES}
    return hosts


def page_origins(public_base_url: str) -> set[str]:
    """The origins the sandbox page is served at (the public scheme with each answered Host): the
    Origin a browser sends when that page asks for a token."""
    scheme = urlsplit(public_base_url).scheme
    return {f"{scheme}://{host}" for host in _answered_hosts(public_base_url)}


@bp.before_request
def only_at_the_public_address() -> Response | None:
    """A page of another site that makes its own name resolve to this service (DNS rebinding) names
    its own Host: refused, so it can read neither the FHIR token nor the patients. Without a
    configured public address (development without signing) only a loopback Host is answered, on any
    port: a developer's own browser."""
    configured = current_app.extensions["idds_crd"].settings.public_base_url
    host = called_host(request.environ) or ""  # as sent: werkzeug's request.host reads `localhost:0` as ""
    if configured is None:
        if _loopback_host(host):
            return None
        return refusal(
            403, "forbidden", "without a public_base_url the sandbox answers only at a loopback address"
        )
    if host.lower() not in _answered_hosts(configured):
        return refusal(403, "forbidden", "the sandbox answers only at the service's public address")
    return None


def _loopback_host(host: str) -> bool:
    """Whether a Host header names loopback (`localhost`, `127.0.0.1`, `[::1]`), with any port."""
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    return name in ("localhost", "127.0.0.1", "::1")


@bp.after_request
def protect(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.path.startswith("/sandbox/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sandbox")
def page() -> Response:
    return send_from_directory(bp.static_folder or "", "index.html")


@bp.get("/sandbox/api/setup")
def setup() -> Response:
    settings, kits, infusates = _state().settings, _state().kits, _state().infusates
    return json_response(
        {
            "fhirServer": settings.fhir_server,
            "fhirAccessToken": settings.fhir_access_token,
            "signed": _state().signer.key is not None,
            "services": [
                {"id": s.id, "hook": s.hook, "title": s.title} for s in SERVICES if s.hook in SANDBOX_HOOKS
            ],
            "kits": [
                {
                    "id": k.id,
                    "label": k.label,
                    "withInfusate": k.with_infusate,
                    "lines": [asdict(x) for x in k.lines],
                }
                for k in kits
            ],
            "infusates": [asdict(i) for i in infusates],
            "patientInfusates": _state().patient_infusates,
            "patientKits": _state().patient_kits,
            "defaultKits": list(DEFAULT_KITS),  # for a patient without a sample request
            "questionnaireBase": QUESTIONNAIRE_BASE,  # canonicals the service serves at /fhir/Questionnaire/
        }
    )


@contextmanager
def _place_with_the_fhir_server() -> Iterator[None]:
    """The block searches the sandbox's FHIR server in a place of the worker's share of threads for
    it (none to take without a thread count: the development server, a test client); raises
    ChartNotAsked when no place came within the share's wait."""
    share = current_app.extensions["idds_crd"].environment.server_share
    server = origin(_state().settings.fhir_server or "")
    with share.taken(server, time.monotonic() + chart.TIMEOUT_SECONDS) as reason:
        if reason is not None:
            said = reason.removeprefix(NOT_ASKED_PREFIX)
            raise chart.ChartNotAsked(f"the FHIR server was not asked ({said}): try again")
        yield


def _chart_refusal(exc: chart.ChartUnavailable) -> Response:
    return refusal(503 if isinstance(exc, chart.ChartNotAsked) else 502, "transient", str(exc))


@bp.get("/sandbox/api/patients")
def patients() -> Response:
    settings = _state().settings
    try:
        with _place_with_the_fhir_server():
            found = chart.patients(
                settings.fhir_server or "", settings.fhir_access_token, _state().demo_patients
            )
    except chart.ChartUnavailable as exc:
        return _chart_refusal(exc)
    return json_response({"patients": found})


@bp.get("/sandbox/api/patients/<patient_id>/coverages")
def coverages(patient_id: str) -> Response:
    settings = _state().settings
    now = call_instant()
    today = call_date(current_app.extensions["idds_crd"].settings.timezone, now)
    try:
        server, token = settings.fhir_server or "", settings.fhir_access_token
        with _place_with_the_fhir_server():
            found = chart.coverages(server, token, patient_id, today, now)
    except ValueError as exc:
        return refusal(400, "invalid", str(exc), "patientId")
    except chart.ChartUnavailable as exc:
        return _chart_refusal(exc)
    return json_response({"coverages": found})


def _string_field(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not chart.PATIENT_ID.fullmatch(value):
        raise OrderChoiceInvalid(name, f"{name}: expected a FHIR id")
    return value


@bp.post("/sandbox/api/orders")
def orders() -> Response:
    try:
        body = read_json_body(request)
        if not isinstance(body, dict):
            raise InputRefused(400, "invalid", "the request body must be a JSON object")
        patient_id = _string_field(body, "patientId") or ""
        built = draft_orders(
            {k.id: k for k in _state().kits},
            _state().infusates,
            body.get("kits"),
            body.get("infusate"),
            patient_id,
            _string_field(body, "coverageId", required=False),
        )
    except InputRefused as exc:
        return refused_input(exc)
    except OrderChoiceInvalid as exc:
        return refusal(400, "invalid", str(exc), exc.field)
    return json_response({"orders": built})


@bp.post("/sandbox/api/token")
def token() -> Response:
    configured = current_app.extensions["idds_crd"].settings.public_base_url
    if configured is None:
        return refusal(403, "forbidden", "sandbox tokens are signed only for a configured public_base_url")
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in page_origins(configured):
        return refusal(403, "forbidden", "sandbox tokens are minted for the sandbox page only")
    try:
        body = read_json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("service"), str):
            raise InputRefused(400, "invalid", "service: required, a service id", "service")
        minted = _state().signer.token(base_url(), body["service"], body.get("feedback") is True)
    except InputRefused as exc:
        return refused_input(exc)
    except UnknownEndpoint as exc:
        return refusal(400, "invalid", str(exc), "service")
    return json_response({"token": minted})
