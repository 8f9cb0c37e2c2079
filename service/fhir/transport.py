"""The HTTP transport under the FHIR client: connections only to checked addresses, cut at a deadline.

Two things `requests` cannot do on its own:

- Connect only where `outbound.connectable_address` allows, to the very address that was checked
  (no second DNS lookup between the check and the connection). TLS still verifies the host name.
- Bound a request's total time. Socket timeouts bound each read, so a server that drips one byte
  every 100 ms would hold a worker for as long as it likes. A `Cutoff` (one watchdog thread per
  session pool) shuts down the socket of every request still running at its deadline; the reading
  thread then fails at once and its worker is free again.
"""

from __future__ import annotations

import contextlib
import heapq
import http.cookiejar
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from service.fhir.outbound import TargetRefused, connectable_address

log = logging.getLogger(__name__)


class Watch:
    """The sockets of one request and its deadline; `fired` once the cutoff has cut them."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self.fired:
                return
        _shut(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut the socket down under whatever reads it (also under TLS), without closing its fd."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_CURRENT: ContextVar[Watch | None] = ContextVar("idds_crd_fhir_watch", default=None)


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
                self._thread = threading.Thread(target=self._run, name="idds-crd-fhir-cutoff", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:  # due before the one the thread waits for: wake it
                self._condition.notify()
        token = _CURRENT.set(watch)
        try:
            yield watch
        finally:
            _CURRENT.reset(token)
            with watch._lock:
                watch._sockets.clear()  # done: the connection may be reused by the next request

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


class Watched:
    """Mixed into urllib3's connections: each socket joins the thread's watch (`Cutoff.until`), which
    shuts it at the deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        watch = _CURRENT.get()
        if watch is not None:
            watch.add(sock)
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = _CURRENT.get()
        if watch is not None and self.sock is not None:
            watch.add(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _Guarded(Watched):
    """Mixed into urllib3's connections: connect only to the checked address (and join the watch)."""

    host: str
    port: int

    def _new_conn(self) -> socket.socket:
        named = self._dns_host  # type: ignore[has-type]
        try:
            self._dns_host = connectable_address(named, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TargetRefused as exc:
            log.debug("not connecting: %s (list the server by its address to allow it)", exc)
            raise NewConnectionError(self, str(exc)) from exc  # type: ignore[arg-type]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = named


def pool_classes(mixin: type) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3's http and https connection pools, by scheme, whose connections have `mixin` first."""
    name = mixin.__name__.strip("_")
    http = type(f"{name}HTTPConnection", (mixin, HTTPConnection), {})
    https = type(f"{name}HTTPSConnection", (mixin, HTTPSConnection), {})
    return {
        "http": type(f"{name}HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type(f"{name}HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


GUARDED_POOLS = pool_classes(_Guarded)
WATCHED_POOLS = pool_classes(Watched)


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections are guarded (checked address, joined to the watch)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = GUARDED_POOLS


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuses every cookie: a session is shared by the hook calls of one worker thread, and a cookie
    one EHR call set must never ride along on another call (nor grow without bound)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def guarded_session() -> requests.Session:
    """A session that keeps no cookies and reads no proxy or credentials from the environment, over
    guarded connections."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(_NoCookies())
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
