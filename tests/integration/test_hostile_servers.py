"""One slow or lying EHR cannot hurt another: hostile FHIR servers and healthy ones, in parallel.

The service runs over real HTTP (werkzeug, threaded) with a short deadline and a small worker
pool. Hostile calls name FHIR servers on loopback that drip, stall, flood or lie
(tests/hostile_support.py); healthy calls name the real FHIR server with the demo patients. While
the hostile calls hold what they may of the pool, the healthy calls must give the very answers
they give alone; the hostile calls must answer 200 with "could not be checked", and nothing may
hang (every HTTP call here has a generous timeout that only a hang would reach).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import patient_files
from service.settings import FhirSettings
from tests.builders import catalog
from tests.conformance import check_response
from tests.hostile_support import FLOOD_BYTES, LIES, HostileFhirServer
from tests.integration.conftest import pointed_at
from tests.support import open_settings, serving

pytestmark = pytest.mark.integration

DEADLINE = 2.0
PER_SERVER = 4
HANG_GUARD = 30.0  # seconds: far beyond any answer; reached only if something hangs
HEALTHY = (
    "order-select-62362-demo-meets",
    "order-select-62362-demo-does-not-meet",
    "order-select-62362-demo-insufficient",
    "order-sign-implant-demo-meets",
)
APPOINTMENT = "appointment-book-62362-demo-meets"
BOOKED_ORDER = "ServiceRequest/demo-meets-booked-sr-62362"
NOT_CHECKED = ("could not be checked", "Coverage not checked")


@dataclass
class Hostile:
    drip: HostileFhirServer
    stall: HostileFhirServer
    flood: HostileFhirServer
    liars: dict[str, HostileFhirServer]

    def urls(self) -> list[str]:
        return [s.base_url for s in (self.drip, self.stall, self.flood, *self.liars.values())]


def _demo_resources() -> dict[str, dict[str, Any]]:
    found = {}
    for path in patient_files():
        for entry in json.loads(path.read_text(encoding="utf-8")).get("entry", []):
            resource = entry["resource"]
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    resources = _demo_resources()
    servers = {
        "drip": HostileFhirServer("drip"),
        "stall": HostileFhirServer("stall"),
        "flood": HostileFhirServer("flood"),
        **{lie: HostileFhirServer("lie", resources, lie) for lie in LIES},
    }
    for server in servers.values():
        server.__enter__()
    yield Hostile(servers["drip"], servers["stall"], servers["flood"], {lie: servers[lie] for lie in LIES})
    for server in servers.values():
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def service_url(fhir_server: LocalFhirServer, hostile: Hostile) -> Iterator[str]:
    settings = open_settings(
        fhir_server.base_url,
        *hostile.urls(),
        fhir=FhirSettings(
            deadline_seconds=DEADLINE,
            timeout_seconds=DEADLINE,
            max_workers=12,
            max_concurrent_per_call=4,
            max_concurrent_per_server=PER_SERVER,
        ),
    )
    with serving(create_app(settings, catalog())) as url:
        yield url


def post(service_url: str, body: dict[str, Any]) -> requests.Response:
    response = requests.post(
        f"{service_url}/cds-services/idds-crd-{body['hook']}", json=body, timeout=HANG_GUARD
    )
    if response.status_code == 200:
        assert check_response(response.json(), body) == []
    return response


def answer(response: requests.Response) -> list[tuple[str, str, str]]:
    """What a call decided, without the parts that differ per call (uuids, assertion ids)."""
    assert response.status_code == 200, response.text[:300]
    return [(c["summary"], c["indicator"], c.get("detail", "")) for c in response.json()["cards"]]


def in_parallel(calls: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, requests.Response]:
    """Make every call at once from its own thread; their responses by name."""
    responses: dict[str, requests.Response] = {}

    def make(name: str, url: str, body: dict[str, Any]) -> None:
        responses[name] = post(url, body)

    threads = [threading.Thread(target=make, args=(name, *call)) for name, call in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD)
    assert not any(t.is_alive() for t in threads), "a call hung"
    return responses


def test_healthy_calls_keep_their_answers_while_hostile_servers_hold_their_share(
    fhir_server: LocalFhirServer, hostile: Hostile, service_url: str
) -> None:
    alone = {name: answer(post(service_url, pointed_at(name, fhir_server.base_url))) for name in HEALTHY}
    for cards in alone.values():
        assert cards and not any(reason in detail for _, _, detail in cards for reason in NOT_CHECKED)

    hostile_calls: dict[str, tuple[str, dict[str, Any]]] = {
        **{f"drip-{i}": (service_url, pointed_at(HEALTHY[0], hostile.drip.base_url)) for i in range(6)},
        **{f"stall-{i}": (service_url, pointed_at(HEALTHY[0], hostile.stall.base_url)) for i in range(2)},
        **{f"flood-{i}": (service_url, pointed_at(HEALTHY[0], hostile.flood.base_url)) for i in range(2)},
        **{
            f"lie-{lie}": (service_url, pointed_at(APPOINTMENT, s.base_url))
            for lie, s in hostile.liars.items()
        },
    }
    results: dict[str, requests.Response] = {}
    hostile_thread = threading.Thread(target=lambda: results.update(in_parallel(hostile_calls)))
    hostile_thread.start()
    assert hostile.drip.wait_until_open(PER_SERVER), "the dripping server never got its share of the pool"
    together = in_parallel(
        {f"healthy-{name}": (service_url, pointed_at(name, fhir_server.base_url)) for name in HEALTHY}
    )
    hostile_thread.join(HANG_GUARD)
    assert not hostile_thread.is_alive(), "a hostile call hung"

    for name in HEALTHY:
        assert answer(together[f"healthy-{name}"]) == alone[name], name
    for name, response in results.items():
        cards = answer(response)
        assert any(
            reason in f"{summary} {detail}" for summary, _, detail in cards for reason in NOT_CHECKED
        ), name
        assert "meets all" not in json.dumps(cards), name
    assert hostile.drip.most_open <= PER_SERVER
    assert hostile.stall.most_open <= PER_SERVER


def test_a_dripping_server_is_cut_at_the_deadline(hostile: Hostile, service_url: str) -> None:
    response = post(service_url, pointed_at(HEALTHY[0], hostile.drip.base_url))
    detail = response.json()["cards"][0]["detail"]
    assert "could not be checked" in detail and "the FHIR server did not answer" in detail
    assert hostile.drip.wait_until_idle(), "the service kept reading the drip after its deadline"
    assert hostile.drip.cut > 0


def test_a_flood_is_cut_at_the_size_cap_without_reading_it_whole(hostile: Hostile, service_url: str) -> None:
    response = post(service_url, pointed_at(HEALTHY[0], hostile.flood.base_url))
    detail = response.json()["cards"][0]["detail"]
    # each answer is cut at its cap, or once the call's answers together pass theirs
    assert "could not be checked" in detail
    assert "the FHIR server's answer was too large" in detail or "were too large together" in detail
    assert hostile.flood.wait_until_idle()
    assert 0 < hostile.flood.most_sent < FLOOD_BYTES


def test_a_stalled_server_is_given_up_at_the_deadline(hostile: Hostile, service_url: str) -> None:
    stalled = post(service_url, pointed_at(HEALTHY[0], hostile.stall.base_url))
    assert "the FHIR server did not answer" in stalled.json()["cards"][0]["detail"]


@pytest.mark.parametrize("lie", LIES)
def test_a_read_answered_with_something_else_is_not_used(
    hostile: Hostile, service_url: str, lie: str
) -> None:
    liar = hostile.liars[lie]
    response = post(service_url, pointed_at(APPOINTMENT, liar.base_url))
    [card] = response.json()["cards"]
    read = "is an order for another patient" if lie == "other-patient" else "could not be read"
    assert card["summary"] == f"Coverage not checked: the order this appointment is for {read}"
    assert BOOKED_ORDER in card["detail"]
    expected = "it is an order for another patient" if lie == "other-patient" else "another resource"
    assert expected in card["detail"]
    assert any(BOOKED_ORDER in path for path in liar.requests)
