"""The patient-data cache between hook calls: the answers of one call's FHIR queries, reused by the
next call for the same patient within a short time, so that order-select (or encounter-start)
warms order-sign and the clinician's signing is not slowed by the same searches again.

What is kept: the successful answer of each FHIR query the gatherer ran for the patient (the
Patient and Coverage reads or searches, the clinical searches, the Organizations and Medications
they reference), and nothing else — never an error, never the request's prefetch (prefetch always
wins and is never stored: the cache only stands in for queries), never a token or header, never
another patient's resource (the gatherer keeps only what belongs to the patient before storing).
A key's own query run instead of the `next` pages of a searchset the EHR prefetched as page one of
several is kept as that query; a cached answer to it is taken under that page one, which is newer
(service/fhir/gather.py `_under_page_one`).

The key of an answer is (trusted client `iss`, FHIR server base URL, user, patient, the query's
resource type and exact rendered parameters or read reference), hashed with SHA-256 so that a
Redis key names no patient:

- the client: two EHRs never share data, even for the same server and patient id;
- the FHIR server: the same patient id means another person on another server;
- the user (`context.userId`): the FHIR server answers with what the user's access token may
  see, and two users of one EHR may see different parts of a chart (sensitive records,
  break-the-glass); keyed by user, a call never sees more than its own user's queries returned.
  Order-select and order-sign come from the same clinician, so that is where the hits are;
- the FHIR access token (its SHA-256 digest, never the token): what an earlier call's token
  fetched is never given to a call whose token the FHIR server might refuse or scope more narrowly
  (a revoked token, another performer's order-dispatch, which names no user). Order-select and
  order-sign of one session carry the same token;
- the patient and the exact query: a changed search definition is simply another key.

Unauthenticated callers (a development deployment without `auth.required`) are never cached:
without a client identity anyone naming a patient would read what another caller's token fetched.

Answers expire `cache.ttl_seconds` after they were stored (one minute by default: long enough for
select → sign, short enough that a chart change shows soon). A call whose answer leaves something
for the clinician to do about the chart (an order that does not meet its policy, or could not be
checked; no Coverage to judge by) drops what it read from the cache (service/pipeline.py
`forget_unsettled`): the clinician asked to document something and signing a moment later is
answered from the chart as it is then.
The expiry time travels inside the stored value and is checked against the cache's clock
(injectable for tests); Redis also drops the key itself (SET with EX). In the process, a bounded
LRU (`max_entries`, `max_bytes` of JSON) held by the app (never module state); with `cache.url`,
Redis, shared by every replica. A Redis that is down or slow costs at most `cache.timeout_seconds`
once, then reads as a miss for a few seconds (one WARNING per outage, counted in `/metrics`),
never an error of the call. A drop that cannot reach Redis then is not lost (`UnsentDrops`): the
process that made it serves none of the dropped keys from Redis until their TTL has passed, and
sends the DEL again every RETRY_REDIS_AFTER_SECONDS until Redis takes it. Another process (worker
or replica) learns of a drop only from Redis: until the retried DEL reaches it, that process may
still be answered from what was dropped (review s17 F-5).
Answers are stored as JSON with their numbers as written (`strict_json`): one comes back as the
server gave it.
An answer orjson cannot write that way (an integer past 64 bits) is not stored, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from service.hooks.models import HookRequest
from service.observability import observe_cache_failure
from service.settings import CacheSettings
from service.strict_json import as_written, loads_exact

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"  # part of every key: a change of the stored form is a new key, never a misread
RETRY_REDIS_AFTER_SECONDS = 5.0
REDIS_COMMANDS_AT_ONCE = 4  # of one process; a command stuck on a dripping Redis holds one of them
MAX_UNSENT_DROPS = 50_000  # keys remembered one by one; past it, nothing is served from Redis a while


class RedisTooSlow(Exception):
    """A Redis command still unanswered after the cache's time: it reads as a failure."""


Clock = Callable[[], float]
Answer = dict[str, Any]  # a query's stored answer: plain JSON (resources, included, pages, ...)


@dataclass(frozen=True)
class CacheScope:
    """Whose data one call's queries fetch: every key of the call starts from it."""

    client: str
    fhir_server: str
    user: str
    patient: str
    credential: str = ""  # the SHA-256 digest of the call's FHIR access token ("" without one)


def scope_of(request: HookRequest, client: str | None) -> CacheScope | None:
    """The scope of a call by the trusted client `client` (its `iss`); None (nothing cached) for
    an unauthenticated caller or a call that names no FHIR server."""
    if not client or request.fhir.server is None:
        return None
    server = request.fhir.server.rstrip("/")
    token = request.fhir.access_token
    credential = hashlib.sha256(token.encode("utf-8")).hexdigest() if token else ""
    return CacheScope(client, server, request.context.user_id or "", request.context.patient_id, credential)


class CacheStore(Protocol):
    """Where the stored answers live (bytes by key); `timeout_seconds`: the longest one lookup waits."""

    timeout_seconds: float

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def put_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None: ...

    def drop_many(self, keys: Sequence[str], ttl_seconds: float) -> None:
        """Drop `keys`; `ttl_seconds`: the longest a value stored before the drop may still live."""
        ...


class MemoryStore:
    """A thread-safe LRU of at most `max_entries` values and `max_bytes` bytes, each dropped at its
    expiry time (read from `clock`)."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.timeout_seconds = 0.0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        """The keys held, least recently used first (expired ones included until met)."""
        with self._lock:
            return list(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        found: list[bytes | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now:
                    self._drop(key)
                    entry = None
                if entry is not None:
                    self._entries.move_to_end(key)
                found.append(None if entry is None else entry[1])
        return found

    def put_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        expires_at = self._clock() + ttl_seconds
        with self._lock:
            for key, value in items.items():
                if key in self._entries:
                    self._drop(key)
                if len(value) > self.max_bytes:
                    continue  # larger than the whole cache: not kept at all
                self._entries[key] = (expires_at, value)
                self._bytes += len(value)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def drop_many(self, keys: Sequence[str], ttl_seconds: float = 0.0) -> None:
        with self._lock:  # never fails: nothing to remember (`ttl_seconds` is for RedisStore)
            for key in keys:
                if key in self._entries:
                    self._drop(key)

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(value)


class UnsentDrops:
    """The keys a process dropped whose DEL Redis has not taken yet, each until (monotonic time) every
    value stored before the drop has expired: meanwhile none of them is served from Redis, and the DEL
    is sent again. Past MAX_UNSENT_DROPS keys, no key at all is served until the newest of them would
    have been (the memory stays bounded; the keys not remembered are not sent again). Thread-safe."""

    def __init__(self, clock: Clock = time.monotonic, most: int = MAX_UNSENT_DROPS) -> None:
        self._clock = clock
        self._most = most
        self._until: dict[str, float] = {}
        self._all_until = 0.0
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str], seconds: float) -> None:
        until = self._clock() + seconds
        with self._lock:
            self._prune()
            for key in keys:
                if key in self._until or len(self._until) < self._most:
                    self._until[key] = until
                else:
                    self._all_until = max(self._all_until, until)

    def hides(self, keys: Sequence[str]) -> list[bool]:
        """For each of `keys`, whether a drop of it may not have reached Redis (it must not be served)."""
        now = self._clock()
        with self._lock:
            if now < self._all_until:
                return [True] * len(keys)
            return [now < self._until.get(key, now) for key in keys]

    def due(self, keys: Sequence[str] | None = None) -> dict[str, float]:
        """The remembered drops (of `keys`, or all) still to send, each with its time."""
        with self._lock:
            self._prune()
            if keys is None:
                return dict(self._until)
            return {key: self._until[key] for key in keys if key in self._until}

    def settled(self, sent: Mapping[str, float]) -> None:
        """Forget the drops of `sent` (as `due` gave them) that Redis now holds: a DEL it took, or a
        SET of a value read after the drop. A drop of the same key made since (another time) stays."""
        with self._lock:
            for key, until in sent.items():
                if self._until.get(key) == until:
                    del self._until[key]

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._until)

    def _prune(self) -> None:
        now = self._clock()
        for key in [key for key, until in self._until.items() if until <= now]:
            del self._until[key]


class RedisStore:
    """Values in Redis (SET with EX: they expire there too), shared by replicas. Any failure reads
    as a miss (or a lost write): the first one of an outage logs one WARNING, and for
    RETRY_REDIS_AFTER_SECONDS after it Redis is not asked at all, so a dead or black-holed Redis
    costs each call nothing. Each command runs on a thread of the store's own and is waited for at
    most twice `timeout_seconds` in all: the socket timeout bounds each read, not a reply that drips
    in a byte at a time. A drop is never lost to a failure (`UnsentDrops`): its keys are not served
    by this process until their values must have expired, and its DEL is sent again, from a timer,
    every RETRY_REDIS_AFTER_SECONDS until Redis takes it."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        import redis  # imported only when configured: start-up without Redis does not pay for it
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.timeout_seconds = timeout_seconds
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._lock = threading.Lock()
        self._resting_until: float | None = None  # monotonic time; None while Redis answers
        self._commands = ThreadPoolExecutor(REDIS_COMMANDS_AT_ONCE, thread_name_prefix="idds-crd-redis")
        self.unsent = UnsentDrops()
        self._retry: threading.Timer | None = None  # the next try of the unsent drops, when one waits
        self._closed = False

    def _within_time(self, command: Callable[[], Any]) -> Any:
        try:
            return self._commands.submit(command).result(timeout=2 * self.timeout_seconds)
        except RuntimeError:  # the store was closed (its worker is stopping): no cache for this call
            raise RedisTooSlow("the store is closed") from None
        except FutureTimeout:
            raise RedisTooSlow(f"no answer within {2 * self.timeout_seconds:g} s") from None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or self._resting():
            return [None] * len(keys)
        try:
            values = self._within_time(lambda: self._redis.mget(list(keys)))
        except (*self._errors, RedisTooSlow) as exc:
            self._failed(exc)
            return [None] * len(keys)
        self._answered()
        hidden = self.unsent.hides(keys)  # asked after the answer: a drop made meanwhile counts too
        pairs = zip(values, hidden, strict=True)
        return [value if isinstance(value, bytes) and not gone else None for value, gone in pairs]

    def put_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if not items or self._resting():
            return
        seconds = max(1, round(ttl_seconds))

        def write() -> None:
            with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=seconds)
                pipe.execute()

        replaced = self.unsent.due(list(items))  # a value read after the drop: stored, it settles it
        try:
            self._within_time(write)
        except (*self._errors, RedisTooSlow) as exc:
            self._failed(exc)
            return
        self._answered()
        self.unsent.settled(replaced)

    def drop_many(self, keys: Sequence[str], ttl_seconds: float) -> None:
        """Drop `keys`: remembered first (not served by this process from now on), then sent with any
        earlier drop Redis has not taken. Each is remembered for `ttl_seconds` (and the one second
        Redis may round EX up by), the longest a value stored before the drop can live."""
        if not keys:
            return
        self.unsent.add(keys, ttl_seconds + 1)
        self._send_drops()

    def _retry_now(self) -> None:
        """The timer's: it is spent, and the drops are sent (or it is set again)."""
        with self._lock:
            self._retry = None
        self._send_drops()

    def _send_drops(self) -> None:
        """Send the remembered drops (one DEL); on a failure, or while resting, try again later."""
        due = self.unsent.due()
        if not due or self._closed:
            return
        if self._resting():
            self._retry_later()
            return
        try:
            self._within_time(lambda: self._redis.delete(*due))
        except (*self._errors, RedisTooSlow) as exc:
            self._failed(exc)
            self._retry_later()
            return
        self._answered()
        self.unsent.settled(due)

    def _retry_later(self) -> None:
        """One timer at a time: the drops are sent again once Redis is to be asked again."""
        with self._lock:
            if self._retry is not None or self._closed:
                return
            self._retry = threading.Timer(RETRY_REDIS_AFTER_SECONDS + 0.1, self._retry_now)
            self._retry.daemon = True
            self._retry.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._retry is not None:
                self._retry.cancel()
        self._commands.shutdown(wait=False, cancel_futures=True)
        self._redis.close()

    def _resting(self) -> bool:
        with self._lock:
            return self._resting_until is not None and time.monotonic() < self._resting_until

    def _failed(self, exc: BaseException) -> None:
        observe_cache_failure()
        with self._lock:
            first = self._resting_until is None
            self._resting_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS
        if first:
            log.warning(
                "the patient-data cache (Redis) does not answer (%s); calls query the FHIR server "
                "until it does",
                type(exc).__name__,
            )

    def _answered(self) -> None:
        with self._lock:
            was_down = self._resting_until is not None
            self._resting_until = None
        if was_down:
            log.info("the patient-data cache (Redis) answers again")


class PatientDataCache:
    """Stored query answers by (scope, resource type, exact query), each for `ttl_seconds`."""

    def __init__(self, store: CacheStore, ttl_seconds: float, key_prefix: str, clock: Clock = time.time):
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.key_prefix = key_prefix
        self._clock = clock

    def key(self, scope: CacheScope, resource_type: str, query: str) -> str:
        parts = [FORMAT_VERSION, scope.client, scope.fhir_server, scope.user, scope.patient, scope.credential]
        parts.append(resource_type)
        digest = hashlib.sha256(orjson.dumps([*parts, query])).hexdigest()
        return self.key_prefix + digest

    def lookup(
        self, scope: CacheScope, wanted: Mapping[str, tuple[str, str]], deadline: float
    ) -> dict[str, Answer]:
        """The stored, unexpired answers among `wanted` (name → (resource type, exact query)); none
        when the store could not answer before `deadline` (monotonic seconds)."""
        if deadline - time.monotonic() <= self.store.timeout_seconds:
            return {}
        names = list(wanted)
        keys = [self.key(scope, *wanted[name]) for name in names]
        now = self._clock()
        found: dict[str, Answer] = {}
        for name, value in zip(names, self.store.get_many(keys), strict=True):
            answer = _unexpired(value, now)
            if answer is not None:
                found[name] = answer
        return found

    def keep(
        self, scope: CacheScope, answers: Sequence[tuple[tuple[str, str], Answer]], deadline: float
    ) -> None:
        """Store answers ((resource type, exact query), answer) until the TTL has passed (not
        when the store could not take them before `deadline`)."""
        if not answers or deadline - time.monotonic() <= self.store.timeout_seconds:
            return
        expires_at = self._clock() + self.ttl_seconds
        items = {
            self.key(scope, *query): value
            for query, answer in answers
            if (value := _stored({"expires_at": expires_at, "answer": answer})) is not None
        }
        if items:
            self.store.put_many(items, self.ttl_seconds)

    def forget(self, scope: CacheScope, queries: Sequence[tuple[str, str]]) -> None:
        """Drop the answers of `queries` ((resource type, exact query)), whenever they were kept (with
        Redis: a drop it cannot take is remembered and sent again, see `UnsentDrops`)."""
        keys = [self.key(scope, *query) for query in dict.fromkeys(queries)]
        self.store.drop_many(keys, self.ttl_seconds)


def _stored(value: dict[str, Any]) -> bytes | None:
    """`value` as the store keeps it (orjson, numbers as written); None for an answer orjson cannot
    write (an integer past 64 bits, which the FHIR client keeps exact, or nesting past 255 levels),
    which is then not kept (seldom: the next call asks the server again and reads it as this one
    did), rather than written by `json`'s slower Python writer on every call that stores it."""
    try:
        return orjson.dumps(value, default=as_written)
    except orjson.JSONEncodeError:
        return None


def _unexpired(value: bytes | None, now: float) -> Answer | None:
    if value is None:
        return None
    try:
        stored = loads_exact(value)
    except (ValueError, RecursionError):  # not what this cache wrote: a miss, never an error
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("answer"), dict):
        return None
    expires_at = stored.get("expires_at")
    if not isinstance(expires_at, int | float) or expires_at <= now:
        return None
    answer: Answer = stored["answer"]
    return answer


def open_cache(settings: CacheSettings, clock: Clock = time.time) -> PatientDataCache | None:
    """The cache the settings describe: None when disabled, Redis with `url`, else in memory."""
    if not settings.enabled:
        return None
    store: CacheStore
    if settings.url:
        store = RedisStore(settings.url, settings.timeout_seconds)
    else:
        store = MemoryStore(settings.max_entries, settings.max_bytes, clock)
    return PatientDataCache(store, settings.ttl_seconds, settings.key_prefix, clock)
