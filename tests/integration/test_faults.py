"""A failing FHIR server degrades the answer, within the deadline, and never fails the hook.

The FHIR server here is a real HTTP server on loopback whose behaviour each test chooses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from service.app import create_app
from service.arrival import arrived
from service.demo.fhir_server import free_port
from service.settings import FhirSettings
from tests.builders import catalog
from tests.conformance import check_response
from tests.demo_support import packaged_sample
from tests.integration.conftest import pointed_at
from tests.support import open_settings

pytestmark = pytest.mark.integration

DEADLINE = 1.0
MARGIN = 1.5


NEXT_LINKS: dict[str, Callable[[FaultyFhirServer, str], str]] = {
    "loop": lambda server, path: f"{server.base_url}{path[5:]}",
    "other-tenant": lambda server, path: f"http://127.0.0.1:{server.port}/other-tenant{path[5:]}",
}


class FaultyFhirServer:
    """Answers every FHIR request the way `mode` says: slow, 500, garbage, endless paging, paging off
    its base to another tenant's path on the same host, or fine."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: bytes, content_type: str = "application/fhir+json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if owner.mode == "slow":
                    time.sleep(10)
                    return
                if owner.mode == "error":
                    self._send(500, b'{"resourceType": "OperationOutcome", "issue": []}')
                elif owner.mode == "garbage":
                    self._send(200, b'{"resourceType": "Bundle", "entry": [{"resource": ')
                elif owner.mode == "html":
                    self._send(200, b"<html>maintenance</html>", "text/html")
                elif owner.mode in NEXT_LINKS:
                    bundle = {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "entry": [],
                        "link": [{"relation": "next", "url": NEXT_LINKS[owner.mode](owner, self.path)}],
                    }
                    self._send(200, json.dumps(bundle).encode())
                else:
                    self._send(200, json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyFhirServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def service_for(*fhir_servers: str) -> Any:
    """A test client of the service whose calls may name `fhir_servers`."""
    settings = open_settings(
        *fhir_servers, fhir=FhirSettings(deadline_seconds=DEADLINE, timeout_seconds=DEADLINE, max_pages=1000)
    )
    return create_app(settings, catalog()).test_client()


def call(base_url: str, prefetch: bool = True) -> tuple[Any, float]:
    body = pointed_at("order-select-62362-demo-meets", base_url)
    if not prefetch:
        del body["prefetch"]
    service = service_for(base_url)
    started = time.monotonic()
    response = service.post("/cds-services/idds-crd-order-select", json=body)
    elapsed = time.monotonic() - started
    if response.status_code == 200:
        assert check_response(response.get_json(), body) == []
    return response, elapsed


@pytest.mark.parametrize("mode", ["slow", "error", "garbage", "html", "loop"])
def test_clinical_queries_failing_degrade_the_card(mode: str) -> None:
    with FaultyFhirServer(mode) as server:
        response, elapsed = call(server.base_url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert elapsed < DEADLINE + MARGIN, f"{mode}: answered after {elapsed:.2f} s"
    card = response.get_json()["cards"][0]
    assert card["detail"].startswith("**Could not be checked** (GEHA)")
    assert "criteria could not be checked**" in card["detail"]
    assert "could not be checked**: the EHR's" in card["detail"]
    assert "meets all" not in card["summary"]
    assert server.requests, "the FHIR server was never called"


def test_a_call_that_arrived_a_deadline_ago_asks_the_server_nothing() -> None:
    """Its deadline counts from its arrival (service/arrival.py): queued for a thread that long, it
    is answered at once, the clinical criteria unchecked for want of time."""
    with FaultyFhirServer("fine") as server, arrived(time.monotonic() - DEADLINE - 0.1):
        response, _ = call(server.base_url)
    assert response.status_code == 200
    assert "no answer within the hook's time budget" in response.get_json()["cards"][0]["detail"]
    assert server.requests == []


def test_server_down_degrades_the_card() -> None:
    response, elapsed = call(f"http://127.0.0.1:{free_port()}/fhir")
    assert response.status_code == 200
    assert elapsed < DEADLINE + MARGIN
    assert "the FHIR server did not answer" in response.get_json()["cards"][0]["detail"]


@pytest.mark.parametrize("prefetch", [True, False], ids=["clinical-queries", "patient-and-coverage"])
def test_a_closed_port_and_a_server_that_never_answers_read_the_same(prefetch: bool) -> None:
    """A caller must not be able to tell a closed port from a live one that does not answer."""
    with FaultyFhirServer("slow") as server:
        stalled, _ = call(server.base_url, prefetch)
    closed, _ = call(f"http://127.0.0.1:{free_port()}/fhir", prefetch)
    assert stalled.status_code == closed.status_code == (200 if prefetch else 412)
    if prefetch:
        [stalled_answer, closed_answer] = [
            [(c["summary"], c["detail"]) for c in r.get_json()["cards"]] for r in (stalled, closed)
        ]
    else:
        stalled_answer, closed_answer = stalled.get_json(), closed.get_json()
    assert stalled_answer == closed_answer
    assert "the FHIR server did not answer" in closed.get_data(as_text=True)


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
def test_patient_and_coverage_unobtainable_is_412(mode: str) -> None:
    with FaultyFhirServer(mode) as server:
        response, elapsed = call(server.base_url, prefetch=False)
    assert response.status_code == 412
    assert elapsed < DEADLINE + MARGIN
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"][0] in ("prefetch.patient", "prefetch.coverage")


def test_endless_next_loop_stops() -> None:
    with FaultyFhirServer("loop") as server:
        response, _ = call(server.base_url)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert any(reason in text for reason in ("more than 1000 pages", "did not answer", "time budget"))


def test_a_next_link_off_the_base_on_the_same_host_is_not_followed() -> None:
    """One host may serve several FHIR bases (a tenant each): a `next` link to another path of it
    would carry this EHR's token there, so it is refused as a link to another server is."""
    with FaultyFhirServer("other-tenant") as server:
        response, _ = call(server.base_url)
    assert response.status_code == 200
    assert "refused a link to another server" in response.get_json()["cards"][0]["detail"]
    assert server.requests and all(path.startswith("/fhir/") for path in server.requests), server.requests


@pytest.mark.parametrize("mode", ["error", "closed-port"])
def test_an_encounter_whose_open_orders_cannot_be_searched_says_so(mode: str) -> None:
    """encounter-start judges the open orders it searches for. A failed search is not "no open
    orders": the answer says they could not be searched, and why. Before, it was no card at all."""
    with FaultyFhirServer("error") as server:
        base_url = server.base_url if mode == "error" else f"http://127.0.0.1:{free_port()}/fhir"
        body = pointed_at("encounter-start-demo-meets", base_url)
        body["prefetch"] = {key: body["prefetch"][key] for key in ("patient", "coverage")}
        response = service_for(base_url).post("/cds-services/idds-crd-encounter-start", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    [card] = response.get_json()["cards"]
    assert card["summary"] == "Coverage not checked: the patient's open orders could not be searched"
    reason = "HTTP 500" if mode == "error" else "the FHIR server did not answer"
    assert reason in card["detail"]


def test_an_encounter_names_the_open_orders_it_could_not_search_beside_those_it_judged() -> None:
    """The EHR prefetched the open ServiceRequests (the pump order is judged on them); the
    DeviceRequest search failed: the card names that search, not "the patient's open orders"."""
    with FaultyFhirServer("error") as server:
        body = pointed_at("encounter-start-demo-meets", server.base_url)
        body["prefetch"] = {**packaged_sample("encounter-start-demo-meets")["prefetch"], **body["prefetch"]}
        del body["prefetch"]["openDeviceRequests"]
        response = service_for(server.base_url).post("/cds-services/idds-crd-encounter-start", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    summaries = [card["summary"] for card in response.get_json()["cards"]]
    assert (
        "Coverage not checked: the patient's open device (pump hardware) orders could not be searched"
        in summaries
    )
    assert any(summary.startswith("GEHA: 62362") for summary in summaries)
