"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering, or answers so slowly that calls hold their threads for seconds, would hold every thread
of a worker, and a call that needs no FHIR request at all, or names another server, would queue
behind them. So, per worker process and per FHIR server (origin), the calls asking the server
share all but one of the worker's threads (`cap`), and the last is left to the other callers:

- a call takes its place when it first asks the server, not before: one answered from its
  prefetch or the patient-data cache never enters the share and never waits for it;
- while fewer than `cap` calls hold a place, a call takes one at once and keeps it until it ends;
- past that, it waits for a place, in the order the calls came: a place that frees goes to the
  call that has waited longest. It waits at most `place_wait` seconds, counted from when the share
  last filled, and never past its own deadline. If no place comes, it does not ask the server at
  all: what it needed from there is reported "not asked", and the call is answered at once.

A server that answers a call in less than `place_wait` frees places as fast as they are needed, so
its calls are all asked however many come at once; one whose calls hold the share longer than that
gets the share and no more, whatever its history. A call waits at most `place_wait`, so the other
callers wait about that long behind one. Nothing is remembered between calls but who holds the
share now and who waits for it.

Without a thread count (the development server, a test client, another WSGI server) every call
asks.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.fhir.client import FhirClient

NOT_ASKED = "not asked: the EHR's FHIR server was still answering this service's other requests"


def not_asked(reason: str) -> bool:
    """Whether a FHIR failure's `reason` is that the call was not let ask the server at all."""
    return reason.startswith(NOT_ASKED)


class _Waiter:
    """A call waiting for a place in a full share; `given` once a leaving call hands it theirs."""

    __slots__ = ("given",)

    def __init__(self) -> None:
        self.given = False


class Place:
    """One call's place in its server's share: taken when the call first asks the server (`take`),
    given back when the call ends (`release`)."""

    def __init__(self, share: ServerShare, server: str) -> None:
        self._share = share
        self._server = server
        self._lock = threading.Lock()
        self._outcome: tuple[str | None] | None = None  # (None,): holding a place; (reason,): held back
        self._released = False

    def take(self, deadline: float | None = None) -> str | None:
        """None when the call may ask its server, else why not; the first call of it waits for the
        place (never past `deadline`, a time.monotonic() instant), the others get the same answer.
        Once released, the call asks without a place: only a request left over from it can come."""
        outcome = self._outcome
        if outcome is None:
            with self._lock:
                if self._released:
                    return None
                if self._outcome is None:
                    self._outcome = (self._share._enter(self._server, deadline),)
                outcome = self._outcome
        return outcome[0]

    def release(self) -> None:
        with self._lock:
            self._released = True
            if self._outcome == (None,):
                self._share._leave(self._server)


class ServerShare:
    """The calls of one worker process holding a place with each FHIR server, and who waits for one."""

    def __init__(self, request_threads: int | None, place_wait: float) -> None:
        self.cap = None if request_threads is None else max(1, request_threads - 1)
        self.place_wait = place_wait
        self._holding: dict[str, int] = {}  # by server: the calls holding a place
        self._waiting: dict[str, deque[_Waiter]] = {}  # by server: the calls waiting, first come first
        self._full_since: dict[str, float] = {}  # by server whose share is full: since when
        self._changed = threading.Condition()

    def place(self, server: str) -> Place:
        """A call's place with `server`, not yet taken."""
        return Place(self, server)

    @contextmanager
    def admitted(self, client: FhirClient | None) -> Iterator[None]:
        """A call's FHIR `client` (None: it has none) taking its place with its server when it first
        asks, until the call ends; a client that is not let ask fails each request with the reason."""
        if self.cap is None or client is None or client.origin is None:
            yield
            return
        place = self.place(str(client.origin))
        client.ask_through(place.take)
        try:
            yield
        finally:
            place.release()

    def _enter(self, server: str, deadline: float | None) -> str | None:
        """A place in the server's share (None), or NOT_ASKED once `place_wait` has passed since the
        share filled (as it was when the call came: a refill meanwhile does not prolong the wait)
        or the call's `deadline` has."""
        assert self.cap is not None
        with self._changed:
            holding = self._holding.get(server, 0)
            if holding < self.cap:
                self._holding[server] = holding + 1
                if holding + 1 >= self.cap:
                    self._full_since[server] = time.monotonic()
                return None
            give_up = min(
                self._full_since[server] + self.place_wait, math.inf if deadline is None else deadline
            )
            waiter = _Waiter()
            queue = self._waiting.setdefault(server, deque())
            queue.append(waiter)
            while not waiter.given:
                left = give_up - time.monotonic()
                if left <= 0:
                    queue.remove(waiter)
                    if not queue:
                        del self._waiting[server]
                    return NOT_ASKED
                self._changed.wait(left)
            return None

    def _leave(self, server: str) -> None:
        """The end of a call that held a place: the place goes to the call waiting longest, if any."""
        assert self.cap is not None
        with self._changed:
            queue = self._waiting.get(server)
            if queue:
                queue.popleft().given = True
                if not queue:
                    del self._waiting[server]
                self._full_since[server] = time.monotonic()
                self._changed.notify_all()
                return
            holding = self._holding[server] - 1
            if holding:
                self._holding[server] = holding
            else:
                del self._holding[server]
            if holding < self.cap:
                self._full_since.pop(server, None)
