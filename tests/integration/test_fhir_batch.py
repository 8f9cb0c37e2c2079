"""FHIR batches against the real FHIR server (sekmet on loopback, behind a proxy that counts what
reaches it): the searches and reads of a round go as one batch, the server is asked exactly the
same queries and the answer is the same as query by query; a server that refuses batches is asked
query by query at once, and not offered a batch again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from service.catalog import Catalog
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import with_fhir_server
from tests.cache_support import GENERATED, CountingProxy, Ehr, call, counting_proxy, two_ehrs, uncached_app
from tests.integration.conftest import FHIR_TOKEN
from tests.support import load_sample

pytestmark = pytest.mark.integration

SAMPLES = ("order-sign-implant-demo-meets.json", "order-select-62362-demo-two-coverages.json")


@pytest.fixture
def proxy(fhir_server: LocalFhirServer) -> Iterator[CountingProxy]:
    with counting_proxy(fhir_server.base_url) as counting:
        yield counting


@pytest.fixture(scope="module")
def ehr() -> Ehr:
    return two_ehrs()[0]


def queried(name: str, proxy: CountingProxy) -> dict[str, Any]:
    body = load_sample(name)
    del body["prefetch"]
    return with_fhir_server(body, proxy.base_url, FHIR_TOKEN)


def answered(app: Flask, ehr: Ehr, body: dict[str, Any]) -> str:
    response = call(app.test_client(), ehr, body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return GENERATED.sub("<generated>", response.get_data(as_text=True))


@pytest.mark.parametrize("name", SAMPLES)
def test_a_round_of_queries_goes_as_one_batch_and_answers_as_query_by_query(
    proxy: CountingProxy, ehr: Ehr, compiled_catalog: Catalog, name: str
) -> None:
    body = queried(name, proxy)
    one_by_one = answered(uncached_app(proxy, ehr, compiled_catalog, batch=False), ehr, body)
    asked_one_by_one, exchanges_one_by_one = dict(proxy.requests), proxy.exchanges
    assert proxy.batches == 0

    proxy.reset()
    batched = answered(uncached_app(proxy, ehr, compiled_catalog, batch=True), ehr, body)
    assert batched == one_by_one
    assert dict(proxy.requests) == asked_one_by_one  # the very same queries reached the server
    assert {"Patient", "Coverage", "Condition", "Observation", "Procedure"} <= set(proxy.requests)
    assert proxy.batches >= 1
    assert proxy.exchanges <= 3 < exchanges_one_by_one


def test_a_server_refusing_batches_is_asked_query_by_query_and_not_offered_one_again(
    proxy: CountingProxy, ehr: Ehr, compiled_catalog: Catalog
) -> None:
    body = queried(SAMPLES[0], proxy)
    one_by_one = answered(uncached_app(proxy, ehr, compiled_catalog, batch=False), ehr, body)
    exchanges_one_by_one = proxy.exchanges

    proxy.reset()
    proxy.refuse_batches = True
    app = uncached_app(proxy, ehr, compiled_catalog, batch=True)
    assert answered(app, ehr, body) == one_by_one
    assert proxy.batches == 1
    assert proxy.exchanges == exchanges_one_by_one + 1

    proxy.reset()
    assert answered(app, ehr, body) == one_by_one
    assert proxy.batches == 0
    assert proxy.exchanges == exchanges_one_by_one
