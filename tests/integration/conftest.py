"""Integration fixtures: a real FHIR server (sekmet-fhir) on loopback, the service over HTTP, and an
audit database of each kind the service supports."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer, free_port
from service.demo.runner import patient_files, request_files, with_fhir_server
from service.demo.synthea import SYNTHEA_DIRS, synthea_files
from service.settings import FhirSettings
from tests.conformance import check_response
from tests.support import as_queried, open_settings, serving

FHIR_TOKEN = "integration-secret-token"


@pytest.fixture(params=["sqlite-file", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty audit database: an SQLite file, then a real PostgreSQL on loopback."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path}/audit.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[LocalFhirServer]:
    """A FHIR server that demands FHIR_TOKEN, loaded with the demo pump patients."""
    with LocalFhirServer(bearer_token=FHIR_TOKEN) as server:
        for path in patient_files():
            server.load_file(path)
        yield server


@dataclass
class LiveService:
    base_url: str

    def call(self, body: dict[str, Any], orders: list[dict[str, Any]] | None = None) -> requests.Response:
        """POST a hook call; every 200 answer must pass the CRD conformance checker (`orders`: what
        an update may target when it is not a draft order, see check_response)."""
        response = requests.post(
            f"{self.base_url}/cds-services/idds-crd-{body['hook']}", json=body, timeout=30
        )
        if response.status_code == 200:
            assert check_response(response.json(), body, orders) == []
        return response


@pytest.fixture(scope="session")
def closed_port_url() -> Iterator[str]:
    """The FHIR base URL of a port on loopback that is bound but never listens (connections are
    refused), kept for the whole session so that no other server can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"


@pytest.fixture(scope="session")
def live_service(fhir_server: LocalFhirServer, closed_port_url: str) -> Iterator[LiveService]:
    """The service over HTTP; the calls may name the session's FHIR server and the closed port."""
    port = free_port()
    app = create_app(
        open_settings(
            fhir_server.base_url,
            closed_port_url,
            public_base_url=f"http://127.0.0.1:{port}",
            fhir=FhirSettings(timeout_seconds=3.0),
        )
    )
    with serving(app, port) as url:
        yield LiveService(url)


def sample_request(name: str) -> dict[str, Any]:
    """A packaged sample with only Patient and Coverage prefetched (`as_queried`): the chart comes
    from the session's FHIR server."""
    path = next(p for p in request_files() if p.stem == name)
    return as_queried(json.loads(Path(path).read_text(encoding="utf-8")))


def pointed_at(name: str, base_url: str, token: str | None = FHIR_TOKEN) -> dict[str, Any]:
    return with_fhir_server(sample_request(name), base_url, token)


@dataclass(frozen=True)
class SyntheaPatient:
    name: str
    patient_id: str


@pytest.fixture(scope="session")
def synthea_patients(fhir_server: LocalFhirServer) -> list[SyntheaPatient]:
    """All Synthea patients of ../shared/fhir-fixtures, loaded into the session's FHIR server."""
    files = synthea_files()
    if not files:
        pytest.skip(f"the Synthea fixtures are not beside the repository (looked in {SYNTHEA_DIRS[0]})")
    patients = []
    for path in files:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        fhir_server.load(bundle)
        patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        patients.append(SyntheaPatient(path.stem, patient["id"]))
    return patients
