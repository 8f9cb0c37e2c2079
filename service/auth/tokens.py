"""Signing CDS Hooks JWTs as an EHR does: the demo's own calls and `idds-crd token` (curl lines,
trying a deployment). A key is an EC P-384 (ES384) or RSA (RS384) private key in a PEM file; its
key id is its RFC 7638 thumbprint, so the key file is all a signer needs, and the public JWK Set
to register as a trusted client follows from it."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DEFAULT_LIFETIME_SECONDS = 300  # what Inferno and the CDS Hooks sandbox use
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


def generate_es384_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """An unencrypted PEM private key, EC P-384 or RSA; ValueError for anything else."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key ({type(exc).__name__})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise ValueError("the key must be EC P-384 (ES384) or RSA (RS384)")


def algorithm_for(key: PrivateKey) -> str:
    return "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public half as a JWK with its thumbprint as `kid`, for a trusted client's JWK Set."""
    converter = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    jwk: dict[str, Any] = converter.to_jwk(key.public_key(), as_dict=True)
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return {**members, "kid": kid, "alg": algorithm_for(key), "use": "sig"}


def public_jwks(key: PrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(key)]}


def sign_call_token(
    key: PrivateKey,
    iss: str,
    aud: str,
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    jku: str | None = None,
) -> str:
    """A fresh CDS Hooks JWT for one call to the endpoint `aud` (a new jti each time)."""
    now = int(time.time())
    header: dict[str, Any] = {"typ": "JWT", "kid": public_jwk(key)["kid"]}
    if jku:
        header["jku"] = jku
    claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime_seconds, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm=algorithm_for(key), headers=header)
