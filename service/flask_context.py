"""Flask's request, `g` and app for the call being handled, read once instead of through their proxies.

Every attribute read through a werkzeug `LocalProxy` looks the object up again (a context variable, a
lookup, a bound call), and one the proxy lacks itself is first looked up on the proxy, which raises and
catches an AttributeError before forwarding the read: code that reads several binds the object once
(perf26b, select30). Kept apart so that any module can read them without importing another's concerns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Request, current_app, g, request

if TYPE_CHECKING:
    from flask.ctx import _AppCtxGlobals


def current_request() -> Request:
    """The request being handled, itself."""
    return request._get_current_object()  # type: ignore[attr-defined, no-any-return]


def current_globals() -> _AppCtxGlobals:
    """Flask's `g` for the request being handled, itself."""
    return g._get_current_object()  # type: ignore[attr-defined, no-any-return]


def current_application() -> Flask:
    """The app handling the request, itself."""
    return current_app._get_current_object()  # type: ignore[attr-defined, no-any-return]
