"""A signal sent while gunicorn forks a worker waits for the worker's own handlers.

Between `fork` and the worker installing its handlers (`Worker.init_signals`), the child still runs
the master's handlers, which queue the signal in the child's copy of the master's state, where
nothing ever reads it. A SIGTERM sent in that moment (the master stopping as a worker boots) is lost:
the worker serves on until the master kills it once the graceful timeout has passed, so stopping
`serve` takes that long. The master blocks the workers' signals across the fork; the child unblocks
them once its handlers are in place, and whatever arrived in between is delivered then.
"""

from __future__ import annotations

import signal
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

HELD_ACROSS_FORK = frozenset(Worker.SIGNALS)


class SignalSafeArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, forking each worker with the workers' signals blocked, its worker class made
    to unblock them once its handlers are in place (whichever class the configuration names)."""

    def setup(self, app: Any) -> None:
        super().setup(app)
        self.worker_class = releasing_held_signals(self.worker_class)

    def spawn_worker(self) -> int:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_ACROSS_FORK)
        try:
            return int(super().spawn_worker())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def releasing_held_signals(worker_class: type[Worker]) -> type[Worker]:
    """`worker_class`, delivering what arrived while it was being forked once its handlers are in place."""

    def init_signals(self: Worker) -> None:
        worker_class.init_signals(self)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_ACROSS_FORK)

    return type(worker_class.__name__, (worker_class,), {"init_signals": init_signals})
