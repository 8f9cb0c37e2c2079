"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering, or answers so slowly that calls run out of time, would hold every thread of a worker
for the whole deadline, and a call that needs no FHIR request at all, or names another server,
would queue behind them. So, per worker process and per FHIR server (origin), a call that is about
to wait on the server is admitted this way:

- while fewer than `cap` calls (the worker's threads less one, so one is always left to the other
  callers) wait on that server, it waits with its whole deadline;
- beyond the cap, only while the server is known to keep time: the latest call of this worker that
  asked it had every answer before its deadline, and none of its requests now has been left
  unanswered for `stalled_after` seconds. Otherwise the call does not ask it at all; what it
  needed from there is reported "not asked", with why, and the call is answered at once.

A request is unanswered until its answer has been read whole (headers followed by a dripping body
are not an answer). A server that is slow but answers each call within its deadline keeps every
call whole once one call has shown it; a server whose calls run out of time, or that has not yet
answered a call of this worker, gets the cap and no more. The first calls to a server that has just
stopped cannot know it yet: they may hold the threads for one deadline, after which the calls past
the cap are not sent.

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

from service.fhir.client import FhirError
from service.fhir.outbound import NO_ANSWER

if TYPE_CHECKING:
    from service.fhir.client import FhirClient


@dataclass
class Admission:
    """Whether a call may ask its FHIR server (`held_back` says why not), and, once admitted, whether
    it asked (`asked`) and whether one of its requests went unanswered (`unanswered`)."""

    held_back: str | None = None
    asked: bool = False
    unanswered: bool = False


class ServerShare:
    """The calls of one worker process waiting on each FHIR server, their requests, whether each
    server kept time for the latest call that asked it, and who may join."""

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
        self._kept_time: dict[str, bool] = {}  # by server: whether the latest call that asked it did
        self._tickets = count()
        self._lock = threading.Lock()

    @contextmanager
    def wait_on(self, server: str | None, deadline: float | None = None) -> Iterator[Admission]:
        """Admits a call about to wait on `server` (None: it names none) for as long as it waits; when
        it asked, notes whether it had every answer before `deadline` (None: it has none)."""
        if self.cap is None or server is None:
            yield Admission()
            return
        with self._held(self._waiting, server) as (waiting, ticket, now):
            admission = self._admit(server, len(waiting) - 1, now)
            if admission.held_back is not None:
                del waiting[ticket]
            yield admission
        if admission.asked:
            in_time = not admission.unanswered and (deadline is None or self._clock() < deadline)
            with self._lock:
                self._kept_time[server] = in_time

    @contextmanager
    def in_flight(self, server: str, admission: Admission) -> Iterator[None]:
        """One request of an admitted call to `server`, from before it is sent until its answer is
        read or it failed (unanswered: it had no answer, in time or at all)."""
        admission.asked = True
        with self._held(self._requests, server):
            try:
                yield
            except FhirError as error:
                if error.reason == NO_ANSWER:
                    admission.unanswered = True
                raise

    @contextmanager
    def admitted(self, client: FhirClient | None) -> Iterator[None]:
        """A call's FHIR `client` (None: it has none) for as long as the call waits on its server:
        made to ask nothing when the call is held back, else to report its requests."""
        server = None if client is None or client.origin is None else str(client.origin)
        deadline = None if client is None else client.deadline
        with self.wait_on(server, deadline) as admission:
            if client is not None and admission.held_back is not None:
                client.hold_back(admission.held_back)
            elif client is not None and server is not None and self.cap is not None:
                client.watch_requests(partial(self.in_flight, server, admission))
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
        if others < self.cap:
            return Admission()
        with self._lock:
            sent = list(self._requests.get(server, {}).values())
            kept_time = self._kept_time.get(server)
        calls = "1 call" if others == 1 else f"{others} calls"
        unanswered = now - min(sent) if sent else 0.0
        if unanswered >= self.stalled_after:
            return Admission(
                f"not asked: the FHIR server has left a request unanswered for {unanswered:.1f} s "
                f"while {calls} of this worker wait on it"
            )
        if kept_time:
            return Admission()
        which = "has not yet answered one" if kept_time is None else "did not answer the last one"
        return Admission(
            f"not asked: {calls} of this worker already wait on the FHIR server, which {which} in time"
        )
