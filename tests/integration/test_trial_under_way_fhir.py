"""A trial under way, read from the real FHIR server (sekmet-fhir): the trial's Procedure in progress
(or on hold, or in preparation) comes with the Procedures the service searches, and with the ones an
EHR prefetches by the declared template (which asks no status: every Procedure), so the implant's
order-select proposes no second trial and names the one under way (review21b M2); a complete prefetch
still needs no FHIR request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import patient_files
from service.fhirdates import human_date
from service.pipeline import default_client_factory
from service.settings import FhirSettings
from tests.builders import cards_of
from tests.integration.conftest import FHIR_TOKEN, pointed_at
from tests.prefetch_support import CountingFactory, counted_call, ehr_prefetch, without_uuids
from tests.support import open_settings

pytestmark = pytest.mark.integration

BASE = "demo-insufficient"  # no trial on the chart: the proposal is made unless one is coming
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.fixture(scope="module")
def counted(fhir_server: LocalFhirServer) -> Iterator[tuple[Flask, CountingFactory]]:
    settings = open_settings(fhir_server.base_url, fhir=FhirSettings(timeout_seconds=10.0))
    factory = CountingFactory(default_client_factory(settings.fhir))
    yield create_app(settings, client_factory=factory), factory


def _renamed(value: Any, patient_id: str) -> Any:
    return json.loads(json.dumps(value).replace(BASE, patient_id))


@pytest.mark.parametrize(
    ("status", "days", "words"),
    [
        ("in-progress", -1, "Trial under way (CPT 62324, since {day})"),
        ("on-hold", -1, "Trial under way (CPT 62324, since {day}, on hold)"),
        ("preparation", 2, "Trial in preparation (CPT 62324, {day})"),
    ],
)
def test_a_trial_under_way_on_the_fhir_server_is_read_searched_and_prefetched(
    counted: tuple[Flask, CountingFactory], fhir_server: LocalFhirServer, status: str, days: int, words: str
) -> None:
    app, factory = counted
    patient_id = f"trial-{status}"
    chart = _renamed(
        json.loads(next(p for p in patient_files() if p.stem == BASE).read_text("utf-8")), patient_id
    )
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    trial = {
        "resourceType": "Procedure",
        "id": f"{patient_id}-trial",
        "status": status,
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": {"coding": [{"system": CPT, "code": "62324"}]},
        "performedPeriod": {"start": when.isoformat().replace("+00:00", "Z")},
    }
    put = {"method": "PUT", "url": f"Procedure/{trial['id']}"}
    chart["entry"].append({"resource": trial, "request": put})
    fhir_server.load(chart)

    queried = _renamed(pointed_at(f"order-select-62362-{BASE}", fhir_server.base_url), patient_id)
    from_queries, calls = counted_call(app, factory, queried)
    assert {"search", "batch"} & set(calls)
    assert not [c for c in from_queries["cards"] if "suggestions" in c]
    [decision] = cards_of(from_queries["cards"])
    assert f"{words.format(day=human_date(when))}: once done, document the trial" in decision["detail"]

    services = app.test_client().get("/cds-services").get_json()["services"]
    templates = next(s for s in services if s["hook"] == queried["hook"])["prefetch"]
    assert "status" not in templates["procedures"]  # every Procedure: the record reads the statuses
    prefetch = ehr_prefetch(templates, fhir_server.base_url, FHIR_TOKEN, patient_id)
    assert trial["id"] in {e["resource"]["id"] for e in prefetch["procedures"].get("entry", [])}
    from_prefetch, prefetch_calls = counted_call(app, factory, dict(queried, prefetch=prefetch))
    assert prefetch_calls == []
    assert without_uuids(from_prefetch) == without_uuids(from_queries)
