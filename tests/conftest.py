"""Fixtures for the whole suite: the policies compiled once per test run, one app built on them
that never reaches a FHIR server (tests that need an EHR build their own app around a fake one),
a real PostgreSQL server for the tests of the shared database, and a real Redis for the shared
patient-data cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.catalog import Catalog
from tests.builders import catalog
from tests.postgres_support import PostgresServer, PostgresUnavailable
from tests.redis_support import RedisServer, RedisUnavailable
from tests.support import no_client, open_settings, real_server

# The compiled-catalog cache of this run (subprocesses included) lives in a private temporary
# directory, never in the user's ~/.cache: a test run must not leave state behind or read a stale one.
os.environ.setdefault("IDDS_CRD_CATALOG_CACHE", tempfile.mkdtemp(prefix="idds-crd-test-cache-"))


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL, started for this test run (skipped where it cannot run, failed in CI)."""
    server = real_server(lambda: PostgresServer().__enter__(), PostgresUnavailable, "PostgreSQL")
    try:
        yield server
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's PostgreSQL server, as a SQLAlchemy URL."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Debian's redis-server, started for this test run (skipped where it cannot run, failed in CI)."""
    server = real_server(RedisServer.launch, RedisUnavailable, "Redis")
    yield server
    server.close()
