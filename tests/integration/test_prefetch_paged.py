"""An EHR whose FHIR server pages its searches small sends page one of each prefetched search, with its
`next` link, and its fhirServer: against the real FHIR server, the service reads the rest by the key's
own query (the clinical keys, the Patient and Coverage, the encounter hooks' open orders; the pain scores
by time; `observations` of the earlier templates with the pain scores' own search beside it) in one
round, asks no `next` page, keeps what it ran in the patient-data cache, and answers as it does when
every page is followed."""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import patient_files, with_fhir_server
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer
from service.fhir.outbound import NO_ANSWER
from service.fhir.queries import CLINICAL_KEYS
from service.hooks.models import parse_hook_request
from service.registry import STANDARD_PREFETCH, service_for_hook
from service.settings import CacheSettings, FhirSettings
from tests.builders import catalog
from tests.cache_support import HandClock, cache_app, cache_settings, call, sign_after, two_ehrs
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


ENCOUNTER_PATIENT = "paged-open-orders"  # demo-meets with two more open orders: three on the chart


@pytest.fixture(scope="module")
def open_orders_chart(fhir_server: LocalFhirServer) -> Iterator[str]:
    chart_path = next(p for p in patient_files() if p.stem == "demo-meets")
    chart = json.loads(chart_path.read_text(encoding="utf-8").replace("demo-meets", ENCOUNTER_PATIENT))
    for n, code in enumerate(("62350", "97110")):  # a catheter order (a pump order), and one that is not
        rid = f"{ENCOUNTER_PATIENT}-open-{n}"
        order = {
            "resourceType": "ServiceRequest",
            "id": rid,
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]},
            "subject": {"reference": f"Patient/{ENCOUNTER_PATIENT}"},
            "authoredOn": "2026-11-20",
        }
        chart["entry"].append(
            {"resource": order, "request": {"method": "PUT", "url": f"ServiceRequest/{rid}"}}
        )
    fhir_server.load(chart)
    yield ENCOUNTER_PATIENT


def templates_of(app: Flask, hook: str) -> dict[str, str]:
    [entry] = [s for s in app.test_client().get("/cds-services").get_json()["services"] if s["hook"] == hook]
    templates: dict[str, str] = entry["prefetch"]
    return templates


def paged_at(
    server: LocalFhirServer, templates: dict[str, str], patient: str, sizes: dict[str, int]
) -> tuple[dict[str, Any], list[str]]:
    """The prefetch of an EHR that sends the keys of `sizes` as page one at that size and the others
    whole, and the `next` links of those pages."""
    whole = ehr_prefetch(templates, server.base_url, FHIR_TOKEN, patient)
    prefetch = dict(whole)
    links: list[str] = []
    for key, size in sizes.items():
        page = ehr_first_pages({key: templates[key]}, server.base_url, FHIR_TOKEN, patient, size)[key]
        links += [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
        prefetch[key] = page
    assert len(links) == len(sizes)  # each of them is page one of several
    return prefetch, links


def earlier_templates(templates: dict[str, str]) -> dict[str, str]:
    """The templates of earlier versions: `observations` held the pain codes too, and no `painScores`."""
    pain_codes = templates["painScores"].split("code=", 1)[1]
    earlier = {k: v for k, v in templates.items() if k != "painScores"}
    earlier["observations"] = templates["observations"].replace("code=", f"code={pain_codes},", 1)
    return earlier


@pytest.mark.parametrize(
    ("sample", "sizes", "most"),
    [
        # `observations` by the earlier template (pain scores in it), paged: its own search and the pain
        # scores' by time in one batch, then the pain scores' second round (before: 5, its pages one by one)
        ("order-sign-implant-demo-meets.json", {"observations": 2}, 2),
        # two Coverages, paged at 1: the service's own Coverage search (its payers included); before,
        # the `next` page
        ("order-select-62362-demo-two-coverages.json", {"coverage": 1}, 1),
        # the payers' reverse chain, paged: never run by the service; the payer page one lacks is read
        ("order-select-62362-demo-two-coverages.json", {"payerOrganizations": 1}, 1),
    ],
)
def test_a_standard_or_earlier_template_key_paged_small_asks_no_next_page_and_answers_as_its_pages(
    fhir_server: LocalFhirServer,
    monkeypatch: pytest.MonkeyPatch,
    sample: str,
    sizes: dict[str, int],
    most: int,
) -> None:
    app = create_app(open_settings(fhir_server.base_url, fhir=FhirSettings(timeout_seconds=10.0)))
    body = with_fhir_server(load_sample(sample), fhir_server.base_url, FHIR_TOKEN)
    templates = templates_of(app, body["hook"])
    if "observations" in sizes:
        templates = earlier_templates(templates)
    patient = body["context"]["patientId"]
    prefetch, links = paged_at(fhir_server, templates, patient, sizes)
    followed = answer(
        app,
        dict(
            copy.deepcopy(body), prefetch=ehr_prefetch(templates, fhir_server.base_url, FHIR_TOKEN, patient)
        ),
    )

    log = RequestLog()
    monkeypatch.setattr(FhirClient, "_exchange", log.exchange)
    from_pages = answer(app, dict(body, prefetch=prefetch))
    assert without_uuids(from_pages) == without_uuids(followed)
    assert not set(links) & set(log.urls), log.urls
    assert len(log.urls) <= most, log.urls


def test_an_encounters_open_orders_paged_small_are_read_by_the_keys_own_search(
    fhir_server: LocalFhirServer, open_orders_chart: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """encounter-start: three open orders, the EHR's page one of them at 1 a page: one search of the
    service's (before: the two `next` pages one round trip each), the same answer as the whole prefetch."""
    app = create_app(open_settings(fhir_server.base_url, fhir=FhirSettings(timeout_seconds=10.0)))
    body = json.loads(
        json.dumps(load_sample("encounter-start-demo-meets.json")).replace("demo-meets", open_orders_chart)
    )
    body = with_fhir_server(body, fhir_server.base_url, FHIR_TOKEN)
    templates = templates_of(app, body["hook"])
    prefetch, _ = paged_at(fhir_server, templates, open_orders_chart, {"openServiceRequests": 1})
    followed = answer(
        app,
        dict(
            copy.deepcopy(body),
            prefetch=ehr_prefetch(templates, fhir_server.base_url, FHIR_TOKEN, open_orders_chart),
        ),
    )
    assert followed["cards"]

    log = RequestLog()
    monkeypatch.setattr(FhirClient, "_exchange", log.exchange)
    from_pages = answer(app, dict(body, prefetch=prefetch))
    assert without_uuids(from_pages) == without_uuids(followed)
    [asked] = log.urls
    assert asked.startswith(f"{fhir_server.base_url}/ServiceRequest?_count=500&patient={open_orders_chart}")


def test_order_sign_after_order_select_with_the_same_paged_prefetch_asks_the_fhir_server_nothing(
    fhir_server: LocalFhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The searches run instead of a paged prefetch's `next` pages are kept in the patient-data cache
    (per trusted EHR, FHIR server, user, token digest and patient, as every query's answer): order-sign
    after order-select, the EHR sending the same page ones, is answered from it (before: they were
    searched again), with the answer it gets uncached."""
    ehrs = two_ehrs()
    settings = cache_settings(fhir_server.base_url, ehrs, CacheSettings(ttl_seconds=60.0))
    app = cache_app(settings, catalog(), HandClock())
    uncached = cache_app(replace(settings, cache=CacheSettings(enabled=False)), catalog(), HandClock())
    select = with_fhir_server(
        load_sample("order-select-62362-demo-meets.json"), fhir_server.base_url, FHIR_TOKEN
    )
    templates = templates_of(app, "order-select")
    sizes = {"conditions": 1, "procedures": 2, "observations": 2, "painScores": 2}
    prefetch, _ = paged_at(fhir_server, templates, "demo-meets", sizes)
    select = dict(select, prefetch=prefetch)
    sign = sign_after(select)

    log = RequestLog()
    monkeypatch.setattr(FhirClient, "_exchange", log.exchange)
    answers = []
    for deployment, body in ((app, select), (app, sign), (uncached, sign)):
        log.urls.clear()
        response = call(deployment.test_client(), ehrs[0], body)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        answers.append((len(log.urls), response.get_json()))
    (selected, _), (signed, warm), (alone, cold) = answers
    assert selected > 0 and alone > 0
    assert signed == 0
    assert without_uuids(warm) == without_uuids(cold)
