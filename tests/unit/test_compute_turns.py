"""One call computes at a time in a process (service/compute_turns.py): what the turn keeps out, what
setting it aside lets in, that no call waits for it long (and that one that stops waiting is counted),
and where a hook call holds it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import service.pipeline
from service.app import create_app
from service.compute_turns import ComputeTurns
from tests.builders import catalog
from tests.observability_support import scrape, value
from tests.support import REQUESTS_DIR, SELECT_URL, no_client, open_settings, post_json, select_body

LONG = 30.0  # seconds: a turn no test gives up waiting for
HANG_GUARD = 10.0  # seconds: reached only when a thread that should get on is stuck


def in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def holding(turns: ComputeTurns, then: Callable[[bool], None]) -> Callable[[], None]:
    """Work for a thread: take the turn, and tell `then` whether it was had."""

    def work() -> None:
        with turns.held():
            then(turns.holds())

    return work


def test_a_held_turn_keeps_every_other_call_out_until_it_ends() -> None:
    turns = ComputeTurns(wait_seconds=LONG)
    entered = threading.Event()
    with turns.held():
        in_thread(holding(turns, lambda _: entered.set()))
        assert not entered.wait(0.2)
    assert entered.wait(HANG_GUARD)


def test_a_turn_set_aside_lets_another_call_in_and_is_taken_back() -> None:
    turns = ComputeTurns(wait_seconds=LONG)
    other_done, taken_after = threading.Event(), threading.Event()
    with turns.held():
        with turns.set_aside():
            assert not turns.holds()
            in_thread(holding(turns, lambda _: other_done.set()))
            assert other_done.wait(HANG_GUARD)
        assert turns.holds()
        in_thread(holding(turns, lambda _: taken_after.set()))
        assert not taken_after.wait(0.2), "the turn was not taken back after being set aside"
    assert taken_after.wait(HANG_GUARD)


def test_a_call_that_waits_too_long_goes_on_without_the_turn() -> None:
    turns = ComputeTurns(wait_seconds=0.05)
    had: list[bool] = []

    def without_the_turn() -> None:
        with turns.held():
            had.append(turns.holds())
            with turns.set_aside():  # nothing to set aside: the block runs as it is
                had.append(turns.holds())
            had.append(turns.holds())

    with turns.held():
        in_thread(without_the_turn).join(HANG_GUARD)
        assert had == [False, False, False]
        assert turns.holds() and turns._lock.locked()  # and the turn is still this thread's
    assert not turns._lock.locked()


def test_a_turn_not_had_back_after_setting_it_aside_is_not_given_back_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turns = ComputeTurns(wait_seconds=0.05)
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda failure: failures.append(failure.exc_value))
    release = threading.Event()
    with turns.held():
        with turns.set_aside():
            other = in_thread(holding(turns, lambda _: release.wait(HANG_GUARD)))
            while not turns._lock.locked():  # until the other thread has it
                threading.Event().wait(0.01)
        assert not turns.holds()  # not had back in time: the block goes on without it
    assert turns._lock.locked(), "leaving the block gave back the turn the other thread holds"
    release.set()
    other.join(HANG_GUARD)
    assert failures == [] and not turns._lock.locked()


def test_held_is_reentrant_and_set_aside_without_the_turn_changes_nothing() -> None:
    turns = ComputeTurns(wait_seconds=LONG)
    with turns.set_aside():
        assert not turns.holds()
    with turns.held():
        with turns.held():
            assert turns.holds()
        assert turns.holds()
    assert not turns.holds()
    assert not turns._lock.locked()


def test_a_failure_while_set_aside_leaves_the_turn_free() -> None:
    turns = ComputeTurns(wait_seconds=LONG)
    with pytest.raises(RuntimeError), turns.held(), turns.set_aside():
        raise RuntimeError("the FHIR server went away")
    assert not turns.holds() and not turns._lock.locked()


def test_a_hook_call_computes_and_records_with_the_turn_and_gathers_without_it(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = app.extensions["idds_crd"]
    turns = state.environment.turns
    seen: dict[str, bool] = {}

    def noting(name: str, work: Callable[..., Any]) -> Callable[..., Any]:
        def noted(*args: Any, **kwargs: Any) -> Any:
            seen[name] = turns.holds()
            return work(*args, **kwargs)

        return noted

    monkeypatch.setattr(service.pipeline, "gather", noting("gather", service.pipeline.gather))
    monkeypatch.setattr(service.pipeline, "decide", noting("decide", service.pipeline.decide))
    monkeypatch.setattr(state.stores.audit, "record", noting("audit write", state.stores.audit.record))
    body = json.loads((REQUESTS_DIR / "order-sign-implant-demo-meets.json").read_text(encoding="utf-8"))
    answer = client.post("/cds-services/idds-crd-order-sign", json=body)
    assert answer.status_code == 200
    assert seen == {"gather": False, "decide": True, "audit write": True}
    assert not turns.holds() and not turns._lock.locked()


def test_a_call_that_goes_on_without_the_turn_is_counted_in_metrics() -> None:
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    turns = app.extensions["idds_crd"].environment.turns
    turns.wait_seconds = 0.05
    client = app.test_client()
    assert post_json(client, SELECT_URL, select_body()).status_code == 200
    assert value(scrape(app), "idds_crd_compute_turn_missed_total") == 0
    release = threading.Event()
    holder = in_thread(holding(turns, lambda _: release.wait(HANG_GUARD)))
    while not turns._lock.locked():
        threading.Event().wait(0.01)
    assert post_json(client, SELECT_URL, select_body()).status_code == 200  # answered all the same
    release.set()
    holder.join(HANG_GUARD)
    assert value(scrape(app), "idds_crd_compute_turn_missed_total") == 1  # without it, none to take back
