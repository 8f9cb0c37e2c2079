"""CORS for the browser origins the deployment names, and for no other.

With `cors_origins` empty (the default) no CORS header is ever sent, so browsers keep every other
site's scripts away from the service. A listed origin gets `Access-Control-Allow-Origin` echoed, and
its preflight (`OPTIONS`, answered by Flask for every route) the methods and the headers a CDS
client sends (Authorization for the JWT, Content-Type for JSON). `*` allows any origin; credentials
(cookies) are never allowed, the JWT travels in the Authorization header. The built-in sandbox
(`/sandbox`, which hands its page a FHIR token and patient lists) is never shared with another
origin, whatever `cors_origins` says.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-Id"
PREFLIGHT_MAX_AGE_SECONDS = "600"
NEVER_SHARED = "/sandbox"  # this path and everything below it


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    """Answer CORS for `origins` (exact `scheme://host[:port]`, or `*` for any) on every response."""
    if not origins:
        return
    any_origin = "*" in origins
    allowed = frozenset(origins)

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        response.vary.add("Origin")
        if request.path == NEVER_SHARED or request.path.startswith(NEVER_SHARED + "/"):
            return response
        origin = request.headers.get("Origin")
        if origin is None or not (any_origin or origin in allowed):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
        response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE_SECONDS
        return response
