"""Who may wait on a FHIR server (service/fhir/server_share.py): all but one of a worker's threads
whatever the server does; past that, every call unless the server has left a request unanswered
for `stalled_after` seconds, when the call is not sent at all."""

from __future__ import annotations

from contextlib import ExitStack

from service.fhir.server_share import Admission, ServerShare

SERVER = "https://ehr.example.org"
OTHER = "https://other.example.org"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def share(threads: int | None = 4) -> tuple[ServerShare, Clock]:
    clock = Clock()
    return ServerShare(threads, stalled_after=2.0, clock=clock), clock


def occupy(servers: ServerShare, waiting: ExitStack, calls: int = 3, server: str = SERVER) -> list[Admission]:
    """`calls` calls waiting on `server`, each with a request sent, until `waiting` closes."""
    admitted = [waiting.enter_context(servers.wait_on(server)) for _ in range(calls)]
    for _ in range(calls):
        waiting.enter_context(servers.in_flight(server))
    return admitted


def test_a_server_answering_slowly_is_never_held_back() -> None:
    servers, clock = share(4)
    with ExitStack() as waiting:
        assert all(a.held_back is None for a in occupy(servers, waiting))
        clock.now += 1.9  # every request out for 1.9 s: slow, not stalled
        with servers.wait_on(SERVER) as fourth, servers.wait_on(SERVER) as fifth:
            assert fourth.held_back is None and fifth.held_back is None


def test_past_the_share_a_call_to_a_server_sitting_on_a_request_is_not_sent() -> None:
    servers, clock = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        clock.now += 2.5
        with servers.wait_on(SERVER) as past_the_share:
            assert past_the_share.held_back == (
                "not asked: the FHIR server has left a request unanswered for 2.5 s while 3 calls of "
                "this worker wait on it"
            )
        with servers.wait_on(OTHER) as elsewhere, servers.wait_on(None) as no_server:
            assert elsewhere.held_back is None and no_server.held_back is None
    with servers.wait_on(SERVER) as after:  # the calls and their requests are done
        assert after.held_back is None
    assert not servers._waiting and not servers._requests


def test_within_the_share_a_call_always_asks() -> None:
    servers, clock = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting, 2)
        clock.now += 10
        with servers.wait_on(SERVER) as third:
            assert third.held_back is None


def test_a_call_held_back_does_not_count_as_waiting() -> None:
    servers, clock = share(2)
    with ExitStack() as waiting:
        occupy(servers, waiting, 1)
        clock.now += 3
        for _ in range(3):
            with servers.wait_on(SERVER) as held:
                assert held.held_back is not None and "while 1 call of this worker" in held.held_back
        assert len(servers._waiting[SERVER]) == 1


def test_without_a_thread_count_every_call_asks() -> None:
    servers, clock = share(None)
    with ExitStack() as waiting:
        occupy(servers, waiting, 50)
        clock.now += 10
        with servers.wait_on(SERVER) as admission:
            assert admission.held_back is None
