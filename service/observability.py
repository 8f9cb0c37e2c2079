"""Prometheus metrics and readiness: what an operator scrapes and probes to run the service.

`/metrics` (Prometheus text format) carries hook-call latency by service and outcome (the outcome
the request log notes for every call), FHIR query latency by resource type and outcome (returned, or
cut at the call's deadline) and failures by resource type,
patient-data cache hits and misses by resource type (and failures of a shared Redis), the
determinations by payer policy and outcome, the calls that went on without their worker's compute
turn (service/compute_turns.py), the calls that did not ask a FHIR server already holding too
many of their worker's threads (service/fhir/server_share.py), and the log lines dropped while
stderr was not read (service/log_buffer.py). Labels are bounded: service ids and
resource types come from the registry and the query plan, never from the request.

Each app has its own `CollectorRegistry`, so tests that build many apps in one process do not
collide. Under gunicorn (`PROMETHEUS_MULTIPROC_DIR` set before the first import of
prometheus_client; `idds-crd serve` sets it) every worker writes its values to files in that
directory and `/metrics` sums all workers' files, whichever worker answers the scrape. This is
not in `service/metrics.py`, which exports CRD metric data from the audit trail.

`readiness_problems` says what keeps the app from serving calls: no compiled policies, an audit
store that does not answer, or one that answers but refuses the writes every call needs (a
read-only standby, a missing grant, a write refused a moment ago: service/store/write_refusals.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Request, Response, has_app_context
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from service.flask_context import current_application, current_globals, current_request
from service.log_buffer import on_dropped_lines
from service.registry import find_service
from service.request_log import annotations
from service.settings import Settings
from service.store.errors import StoreError, kind_of

if TYPE_CHECKING:
    from service.app import AppState
    from service.engine.model import Determination

log = logging.getLogger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_KEY = "idds_crd_metrics"
HOOK_ENDPOINT = "cds.call_service"
EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
_STARTED_KEY = "idds_crd_metrics_started"
# CRD allows 5 s and CDS Hooks asks for about 500 ms: resolution where those limits are.
HOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 10.0)
FHIR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# the outcome label of the FHIR query latency: an answer or an error came back, or the call's deadline cut it
RETURNED, CUT = "returned", "cut"


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


@dataclass(frozen=True)
class ServiceMetrics:
    """One app's metrics and the registry `/metrics` reads them from."""

    registry: CollectorRegistry
    hook_seconds: Histogram
    fhir_query_seconds: Histogram
    fhir_query_errors: Counter
    determinations: Counter
    cache_hits: Counter
    cache_misses: Counter
    cache_failures: Counter
    compute_turn_missed: Counter
    requests_cut: Counter
    fhir_held_back: Counter
    log_lines_dropped: Counter

    def exposition(self) -> bytes:
        if multiprocess_directory() is None:
            return generate_latest(self.registry)
        gathered = CollectorRegistry()
        MultiProcessCollector(gathered)
        return generate_latest(gathered)


def build_metrics() -> ServiceMetrics:
    """Fresh metrics: registered in a registry of their own, or (multi-process) written to files."""
    registry = CollectorRegistry()
    into = None if multiprocess_directory() else registry
    return ServiceMetrics(
        registry=registry,
        hook_seconds=Histogram(
            "idds_crd_hook_seconds",
            "Time to answer a CDS Hooks service call, by service and outcome",
            ("service", "outcome"),
            registry=into,
            buckets=HOOK_BUCKETS,
        ),
        fhir_query_seconds=Histogram(
            "idds_crd_fhir_query_seconds",
            "Time of the FHIR queries sent, by resource type and outcome: returned (an answer or an error "
            "came back) or cut (still going at the call's deadline: its time until the cut)",
            ("resource_type", "outcome"),
            registry=into,
            buckets=FHIR_BUCKETS,
        ),
        fhir_query_errors=Counter(
            "idds_crd_fhir_query_errors",
            "FHIR queries that gave no usable answer (error, refused, not started or cut at the deadline)",
            ("resource_type",),
            registry=into,
        ),
        determinations=Counter(
            "idds_crd_determinations",
            "Order lines judged, per call, by payer policy and outcome (evaluations, not distinct decisions "
            "issued: an order judged again by a later call counts again)",
            ("policy", "outcome"),
            registry=into,
        ),
        cache_hits=Counter(
            "idds_crd_cache_hits",
            "FHIR queries answered from the patient-data cache, by resource type",
            ("resource_type",),
            registry=into,
        ),
        cache_misses=Counter(
            "idds_crd_cache_misses",
            "FHIR queries the patient-data cache could not answer (sent to the FHIR server)",
            ("resource_type",),
            registry=into,
        ),
        cache_failures=Counter(
            "idds_crd_cache_failures",
            "Lookups or writes the shared cache (Redis) did not answer in time; each read as misses",
            registry=into,
        ),
        compute_turn_missed=Counter(
            "idds_crd_compute_turn_missed",
            "Times a hook call went on without its worker's compute turn after waiting the limit",
            registry=into,
        ),
        requests_cut=Counter(
            "idds_crd_requests_cut",
            "Connections cut off before their request had arrived whole or their answer was taken, by reason",
            ("reason",),
            registry=into,
        ),
        fhir_held_back=Counter(
            "idds_crd_fhir_calls_held_back",
            "Hook calls that did not ask their FHIR server: its calls, or all FHIR servers' calls, held "
            "every place of the worker's threads they may and none ended within the wait",
            registry=into,
        ),
        log_lines_dropped=Counter(
            "idds_crd_log_lines_dropped",
            "Log lines not written: stderr was not read while log_buffer_bytes of lines waited for it, "
            "or it refused them (service/log_buffer.py)",
            registry=into,
        ),
    )


def app_metrics(app: Flask) -> ServiceMetrics | None:
    return app.extensions.get(METRICS_KEY)


def install_metrics(app: Flask, settings: Settings) -> None:
    """Observe every hook call's latency by service and outcome (when `metrics.enabled`)."""
    if not settings.metrics.enabled:
        return
    metrics = build_metrics()
    app.extensions[METRICS_KEY] = metrics
    on_dropped_lines(metrics.log_lines_dropped.inc)  # the process's log: this app's metrics count its losses

    @app.before_request
    def start_clock() -> None:
        setattr(current_globals(), _STARTED_KEY, time.perf_counter())

    @app.after_request
    def observe_hook_call(response: Response) -> Response:
        started = current_globals().get(_STARTED_KEY)
        service = _called_service(current_request())
        if started is not None and service is not None:
            outcome = str(annotations().get("outcome", "unknown"))
            if response.status_code == 503:
                outcome = "unavailable"
            metrics.hook_seconds.labels(service, outcome).observe(time.perf_counter() - started)
        return response


def _called_service(incoming: Request) -> str | None:
    """The id of a known service `incoming` called (never an arbitrary id from the URL); none for
    a CORS preflight (OPTIONS, answered by Flask), which is no hook call: counted, it doubled a
    browser-based EHR's calls under outcome "unknown" (review24 L3)."""
    if incoming.endpoint != HOOK_ENDPOINT or not incoming.view_args or incoming.method == "OPTIONS":
        return None
    service = find_service(str(incoming.view_args.get("service_id", "")))
    return service.id if service is not None else None


def _current_metrics() -> ServiceMetrics | None:
    # the app itself, not its proxy: `app_metrics` reads it once more (each read through the proxy is a
    # lookup and a caught AttributeError)
    return app_metrics(current_application()) if has_app_context() else None


def observe_fhir_query(resource_type: str, seconds: float, failed: bool, cut: bool = False) -> None:
    """Note one finished FHIR query of the request being handled (nothing outside a request): its time,
    under outcome `returned`, or `cut` for one still going at the call's deadline (`cut`: its time until
    the cut, the slow tail a histogram of those that came back never shows, review30g L3). A query that
    never started (or whose time was another's, a batch's) has no latency, only a failure."""
    metrics = _current_metrics()
    if metrics is None:
        return
    if seconds > 0:
        metrics.fhir_query_seconds.labels(resource_type, CUT if cut else RETURNED).observe(seconds)
    if failed:
        metrics.fhir_query_errors.labels(resource_type).inc()


def observe_cache(resource_type: str, hit: bool) -> None:
    """Note one cache lookup of the request being handled: answered from the cache or not."""
    metrics = _current_metrics()
    if metrics is not None:
        (metrics.cache_hits if hit else metrics.cache_misses).labels(resource_type).inc()


def observe_cache_failure() -> None:
    metrics = _current_metrics()
    if metrics is not None:
        metrics.cache_failures.inc()


def observe_compute_turn_missed() -> None:
    metrics = _current_metrics()
    if metrics is not None:
        metrics.compute_turn_missed.inc()


def observe_fhir_held_back() -> None:
    metrics = _current_metrics()
    if metrics is not None:
        metrics.fhir_held_back.inc()


def observe_request_cut(app: Flask, reason: str) -> None:
    """Note a connection `idds-crd serve` cut off, its request not whole or its answer not taken
    (outside any request: the worker's main loop names its app)."""
    metrics = app_metrics(app)
    if metrics is not None:
        metrics.requests_cut.labels(reason).inc()


def observe_determinations(determinations: Iterable[Determination]) -> None:
    metrics = _current_metrics()
    if metrics is None:
        return
    for determination in determinations:
        metrics.determinations.labels(determination.policy_id, str(determination.outcome)).inc()


def metrics_exposition(app: Flask) -> bytes | None:
    """The metrics in Prometheus text format, or None when `metrics.enabled` is false."""
    metrics = app_metrics(app)
    return None if metrics is None else metrics.exposition()


def readiness_problems(state: AppState) -> list[str]:
    """What keeps the app from serving calls; empty when it is ready."""
    problems: list[str] = []
    if not state.environment.catalog.policies:
        problems.append("no payer policy is compiled")
    database = state.stores.database
    try:
        found = database.write_problem(tokens=state.settings.auth.claims_tokens)
    except StoreError as exc:
        found = database.refusal(exc)  # the check itself refused (a table gone): an answer
        if found is None:
            log.warning("readiness: the audit store does not answer: %s", kind_of(exc))
            problems.append("the audit store (store.url) does not answer")
            return problems
    database.refusals.checked(found)  # logged once per outage, with the reason
    if found is not None or database.refusals.recent() is not None:
        problems.append("the audit store (store.url) answers but refuses writes (the log says why)")
    return problems
