"""idds-crd: a CDS Hooks / Da Vinci CRD service for intrathecal drug delivery system orders.

`service.create_app(settings)` is the Flask application factory. It is resolved lazily so that
importing a submodule (the engine, the record) never pulls in Flask or the whole pipeline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(f"module 'service' has no attribute {name!r}")
