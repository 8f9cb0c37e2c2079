"""A pain score the recent search finds but contract §3 dates before the recent window, on a real FHIR
server (sekmet-fhir): the search's `date=ge` matches a score whose period reaches into the window,
and one whose written month does; both are dated by their start (a partial date by its first instant),
before it. A score dated between them and the window's start is the most recent (§3's "the most
recent documented one decides") and must still be read (service/fhir/score_window.py). A score with no
date, which no date search finds, must be read too when no dated one is usable."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.catalog import Catalog
from service.demo.fhir_server import LocalFhirServer
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer
from service.fhir.queries import policy_observation_codes
from service.fhir.score_window import recent_since
from service.hooks.models import parse_hook_request
from service.record import build_record
from service.registry import service_for_hook
from tests.calls import sample
from tests.integration.conftest import FHIR_TOKEN
from tests.scaling_support import pain_score, transactions

NOW = datetime.now(UTC).replace(microsecond=0)
INSTANT = "%Y-%m-%dT%H:%M:%SZ"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _chart(patient: str, dated: dict[str, Any], newer_at: datetime) -> list[dict[str, Any]]:
    """The patient, a score of 8 dated by `dated` and a score of 3 at `newer_at`."""
    straddling = pain_score(patient, f"{patient}-straddling", newer_at, 8)
    del straddling["effectiveDateTime"]
    straddling.update(dated)
    newer = pain_score(patient, f"{patient}-newer", newer_at, 3)
    return [{"resourceType": "Patient", "id": patient}, straddling, newer]


def _period(since: datetime) -> dict[str, Any]:
    start, end = since - timedelta(days=20), since + timedelta(days=5)
    return {"effectivePeriod": {"start": f"{start:{INSTANT}}", "end": f"{end:{INSTANT}}"}}


@pytest.mark.parametrize("form", ["period", "month"])
def test_a_score_reaching_into_the_window_from_before_it_leaves_the_newer_score_read(
    fhir_server: LocalFhirServer, compiled_catalog: Catalog, form: str
) -> None:
    since = recent_since(NOW.date())
    if form == "period":
        dated, newer_at = _period(since), since - timedelta(days=3)
    else:  # the month the window begins in: its first instant, the newer score halfway to the window
        if since.day == 1:
            pytest.skip(
                "the window begins on its month's first instant: no month reaches into it from before"
            )
        first = since.replace(day=1)
        dated, newer_at = {"effectiveDateTime": f"{since:%Y-%m}"}, first + (since - first) / 2
    patient = f"recent-dated-{form}"
    chart = _chart(patient, dated, newer_at)
    for bundle in transactions(chart):
        fhir_server.load(bundle)
    scores = _pain_scores_read(fhir_server, compiled_catalog, patient)
    latest = max(scores, key=lambda o: o.effective)  # type: ignore[arg-type, return-value]
    assert (latest.source, latest.value) == (f"Observation/{patient}-newer", 3.0)


def test_a_score_with_no_date_is_read_when_no_dated_one_is_usable(
    fhir_server: LocalFhirServer, compiled_catalog: Catalog
) -> None:
    """A pain score with no effective[x] is undated (contract §3) and read when no dated score is usable
    (dated beats undated), as when the pain scores are prefetched whole: no date search finds it, so
    the newest page of the scores, sorted by a real server, must hold it (after a preliminary one)."""
    patient = "recent-dated-none"
    undated = pain_score(patient, f"{patient}-undated", NOW, 7)
    del undated["effectiveDateTime"]
    preliminary = pain_score(
        patient, f"{patient}-preliminary", NOW - timedelta(days=400), 2, status="preliminary"
    )
    for bundle in transactions([{"resourceType": "Patient", "id": patient}, undated, preliminary]):
        fhir_server.load(bundle)
    scores = _pain_scores_read(fhir_server, compiled_catalog, patient)
    assert [(o.source, o.effective, o.value) for o in scores] == [
        (f"Observation/{patient}-undated", None, 7.0)
    ]


def test_the_older_usable_score_is_read_past_a_page_the_server_clamps(
    fhir_server: LocalFhirServer, compiled_catalog: Catalog
) -> None:
    """1000 recent pain scores none of them usable (asked, declined) and a 7 recorded 200 days ago: the
    newest page asks for 1050 (50 past the recent ones), sekmet-fhir answers 1000 a page at most, all
    recent; the 7 is on its next page and must be read, as when the chart is prefetched whole."""
    patient = "recent-dated-clamped"
    declined = []
    for n in range(1000):
        score = pain_score(patient, f"{patient}-declined-{n}", NOW - timedelta(hours=n), 0)
        del score["valueInteger"]
        score["dataAbsentReason"] = {
            "coding": [
                {
                    "system": DATA_ABSENT,
                    "code": "asked-declined",
                }
            ]
        }
        declined.append(score)
    older = pain_score(patient, f"{patient}-older", NOW - timedelta(days=200), 7)
    for bundle in transactions([{"resourceType": "Patient", "id": patient}, *declined, older]):
        fhir_server.load(bundle)
    scores = _pain_scores_read(fhir_server, compiled_catalog, patient)
    assert [(o.source, o.value) for o in scores if o.value is not None] == [
        (f"Observation/{patient}-older", 7.0)
    ]


def test_the_newest_usable_score_is_read_past_more_unusable_ones_than_a_page_holds(
    fhir_server: LocalFhirServer, compiled_catalog: Catalog
) -> None:
    """Nothing recent; 30 entered-in-error scores and 60 final ones of no use (off the 0-10 scale, or
    asked and declined) newer than a 7 recorded 300 days ago, a 2 older still. The newest page (50)
    held only unusable scores and the 7 was never read (Cohere's painful spasticity not documented,
    where the chart prefetched whole reads the 7): the server is asked only for the scores whose status
    counts (contract §3), and the page read further until it settles the newest usable score."""
    patient = "recent-dated-unusable-newer"
    chart: list[dict[str, Any]] = [{"resourceType": "Patient", "id": patient}]
    for n in range(30):
        at = NOW - timedelta(days=70, hours=n)
        chart.append(pain_score(patient, f"{patient}-error-{n}", at, 5, status="entered-in-error"))
    for n in range(60):
        score = pain_score(patient, f"{patient}-unusable-{n}", NOW - timedelta(days=80, hours=n), 42)
        if n % 2:
            del score["valueInteger"]
            score["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "asked-declined"}]}
        chart.append(score)
    chart.append(pain_score(patient, f"{patient}-usable", NOW - timedelta(days=300), 7))
    chart.append(pain_score(patient, f"{patient}-older", NOW - timedelta(days=400), 2))
    for bundle in transactions(chart):
        fhir_server.load(bundle)
    scores = [o for o in _pain_scores_read(fhir_server, compiled_catalog, patient) if o.value is not None]
    latest = max(scores, key=lambda o: o.effective, default=None)  # type: ignore[arg-type, return-value]
    assert latest is not None and (latest.source, latest.value) == (f"Observation/{patient}-usable", 7.0)


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("space", "%Y-%m-%d %H:%M:%S"),
        ("basic", "%Y%m%d"),
        ("week", "%G-W%V-%u"),
        ("hour", "%Y-%m-%dT%H"),
        ("offset", "%Y-%m-%dT%H:%M:%S+0000"),
    ],
)
def test_a_score_dated_in_a_form_fhir_does_not_allow_reads_alike_searched_and_prefetched(
    fhir_server: LocalFhirServer, compiled_catalog: Catalog, name: str, form: str
) -> None:
    """A usable 8 written in a form FHIR's dateTime does not allow (a space for the T, 20260813, an ISO
    week, no minutes, +0000), newer than 60 usable 1s. The server indexes it as undated and sorts it
    past them, so the newest page settles on a 1 and the 8 is not read; the record dated it, and the
    chart prefetched whole took the 8 (Cohere's trial went from meets to insufficient: review28c LOW 3).
    The record reads it as undated too (service/fhirdates.py), so both find the same newest usable."""
    patient = f"recent-dated-lax-{name}"
    eight = pain_score(patient, f"{patient}-eight", NOW - timedelta(days=100), 8)
    eight["effectiveDateTime"] = f"{NOW - timedelta(days=100):{form}}"
    ones = [pain_score(patient, f"{patient}-one-{n}", NOW - timedelta(days=200 + n), 1) for n in range(60)]
    chart = [{"resourceType": "Patient", "id": patient}, eight, *ones]
    for bundle in transactions(chart):
        fhir_server.load(bundle)
    searched = _pain_scores_read(fhir_server, compiled_catalog, patient)
    whole = build_record(patient, {"Observation": [eight, *ones]}, compiled_catalog.terminology)
    prefetched = whole.observations_with("loinc", "72514-3")
    newest = [
        max((o for o in scores if o.effective is not None), key=lambda o: o.effective)  # type: ignore[arg-type, return-value]
        for scores in (searched, prefetched)
    ]
    assert [(o.source, o.value) for o in newest] == [(f"Observation/{patient}-one-0", 1.0)] * 2


def _pain_scores_read(fhir_server: LocalFhirServer, compiled_catalog: Catalog, patient: str) -> list[Any]:
    """The pain scores (LOINC 72514-3) of the record of `patient`, its chart read from the real server
    as an order-sign with no prefetch reads it."""
    body = sample("order-sign-implant-demo-meets")
    body["context"]["patientId"] = patient
    body["prefetch"] = {}
    body["fhirServer"] = fhir_server.base_url
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    gatherer = DataGatherer(
        None, policy_observation_codes(compiled_catalog.terminology), terminology=compiled_catalog.terminology
    )
    deadline = time.monotonic() + 60
    client = FhirClient(fhir_server.base_url, FHIR_TOKEN, 30.0, deadline=deadline)
    data = gatherer.gather(request, {}, client, deadline, today=NOW.date())
    return build_record(patient, data.resources, compiled_catalog.terminology).observations_with(
        "loinc", "72514-3"
    )
