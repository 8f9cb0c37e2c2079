"""Who may ask a FHIR server (service/fhir/server_share.py): the calls holding a place hold all but
one of a worker's threads, those of one server all but two; a call takes its place when it first
asks, and past a limit it waits, first come first served, for at most `place_wait` seconds from when
the limit was reached and never past its own deadline, and is otherwise not sent at all."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
import responses

from service.fhir.client import FhirClient, FhirError
from service.fhir.server_share import NOT_ASKED, NOT_ASKED_OTHERS, Place, ServerShare, not_asked
from tests.builders import searchset

SERVER = "https://ehr.example.org"
OTHER = "https://other.example.org"
THIRD = "https://third.example.org"


def occupy(servers: ServerShare, holding: ExitStack, calls: int = 2, server: str = SERVER) -> list[Place]:
    """`calls` calls holding a place with `server` until `holding` closes (each place's release)."""
    places = []
    for _ in range(calls):
        place = servers.place(server)
        assert place.take() is None
        holding.callback(place.release)
        places.append(place)
    return places


def timed_take(
    servers: ServerShare, server: str = SERVER, deadline: float | None = None
) -> tuple[str | None, float]:
    """Why a call asking `server` may not (None: it may), and how long that took; the call ends at once."""
    started = time.monotonic()
    place = servers.place(server)
    try:
        return place.take(deadline), time.monotonic() - started
    finally:
        place.release()


class Waiting:
    """A call waiting for its place in another thread: `answer` once it has it or gave up."""

    def __init__(self, servers: ServerShare, server: str = SERVER) -> None:
        self.place = servers.place(server)
        self.answer: list[str | None] = []
        self._thread = threading.Thread(target=lambda: self.answer.append(self.place.take()))
        waiting_before = len(servers._waiting)
        self._thread.start()
        deadline = time.monotonic() + 5
        while len(servers._waiting) == waiting_before and time.monotonic() < deadline:
            time.sleep(0.005)

    def join(self) -> str | None:
        self._thread.join(timeout=10)
        [answer] = self.answer
        return answer


def test_within_the_share_a_call_asks_at_once() -> None:
    servers = ServerShare(4, place_wait=30.0)
    with ExitStack() as holding:
        occupy(servers, holding, 1)
        refusal, took = timed_take(servers)
    assert refusal is None and took < 1.0


def test_past_the_share_a_call_takes_a_place_that_frees_while_it_waits() -> None:
    servers = ServerShare(4, place_wait=30.0)
    with ExitStack() as holding:
        occupy(servers, holding, 1)
        [last] = occupy(servers, ExitStack(), 1)
        ending = threading.Timer(0.2, last.release)
        ending.start()
        refusal, took = timed_take(servers)
        ending.join()
    assert refusal is None and 0.1 < took < 10


def test_past_a_share_that_stays_full_the_call_is_not_sent() -> None:
    servers = ServerShare(4, place_wait=0.2)
    with ExitStack() as holding:
        occupy(servers, holding)
        refusal, took = timed_take(servers)
        assert refusal == NOT_ASKED and not_asked(refusal)
        assert 0.1 < took < 10
        assert timed_take(servers, OTHER)[0] is None


def test_the_servers_together_leave_the_last_thread_to_the_calls_that_ask_none() -> None:
    """Four threads: one server's calls hold at most two places, so a call to another server finds
    one; the servers together hold at most three, so a call to a third server finds none."""
    servers = ServerShare(4, place_wait=0.1)
    with ExitStack() as holding:
        occupy(servers, holding)
        assert timed_take(servers)[0] == NOT_ASKED
        occupy(servers, holding, 1, OTHER)
        assert timed_take(servers, OTHER)[0] == NOT_ASKED_OTHERS
        assert timed_take(servers, THIRD)[0] == NOT_ASKED_OTHERS
        assert timed_take(servers)[0] == NOT_ASKED
        assert servers._held == 3 and not_asked(NOT_ASKED_OTHERS)


def test_a_freed_place_goes_to_the_longest_waiting_call_it_can_serve() -> None:
    """The servers together hold every place they may when a call to SERVER (at its own limit too)
    and then one to THIRD wait: OTHER's place, freed, cannot serve SERVER's call and goes to THIRD's;
    then SERVER's, freed, goes to SERVER's."""
    servers = ServerShare(4, place_wait=30.0)
    first, second = occupy(servers, ExitStack())
    [other] = occupy(servers, ExitStack(), 1, OTHER)
    to_server, to_third = Waiting(servers), Waiting(servers, THIRD)
    other.release()
    assert to_third.join() is None and not to_server.answer
    first.release()
    assert to_server.join() is None
    for place in (second, to_third.place, to_server.place):
        place.release()
    assert not servers._holding and not servers._held and not servers._waiting and not servers._full_since


def test_once_the_share_has_been_full_longer_than_the_wait_a_call_is_not_sent_at_once() -> None:
    servers = ServerShare(4, place_wait=1.0)
    with ExitStack() as holding:
        occupy(servers, holding)
        time.sleep(1.1)
        refusal, took = timed_take(servers)
    assert refusal == NOT_ASKED and took < 0.5


def test_a_call_waits_no_longer_than_its_own_deadline() -> None:
    servers = ServerShare(2, place_wait=30.0)
    with ExitStack() as holding:
        occupy(servers, holding, 1)
        refusal, took = timed_take(servers, deadline=time.monotonic() + 0.2)
    assert refusal == NOT_ASKED and took < 5, f"waited {took:.2f} s"


def test_a_freed_place_goes_to_the_call_waiting_longest() -> None:
    """Even when a newer call reaches the lock before the waiting one wakes: the place is handed
    over as it frees, so the newer call finds the share full."""
    servers = ServerShare(2, place_wait=30.0)
    with ExitStack() as holding:
        [first] = occupy(servers, ExitStack(), 1)
        earlier, later = Waiting(servers), Waiting(servers)
        with servers._changed:
            first.release()
            newer = servers.place(SERVER).take(deadline=time.monotonic())
        assert newer == NOT_ASKED
        assert earlier.join() is None and not later.answer
        earlier.place.release()
        assert later.join() is None
        holding.callback(later.place.release)
    assert not servers._holding and not servers._held and not servers._waiting and not servers._full_since


def test_a_handover_meanwhile_does_not_prolong_the_wait_of_those_behind() -> None:
    """The share is full from when it filled until no one waits: a call still waiting gives up
    `place_wait` after the share filled as it found it, not after a place went to the call ahead."""
    servers = ServerShare(2, place_wait=1.0)
    with ExitStack() as holding:
        [first] = occupy(servers, ExitStack(), 1)
        started = time.monotonic()
        ahead, behind = Waiting(servers), Waiting(servers)
        time.sleep(0.5)
        first.release()
        assert ahead.join() is None
        holding.callback(ahead.place.release)
        assert behind.join() == NOT_ASKED
        took = time.monotonic() - started
    assert took < 1.3, f"waited {took:.2f} s"


def test_a_call_held_back_holds_no_place() -> None:
    servers = ServerShare(2, place_wait=0.05)
    with ExitStack() as holding:
        occupy(servers, holding, 1)
        for _ in range(3):
            assert timed_take(servers)[0] == NOT_ASKED
        assert servers._holding == {SERVER: 1} and not servers._waiting
    assert not servers._holding and not servers._full_since
    assert timed_take(servers)[0] is None


def test_a_place_released_before_it_was_taken_leaves_nothing_held() -> None:
    servers = ServerShare(2, place_wait=0.05)
    place = servers.place(SERVER)
    place.release()
    assert place.take() is None and not servers._holding


def test_without_a_thread_count_every_call_asks() -> None:
    servers = ServerShare(None, place_wait=0.05)
    client = FhirClient(f"{SERVER}/fhir", None, 2.0)
    for _ in range(50):
        with servers.admitted(client):
            assert client.refusal() is None
    assert not servers._holding


@responses.activate
def test_a_call_takes_its_place_when_it_first_asks_and_holds_it_until_it_ends() -> None:
    responses.get(f"{SERVER}/fhir/Condition", json=searchset([]))
    servers = ServerShare(4, place_wait=0.05)
    client = FhirClient(f"{SERVER}/fhir", None, 2.0)
    with servers.admitted(client):
        assert not servers._holding
        client.search("Condition", {})
        client.search("Condition", {})
        assert servers._holding == {SERVER: 1}
    assert not servers._holding
    with servers.admitted(None):
        assert not servers._holding


@responses.activate
def test_a_call_not_let_ask_sends_nothing() -> None:
    responses.get(f"{SERVER}/fhir/Condition", json=searchset([]))
    servers = ServerShare(4, place_wait=0.05)
    client = FhirClient(f"{SERVER}/fhir", None, 2.0)
    with ExitStack() as holding:
        occupy(servers, holding)
        with servers.admitted(client):
            for _ in range(2):
                with pytest.raises(FhirError, match=NOT_ASKED):
                    client.search("Condition", {})
    assert len(responses.calls) == 0 and client.refused == 2
    assert not servers._holding


def test_a_place_taken_for_a_block_is_given_back_when_the_block_fails() -> None:
    """The sandbox's searches take a place for their block (`ServerShare.taken`): one that raises (a
    server that drips past the deadline) gives it back, or the next page load waits the whole
    `place_wait` and is refused (review28b)."""
    servers = ServerShare(3, place_wait=0.2)  # one place a server
    with pytest.raises(RuntimeError), servers.taken("https://ehr.example", time.monotonic() + 5) as reason:
        assert reason is None
        raise RuntimeError("the search failed")
    started = time.monotonic()
    with servers.taken("https://ehr.example", time.monotonic() + 5) as reason:
        assert reason is None and time.monotonic() - started < 0.1
    with servers.taken("https://ehr.example", time.monotonic() + 5) as held:
        assert held is None
        with servers.taken("https://ehr.example", time.monotonic() + 5) as refused:
            assert refused is not None  # the control: the one place is held
    with ServerShare(None, place_wait=0.2).taken("https://ehr.example", time.monotonic()) as unshared:
        assert unshared is None
