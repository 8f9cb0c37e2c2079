"""The Flask application factory: `create_app(settings)` builds a fully configured app.

Nothing is created at import time. The factory compiles the policy catalog once (the installed
policies, or the folder the `policies` setting names; a broken policy stops start-up), opens the
database once (the audit trail and the JWT replay store), installs the authentication guard, and
stores per-app state in `app.extensions`, never in globals.

Importing this module imports everything a hook call needs (so the first call does not wait for an
import), with the garbage collector paused and what the imports made frozen (`service.startup_gc`),
and the methods of their dataclasses compiled once, not at every start (`service.dataclass_cache`).
What no hook call needs stays out until it is used: the sandbox (only when switched on), the OpenAPI
document, the development server, the demo, the other CLI commands.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service.dataclass_cache import dataclass_code_cached
from service.startup_gc import collection_paused

with collection_paused(freeze=True), dataclass_code_cached():
    from flask import Flask

    from service.auth.guard import install_guard
    from service.catalog import Catalog, configured_catalog
    from service.fhir.cache import open_cache
    from service.pipeline import ClientFactory, HookEnvironment, build_environment
    from service.request_log import configure_logging
    from service.routes import install_http_edge
    from service.settings import Settings, load_settings
    from service.store.stores import Stores, open_stores


@dataclass(frozen=True)
class AppState:
    settings: Settings
    environment: HookEnvironment
    stores: Stores


def create_app(
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    client_factory: ClientFactory | None = None,
    request_threads: int | None = None,
) -> Flask:
    """The service's app; `request_threads`: how many threads its server answers requests with."""
    settings = settings or Settings()
    stores = open_stores(settings.store)
    app = Flask(__name__)
    executor = ThreadPoolExecutor(max_workers=settings.fhir.max_workers, thread_name_prefix="idds-crd-fhir")
    environment = build_environment(
        settings.fhir,
        catalog or configured_catalog(settings),
        executor,
        client_factory,
        settings.only_orders_with_rules,
        open_cache(settings.cache),
        request_threads,
    )
    app.extensions["idds_crd"] = AppState(settings=settings, environment=environment, stores=stores)
    install_http_edge(app, settings)
    if settings.sandbox.enabled:
        from service.sandbox import install_sandbox

        install_sandbox(app, settings.sandbox, environment.catalog)
    install_guard(app, settings, stores.replay)  # after the request log: a 401 gets its id and log line
    return app


def create_app_from_environment() -> Flask:
    """WSGI entry point for production servers: settings from $IDDS_CRD_CONFIG (or defaults)."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level, settings.log_buffer_bytes)
    return create_app(settings)
