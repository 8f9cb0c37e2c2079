"""Write transactions on one SQLite file take turns on a lock file beside it, across the worker
processes that share the file.

Two workers writing to one SQLite file collide on its write lock, and SQLite's own busy handler has
the waiting writer sleep in growing steps (1, 2, 5 ... 100 ms) before it looks again: under load that
was most of the p99 of a call (bench/NOTES.md). Here a writer takes the turn first (a thread lock,
then `flock` on `<file>.writers`) and finds SQLite's lock free; a waiting writer looks again every
half millisecond, for no longer than the busy timeout, and then fails as a database error does.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from service.after_fork import start_afresh_in_children
from service.store.errors import StoreUnavailable

TURN_POLL_SECONDS = 0.0005  # how soon a waiting writer sees that the turn is free


class WriterTurnUnavailable(StoreUnavailable):
    """No turn to write within the busy timeout, or the writers' lock file cannot be opened: the
    write fails as a database error does."""


class WriterTurns:
    """One write transaction at a time on an SQLite file, across the threads of this process (a
    lock) and across processes (`flock` on the file at `path`), each waiting at most `wait_seconds`
    (the database's busy timeout). A child process starts afresh: a lock or descriptor inherited through
    `fork` would be held, or shared, with the parent."""

    def __init__(self, path: str, wait_seconds: float) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self._threads = threading.Lock()
        self._descriptor: int | None = None
        start_afresh_in_children(self)

    @contextmanager
    def turn(self) -> Iterator[None]:
        deadline = time.monotonic() + self.wait_seconds
        if not self._threads.acquire(timeout=self.wait_seconds):
            raise WriterTurnUnavailable("no turn to write within the busy timeout")
        try:
            descriptor = self._open()
            _lock_by(descriptor, deadline)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _open(self) -> int:
        if self._descriptor is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                self._descriptor = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise WriterTurnUnavailable(f"cannot open the writers' lock file: {exc.strerror}") from None
        return self._descriptor

    def close(self) -> None:
        with self._threads:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None

    def start_afresh(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # the child's copy: the parent's lock is the parent's own
        self._threads = threading.Lock()
        self._descriptor = None


def _lock_by(descriptor: int, deadline: float) -> None:
    """`flock` the descriptor, trying again every TURN_POLL_SECONDS until `deadline`."""
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WriterTurnUnavailable("no turn to write within the busy timeout") from None
            time.sleep(TURN_POLL_SECONDS)
