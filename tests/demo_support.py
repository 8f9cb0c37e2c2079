"""Helpers for the demo sample tests: the decisions the data README promises for each sample request,
and the decisions a hook answer actually carries (policy id → outcomes of its orders)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Flask

from service.demo.runner import DATA, request_files
from service.hooks.models import parse_hook_request
from service.pipeline import HookOutcome, handle_hook
from service.registry import find_service

DAY = date(2026, 12, 1)  # the demo charts are dated relative to this day (as the golden cards are)
PUBLIC_URL = "https://crd.example.org"
README = DATA / "README.md"
_DECISION = re.compile(r"`([a-z0-9-]+): ([a-z-]+)`")


@dataclass(frozen=True)
class Promise:
    """One row of the README's request table: the decision per policy, and whether the request
    needs `fhirServer` (the encounter hooks read the chart's open orders; offline they decide nothing)."""

    decisions: dict[str, set[str]]
    needs_fhir_server: bool


def readme_promises() -> dict[str, Promise]:
    """The README's request table, by request file stem."""
    section = README.read_text(encoding="utf-8").split("## Requests", 1)[1]
    promises = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 5:
            continue
        name = cells[0].strip("`").removesuffix(".json")
        decisions: dict[str, set[str]] = {}
        for policy, outcome in _DECISION.findall(cells[-1]):
            decisions.setdefault(policy, set()).add(outcome)
        promises[name] = Promise(decisions, "needs `fhirServer`" in line)
    return promises


def packaged_sample(name: str) -> dict[str, Any]:
    """A sample request file whole, as shipped (self-contained)."""
    path = next(p for p in request_files() if p.stem == name)
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def decisions_of(outcome: HookOutcome) -> dict[str, set[str]]:
    """policy id → the outcomes of its determinations in one answer."""
    found: dict[str, set[str]] = {}
    for determination in outcome.determinations:
        found.setdefault(determination.policy_id, set()).add(determination.outcome.value)
    return found


def answer(app: Flask, body: dict[str, Any], day: date = DAY) -> HookOutcome:
    """The service's whole pipeline for `body` on `day` (by default the demo day: the golden cards'
    way of calling)."""
    service = find_service(f"idds-crd-{body['hook']}")
    assert service is not None
    environment = app.extensions["idds_crd"].environment
    return handle_hook(parse_hook_request(body, service), service, environment, day, PUBLIC_URL)


@contextmanager
def refusing_fhir_server() -> Iterator[str]:
    """The FHIR base URL of a loopback port that is bound but never listens: any request the service
    made to it would fail and show as unavailable data."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
