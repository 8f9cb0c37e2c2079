"""Fixtures for the whole suite: the policies compiled once per test run, and one app built on them
that never reaches a FHIR server (tests that need an EHR build their own app around a fake one)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.catalog import Catalog
from tests.builders import catalog
from tests.support import no_client, open_settings


@pytest.fixture(scope="session")
def compiled_catalog() -> Catalog:
    """The shipped policies, value sets and payer table, compiled once per run."""
    return catalog()


@pytest.fixture(scope="session")
def app(compiled_catalog: Catalog) -> Flask:
    """The service with the shipped catalog and no FHIR client: prefetch is all it reads."""
    return create_app(open_settings(), compiled_catalog, client_factory=no_client)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
