"""The patient-data cache under test: a loopback proxy that counts the FHIR requests reaching the
real FHIR server, a clock the tests move by hand, two trusted EHRs, and apps built on them whose
cache runs on that clock."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

from service.app import create_app
from service.catalog import Catalog
from service.demo.fhir_server import free_port
from service.fhir.cache import open_cache
from service.settings import AuthSettings, CacheSettings, FhirSettings, Settings, StoreSettings, TrustedClient
from tests.auth_support import KeyPair, bearer, ec_key, jwks, mint
from tests.support import running

PUBLIC_BASE = "https://crd.example.org"
# A generated uuid, or the random tail of a suggested resource's id: masked to compare two answers.
GENERATED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=-)[0-9a-f]{12}\b")
FIRST_EHR = "https://first-ehr.example.org"
SECOND_EHR = "https://second-ehr.example.org"


NOT_ALLOWED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "batch is not supported"}],
}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class CountingProxy:
    """A proxy in front of a FHIR server (see `counting_proxy`): forwards every GET and every POST of
    a batch (headers Accept, Authorization and Content-Type only) and counts the queries by resource
    type (`/fhir/Condition?...` → `Condition`; each entry of a batch as its own query, the batches
    themselves in `batches`, all HTTP requests in `exchanges`); its links and bodies name the proxy,
    never the server behind it. With `refuse_batches`, a batch is answered 405 (not forwarded)."""

    def __init__(self, upstream: str, port: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.base_url = f"http://127.0.0.1:{port}{urlsplit(self.upstream).path}"
        self.requests: Counter[str] = Counter()
        self.batches = 0
        self.exchanges = 0
        self.refuse_batches = False
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.batches = 0
            self.exchanges = 0

    def forward(self, environ: dict[str, Any], start_response: Any) -> Any:
        incoming = Request(environ)
        tail = incoming.full_path.rstrip("?")[len(urlsplit(self.base_url).path) :]
        posted = incoming.get_data() if incoming.method == "POST" else None
        urls = [e["request"]["url"] for e in json.loads(posted)["entry"]] if posted else [tail]
        with self._lock:
            self.exchanges += 1
            self.batches += posted is not None
            if posted is not None and self.refuse_batches:
                return Response(json.dumps(NOT_ALLOWED), 405, content_type="application/fhir+json")(
                    environ, start_response
                )
            for url in urls:
                self.requests[url.strip("/").split("/")[0].split("?")[0]] += 1
        forwarded = ("accept", "authorization", "content-type")
        headers = {k: v for k, v in incoming.headers.items() if k.lower() in forwarded}
        url = self.upstream + tail
        answer = requests.request(incoming.method, url, headers=headers, data=posted, timeout=60)
        body = answer.content.replace(self.upstream.encode(), self.base_url.encode())
        content_type = answer.headers.get("Content-Type", "application/fhir+json")
        return Response(body, answer.status_code, content_type=content_type)(environ, start_response)


@contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A CountingProxy in front of `upstream`, served on a free loopback port while in use."""
    port = free_port()
    proxy = CountingProxy(upstream, port)
    with running(make_server("127.0.0.1", port, proxy.forward, threaded=True, request_handler=_QuietHandler)):
        yield proxy


class HandClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Ehr:
    """A trusted EHR: its issuer and signing key."""

    iss: str
    key: KeyPair

    def client(self, fhir_servers: tuple[str, ...]) -> TrustedClient:
        return TrustedClient(iss=self.iss, jwks=jwks(self.key), fhir_servers=fhir_servers)

    def headers(self, url: str) -> dict[str, str]:
        """A fresh JWT for one call to `url` (a path of the service)."""
        return bearer(mint(self.key, aud=PUBLIC_BASE + url, iss=self.iss))


def two_ehrs() -> tuple[Ehr, Ehr]:
    return Ehr(FIRST_EHR, ec_key()), Ehr(SECOND_EHR, ec_key())


def cache_settings(fhir_server: str, ehrs: tuple[Ehr, ...], cache: CacheSettings) -> Settings:
    """A deployment requiring JWTs of `ehrs` (each may name `fhir_server`), with `cache`."""
    auth = AuthSettings(required=True, trusted_clients=tuple(e.client((fhir_server,)) for e in ehrs))
    return Settings(
        public_base_url=PUBLIC_BASE,
        auth=auth,
        store=StoreSettings(url="sqlite://"),
        fhir=FhirSettings(deadline_seconds=60.0, timeout_seconds=50.0),
        cache=cache,
    )


def cache_app(settings: Settings, catalog: Catalog, clock: HandClock) -> Flask:
    """The service as `settings` describe it, its patient-data cache running on `clock`."""
    app = create_app(settings, catalog)
    app.extensions["idds_crd"].environment.gatherer.cache = open_cache(settings.cache, clock)
    return app


def uncached_app(proxy: CountingProxy, ehr: Ehr, catalog: Catalog, *, batch: bool) -> Flask:
    """A deployment trusting `ehr` to name the proxy, with no patient-data cache, and FHIR batches
    on or off."""
    settings = cache_settings(proxy.base_url, (ehr,), CacheSettings(enabled=False))
    return cache_app(replace(settings, fhir=replace(settings.fhir, batch=batch)), catalog, HandClock())


def call(client: FlaskClient, ehr: Ehr, body: dict[str, Any]) -> TestResponse:
    url = f"/cds-services/idds-crd-{body['hook']}"
    return client.post(url, json=body, headers=ehr.headers(url))


def sign_after(select: dict[str, Any]) -> dict[str, Any]:
    """The order-sign call that follows an order-select: the same orders, nothing selected."""
    sign = {k: v for k, v in select.items() if k != "hookInstance"}
    sign["context"] = {k: v for k, v in select["context"].items() if k != "selections"}
    sign["hook"] = "order-sign"
    sign["hookInstance"] = "6b0e2f8a-1c3d-4e5f-8a7b-9c0d1e2f3a4b"
    return sign


def with_context(body: dict[str, Any], **context: Any) -> dict[str, Any]:
    """The body with some of its context replaced (another user, another patient)."""
    return {**body, "context": {**body["context"], **context}}
