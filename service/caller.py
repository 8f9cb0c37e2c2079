"""Who is calling: the EHR a request was authenticated as, kept on Flask's per-request `g`.

The authentication guard sets it before the route runs; the routes read it to know which FHIR
servers the caller may name and whom to record in the audit trail. Nothing here is global state:
`g` lives and dies with one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from service.flask_context import current_globals
from service.settings import AuthSettings

CALLER_KEY = "idds_crd_caller"


@dataclass(frozen=True)
class Caller:
    """An authenticated client (`iss`, `jti` of its JWT), or an unauthenticated caller (both None)
    of a deployment that does not require authentication; `fhir_servers` are the FHIR base URLs
    its calls may name."""

    iss: str | None
    jti: str | None
    fhir_servers: tuple[str, ...]

    @property
    def authenticated(self) -> bool:
        return self.iss is not None


def anonymous(auth: AuthSettings) -> Caller:
    return Caller(None, None, auth.open_fhir_servers)


def set_caller(caller: Caller) -> None:
    setattr(g, CALLER_KEY, caller)


def current_caller(auth: AuthSettings) -> Caller:
    """The caller of the request being handled (unauthenticated when the guard set none). Read from
    `g` itself (`current_globals`), not through its proxy: where no guard set one, the proxy's lookup
    and `g`'s own missing attribute each raised an AttributeError, twice a hook call."""
    caller = current_globals().get(CALLER_KEY)
    return caller if isinstance(caller, Caller) else anonymous(auth)
