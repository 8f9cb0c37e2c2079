"""How many of a worker's request threads the calls naming one FHIR server may hold.

A hook call waits on the EHR's FHIR server in its own request thread. A server that stops
answering, or answers so slowly that calls hold their threads for seconds, would hold every thread
of a worker, and a call that needs no FHIR request at all, or names another server, would queue
behind them. So, per worker process and per FHIR server (origin), the calls about to wait on the
server share all but one of the worker's threads (`cap`), and the last is left to the other callers:

- while fewer than `cap` calls wait on that server, a call waits with its whole deadline;
- past that, it waits up to `place_wait` seconds, counted from when the share last filled, for one
  of them to end and leave it a place. If none does, it does not ask the server at all: what it
  needed from there is reported "not asked", and the call is answered at once.

A server that answers a call in less than `place_wait` frees places as fast as they are needed, so
its calls are all asked however many come at once (a waiting call can rarely lose a freed place to
a newer one that reaches the lock first); one whose calls hold the share longer than that
gets the share and no more, whatever its history. A call waits at most `place_wait`, so the other
callers wait about that long behind one, a little longer when places free and fill again meanwhile.
Nothing is remembered between calls but who holds the share now.

Without a thread count (the development server, a test client, another WSGI server) every call is
admitted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.fhir.client import FhirClient

NOT_ASKED = "not asked: the EHR's FHIR server was still answering this service's other requests"


@dataclass(frozen=True)
class Admission:
    """Whether a call may ask its FHIR server: `held_back` says why not."""

    held_back: str | None = None


def not_asked(reason: str) -> bool:
    """Whether a FHIR failure's `reason` is that the call was not let ask the server at all."""
    return reason.startswith(NOT_ASKED)


class ServerShare:
    """The calls of one worker process waiting on each FHIR server, and who may join them."""

    def __init__(self, request_threads: int | None, place_wait: float) -> None:
        self.cap = None if request_threads is None else max(1, request_threads - 1)
        self.place_wait = place_wait
        self._holding: dict[str, int] = {}  # by server: the calls waiting on it
        self._full_since: dict[str, float] = {}  # by server whose share is full: since when
        self._changed = threading.Condition()

    @contextmanager
    def wait_on(self, server: str | None) -> Iterator[Admission]:
        """Admits a call about to wait on `server` (None: it names none) for as long as it waits."""
        if self.cap is None or server is None:
            yield Admission()
            return
        with self._changed:
            admission = self._enter(server)
        try:
            yield admission
        finally:
            if admission.held_back is None:
                with self._changed:
                    self._leave(server)

    @contextmanager
    def admitted(self, client: FhirClient | None) -> Iterator[None]:
        """A call's FHIR `client` (None: it has none) for as long as the call waits on its server,
        made to ask nothing when the call is held back."""
        server = None if client is None or client.origin is None else str(client.origin)
        with self.wait_on(server) as admission:
            if client is not None and admission.held_back is not None:
                client.hold_back(admission.held_back)
            yield

    def _enter(self, server: str) -> Admission:
        """A place in the server's share, waited for until `place_wait` after the share filled, as it
        was when the call came (a place another call takes meanwhile does not prolong the wait);
        called holding `_changed`."""
        assert self.cap is not None
        if self._holding.get(server, 0) >= self.cap:
            give_up = self._full_since[server] + self.place_wait
            while self._holding.get(server, 0) >= self.cap:
                left = give_up - time.monotonic()
                if left <= 0:
                    return Admission(NOT_ASKED)
                self._changed.wait(left)
        holding = self._holding[server] = self._holding.get(server, 0) + 1
        if holding >= self.cap:
            self._full_since[server] = time.monotonic()
        return Admission()

    def _leave(self, server: str) -> None:
        """The end of an admitted call's wait; called holding `_changed`."""
        assert self.cap is not None
        holding = self._holding[server] - 1
        if holding:
            self._holding[server] = holding
        else:
            del self._holding[server]
        if holding < self.cap:
            self._full_since.pop(server, None)
            self._changed.notify_all()
