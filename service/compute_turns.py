"""Within a worker process one hook call at a time decides, answers and records; a call waiting on
the EHR's FHIR server lets the next one in.

Python runs one thread at a time (the GIL), so two calls computing in one process never finish
sooner than one after the other. Left to the GIL they finish later: a thread that reads, writes or
commits gives the GIL up and takes it back while another thread computes, each hand-over moving the
core between two calls' working sets, and a call holding the audit trail's write turn is kept waiting
for the GIL while the writers of other workers wait for it (bench/NOTES.md). So a call takes its
turn once its body has been read (a slow sender holds a thread, never the turn), keeps it while it
decides, answers and writes its audit record, and sets it aside while it gathers the patient's data
(`pipeline.handle_hook`): the FHIR server can take seconds, and taking the prefetch apart is little
work beside that.

The turn only orders work; it never makes a call wait for long. A call that has not had it within
`TURN_WAIT_SECONDS` goes on without it, as every call did before (counted in `/metrics` as
`idds_crd_compute_turn_missed_total`), so nothing can deadlock on it. A call takes the turn twice
(on arrival and after gathering), so an audit store that hangs with the turn held delays each call
behind it by twice that at most; they then join its group commit (service/store/group_commit.py)
and fail with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from service.after_fork import start_afresh_in_children
from service.observability import observe_compute_turn_missed

TURN_WAIT_SECONDS = 0.5  # far beyond a queue of calls computing (tens of milliseconds)


class ComputeTurns:
    """`held()` runs a block as the process's computing call (re-entrant within a thread; after
    `wait_seconds` without the turn, without it); `set_aside()` lets another call compute while this
    thread waits, then takes the turn back the same way. A thread without the turn (the command line,
    a benchmark, a call that waited too long) runs either block as it is."""

    def __init__(self, wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._holder = threading.local()
        start_afresh_in_children(self)

    def holds(self) -> bool:
        return getattr(self._holder, "holds", False)

    @contextmanager
    def held(self) -> Iterator[None]:
        if self.holds():
            yield
            return
        self._take()
        try:
            yield
        finally:
            if self.holds():  # not when the turn, set aside meanwhile, was not had back in time
                self._give_back()

    @contextmanager
    def set_aside(self) -> Iterator[None]:
        if not self.holds():
            yield
            return
        self._give_back()
        try:
            yield
        finally:
            self._take()

    def _take(self) -> None:
        taken = self._lock.acquire(timeout=self.wait_seconds)
        if not taken:
            observe_compute_turn_missed()
        self._holder.holds = taken

    def _give_back(self) -> None:
        self._holder.holds = False
        self._lock.release()

    def start_afresh(self) -> None:
        self._lock = threading.Lock()  # a turn held by a thread of the parent would never come back
        self._holder = threading.local()
