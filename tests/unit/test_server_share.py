"""Who may wait on a FHIR server (service/fhir/server_share.py): all but one of a worker's threads
whatever the server does; past that, only while the server is known to keep time (the latest call
that asked it had every answer before its deadline) and has left no request unanswered for
`stalled_after` seconds; otherwise the call is not sent at all."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from service.fhir.client import TOO_LARGE, FhirError
from service.fhir.outbound import NO_ANSWER
from service.fhir.server_share import Admission, ServerShare

SERVER = "https://ehr.example.org"
OTHER = "https://other.example.org"
PAST_THE_SHARE = "not asked: 3 calls of this worker already wait on the FHIR server, which "
NOT_YET = PAST_THE_SHARE + "has not yet answered one in time"
LATE = PAST_THE_SHARE + "did not answer the last one in time"


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
    for admission in admitted:
        waiting.enter_context(servers.in_flight(server, admission))
    return admitted


def one_call(servers: ServerShare, clock: Clock, seconds: float, deadline: float = 3.5) -> Admission:
    """One call alone on SERVER that asks it once and is answered after `seconds`."""
    with servers.wait_on(SERVER, clock.now + deadline) as admission, servers.in_flight(SERVER, admission):
        clock.now += seconds
    return admission


def test_within_the_share_a_call_always_asks() -> None:
    servers, clock = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting, 2)
        clock.now += 10
        with servers.wait_on(SERVER) as third:
            assert third.held_back is None


def test_past_the_share_a_server_not_yet_heard_in_time_is_not_asked() -> None:
    servers, _ = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        with servers.wait_on(SERVER) as past_the_share:
            assert past_the_share.held_back == NOT_YET
        with servers.wait_on(OTHER) as elsewhere, servers.wait_on(None) as no_server:
            assert elsewhere.held_back is None and no_server.held_back is None


def test_a_server_that_kept_time_for_the_last_call_is_asked_however_slow() -> None:
    servers, clock = share(4)
    assert one_call(servers, clock, 1.9).held_back is None
    with ExitStack() as waiting:
        occupy(servers, waiting)
        clock.now += 1.9  # every request out for 1.9 s: slow, not stalled
        with servers.wait_on(SERVER) as fourth, servers.wait_on(SERVER) as fifth:
            assert fourth.held_back is None and fifth.held_back is None


def test_a_call_that_ran_out_of_time_holds_the_calls_past_the_share_back_until_one_keeps_time() -> None:
    servers, clock = share(4)
    one_call(servers, clock, 0.1)
    one_call(servers, clock, 4.0)  # its deadline was 3.5 s
    with ExitStack() as waiting:
        occupy(servers, waiting)
        with servers.wait_on(SERVER) as past_the_share:
            assert past_the_share.held_back == LATE
    one_call(servers, clock, 0.1)  # within the share, and in time
    with ExitStack() as waiting:
        occupy(servers, waiting)
        with servers.wait_on(SERVER) as past_the_share:
            assert past_the_share.held_back is None


@pytest.mark.parametrize(("reason", "kept_time"), [(NO_ANSWER, False), (TOO_LARGE, True)])
def test_a_request_left_without_an_answer_is_not_keeping_time(reason: str, kept_time: bool) -> None:
    servers, clock = share(4)
    with (
        servers.wait_on(SERVER, clock.now + 3.5) as admission,
        pytest.raises(FhirError),
        servers.in_flight(SERVER, admission),
    ):
        clock.now += 0.5
        raise FhirError(reason)
    assert admission.unanswered is not kept_time
    with ExitStack() as waiting:
        occupy(servers, waiting)
        with servers.wait_on(SERVER) as past_the_share:
            assert (past_the_share.held_back is None) is kept_time


def test_a_call_that_asked_nothing_or_was_held_back_tells_nothing_of_the_server() -> None:
    servers, clock = share(4)
    one_call(servers, clock, 4.0)
    with servers.wait_on(SERVER, clock.now + 3.5):
        pass  # answered from the prefetch
    with ExitStack() as waiting:
        occupy(servers, waiting)
        with servers.wait_on(SERVER, clock.now + 3.5) as held:
            assert held.held_back == LATE
        with servers.wait_on(SERVER) as again:
            assert again.held_back == LATE


def test_past_the_share_a_call_to_a_server_sitting_on_a_request_is_not_sent() -> None:
    servers, clock = share(4)
    one_call(servers, clock, 0.1)  # it kept time before
    with ExitStack() as waiting:
        occupy(servers, waiting)
        clock.now += 2.5
        with servers.wait_on(SERVER) as past_the_share:
            assert past_the_share.held_back == (
                "not asked: the FHIR server has left a request unanswered for 2.5 s while 3 calls of "
                "this worker wait on it"
            )
    with servers.wait_on(SERVER) as after:  # the calls and their requests are done
        assert after.held_back is None
    assert not servers._waiting and not servers._requests


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
