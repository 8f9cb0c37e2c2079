"""Who may wait on a FHIR server (service/fhir/server_share.py): all but one of a worker's threads
with the whole deadline, past that a short wait, and none once the server has kept calls waiting."""

from __future__ import annotations

from contextlib import ExitStack

from service.fhir.server_share import Admission, ServerShare

SERVER = "https://ehr.example.org"
OTHER = "https://other.example.org"
DEADLINE = 103.5


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def share(threads: int | None = 4) -> tuple[ServerShare, Clock]:
    clock = Clock()
    return ServerShare(threads, stalled_after=1.0, clock=clock), clock


def occupy(servers: ServerShare, waiting: ExitStack, calls: int = 3) -> list[Admission]:
    """`calls` calls waiting on SERVER until `waiting` closes."""
    return [waiting.enter_context(servers.wait_on(SERVER, DEADLINE)) for _ in range(calls)]


def test_all_but_one_thread_wait_with_the_whole_deadline() -> None:
    servers, _ = share(4)
    with ExitStack() as waiting:
        admitted = occupy(servers, waiting)
        assert [a.deadline for a in admitted] == [DEADLINE] * 3
        assert all(a.held_back is None for a in admitted)
        with servers.wait_on(SERVER, DEADLINE) as fourth:
            assert fourth.held_back is None
            assert fourth.deadline == 101.0  # a server answering as servers do is not held back


def test_once_a_call_has_waited_too_long_the_calls_past_the_cap_do_not_ask() -> None:
    servers, clock = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        clock.now += 1.2
        with servers.wait_on(SERVER, DEADLINE) as past_the_cap:
            assert (
                past_the_cap.held_back
                == "not asked: the FHIR server has kept 3 other calls waiting for 1.2 s"
            )
        with servers.wait_on(OTHER, DEADLINE) as elsewhere:
            assert elsewhere == type(elsewhere)(DEADLINE)
        with servers.wait_on(None, DEADLINE) as no_server:
            assert no_server.held_back is None
    with servers.wait_on(SERVER, DEADLINE) as after:  # the three are done: the server is free again
        assert after.held_back is None and after.deadline == DEADLINE


def test_a_call_held_back_does_not_count_as_waiting() -> None:
    servers, clock = share(2)
    with servers.wait_on(SERVER, DEADLINE):
        clock.now += 2
        for _ in range(3):
            with servers.wait_on(SERVER, DEADLINE) as held:
                assert held.held_back is not None
                assert "kept 1 other call waiting" in held.held_back
    assert not servers._waiting


def test_without_a_thread_count_every_call_waits_its_deadline() -> None:
    servers, clock = share(None)
    with ExitStack() as waiting:
        occupy(servers, waiting, 50)
        clock.now += 10
        with servers.wait_on(SERVER, DEADLINE) as admission:
            assert admission.deadline == DEADLINE and admission.held_back is None


def test_one_thread_is_never_held_back() -> None:
    servers, clock = share(1)
    with servers.wait_on(SERVER, DEADLINE) as alone:
        assert alone.deadline == DEADLINE
    clock.now += 5
    with servers.wait_on(SERVER, DEADLINE) as next_one:
        assert next_one.held_back is None and next_one.deadline == DEADLINE


def test_a_server_still_answering_is_not_cut_short_however_long_its_calls_wait() -> None:
    """Slow or busy but answering is not failing: past the cap, a call waits its whole deadline."""
    servers, clock = share(4)
    with ExitStack() as waiting:
        occupy(servers, waiting)
        clock.now += 2.5
        servers.heard(SERVER)
        clock.now += 0.9
        with servers.wait_on(SERVER, DEADLINE) as past_the_cap:
            assert past_the_cap.held_back is None and past_the_cap.deadline == DEADLINE
        clock.now += 0.2  # silent for 1.1 s now
        with servers.wait_on(SERVER, DEADLINE) as later:
            assert later.held_back == "not asked: the FHIR server has kept 3 other calls waiting for 3.6 s"
        servers.heard(OTHER)
        with servers.wait_on(SERVER, DEADLINE) as still:
            assert still.held_back is not None, "another server's answer says nothing of this one"
