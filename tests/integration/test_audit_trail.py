"""The audit trail over real HTTP, on a SQLite file and on a real PostgreSQL server: exactly one
record per call under concurrent load, no token anywhere, each record committed by the time its
answer arrives (read from another connection and from a second process), and 503 when the
database is down."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from service import cli, cutoff
from service.app import create_app
from service.audit_entry import AuditedCall, audit_row, coverage_assertions
from service.caller import anonymous
from service.catalog import Catalog
from service.metrics import READS, metric_data
from service.pipeline import HookOutcome
from service.registry import find_service
from service.settings import AuthSettings, StoreSettings
from service.startup_gc import YOUNG_COLLECTION_THRESHOLD
from service.store.database import open_database
from service.store.replay import ReplayStore
from service.store.tables import audit_records
from tests.audit_support import (
    A_JWT,
    MIXED_SAMPLES,
    hook_instances_stored,
    insert_bare_records,
    metric_problems,
    posted_call,
    right_after_a_refusal,
    secret_call,
    stored_text,
)
from tests.builders import carried_approval
from tests.conformance import COVERAGE_INFO
from tests.postgres_support import PostgresServer
from tests.relay_support import FreezableRelay, connections_to
from tests.support import REQUESTS_DIR, assert_outcome, no_client, open_settings, post_json, serving

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALLS = 50
THREADS = 8


def app_on(url: str, catalog: Catalog) -> Flask:
    return create_app(open_settings(store=StoreSettings(url=url)), catalog, client_factory=no_client)


def test_exactly_one_record_per_call_under_concurrent_load(
    compiled_catalog: Catalog, database_url: str
) -> None:
    calls = [secret_call(MIXED_SAMPLES[i % len(MIXED_SAMPLES)]) for i in range(CALLS)]
    observer = create_engine(database_url)  # a connection pool of its own, as another replica has

    def committed(hook_instance: str) -> int:
        with observer.connect() as connection:
            query = select(func.count()).where(audit_records.c.hook_instance == hook_instance)
            return int(connection.execute(query).scalar_one())

    def send(base: str, path: str, body: dict[str, Any]) -> tuple[requests.Response, int]:
        response = requests.post(base + path, json=body, timeout=60)
        return response, committed(body["hookInstance"])  # at the moment the answer arrives

    with serving(app_on(database_url, compiled_catalog)) as base, ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda c: send(base, c[0], c[1]), calls))
    observer.dispose()

    assert [r.status_code for r, _ in results] == [200] * CALLS
    assert [seen for _, seen in results] == [1] * CALLS  # committed before the answer was sent
    sent = {
        body["hookInstance"]: (body, response.json())
        for (_, body, _), (response, _) in zip(calls, results, strict=True)
    }
    assert sorted(hook_instances_stored(database_url)) == sorted(sent)
    app = app_on(database_url, compiled_catalog)
    for record in app.extensions["idds_crd"].stores.audit.between():
        body, answer = sent[record["hook_instance"]]
        assert record["response"] == answer
        assert record["patient_id"] == body["context"]["patientId"]
        assert record["service_id"] == f"idds-crd-{body['hook']}"
        assert record["request"]["context"] == body["context"]
        assert [metric_problems(m) for m in metric_data(record)] == [[]]
    everything = stored_text(database_url)
    assert not [token for _, _, token in calls if token in everything]
    assert A_JWT not in everything


class HeldTurn:
    """The trail's database, its first transaction held back until `release`: calls arriving
    meanwhile queue for the group commit. Counts the transactions begun."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.begun = 0
        self.first = threading.Event()
        self.released = threading.Event()

    def refusing(self) -> bool:
        return bool(self._database.refusing())

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.begun += 1
        self.first.set()
        self.released.wait(30)
        with self._database.transaction() as connection:
            yield connection


def test_calls_recorded_at_the_same_moment_share_a_transaction_and_each_finds_its_own_record(
    compiled_catalog: Catalog, database_url: str
) -> None:
    app = app_on(database_url, compiled_catalog)
    records = app.extensions["idds_crd"].stores.audit._records
    held = records._database = HeldTurn(records._database)
    calls = [secret_call(MIXED_SAMPLES[i % len(MIXED_SAMPLES)]) for i in range(THREADS)]
    with serving(app) as base, ThreadPoolExecutor(THREADS) as pool:
        first = pool.submit(requests.post, base + calls[0][0], json=calls[0][1], timeout=60)
        assert held.first.wait(30)
        rest = [pool.submit(requests.post, base + path, json=body, timeout=60) for path, body, _ in calls[1:]]
        deadline = time.monotonic() + 30
        while len(records._queue) < THREADS and time.monotonic() < deadline:
            time.sleep(0.005)
        held.released.set()
        answers = [future.result().json() for future in [first, *rest]]
    assert held.begun == 1  # every call in the first transaction
    trail = app.extensions["idds_crd"].stores.audit
    for (_, body, _), answer in zip(calls, answers, strict=True):
        [record] = trail.find(body["hookInstance"])
        assert record["response"] == answer
        for key in [card["uuid"] for card in answer["cards"]] + [
            a["assertion_id"] for a in coverage_assertions(answer)
        ]:
            assert [r["hook_instance"] for r in trail.find(key)] == [body["hookInstance"]]


def test_a_second_process_reads_the_record_when_the_answer_arrives(
    compiled_catalog: Catalog, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  url: {database_url}\n", encoding="utf-8")
    path, body, token = secret_call("order-select-62362-demo-insufficient")
    with serving(app_on(database_url, compiled_catalog)) as base:
        response = requests.post(base + path, json=body, timeout=60)
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "audit",
                "show",
                body["hookInstance"],
                "--config",
                str(config),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert response.status_code == 200
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["response"] == response.json()
    assert token not in shown.stdout


def test_a_database_made_under_the_c_locale_keeps_every_word_as_answered(
    compiled_catalog: Catalog, postgres_server: PostgresServer
) -> None:
    """An SQL_ASCII database (what `initdb` makes under the C locale) opens, and the record of a call
    keeps its non-ASCII words (the cards' "—" and "→") as they were answered."""
    app = app_on(postgres_server.new_database(encoding="SQL_ASCII"), compiled_catalog)
    path, body, _ = secret_call("order-select-62362-demo-meets")
    answer = post_json(app.test_client(), path, body)
    assert answer.status_code == 200
    assert not json.dumps(answer.json["cards"], ensure_ascii=False).isascii()
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    assert record["response"]["cards"] == answer.json["cards"]


def test_what_json_or_a_column_cannot_hold_is_still_recorded(
    compiled_catalog: Catalog, database_url: str
) -> None:
    app = app_on(database_url, compiled_catalog)
    odd = {"x-odd": [float("nan"), float("inf")]}
    path, body, _ = secret_call("order-select-62362-demo-meets")
    body["extension"].update(odd)
    call = AuditedCall(
        find_service("idds-crd-order-select"),  # type: ignore[arg-type]
        body,
        None,
        HookOutcome({"cards": [], "extension": odd}, status=400),
        anonymous(AuthSettings()),
        datetime.now(UTC),
        datetime.now(UTC),
        1.0,
    )
    trail = app.extensions["idds_crd"].stores.audit
    trail.record(audit_row(call, compiled_catalog))
    [record] = trail.find(body["hookInstance"])
    assert (
        record["request"]["extension"]["x-odd"] == record["response"]["extension"]["x-odd"] == ["nan", "inf"]
    )
    refused = {**body, "hookInstance": "h" * 300, "context": {**body["context"], "patientId": "q" * 300}}
    del refused["extension"]["x-odd"]
    assert post_json(app.test_client(), path, refused).status_code == 400
    [record] = trail.find("h" * 300)  # by the id sent, whole (its column holds the first 128 characters)
    assert record["patient_id"] == "q" * 128
    assert record["request"]["hookInstance"] == "h" * 300
    assert trail.find("h" * 128) == []


def test_no_column_keeps_a_token_or_a_jwt_the_body_put_in_ids_or_order_text(
    compiled_catalog: Catalog, database_url: str
) -> None:
    app = app_on(database_url, compiled_catalog)
    path, body, token = secret_call("order-select-62362-demo-meets")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"]["text"] = f"pump {token} {A_JWT}"
    assert post_json(app.test_client(), path, body).status_code == 200
    context = {**body["context"], "patientId": A_JWT, "selections": ["ServiceRequest/not-a-draft"]}
    refused = {**body, "hookInstance": A_JWT, "context": context}
    assert post_json(app.test_client(), path, refused).status_code == 400
    stored = stored_text(database_url)
    assert body["hookInstance"] in stored  # both calls were recorded
    assert token not in stored and A_JWT not in stored


def test_an_earlier_assertion_with_long_ids_sent_back_is_recorded_and_found_by_its_id(
    compiled_catalog: Catalog, database_url: str
) -> None:
    """With two coverages, one already approved elsewhere: the new assertion of the other is issued
    beside the earlier one, which keeps its own ids, of whatever length, and is found by them whole (the
    index holds their first 128 characters; review28e: by those alone it was found, and not by the id)."""
    app = app_on(database_url, compiled_catalog)
    path, body, _ = secret_call("order-select-62362-demo-two-coverages")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    assert len(body["prefetch"]["coverage"]["entry"]) == 2
    long_id, long_pa = "a" * 300, "PA-" + "7" * 300
    order["extension"] = [
        {
            "url": COVERAGE_INFO,
            "extension": [
                {"url": "coverage", "valueReference": {"reference": f"Coverage/{coverage['id']}"}},
                {"url": "covered", "valueCode": "covered"},
                {"url": "pa-needed", "valueCode": "satisfied"},
                {"url": "date", "valueDate": "2026-11-01"},
                {"url": "coverage-assertion-id", "valueString": long_id},
                {"url": "satisfied-pa-id", "valueString": long_pa},
            ],
        }
    ]
    assert post_json(app.test_client(), path, body).status_code == 200
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(long_pa)
    assert record["hook_instance"] == body["hookInstance"]
    assert [record] == trail.find(long_id)
    assert trail.find(long_pa[:128]) == [] == trail.find(long_id[:128])  # no id sent is those alone
    [kept] = [a for a in record["assertions"] if a["assertion_id"] == long_id]
    assert kept["carried"] is True  # the answer kept it; this call did not issue it


def test_a_record_that_cannot_be_written_turns_a_200_into_503_and_keeps_a_refusal(
    compiled_catalog: Catalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unwritable(*_: Any) -> dict[str, Any]:
        raise ValueError("a value JSON cannot hold")

    monkeypatch.setattr("service.audit_call.audit_row", unwritable)
    app = app_on("sqlite://", compiled_catalog)
    path, body, _ = secret_call("order-select-62362-demo-meets")
    issue = assert_outcome(post_json(app.test_client(), path, body), 503, None)
    assert "audit trail unavailable" in issue["diagnostics"]
    assert "cannot write the idds-crd-order-select call's record: ValueError" in caplog.text
    body["context"]["selections"] = ["ServiceRequest/not-a-draft"]
    assert_outcome(post_json(app.test_client(), path, body), 400, "context.selections[0]")


def test_a_database_that_stops_answering_is_given_up_after_the_store_timeout(
    compiled_catalog: Catalog, postgres_url: str
) -> None:
    """The database keeps its connections open and answers nothing (a frozen server, a hung disk, a
    partition): the call is refused 503 and /readyz says so within `store.timeout_seconds`, and
    both recover when it answers again (once `store.retry_after_seconds` is over). Before, both
    waited for as long as the database did."""
    server_port = make_url(postgres_url).port
    with FreezableRelay(server_port) as relay:
        url = make_url(postgres_url).set(port=relay.port).render_as_string(hide_password=False)
        store = StoreSettings(url=url, timeout_seconds=1.0, retry_after_seconds=0.2)
        settings = open_settings(store=store)
        client = create_app(settings, compiled_catalog, client_factory=no_client).test_client()
        assert posted_call(client).status_code == 200
        relay.freeze()
        thawing = threading.Timer(15, relay.thaw)  # so that a service that waits is not waited for ever
        thawing.start()
        try:
            started = time.monotonic()
            refused = posted_call(client)
            refused_after = time.monotonic() - started
            started = time.monotonic()
            readiness = client.get("/readyz")
            readiness_after = time.monotonic() - started
        finally:
            thawing.cancel()
            relay.thaw()
        assert_outcome(refused, 503, None)
        # the timeout and a margin for a loaded machine, not another connect_timeout (2 s) on top
        assert refused_after < 2.5, f"the call waited {refused_after:.1f} s"
        assert readiness.status_code == 503 and readiness_after < 2.5, (
            f"/readyz waited {readiness_after:.1f} s"
        )
        time.sleep(store.retry_after_seconds)
        assert posted_call(client).status_code == 200
        assert client.get("/readyz").status_code == 200


def test_after_the_database_failed_to_answer_it_is_left_alone_for_the_rest_then_tried_again(
    compiled_catalog: Catalog, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage each use would otherwise wait out `store.timeout_seconds`: every call held
    for it before its 503, and a worker's request threads all held, `/healthz` waiting behind them.
    After the first failure the calls and `/readyz` are refused at once for `store.retry_after_seconds`,
    not trying the server: here it answers again at once, and is still not asked until the rest is
    over. Before, the second call reached the thawed server and was answered 200."""
    with FreezableRelay(make_url(postgres_url).port) as relay:
        url = make_url(postgres_url).set(port=relay.port).render_as_string(hide_password=False)
        store = StoreSettings(url=url, timeout_seconds=1.0, retry_after_seconds=3.0)
        client = create_app(
            open_settings(store=store), compiled_catalog, client_factory=no_client
        ).test_client()
        refused, readiness, after = right_after_a_refusal(client, relay.frozen())
        time.sleep(max(0.0, store.retry_after_seconds - after))
        answered = posted_call(client)
    assert after < store.retry_after_seconds, "the machine was too slow for the test to ask within the rest"
    assert_outcome(refused, 503, None)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert sum("cannot record" in e for e in errors) == 1, errors  # not again for each call refused
    assert sum("answering 503" in e for e in errors) == 2, errors
    assert readiness.status_code == 503
    assert answered.status_code == 200 and client.get("/readyz").status_code == 200


def test_uses_of_a_database_that_stopped_answering_leave_no_connection_open(postgres_url: str) -> None:
    """Each use during the outage tries a new connection, which the frozen server never answers and
    libpq gives up. Before, the failed attempt's traceback kept its socket open until a cyclic
    collection (a worker's come seldom, service/startup_gc.py): the attempts piled up in the
    server's queue, 43-59 per worker in a three-minute freeze, and landed on it together."""
    with FreezableRelay(make_url(postgres_url).port) as relay:
        url = make_url(postgres_url).set(port=relay.port).render_as_string(hide_password=False)
        database = open_database(url, timeout=1.0)
        gc.collect()
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
        try:
            relay.freeze()

            def use(_: int) -> None:
                with contextlib.suppress(Exception), database.begin() as connection:
                    connection.execute(text("select 1"))

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(use, range(4)))
            left_open = connections_to(relay.port)
        finally:
            gc.set_threshold(*thresholds)
            relay.thaw()
            database.close()
    assert left_open == 0, f"{left_open} connections to the frozen server left open"


def test_audit_purge_is_not_cut_at_the_store_timeout(postgres_url: str, tmp_path: Path) -> None:
    """`idds-crd audit purge` removes old records `PURGE_BATCH` to a transaction, each of which may
    rightly take longer than one hook call's use of the database. Here another session holds the old
    record's row for 1.5 s against a 0.3 s store timeout. Before, the command was cut like a hook call's use
    (OperationalError, a traceback, nothing purged), so a big enough trail could never be purged."""
    open_database(postgres_url).close()  # the tables
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            insert_bare_records(connection, 1)
        config = tmp_path / "config.yaml"
        config.write_text(json.dumps({"store": {"url": postgres_url, "timeout_seconds": 0.3}}))
        held = threading.Event()

        def hold_the_table() -> None:
            with engine.begin() as connection:
                connection.exec_driver_sql("SELECT id FROM audit_records FOR UPDATE")
                held.set()
                time.sleep(1.5)

        holder = threading.Thread(target=hold_the_table)
        holder.start()
        assert held.wait(10)
        try:
            status = cli.main(
                ["audit", "purge", "--days", "30", "--below-retention", "--config", str(config)]
            )
        finally:
            holder.join()
        with engine.connect() as connection:
            left = connection.execute(select(func.count()).select_from(audit_records)).scalar_one()
    finally:
        engine.dispose()
    assert status == 0 and left == 0


def test_a_use_that_ended_does_not_cut_the_next_use_of_its_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A use's watch fires at its deadline; if its block has handed the connection back to the pool
    but not yet ended its watch (its thread preempted there: widened to 1 s here), the next use of
    that connection must not be cut by it. Before, it was: the next use, well within its own
    timeout, failed with "server closed the connection unexpectedly"."""
    database = open_database(postgres_url, 0.5)
    returned = threading.Event()
    first = threading.current_thread()
    ending = cutoff.Watch.end

    def preempted_end(watch: cutoff.Watch) -> None:
        if threading.current_thread() is not first:
            returned.set()
            time.sleep(1.0)
        ending(watch)

    def earlier_use() -> None:
        with database.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        with database.connect() as connection:  # the pool's one connection so far
            connection.execute(text("SELECT 1"))
        monkeypatch.setattr(cutoff.Watch, "end", preempted_end)
        earlier = threading.Thread(target=earlier_use)
        earlier.start()
        assert returned.wait(5)
        time.sleep(0.2)
        started = time.monotonic()
        with database.connect() as connection:  # the same connection (the pool hands it back)
            connection.execute(text("SELECT pg_sleep(0.45)"))
        assert time.monotonic() - started < 0.5 + 0.4
        earlier.join()
    finally:
        database.close()


def test_with_the_database_down_a_call_is_refused_with_503(
    compiled_catalog: Catalog, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    with PostgresServer() as doomed:
        app = app_on(doomed.new_database(), compiled_catalog)
        path, body, _ = secret_call("order-select-62362-demo-meets")
        assert post_json(app.test_client(), path, body).status_code == 200
        doomed.stop()
        path, body, _ = secret_call("order-select-62362-demo-meets")
        response = post_json(app.test_client(), path, body)
        issue = assert_outcome(response, 503, None)
        assert "audit trail unavailable" in issue["diagnostics"]
        assert "could not be recorded" in caplog.text
        body["context"]["selections"] = ["ServiceRequest/not-a-draft"]
        assert_outcome(post_json(app.test_client(), path, body), 400, "context.selections[0]")


def test_an_error_the_database_server_sends_about_one_use_does_not_leave_it_alone(
    compiled_catalog: Catalog, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server answers, refusing one write (here its lock_timeout, set by the DBA, runs out behind
    another session's lock; a deadlock or a statement_timeout alike): that call is answered 503, and
    the next one, the lock gone, is answered 200 and /readyz 200, with no WARNING that the server
    does not answer. Before, the refusal was taken for a server not answering: every use failed at
    once for `store.retry_after_seconds`."""
    url = make_url(postgres_url).update_query_dict({"options": "-c lock_timeout=300"})
    store = StoreSettings(url=url.render_as_string(hide_password=False), retry_after_seconds=3.0)
    client = create_app(open_settings(store=store), compiled_catalog, client_factory=no_client).test_client()

    @contextlib.contextmanager
    def locked() -> Iterator[None]:
        other = create_engine(postgres_url)
        try:
            with other.begin() as connection:
                connection.execute(text("LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE"))
                yield
        finally:
            other.dispose()

    answered, readiness, after = right_after_a_refusal(client, locked())
    assert after < store.retry_after_seconds, "too slow to ask within the rest"
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert readiness.status_code == 200
    assert not [r.getMessage() for r in caplog.records if r.name == "service.store.outage"]


def test_an_id_holding_a_nul_that_an_order_carries_back_is_recorded_and_found(
    compiled_catalog: Catalog, database_url: str
) -> None:
    """PostgreSQL's text cannot hold U+0000: an order carrying back another system's approval whose PA
    number or assertion id holds one (the EHR sends what it was given) made the record unwritable there,
    so the call was answered 503 "retry", and so was every call about that order (attack28). Indexed,
    the NUL is kept as U+FFFD, on either database, and the record is found by the id as the EHR sent it;
    the request column keeps the id whole."""
    app = app_on(database_url, compiled_catalog)
    number, assertion = "PAS\x00778899", "their\x00assertion"
    body = order_sign_carrying("order-select-62362-demo-two-coverages.json", number, assertion)
    answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    assert trail.find(number) == [record] == trail.find(assertion)
    assert json.dumps(number)[1:-1] in json.dumps(record["request"]), "the request keeps the number whole"


def test_a_token_id_holding_a_nul_is_claimed_once(database_url: str) -> None:
    """A jti holding U+0000 (PostgreSQL's text cannot hold it) is claimed, and refused the second time,
    rather than the claim failing (the call answered 503 "retry", every time)."""
    store = ReplayStore(open_database(database_url))
    assert store.claim("https://ehr.example.org", "jti\x00one", 2_000_000_000, 1)
    assert not store.claim("https://ehr.example.org", "jti\x00one", 2_000_000_000, 1)
    assert store.claim("https://ehr.example.org", "jti\x00two", 2_000_000_000, 1)


def order_sign_carrying(name: str, number: str, assertion: str) -> dict[str, Any]:
    """The demo request `name` as an order-sign (a new hookInstance) whose pump order carries back
    another system's approval of PA `number` under `assertion` for the patient's first Coverage."""
    body = json.loads((REQUESTS_DIR / name).read_text("utf-8"))
    body["hook"], body["hookInstance"] = "order-sign", str(uuid.uuid4())
    body["context"].pop("selections")
    [order] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]["id"]
    order["extension"] = [carried_approval(f"Coverage/{coverage}", number, "2026-11-01", assertion)]
    return body


def test_an_id_differing_from_another_only_in_a_nul_finds_its_own_record_alone(
    compiled_catalog: Catalog, database_url: str
) -> None:
    """A U+0000 is stored as U+FFFD, so two patients' PA numbers or assertion ids differing only there
    are stored alike: looked up by one, the trail gave the other patient's record too (review28b). A
    record is found by the id its call sent, and by no other."""
    app = app_on(database_url, compiled_catalog)
    sent = {
        "demo-two-coverages": ("PAS\x00778899", "their\x00assertion"),
        "demo-meets": ("PAS\ufffd778899", "their\ufffdassertion"),
    }
    for patient, (number, assertion) in sent.items():
        name = f"order-select-62362-{patient}.json"
        body = order_sign_carrying(name, number, assertion)
        assert body["context"]["patientId"] == patient
        answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    for patient, ids in sent.items():
        for key in ids:
            assert [r["patient_id"] for r in trail.find(key)] == [patient], repr(key)


def test_ids_sharing_their_first_128_characters_find_each_its_own_record_alone(
    compiled_catalog: Catalog, database_url: str
) -> None:
    """The index holds an id's first 128 characters (its column's length), so two patients' PA numbers or
    assertion ids sharing those were found together: looked up by those characters, the trail gave both
    patients' records, and by either id whole, none (review28e LOW 6). A record is found by the id its
    call sent, whole, and by no other."""
    app = app_on(database_url, compiled_catalog)
    shared = "7" * 140
    sent = {
        "demo-two-coverages": (f"PA-{shared}-1", f"as-{shared}-1"),
        "demo-meets": (f"PA-{shared}-2", f"as-{shared}-2"),
    }
    for patient, (number, assertion) in sent.items():
        body = order_sign_carrying(f"order-select-62362-{patient}.json", number, assertion)
        answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    for patient, ids in sent.items():
        for key in ids:
            assert [r["patient_id"] for r in trail.find(key)] == [patient], key
            assert trail.find(key[:128]) == [], key[:128]


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(["p" * 130 + "1", "p" * 130 + "2", "p" * 128], id="sharing-the-first-128"),
        pytest.param(["p\x00one", "p\ufffdone"], id="differing-only-in-a-nul"),
    ],
)
def test_patient_ids_stored_alike_find_each_their_own_records_alone(
    compiled_catalog: Catalog, database_url: str, sent: list[str]
) -> None:
    """A refused call's record keeps the patientId it sent, its column the first 128 characters, a U+0000
    stored as U+FFFD, as the other ids are: a patient's records, read whole or for the export, are the
    calls that sent that id whole."""
    app = app_on(database_url, compiled_catalog)
    body = json.loads((REQUESTS_DIR / "order-select-62362-demo-meets.json").read_text("utf-8"))
    for patient in sent:
        refused = {
            **body,
            "hookInstance": str(uuid.uuid4()),
            "context": {**body["context"], "patientId": patient},
        }
        answer = post_json(app.test_client(), "/cds-services/idds-crd-order-select", refused)
        assert answer.status_code == 400, answer.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    for patient in sent:
        whole = [r["request"]["context"]["patientId"] for r in trail.between(patient=patient)]
        exported = list(trail.between(patient=patient, columns=READS))
        assert whole == [patient] and len(exported) == 1, repr(patient)
