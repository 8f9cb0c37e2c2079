"""The calling EHRs' public keys: JWK Sets fetched from their URLs, cached, re-fetched on rotation.

A JWK Set URL is fetched with a timeout, a size cap and no redirects, and kept for the configured
lifetime. A token naming a key id the cached set lacks triggers one re-fetch (the EHR may have
rotated its key); such re-fetches are rate-limited per URL, so tokens with random key ids cannot
make the service hammer the EHR. A failed fetch is remembered for the same interval (fail closed).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 3.0
REFETCH_INTERVAL_SECONDS = 10.0

Jwk = dict[str, Any]
KeysByKid = dict[str, Jwk]


class JwksUnavailable(Exception):
    """A JWK Set could not be had; the message says why without quoting the response."""


class UnknownKid(Exception):
    """The JWK Set holds no key with the token's key id."""


def keys_by_kid(document: Any) -> KeysByKid:
    """The keys of a JWK Set document that carry a key id (tokens must name theirs), by key id."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise JwksUnavailable("not a JWK Set (no 'keys' list)")
    return {
        key["kid"]: dict(key) for key in keys if isinstance(key, Mapping) and isinstance(key.get("kid"), str)
    }


def fetch_jwks(url: str) -> KeysByKid:
    """GET a JWK Set: http(s) only, no redirects, bounded in time and size."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise JwksUnavailable("not an http(s) URL")
    deadline = time.monotonic() + FETCH_TIMEOUT_SECONDS
    body = bytearray()
    try:
        with requests.get(
            url,
            timeout=FETCH_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise JwksUnavailable(f"HTTP {response.status_code}")
            for chunk in response.iter_content(chunk_size=16 * 1024):
                body.extend(chunk)
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksUnavailable(f"larger than {MAX_JWKS_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise JwksUnavailable(f"not received within {FETCH_TIMEOUT_SECONDS:g} s")
    except requests.RequestException as exc:
        raise JwksUnavailable(type(exc).__name__) from None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise JwksUnavailable("not JSON") from None
    return keys_by_kid(document)


@dataclass(frozen=True)
class _Fetched:
    keys: KeysByKid
    failure: str | None
    at: float
    after_unknown_kid: bool


class JwksCache:
    """JWK Sets by URL, shared by the threads of one app; each URL is fetched by one thread at a time."""

    def __init__(
        self,
        lifetime_seconds: float,
        fetch: Callable[[str], KeysByKid] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval_seconds: float = REFETCH_INTERVAL_SECONDS,
    ) -> None:
        self._lifetime = lifetime_seconds
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval_seconds
        self._entries: dict[str, _Fetched] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def key(self, url: str, kid: str) -> Jwk:
        """The key `kid` of the JWK Set at `url`; raises UnknownKid or JwksUnavailable."""
        with self._lock(url):
            now = self._clock()
            entry = self._entries.get(url)
            if entry is None or self._stale(entry, now):
                entry = self._refresh(url, now, after_unknown_kid=False)
            elif entry.failure is None and kid not in entry.keys and self._may_refetch(entry, now):
                entry = self._refresh(url, now, after_unknown_kid=True)
        if entry.failure is not None:
            raise JwksUnavailable(entry.failure)
        if kid not in entry.keys:
            raise UnknownKid(kid)
        return entry.keys[kid]

    def _stale(self, entry: _Fetched, now: float) -> bool:
        lifetime = self._refetch_interval if entry.failure is not None else self._lifetime
        return now - entry.at >= lifetime

    def _may_refetch(self, entry: _Fetched, now: float) -> bool:
        """One re-fetch right after a regular fetch (a rotation shows at once); after a re-fetch,
        the next waits for the interval."""
        return not entry.after_unknown_kid or now - entry.at >= self._refetch_interval

    def _refresh(self, url: str, now: float, after_unknown_kid: bool) -> _Fetched:
        try:
            entry = _Fetched(self._fetch(url), None, now, after_unknown_kid)
        except JwksUnavailable as exc:
            entry = _Fetched({}, str(exc), now, after_unknown_kid)
        self._entries[url] = entry
        return entry

    def _lock(self, url: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(url, threading.Lock())
