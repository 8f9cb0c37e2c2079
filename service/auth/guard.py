"""The HTTP edge of caller authentication: a `before_request` guard on the CDS Hooks endpoints.

Service calls and feedback always need a valid `Authorization: Bearer <JWT>` when `auth.required`
is true; discovery only with `auth.protect_discovery`. CORS preflights, the policy pages, the
published FHIR resources and the health check stay open. A refused call gets 401 with an
OperationOutcome that gives no reason and `WWW-Authenticate: Bearer`; the reason goes to one
WARNING log line with the claimed iss and jti (never the token).
"""

from __future__ import annotations

import logging

from flask import Flask, Request, Response, request

from service import routes
from service.auth.jwks import JwksCache
from service.auth.verify import Refused, TokenVerifier
from service.caller import Caller, set_caller
from service.errors import operation_outcome
from service.request_log import annotate
from service.settings import Settings, check_public_base_url
from service.store.errors import StoreError, kind_of
from service.store.replay import ReplayStore

log = logging.getLogger(__name__)

CALL_ENDPOINTS = frozenset(
    f"{routes.bp.name}.{view.__name__}" for view in (routes.call_service, routes.feedback)
)
# Discovery and the OpenAPI description both list the services: protected together or not at all.
DISCOVERY_ENDPOINTS = frozenset(
    f"{routes.bp.name}.{view.__name__}" for view in (routes.discovery, routes.openapi)
)
MAX_LOGGED_CHARS = 200
UNAUTHORIZED_BODY = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}


def protected_endpoints(settings: Settings) -> frozenset[str]:
    if not settings.auth.required:
        return frozenset()
    return (CALL_ENDPOINTS | DISCOVERY_ENDPOINTS) if settings.auth.protect_discovery else CALL_ENDPOINTS


def install_guard(app: Flask, settings: Settings, replay: ReplayStore) -> None:
    """Make `app` authenticate its callers as `settings.auth` says (nothing when not required)."""
    protected = protected_endpoints(settings)
    if not protected:
        return
    if not settings.auth.trusted_clients:
        log.warning("auth.required is true and auth.trusted_clients is empty: every hook call gets 401")
    check_public_base_url(settings.auth, settings.public_base_url)  # settings made in code, not read
    verifier = TokenVerifier(settings.auth, replay, JwksCache(settings.auth.jwks_cache_seconds))

    @app.before_request
    def authenticate() -> Response | None:
        if request.method == "OPTIONS" or request.endpoint not in protected:
            return None
        try:
            verified = verifier.verify(bearer_token(request), endpoint_url(request, settings.public_base_url))
        except Refused as refused:
            log.warning(
                "401 for %s %s: %s (iss=%s, jti=%s)",
                request.method,
                printable(request.path),
                printable(refused.reason),
                printable(refused.iss),
                printable(refused.jti),
            )
            annotate(outcome="unauthorized")
            return unauthorized()
        except StoreError as exc:  # the replay store cannot tell whether the jti is fresh
            # why the database refuses writes is logged once per outage (service/store/write_refusals.py)
            log.error("replay store (store.url) unavailable: %s; answering 503", kind_of(exc))
            annotate(outcome="unavailable")
            said = "the service cannot record the token in its database right now; retry"
            body = operation_outcome("transient", said)
            return routes.json_response(body, 503)
        set_caller(Caller(verified.client.iss, verified.jti, verified.client.fhir_servers))
        return None


def bearer_token(incoming: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = incoming.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def endpoint_url(incoming: Request, public_base_url: str | None) -> str:
    """The public URL of the endpoint called, which the token's `aud` must equal: the configured
    public base URL (behind a proxy the Host header is not to be trusted) plus the path, else the
    URL the request reached, without its query."""
    if public_base_url:
        return public_base_url + incoming.path
    return incoming.base_url


def unauthorized() -> Response:
    response = routes.json_response(UNAUTHORIZED_BODY, 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def printable(value: object) -> str:
    """A claimed value fit for one log line: control characters escaped, length capped."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= MAX_LOGGED_CHARS else text[:MAX_LOGGED_CHARS] + "..."
