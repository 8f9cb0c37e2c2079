"""The patient-data cache between hook calls (issue 12, point 4) against the real FHIR server
(sekmet on loopback, behind a proxy that counts the requests reaching it) and a real Redis:
order-select warms order-sign (no FHIR request at all, the same answer), a miss for another
patient or user, expiry on the cache's clock, no sharing between two trusted EHRs, a chart
changed after expiry read anew, replicas sharing Redis, Redis stopped mid-run read as misses,
a drop Redis could not take (stalled or failing) not served again, and no token anywhere in what is
stored."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError

import service.fhir.cache as cache_module
from service.catalog import Catalog
from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import patient_files, with_fhir_server
from service.fhir.cache import CacheScope, PatientDataCache, RedisStore
from service.settings import CacheSettings
from tests.cache_support import (
    GENERATED,
    CountingProxy,
    Ehr,
    HandClock,
    cache_app,
    cache_settings,
    call,
    counting_proxy,
    sign_after,
    two_ehrs,
    with_context,
)
from tests.integration.conftest import FHIR_TOKEN
from tests.redis_support import RedisServer
from tests.support import load_sample

pytestmark = pytest.mark.integration

TTL = 60.0
INJECTABLE_MISSING = "❔ **B. Oral and injectable forms**"


def _renamed(value: Any, base: str, patient_id: str) -> Any:
    return json.loads(json.dumps(value).replace(base, patient_id))


def _chart(base: str) -> dict[str, Any]:
    path = next(p for p in patient_files() if p.stem == base)
    chart: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return chart


@pytest.fixture(scope="module")
def proxy(fhir_server: LocalFhirServer) -> Iterator[CountingProxy]:
    with counting_proxy(fhir_server.base_url) as counting:
        yield counting


@pytest.fixture(scope="module")
def ehrs() -> tuple[Ehr, Ehr]:
    return two_ehrs()


def _coverage_period(chart: dict[str, Any], period: dict[str, str]) -> dict[str, Any]:
    """The chart with its Coverage's period set to `period`."""
    for entry in chart["entry"]:
        if entry["resource"]["resourceType"] == "Coverage":
            entry["resource"]["period"] = period
    return chart


@pytest.fixture(scope="module")
def charts(fhir_server: LocalFhirServer) -> dict[str, str]:
    """Copies of demo charts under ids of this module's own (chart name → base patient)."""
    copies = {
        "cache-meets-a": "demo-meets",
        "cache-meets-b": "demo-meets",
        "cache-changing": "demo-meets",
        "cache-documenting": "demo-insufficient",
        "cache-documenting-shared": "demo-insufficient",
        "cache-uninsured": "demo-meets",
        "cache-uninsured-select": "demo-meets",
        "cache-ended-select": "demo-meets",
    }
    for patient_id, base in copies.items():
        chart = _renamed(_chart(base), base, patient_id)
        if patient_id.startswith("cache-uninsured"):  # its Coverage is recorded later (a test does)
            chart["entry"] = [e for e in chart["entry"] if e["resource"]["resourceType"] != "Coverage"]
        if patient_id.startswith("cache-ended"):  # its Coverage has ended (a test renews it)
            _coverage_period(chart, {"start": "2020-01-01", "end": "2024-12-31"})
        fhir_server.load(chart)
    return copies


@dataclass
class World:
    """The FHIR server behind its counting proxy, two trusted EHRs, the policies, the cache's clock."""

    proxy: CountingProxy
    first: Ehr
    second: Ehr
    catalog: Catalog
    clock: HandClock

    def app(self, **cache: Any) -> Flask:
        """A deployment trusting both EHRs, with the cache `cache` describes (60 s by default)."""
        settings = cache_settings(
            self.proxy.base_url, (self.first, self.second), CacheSettings(ttl_seconds=TTL, **cache)
        )
        return cache_app(settings, self.catalog, self.clock)

    def select(self, patient_id: str = "cache-meets-a", base: str = "demo-meets") -> dict[str, Any]:
        """An order-select for 62362 with no prefetch (everything is queried), for `patient_id`."""
        body = load_sample(f"order-select-62362-{base}.json")
        del body["prefetch"]
        return with_fhir_server(_renamed(body, base, patient_id), self.proxy.base_url, FHIR_TOKEN)

    def answer(self, app: Flask, body: dict[str, Any], ehr: Ehr | None = None) -> dict[str, Any]:
        response = call(app.test_client(), ehr or self.first, body)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        answer: dict[str, Any] = response.get_json()
        assert answer["cards"]
        return answer

    def queries(self, app: Flask, body: dict[str, Any], ehr: Ehr | None = None) -> int:
        """How many FHIR requests answering `body` made."""
        self.proxy.reset()
        self.answer(app, body, ehr)
        return self.proxy.total


@pytest.fixture
def world(
    proxy: CountingProxy, ehrs: tuple[Ehr, Ehr], charts: dict[str, str], compiled_catalog: Catalog
) -> World:
    return World(proxy, *ehrs, compiled_catalog, HandClock())


def _comparable(answer: dict[str, Any]) -> str:
    return GENERATED.sub("<generated>", json.dumps(answer, sort_keys=True))


def test_order_sign_after_order_select_makes_no_fhir_request_and_gives_the_same_answer(world: World) -> None:
    select = world.select()
    world.proxy.reset()
    alone = world.answer(world.app(enabled=False), sign_after(select))
    queries_of_a_call = world.proxy.total
    assert {"Patient", "Coverage", "Condition", "Observation", "MedicationRequest"} <= set(
        world.proxy.requests
    )

    app = world.app()
    assert world.queries(app, select) == queries_of_a_call  # a miss: every query went to the server
    world.proxy.reset()
    warm = world.answer(app, sign_after(select))
    assert world.proxy.total == 0, world.proxy.requests
    assert _comparable(warm) == _comparable(alone)

    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'idds_crd_cache_hits_total{resource_type="Condition"} 1.0' in metrics
    assert 'idds_crd_cache_misses_total{resource_type="Condition"} 1.0' in metrics


def test_encounter_start_warms_order_sign(world: World) -> None:
    """encounter-start reads the patient's open pump orders from the chart and judges them: the
    same clinical searches, so the order-sign that follows needs none of them again; only its own
    searches of the trials already ordered (`openTrialOrders`, `openTrialDeviceOrders`, which
    encounter-start does not run)."""
    app = world.app()
    encounter = load_sample("encounter-start-demo-meets.json")
    del encounter["prefetch"]
    encounter = with_fhir_server(
        _renamed(encounter, "demo-meets", "cache-meets-b"), world.proxy.base_url, FHIR_TOKEN
    )
    assert world.queries(app, encounter) > 0
    assert "Condition" in world.proxy.requests
    assert world.queries(app, sign_after(world.select("cache-meets-b"))) == 2
    assert dict(world.proxy.requests) == {"ServiceRequest": 1, "DeviceRequest": 1}


def test_another_patient_or_another_user_is_a_miss(world: World) -> None:
    app = world.app()
    queries_of_a_call = world.queries(app, world.select())
    assert world.queries(app, sign_after(world.select("cache-meets-b"))) == queries_of_a_call
    other_user = with_context(world.select(), userId="Practitioner/other")
    assert world.queries(app, sign_after(other_user)) == queries_of_a_call


def test_a_call_with_another_access_token_is_a_miss_and_gets_what_its_token_gets(world: World) -> None:
    """A revoked (or narrower) token is never answered from what the valid token fetched: the FHIR
    server is asked, refuses the token, and the call cannot be answered (412), as without a cache."""
    app = world.app()
    select = world.select()
    queries_of_a_call = world.queries(app, select)
    refused = sign_after(select)
    refused["fhirAuthorization"] = {**refused["fhirAuthorization"], "access_token": "revoked-token"}
    world.proxy.reset()
    response = call(app.test_client(), world.first, refused)
    assert response.status_code == 412, response.get_data(as_text=True)[:300]
    assert queries_of_a_call > 0
    assert {"Patient", "Coverage", "Condition", "Observation"} <= set(world.proxy.requests)


def test_answers_expire_on_the_caches_clock(world: World) -> None:
    app = world.app()
    select = world.select()
    queries_of_a_call = world.queries(app, select)
    world.clock.advance(TTL - 1)
    assert world.queries(app, sign_after(select)) == 0
    world.clock.advance(2)
    assert world.queries(app, sign_after(select)) == queries_of_a_call


def test_two_trusted_ehrs_never_share_what_they_fetched(world: World) -> None:
    app = world.app()
    select = world.select()
    queries_of_a_call = world.queries(app, select, world.first)
    # the same FHIR server, patient and user, another EHR: asked again, then cached for that EHR
    assert world.queries(app, sign_after(select), world.second) == queries_of_a_call
    assert world.queries(app, sign_after(select), world.second) == 0


def _injectable(patient_id: str, **changed: Any) -> dict[str, Any]:
    """demo-meets's stopped injectable morphine order, as `patient_id`'s (with `changed` fields), as a
    transaction Bundle: what documents criterion B (oral and injectable forms)."""
    chart = _renamed(_chart("demo-meets"), "demo-meets", patient_id)
    [entry] = [e for e in chart["entry"] if e["resource"]["id"] == f"{patient_id}-medrx-morphine-inj"]
    return {**chart, "entry": [{**entry, "resource": {**entry["resource"], **changed}}]}


def test_a_chart_changed_after_expiry_gives_the_new_answer(
    world: World, fhir_server: LocalFhirServer
) -> None:
    """A chart whose orders met their policies stays cached: a change within the time is seen once it
    has passed (docs/api.md "Caching between calls")."""
    app = world.app()
    select = world.select("cache-changing")
    before = world.answer(app, select)
    assert INJECTABLE_MISSING not in before["cards"][0]["detail"]

    fhir_server.load(_injectable("cache-changing", status="entered-in-error"))

    within_ttl = world.answer(app, sign_after(select))
    assert INJECTABLE_MISSING not in within_ttl["cards"][0]["detail"]  # the chart as it was a moment ago
    world.clock.advance(TTL + 1)
    after_expiry = world.answer(app, sign_after(select))
    assert INJECTABLE_MISSING in after_expiry["cards"][0]["detail"]


def test_a_call_asking_for_documentation_leaves_nothing_cached_so_what_is_documented_is_read(
    world: World, fhir_server: LocalFhirServer
) -> None:
    """Review s17 ehr M-1: order-select asks for criterion B to be documented, the clinician documents
    it and signs within the minute, and was told to document it again from the cached chart."""
    app = world.app()
    select = world.select("cache-documenting", "demo-insufficient")
    world.proxy.reset()
    before = world.answer(app, select)
    queries_of_a_call = world.proxy.total
    assert INJECTABLE_MISSING in before["cards"][0]["detail"]

    fhir_server.load(_injectable("cache-documenting"))

    world.proxy.reset()
    signed = world.answer(app, sign_after(select))
    assert world.proxy.total == queries_of_a_call  # every query asked again
    assert INJECTABLE_MISSING not in signed["cards"][0]["detail"]
    assert "items to document" in signed["cards"][0]["summary"]  # others are still to document: read again
    assert world.queries(app, sign_after(select)) == queries_of_a_call


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, empty, and running again after the test (a test may stop it)."""
    if not redis_server.running:
        redis_server.restart()
    redis_server.flush()
    yield redis_server
    if not redis_server.running:
        redis_server.restart()


def test_two_replicas_share_the_cache_in_redis(world: World, redis: RedisServer) -> None:
    one, two = world.app(url=redis.url), world.app(url=redis.url)
    select = world.select()
    queries_of_a_call = world.queries(one, select)
    assert queries_of_a_call > 0
    assert world.queries(two, sign_after(select)) == 0
    world.clock.advance(TTL + 1)  # the expiry inside each stored value holds in Redis too
    assert world.queries(two, sign_after(select)) == queries_of_a_call


def test_a_call_refused_for_its_coverage_leaves_nothing_cached_so_the_retry_reads_the_coverage(
    world: World, fhir_server: LocalFhirServer
) -> None:
    """Review s17 F-3: an order-sign refused (400) for want of a Coverage kept the empty Coverage search
    in the cache, and the EHR's retry once the registrar recorded the Coverage was refused from it."""
    app = world.app()
    sign = sign_after(world.select("cache-uninsured"))
    response = call(app.test_client(), world.first, sign)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    chart = _renamed(_chart("demo-meets"), "demo-meets", "cache-uninsured")
    fhir_server.load(
        {**chart, "entry": [e for e in chart["entry"] if e["resource"]["resourceType"] == "Coverage"]}
    )
    world.proxy.reset()
    retried = call(app.test_client(), world.first, sign)
    assert retried.status_code == 200, retried.get_data(as_text=True)[:300]
    assert "Coverage" in world.proxy.requests


def test_an_order_select_finding_no_coverage_leaves_nothing_cached_for_the_order_sign(
    world: World, fhir_server: LocalFhirServer
) -> None:
    """Review s17 review2 N-2: order-select's "No active coverage found" card left the empty Coverage
    search cached, and the order-sign after the registrar recorded the Coverage was refused from it."""
    app = world.app()
    select = world.select("cache-uninsured-select")
    notice = world.answer(app, select)
    assert notice["cards"][0]["summary"].startswith("No active coverage found")
    chart = _renamed(_chart("demo-meets"), "demo-meets", "cache-uninsured-select")
    fhir_server.load(
        {**chart, "entry": [e for e in chart["entry"] if e["resource"]["resourceType"] == "Coverage"]}
    )
    signed = call(app.test_client(), world.first, sign_after(select))
    assert signed.status_code == 200, signed.get_data(as_text=True)[:300]


def test_an_order_select_finding_the_coverage_ended_leaves_nothing_cached_for_the_order_sign(
    world: World, fhir_server: LocalFhirServer
) -> None:
    """Inferno review s18 K-1: a call whose one Coverage is not active is answered not covered; the
    registrar then records the renewed Coverage, and the order-sign reads it again rather than being
    answered not covered from the cached Coverage search."""
    app = world.app()
    select = world.select("cache-ended-select")
    notice = world.answer(app, select)
    assert (
        notice["cards"][0]["summary"]
        == "GEHA: coverage not active (ended 2024-12-31); no coverage information"
    )
    chart = _coverage_period(
        _renamed(_chart("demo-meets"), "demo-meets", "cache-ended-select"), {"start": "2020-01-01"}
    )
    fhir_server.load(
        {**chart, "entry": [e for e in chart["entry"] if e["resource"]["resourceType"] == "Coverage"]}
    )
    world.proxy.reset()
    signed = world.answer(app, sign_after(select))
    assert "Coverage" in world.proxy.requests
    covered = {
        e["valueCode"]
        for a in signed["systemActions"]
        for x in a["resource"]["extension"]
        for e in x.get("extension", [])
        if e["url"] == "covered"
    }
    assert covered and "not-covered" not in covered


def test_a_replica_asking_for_documentation_drops_what_it_read_from_the_shared_redis(
    world: World, redis: RedisServer
) -> None:
    one, two = world.app(url=redis.url), world.app(url=redis.url)
    select = world.select("cache-documenting-shared", "demo-insufficient")
    queries_of_a_call = world.queries(one, select)
    assert queries_of_a_call > 0 and redis.client().keys("*") == []
    assert world.queries(two, sign_after(select)) == queries_of_a_call


def test_redis_stopped_mid_run_reads_as_misses_with_one_warning(
    world: World, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = world.app(url=redis.url)
    select = world.select()
    world.proxy.reset()
    cold = world.answer(app, select)
    queries_of_a_call = world.proxy.total
    redis.stop()
    with caplog.at_level(logging.WARNING, logger="service.fhir.cache"):
        for _ in range(2):
            world.proxy.reset()
            answer = world.answer(app, select)
            assert world.proxy.total == queries_of_a_call
            assert _comparable(answer) == _comparable(cold)
    warnings = [r for r in caplog.records if r.name == "service.fhir.cache" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "does not answer" in warnings[0].getMessage()
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert "idds_crd_cache_failures_total 1.0" in metrics


HICCUP_SCOPE = CacheScope("https://ehr.example.org", "http://ehr.example.org/fhir", "Practitioner/1", "p1")
PROCEDURES = ("Procedure", "Procedure?patient=p1")
WANTED = {"procedures": PROCEDURES}
AT_SELECT = {"resources": [], "as": "the chart at order-select"}


def _later() -> float:
    return time.monotonic() + 30


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _resting_lookup(cache: PatientDataCache, redis: RedisServer) -> None:
    """A lookup that times out on the stalled Redis: the store then rests (asks Redis nothing)."""
    with redis.paused():
        assert cache.lookup(HICCUP_SCOPE, WANTED, _later()) == {}


def _failing_del(cache: PatientDataCache, redis: RedisServer) -> None:
    """The DEL itself fails once (a dropped connection), Redis answering everything else."""
    store = cache.store
    assert isinstance(store, RedisStore)
    sent = store._redis.delete

    def fails_once(*keys: str) -> int:
        store._redis.delete = sent  # type: ignore[method-assign]
        raise RedisConnectionError("connection reset")

    store._redis.delete = fails_once  # type: ignore[method-assign]


@pytest.mark.parametrize("hiccup", [_resting_lookup, _failing_del], ids=["store-resting", "del-failed"])
def test_a_drop_redis_could_not_take_is_not_lost(
    redis: RedisServer,
    hiccup: Callable[[PatientDataCache, RedisServer], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review s17 F-5: a forget during a Redis hiccup (the store resting after a timeout, or the DEL
    failing) was skipped silently, and the order-sign after the clinician documented was answered from
    the chart order-select had seen once Redis answered again. Now the replica that dropped serves none
    of it, and sends the DEL again until Redis takes it; then no replica is served it."""
    # Redis is asked again 0.5 s after a failure (not 5 s), and a command waits up to 1 s in all
    monkeypatch.setattr(cache_module, "RETRY_REDIS_AFTER_SECONDS", 0.5)
    one = PatientDataCache(RedisStore(redis.url, timeout_seconds=0.5), TTL, "hiccup:")
    two = PatientDataCache(RedisStore(redis.url, timeout_seconds=0.5), TTL, "hiccup:")  # another replica
    try:
        one.keep(HICCUP_SCOPE, [(PROCEDURES, AT_SELECT)], _later())
        key = one.key(HICCUP_SCOPE, *PROCEDURES)
        assert one.lookup(HICCUP_SCOPE, WANTED, _later()) == {"procedures": AT_SELECT}
        hiccup(one, redis)
        one.forget(HICCUP_SCOPE, [PROCEDURES])  # the order-select's answer asks to document something
        assert redis.client().exists(key) == 1  # Redis could not take the drop
        time.sleep(0.6)  # the order-sign comes once Redis is asked again, well within the TTL
        assert one.lookup(HICCUP_SCOPE, WANTED, _later()) == {}
        assert _until(lambda: redis.client().exists(key) == 0)  # the DEL is sent again, and taken
        assert two.lookup(HICCUP_SCOPE, WANTED, _later()) == {}
        fresh = {"resources": [{"resourceType": "Procedure", "id": "trial"}]}
        one.keep(HICCUP_SCOPE, [(PROCEDURES, fresh)], _later())  # the chart read after the drop
        assert one.lookup(HICCUP_SCOPE, WANTED, _later()) == {"procedures": fresh}
        assert two.lookup(HICCUP_SCOPE, WANTED, _later()) == {"procedures": fresh}
    finally:
        for cache in (one, two):
            assert isinstance(cache.store, RedisStore)
            cache.store.close()


def test_no_token_and_no_patient_id_in_any_stored_key_or_value(world: World, redis: RedisServer) -> None:
    app = world.app(url=redis.url)
    url = "/cds-services/idds-crd-order-select"
    headers = world.first.headers(url)
    response = app.test_client().post(url, json=world.select(), headers=headers)
    assert response.status_code == 200
    jwt = headers["Authorization"].removeprefix("Bearer ")
    store = redis.client()
    keys = store.keys("*")
    assert keys and all(key.startswith(b"idds-crd:patient-data:") for key in keys)
    for key in keys:
        value = store.get(key)
        assert value is not None
        for secret in (FHIR_TOKEN.encode(), jwt.encode(), b"Bearer", b"access_token", b"Authorization"):
            assert secret not in key and secret not in value
        assert b"cache-meets-a" not in key
        assert 0 < store.ttl(key) <= TTL
