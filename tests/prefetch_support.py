"""Helpers for the prefetch tests: a FHIR client that counts what the service asks it, a policy
catalog with one more observation code, and an EHR's side of prefetch (running the discovery
templates against a FHIR server and sending what they return)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import requests

import policies
from service.app import create_app
from service.catalog import Catalog, load_catalog
from service.fhir.client import FhirClient
from service.hooks.models import HookRequest
from tests.support import RecordingFactory, RecordingFhirClient, open_settings, post_json, with_fhir

# a uuid, or the random tail of a suggested resource's id (`trial-62322-09e4307e05b7`)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=-)[0-9a-f]{12}\b")


REQUESTING = frozenset({"search", "read", "collect", "batch"})


class CountingClient:
    """A real FhirClient whose every call that sends requests (search, read, collect, batch) is
    recorded by name."""

    def __init__(self, inner: FhirClient) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in REQUESTING:
            return attribute

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return recorded


class CountingFactory:
    """A client factory handing out CountingClients around the service's own clients."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.clients: list[CountingClient] = []

    def __call__(self, request: HookRequest, deadline: float) -> CountingClient | None:
        inner = self.make(request, deadline)
        if inner is None:
            return None
        client = CountingClient(inner)
        self.clients.append(client)
        return client

    def calls(self) -> list[str]:
        return [call for client in self.clients for call in client.calls]


def counted_call(
    app: Any, factory: CountingFactory, body: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The answer to `body` (200 asserted) and the FHIR client calls the service made for it."""
    factory.clients.clear()
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer, factory.calls()


def catalog_with_observation_code(tmp_path: Path, loinc: str) -> Catalog:
    """The shipped catalog, with `loinc` added to the observation-evidence value set."""
    root = tmp_path / "policies"
    shutil.copytree(policies.directory(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    value_set = root / "valuesets" / "observation-evidence.yaml"
    text = value_set.read_text(encoding="utf-8")
    value_set.write_text(text.replace("loinc:\n", f"loinc:\n  - {loinc}  # added by a test\n", 1), "utf-8")
    return load_catalog(root)


def fetch_all_pages(url: str, token: str) -> Any:
    """What an EHR sends for one prefetch key: the resource, the searchset with every page's
    entries (no `next` left), or null when a read finds nothing."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    response = requests.get(url, headers=headers, timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    page = body
    while body.get("resourceType") == "Bundle":
        next_url = next((lk["url"] for lk in page.get("link", []) if lk.get("relation") == "next"), None)
        if next_url is None:
            break
        page = requests.get(next_url, headers=headers, timeout=30).json()
        body.setdefault("entry", []).extend(page.get("entry", []))
    if body.get("resourceType") == "Bundle":
        body["link"] = [lk for lk in body.get("link", []) if lk.get("relation") != "next"]
    return body


def ehr_prefetch(templates: dict[str, str], base_url: str, token: str, patient_id: str) -> dict[str, Any]:
    """Every template filled in as an EHR would: the token substituted, the query run, the result sent."""
    return {
        key: fetch_all_pages(f"{base_url}/{template.replace('{{context.patientId}}', patient_id)}", token)
        for key, template in templates.items()
    }


def ehr_first_pages(
    templates: dict[str, str], base_url: str, token: str, patient_id: str, page_size: int
) -> dict[str, Any]:
    """Every template filled in as an EHR whose server pages its searches at `page_size` would: each
    search's first page only, its `next` link left for the service to follow."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    pages = {}
    for key, template in templates.items():
        url = f"{base_url}/{template.replace('{{context.patientId}}', patient_id)}"
        response = requests.get(
            url + (f"&_count={page_size}" if "?" in url else ""), headers=headers, timeout=30
        )
        response.raise_for_status()
        pages[key] = response.json()
    return pages


class RequestLog:
    """The URLs of the HTTP requests FhirClients send (every GET and POST, pages included), recorded
    while `FhirClient._exchange` is patched with `exchange` (pytest's monkeypatch)."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        sent = FhirClient._exchange

        def exchange(
            client: FhirClient, url: str, body: bytes | None, limit: int | None, first: bool = False
        ) -> Any:
            self.urls.append(url)
            return sent(client, url, body, limit, first)

        self.exchange = exchange


def without_uuids(answer: Any) -> Any:
    """An answer with its generated ids blanked, so that two answers can be compared."""
    if isinstance(answer, dict):
        return {key: without_uuids(value) for key, value in answer.items()}
    if isinstance(answer, list):
        return [without_uuids(value) for value in answer]
    if isinstance(answer, str):
        return UUID.sub("<uuid>", answer)
    return answer


def recorded_searches(app_catalog: Catalog, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The searches the service ran for one order-sign call (resource type, parameters), in order."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(), app_catalog, client_factory=factory)
    assert (
        post_json(app.test_client(), "/cds-services/idds-crd-order-sign", with_fhir(body)).status_code == 200
    )
    return [call[1] for call in factory.client.calls if call[0] == "search"]
