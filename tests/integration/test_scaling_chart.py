"""A chart with 20,000 pain scores on a real FHIR server (sekmet-fhir) reads as one with 200 does.

Two patients on their own server (the suite's shared server stays small): the same trial, the
same scores around it and the same recent scores; one has 200 other pain scores, the other
20,000 (ten times the old page cap). What the policies read — the trial result of contract §4 and
the latest score of §3 — must come out exactly the same, and the service must never hold the
20,000 (it asks for the recent ones and the trial's window only).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.catalog import Catalog
from service.demo.fhir_server import LocalFhirServer
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer, GatheredData
from service.fhir.queries import policy_observation_codes
from service.hooks.models import parse_hook_request
from service.record import build_record
from service.registry import service_for_hook
from tests.calls import sample
from tests.scaling_support import pain_chart, transactions

NOW = datetime.now(UTC).replace(microsecond=0)
TRIAL_AT = NOW - timedelta(days=400)  # its window lies far behind the recent scores: a second round
SMALL, LARGE = "chart-200", "chart-20000"


@pytest.fixture(scope="module")
def chart_server() -> Iterator[LocalFhirServer]:
    with LocalFhirServer() as server:
        for patient, filler in ((SMALL, 200), (LARGE, 20_000)):
            for bundle in transactions(pain_chart(patient, TRIAL_AT, NOW, filler)):
                server.load(bundle)
        yield server


def gathered(server: LocalFhirServer, catalog: Catalog, patient: str) -> GatheredData:
    body = sample("order-sign-implant-demo-meets")
    body["context"]["patientId"] = patient
    body["prefetch"] = {}
    body["fhirServer"] = server.base_url
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    codes = policy_observation_codes(catalog.terminology)
    gatherer = DataGatherer(None, codes, terminology=catalog.terminology)
    deadline = time.monotonic() + 120
    client = FhirClient(server.base_url, None, 60.0, deadline=deadline)
    return gatherer.gather(request, {}, client, deadline, today=NOW.date())


def read_by_policies(catalog: Catalog, patient: str, data: GatheredData) -> tuple[Any, ...]:
    record = build_record(patient, data.resources, catalog.terminology, data.unavailable)
    trial = record.trial
    latest = max(record.observations_with("loinc", "72514-3"), key=lambda o: o.effective)  # type: ignore[arg-type, return-value]
    return (
        trial.relief_pct,
        trial.sustained_hours,
        trial.relief_at_last_score,
        trial.baseline.value if trial.baseline else None,
        trial.baseline.effective if trial.baseline else None,
        trial.lowest_post.value if trial.lowest_post else None,
        latest.value,
        latest.effective,
        dict(record.unavailable),
    )


def test_twenty_thousand_pain_scores_read_as_two_hundred(
    chart_server: LocalFhirServer, compiled_catalog: Catalog
) -> None:
    small = gathered(chart_server, compiled_catalog, SMALL)
    large = gathered(chart_server, compiled_catalog, LARGE)
    assert read_by_policies(compiled_catalog, LARGE, large) == read_by_policies(
        compiled_catalog, SMALL, small
    )
    expected = (75.0, 8.0, False, 8.0, TRIAL_AT - timedelta(days=7), 2.0, 6.0, NOW - timedelta(days=3), {})
    assert read_by_policies(compiled_catalog, LARGE, large) == expected
    assert len(large.resources["Observation"]) < 40  # the trial's window and the recent scores, no more
    assert max(large.pages.values()) == 1
