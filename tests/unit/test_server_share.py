"""Who may wait on a FHIR server (service/fhir/server_share.py): all but one of a worker's threads;
past that, a call waits for a place for at most `place_wait` seconds from when the share filled, and
is otherwise not sent at all."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

from service.fhir.server_share import NOT_ASKED, Admission, ServerShare, not_asked

SERVER = "https://ehr.example.org"
OTHER = "https://other.example.org"


def occupy(servers: ServerShare, waiting: ExitStack, calls: int = 3, server: str = SERVER) -> list[Admission]:
    """`calls` calls waiting on `server` until `waiting` closes."""
    return [waiting.enter_context(servers.wait_on(server)) for _ in range(calls)]


def timed_admission(servers: ServerShare, server: str | None = SERVER) -> tuple[Admission, float]:
    """A call's admission to `server`, and how long it took; the call ends at once."""
    started = time.monotonic()
    with servers.wait_on(server) as admission:
        return admission, time.monotonic() - started


def test_within_the_share_a_call_asks_at_once() -> None:
    servers = ServerShare(4, place_wait=30.0)
    with ExitStack() as waiting:
        occupy(servers, waiting, 2)
        admission, took = timed_admission(servers)
    assert admission.held_back is None and took < 1.0


def test_past_the_share_a_call_takes_a_place_that_frees_while_it_waits() -> None:
    servers = ServerShare(4, place_wait=30.0)
    with ExitStack() as waiting:
        occupy(servers, waiting, 2)
        last = ExitStack()
        last.enter_context(servers.wait_on(SERVER))
        ending = threading.Timer(0.2, last.close)
        ending.start()
        admission, took = timed_admission(servers)
        ending.join()
    assert admission.held_back is None and 0.1 < took < 10


def test_past_a_share_that_stays_full_the_call_is_not_sent() -> None:
    servers = ServerShare(4, place_wait=0.2)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        admission, took = timed_admission(servers)
        assert admission.held_back == NOT_ASKED and not_asked(admission.held_back)
        assert 0.1 < took < 10
        with servers.wait_on(OTHER) as elsewhere, servers.wait_on(None) as no_server:
            assert elsewhere.held_back is None and no_server.held_back is None


def test_once_the_share_has_been_full_longer_than_the_wait_a_call_is_not_sent_at_once() -> None:
    servers = ServerShare(4, place_wait=1.0)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        time.sleep(1.1)
        admission, took = timed_admission(servers)
    assert admission.held_back == NOT_ASKED and took < 0.5


def test_a_place_taken_by_another_call_meanwhile_does_not_prolong_the_wait() -> None:
    """Places that free and are taken again at once (a freed thread's next call, quicker than the
    waiter to the lock) keep the share full: the waiter still gives up `place_wait` after the
    share filled, not after the latest refill."""
    servers = ServerShare(4, place_wait=0.3)
    stop = threading.Event()

    def churn() -> None:
        while not stop.wait(0.02):
            with servers._changed:  # leave and enter as one step, as a lost race to the lock does
                servers._leave(SERVER)
                servers._enter(SERVER)

    answered: list[tuple[Admission, float]] = []
    with ExitStack() as waiting:
        occupy(servers, waiting)
        churning = threading.Thread(target=churn)
        churning.start()
        waiter = threading.Thread(target=lambda: answered.append(timed_admission(servers)))
        waiter.start()
        waiter.join(timeout=3.0)
        stop.set()
        churning.join()
        waiter.join()
    [(admission, took)] = answered
    assert admission.held_back == NOT_ASKED and took < 1.5, f"waited {took:.2f} s"


def test_a_call_held_back_holds_no_place() -> None:
    servers = ServerShare(2, place_wait=0.05)
    with ExitStack() as waiting:
        occupy(servers, waiting, 1)
        for _ in range(3):
            assert timed_admission(servers)[0].held_back == NOT_ASKED
        assert servers._holding == {SERVER: 1}
    assert not servers._holding and not servers._full_since
    assert timed_admission(servers)[0].held_back is None


def test_without_a_thread_count_every_call_asks() -> None:
    servers = ServerShare(None, place_wait=0.05)
    with ExitStack() as waiting:
        occupy(servers, waiting, 50)
        assert timed_admission(servers)[0].held_back is None
