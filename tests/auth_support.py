"""Calling the service as a trusted (or forged) EHR: key pairs, JWTs minted here independently of
the service's own signer, forged tokens of the classic attacks, a real loopback JWK Set server,
and apps that require authentication."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.app import create_app
from service.settings import AuthSettings, Settings, StoreSettings, TrustedClient
from tests.builders import catalog
from tests.support import FHIR_SERVER, MISSING, SELECT_URL, no_client, running

PUBLIC_BASE = "https://crd.example.org"
ISSUER = "https://ehr.example.org"
SELECT_AUD = PUBLIC_BASE + SELECT_URL


@dataclass(frozen=True)
class KeyPair:
    """A signing key of an EHR: the private key, its algorithm, and its public JWK (with `kid`)."""

    private: Any
    algorithm: str
    kid: str

    @property
    def jwk(self) -> dict[str, Any]:
        converter = ECAlgorithm if self.algorithm.startswith("ES") else RSAAlgorithm
        public: dict[str, Any] = converter.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def ec_key(algorithm: str = "ES384", kid: str | None = None) -> KeyPair:
    curve = ec.SECP384R1() if algorithm == "ES384" else ec.SECP256R1()
    return KeyPair(ec.generate_private_key(curve), algorithm, kid or f"ec-{uuid.uuid4()}")


_RSA_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key(algorithm: str = "RS384", kid: str | None = None) -> KeyPair:
    """An RSA 2048 key pair (generated once per run: RSA generation is slow)."""
    if not _RSA_KEYS:
        _RSA_KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return KeyPair(_RSA_KEYS[0], algorithm, kid or f"rsa-{uuid.uuid4()}")


def jwks(*keys: KeyPair) -> dict[str, Any]:
    return {"keys": [key.jwk for key in keys]}


def claims(aud: str = SELECT_AUD, **overrides: Any) -> dict[str, Any]:
    """The claims an EHR sends (Inferno's shape: iat now, exp in 5 minutes); MISSING deletes one."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": aud,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not MISSING}


def header(key: KeyPair | None = None, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"typ": "JWT", "kid": key.kid if key else "no-key"}
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not MISSING}


def mint(key: KeyPair, aud: str = SELECT_AUD, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    """A token signed by `key` (claims and header overridable, MISSING deletes)."""
    return jwt.encode(
        claims(aud, **overrides), key.private, algorithm=key.algorithm, headers=headers or header(key)
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(head: dict[str, Any], body: dict[str, Any]) -> str:
    return _b64(json.dumps(head).encode()) + "." + _b64(json.dumps(body).encode())


def unsigned_token(key: KeyPair, **overrides: Any) -> str:
    """`alg: none`: a token anyone can write."""
    return _segments(header(key, alg="none"), claims(**overrides)) + "."


def hmac_confusion_token(key: KeyPair, **overrides: Any) -> str:
    """HS256 keyed with the EHR's public key (PEM), which any attacker has: the classic confusion
    attack on verifiers that let the token choose the algorithm."""
    signing_input = _segments(header(key, alg="HS256"), claims(**overrides))
    signature = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def tampered(token: str) -> str:
    """The token with one byte of its signature changed."""
    signing_input, signature = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return signing_input + "." + _b64(bytes(raw))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trusted(*keys: KeyPair, **options: Any) -> TrustedClient:
    """The EHR `ISSUER` trusting `keys` inline (unless options give the keys another way)."""
    values: dict[str, Any] = {"iss": ISSUER, "fhir_servers": (FHIR_SERVER,)}
    if keys:
        values["jwks"] = jwks(*keys)
    values.update(options)
    return TrustedClient(**values)


def auth_settings(
    *clients: TrustedClient,
    store_url: str = "sqlite://",
    public_base_url: str | None = PUBLIC_BASE,
    **auth: Any,
) -> Settings:
    return Settings(
        public_base_url=public_base_url,
        auth=AuthSettings(required=True, trusted_clients=clients, **auth),
        store=StoreSettings(url=store_url),
    )


def auth_app(settings: Settings) -> Flask:
    """The service requiring authentication, with the shipped policies and no FHIR client."""
    return create_app(settings, catalog(), client_factory=no_client)


@dataclass
class Drip:
    """A response sent one byte every `every` seconds (its head at once when `head_at_once`);
    `cut_short` is set when the client closed the connection before the last byte."""

    body: bytes
    every: float
    head_at_once: bool
    cut_short: threading.Event = field(default_factory=threading.Event)


@dataclass
class Hold:
    """Requests for a path wait (at most HOLD_LIMIT_SECONDS) until `release` is set; `arrived` is
    set when the first of them has come in."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


HOLD_LIMIT_SECONDS = 20.0


@dataclass
class JwksServer:
    """A real HTTP server on loopback publishing JWK Sets by path and counting every fetch; a path
    may drip its answer or hold it back."""

    documents: dict[str, Any] = field(default_factory=dict)
    fetches: Counter[str] = field(default_factory=Counter)
    drips: dict[str, Drip] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def publish(self, path: str, *keys: KeyPair) -> str:
        self.documents[path] = jwks(*keys)
        return self.url(path)

    def drip(self, path: str, *keys: KeyPair, every: float, head_at_once: bool) -> Drip:
        """Publish `keys` at `path` as a 200 answer that trickles out byte by byte."""
        self.drips[path] = Drip(json.dumps(jwks(*keys)).encode(), every, head_at_once)
        return self.drips[path]

    def hold(self, path: str) -> Hold:
        """Hold back the answers for `path` (whatever is published there) until released."""
        self.holds[path] = Hold()
        return self.holds[path]


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches[self.path] += 1
            hold = state.holds.get(self.path)
            if hold is not None:
                hold.arrived.set()
                hold.release.wait(HOLD_LIMIT_SECONDS)
            drip = state.drips.get(self.path)
            if drip is not None:
                self.drip(drip)
                return
            document = state.documents.get(self.path)
            if isinstance(document, tuple):  # (status, headers, body): a misbehaving server
                status, headers, body = document
            elif document is None:
                status, headers, body = 404, {}, b"{}"
            else:
                status, headers, body = (
                    200,
                    {"Content-Type": "application/json"},
                    json.dumps(document).encode(),
                )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def drip(self, drip: Drip) -> None:
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(drip.body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            try:
                if drip.head_at_once:
                    self.wfile.write(head)
                trickle = drip.body if drip.head_at_once else head + drip.body
                for i in range(len(trickle)):
                    if state.stopping.wait(drip.every):
                        return
                    self.wfile.write(trickle[i : i + 1])
            except OSError:  # the client hung up (broken pipe, reset)
                drip.cut_short.set()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    with running(server):
        try:
            yield state
        finally:
            state.stopping.set()
            for hold in state.holds.values():
                hold.release.set()
