"""The sandbox's server side (issue 13 point 1): off unless enabled, its settings checked at start-up,
tokens minted only for this service's own endpoints and only for its own page, draft orders only
from the service's order table, patients listed from the FHIR server, every page answer locked to
its own origin, and its static files shipped with the package."""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
import yaml
from flask import Flask

import service
from service.app import create_app
from service.auth.tokens import generate_es384_key
from service.call_day import midday
from service.demo.fhir_server import free_port
from service.demo.runner import DEMO_ISSUER, DEMO_TOKEN, demo_settings, write_private_key
from service.sandbox import chart
from service.sandbox.orders import (
    OrderChoiceInvalid,
    draft_orders,
    infusates,
    order_kits,
    sample_infusates,
    sample_kits,
)
from service.sandbox.views import CONTENT_SECURITY_POLICY
from service.settings import (
    AuthSettings,
    SandboxSettings,
    Settings,
    SettingsError,
    StoreSettings,
    settings_from_mapping,
)
from tests.auth_support import PUBLIC_BASE, auth_app
from tests.builders import catalog
from tests.host_support import sent
from tests.hostile_support import HostileFhirServer
from tests.sandbox_support import at_public_address
from tests.support import select_body, uncommented_entries

ROOT = Path(__file__).resolve().parents[2]
STATIC = Path(service.__file__).parent / "sandbox" / "static"
FHIR = "http://127.0.0.1:9/fhir"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
TODAY = date(2026, 12, 6)


def sandbox_settings(tmp_path: Path, public_base_url: str = PUBLIC_BASE) -> Settings:
    key = generate_es384_key()
    key_file = tmp_path / "demo-ehr-key.pem"
    write_private_key(key, key_file)
    return demo_settings(public_base_url, FHIR, key, tmp_path, key_file)


@pytest.fixture
def demo_app(tmp_path: Path) -> Flask:
    return at_public_address(auth_app(sandbox_settings(tmp_path)), PUBLIC_BASE)


def test_no_origin_is_let_read_the_sandbox_whatever_cors_origins_allows(tmp_path: Path) -> None:
    app = at_public_address(auth_app(replace(sandbox_settings(tmp_path), cors_origins=("*",))), PUBLIC_BASE)
    client = app.test_client()
    other_site = {"Origin": "https://elsewhere.example"}
    for path in ("/sandbox", "/sandbox/api/setup", "/sandbox/static/sandbox.js"):
        answer = client.get(path, headers=other_site)
        assert "Access-Control-Allow-Origin" not in answer.headers, path
    assert client.get("/cds-services", headers=other_site).headers["Access-Control-Allow-Origin"] == "*"


def test_the_sandbox_answers_only_at_its_public_address(tmp_path: Path) -> None:
    """A page whose own name resolves to the service (DNS rebinding) names its own Host: refused."""
    app = auth_app(sandbox_settings(tmp_path, "http://127.0.0.1:8080"))
    client = app.test_client()
    rebound = client.get("/sandbox/api/setup", base_url="http://attacker.example:8080")
    assert rebound.status_code == 403 and "fhirAccessToken" not in rebound.get_data(as_text=True)
    for public in ("http://127.0.0.1:8080", "http://localhost:8080"):  # loopback, however it is spelled
        assert client.get("/sandbox/api/setup", base_url=public).status_code == 200


def test_without_a_public_address_the_sandbox_answers_only_at_a_loopback_address(tmp_path: Path) -> None:
    """Development without `public_base_url` (allowed while auth is not required): the sandbox answered
    any Host, so a page rebinding its own name to the developer's service read the FHIR access token
    and the server's patients (attack28 LOW). It answers loopback alone, however it is spelled."""
    unchecked = replace(sandbox_settings(tmp_path), public_base_url=None, auth=AuthSettings(required=False))
    client = auth_app(unchecked).test_client()
    rebound = client.get("/sandbox/api/setup", base_url="http://attacker.example:8080")
    assert rebound.status_code == 403 and "fhirAccessToken" not in rebound.get_data(as_text=True)
    assert client.get("/sandbox", base_url="http://attacker.example").status_code == 403
    for loopback in (
        "http://127.0.0.1:8080",
        "http://localhost:5000",
        "http://[::1]:8080",
        "http://localhost",
    ):
        assert client.get("/sandbox/api/setup", base_url=loopback).status_code == 200, loopback


def test_the_loopback_check_reads_the_host_as_the_links_read_it(tmp_path: Path) -> None:
    """review31g L4: the check read werkzeug's `request.host`, which takes `localhost:0` or a port with
    leading zeros for no host at all: a loopback Host the Host check and the links take was refused 403.
    It reads the Host as sent (service.host_header.called_host), as the links do."""
    unchecked = replace(sandbox_settings(tmp_path), public_base_url=None, auth=AuthSettings(required=False))
    app = auth_app(unchecked)
    for loopback in ("localhost:0", "localhost:08080", "127.0.0.1:0", "[::1]:000080", " localhost:8080\t"):
        assert sent(app, loopback, "/sandbox/api/setup", "GET").status == 200, loopback
    for elsewhere in ("attacker.example:0", "localhost.attacker.example:08080"):
        assert sent(app, elsewhere, "/sandbox/api/setup", "GET").status == 403, elsewhere


def test_no_token_is_signed_without_a_configured_public_address(tmp_path: Path) -> None:
    unchecked = replace(sandbox_settings(tmp_path), public_base_url=None, auth=AuthSettings(required=False))
    app = auth_app(unchecked)
    answer = app.test_client().post("/sandbox/api/token", json={"service": "idds-crd-order-sign"})
    assert answer.status_code == 403
    assert "token" not in (answer.get_json() or {})


def test_the_sandbox_is_off_by_default_and_then_every_path_is_404(tmp_path: Path) -> None:
    key = generate_es384_key()
    app = auth_app(demo_settings(PUBLIC_BASE, FHIR, key, tmp_path))  # no key file: the sandbox stays off
    client = app.test_client()
    for path in ("/sandbox", "/sandbox/static/sandbox.js", "/sandbox/api/setup"):
        assert client.get(path).status_code == 404
    assert client.post("/sandbox/api/token", json={"service": "idds-crd-order-sign"}).status_code == 404
    assert settings_from_mapping({}).sandbox == SandboxSettings()


def test_the_page_and_its_answers_forbid_loading_anything_from_elsewhere(demo_app: Flask) -> None:
    client = demo_app.test_client()
    page = client.get("/sandbox")
    assert page.status_code == 200 and page.mimetype == "text/html"
    for path in ("/sandbox", "/sandbox/static/sandbox.js", "/sandbox/api/setup"):
        assert client.get(path).headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY
    html = page.get_data(as_text=True)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)  # no CDN, no font service


def test_setup_offers_the_demo_fhir_server_and_the_three_hooks(demo_app: Flask) -> None:
    setup = demo_app.test_client().get("/sandbox/api/setup").get_json()
    assert setup["fhirServer"] == FHIR and setup["fhirAccessToken"] == DEMO_TOKEN and setup["signed"]
    assert [s["hook"] for s in setup["services"]] == ["order-select", "order-sign", "appointment-book"]
    assert [k["id"] for k in setup["kits"]] == [
        "implant",
        "trial",
        "catheter",
        "refill",
        "replacement",
        "non-pump",
    ]


def test_a_minted_token_is_the_demo_ehrs_for_exactly_the_endpoint_asked(demo_app: Flask) -> None:
    client = demo_app.test_client()
    minted = client.post("/sandbox/api/token", json={"service": "idds-crd-order-select"})
    assert minted.status_code == 200 and minted.headers["Cache-Control"] == "no-store"
    token = minted.get_json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (
        claims["iss"] == DEMO_ISSUER and claims["aud"] == f"{PUBLIC_BASE}/cds-services/idds-crd-order-select"
    )
    assert claims["exp"] - claims["iat"] <= 120
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        client.post("/cds-services/idds-crd-order-select", json=select_body(), headers=headers).status_code
        == 200
    )
    other = client.post("/sandbox/api/token", json={"service": "idds-crd-order-select"}).get_json()["token"]
    refused = client.post(
        "/cds-services/idds-crd-order-sign", json=select_body(), headers={"Authorization": f"Bearer {other}"}
    )
    assert refused.status_code == 401  # its aud is order-select's
    feedback = client.post("/sandbox/api/token", json={"service": "idds-crd-order-sign", "feedback": True})
    assert jwt.decode(feedback.get_json()["token"], options={"verify_signature": False})["aud"].endswith(
        "/cds-services/idds-crd-order-sign/feedback"
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"service": "https://evil.example/cds-services/x"}, 400, "service"),
        ({"service": "idds-crd-nothing"}, 400, "service"),
        ({}, 400, "service"),
        ([1], 400, "service"),
    ],
)
def test_no_token_for_anything_but_a_service_of_this_deployment(
    demo_app: Flask, body: Any, status: int, field: str
) -> None:
    answer = demo_app.test_client().post("/sandbox/api/token", json=body)
    assert answer.status_code == status
    assert answer.get_json()["issue"][0]["expression"] == [field]


def test_no_token_for_a_page_of_another_origin(demo_app: Flask) -> None:
    client = demo_app.test_client()
    asked = {"service": "idds-crd-order-sign"}
    answer = client.post("/sandbox/api/token", json=asked, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "token" not in answer.get_json()
    own = client.post("/sandbox/api/token", json=asked, headers={"Origin": PUBLIC_BASE})  # behind its proxy
    assert own.status_code == 200 and own.get_json()["token"]


def test_the_page_gets_tokens_at_every_address_it_is_served_at_and_no_other_origin_does(
    tmp_path: Path,
) -> None:
    """The page opened at localhost (answered on purpose beside 127.0.0.1) sends its own Origin: it gets a
    token that its hook call is accepted with; a page of any other origin, even on loopback, gets none."""
    client = auth_app(sandbox_settings(tmp_path, "http://127.0.0.1:8080")).test_client()
    asked = {"service": "idds-crd-order-select"}
    for page in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        minted = client.post("/sandbox/api/token", json=asked, headers={"Origin": page}, base_url=page)
        assert minted.status_code == 200, (page, minted.get_json())
        called = client.post(
            "/cds-services/idds-crd-order-select",
            json=select_body(),
            headers={"Authorization": f"Bearer {minted.get_json()['token']}", "Origin": page},
            base_url=page,
        )
        assert called.status_code == 200, (page, called.get_json())
    for other in ("http://localhost:8081", "https://localhost:8080", "http://evil.example:8080", "null"):
        refused = client.post(
            "/sandbox/api/token", json=asked, headers={"Origin": other}, base_url="http://localhost:8080"
        )
        assert refused.status_code == 403 and "token" not in refused.get_json(), other


def _sandbox(**values: Any) -> dict[str, Any]:
    return {"sandbox": {"enabled": True, **values}}


def test_an_enabled_sandbox_needs_a_fhir_server_and_a_trusted_signer() -> None:
    open_auth = {"auth": {"required": False}}
    with pytest.raises(SettingsError, match=r"sandbox\.fhir_server"):
        settings_from_mapping({**open_auth, **_sandbox()})
    with pytest.raises(SettingsError, match=r"sandbox: unknown key\(s\) key"):
        settings_from_mapping({**open_auth, **_sandbox(fhir_server=FHIR, key="x")})
    with pytest.raises(SettingsError, match=r"sandbox: issuer and signing_key_file are required"):
        settings_from_mapping(_sandbox(fhir_server=FHIR))
    signer = {"issuer": "urn:nobody", "signing_key_file": "/k.pem"}
    with pytest.raises(SettingsError, match=r"public_base_url: required when the sandbox signs calls"):
        settings_from_mapping({**open_auth, **_sandbox(fhir_server=FHIR, **signer)})
    public = {"public_base_url": PUBLIC_BASE}
    with pytest.raises(
        SettingsError, match=r"sandbox\.issuer: 'urn:nobody' is not one of auth\.trusted_clients"
    ):
        settings_from_mapping({**public, **_sandbox(fhir_server=FHIR, **signer)})
    trusted = {
        **public,
        "auth": {"trusted_clients": [{"iss": "urn:ehr", "jku_allowed": ["https://ehr.example/jwks"]}]},
    }
    with pytest.raises(
        SettingsError, match=r"sandbox\.fhir_server: .* is not among the fhir_servers of 'urn:ehr'"
    ):
        settings_from_mapping(
            {**trusted, **_sandbox(fhir_server=FHIR, issuer="urn:ehr", signing_key_file="/k.pem")}
        )
    loaded = settings_from_mapping({**open_auth, **_sandbox(fhir_server=FHIR, fhir_access_token="t")})
    assert loaded.sandbox == SandboxSettings(enabled=True, fhir_server=FHIR, fhir_access_token="t")


def test_an_unreadable_signing_key_stops_start_up(tmp_path: Path) -> None:
    key = generate_es384_key()
    with pytest.raises(SettingsError, match=r"sandbox\.signing_key_file: cannot read it"):
        auth_app(demo_settings(PUBLIC_BASE, FHIR, key, tmp_path, tmp_path / "absent.pem"))
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    with pytest.raises(SettingsError, match=r"sandbox\.signing_key_file: not an unencrypted PEM"):
        auth_app(demo_settings(PUBLIC_BASE, FHIR, key, tmp_path, not_a_key))


def test_every_pump_kit_orders_codes_of_the_service_order_table_and_the_visit_none() -> None:
    table = catalog().order_codes
    kinds = {
        kit.id: [table.kinds.get((line.system, line.code)) for line in kit.lines] for kit in order_kits(table)
    }
    assert kinds == {
        "implant": ["permanent-implant"],
        "trial": ["trial"],
        "catheter": ["catheter"],
        "refill": ["refill-analysis"],
        "replacement": ["permanent-implant", "replacement"],
        "non-pump": [None],
    }
    assert {i.ingredient for i in infusates()} >= {"morphine", "baclofen"}


def test_each_demo_patient_is_offered_the_infusate_its_own_sample_request_drafts(demo_app: Flask) -> None:
    """The page preselects these: the spasticity patients' baclofen pump is not made a morphine one, and
    a patient whose sample drafts no infusate gets none (the chart's active intrathecal order counts)."""
    offered = sample_infusates(infusates())
    assert {p: offered[p] for p in ("demo-spasticity", "demo-cmm210-spasticity", "demo-kpwa-spasticity")} == {
        "demo-spasticity": "1292",
        "demo-cmm210-spasticity": "1292",
        "demo-kpwa-spasticity": "1292",
    }
    assert offered["demo-meets"] == offered["demo-insufficient"] == "7052"  # morphine, as their samples
    assert offered["demo-cohere-replacement"] is offered["demo-cmm210-replacement"] is None
    assert offered["demo-refill"] is None
    setup = demo_app.test_client().get("/sandbox/api/setup").get_json()
    assert setup["patientInfusates"] == offered


def test_each_demo_patient_is_offered_the_orders_its_own_sample_request_drafts(demo_app: Flask) -> None:
    """The page preselects these (review S-3): the refill patient a refill, the replacement patient
    whose sample drafts 62362 with E0786 a replacement (not an implant beside it), the rest the implant
    their samples draft; a patient with no sample is given the implant."""
    offered = sample_kits(order_kits(catalog().order_codes))
    assert offered["demo-refill"] == ["refill"]
    assert offered["demo-cmm210-replacement"] == ["replacement"]
    assert offered["demo-meets"] == offered["demo-insufficient"] == ["implant"]
    assert offered["demo-cohere-replacement"] == ["implant"]  # its sample orders 62362 (a pump in place)
    setup = demo_app.test_client().get("/sandbox/api/setup").get_json()
    assert setup["patientKits"] == offered and setup["defaultKits"] == ["implant"]


def test_drafted_orders_are_fhir_drafts_for_the_patient_and_the_chosen_coverage() -> None:
    kits = {kit.id: kit for kit in order_kits(catalog().order_codes)}
    orders = draft_orders(
        kits, infusates(), ["replacement", "non-pump", "replacement"], "1292", "p-1", "cov-2"
    )
    assert [o["resourceType"] for o in orders] == [
        "ServiceRequest",
        "DeviceRequest",
        "ServiceRequest",
        "MedicationRequest",
    ]
    assert all(FHIR_ID.fullmatch(o["id"]) and o["status"] == "draft" for o in orders)
    assert len({o["id"] for o in orders}) == len(orders)
    assert all(o["subject"] == {"reference": "Patient/p-1"} for o in orders)
    assert [o.get("insurance") for o in orders] == [[{"reference": "Coverage/cov-2"}]] * 4
    assert orders[3]["medicationCodeableConcept"]["coding"][0]["code"] == "1292"
    assert draft_orders(kits, infusates(), ["non-pump"], "1292", "p-1", None)[0].get("insurance") is None
    assert all("insurance" not in o for o in draft_orders(kits, infusates(), ["refill"], "1292", "p-1", None))


def test_two_orders_placing_one_code_are_refused_naming_both() -> None:
    kits = {kit.id: kit for kit in order_kits(catalog().order_codes)}
    with pytest.raises(OrderChoiceInvalid) as refused:
        draft_orders(kits, infusates(), ["implant", "replacement"], None, "p-1", "cov-2")
    assert refused.value.field == "kits"
    assert str(refused.value) == (
        "kits: Permanent pump implant and Pump replacement both order CPT 62362; choose one of them"
    )
    assert len(draft_orders(kits, infusates(), ["implant", "catheter", "implant"], None, "p-1", None)) == 2


@pytest.mark.parametrize(
    ("kits", "infusate", "field"),
    [
        ([], None, "kits"),
        ("implant", None, "kits"),
        (["x-ray"], None, "kits"),
        (["implant"], "99999", "infusate"),
        (["implant"], ["7052"], "infusate"),  # JSON that is no code: 400, not a 500 (unhashable)
        (["implant"], {"code": "7052"}, "infusate"),
    ],
)
def test_orders_not_offered_are_refused_naming_the_field(kits: Any, infusate: Any, field: str) -> None:
    offered = {kit.id: kit for kit in order_kits(catalog().order_codes)}
    with pytest.raises(OrderChoiceInvalid) as refused:
        draft_orders(offered, infusates(), kits, infusate, "p-1", None)
    assert refused.value.field == field


def test_the_orders_endpoint_answers_400_with_an_operation_outcome(demo_app: Flask) -> None:
    client = demo_app.test_client()
    ok = client.post(
        "/sandbox/api/orders", json={"patientId": "demo-meets", "kits": ["implant"], "infusate": "7052"}
    )
    assert [o["resourceType"] for o in ok.get_json()["orders"]] == ["ServiceRequest", "MedicationRequest"]
    for body, field in (
        ({"kits": ["implant"]}, "patientId"),
        ({"patientId": "../x", "kits": ["implant"]}, "patientId"),
    ):
        refused = client.post("/sandbox/api/orders", json=body)
        assert refused.status_code == 400 and refused.get_json()["issue"][0]["expression"] == [field]
    assert client.post("/sandbox/api/orders", data="kits", content_type="text/plain").status_code == 415


@responses.activate
def test_patients_and_coverages_are_read_with_the_sandbox_token() -> None:
    responses.get(
        f"{FHIR}/Patient",
        json={
            "resourceType": "Bundle",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Patient",
                        "id": "b",
                        "name": [{"given": ["Blake"], "family": "Undocumented"}],
                    }
                },
                {"resource": {"resourceType": "Patient", "id": "a", "name": [{"text": "Avery Meets"}]}},
            ],
        },
    )
    responses.get(
        f"{FHIR}/Coverage",
        json={
            "resourceType": "Bundle",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Coverage",
                        "id": "c",
                        "status": "active",
                        "payor": [{"display": "GEHA"}],
                        "type": {"text": "Medicare"},
                        "class": [{"name": "Kaiser Medicare Advantage"}],
                    }
                }
            ],
        },
    )
    found = chart.patients(FHIR, "secret")
    assert [(p["id"], p["name"]) for p in found] == [("a", "Avery Meets"), ("b", "Blake Undocumented")]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer secret"
    (coverage,) = chart.coverages(FHIR, "secret", "a", TODAY, midday(TODAY))
    assert (coverage["payer"], coverage["plan"]) == ("GEHA", "Medicare · Kaiser Medicare Advantage")
    assert coverage["inactive"] is None
    assert "beneficiary=Patient%2Fa" in responses.calls[1].request.url


@responses.activate
def test_each_coverage_says_whether_the_service_takes_it_as_the_patients_today_and_if_not_why() -> None:
    """A Coverage still `active` whose period ended is not the patient's coverage to the service
    (routing.relevant): the page is told so in the service's words, as for a cancelled one (review
    S-5); one that begins later is (an order placed now is often carried out then)."""

    def cov(coverage_id: str, status: str, period: dict[str, str]) -> dict[str, Any]:
        return {
            "resource": {"resourceType": "Coverage", "id": coverage_id, "status": status, "period": period}
        }

    responses.get(
        f"{FHIR}/Coverage",
        json={
            "resourceType": "Bundle",
            "entry": [
                cov("ended", "active", {"start": "2024-01-01", "end": "2024-12-31"}),
                cov("cancelled", "cancelled", {}),
                cov("current", "active", {"start": "2025-01-01"}),
                cov("next-year", "active", {"start": "2027-01-01"}),
            ],
        },
    )
    found = chart.coverages(FHIR, None, "a", TODAY, midday(TODAY))
    assert {c["id"]: c["inactive"] for c in found} == {
        "ended": "ended 2024-12-31",
        "cancelled": "cancelled",
        "current": None,
        "next-year": None,
    }


@responses.activate
def test_the_demo_patients_are_listed_first_and_marked(demo_app: Flask) -> None:
    """Other patients on the FHIR server (the Synthea ones `idds-crd demo` loads, whose ids are UUIDs)
    come after the fifteen demo patients, whose ids are those of the packaged bundles."""
    demo = chart.demo_patient_ids()
    assert len(demo) == 15 and {"demo-meets", "demo-spasticity", "demo-refill"} <= demo
    people = [("08bb5ad8-79b2", "Harland DuBuque"), ("demo-meets", "Avery Meets"), ("0abec82b", "Margarette")]
    responses.get(
        f"{FHIR}/Patient",
        json={
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": i, "name": [{"text": n}]}} for i, n in people
            ],
        },
    )
    listed = demo_app.test_client().get("/sandbox/api/patients").get_json()["patients"]
    assert [(p["id"], p["demo"]) for p in listed] == [
        ("demo-meets", True),
        ("08bb5ad8-79b2", False),
        ("0abec82b", False),
    ]


@responses.activate
def test_a_failing_fhir_server_is_a_502_that_names_no_token(demo_app: Flask) -> None:
    responses.get(f"{FHIR}/Patient", status=401, body="Bearer demo-access-token refused")
    answer = demo_app.test_client().get("/sandbox/api/patients")
    assert answer.status_code == 502
    assert (
        answer.get_json()["issue"][0]["diagnostics"]
        == "the FHIR server answered the Patient search with HTTP 401"
    )
    assert DEMO_TOKEN not in answer.get_data(as_text=True)


def test_every_static_file_of_the_sandbox_ships_with_the_package() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "service"
    ]
    files = [str(p.relative_to(STATIC.parent.parent)) for p in STATIC.iterdir()]
    assert {"sandbox/static/index.html", "sandbox/static/sandbox.js", "sandbox/static/markdown.js"} <= set(
        files
    )
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in package_data) for name in files)


def test_the_shipped_config_lets_the_public_sandbox_call_from_the_browser_once_uncommented() -> None:
    text = (ROOT / "docker" / "config.yaml").read_text(encoding="utf-8")
    assert "  # - https://sandbox.cds-hooks.org\n" in text
    settings = settings_from_mapping(yaml.safe_load(uncommented_entries(text)))
    assert settings.cors_origins == ("https://sandbox.cds-hooks.org",) and not settings.sandbox.enabled
    app = auth_app(replace(settings, public_base_url=PUBLIC_BASE, store=StoreSettings(url="sqlite://")))
    preflight = app.test_client().options(
        "/cds-services/idds-crd-order-select",
        headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


def test_the_sandbox_reads_its_fhir_server_directly_and_only_so_much(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment gets the sandbox's FHIR token, and a flooding server is cut."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with HostileFhirServer("quiet") as server:
        assert chart.patients(server.base_url, "secret") == []
        assert server.requests, "the request went straight to the FHIR server"
    with HostileFhirServer("flood") as server, pytest.raises(chart.ChartUnavailable, match="too much"):
        chart.patients(server.base_url, "secret")


def test_a_search_of_a_server_that_drips_its_answer_ends_at_the_sandboxs_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that drips its answer a byte at a time never lets a per-read timeout fire: the search
    held its request thread until the last byte (a minute here, however long the server likes), and a
    few page loads held every thread of the service (attack28). The whole search has the sandbox's time."""
    monkeypatch.setattr(chart, "TIMEOUT_SECONDS", 1.0)
    with HostileFhirServer("drip") as server, pytest.raises(chart.ChartUnavailable, match="within 1 s"):
        started = time.monotonic()
        try:
            chart.patients(server.base_url, "secret")
        finally:
            assert time.monotonic() - started < 3.0


def test_the_sandboxs_searches_take_their_place_in_the_fhir_servers_share_of_threads(tmp_path: Path) -> None:
    """Under `serve` (here 4 request threads) the sandbox's searches hold threads as the hook calls'
    FHIR requests do: within the server's share (all but two of the threads), so a server that does not
    answer cannot have every thread held by page loads, which need no token (attack28: eight loads
    kept a complete-prefetch hook call waiting over two minutes). One more load is answered 503 at once."""
    with HostileFhirServer("held") as server:
        key = generate_es384_key()
        key_file = tmp_path / "demo-ehr-key.pem"
        write_private_key(key, key_file)
        settings = demo_settings(PUBLIC_BASE, server.base_url, key, tmp_path, key_file)
        app = at_public_address(create_app(settings, catalog(), request_threads=4), PUBLIC_BASE)
        answers: list[int] = []
        loads = [
            threading.Thread(
                target=lambda: answers.append(app.test_client().get("/sandbox/api/patients").status_code)
            )
            for _ in range(2)
        ]
        for load in loads:
            load.start()
        assert server.wait_until_open(2, timeout=5.0)
        started = time.monotonic()
        third = app.test_client().get("/sandbox/api/patients")
        waited = time.monotonic() - started
        server.release()
        for load in loads:
            load.join()
    assert third.status_code == 503, third.get_data(as_text=True)
    assert "still answering" in third.get_json()["issue"][0]["diagnostics"]
    assert waited < 2.0
    assert answers == [200, 200]
