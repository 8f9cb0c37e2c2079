"""An EHR whose FHIR server pages its searches small sends page one of each prefetched search, with its
`next` link, and its fhirServer: against the real FHIR server, the service reads the rest by its own
search (one round) and answers as it does when every page is followed."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import with_fhir_server
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer
from service.fhir.outbound import NO_ANSWER
from service.fhir.queries import CLINICAL_KEYS
from service.hooks.models import parse_hook_request
from service.registry import STANDARD_PREFETCH, service_for_hook
from service.settings import FhirSettings
from tests.demo_support import packaged_sample
from tests.integration.conftest import FHIR_TOKEN
from tests.prefetch_support import RequestLog, ehr_first_pages, ehr_prefetch, without_uuids
from tests.support import load_sample, open_settings, post_json

PAGE_SIZE = 2  # demo-meets' chart is several pages of this
DEADLINE = 1.0


def answer(app: Flask, body: dict[str, Any]) -> dict[str, Any]:
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answered: dict[str, Any] = response.get_json()
    return answered


def test_a_prefetch_paged_small_is_read_in_one_round_and_answers_as_following_its_pages(
    fhir_server: LocalFhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(open_settings(fhir_server.base_url, fhir=FhirSettings(timeout_seconds=10.0)))
    body = with_fhir_server(
        load_sample("order-sign-implant-demo-meets.json"), fhir_server.base_url, FHIR_TOKEN
    )
    [entry] = [
        s
        for s in app.test_client().get("/cds-services").get_json()["services"]
        if s["id"] == f"idds-crd-{body['hook']}"
    ]
    templates: dict[str, str] = entry["prefetch"]
    patient = body["context"]["patientId"]
    pages = ehr_first_pages(templates, fhir_server.base_url, FHIR_TOKEN, patient, PAGE_SIZE)
    paged = [k for k in CLINICAL_KEYS if any(link["relation"] == "next" for link in pages[k].get("link", []))]
    assert len(paged) >= 3  # the chart is larger than one page in several searches

    log = RequestLog()
    monkeypatch.setattr(FhirClient, "_exchange", log.exchange)
    from_pages = answer(app, dict(body, prefetch=pages))
    asked = list(log.urls)
    log.urls.clear()
    # every page followed (as the EHR would, to send its prefetch whole): no request at all
    followed = answer(
        app, dict(body, prefetch=ehr_prefetch(templates, fhir_server.base_url, FHIR_TOKEN, patient))
    )

    assert log.urls == []
    assert without_uuids(from_pages) == without_uuids(followed)
    # the paged keys' own searches as one batch (sekmet takes batches), and the pain scores' second
    # round (paged `painScores` is searched by time, score_window.py): no `next` page asked, one by one
    assert len(asked) <= 2, asked
    assert all(url == fhir_server.base_url for url in asked), asked


def test_a_paged_prefetch_whose_server_stalls_is_unavailable_by_the_deadline() -> None:
    """The search run instead of the `next` pages is bound by the call's deadline as any search is: a
    server that takes the connection and never answers leaves the Conditions "could not be checked"
    (page one kept, as with a `next` page that never came), on time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"
    try:
        body = with_fhir_server(packaged_sample("order-sign-implant-demo-meets"), base, FHIR_TOKEN)
        conditions = body["prefetch"]["conditions"]
        conditions["link"] = [{"relation": "next", "url": f"{base}/Condition?page=2"}]
        request = parse_hook_request(body, service_for_hook(body["hook"]))
        deadline = time.monotonic() + DEADLINE
        with ThreadPoolExecutor(max_workers=4) as pool:
            client = FhirClient(base, FHIR_TOKEN, 10.0, deadline=deadline)
            data = DataGatherer(pool, []).gather(
                request, STANDARD_PREFETCH, client, deadline, today=date.today()
            )
            took = time.monotonic() - (deadline - DEADLINE)
    finally:
        listener.close()
    assert took < DEADLINE + 0.5
    assert data.unavailable["Condition"] == NO_ANSWER
    page_one = [
        e["resource"]["id"] for e in conditions["entry"] if e["resource"]["resourceType"] == "Condition"
    ]
    assert page_one and [c["id"] for c in data.resources["Condition"]] == page_one
