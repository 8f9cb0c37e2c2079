"""Cutting a thread's network connections at a deadline, whatever they are waiting for.

Socket timeouts bound each read, not a whole exchange: a peer that drips one byte every 100 ms, or a
server that keeps the connection open and never answers (a frozen database, a hung disk behind it),
would hold a worker for as long as it likes. A `Cutoff` is one watchdog thread; `until(deadline)`
watches the sockets the current thread registers inside the block (`current_watch().add`) and
shuts every one still open at the deadline down. The thread waiting on it then fails at once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar


class Watch:
    """The sockets of one request and its deadline; `fired` once the cutoff has cut them."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket, owned: bool = False) -> None:
        """Watch `sock`; one `owned` (a duplicate made to watch another's connection) is closed
        when the block ends."""
        with self._lock:
            self._sockets.append(sock)
            if owned:
                self._owned.append(sock)
            if not self.fired:
                return
        _shut(sock)

    def discard(self, sock: socket.socket) -> None:
        """Stop watching `sock` (its connection went back to a pool: the next user's now); one
        `owned` is closed. Once this returns, the watch firing no longer touches it."""
        with self._lock:
            self._sockets = [s for s in self._sockets if s is not sock]
            owned = any(s is sock for s in self._owned)
            self._owned = [s for s in self._owned if s is not sock]
        if owned:
            sock.close()

    def end(self) -> None:
        """The block is over: its connections may serve the next one, unwatched."""
        with self._lock:
            self._sockets.clear()
            owned, self._owned = self._owned, []
        for sock in owned:
            sock.close()

    def fire(self) -> None:
        with self._lock:  # shut under the lock: a socket discarded or ended meanwhile is left alone
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut the socket down under whatever reads it (also under TLS), without closing its fd."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_CURRENT: ContextVar[Watch | None] = ContextVar("idds_crd_watch", default=None)


class Cutoff:
    """A daemon thread that fires every `Watch` whose deadline has passed (only while any is left)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def until(self, deadline: float) -> Iterator[Watch]:
        """Watch the connections this thread uses inside the block; cut them at `deadline`."""
        watch = Watch(deadline)
        with self._condition:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="idds-crd-cutoff", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:  # due before the one the thread waits for: wake it
                self._condition.notify()
        token = _CURRENT.set(watch)
        try:
            yield watch
        finally:
            _CURRENT.reset(token)
            watch.end()

    def _run(self) -> None:
        """Fire each watch at its deadline; end when none is left (`until` starts a new thread)."""
        while True:
            with self._condition:
                while self._heap and self._heap[0][0] > time.monotonic():
                    self._condition.wait(self._heap[0][0] - time.monotonic())
                if not self._heap:
                    self._thread = None
                    return
                _, _, watch = heapq.heappop(self._heap)
            watch.fire()


def current_watch() -> Watch | None:
    """The watch of the `Cutoff.until` block the current thread is in, if any."""
    return _CURRENT.get()
