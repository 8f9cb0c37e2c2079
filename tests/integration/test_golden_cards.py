"""Golden files: the cards of every demo scenario, answered against the demo FHIR server on a fixed
day, stored as Markdown under tests/golden/ and compared on every run (see tests/golden_support.py)."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import request_files
from service.hooks.models import parse_hook_request
from service.pipeline import handle_hook
from service.registry import find_service
from tests.golden_support import markdown, matches_golden
from tests.integration.conftest import pointed_at
from tests.support import open_settings

DAY = date(2026, 12, 1)  # the demo charts are dated relative to this day
PUBLIC_URL = "https://crd.example.org"


@pytest.fixture(scope="module")
def golden_app(fhir_server: LocalFhirServer) -> Flask:
    return create_app(open_settings(fhir_server.base_url, public_base_url=PUBLIC_URL))


@pytest.mark.parametrize("name", [path.stem for path in request_files()])
def test_the_cards_a_clinician_reads_are_the_reviewed_ones(
    name: str, fhir_server: LocalFhirServer, golden_app: Flask
) -> None:
    body = pointed_at(name, fhir_server.base_url)
    service = find_service(f"idds-crd-{body['hook']}")
    assert service is not None
    environment = golden_app.extensions["idds_crd"].environment
    outcome = handle_hook(parse_hook_request(body, service), service, environment, DAY, PUBLIC_URL)
    assert outcome.status == 200
    difference = matches_golden(name, markdown(name, outcome.response))
    assert difference is None, difference
