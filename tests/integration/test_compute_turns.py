"""Calls take turns computing (service/compute_turns.py) without one call's wait holding up another:
a call waiting on its FHIR server, or a client still sending its body, lets another call through.

The service runs over real HTTP (werkzeug, threaded) and waits for its turn as long as a test runs,
so a call held up by another's turn would show as a call that does not answer (the hang guard)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from service.app import create_app
from service.settings import FhirSettings
from tests.builders import catalog
from tests.hostile_support import HostileFhirServer
from tests.integration.conftest import pointed_at
from tests.support import REQUESTS_DIR, open_settings, serving

pytestmark = pytest.mark.integration

LONG = 60.0  # seconds: the turn's wait and the FHIR deadline, beyond any test
HANG_GUARD = 20.0  # seconds: reached only if a call is held up
SIGN = "/cds-services/idds-crd-order-sign"


def complete_call() -> dict[str, Any]:
    """The packaged order-sign: every prefetch key filled, no FHIR server named."""
    return json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text(encoding="utf-8"))


@pytest.fixture
def held() -> Iterator[HostileFhirServer]:
    with HostileFhirServer("held") as server:
        yield server


@pytest.fixture
def app(held: HostileFhirServer) -> Flask:
    fhir = FhirSettings(deadline_seconds=LONG, timeout_seconds=LONG)
    app = create_app(open_settings(held.base_url, fhir=fhir), catalog())
    app.extensions["idds_crd"].environment.turns.wait_seconds = LONG
    return app


def test_a_call_waiting_on_its_fhir_server_lets_another_call_compute(
    app: Flask, held: HostileFhirServer
) -> None:
    with serving(app) as url:
        waiting: list[requests.Response] = []
        body = pointed_at("order-select-62362-demo-meets", held.base_url)
        caller = threading.Thread(
            target=lambda: waiting.append(
                requests.post(f"{url}/cds-services/idds-crd-order-select", json=body, timeout=HANG_GUARD * 2)
            )
        )
        caller.start()
        assert held.wait_until_open(1), "the call never asked its FHIR server"
        other = requests.post(f"{url}{SIGN}", json=complete_call(), timeout=HANG_GUARD)
        assert other.status_code == 200 and other.json()["cards"]
        assert caller.is_alive() and not waiting, "the first call should still be waiting on its server"
        held.release()
        caller.join(HANG_GUARD * 2)
        assert waiting and waiting[0].status_code == 200


def test_a_client_still_sending_its_body_lets_another_call_compute(app: Flask) -> None:
    with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps(complete_call()).encode()
        head = (
            f"POST {SIGN} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as slow:
            slow.sendall(head + body[: len(body) // 2])
            other = requests.post(f"{url}{SIGN}", json=complete_call(), timeout=HANG_GUARD)
            assert other.status_code == 200 and other.json()["cards"]
            slow.sendall(body[len(body) // 2 :])
            answer = slow.recv(64)
        assert answer.startswith(b"HTTP/1.1 200")
