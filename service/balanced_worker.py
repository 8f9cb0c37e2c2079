"""gunicorn's gthread worker, taking new connections only while it holds no more than its share.

The workers share one listening socket, and a kept-alive connection stays with the worker that
accepted it. Whichever worker wakes first accepts, so an EHR's few persistent connections, opened
together, often pile onto one worker (one core, for this CPU-bound service) while another core idles:
4 connections on 2 workers all on one in 2 of 5 starts, 117 instead of 271 calls/s for a pump
order-sign (bench/NOTES.md). Here each worker publishes how many connections it holds in a table
the workers share (`ConnectionShares`, made by `serve` before the fork) and listens for new ones
only while it holds no more than the average; `ConnectionRecycling` (service/serving.py) lets
connections move again later.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

IDLE_WAKE_SECONDS = 0.05  # how stale a worker's view of the others' shares may grow while it is idle


class ConnectionShares:
    """The connections each worker holds, by slot, in memory shared by the master and its workers;
    a slot is a worker's while it lives (the master frees it when the worker exits)."""

    def __init__(self, slots: int) -> None:
        self._lock = multiprocessing.Lock()
        self._pids = multiprocessing.RawArray("i", slots)
        self._held = multiprocessing.RawArray("i", slots)

    def claim(self, pid: int) -> int | None:
        """A free slot for the worker `pid` (None when all are taken: that worker then accepts freely)."""
        with self._lock:
            for slot, owner in enumerate(self._pids):
                if owner == 0:
                    self._pids[slot], self._held[slot] = pid, 0
                    return slot
        return None

    def free(self, pid: int) -> None:
        with self._lock:
            for slot, owner in enumerate(self._pids):
                if owner == pid:
                    self._pids[slot], self._held[slot] = 0, 0

    def publish(self, slot: int, held: int) -> None:
        self._held[slot] = held

    def within_share(self, slot: int) -> bool:
        """Whether the slot's worker holds no more connections than the workers hold on average."""
        owners = [i for i, owner in enumerate(self._pids) if owner]
        total = sum(self._held[i] for i in owners)
        return self._held[slot] * len(owners) <= total


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """A gthread worker that listens for new connections only while it holds no more than its share
    (`app.shares`, a ConnectionShares, when the application has one)."""

    slot: int | None = None

    def init_process(self) -> None:
        shares = self._shares()
        if shares is not None:
            self.slot = shares.claim(os.getpid())
        super().init_process()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._within_share())

    def accept(self, listener: Any) -> None:
        if not self._within_share():  # held more since it last looked: leave it to another worker
            super().set_accept_enabled(False)
            return
        super().accept(listener)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.alive and self._accepting != self._may_accept():
            super().set_accept_enabled(not self._accepting)
        super().wait_for_and_dispatch_events(min(timeout, IDLE_WAKE_SECONDS))

    def _may_accept(self) -> bool:
        return bool(self.nr_conns < self.worker_connections and self._within_share())

    def _within_share(self) -> bool:
        shares = self._shares()
        if shares is None or self.slot is None:
            return True
        shares.publish(self.slot, self.nr_conns)
        return shares.within_share(self.slot)

    def _shares(self) -> ConnectionShares | None:
        shares: Any = getattr(self.app, "shares", None)
        return shares if isinstance(shares, ConnectionShares) else None
