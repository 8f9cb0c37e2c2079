"""Metrics and readiness (issue 12, point 5), through the Flask test client: the hook latency by
service and outcome, FHIR query latency and failures by resource type, determinations by policy
and outcome, one registry per app, `/metrics` switched off by setting, and `/readyz` answering 503
when the audit store is gone."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.fhir.client import FhirClient, FhirError
from service.fhir.query_pool import FhirUse
from service.hooks.models import parse_hook_request
from service.pipeline import handle_hook
from service.registry import find_service
from service.settings import FhirSettings, MetricsSettings, StoreSettings, settings_from_mapping
from tests.builders import catalog
from tests.hostile_support import HostileFhirServer
from tests.observability_support import labelled, scrape, summed, total, value
from tests.support import (
    SELECT_URL,
    SIGN_URL,
    RecordingFactory,
    RecordingFhirClient,
    as_queried,
    load_sample,
    no_client,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

SELECT_SERVICE = "idds-crd-order-select"
SIGN_SERVICE = "idds-crd-order-sign"
ENCOUNTER_URL = "/cds-services/idds-crd-encounter-start"


def prefetch_only_app() -> Flask:
    return create_app(open_settings(), catalog(), client_factory=no_client)


def test_a_hook_call_is_timed_by_service_and_outcome() -> None:
    app = prefetch_only_app()
    client = app.test_client()
    assert post_json(client, SELECT_URL, select_body()).status_code == 200
    assert post_json(client, SELECT_URL, select_body()).status_code == 200
    assert post_json(client, SELECT_URL, {"hook": "order-select"}).status_code == 400
    exposition = scrape(app)
    answered = {"service": SELECT_SERVICE, "outcome": "answered"}
    assert value(exposition, "idds_crd_hook_seconds_count", **answered) == 2
    assert value(exposition, "idds_crd_hook_seconds_bucket", le="+Inf", **answered) == 2
    assert value(exposition, "idds_crd_hook_seconds_sum", **answered) > 0
    assert value(exposition, "idds_crd_hook_seconds_count", service=SELECT_SERVICE, outcome="invalid") == 1


def test_only_known_services_get_a_label() -> None:
    app = prefetch_only_app()
    assert post_json(app.test_client(), "/cds-services/no-such-service", select_body()).status_code == 404
    assert app.test_client().get("/healthz").status_code == 200
    assert labelled(scrape(app), "idds_crd_hook_seconds_count") == []


def test_a_call_refused_by_the_jwt_guard_counts_as_unauthorized() -> None:
    app = create_app(open_settings(auth=settings_from_mapping({}).auth), catalog(), client_factory=no_client)
    assert post_json(app.test_client(), SIGN_URL, sign_body()).status_code == 401
    exposition = scrape(app)  # /metrics itself needs no JWT
    assert value(exposition, "idds_crd_hook_seconds_count", service=SIGN_SERVICE, outcome="unauthorized") == 1


def test_a_cors_preflight_is_not_counted_as_a_hook_call() -> None:
    """A browser's preflight (OPTIONS) before each call is no hook call: before, it was counted with
    outcome "unknown", doubling the calls of a browser-based EHR (review24 L3)."""
    settings = open_settings(cors_origins=("https://ehr.example.org",))
    app = create_app(settings, catalog(), client_factory=no_client)
    preflight = {"Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST"}
    assert app.test_client().options(SIGN_URL, headers=preflight).status_code == 200
    assert labelled(scrape(app), "idds_crd_hook_seconds_count") == []


def without_coverage(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with an empty Coverage search prefetched: a primary hook is answered 400 (docs/api.md)."""
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset"}
    return body


def test_a_call_refused_for_its_coverage_is_counted_by_its_issue_code_not_as_a_412() -> None:
    """A 400 about the Coverage (none active; under CRD 2.2 several, or a payer not served) is counted
    by its issue code (`invalid`), as every other 400; a 412 stays "precondition-failed". Before,
    every non-200 answer of the pipeline was "precondition-failed" (review24 L3)."""
    app = prefetch_only_app()
    assert post_json(app.test_client(), SIGN_URL, without_coverage(sign_body())).status_code == 400
    unanswerable = sign_body()
    del unanswerable["prefetch"]
    assert post_json(app.test_client(), SIGN_URL, unanswerable).status_code == 412
    exposition = scrape(app)
    counted = {
        o: value(exposition, "idds_crd_hook_seconds_count", service=SIGN_SERVICE, outcome=o)
        for o in ("invalid", "precondition-failed")
    }
    assert counted == {"invalid": 1, "precondition-failed": 1}


def test_determinations_are_counted_by_policy_and_outcome() -> None:
    app = prefetch_only_app()
    body = select_body()
    assert post_json(app.test_client(), SELECT_URL, body).status_code == 200
    service = find_service(SELECT_SERVICE)
    assert service is not None
    environment = app.extensions["idds_crd"].environment
    made = handle_hook(parse_hook_request(body, service), service, environment, datetime.now(UTC).date())
    expected = Counter((d.policy_id, str(d.outcome)) for d in made.determinations)
    assert expected
    counted = {
        (labels["policy"], labels["outcome"]): value(scrape(app), "idds_crd_determinations_total", **labels)
        for labels in labelled(scrape(app), "idds_crd_determinations_total")
    }
    assert counted == dict(expected)


def call_with_fhir(client: RecordingFhirClient) -> tuple[Flask, list[str]]:
    """An order-sign against `client`; the app and the resource types the call searched."""
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(client))
    assert post_json(app.test_client(), SIGN_URL, with_fhir(sign_body())).status_code == 200
    return app, [args[0] for kind, args in client.calls if kind == "search"]


def test_fhir_queries_are_timed_by_resource_type() -> None:
    app, searched = call_with_fhir(RecordingFhirClient())
    assert "Condition" in searched and "Observation" in searched
    exposition = scrape(app)
    for resource_type in set(searched):
        sample = {"resource_type": resource_type, "outcome": "returned"}
        assert value(exposition, "idds_crd_fhir_query_seconds_count", **sample) == searched.count(
            resource_type
        )
    assert labelled(exposition, "idds_crd_fhir_query_errors_total") == []


DEADLINE = 0.6  # seconds: the stalled server's queries are cut at it


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
def test_fhir_queries_cut_at_the_deadline_are_timed_until_the_cut(batch: bool) -> None:
    """review30g L3: a FHIR request still going at the call's deadline, cut there, was no latency sample
    (only an error), so the histogram never showed the slow tail an SRE looks for (139 samples against 256
    requests under a tight deadline). Each is now a sample of its time until the cut under outcome `cut`,
    beside the `returned` ones, whether its worker was still waiting at the deadline or its request was cut
    first (client.CutAtDeadline); a real client, a server that never answers, the app's own `/metrics`."""
    with HostileFhirServer("stall") as server:
        settings = open_settings(
            server.base_url,
            fhir=FhirSettings(deadline_seconds=DEADLINE, timeout_seconds=DEADLINE, batch=batch),
        )
        app = create_app(settings, catalog())
        body = with_fhir(as_queried(select_body()), server=server.base_url)
        assert post_json(app.test_client(), SELECT_URL, body).status_code == 200  # "could not be checked"
        exposition = scrape(app)
        asked = len(server.requests)
    assert asked >= 1
    cut = summed(exposition, "idds_crd_fhir_query_seconds_count", outcome="cut")
    assert cut >= 1 and summed(exposition, "idds_crd_fhir_query_seconds_count", outcome="returned") == 0
    assert cut <= total(exposition, "idds_crd_fhir_query_errors_total")  # each cut is a failure too
    seconds = summed(exposition, "idds_crd_fhir_query_seconds_sum", outcome="cut")
    assert DEADLINE / 2 < seconds / cut <= DEADLINE + 0.5  # its time until the cut, near the deadline
    for sample in labelled(exposition, "idds_crd_fhir_query_seconds_count"):
        assert set(sample) == {"resource_type", "outcome"}


def test_a_read_cut_at_the_deadline_in_the_calls_own_thread_is_timed_until_the_cut() -> None:
    """A read made outside the pool (an order's Device, a booked order: `FhirUse.read`), cut by the client
    itself at the call's deadline (client.CutAtDeadline), is a `cut` sample of its time until the cut, not a
    `returned` one: the same slow tail, however the request met the deadline."""
    with HostileFhirServer("stall") as server:
        app = create_app(open_settings(server.base_url), catalog())
        with app.app_context():  # the FHIR query metric counts in the app's context
            client = FhirClient(server.base_url, "a-token", 5.0, deadline=time.monotonic() + DEADLINE)
            with pytest.raises(FhirError):
                FhirUse().read(client, "Device/pump")
        exposition = scrape(app)
    assert value(exposition, "idds_crd_fhir_query_seconds_count", resource_type="Device", outcome="cut") == 1
    assert (
        value(exposition, "idds_crd_fhir_query_seconds_count", resource_type="Device", outcome="returned")
        == 0
    )
    seconds = value(exposition, "idds_crd_fhir_query_seconds_sum", resource_type="Device", outcome="cut")
    assert DEADLINE / 2 < seconds <= DEADLINE + 0.5


def test_failed_fhir_queries_are_counted_by_resource_type() -> None:
    app, searched = call_with_fhir(RecordingFhirClient(FhirError("HTTP 503", 503)))
    exposition = scrape(app)
    for resource_type in set(searched):
        assert value(exposition, "idds_crd_fhir_query_errors_total", resource_type=resource_type) == (
            searched.count(resource_type)
        )


def test_failed_searches_for_an_encounters_open_orders_are_counted() -> None:
    """The open-order searches of encounter-start run before the gather: their failures are counted
    as its are (the card says they could not be searched; the metric must not say all is well)."""
    client = RecordingFhirClient(FhirError("HTTP 503", 503))
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(client))
    body = with_fhir(load_sample("encounter-start-demo-meets.json"))
    assert post_json(app.test_client(), ENCOUNTER_URL, body).status_code == 200
    exposition = scrape(app)
    for resource_type in ("ServiceRequest", "DeviceRequest"):
        assert value(exposition, "idds_crd_fhir_query_errors_total", resource_type=resource_type) == 1


def test_each_app_has_its_own_metrics() -> None:
    busy, idle = prefetch_only_app(), prefetch_only_app()
    assert post_json(busy.test_client(), SELECT_URL, select_body()).status_code == 200
    assert labelled(scrape(busy), "idds_crd_hook_seconds_count")
    assert labelled(scrape(idle), "idds_crd_hook_seconds_count") == []


def test_metrics_can_be_switched_off() -> None:
    assert settings_from_mapping({"metrics": {"enabled": False}}).metrics == MetricsSettings(enabled=False)
    app = create_app(
        open_settings(metrics=MetricsSettings(enabled=False)), catalog(), client_factory=no_client
    )
    assert post_json(app.test_client(), SELECT_URL, select_body()).status_code == 200
    response = app.test_client().get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_ready_when_policies_are_compiled_and_the_audit_store_answers() -> None:
    app = create_app(open_settings(auth=settings_from_mapping({}).auth), catalog(), client_factory=no_client)
    response = app.test_client().get("/readyz")  # no JWT needed, even where hook calls need one
    assert (response.status_code, response.get_json()) == (200, {"status": "ready"})
    assert app.test_client().get("/healthz").status_code == 200


def test_not_ready_without_compiled_policies() -> None:
    app = create_app(open_settings(), replace(catalog(), policies={}), client_factory=no_client)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["diagnostics"] == "not ready: no payer policy is compiled"


def test_every_503_says_when_to_try_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not ready, or a call that cannot be recorded: `Retry-After`, the seconds until the database is
    tried again (`store.retry_after_seconds`, rounded up); no other answer carries one (review s16)."""
    store = StoreSettings(url="sqlite://", retry_after_seconds=2.5)
    unready = create_app(
        open_settings(store=store), replace(catalog(), policies={}), client_factory=no_client
    )
    assert unready.test_client().get("/readyz").headers["Retry-After"] == "3"
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    answered = post_json(app.test_client(), SELECT_URL, select_body())
    assert answered.status_code == 200 and "Retry-After" not in answered.headers

    def unwritable(*_: Any) -> dict[str, Any]:
        raise ValueError("a value JSON cannot hold")

    monkeypatch.setattr("service.audit_call.audit_row", unwritable)
    refused = post_json(app.test_client(), SELECT_URL, select_body())
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1")


def test_not_ready_when_the_audit_store_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    store = StoreSettings(url=f"sqlite:///{folder / 'audit.sqlite3'}")
    app = create_app(open_settings(store=store), catalog(), client_factory=no_client)
    assert app.test_client().get("/readyz").status_code == 200
    app.extensions["idds_crd"].stores.database.close()
    shutil.rmtree(folder)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "transient"
    assert "audit store" in issue["diagnostics"]
    assert "policy" not in issue["diagnostics"]
    assert app.test_client().get("/healthz").status_code == 200  # alive, only not ready
