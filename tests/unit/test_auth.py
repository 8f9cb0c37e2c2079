"""Authentication of the calling EHR (CDS Hooks JWT bearer, issue 10 point 1): every way a token is
refused with a bare 401, the ES384 and RS384 paths that answer, keys inline, by URL and by an
allow-listed `jku` (from a real loopback server, cached, re-fetched once on rotation), replay
refused within one process, across threads and across two service processes sharing a database."""

from __future__ import annotations

import base64
import json
import logging
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm
from sqlalchemy.exc import OperationalError
from werkzeug.test import TestResponse

from service.app import create_app
from service.auth.jwks import JwksCache, JwksUnavailable, UnknownKid, fetch_jwks
from service.auth.tokens import generate_es384_key, load_private_key, sign_call_token
from service.caller import current_caller
from service.demo.fhir_server import free_port
from service.demo.runner import DEMO_ISSUER, demo_settings, write_private_key
from service.fhir.outbound import refusal as fhir_server_refusal
from service.settings import AuthSettings, SettingsError, TrustedClient, settings_from_mapping
from service.store.errors import mapped
from service.store.replay import ReplayStore
from tests.auth_support import (
    ISSUER,
    PUBLIC_BASE,
    SELECT_AUD,
    KeyPair,
    auth_app,
    auth_settings,
    bearer,
    ec_key,
    hmac_confusion_token,
    jwks,
    jwks_server,
    mint,
    rsa_key,
    tampered,
    trusted,
    unsigned_token,
)
from tests.auth_support import header as jwt_header
from tests.builders import catalog
from tests.support import (
    MISSING,
    SELECT_URL,
    SIGN_URL,
    no_client,
    open_settings,
    post_json,
    select_body,
    start_serve_process,
    uncommented_entries,
)

ROOT = Path(__file__).resolve().parents[2]
FEEDBACK_URL = SELECT_URL + "/feedback"
UNAUTHORIZED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}
GUARD_LOGGER = "service.auth.guard"


@pytest.fixture(scope="module")
def es384() -> KeyPair:
    return ec_key("ES384")


@pytest.fixture(scope="module")
def inline_app(es384: KeyPair) -> Flask:
    """Trusts ISSUER with its ES384 key given inline."""
    return auth_app(auth_settings(trusted(es384)))


def call(app: Flask, token: str | None, url: str = SELECT_URL, body: Any = None) -> TestResponse:
    headers = bearer(token) if token is not None else {}
    return app.test_client().post(url, json=select_body() if body is None else body, headers=headers)


def assert_refused(response: TestResponse) -> None:
    """401, `WWW-Authenticate: Bearer`, and an OperationOutcome that says nothing of why."""
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == UNAUTHORIZED


def refusal_logged(caplog: pytest.LogCaptureFixture) -> str:
    """The one WARNING line the guard wrote."""
    lines = [
        r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER and r.levelno == logging.WARNING
    ]
    assert len(lines) == 1, lines
    return lines[0]


def assert_no_token_in(text: str, token: str | None) -> None:
    """Neither the token nor any of its parts (header, claims, signature) was logged."""
    for part in [token or "", *(token or "").split(".")]:
        assert len(part) < 8 or part not in text


def open_answer() -> list[str]:
    """The card summaries an unauthenticated development deployment gives for the same call."""
    response = post_json(
        create_app(open_settings(), catalog(), client_factory=no_client).test_client(),
        SELECT_URL,
        select_body(),
    )
    assert response.status_code == 200
    return [card["summary"] for card in response.get_json()["cards"]]


# ---------------------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    "make_key", [lambda: ec_key("ES384"), lambda: rsa_key("RS384")], ids=["ES384", "RS384"]
)
def test_a_trusted_ehr_gets_the_real_answer(make_key: Callable[[], KeyPair]) -> None:
    key = make_key()
    app = auth_app(auth_settings(trusted(key)))
    response = call(app, mint(key))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    summaries = [card["summary"] for card in response.get_json()["cards"]]
    assert summaries and summaries == open_answer()


def test_the_route_knows_the_caller_and_its_fhir_servers(inline_app: Flask, es384: KeyPair) -> None:
    token = mint(es384, jti="caller-jti-1")
    with inline_app.test_client() as client:
        assert client.post(SELECT_URL, json=select_body(), headers=bearer(token)).status_code == 200
        caller = current_caller(inline_app.extensions["idds_crd"].settings.auth)
    assert (caller.iss, caller.jti, caller.authenticated) == (ISSUER, "caller-jti-1", True)
    assert caller.fhir_servers == trusted(es384).fhir_servers


@pytest.mark.parametrize("aud", [[SELECT_AUD], ["https://other.example.org/cds-services", SELECT_AUD]])
def test_aud_may_be_an_array_holding_the_endpoint(inline_app: Flask, es384: KeyPair, aud: list[str]) -> None:
    assert call(inline_app, mint(es384, aud=aud)).status_code == 200


def test_trusted_clients_need_a_public_base_url_not_the_host_header(es384: KeyPair) -> None:
    with pytest.raises(SettingsError, match=r"public_base_url: required when auth\.trusted_clients"):
        auth_app(auth_settings(trusted(es384), public_base_url=None))
    client = {"iss": ISSUER, "jwks": jwks(es384)}
    with pytest.raises(SettingsError, match=r"public_base_url: required when auth\.trusted_clients"):
        settings_from_mapping({"auth": {"trusted_clients": [client]}})  # as read, before serve starts
    app = auth_app(auth_settings(trusted(es384)))
    other = "http://other-crd.example.org" + SELECT_URL  # a token the EHR minted for another service
    spoofed = {"Host": "other-crd.example.org", **bearer(mint(es384, other))}
    assert_refused(app.test_client().post(SELECT_URL, json=select_body(), headers=spoofed))


def test_es256_only_when_the_client_lists_it() -> None:
    key = ec_key("ES256")
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", key)
        assert_refused(call(auth_app(auth_settings(trusted(jwks_url=url))), mint(key)))
        assert server.fetches["/ehr/jwks.json"] == 0  # refused on the algorithm, before any key lookup
    app = auth_app(auth_settings(trusted(key, algorithms=("ES256", "ES384"))))
    assert call(app, mint(key)).status_code == 200


# ---------------------------------------------------------------------------------------- refusals


def _with_payload(key: KeyPair, payload: bytes) -> str:
    encode = base64.urlsafe_b64encode
    head = encode(json.dumps(jwt_header(key, alg="ES384")).encode()).rstrip(b"=").decode()
    return f"{head}.{encode(payload).rstrip(b'=').decode()}.c2ln"


def _expired(key: KeyPair) -> str:
    now = int(time.time())
    return mint(key, iat=now - 600, exp=now - 120)  # beyond the 60 s skew


def _not_yet_valid(key: KeyPair) -> str:
    return mint(key, nbf=int(time.time()) + 600)


def _issued_in_the_future(key: KeyPair) -> str:
    now = int(time.time())
    return mint(key, iat=now + 600, exp=now + 900)


def _signed_by_a_stranger_with_the_trusted_kid(key: KeyPair) -> str:
    return mint(KeyPair(ec_key().private, "ES384", key.kid))


EVIL_JKU = "https://evil.example.org/jwks.json"
REFUSALS: list[Any] = [
    pytest.param(lambda key: None, "no bearer token", id="missing-header"),
    pytest.param(lambda key: "not-a-jwt", "malformed token", id="malformed"),
    pytest.param(lambda key: _with_payload(key, b"not json"), "malformed token", id="malformed-payload"),
    pytest.param(lambda key: unsigned_token(key), "algorithm 'none' not accepted", id="alg-none"),
    pytest.param(
        lambda key: hmac_confusion_token(key), "algorithm 'HS256' not accepted", id="hs256-public-key"
    ),
    pytest.param(lambda key: tampered(mint(key)), "signature does not verify", id="tampered-signature"),
    pytest.param(_signed_by_a_stranger_with_the_trusted_kid, "signature does not verify", id="stranger-key"),
    pytest.param(
        lambda key: mint(KeyPair(rsa_key().private, "RS384", key.kid)),
        "key does not suit RS384",
        id="alg-vs-key",
    ),
    pytest.param(_expired, "expired", id="expired"),
    pytest.param(_not_yet_valid, "not yet valid (nbf)", id="nbf-future"),
    pytest.param(_issued_in_the_future, "iat in the future", id="iat-future"),
    pytest.param(lambda key: mint(key, aud=PUBLIC_BASE + SIGN_URL), "aud is not", id="aud-other-service"),
    pytest.param(
        lambda key: mint(key, aud="https://evil.example.org" + SELECT_URL), "aud is not", id="aud-other-host"
    ),
    pytest.param(lambda key: mint(key, aud=PUBLIC_BASE + "/cds-services"), "aud is not", id="aud-discovery"),
    pytest.param(
        lambda key: mint(key, iss="https://stranger.example.org"), "iss is not a trusted", id="unknown-iss"
    ),
    pytest.param(
        lambda key: mint(key, headers=jwt_header(key, kid="rotated-away")), "unknown kid", id="unknown-kid"
    ),
    pytest.param(lambda key: mint(key, headers=jwt_header(key, kid=MISSING)), "kid missing", id="no-kid"),
    pytest.param(lambda key: mint(key, headers=jwt_header(key, typ="JOSE+JSON")), "typ is not JWT", id="typ"),
    pytest.param(lambda key: mint(key, headers=jwt_header(key, typ=None)), "typ missing", id="no-typ"),
    pytest.param(
        lambda key: mint(
            KeyPair(ec_key().private, "ES384", "theirs"), headers=jwt_header(jku=EVIL_JKU, kid="theirs")
        ),
        "unknown kid (jku not on the issuer's allow-list: not fetched)",
        id="jku-not-allowed-naming-its-own-key",
    ),
    pytest.param(
        lambda key: mint(key, headers=jwt_header(key, jku=7)), "jku is not a URL", id="jku-not-a-string"
    ),
    pytest.param(lambda key: mint(key, jti=MISSING), "claim jti missing", id="no-jti"),
    pytest.param(lambda key: mint(key, exp=MISSING), "claim exp missing", id="no-exp"),
    pytest.param(lambda key: mint(key, iat=MISSING), "claim iat missing", id="no-iat"),
    pytest.param(lambda key: mint(key, exp=int(time.time()) + 7200), "lifetime", id="lifetime-two-hours"),
    pytest.param(lambda key: mint(key, exp=str(int(time.time()) + 60)), "exp", id="exp-a-string"),
]


@pytest.mark.parametrize(("make_token", "reason"), REFUSALS)
def test_refused_with_a_bare_401_and_one_warning(
    inline_app: Flask,
    es384: KeyPair,
    make_token: Callable[[KeyPair], str | None],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = make_token(es384)
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        response = call(inline_app, token)
    assert_refused(response)
    line = refusal_logged(caplog)
    assert reason in line
    assert SELECT_URL in line
    assert_no_token_in(caplog.text, token)


def test_the_log_line_names_iss_and_jti_but_never_the_token(
    inline_app: Flask, es384: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    jti = str(uuid.uuid4())
    token = mint(es384, jti=jti, iat=int(time.time()) - 900, exp=int(time.time()) - 300)
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert_refused(call(inline_app, token))
    line = refusal_logged(caplog)
    assert f"iss={ISSUER}" in line and f"jti={jti}" in line and "expired" in line
    assert_no_token_in(caplog.text, token)


def test_claimed_values_cannot_forge_log_lines(
    inline_app: Flask, es384: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert_refused(call(inline_app, mint(es384, iss="x\n2026-01-01 INFO all good", jti="y\r\nz")))
    line = refusal_logged(caplog)
    assert "\n" not in line and "\r" not in line


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "Token abc", "Bearer a b"]
)
def test_other_authorization_schemes_are_refused(inline_app: Flask, authorization: str) -> None:
    response = inline_app.test_client().post(
        SELECT_URL, json=select_body(), headers={"Authorization": authorization}
    )
    assert_refused(response)


def test_a_reused_jti_is_refused(inline_app: Flask, es384: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    token = mint(es384)
    assert call(inline_app, token).status_code == 200
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        assert_refused(call(inline_app, token))
    assert "jti already used" in refusal_logged(caplog)
    fresh_token_same_jti = mint(es384, jti=_jti_of(token))
    assert_refused(call(inline_app, fresh_token_same_jti))


def test_a_conformance_testers_token_is_accepted_again_until_it_expires(es384: KeyPair) -> None:
    """The Inferno CRD test kit sends every request of a hook's list with one token: a client
    registered with `token_reuse` may, and nothing else about its tokens is relaxed."""
    app = auth_app(auth_settings(trusted(es384, token_reuse=True)))
    token = mint(es384)
    assert [call(app, token).status_code for _ in range(3)] == [200, 200, 200]
    assert_refused(call(app, token, url=SIGN_URL))  # its aud is the order-select endpoint
    assert_refused(call(app, _expired(es384)))
    assert_refused(call(app, tampered(token)))
    strict = auth_app(auth_settings(trusted(es384)))
    assert call(strict, token).status_code == 200
    assert_refused(call(strict, token))


def _jti_of(token: str) -> str:
    jti: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return jti


def test_one_token_sent_at_once_by_many_threads_is_accepted_once(es384: KeyPair, tmp_path: Path) -> None:
    app = auth_app(auth_settings(trusted(es384), store_url=f"sqlite:///{tmp_path / 'replay.sqlite3'}"))
    token = mint(es384)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: call(app, token).status_code, range(16)))
    assert sorted(statuses) == [200] + [401] * 15


def test_an_unknown_service_gets_401_before_404(inline_app: Flask) -> None:
    """An unauthenticated caller learns nothing, not even which services exist."""
    assert_refused(call(inline_app, None, url="/cds-services/no-such-service"))


# ---------------------------------------------------------------------------------------- what is protected


def test_feedback_is_protected(inline_app: Flask, es384: KeyPair) -> None:
    [card] = [c for c in call(inline_app, mint(es384)).get_json()["cards"] if c.get("overrideReasons")][:1]
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0]},
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
    }
    feedback = {"feedback": [item]}
    assert_refused(call(inline_app, None, url=FEEDBACK_URL, body=feedback))
    assert_refused(call(inline_app, mint(es384), url=FEEDBACK_URL, body=feedback))  # aud of the hook
    response = call(inline_app, mint(es384, aud=PUBLIC_BASE + FEEDBACK_URL), url=FEEDBACK_URL, body=feedback)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_discovery_is_open_by_default(inline_app: Flask) -> None:
    assert inline_app.test_client().get("/cds-services").status_code == 200


def test_discovery_is_protected_when_configured(es384: KeyPair) -> None:
    app = auth_app(auth_settings(trusted(es384), protect_discovery=True))
    assert_refused(app.test_client().get("/cds-services"))
    assert_refused(app.test_client().get("/cds-services", headers=bearer(mint(es384))))
    token = mint(es384, aud=PUBLIC_BASE + "/cds-services")
    response = app.test_client().get("/cds-services", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["services"]
    assert_refused(app.test_client().get("/openapi.json"))  # it lists the services too
    openapi_token = mint(es384, aud=PUBLIC_BASE + "/openapi.json")
    described = app.test_client().get("/openapi.json", headers=bearer(openapi_token))
    assert described.status_code == 200


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("OPTIONS", SELECT_URL),
        ("OPTIONS", FEEDBACK_URL),
        ("GET", "/healthz"),
        ("GET", "/policies/geha-idds-chronic-pain"),
        ("GET", "/fhir/CodeSystem/idds-assessment"),
    ],
)
def test_preflight_health_policies_and_fhir_stay_open(inline_app: Flask, method: str, url: str) -> None:
    response = inline_app.test_client().open(url, method=method)
    assert response.status_code == 200


def test_every_post_under_cds_services_is_guarded(inline_app: Flask) -> None:
    """A route added later under /cds-services cannot slip past the guard unnoticed."""
    client = inline_app.test_client()
    for rule in inline_app.url_map.iter_rules():
        if rule.rule.startswith("/cds-services") and "POST" in (rule.methods or ()):
            url = rule.rule.replace("<service_id>", "idds-crd-order-select")
            assert_refused(client.post(url, json={}))


def test_a_service_trusting_nobody_starts_warns_and_refuses_everyone(
    es384: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
        app = auth_app(auth_settings())
    assert "trusted_clients is empty" in caplog.text
    assert_refused(call(app, mint(es384)))


# ---------------------------------------------------------------------------------------- keys by URL


def test_keys_from_the_jwks_url_are_fetched_once_and_cached(es384: KeyPair) -> None:
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        for _ in range(3):
            assert call(app, mint(es384)).status_code == 200
        assert server.fetches["/ehr/jwks.json"] == 1


def test_concurrent_first_calls_fetch_the_keys_once(es384: KeyPair) -> None:
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: call(app, mint(es384)).status_code, range(8)))
        assert statuses == [200] * 8
        assert server.fetches["/ehr/jwks.json"] == 1


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")  # signing weak on purpose
def test_short_rsa_keys_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    weak = KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS384", "weak")
    with jwks_server() as server:
        app = auth_app(auth_settings(trusted(jwks_url=server.publish("/ehr/jwks.json", weak))))
        with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
            assert_refused(call(app, mint(weak)))
    assert "RSA key shorter than 2048 bits" in refusal_logged(caplog)


def test_an_unknown_kid_refetches_once_and_random_kids_cannot_hammer_the_ehr(es384: KeyPair) -> None:
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert call(app, mint(es384)).status_code == 200
        for kid in ("random-1", "random-2", "random-3", "random-4"):
            assert_refused(call(app, mint(es384, headers=jwt_header(es384, kid=kid))))
        assert server.fetches["/ehr/jwks.json"] == 2  # the first fetch and one re-fetch, no more


def test_a_rotated_key_with_a_new_kid_is_picked_up(es384: KeyPair) -> None:
    successor = ec_key("ES384")
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert call(app, mint(es384)).status_code == 200
        server.publish("/ehr/jwks.json", successor)  # the EHR rotates: new key, new kid
        assert call(app, mint(successor)).status_code == 200
        assert server.fetches["/ehr/jwks.json"] == 2
        assert_refused(call(app, mint(es384)))  # the retired key no longer verifies anything


def test_an_allow_listed_jku_supplies_the_key(es384: KeyPair) -> None:
    rs384 = rsa_key("RS384")
    with jwks_server() as server:
        jku = server.publish("/inferno/custom/crd_server/jwks.json", es384, rs384)
        app = auth_app(auth_settings(trusted(jku_allowed=(jku,))))
        for key in (es384, rs384, es384):
            assert call(app, mint(key, headers=jwt_header(key, jku=jku))).status_code == 200
        assert server.fetches["/inferno/custom/crd_server/jwks.json"] == 1


def test_a_jku_off_the_allow_list_is_never_fetched(es384: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    with jwks_server() as server:
        allowed = server.publish("/ehr/jwks.json", es384)
        attacker = server.publish("/attacker/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jku_allowed=(allowed,))))
        with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
            assert_refused(call(app, mint(es384, headers=jwt_header(es384, jku=attacker))))
        assert "jku is not on the issuer's allow-list" in refusal_logged(caplog)
        assert server.fetches["/attacker/jwks.json"] == 0


def test_a_jku_naming_the_registered_jwks_url_is_that_url(es384: KeyPair) -> None:
    """An EHR registered by its `jwks_url` whose tokens also name that URL as their `jku` (CDS Hooks: the
    URL of the JWK Set holding the key) is trusted as registered, not refused for a jku off an allow-list
    it was never given (conform33); another jku is still refused unfetched."""
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        other = server.publish("/elsewhere/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert call(app, mint(es384, headers=jwt_header(es384, jku=url))).status_code == 200
        assert call(app, mint(es384)).status_code == 200  # the same keys, fetched once
        assert_refused(call(app, mint(es384, headers=jwt_header(es384, jku=other))))
        assert server.fetches["/ehr/jwks.json"] == 1 and server.fetches["/elsewhere/jwks.json"] == 0


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda url: url + "/", id="trailing-slash"),
        pytest.param(lambda url: url + "?v=2", id="query"),
        pytest.param(lambda url: url + "#k", id="fragment"),
        pytest.param(lambda url: url.replace("/ehr/", "/EHR/"), id="path-case"),
        pytest.param(lambda url: url.replace("/ehr/", "/%65hr/"), id="percent-encoded"),
        pytest.param(lambda url: url.replace("/ehr/", "/ehr/../upload/"), id="dot-segments"),
        pytest.param(lambda url: url.replace("http://", "http://ehr@"), id="userinfo"),
    ],
)
def test_a_jku_resembling_the_registered_jwks_url_is_not_it(
    es384: KeyPair, variant: Callable[[str], str]
) -> None:
    """Only a `jku` written exactly as the registered `jwks_url` is that URL (review33e): one that an
    equivalence or a prefix would take for it is off the list, refused for a client without inline keys
    and never fetched, whatever key the attacker publishes there under the registered kid."""
    impostor = KeyPair(ec_key().private, "ES384", es384.kid)
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        jku = variant(url)
        if urlsplit(jku).path != "/ehr/jwks.json":  # the attacker's key where the variant leads
            server.documents[urlsplit(jku).path] = jwks(impostor)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert_refused(call(app, mint(impostor, headers=jwt_header(impostor, jku=jku))))
        assert_refused(call(app, mint(es384, headers=jwt_header(es384, jku=jku))))
        assert set(server.fetches) <= {"/ehr/jwks.json"}


def test_a_jku_off_the_list_is_never_read_as_the_jwks_url_of_a_client_with_inline_keys(
    es384: KeyPair,
) -> None:
    """A client with inline keys and a `jwks_url` whose token carries a `jku` off its list is verified with
    the inline keys alone: a key only the `jwks_url` holds is not looked for there (prefetch33's choice)."""
    other = ec_key("ES384")
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", other)
        app = auth_app(auth_settings(trusted(es384, jwks_url=url)))
        off_list = server.url("/inferno/jwks.json")
        assert_refused(call(app, mint(other, headers=jwt_header(other, jku=off_list))))
        assert call(app, mint(es384, headers=jwt_header(es384, jku=off_list))).status_code == 200
        assert not server.fetches
        assert call(app, mint(other)).status_code == 200  # without a jku: the jwks_url's keys, as before


def test_a_client_with_inline_keys_ignores_a_jku_off_its_list(es384: KeyPair) -> None:
    """A client whose keys the operator registered inline (`jwks`), whose tokens carry a `jku` it is not
    listed for (the Inferno CRD kit sends one on every token), is verified with those keys, the jku never
    fetched (conform33 finding 3, the lead's decision): the signature must still verify with a registered
    key, so a stranger's key at that URL, under a kid of its own or the registered one, gets nothing. A
    jku it is listed for is still the URL read."""
    stranger = KeyPair(ec_key().private, "ES384", "stranger")
    with jwks_server() as server:
        off_list = server.publish("/inferno/custom/crd_server/jwks.json", es384, stranger)
        listed = server.publish("/listed/jwks.json", stranger)
        app = auth_app(auth_settings(trusted(es384, jku_allowed=(listed,))))
        assert call(app, mint(es384, headers=jwt_header(es384, jku=off_list))).status_code == 200
        assert_refused(call(app, mint(stranger, headers=jwt_header(stranger, jku=off_list))))
        impostor = KeyPair(stranger.private, "ES384", es384.kid)
        assert_refused(call(app, mint(impostor, headers=jwt_header(impostor, jku=off_list))))
        assert server.fetches["/inferno/custom/crd_server/jwks.json"] == 0
        assert call(app, mint(stranger, headers=jwt_header(stranger, jku=listed))).status_code == 200
        assert server.fetches["/listed/jwks.json"] == 1


def test_a_client_with_only_a_jku_allow_list_needs_the_jku(es384: KeyPair) -> None:
    with jwks_server() as server:
        allowed = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jku_allowed=(allowed,))))
        assert_refused(call(app, mint(es384)))


def test_unreachable_keys_refuse_the_call(es384: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    with jwks_server() as server:
        server.documents["/ehr/jwks.json"] = (500, {}, b"down")
        app = auth_app(auth_settings(trusted(jwks_url=server.url("/ehr/jwks.json"))))
        with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
            assert_refused(call(app, mint(es384)))
        assert "keys unavailable" in refusal_logged(caplog) and "HTTP 500" in caplog.text


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ((302, {"Location": "/ehr/jwks.json"}, b""), "HTTP 302"),
        ((200, {}, b"{" * 10 + b" " * 300_000), "larger than"),
        ((200, {}, b"<html>"), "not JSON"),
        ((200, {}, b'{"no_keys": []}'), "no 'keys' list"),
    ],
)
def test_fetching_a_jwks_refuses_redirects_floods_and_junk(
    document: Any, reason: str, es384: KeyPair
) -> None:
    with jwks_server() as server:
        server.publish("/ehr/jwks.json", es384)
        server.documents["/moved"] = document
        with pytest.raises(JwksUnavailable, match=reason):
            fetch_jwks(server.url("/moved"))
        assert server.fetches["/ehr/jwks.json"] == 0  # the redirect was not followed


def test_fetching_refuses_other_schemes() -> None:
    with pytest.raises(JwksUnavailable, match="http"):
        fetch_jwks("file:///etc/passwd")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_cache_lifetime_and_the_refetch_interval(es384: KeyPair) -> None:
    successor = ec_key("ES384")
    clock = FakeClock()
    with jwks_server() as server:
        url = server.publish("/k", es384)
        cache = JwksCache(lifetime_seconds=300, clock=clock, refetch_interval_seconds=10)
        assert cache.key(url, es384.kid)["kid"] == es384.kid
        clock.now += 299
        cache.key(url, es384.kid)
        assert server.fetches["/k"] == 1
        clock.now += 1  # the lifetime is over
        cache.key(url, es384.kid)
        assert server.fetches["/k"] == 2
        for _ in range(2):
            with pytest.raises(UnknownKid):
                cache.key(url, "random")
        assert server.fetches["/k"] == 3
        server.publish("/k", successor)
        with pytest.raises(UnknownKid):
            cache.key(url, successor.kid)  # within the interval after a re-fetch: not yet
        clock.now += 10
        assert cache.key(url, successor.kid)["kid"] == successor.kid
        assert server.fetches["/k"] == 4


def test_a_failed_fetch_is_retried_after_the_interval_only(es384: KeyPair) -> None:
    clock = FakeClock()
    with jwks_server() as server:
        url = server.url("/k")
        cache = JwksCache(lifetime_seconds=300, clock=clock, refetch_interval_seconds=10)
        for _ in range(3):
            with pytest.raises(JwksUnavailable):
                cache.key(url, es384.kid)
        assert server.fetches["/k"] == 1
        server.publish("/k", es384)
        clock.now += 10
        assert cache.key(url, es384.kid)["kid"] == es384.kid
        assert server.fetches["/k"] == 2


@pytest.mark.parametrize("head_at_once", [True, False], ids=["body-drips", "head-drips"])
def test_a_dripping_key_host_is_cut_at_the_fetch_deadline(head_at_once: bool, es384: KeyPair) -> None:
    with jwks_server() as server:
        drip = server.drip("/slow", es384, every=0.05, head_at_once=head_at_once)  # > 15 s in all
        started = time.monotonic()
        with pytest.raises(JwksUnavailable, match=r"not received within 0\.5 s"):
            fetch_jwks(server.url("/slow"), timeout_seconds=0.5)
        assert time.monotonic() - started < 10  # a limit on the whole fetch, not on each read
        assert drip.cut_short.wait(5)  # the service hung up before the last byte


def test_a_cached_kid_is_not_held_up_by_a_refetch_in_flight(es384: KeyPair) -> None:
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert call(app, mint(es384)).status_code == 200
        hold = server.hold("/ehr/jwks.json")
        with ThreadPoolExecutor(max_workers=2) as pool:
            refetching = pool.submit(call, app, mint(es384, headers=jwt_header(es384, kid="random-1")))
            assert hold.arrived.wait(10)  # the re-fetch is at the key host, which holds its answer
            legit = pool.submit(call, app, mint(es384))
            assert legit.result(timeout=30).status_code == 200
            assert not refetching.done()  # answered while the re-fetch was still waiting
            hold.release.set()
            assert_refused(refetching.result(timeout=30))
        assert server.fetches["/ehr/jwks.json"] == 2


def test_callers_with_no_keys_wait_for_the_one_fetch_until_its_deadline(es384: KeyPair) -> None:
    with jwks_server() as server:
        url = server.publish("/k", es384)
        server.hold("/k")
        cache = JwksCache(lifetime_seconds=300, fetch=lambda url: fetch_jwks(url, timeout_seconds=0.5))

        def outcome(_: int) -> str:
            try:
                return cache.key(url, es384.kid)["kid"]
            except JwksUnavailable as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(outcome, range(4)))
        assert outcomes == ["not received within 0.5 s"] * 4
        assert server.fetches["/k"] == 1


def test_a_failed_refetch_keeps_the_good_keys(es384: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    with jwks_server() as server:
        url = server.publish("/ehr/jwks.json", es384)
        app = auth_app(auth_settings(trusted(jwks_url=url)))
        assert call(app, mint(es384)).status_code == 200
        server.documents["/ehr/jwks.json"] = (503, {}, b"rate limited")
        with caplog.at_level(logging.WARNING, logger=GUARD_LOGGER):
            assert_refused(call(app, mint(es384, headers=jwt_header(es384, kid="random-1"))))
        assert "HTTP 503" in refusal_logged(caplog)
        assert server.fetches["/ehr/jwks.json"] == 2
        assert call(app, mint(es384)).status_code == 200
        assert_refused(call(app, mint(es384, headers=jwt_header(es384, kid="random-2"))))
        assert server.fetches["/ehr/jwks.json"] == 2  # the failure still counts for the rate limit


def test_good_keys_outlive_failed_fetches_until_their_lifetime_and_grace(es384: KeyPair) -> None:
    clock = FakeClock()
    fetched_at = clock.now
    with jwks_server() as server:
        url = server.publish("/k", es384)
        cache = JwksCache(lifetime_seconds=300, clock=clock, refetch_interval_seconds=10, grace_seconds=60)
        assert cache.key(url, es384.kid)["kid"] == es384.kid
        server.documents["/k"] = (500, {}, b"down")
        with pytest.raises(JwksUnavailable, match="HTTP 500"):
            cache.key(url, "random")
        for later in (2, 10.9, 299):
            clock.now = fetched_at + later
            assert cache.key(url, es384.kid)["kid"] == es384.kid
        assert server.fetches["/k"] == 2
        clock.now = fetched_at + 300  # the lifetime is over: a regular fetch, which fails
        assert cache.key(url, es384.kid)["kid"] == es384.kid  # within the grace
        clock.now += 5
        assert cache.key(url, es384.kid)["kid"] == es384.kid
        assert server.fetches["/k"] == 3  # the next try waits for the interval
        clock.now = fetched_at + 360  # lifetime and grace are over
        with pytest.raises(JwksUnavailable, match="HTTP 500"):
            cache.key(url, es384.kid)
        assert server.fetches["/k"] == 4


# ---------------------------------------------------------------------------------------- settings


def _auth(raw: dict[str, Any]) -> AuthSettings:
    return settings_from_mapping({"public_base_url": PUBLIC_BASE, "auth": raw}).auth


@pytest.mark.parametrize(
    ("client", "named"),
    [
        ({"jwks_url": "http://ehr.example.org/jwks.json"}, "jwks_url: must be an https URL"),
        ({"jwks_url": "http://127.attacker.example/jwks.json"}, "jwks_url: must be an https URL"),
        ({"jwks_url": "http://127.0.0.1.nip.io/jwks.json"}, "jwks_url: must be an https URL"),
        ({"jku_allowed": ["ftp://ehr.example.org/jwks.json"]}, "jku_allowed[0]: must be an https URL"),
        (
            {"jwks_url": "https://k", "fhir_servers": ["ehr.example.org/fhir"]},
            "fhir_servers[0]: must be an absolute",
        ),
        (
            {"jwks_url": "https://k", "fhir_servers": ["https://u:p@ehr/fhir"]},
            "fhir_servers[0]: must not hold",
        ),
        (
            {"jwks_url": "https://k", "fhir_servers": ["https://ehr/fhir?x=1"]},
            "fhir_servers[0]: must not hold",
        ),
        ({"jwks_url": "https://k", "fhir_servers": ["https://ehr/fhir#f"]}, "fhir_servers[0]: must not hold"),
        ({"jwks": {"keys": []}}, "jwks.keys: expected a non-empty list"),
        ({"jwks": {"keys": [{"kty": "EC"}]}}, "jwks.keys[0]: expected a JWK with a kid"),
    ],
)
def test_trusted_client_urls_and_keys_are_checked(client: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _auth({"trusted_clients": [{"iss": ISSUER, **client}]})
    assert named in str(caught.value)


def test_http_key_urls_only_on_loopback() -> None:
    auth = _auth({"trusted_clients": [{"iss": ISSUER, "jwks_url": "http://127.0.0.1:9/jwks.json"}]})
    assert auth.trusted_clients[0].jwks_url == "http://127.0.0.1:9/jwks.json"


def test_an_inline_private_key_is_refused(es384: KeyPair) -> None:
    private = {**ECAlgorithm.to_jwk(es384.private, as_dict=True), "kid": "k"}
    with pytest.raises(SettingsError, match="private key"):
        _auth({"trusted_clients": [{"iss": ISSUER, "jwks": {"keys": [private]}}]})


def test_an_issuer_listed_twice_is_refused() -> None:
    client = {"iss": ISSUER, "jwks_url": "https://ehr.example.org/jwks.json"}
    with pytest.raises(SettingsError, match="listed twice"):
        _auth({"trusted_clients": [client, client]})


def test_open_fhir_servers_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="open_fhir_servers"):
        _auth({"required": False, "open_fhir_servers": ["file:///etc"]})


def test_an_inline_key_that_suits_none_of_the_algorithms_stops_start_up() -> None:
    rs = rsa_key("RS384")
    with pytest.raises(SettingsError, match="suits none of ES384"):
        auth_app(auth_settings(trusted(rs, algorithms=("ES384",))))


# ---------------------------------------------------------------------------------------- two processes


@pytest.fixture(params=["sqlite-file", "postgresql"])
def shared_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL two service processes share: a SQLite file, or a database on the test run's
    PostgreSQL server (two replicas of a real deployment)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'shared.sqlite3'}"


@pytest.fixture
def second_process(es384: KeyPair, shared_database_url: str, tmp_path: Path) -> Iterator[str]:
    """`idds-crd serve` in its own process on a free port, trusting the same key, on the shared
    database and with the same public URL (two replicas behind one load balancer)."""
    config = tmp_path / "replica.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "public_base_url": PUBLIC_BASE,
                "store": {"url": shared_database_url},
                "auth": {"required": True, "trusted_clients": [{"iss": ISSUER, "jwks": jwks(es384)}]},
            }
        )
    )
    port = free_port()
    process = start_serve_process(config, port, tmp_path)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=30)  # gunicorn waits up to its graceful_timeout, 10 s


def test_a_jti_accepted_by_one_process_is_refused_by_another(
    es384: KeyPair, shared_database_url: str, second_process: str
) -> None:
    here = auth_app(auth_settings(trusted(es384), store_url=shared_database_url))

    def there(token: str) -> int:
        return requests.post(
            second_process + SELECT_URL, json=select_body(), headers=bearer(token), timeout=30
        ).status_code

    first = mint(es384)
    assert there(first) == 200
    assert_refused(call(here, first))
    second = mint(es384)
    assert call(here, second).status_code == 200
    assert there(second) == 401
    assert there(mint(es384)) == 200  # a fresh token still passes there


def test_the_shipped_trusted_client_examples_are_valid_settings() -> None:
    """The commented sandbox and Inferno entries of docker/config.yaml work once uncommented."""
    text = uncommented_entries((ROOT / "docker" / "config.yaml").read_text(encoding="utf-8"))
    auth = settings_from_mapping({**yaml.safe_load(text), "public_base_url": PUBLIC_BASE}).auth
    by_iss = {client.iss: client for client in auth.trusted_clients}
    sandbox = by_iss["https://sandbox.cds-hooks.org"]
    assert sandbox.jku_allowed == ("https://sandbox.cds-hooks.org/.well-known/jwks.json",)
    for suite in ("crd_server", "crd_server_v221"):  # the kit's CRD 2.0.1 and 2.2.1 suites
        inferno = by_iss[f"https://inferno.healthit.gov/suites/custom/{suite}"]
        assert inferno.jku_allowed == (inferno.iss + "/jwks.json",)
        assert set(inferno.algorithms) == {"ES384", "RS384"}
        assert inferno.token_reuse and not sandbox.token_reuse


@pytest.mark.parametrize("suite", ["crd_server", "crd_server_v221"])
def test_the_shipped_inferno_entries_admit_the_fhir_servers_the_kit_names(suite: str) -> None:
    """Today's kit sends `fhirServer` = its suite's mock EHR, `<inferno>/custom/<suite>/fhir`, on every
    call (server_base_urls.rb `fhir_url`); its older preset bodies name the reference server. The
    shipped entry admits both, and only what it lists: another suite's mock EHR, a path below or
    beside it, are still refused (inferno review s18 K-3)."""
    text = uncommented_entries((ROOT / "docker" / "config.yaml").read_text(encoding="utf-8"))
    auth = settings_from_mapping({**yaml.safe_load(text), "public_base_url": PUBLIC_BASE}).auth
    base = f"https://inferno.healthit.gov/suites/custom/{suite}"
    [inferno] = [client for client in auth.trusted_clients if client.iss == base]
    for named in (f"{base}/fhir", f"{base}/fhir/", "https://inferno.healthit.gov/reference-server/r4"):
        assert fhir_server_refusal(named, inferno.fhir_servers) is None, named
    other = "crd_server_v221" if suite == "crd_server" else "crd_server"
    for named in (
        f"https://inferno.healthit.gov/suites/custom/{other}/fhir",
        f"{base}/fhir/Patient",
        f"{base}",
        "https://inferno.healthit.gov/suites",
    ):
        assert fhir_server_refusal(named, inferno.fhir_servers) is not None, named


def test_the_demo_trusts_its_own_key_kept_private_on_disk(tmp_path: Path) -> None:
    key = generate_es384_key()
    key_file = tmp_path / "demo-ehr-key.pem"
    write_private_key(key, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_private_key(key_file.read_bytes()).private_numbers() == key.private_numbers()
    settings = demo_settings(PUBLIC_BASE, "http://127.0.0.1:9/fhir", key, tmp_path)
    assert settings.auth.required and settings.auth.trusted_clients[0].fhir_servers == (
        "http://127.0.0.1:9/fhir",
    )
    app = auth_app(settings)
    assert call(app, sign_call_token(key, DEMO_ISSUER, SELECT_AUD)).status_code == 200
    assert_refused(call(app, sign_call_token(generate_es384_key(), DEMO_ISSUER, SELECT_AUD)))


def test_feedback_on_another_clients_card_is_as_unknown_as_a_made_up_one(es384: KeyPair) -> None:
    other_key = ec_key()
    other = TrustedClient(iss="https://other-ehr.example", jwks=jwks(other_key), fhir_servers=())
    app = auth_app(auth_settings(trusted(es384), other))
    card = call(app, mint(es384)).get_json()["cards"][0]["uuid"]
    feedback = {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-12-03T07:00:00Z",
                "overrideReason": {"userComment": "written by another EHR"},
            }
        ]
    }
    aud = PUBLIC_BASE + FEEDBACK_URL
    by_other = call(app, mint(other_key, aud=aud, iss=other.iss), url=FEEDBACK_URL, body=feedback)
    assert by_other.status_code == 404
    assert call(app, mint(es384, aud=aud), url=FEEDBACK_URL, body=feedback).status_code == 200
    [record] = app.extensions["idds_crd"].stores.audit.find(card)
    assert [f["client_iss"] for f in record["feedback"]] == [ISSUER]


def test_a_replay_store_that_cannot_answer_means_503_not_a_guess(
    inline_app: Flask, es384: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> bool:
        raise mapped(OperationalError("INSERT", {}, Exception("database is down")))

    monkeypatch.setattr(ReplayStore, "claim", down)
    response = call(inline_app, mint(es384))
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"
    assert response.headers["Retry-After"] == "1"  # store.retry_after_seconds
