"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering would hold every thread of a worker for the whole deadline, and a call that needs no FHIR
request at all, or names another server, would queue behind them. So, per worker process and per
FHIR server (origin), a call that is about to wait on the server is admitted this way:

- while fewer than `cap` calls (the worker's threads less one, so one is always left to the other
  callers) wait on that server, it waits with its whole deadline;
- beyond the cap, if the server has answered anything (any HTTP status) within the last
  `stalled_after` seconds, it waits with its whole deadline too: a server that is slow, or busy,
  but answering is not failing, and its calls are not cut short;
- beyond the cap, on a server silent that long, it waits at most `stalled_after` seconds while none
  of the calls on that server has waited that long (a server that has just stopped, or not been
  heard from yet); once one has, it does not ask the server: what it needed from there is reported
  "not asked", with why, and the call is answered at once.

Without a thread count (the development server, a test client, another WSGI server) every call is
admitted with its whole deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import count
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.fhir.client import FhirClient


@dataclass(frozen=True)
class Admission:
    """How a call may wait on its FHIR server: until `deadline`, or not at all (`held_back` says why)."""

    deadline: float
    held_back: str | None = None


class ServerShare:
    """The calls of one worker process waiting on each FHIR server, and who may join them."""

    def __init__(
        self,
        request_threads: int | None,
        stalled_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap = None if request_threads is None else max(1, request_threads - 1)
        self.stalled_after = stalled_after
        self._clock = clock
        self._waiting: dict[str, dict[int, float]] = {}  # by server: when each waiting call began
        self._heard: dict[str, float] = {}  # by server: when it last answered a request
        self._tickets = count()
        self._lock = threading.Lock()

    @contextmanager
    def wait_on(self, server: str | None, deadline: float) -> Iterator[Admission]:
        """Admits a call about to wait on `server` (None: it names none) for as long as it waits."""
        if self.cap is None or server is None:
            yield Admission(deadline)
            return
        now = self._clock()
        with self._lock:
            waiting = self._waiting.setdefault(server, {})
            admission = self._admit(waiting, now, deadline, self._heard.get(server))
            ticket = next(self._tickets)
            if admission.held_back is None:
                waiting[ticket] = now
        try:
            yield admission
        finally:
            with self._lock:
                waiting.pop(ticket, None)
                if not waiting and self._waiting.get(server) is waiting:
                    del self._waiting[server]

    def heard(self, server: str) -> None:
        """Notes that `server` has just answered a request."""
        now = self._clock()
        with self._lock:
            self._heard[server] = now

    def listen(self, client: FhirClient, server: str, admission: Admission) -> None:
        """Makes `client` ask nothing when the admission holds it back, and report its answers."""
        if admission.held_back is not None:
            client.hold_back(admission.held_back)
        elif self.cap is not None:
            client.on_answer(partial(self.heard, server))

    def _admit(
        self, waiting: dict[int, float], now: float, deadline: float, heard: float | None
    ) -> Admission:
        assert self.cap is not None
        if len(waiting) < self.cap or (heard is not None and now - heard < self.stalled_after):
            return Admission(deadline)
        longest = now - min(waiting.values())
        if longest >= self.stalled_after:
            calls = "1 other call" if len(waiting) == 1 else f"{len(waiting)} other calls"
            return Admission(
                deadline, f"not asked: the FHIR server has kept {calls} waiting for {longest:.1f} s"
            )
        return Admission(min(deadline, now + self.stalled_after))
