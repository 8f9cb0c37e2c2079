"""The demo patients loaded into a real FHIR server (sekmet-fhir) give, without any prefetch, the same
decisions the self-contained sample requests give offline: the decision per policy of the data
README's request table. Only the chart's keys are taken away: order-dispatch's dispatched order (its
`dispatchedServiceRequests`, which is not in the patient's chart) stays."""

from __future__ import annotations

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import request_files
from service.demo.samples import discovery_templates
from service.registry import DISPATCHED_PREFETCH
from tests.demo_support import answer, decisions_of, readme_promises
from tests.integration.conftest import pointed_at
from tests.support import open_settings

PROMISES = readme_promises()
TEMPLATES = discovery_templates()


@pytest.fixture(scope="module")
def querying_app(fhir_server: LocalFhirServer) -> Flask:
    return create_app(open_settings(fhir_server.base_url))


@pytest.mark.parametrize("name", [path.stem for path in request_files()])
def test_without_prefetch_the_fhir_server_gives_the_promised_decision(
    querying_app: Flask, fhir_server: LocalFhirServer, name: str
) -> None:
    body = pointed_at(name, fhir_server.base_url)
    chart_keys = TEMPLATES[body["hook"]].keys() - DISPATCHED_PREFETCH.keys()
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k not in chart_keys}
    outcome = answer(querying_app, body)
    assert outcome.status == 200
    assert decisions_of(outcome) == PROMISES[name].decisions
    if outcome.data is not None:
        assert outcome.data.unavailable == {}
