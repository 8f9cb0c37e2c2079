"""Helpers for the audit-trail tests: the service on a real loopback HTTP server, hook calls that
each carry their own secrets, every stored value of the audit tables as text, and a checker of
CRD 2.2 `CRDMetricData` against the logical model's cardinalities and required codes."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, select
from werkzeug.test import TestResponse

from service.catalog import Catalog
from service.fhir.client import FhirError, SearchResult
from service.hooks.models import HookRequest
from service.store import audit as store_audit
from service.store.tables import audit_assertions, audit_cards, audit_feedback, audit_records
from service.strict_json import dumps
from tests.support import REQUESTS_DIR, RecordingFhirClient, load_sample, post_json, with_fhir

AUDIT_TABLES = (audit_records, audit_assertions, audit_cards, audit_feedback)


# The sub-extensions the audit row keeps of a carried repetition, in the order it keeps them: what identifies
# it and what it determined (CRD's coverage-information extension), no free text
CARRIED_KEPT = (
    "coverage",
    "covered",
    "pa-needed",
    "doc-needed",
    "info-needed",
    "billingCode",
    "date",
    "expiry-date",
    "coverage-assertion-id",
    "satisfied-pa-id",
)


def kept_as_carried(repetition: dict[str, Any]) -> dict[str, Any]:
    """What the audit row keeps of another source's coverage-information `repetition` sent on the hook's
    Encounter (service/audit_entry.py `_carried_identity`): its identifying and determination sub-extensions
    (`CARRIED_KEPT`; each once, as a plain repetition holds them; a billingCode as its system and code),
    marked carried, with the SHA-256 of its JSON as the answer sent it."""
    subs = repetition["extension"]
    named = [without_display(s) for url in CARRIED_KEPT for s in subs if s["url"] == url]
    digest = hashlib.sha256(dumps(repetition).encode("utf-8")).hexdigest()
    return {"url": repetition["url"], "extension": named, "carried": True, "sent_sha256": digest}


def without_display(sub: dict[str, Any]) -> dict[str, Any]:
    """A coverage-information sub-extension as the audit row keeps a carried one: a billingCode's coding as
    its system and code (its display is free text another source wrote), any other as sent."""
    if sub["url"] != "billingCode":
        return sub
    return {
        "url": sub["url"],
        "valueCoding": {k: v for k, v in sub["valueCoding"].items() if k in ("system", "code")},
    }


def settled_at_once(monkeypatch: Any, seconds: float = 0.0) -> None:
    """`audit export` reads up to `seconds` before now (the service: a minute, store/audit.py
    `SETTLE_SECONDS`): a test exports the calls it has just made."""
    monkeypatch.setattr(store_audit, "SETTLE_SECONDS", seconds, raising=False)


# A JWT-shaped string (header {"alg":"ES384"}, payload {"iss":"x"}): never to be stored.
A_JWT = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS1lbmQ"
# What the scrubber took for a JWT before it was made linear (security review S-1): the reference its
# detector is checked against. Quadratic in a long base64url run holding many `eyJ`: short texts only.
PLAIN_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MIXED_SAMPLES = (
    "order-select-62362-demo-meets",
    "order-select-62362-demo-does-not-meet",
    "order-select-62362-demo-cohere-cancer",
    "order-select-62362-demo-kaiser-medicare",
    "order-select-62362-demo-spasticity",
    "order-sign-implant-demo-meets",
    "appointment-book-62362-demo-meets",
    "order-dispatch-62362-demo-meets",
    "order-select-non-pump",
)


def secret_call(name: str) -> tuple[str, dict[str, Any], str]:
    """(service url path, body, token): a packaged sample with a fresh hookInstance and its own
    FHIR access token, which the body also repeats in an extension next to a JWT."""
    body = load_sample(f"{name}.json")
    token = f"tok-{uuid.uuid4().hex}-SECRET"
    body["hookInstance"] = str(uuid.uuid4())
    with_fhir(body, token=token)
    body.setdefault("extension", {})["x-echo"] = {"token": token, "jwt": A_JWT}
    return f"/cds-services/idds-crd-{body['hook']}", body, token


def posted_call(client: FlaskClient, name: str = "order-select-62362-demo-meets") -> TestResponse:
    """The answer to a fresh `secret_call(name)` posted to `client`."""
    path, body, _ = secret_call(name)
    return post_json(client, path, body)


def right_after_a_refusal(
    client: FlaskClient, fault: AbstractContextManager[object]
) -> tuple[TestResponse, TestResponse, float]:
    """A call answered 200, one refused 503 while `fault` holds, then, the fault over, another call
    and /readyz: (that call's answer, /readyz's, seconds from the fault's end to both answered)."""
    assert posted_call(client).status_code == 200
    with fault:
        refused = posted_call(client)
    assert refused.status_code == 503, refused.get_data(as_text=True)
    since = time.monotonic()
    answer, readiness = posted_call(client), client.get("/readyz")
    return answer, readiness, time.monotonic() - since


def approving(catalog: Catalog, payer_key: str) -> Catalog:
    """`catalog` with one payer approving what meets its policy (a PA number instead of a request)."""
    return replace(
        catalog, payers=tuple(replace(p, auto_approval=p.key == payer_key) for p in catalog.payers)
    )


class ChartFactory:
    """A client factory whose FHIR client answers every search from `chart`, each resource made the
    calling patient's, and fails the searches of the `failing` types (the EHR's FHIR server down for
    them: a technical failure)."""

    def __init__(self, chart: list[dict[str, Any]], failing: Collection[str] = ()) -> None:
        self.chart = chart
        self.failing = failing

    def __call__(self, request: HookRequest, deadline: float) -> RecordingFhirClient:
        subject = {"reference": f"Patient/{request.context.patient_id}"}
        resources = [{**r, "subject": subject, "patient": subject} for r in self.chart]
        failing = self.failing

        class ChartClient(RecordingFhirClient):
            def search(
                self, resource_type: str, params: dict[str, Any], first_page: bool = False
            ) -> SearchResult:
                super().search(resource_type, params)
                if resource_type in failing:
                    raise FhirError("HTTP 503", 503)
                return SearchResult([r for r in resources if r["resourceType"] == resource_type], [], 1)

        return ChartClient()


def _engine(database: Engine | str) -> Engine:
    return create_engine(database) if isinstance(database, str) else database


def stored_text(database: Engine | str) -> str:
    """Every value of every row of every audit table (a URL: read through a connection of its own)."""
    engine = _engine(database)
    with engine.connect() as connection:
        rows = [row for table in AUDIT_TABLES for row in connection.execute(select(table))]
    if isinstance(database, str):
        engine.dispose()
    return "\n".join(json.dumps(list(row), default=str) for row in rows)


def assertions_indexed(trail: store_audit.AuditTrail) -> list[tuple[str | None, str | None]]:
    """(assertion id, PA number) of every row of the trail's assertion index."""
    with trail.database.connect() as connection:
        query = select(audit_assertions.c.assertion_id, audit_assertions.c.satisfied_pa_id)
        return [(assertion_id, pa_number) for assertion_id, pa_number in connection.execute(query)]


def hook_instances_stored(database: Engine | str) -> list[str]:
    """The hookInstance of every audit record (a URL: read through a connection of its own)."""
    engine = _engine(database)
    with engine.connect() as connection:
        found = [r for (r,) in connection.execute(select(audit_records.c.hook_instance))]
    if isinstance(database, str):
        engine.dispose()
    return found


# CRDMetricData (CRD 2.2.1, input/fsh/logicals/CRDMetricData.fsh): the elements with a lower
# cardinality of 1, per path, and the required code bindings. coverageInfo's codes are bound to the
# coverage-information extension's own value sets (valuesets/CoverageInformationValuesets.fsh:
# CRDCoveredInfo, CRDCoveragePaDetail, CRDAdditionalDoc, CRDInformationNeeded), which CRD 2.2 gave
# `indeterminate` for a technical failure (§resp-43).
REQUIRED = {
    "": (
        "source",
        "hookInstance",
        "hookType",
        "providerId",
        "groupId",
        "payerId",
        "requestTime",
        "httpResponse",
        "tokenUse",
        "request",
    ),
    "providerId": ("value",),
    "groupId": ("value",),
    "payerId": ("system", "value"),
    "issue": ("code",),
    "resources": ("type", "count"),
    "request": ("type", "orderDetail"),
    "request.response.coverageInfo": ("assertionId",),
    "request.response.coverageInfo.questionnaire": ("reference", "adaptive", "response"),
}
CODES = {
    "source": {"provider-src", "payer-src"},
    "tokenUse": {"used", "not-used", "rejected"},
    "request.response.engagement": {"ignore", "accept", "override"},
    "request.response.coverageInfo.covered": {"covered", "not-covered", "conditional", "indeterminate"},
    "request.response.coverageInfo.paNeeded": {
        "auth-needed",
        "no-auth",
        "satisfied",
        "performpa",
        "conditional",
        "indeterminate",
    },
    "request.response.coverageInfo.docNeeded": {
        "clinical",
        "admin",
        "patient",
        "conditional",
        "indeterminate",
    },
    "request.response.coverageInfo.infoNeeded": {
        "performer",
        "location",
        "timeframe",
        "contract-window",
        "detail-code",
        "OTH",
    },
}
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def _present(element: dict[str, Any], name: str) -> bool:
    """A value, or (for a primitive) the data-absent-reason extension in its place."""
    if element.get(name) not in (None, "", [], {}):
        return True
    absent = element.get(f"_{name}") or {}
    return any(e.get("url") == DATA_ABSENT for e in absent.get("extension", []))


def coverage_infos(metric: dict[str, Any]) -> list[dict[str, Any]]:
    """Every coverageInfo of a CRDMetricData record, in the order of its requests and responses."""
    return [
        i for r in metric.get("request", []) for x in r.get("response", []) for i in x.get("coverageInfo", [])
    ]


def metric_problems(metric: dict[str, Any]) -> list[str]:
    """What a CRDMetricData record lacks or gets wrong (empty when it conforms)."""
    problems: list[str] = []

    def visit(element: dict[str, Any], path: str) -> None:
        for name in REQUIRED.get(path, ()):
            if not _present(element, name):
                problems.append(f"{path or 'CRDMetricData'}.{name} is required")
        for name, value in element.items():
            child = f"{path}.{name}" if path else name
            if child in CODES and value not in CODES[child]:
                problems.append(f"{child}: {value!r} is not a code of its value set")
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and not name.startswith("_"):
                    visit(item, child)

    visit(metric, "")
    for name in ("requestTime", "responseTime"):
        if name in metric and not INSTANT.fullmatch(str(metric[name])):
            problems.append(f"{name}: {metric[name]!r} is not an instant")
    if not isinstance(metric.get("httpResponse"), int) or metric["httpResponse"] <= 0:
        problems.append("httpResponse must be a positive integer")
    for used in metric.get("resources", []):
        if not isinstance(used.get("count"), int) or used["count"] <= 0:
            problems.append(f"resources.count must be positive: {used}")
    return problems


def insert_bare_records(connection: Connection, count: int, when: datetime = datetime(2015, 1, 1)) -> None:
    """`count` audit records received at `when` (UTC, naive), with nothing in them but their columns'
    required values: the rows a purge or a lock test needs, written without a hook call."""
    for _ in range(count):
        connection.execute(
            audit_records.insert().values(
                received_at=when,
                answered_at=when,
                latency_ms=1.0,
                service_id="s",
                http_status=200,
                payers=[],
                orders=[],
                determinations=[],
                assertions=[],
                fhir_access={},
                response={},
            )
        )


def two_coverages_sign() -> tuple[dict[str, Any], dict[str, Any]]:
    """The two-coverages patient's pump order on order-sign (GEHA: documentation needed; CBC: meets), a
    new hookInstance each time, and its ServiceRequest, for a test to put a carried repetition on."""
    body = json.loads(
        (REQUESTS_DIR / "order-select-62362-demo-two-coverages.json").read_text(encoding="utf-8")
    )
    body["hook"] = "order-sign"
    body["context"].pop("selections")
    body["hookInstance"] = str(uuid.uuid4())
    [order] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    return body, order


def two_coverages_encounter_start() -> dict[str, Any]:
    """demo-meets's encounter-start with a second active Coverage (the two-coverages patient's Capital Blue
    Cross plan, made demo-meets's), a new hookInstance each time: the Encounter gets a repetition for each,
    so one it carries for one Coverage goes back with the other's added."""
    body = json.loads((REQUESTS_DIR / "encounter-start-demo-meets.json").read_text(encoding="utf-8"))
    two = json.loads(
        (REQUESTS_DIR / "order-select-62362-demo-two-coverages.json").read_text(encoding="utf-8")
    )
    [coverage] = [e for e in two["prefetch"]["coverage"]["entry"] if e["resource"]["id"].endswith("-cbc")]
    [payer] = [
        e for e in two["prefetch"]["payerOrganizations"]["entry"] if e["resource"]["id"].endswith("-cbc")
    ]
    coverage["resource"]["beneficiary"] = {"reference": f"Patient/{body['context']['patientId']}"}
    for bundle, entry in (
        (body["prefetch"]["coverage"], coverage),
        (body["prefetch"]["payerOrganizations"], payer),
    ):
        bundle["entry"].append(entry)
        bundle["total"] = len(bundle["entry"])
    body["hookInstance"] = str(uuid.uuid4())
    return body
