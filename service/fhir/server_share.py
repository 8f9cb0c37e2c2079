"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering would hold every thread of a worker for the whole deadline, and a call that needs no FHIR
request at all, or names another server, would queue behind them. So, per worker process and per
FHIR server (origin), a call that is about to wait on the server is admitted this way:

- while fewer than `cap` calls (the worker's threads less one, so one is always left to the other
  callers) wait on that server, it waits with its whole deadline;
- beyond the cap, while none of those calls has waited `stalled_after` seconds, it waits at most
  that long: a server answering as servers do is not held back for being busy;
- beyond the cap, once one of them has waited that long, it does not ask the server: what it
  needed from there is reported "not asked", with why, and the call is answered at once.

Without a thread count (the development server, a test client, another WSGI server) every call is
admitted with its whole deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count


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
            admission = self._admit(waiting, now, deadline)
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

    def _admit(self, waiting: dict[int, float], now: float, deadline: float) -> Admission:
        assert self.cap is not None
        if len(waiting) < self.cap:
            return Admission(deadline)
        longest = now - min(waiting.values())
        if longest >= self.stalled_after:
            calls = "1 other call" if len(waiting) == 1 else f"{len(waiting)} other calls"
            return Admission(
                deadline, f"not asked: the FHIR server has kept {calls} waiting for {longest:.1f} s"
            )
        return Admission(min(deadline, now + self.stalled_after))
