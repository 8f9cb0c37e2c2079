"""The patient-data cache's parts: the bounded in-process LRU with expiry, the key (client, FHIR
server, user, patient, exact query — hashed), the `cache` settings section, and the gatherer's
use of it (only successful query answers, never prefetch, never another patient's resource).
The whole path against a real FHIR server and Redis is in tests/integration/test_patient_cache.py."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.fhir.cache import (
    CacheScope,
    MemoryStore,
    PatientDataCache,
    RedisStore,
    UnsentDrops,
    open_cache,
    scope_of,
)
from service.fhir.client import FhirError, SearchResult
from service.fhir.gather import DataGatherer
from service.hooks.models import HookRequest, parse_hook_request
from service.registry import STANDARD_PREFETCH, service_for_hook
from service.settings import CacheSettings, SettingsError, load_settings
from tests.cache_support import HandClock
from tests.support import FHIR_SERVER, TOKEN, RecordingFhirClient, select_body, with_fhir

TODAY = datetime.now(UTC).date()

SCOPE = CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-meets")
ANSWER = {"resources": [{"resourceType": "Condition", "id": "c1"}], "included": [], "pages": 1}
LATER = time.monotonic() + 3600  # a deadline no test reaches


def memory_cache(clock: HandClock, ttl: float = 60.0) -> PatientDataCache:
    return PatientDataCache(MemoryStore(100, 1 << 20, clock), ttl, "test:", clock)


def stored(cache: PatientDataCache) -> list[dict[str, Any]]:
    """Every answer the in-process store holds, as stored."""
    store = cache.store
    assert isinstance(store, MemoryStore)
    return [json.loads(value) for value in store.get_many(store.keys()) if value is not None]


# --------------------------------------------------------------------------- the in-process store


def test_an_answer_is_found_until_its_ttl_has_passed() -> None:
    clock = HandClock()
    cache = memory_cache(clock, ttl=60)
    cache.keep(SCOPE, [(("Condition", "?patient=demo-meets"), ANSWER)], LATER)
    wanted = {"Condition": ("Condition", "?patient=demo-meets")}
    clock.advance(59.9)
    assert cache.lookup(SCOPE, wanted, LATER) == {"Condition": ANSWER}
    clock.advance(0.1)
    assert cache.lookup(SCOPE, wanted, LATER) == {}
    assert stored(cache) == []


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    clock = HandClock()
    store = MemoryStore(max_entries=2, max_bytes=1 << 20, clock=clock)
    store.put_many({"a": b"1", "b": b"2"}, 60)
    assert store.get_many(["a"]) == [b"1"]  # a is now the most recently used
    store.put_many({"c": b"3"}, 60)
    assert store.get_many(["a", "b", "c"]) == [b"1", None, b"3"]


def test_the_byte_bound_holds_and_an_oversized_value_is_not_kept() -> None:
    clock = HandClock()
    store = MemoryStore(max_entries=100, max_bytes=10, clock=clock)
    store.put_many({"a": b"1234", "b": b"5678"}, 60)
    store.put_many({"c": b"abcd"}, 60)
    assert store.size_bytes <= 10 and store.get_many(["a", "b", "c"]) == [None, b"5678", b"abcd"]
    store.put_many({"huge": b"x" * 11}, 60)
    assert store.get_many(["huge", "b", "c"]) == [None, b"5678", b"abcd"]
    store.put_many({"b": b"12"}, 60)  # replaced: counted once
    assert store.size_bytes == 6


def test_concurrent_use_keeps_the_bounds() -> None:
    clock = HandClock()
    store = MemoryStore(max_entries=50, max_bytes=2_000, clock=clock)

    def work(n: int) -> None:
        for i in range(300):
            store.put_many({f"{n}-{i}": b"x" * (i % 40)}, 60)
            store.get_many([f"{n}-{i - 1}", f"{(n + 1) % 4}-{i}"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) <= 50 and store.size_bytes <= 2_000
    assert store.size_bytes == sum(
        len(v) for v in store.get_many([f"{n}-{i}" for n in range(4) for i in range(300)]) if v
    )


# --------------------------------------------------------------------------- the key


@pytest.mark.parametrize(
    "other",
    [
        CacheScope("https://other-ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-meets"),
        CacheScope(
            "https://ehr.example.org", "https://other.example.org/fhir", "Practitioner/1", "demo-meets"
        ),
        CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/2", "demo-meets"),
        CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-other"),
        CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-meets", "another token"),
    ],
)
def test_each_part_of_the_scope_makes_another_key(other: CacheScope) -> None:
    cache = memory_cache(HandClock())
    query = ("Condition", "?patient=demo-meets")
    assert cache.key(SCOPE, *query) == cache.key(SCOPE, *query)
    assert cache.key(SCOPE, *query) != cache.key(other, *query)
    cache.keep(SCOPE, [(query, ANSWER)], LATER)
    assert cache.lookup(other, {"q": query}, LATER) == {}


def test_the_query_is_part_of_the_key_and_the_key_names_no_patient() -> None:
    cache = memory_cache(HandClock())
    key = cache.key(SCOPE, "Condition", "?patient=demo-meets")
    assert key != cache.key(SCOPE, "Condition", "?patient=demo-meets&code=x")
    assert key != cache.key(SCOPE, "Observation", "?patient=demo-meets")
    assert key.startswith("test:") and "demo-meets" not in key and "Practitioner" not in key


def test_no_lookup_when_the_store_could_not_answer_before_the_deadline() -> None:
    clock = HandClock()
    cache = memory_cache(clock)
    query = ("Condition", "?patient=demo-meets")
    cache.keep(SCOPE, [(query, ANSWER)], LATER)
    assert cache.lookup(SCOPE, {"q": query}, time.monotonic() - 1) == {}


@pytest.mark.parametrize("value", [b"not json", b"[" * 5000 + b"]" * 5000, b'{"answer": 1}'])
def test_a_stored_value_this_cache_did_not_write_reads_as_a_miss(value: bytes) -> None:
    """A shared Redis may hold anything under a key: what is not an answer is a miss, never an error."""
    clock = HandClock()
    cache = memory_cache(clock)
    query = ("Condition", "?patient=demo-meets")
    cache.store.put_many({cache.key(SCOPE, *query): value}, 60)
    assert cache.lookup(SCOPE, {"q": query}, LATER) == {}


def request_of(body: dict[str, Any]) -> HookRequest:
    return parse_hook_request(body, service_for_hook(body["hook"]))


def test_the_scope_of_a_call() -> None:
    request = request_of(with_fhir(select_body(), TOKEN, FHIR_SERVER + "/"))
    scope = scope_of(request, "https://ehr.example.org")
    assert scope == CacheScope(
        "https://ehr.example.org",
        FHIR_SERVER,
        "Practitioner/demo-practitioner",
        "demo-meets",
        hashlib.sha256(TOKEN.encode()).hexdigest(),
    )
    assert scope is not None and TOKEN not in repr(scope)
    other_token = request_of(with_fhir(select_body(), TOKEN + "-revoked", FHIR_SERVER))
    assert scope_of(other_token, "https://ehr.example.org") != scope
    assert scope_of(request, None) is None  # an unauthenticated caller is never cached
    assert scope_of(request_of(select_body()), "https://ehr.example.org") is None  # no FHIR server


# --------------------------------------------------------------------------- settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_cache_section(tmp_path: Path) -> None:
    text = (
        "cache:\n  ttl_seconds: 30\n  max_entries: 10\n  url: redis://redis:6379/0\n  timeout_seconds: 0.05\n"
    )
    cache = load_settings(write(tmp_path, text)).cache
    assert cache == CacheSettings(
        ttl_seconds=30.0, max_entries=10, url="redis://redis:6379/0", timeout_seconds=0.05
    )
    assert open_cache(CacheSettings(enabled=False)) is None
    assert isinstance(open_cache(CacheSettings()).store, MemoryStore)  # type: ignore[union-attr]


def test_a_password_in_a_bad_url_is_not_repeated(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, "cache:\n  url: http://user:s3cret@redis:6379\n"))
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


# --------------------------------------------------------------------------- the gatherer's use


class AnsweringClient(RecordingFhirClient):
    """Records every search and read; answers each with one resource of the patient (or another's)."""

    def __init__(self, patient: str = "demo-meets", error: Exception | None = None) -> None:
        super().__init__(error)
        self.patient = patient

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        resource = {"resourceType": resource_type, "id": f"{resource_type}-1"}
        resource["subject" if resource_type != "Coverage" else "beneficiary"] = {
            "reference": f"Patient/{self.patient}"
        }
        return SearchResult([resource], [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        kind, rid = reference.split("/")
        return {"resourceType": kind, "id": rid}


def gather_with(
    cache: PatientDataCache,
    client: RecordingFhirClient,
    body: dict[str, Any],
    scope: CacheScope | None = SCOPE,
    templates: Mapping[str, str] = STANDARD_PREFETCH,
) -> Any:
    request = request_of(with_fhir(body, TOKEN, FHIR_SERVER))
    gatherer = DataGatherer(None, [], cache=cache)
    return gatherer.gather(request, templates, client, LATER, today=TODAY, scope=scope)  # type: ignore[arg-type]


def no_prefetch() -> dict[str, Any]:
    body = select_body()
    del body["prefetch"]
    return body


def test_a_second_gather_reads_everything_from_the_cache() -> None:
    cache = memory_cache(HandClock())
    first = AnsweringClient()
    cold = gather_with(cache, first, no_prefetch())
    assert {call[1][0] for call in first.calls if call[0] == "search"} >= {
        "Coverage",
        "Condition",
        "Observation",
    }
    second = AnsweringClient()
    warm = gather_with(cache, second, no_prefetch())
    assert second.calls == []
    assert warm.resources == cold.resources and warm.unavailable == cold.unavailable == {}


def test_the_coverage_search_includes_its_payers_is_cached_and_no_payer_search_runs() -> None:
    """CRD's `coverage` template includes nothing: the service's own Coverage search includes the
    payers, its answer is kept, and the payers' reverse chain is never run by the service (review s18
    R2-1..R2-3), so the next call of the episode asks the FHIR server nothing either."""
    cache = memory_cache(HandClock())
    templates = service_for_hook("order-sign").prefetch
    first = AnsweringClient()
    gather_with(cache, first, no_prefetch(), templates=templates)
    searches = [call[1] for call in first.calls if call[0] == "search"]
    assert [params for kind, params in searches if kind == "Coverage"] == [
        {"patient": "demo-meets", "status": "active", "_include": "Coverage:payor"}
    ]
    assert not any(kind == "Organization" for kind, _ in searches)
    second = AnsweringClient()
    gather_with(cache, second, no_prefetch(), templates=templates)
    assert second.calls == []


def test_without_a_scope_nothing_is_cached() -> None:
    cache = memory_cache(HandClock())
    gather_with(cache, AnsweringClient(), no_prefetch(), scope=None)
    assert stored(cache) == []


def test_errors_are_never_cached() -> None:
    cache = memory_cache(HandClock())
    failing = AnsweringClient(error=FhirError("the FHIR server did not answer"))
    gather_with(cache, failing, no_prefetch())
    assert stored(cache) == []
    again = AnsweringClient()
    gather_with(cache, again, no_prefetch())
    assert len(again.calls) == len(failing.calls)


def test_prefetch_is_never_stored_and_always_wins() -> None:
    cache = memory_cache(HandClock())
    with_prefetch = select_body()
    gather_with(cache, AnsweringClient(), with_prefetch)  # Patient and Coverage prefetched: not queried
    kept = stored(cache)
    assert kept and not any(
        r["resourceType"] in ("Patient", "Coverage") for s in kept for r in s["answer"]["resources"]
    )
    gather_with(cache, AnsweringClient(), no_prefetch())  # now queried, and cached
    prefetched = select_body()["prefetch"]["coverage"]
    client = AnsweringClient()
    data = gather_with(cache, client, select_body())
    assert client.calls == []
    assert data.coverages == [e["resource"] for e in prefetched["entry"]]


def test_another_patients_resources_are_never_stored() -> None:
    cache = memory_cache(HandClock())
    gather_with(cache, AnsweringClient(patient="someone-else"), no_prefetch())
    kept = stored(cache)
    assert kept and all(
        r["resourceType"] in ("Organization", "Medication", "Patient")
        for s in kept
        for r in s["answer"]["resources"]
    )


# --------------------------------------------------------------------------- a Redis that does not answer


class SilentServer:
    """A loopback TCP server that accepts connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        """Never answer."""

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.socket.close()


class DrippingServer(SilentServer):
    """A Redis that answers every command, one byte every 20 ms: no single read waits long, the
    whole reply (a 500-byte value) takes ten seconds."""

    def serve(self, connection: socket.socket) -> None:
        try:
            connection.recv(65536)
            for byte in b"*1\r\n$500\r\n" + b"x" * 500 + b"\r\n":
                connection.sendall(bytes([byte]))
                time.sleep(0.02)
        except OSError:
            return


def test_a_redis_dripping_its_reply_is_given_up_within_the_caches_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dripping = DrippingServer()
    try:
        store = RedisStore(f"redis://127.0.0.1:{dripping.port}/0", timeout_seconds=0.1)
        with caplog.at_level(logging.WARNING, logger="service.fhir.cache"):
            started = time.monotonic()
            assert store.get_many(["a"]) == [None]
            assert time.monotonic() - started < 1.0
            assert store.get_many(["a"]) == [None]  # left alone a while: not asked again
        assert len(dripping.accepted) == 1
        assert "RedisTooSlow" in caplog.text
        store.close()
    finally:
        dripping.close()


def test_a_hung_redis_reads_as_misses_with_one_warning_and_is_left_alone_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent = SilentServer()
    try:
        store = RedisStore(f"redis://127.0.0.1:{silent.port}/0", timeout_seconds=0.05)
        with caplog.at_level(logging.WARNING, logger="service.fhir.cache"):
            assert store.get_many(["a", "b"]) == [None, None]
            store.put_many({"a": b"1"}, 60)
            assert store.get_many(["a"]) == [None]
        assert len(silent.accepted) == 1  # after the first timeout Redis is not asked again at once
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "TimeoutError" in warnings[0].getMessage()
        store.close()
    finally:
        silent.close()


# --------------------------------------------------------------------------- drops Redis has not taken


def test_an_unsent_drop_hides_its_keys_until_every_value_stored_before_it_has_expired() -> None:
    clock = HandClock()
    unsent = UnsentDrops(clock)
    unsent.add(["a", "b"], 61)
    assert unsent.hides(["a", "b", "c"]) == [True, True, False]
    clock.advance(60)
    assert unsent.hides(["a"]) == [True] and len(unsent) == 2
    clock.advance(1)
    assert unsent.hides(["a", "b"]) == [False, False] and len(unsent) == 0 and unsent.due() == {}


def test_a_settled_drop_is_forgotten_but_one_made_again_since_stays() -> None:
    clock = HandClock()
    unsent = UnsentDrops(clock)
    unsent.add(["a", "b"], 61)
    sent = unsent.due()
    clock.advance(1)
    unsent.add(["b"], 61)  # dropped again while the first DEL was on its way
    unsent.settled(sent)
    assert unsent.hides(["a", "b"]) == [False, True]
    assert list(unsent.due()) == ["b"]


def test_past_its_bound_no_key_is_served_until_the_newest_drop_would_have_expired() -> None:
    clock = HandClock()
    unsent = UnsentDrops(clock, most=2)
    unsent.add(["a", "b", "c"], 61)
    assert len(unsent) == 2  # the memory stays bounded
    assert unsent.hides(["c", "never-dropped"]) == [True, True]
    clock.advance(61)
    assert unsent.hides(["c", "never-dropped"]) == [False, False]


def test_memory_store_drops_at_once() -> None:
    clock = HandClock()
    cache = memory_cache(clock)
    query = ("Condition", "Condition?patient=demo-meets")
    cache.keep(SCOPE, [(query, ANSWER)], LATER)
    cache.forget(SCOPE, [query])
    assert cache.lookup(SCOPE, {"q": query}, LATER) == {}


def test_redis_does_not_serve_a_key_whose_drop_it_has_not_taken(request: pytest.FixtureRequest) -> None:
    """The part of review s17 F-5's fix that holds between the failure and the DEL sent again: the
    value is still in Redis, and this process reads it as a miss."""
    server = request.getfixturevalue("redis_server")
    if not server.running:
        server.restart()
    store = RedisStore(server.url, 2.0)
    try:
        store.put_many({"unit:dropped": b"stale", "unit:kept": b"fresh"}, 60)
        store.unsent.add(["unit:dropped"], 61)
        assert store.get_many(["unit:dropped", "unit:kept"]) == [None, b"fresh"]
        assert server.client().get("unit:dropped") == b"stale"
        store.put_many({"unit:dropped": b"read after the drop"}, 60)  # a SET after the drop settles it
        assert store.get_many(["unit:dropped"]) == [b"read after the drop"] and len(store.unsent) == 0
    finally:
        server.client().delete("unit:dropped", "unit:kept")
        store.close()


def test_drops_redis_does_not_take_wait_on_one_timer_and_none_after_close() -> None:
    silent = SilentServer()
    try:
        store = RedisStore(f"redis://127.0.0.1:{silent.port}/0", timeout_seconds=0.05)
        for n in range(5):  # the first times out, the others meet the store resting
            store.drop_many([f"k{n}"], 60)
        timers = [
            t
            for t in threading.enumerate()
            if isinstance(t, threading.Timer) and getattr(t.function, "__self__", None) is store
        ]
        assert len(timers) == 1 and len(store.unsent) == 5
        assert store.get_many(["k0"]) == [None]
        store.close()
        timers[0].join(1.0)
        assert not timers[0].is_alive()
    finally:
        silent.close()
