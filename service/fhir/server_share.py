"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering would hold every thread of a worker for the whole deadline, and a call that needs no FHIR
request at all, or names another server, would queue behind them. So, per worker process and per
FHIR server (origin), a call that is about to wait on the server is admitted this way:

- while fewer than `cap` calls (the worker's threads less one, so one is always left to the other
  callers) wait on that server, it waits with its whole deadline;
- beyond the cap, too, unless the server has left one of its requests unanswered for
  `stalled_after` seconds: then the call does not ask it at all; what it needed from there is
  reported "not asked", with why, and the call is answered at once.

A request is unanswered until its answer has been read whole (headers followed by a dripping body
are not an answer), so a server that stalls on one kind of search, or drips, counts as stalled,
and one that is slow but answers within `stalled_after` (default 2 s, under the per-request
timeout) never does. The first calls to a server that has just stopped cannot know it yet: they may
hold the threads for one deadline, after which the calls past the cap are not sent.

Without a thread count (the development server, a test client, another WSGI server) every call is
admitted.
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
    """Whether a call may ask its FHIR server: `held_back` says why not."""

    held_back: str | None = None


class ServerShare:
    """The calls of one worker process waiting on each FHIR server, their requests, and who may join."""

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
        self._requests: dict[str, dict[int, float]] = {}  # by server: when each unanswered request was sent
        self._tickets = count()
        self._lock = threading.Lock()

    @contextmanager
    def wait_on(self, server: str | None) -> Iterator[Admission]:
        """Admits a call about to wait on `server` (None: it names none) for as long as it waits."""
        if self.cap is None or server is None:
            yield Admission()
            return
        with self._held(self._waiting, server) as (waiting, ticket, now):
            admission = self._admit(server, len(waiting) - 1, now)
            if admission.held_back is not None:
                del waiting[ticket]
            yield admission

    @contextmanager
    def in_flight(self, server: str) -> Iterator[None]:
        """One request to `server`, from before it is sent until its answer is read or it failed."""
        with self._held(self._requests, server):
            yield

    @contextmanager
    def admitted(self, client: FhirClient | None) -> Iterator[None]:
        """A call's FHIR `client` (None: it has none) for as long as the call waits on its server:
        made to ask nothing when the call is held back, else to report its requests."""
        server = None if client is None or client.origin is None else str(client.origin)
        with self.wait_on(server) as admission:
            if client is not None and admission.held_back is not None:
                client.hold_back(admission.held_back)
            elif client is not None and server is not None and self.cap is not None:
                client.watch_requests(partial(self.in_flight, server))
            yield

    @contextmanager
    def _held(
        self, by_server: dict[str, dict[int, float]], server: str
    ) -> Iterator[tuple[dict[int, float], int, float]]:
        now = self._clock()
        with self._lock:
            held = by_server.setdefault(server, {})
            ticket = next(self._tickets)
            held[ticket] = now
        try:
            yield held, ticket, now
        finally:
            with self._lock:
                held.pop(ticket, None)
                if not held and by_server.get(server) is held:
                    del by_server[server]

    def _admit(self, server: str, others: int, now: float) -> Admission:
        assert self.cap is not None
        with self._lock:
            sent = list(self._requests.get(server, {}).values())
        if others < self.cap or not sent:
            return Admission()
        unanswered = now - min(sent)
        if unanswered < self.stalled_after:
            return Admission()
        calls = "1 call" if others == 1 else f"{others} calls"
        return Admission(
            f"not asked: the FHIR server has left a request unanswered for {unanswered:.1f} s "
            f"while {calls} of this worker wait on it"
        )
