"""Verifying the JWT an EHR sends with a CDS Hooks call (CDS Hooks 2.0 "Trusting CDS Clients").

Order matters: the header is judged first (`none` and HMAC are refused before any key is looked
up), then the issuer must be a trusted client, then the key comes from an allow-listed `jku`, the
client's inline JWK Set or its JWKS URL (a `jku` off the list is never fetched: ignored for a client
whose keys are inline, else refused), then the signature and claims are checked, and last the
token id is claimed in the replay store shared by every replica. Any failure raises `Refused` with
a reason for the log, never the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

from service.auth.jwks import Jwk, JwksCache, JwksUnavailable, UnknownKid, keys_by_kid
from service.settings import AuthSettings, SettingsError, TrustedClient
from service.store.replay import ReplayStore

# algorithm -> (key type, curve) it needs; HMAC and `none` are absent on purpose
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "ES384": ("EC", "P-384"),
    "ES256": ("EC", "P-256"),
    "RS384": ("RSA", None),
    "RS256": ("RSA", None),
    "PS384": ("RSA", None),
}
MAX_TOKEN_CHARS = 16 * 1024
MAX_LIFETIME_SECONDS = 3600
MAX_JTI_CHARS = 512
MIN_RSA_BITS = 2048
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class Refused(Exception):
    """The token is not accepted; `reason` is for the log, with the `iss` and `jti` it claimed."""

    def __init__(self, reason: str, iss: Any = None, jti: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.iss = iss
        self.jti = jti


@dataclass(frozen=True)
class Verified:
    client: TrustedClient
    jti: str


def check_inline_keys(auth: AuthSettings) -> None:
    """Refuse start-up when a trusted client's inline key suits none of its algorithms."""
    for i, client in enumerate(auth.trusted_clients):
        for kid, jwk in keys_by_kid(client.jwks).items() if client.jwks is not None else ():
            if not any(_suits(jwk, algorithm) for algorithm in client.algorithms):
                raise SettingsError(
                    f"auth.trusted_clients[{i}].jwks: key {kid} suits none of {', '.join(client.algorithms)}"
                )


def _suits(jwk: Jwk, algorithm: str) -> bool:
    try:
        _usable_key(jwk, algorithm)
    except Refused:
        return False
    return True


class TokenVerifier:
    """Checks tokens against the trusted clients of one app; safe to share between threads."""

    def __init__(self, auth: AuthSettings, replay: ReplayStore, cache: JwksCache) -> None:
        check_inline_keys(auth)
        self._clients = {client.iss: client for client in auth.trusted_clients}
        self._inline = {
            client.iss: keys_by_kid(client.jwks) for client in auth.trusted_clients if client.jwks is not None
        }
        self._skew = auth.clock_skew_seconds
        self._replay = replay
        self._cache = cache

    def verify(self, token: str | None, audience: str) -> Verified:
        """The trusted client the token proves the caller to be, having claimed its `jti`."""
        if not token:
            raise Refused("no bearer token")
        if len(token) > MAX_TOKEN_CHARS:
            raise Refused("token too long")
        claims = _unverified_claims(token)
        iss, jti = (claims.get("iss"), claims.get("jti")) if claims is not None else (None, None)
        try:
            header = _header(token)
            if claims is None:
                raise Refused("malformed token")
            return self._verify(token, header, iss, audience)
        except Refused as refused:
            raise Refused(refused.reason, iss, jti) from None

    def _verify(self, token: str, header: dict[str, Any], iss: Any, audience: str) -> Verified:
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise Refused("iss is not a trusted client")
        algorithm = header["alg"]
        if algorithm not in client.algorithms:
            raise Refused(f"algorithm {algorithm} not accepted for this client")
        key = _usable_key(self._key(client, header), algorithm)
        payload = self._decode(token, key, algorithm, audience, client.iss)
        _check_lifetime(payload)
        jti = payload["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise Refused("jti is not a non-empty string")
        if client.token_reuse:
            return Verified(client, jti)
        # kept while any replica could accept it: to exp + skew by its clock, also on a replica whose
        # clock is up to the skew ahead of this one's (each deletes what its own clock reads as past)
        now = int(time.time())
        if not self._replay.claim(client.iss, jti, int(payload["exp"] + 2 * self._skew) + 1, now):
            raise Refused("jti already used (replay)")
        return Verified(client, jti)

    def _key(self, client: TrustedClient, header: dict[str, Any]) -> Jwk:
        """The key the token names: from its `jku` when the client is trusted for that URL (`jku_allowed`,
        or its registered `jwks_url`); a `jku` it is not trusted for is never fetched: a client whose keys
        are registered inline (`jwks`) has it ignored and the token verified with those keys alone (an
        Inferno run or an EHR sends a `jku` on every token, CDS Hooks 3.0 says it SHOULD: the signature
        must still verify with a key the operator registered), any other client's token is refused.
        Without a `jku`: the inline keys, then the `jwks_url`'s."""
        kid: str = header["kid"]
        jku = header.get("jku")
        inline = self._inline.get(client.iss)
        if jku is not None:
            if not isinstance(jku, str):
                raise Refused("jku is not a URL")
            # the client's registered `jwks_url` is a key URL it is trusted for, as much as `jku_allowed`'s
            if jku in client.jku_allowed or jku == client.jwks_url:
                return self._cached_key(jku, kid)
            if inline is None:
                raise Refused("jku is not on the issuer's allow-list")
            if kid not in inline:  # (the jku not fetched: only the keys registered inline are used)
                raise Refused("unknown kid (jku not on the issuer's allow-list: not fetched)")
            return inline[kid]
        inline = inline or {}
        if kid in inline:
            return inline[kid]
        if client.jwks_url is not None:
            return self._cached_key(client.jwks_url, kid)
        raise Refused("unknown kid")

    def _cached_key(self, url: str, kid: str) -> Jwk:
        try:
            return self._cache.key(url, kid)
        except UnknownKid:
            raise Refused("unknown kid") from None
        except JwksUnavailable as exc:
            raise Refused(f"keys unavailable from {url}: {exc}") from None

    def _decode(self, token: str, key: Any, algorithm: str, audience: str, iss: str) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=audience,
                issuer=iss,
                leeway=self._skew,
                options={"require": REQUIRED_CLAIMS, "strict_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Refused("expired (exp)") from None
        except jwt.ImmatureSignatureError as exc:
            raise Refused("iat in the future" if "(iat)" in str(exc) else "not yet valid (nbf)") from None
        except jwt.InvalidAudienceError:
            raise Refused(f"aud is not {audience}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(f"claim {exc.claim} missing") from None
        except jwt.InvalidSignatureError:
            raise Refused("signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise Refused(f"invalid token ({type(exc).__name__})") from None
        return payload


def _header(token: str) -> dict[str, Any]:
    """The header, judged before anything else: a signature algorithm we accept at all, a key id, and
    `typ` JWT (CDS Hooks 2.0, Trusting CDS Clients: each REQUIRED)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Refused("malformed token") from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in KEY_TYPES:
        raise Refused(f"algorithm {algorithm!r} not accepted")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise Refused("kid missing from the header")
    typ = header.get("typ")
    if typ is None:
        raise Refused("typ missing from the header")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise Refused("typ is not JWT")
    return header


def _unverified_claims(token: str) -> dict[str, Any] | None:
    """The claims before verification (None when unreadable): only to find the issuer and to name
    iss and jti in the log."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims


def _usable_key(jwk: Jwk, algorithm: str) -> Any:
    """The public key of `jwk` if it suits `algorithm`: key type, curve, size, `alg` and `use`."""
    key_type, curve = KEY_TYPES[algorithm]
    if jwk.get("kty") != key_type or (curve is not None and jwk.get("crv") != curve):
        raise Refused(f"key does not suit {algorithm}")
    if jwk.get("alg", algorithm) != algorithm or jwk.get("use", "sig") != "sig":
        raise Refused(f"key is declared for another use than {algorithm} signatures")
    try:
        key = PyJWK(jwk, algorithm=algorithm).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        raise Refused("key unusable") from None
    if key_type == "RSA" and key.key_size < MIN_RSA_BITS:
        raise Refused(f"RSA key shorter than {MIN_RSA_BITS} bits")
    return key


def _check_lifetime(payload: dict[str, Any]) -> None:
    exp, iat = payload["exp"], payload["iat"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
        raise Refused("exp or iat is not a number")
    if exp < iat:
        raise Refused("exp before iat")
    if exp - iat > MAX_LIFETIME_SECONDS:
        raise Refused(f"lifetime (exp - iat) over {MAX_LIFETIME_SECONDS} s")
