"""What the sandbox page shows to choose from: the patients of its FHIR server (the demo patients
first) and their coverages.

Read on the server side, with the sandbox's own access token for that server, so the page needs
neither CORS on the FHIR server nor a FHIR client of its own. Each Coverage says whether the service
would take it as the patient's coverage today, and if not why (`inactive`, the service's own words:
"cancelled", "ended 2024-12-31"), so that the page marks it before the call. Each answer is
bounded (one page, at most `MAX_ANSWER_BYTES`; no proxy from the environment), and so is the whole
search's time, connection to last byte (`TIMEOUT_SECONDS`: a server dripping its answer a byte at a
time never lets a per-read timeout fire, and would hold the request thread as long as it dripped); a
server that fails is reported as `ChartUnavailable` with a token-free reason. Under `serve` a search
also takes a place in the worker's share of threads for that FHIR server, as a hook call asking it
does (service/sandbox/views.py, service/fhir/server_share.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path
from typing import Any

import requests
import urllib3

from service.auth.jwks import watched_session
from service.references import FHIR_ID
from service.routing import not_active, relevant
from service.shapes import dicts

TIMEOUT_SECONDS = 10.0  # one search, connection to last byte
PAGE = 100
MAX_ANSWER_BYTES = 4 * 1024 * 1024
PATIENT_ID = re.compile(FHIR_ID)
DEMO_PATIENTS = Path(__file__).resolve().parents[1] / "demo" / "data" / "patients"


class ChartUnavailable(RuntimeError):
    """The FHIR server could not be searched; the message is safe to show (no token, no body)."""


class ChartNotAsked(ChartUnavailable):
    """The FHIR server was not asked: the worker's share of threads for it was held (a 503, retry)."""


def _search(
    fhir_server: str, token: str | None, resource_type: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    late = f"the FHIR server did not answer the {resource_type} search within {TIMEOUT_SECONDS:g} s"
    with watched_session(time.monotonic() + TIMEOUT_SECONDS) as (session, watch):
        session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
        try:
            answer = session.get(
                f"{fhir_server}/{resource_type}",
                params=params,
                headers=headers,
                timeout=TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            )
            with answer:
                status = answer.status_code
                raw = answer.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True) if status == 200 else b""
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            if watch.fired:
                raise ChartUnavailable(late) from None
            raise ChartUnavailable(f"the FHIR server did not answer the {resource_type} search") from None
        if watch.fired:  # a connection cut at the deadline may read as a short answer
            raise ChartUnavailable(late)
    if status != 200:
        raise ChartUnavailable(f"the FHIR server answered the {resource_type} search with HTTP {status}")
    if len(raw) > MAX_ANSWER_BYTES:
        raise ChartUnavailable(f"the FHIR server's {resource_type} search answered too much to show")
    try:
        bundle = json.loads(raw)
    except ValueError:
        raise ChartUnavailable(f"the FHIR server's {resource_type} search was not JSON") from None
    entries = dicts(bundle.get("entry")) if isinstance(bundle, dict) else []
    return [
        e["resource"]
        for e in entries
        if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == resource_type
    ]


def _name(patient: dict[str, Any]) -> str:
    for name in dicts(patient.get("name")):
        if isinstance(name.get("text"), str):
            return name["text"]
        given = [g for g in name.get("given", []) if isinstance(g, str)]
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        if given or family:
            return " ".join([*given, family]).strip()
    return str(patient.get("id", "?"))


def demo_patient_ids(folder: Path = DEMO_PATIENTS) -> frozenset[str]:
    """The ids of the Patients of the packaged demo bundles (`service/demo/data/patients`)."""
    ids = set()
    for path in folder.glob("*.json"):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in dicts(bundle.get("entry")):
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                ids.add(str(resource.get("id")))
    return frozenset(ids)


def patients(fhir_server: str, token: str | None, demo: Collection[str] = ()) -> list[dict[str, Any]]:
    """Every patient on the server's first page, each with a name to show and whether it is one of
    `demo` (the demo patients, listed first), sorted by id within each group."""
    found = _search(fhir_server, token, "Patient", {"_count": str(PAGE)})
    rows = [
        {
            "id": p["id"],
            "name": _name(p),
            "birthDate": p.get("birthDate"),
            "gender": p.get("gender"),
            "demo": p["id"] in demo,
            "resource": p,
        }
        for p in found
        if isinstance(p.get("id"), str)
    ]
    return sorted(rows, key=lambda row: (not row["demo"], row["id"]))


def _payer(coverage: dict[str, Any]) -> str:
    names = [p["display"] for p in dicts(coverage.get("payor")) if isinstance(p.get("display"), str)]
    return ", ".join(names) or "payer not named"


def _plan(coverage: dict[str, Any]) -> str:
    kind = coverage.get("type") if isinstance(coverage.get("type"), dict) else {}
    words = [kind.get("text")] + [c.get("display") for c in dicts(kind.get("coding"))]
    words += [c.get("name") for c in dicts(coverage.get("class"))]
    return " · ".join(dict.fromkeys(w for w in words if isinstance(w, str) and w))


def coverages(
    fhir_server: str, token: str | None, patient_id: str, today: date, now: datetime
) -> list[dict[str, Any]]:
    """The patient's Coverages, each with its payer and plan in words and, for one that a call at
    `now` (on `today`) would not take as the patient's coverage (routing.relevant), why not (routing's
    `not_active`: "cancelled", "ended 2024-12-31"); a Coverage a status leaves active may have ended."""
    if not PATIENT_ID.fullmatch(patient_id):
        raise ValueError("patient id: not a FHIR id")
    found = _search(
        fhir_server, token, "Coverage", {"beneficiary": f"Patient/{patient_id}", "_count": str(PAGE)}
    )
    return [
        {
            "id": c["id"],
            "status": c.get("status"),
            "inactive": None if relevant([c], today, now) else not_active(c, today, now),
            "payer": _payer(c),
            "plan": _plan(c),
            "resource": c,
        }
        for c in found
        if isinstance(c.get("id"), str)
    ]
