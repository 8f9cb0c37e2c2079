"""How many of a worker's request threads the calls asking FHIR servers may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering, or answers so slowly that calls hold their threads for seconds, would hold every thread
of a worker, and a call that needs no FHIR request at all, or asks another server, would queue
behind them. So, per worker process, the calls asking FHIR servers hold places:

- all of them together at most all but one of the worker's threads (`cap`): the last is left to
  the calls that ask no server, so two or more servers holding their calls cannot take it either;
- those asking one server (origin) at most all but two (`server_cap`, at least one): one place is
  left to the calls asking other servers.

A call takes its place when it first asks its server, not before: one answered from its prefetch
or the patient-data cache never enters the share and never waits for it. It keeps the place until
it ends. A call that finds no place waits for one, in the order the calls came: a place that frees
goes to the call that has waited longest among those it can serve. It waits at most `place_wait`
seconds, counted from when the limit that keeps it out was last reached, and never past its own
deadline. If no place comes, it does not ask the server at all: what it needed from there is
reported "not asked", and the call is answered at once.

A server that answers a call in less than `place_wait` frees places as fast as they are needed, so
its calls are all asked however many come at once; one whose calls hold their places longer than
that gets its share and no more, whatever its history. A call waits at most `place_wait`, so the
other callers wait about that long behind one. Nothing is remembered between calls but who holds
a place now and who waits for one.

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

NOT_ASKED_PREFIX = "not asked: "
NOT_ASKED = NOT_ASKED_PREFIX + "the EHR's FHIR server was still answering this service's other requests"
NOT_ASKED_OTHERS = NOT_ASKED_PREFIX + "this service was still waiting on other FHIR servers' answers"


def not_asked(reason: str) -> bool:
    """Whether a text quoting a FHIR failure's reason says the call was not let ask the server at all.
    Only for a reason already written into other words (a criterion's `unchecked_reason`, which the
    engine composes from the chart's: cards/items.py); a query's own failure is told by its flag
    (`client.NotAsked` → `QueryOutcome.not_asked` → the 412's `Unobtainable.not_asked`)."""
    return NOT_ASKED_PREFIX in reason


class _Waiter:
    """A call waiting for a place with `server`; `given` once a leaving call hands it theirs."""

    __slots__ = ("given", "server")

    def __init__(self, server: str) -> None:
        self.server = server
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


WORKER = ""  # the key of the limit on all servers together (a server's origin is never empty)


class ServerShare:
    """The calls of one worker process holding a place with each FHIR server, and who waits for one."""

    def __init__(self, request_threads: int | None, place_wait: float) -> None:
        self.cap = None if request_threads is None else max(1, request_threads - 1)
        self.server_cap = None if request_threads is None else max(1, request_threads - 2)
        self.place_wait = place_wait
        self._holding: dict[str, int] = {}  # by server: the calls holding a place
        self._held = 0  # places held, all servers together
        self._waiting: deque[_Waiter] = deque()  # the calls waiting, first come first
        self._full_since: dict[str, float] = {}  # by limit reached (a server, or WORKER): since when
        self._changed = threading.Condition()

    def place(self, server: str) -> Place:
        """A call's place with `server`, not yet taken."""
        return Place(self, server)

    @contextmanager
    def taken(self, server: str | None, deadline: float) -> Iterator[str | None]:
        """A place with `server` taken for the block (None), or why none came by `deadline` (given back
        in any case at the block's end); with no thread count (the development server, a test client)
        or no server there is none to take (None)."""
        if self.cap is None or server is None:
            yield None
            return
        place = self.place(server)
        try:
            yield place.take(deadline)
        finally:
            place.release()

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

    def _limits_reached(self, server: str) -> list[str]:
        """The limits that keep a new place with `server` from being taken (WORKER, the server)."""
        assert self.cap is not None and self.server_cap is not None
        reached = [WORKER] if self._held >= self.cap else []
        if self._holding.get(server, 0) >= self.server_cap:
            reached.append(server)
        return reached

    def _enter(self, server: str, deadline: float | None) -> str | None:
        """A place with `server` (None), or why not once `place_wait` has passed since a limit that
        keeps the call out was reached (as it was when the call came: a place handed over meanwhile
        does not prolong the wait) or the call's `deadline` has: NOT_ASKED while the server's own
        calls hold all it may, else NOT_ASKED_OTHERS."""
        with self._changed:
            reached = self._limits_reached(server)
            if not reached:
                self._take(server)
                return None
            since = min(self._full_since[limit] for limit in reached)
            give_up = min(since + self.place_wait, math.inf if deadline is None else deadline)
            waiter = _Waiter(server)
            self._waiting.append(waiter)
            while not waiter.given:
                left = give_up - time.monotonic()
                if left <= 0:
                    self._waiting.remove(waiter)
                    return NOT_ASKED if server in self._limits_reached(server) else NOT_ASKED_OTHERS
                self._changed.wait(left)
            return None

    def _take(self, server: str) -> None:
        """One more place held with `server`; a limit it reaches is full from now."""
        assert self.cap is not None and self.server_cap is not None
        holding = self._holding[server] = self._holding.get(server, 0) + 1
        self._held += 1
        now = time.monotonic()
        if holding >= self.server_cap:
            self._full_since[server] = now
        if self._held >= self.cap:
            self._full_since[WORKER] = now

    def _leave(self, server: str) -> None:
        """The end of a call that held a place: the places it frees go to the calls waiting longest
        that they can serve."""
        with self._changed:
            holding = self._holding[server] - 1
            if holding:
                self._holding[server] = holding
            else:
                del self._holding[server]
            self._held -= 1
            self._full_since.pop(server, None)
            self._full_since.pop(WORKER, None)
            given = False
            for waiter in list(self._waiting):
                if not self._limits_reached(waiter.server):
                    self._waiting.remove(waiter)
                    self._take(waiter.server)
                    waiter.given = given = True
            if given:
                self._changed.notify_all()
