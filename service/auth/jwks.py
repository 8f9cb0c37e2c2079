"""The calling EHRs' public keys: JWK Sets fetched from their URLs, cached, re-fetched on rotation.

A JWK Set URL is fetched with a size cap, no redirects, and one deadline for the whole exchange,
connection to last byte: a watchdog (`Cutoff`, service/cutoff.py) shuts the socket down at the
deadline, so a key host that drips its answer byte by byte cannot hold the fetch (socket timeouts
alone bound each read, not the sum).

Fetched keys are kept for the configured lifetime. A token naming a key id the cached set lacks
triggers one re-fetch (the EHR may have rotated its key); such re-fetches are rate-limited per URL,
so tokens with random key ids cannot make the service hammer the EHR. Such a token needs no valid
signature, so a failed fetch never discards good keys: they are honoured to the end of their
lifetime plus a short grace, while the failure is recorded apart and retried only after the
interval. With no good keys a failure refuses at once until then (fail closed).

A URL is fetched by one thread at a time, outside any lock the callers share: while it runs,
callers holding good keys for that URL answer from them; only callers with none wait for it, and
no longer than the fetch deadline.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from service.cutoff import Cutoff, Watch
from service.fhir.transport import WATCHED_POOLS

MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 3.0
REFETCH_INTERVAL_SECONDS = 10.0
STALE_KEYS_GRACE_SECONDS = 60.0
WAIT_MARGIN_SECONDS = 2.0
CHUNK_BYTES = 4 * 1024

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


# ---------------------------------------------------------------------------------------- fetching

_CUTOFF = Cutoff()


class _WatchedAdapter(HTTPAdapter):
    """Direct and http(s)-proxied connections are watched (a fetch still honours the environment's
    proxy settings, as `requests.get` does). Watched, not guarded like the FHIR connections: key URLs
    may name loopback (`http://localhost/...` for a sidecar), which the guard refuses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager


@contextmanager
def watched_session(deadline: float) -> Iterator[tuple[requests.Session, Watch]]:
    """A fresh session whose connections are cut at `deadline` (the cutoff's watch of this thread): the
    JWK Set fetches, and the sandbox's searches of its FHIR server (service/sandbox/chart.py)."""
    with _CUTOFF.until(deadline) as watch, requests.Session() as session:
        adapter = _WatchedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        yield session, watch


def fetch_jwks(url: str, timeout_seconds: float = FETCH_TIMEOUT_SECONDS) -> KeysByKid:
    """GET a JWK Set: http(s) only, no redirects, at most MAX_JWKS_BYTES, and all of it (connection,
    headers, body) within `timeout_seconds`."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise JwksUnavailable("not an http(s) URL")
    late = f"not received within {timeout_seconds:g} s"
    deadline = time.monotonic() + timeout_seconds
    with watched_session(deadline) as (session, watch):
        try:
            body = _get(session, url, deadline)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            timed_out = watch.fired or isinstance(exc, requests.Timeout)
            raise JwksUnavailable(late if timed_out else type(exc).__name__) from None
        if watch.fired or time.monotonic() > deadline:
            raise JwksUnavailable(late)  # a cut connection may read as a short body
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise JwksUnavailable("not JSON") from None
    return keys_by_kid(document)


def _get(session: requests.Session, url: str, deadline: float) -> bytes:
    """The body of a 200 answer, read in small chunks while the deadline has not passed."""
    seconds = max(deadline - time.monotonic(), 0.001)
    with session.get(
        url,
        timeout=seconds,
        allow_redirects=False,
        stream=True,
        headers={"Accept": "application/json"},
    ) as response:
        if response.status_code != 200:
            raise JwksUnavailable(f"HTTP {response.status_code}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
            raise JwksUnavailable(f"larger than {MAX_JWKS_BYTES} bytes")
        body = bytearray()
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            body.extend(chunk)
            if len(body) > MAX_JWKS_BYTES:
                raise JwksUnavailable(f"larger than {MAX_JWKS_BYTES} bytes")
            if time.monotonic() > deadline:
                break
        return bytes(body)


# ---------------------------------------------------------------------------------------- caching


@dataclass(frozen=True)
class _Keys:
    """A JWK Set that was fetched, and when."""

    keys: KeysByKid
    at: float


@dataclass(frozen=True)
class _Attempt:
    """The latest fetch of a URL: when it started, why, and its failure (None when it succeeded)."""

    at: float
    after_unknown_kid: bool
    failure: str | None


@dataclass
class _Source:
    """What the cache knows of one URL; changed only under the cache's lock."""

    good: _Keys | None = None
    last: _Attempt | None = None
    in_flight: threading.Event | None = None


class JwksCache:
    """JWK Sets by URL, shared by the threads of one app; each URL is fetched by one thread at a time."""

    def __init__(
        self,
        lifetime_seconds: float,
        fetch: Callable[[str], KeysByKid] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval_seconds: float = REFETCH_INTERVAL_SECONDS,
        grace_seconds: float = STALE_KEYS_GRACE_SECONDS,
        wait_seconds: float = FETCH_TIMEOUT_SECONDS + WAIT_MARGIN_SECONDS,
    ) -> None:
        self._lifetime = lifetime_seconds
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval_seconds
        self._grace = grace_seconds
        self._wait = wait_seconds
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()

    def key(self, url: str, kid: str) -> Jwk:
        """The key `kid` of the JWK Set at `url`; raises UnknownKid or JwksUnavailable."""
        with self._lock:
            now = self._clock()
            source = self._sources.setdefault(url, _Source())
            waiting_for = source.in_flight if self._usable(source, now) is None else None
            after_unknown_kid = self._fetch_reason(source, kid, now)
            if after_unknown_kid is not None:
                source.in_flight = threading.Event()
        if after_unknown_kid is not None:
            return self._answer(source, kid, self._refresh(url, source, now, after_unknown_kid))
        if waiting_for is not None and not waiting_for.wait(self._wait):
            raise JwksUnavailable(f"still being fetched after {self._wait:g} s")
        return self._answer(source, kid)

    def _usable(self, source: _Source, now: float) -> KeysByKid | None:
        """The good keys, unless they are past their lifetime and its grace."""
        good = source.good
        return good.keys if good is not None and now - good.at < self._lifetime + self._grace else None

    def _fetch_reason(self, source: _Source, kid: str, now: float) -> bool | None:
        """Whether this call starts a fetch: None if not, else whether it is a re-fetch for an
        unknown key id (rate-limited) rather than one for keys missing or past their lifetime."""
        good, last = source.good, source.last
        if source.in_flight is not None:
            return None
        since_last = now - last.at if last is not None else math.inf
        if good is None or now - good.at >= self._lifetime:
            retry_allowed = last is None or last.failure is None or since_last >= self._refetch_interval
            return False if retry_allowed else None
        if kid in good.keys or last is None:
            return None
        right_after_regular_fetch = last.failure is None and not last.after_unknown_kid
        return True if right_after_regular_fetch or since_last >= self._refetch_interval else None

    def _refresh(self, url: str, source: _Source, now: float, after_unknown_kid: bool) -> str | None:
        """Fetch `url` (outside the lock) and record the outcome: the good keys replaced only by
        good keys. Returns the failure, None on success."""
        failure: str | None = "the fetch ended unexpectedly"
        keys: KeysByKid = {}
        try:
            keys = self._fetch(url)
            failure = None
        except JwksUnavailable as exc:
            failure = str(exc)
        finally:
            with self._lock:
                if failure is None:
                    source.good = _Keys(keys, now)
                source.last = _Attempt(now, after_unknown_kid, failure)
                done, source.in_flight = source.in_flight, None
            if done is not None:
                done.set()
        return failure

    def _answer(self, source: _Source, kid: str, own_failure: str | None = None) -> Jwk:
        """The key from the usable keys; else why not (this call's own failed fetch first)."""
        with self._lock:
            usable = self._usable(source, self._clock())
            last = source.last
        if usable is not None and kid in usable:
            return usable[kid]
        if own_failure is not None:
            raise JwksUnavailable(own_failure)
        if usable is None:
            raise JwksUnavailable(last.failure if last is not None and last.failure else "no keys fetched")
        raise UnknownKid(kid)
