"""The HTTP transport under the FHIR client: connections only to checked addresses, cut at a deadline.

Two things `requests` cannot do on its own:

- Connect only where `outbound.connectable_address` allows, to the very address that was checked
  (no second DNS lookup between the check and the connection). TLS still verifies the host name.
- Bound a request's total time. Socket timeouts bound each read, so a server that drips one byte
  every 100 ms would hold a worker for as long as it likes. A `Cutoff` (service/cutoff.py, one
  watchdog thread per session pool) shuts down the socket of every request still running at its
  deadline; the reading thread then fails at once and its worker is free again.
"""

from __future__ import annotations

import http.cookiejar
import logging
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from service.cutoff import current_watch
from service.fhir.outbound import TargetRefused, connectable_address

log = logging.getLogger(__name__)


class Watched:
    """Mixed into urllib3's connections: each socket joins the thread's watch (`Cutoff.until`), which
    shuts it at the deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        watch = current_watch()
        if watch is not None:
            watch.add(sock)
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = current_watch()
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
