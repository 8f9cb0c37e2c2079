"""A database server that failed to answer is left alone for a moment, then tried by one use.

During an outage (PostgreSQL stopped, frozen, or out of reach) each use of the database would
otherwise wait out its own timeout (`store.timeout_seconds`) before failing: every hook call held
for seconds before its 503, every request thread of a worker waiting, `/healthz` and discovery
queued behind them. Here the first failure starts a rest (`store.retry_after_seconds`) during
which uses fail at once (`DatabaseResting`); after it, one use at a time tries the server while
the others still fail at once, until one is answered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


class DatabaseTimedOut(StoreUnavailable):
    """A use of the database server ran out of its time before it could connect."""


class DatabaseResting(StoreUnavailable):
    """The database server failed to answer a moment ago: this use was not tried."""


# A use that failed so (a driver's OperationalError or InterfaceError, a connection lost, a use out of
# time or refused while resting: service/store/errors.py) may be the server not answering.
NOT_ANSWERING = (StoreUnavailable,)
# SQLSTATE classes a server sends when it cannot serve at all: connection exception, insufficient
# resources (too many connections, disk full), operator intervention (shutting down, starting up).
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def server_answered(exc: BaseException) -> bool:
    """Whether a use that failed with one of NOT_ANSWERING was the server answering after all: an
    error it sent about the use itself (a lock or statement timeout, a deadlock, a serialization
    failure), which the driver's error carries the SQLSTATE of, rather than no answer (refused, cut,
    connection lost: no SQLSTATE) or one saying it cannot serve at all."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and not sqlstate.startswith(UNAVAILABLE_SQLSTATES)


class Outage:
    """Whether the database server is being left alone. `use()` wraps each use of it."""

    def __init__(self, rest_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rest_seconds = rest_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._resting_until: float | None = None  # None while the server answers
        self._trying = False  # a use is trying the server after a rest

    def refusing(self) -> bool:
        """Whether a use starting now would fail at once (resting, or another use is trying)."""
        with self._lock:
            return self._resting_until is not None and (self._trying or self._clock() < self._resting_until)

    @contextmanager
    def use(self) -> Iterator[None]:
        """One use of the server: refused (DatabaseResting) while it rests; its ending, a failure to
        answer (NOT_ANSWERING) or anything else, tells whether the server answered."""
        trying = self._admit()
        answered: bool | None = None
        try:
            yield
            answered = True
        except NOT_ANSWERING as exc:
            answered = server_answered(exc)
            raise
        except Exception:
            answered = True
            raise
        finally:
            self._settle(trying, answered)

    def _admit(self) -> bool:
        with self._lock:
            if self._resting_until is None:
                return False
            if self._trying or self._clock() < self._resting_until:
                raise DatabaseResting(f"the database did not answer less than {self.rest_seconds:g} s ago")
            self._trying = True
            return True

    def _settle(self, trying: bool, answered: bool | None) -> None:
        with self._lock:
            if trying:
                self._trying = False
            first = self._resting_until is None
            if answered is False:
                self._resting_until = self._clock() + self.rest_seconds
            elif answered:
                self._resting_until = None
        if answered is False and first:
            log.warning(
                "database: the server does not answer; uses fail at once for %g s, then one tries it",
                self.rest_seconds,
            )
        elif answered and not first:
            log.info("database: the server answers again")
