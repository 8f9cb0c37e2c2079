"""A complete prefetch against the real FHIR server: the EHR runs the discovery templates, the service
then asks the FHIR server nothing, and answers exactly as it does when it queries everything itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import request_files, with_fhir_server
from service.pipeline import default_client_factory
from service.settings import FhirSettings
from tests.integration.conftest import FHIR_TOKEN
from tests.prefetch_support import CountingFactory, counted_call, ehr_prefetch, without_uuids
from tests.support import load_sample, open_settings

SAMPLES = sorted(p.name for p in request_files() if p.stem.startswith(("order-select-62362", "order-sign")))


@pytest.fixture(scope="module")
def counted(fhir_server: LocalFhirServer) -> Iterator[tuple[Flask, CountingFactory]]:
    settings = open_settings(fhir_server.base_url, fhir=FhirSettings(timeout_seconds=10.0))
    factory = CountingFactory(default_client_factory(settings.fhir))
    yield create_app(settings, client_factory=factory), factory


@pytest.mark.parametrize("name", SAMPLES)
def test_complete_prefetch_makes_no_fhir_request_and_answers_as_the_queries_do(
    counted: tuple[Flask, CountingFactory], fhir_server: LocalFhirServer, name: str
) -> None:
    app, factory = counted
    queried = with_fhir_server(load_sample(name), fhir_server.base_url, FHIR_TOKEN)
    del queried["prefetch"]
    from_queries, query_calls = counted_call(app, factory, queried)
    assert {"search", "batch"} & set(query_calls)  # the service did fetch the chart itself

    entry = next(
        s
        for s in app.test_client().get("/cds-services").get_json()["services"]
        if s["hook"] == queried["hook"]
    )
    prefetched = dict(
        queried,
        prefetch=ehr_prefetch(
            entry["prefetch"], fhir_server.base_url, FHIR_TOKEN, queried["context"]["patientId"]
        ),
    )
    from_prefetch, prefetch_calls = counted_call(app, factory, prefetched)

    assert prefetch_calls == []
    assert from_prefetch["cards"], name
    assert without_uuids(from_prefetch) == without_uuids(from_queries)


def test_the_coverage_template_is_crds_and_the_payers_come_by_their_own(
    counted: tuple[Flask, CountingFactory], fhir_server: LocalFhirServer
) -> None:
    """`coverage` is CRD 2.2.1's expression (§found-29), so it brings the Coverage alone; the FHIR
    server runs `payerOrganizations`' reverse chain (`_has`) to exactly the payer it names."""
    app, _ = counted
    [entry, *_] = app.test_client().get("/cds-services").get_json()["services"]
    assert entry["prefetch"]["coverage"] == "Coverage?patient={{context.patientId}}&status=active"
    keys = {key: entry["prefetch"][key] for key in ("coverage", "payerOrganizations")}
    filled = ehr_prefetch(keys, fhir_server.base_url, FHIR_TOKEN, "demo-meets")
    [coverage] = [e["resource"] for e in filled["coverage"]["entry"]]
    assert coverage["resourceType"] == "Coverage"
    payers = [e["resource"] for e in filled["payerOrganizations"]["entry"]]
    assert [f"Organization/{o['id']}" for o in payers] == [p["reference"] for p in coverage["payor"]]


def test_an_ehr_on_the_earlier_coverage_template_still_needs_no_fhir_request(
    counted: tuple[Flask, CountingFactory], fhir_server: LocalFhirServer
) -> None:
    """Backwards compatible: the payer `_include`d in `coverage` (the template before CRD 2.2.1's), and
    no `payerOrganizations`, is a complete prefetch still, answered as the queries are."""
    app, factory = counted
    queried = with_fhir_server(
        load_sample("order-sign-implant-demo-meets.json"), fhir_server.base_url, FHIR_TOKEN
    )
    del queried["prefetch"]
    from_queries, _ = counted_call(app, factory, queried)
    [entry] = [
        s
        for s in app.test_client().get("/cds-services").get_json()["services"]
        if s["id"] == "idds-crd-order-sign"
    ]
    templates = {key: template for key, template in entry["prefetch"].items() if key != "payerOrganizations"}
    templates["coverage"] += "&_include=Coverage:payor"
    prefetch = ehr_prefetch(templates, fhir_server.base_url, FHIR_TOKEN, "demo-meets")
    assert "Organization" in {e["resource"]["resourceType"] for e in prefetch["coverage"]["entry"]}
    from_prefetch, prefetch_calls = counted_call(app, factory, dict(queried, prefetch=prefetch))
    assert prefetch_calls == []
    assert without_uuids(from_prefetch) == without_uuids(from_queries)


def test_a_sorted_search_is_accepted_by_the_fhir_server(
    counted: tuple[Flask, CountingFactory], fhir_server: LocalFhirServer
) -> None:
    """Every clinical template (with its `_sort`) runs as written on the real server."""
    app, _ = counted
    [entry, *_] = app.test_client().get("/cds-services").get_json()["services"]
    filled = ehr_prefetch(entry["prefetch"], fhir_server.base_url, FHIR_TOKEN, "demo-meets")
    assert all(
        value is not None and value["resourceType"] in ("Bundle", "Patient") for value in filled.values()
    )
    assert filled["observations"]["entry"] and filled["conditions"]["entry"]
