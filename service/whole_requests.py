"""gunicorn's gthread worker, taking each request into a thread only once the whole of it is here.

gunicorn's own gthread worker gives a connection a thread as soon as its first byte arrives and
reads the request line, headers and body there with no time limit, so `workers * threads` clients
sending a byte now and then hold every thread of the service (slowloris). This worker reads in its
main loop instead, the way a buffering proxy does: a connection's bytes are collected, without
blocking, until `service.request_framing` says its request is complete, and only then does a
thread parse and answer it from those bytes. A request that has not arrived whole within
`read_seconds` of its first byte is answered 408 and its connection closed; a connection that sends
nothing is closed after the keep-alive time. What all connections of a worker hold meanwhile is
bounded by `budget_bytes` (a connection that would go past it is answered 503 and closed).

A thread still reads from the socket where the framing hands a request over unfinished (one
gunicorn must refuse, a body over `max_request_bytes`, a request pipelined behind another), so the
socket's timeout on a thread is `read_seconds` as well: no read or write there waits longer.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from service.observability import observe_request_cut
from service.request_framing import frame

CLIENT_READ_SECONDS = 10.0  # from a request's first byte to its last; EHRs send theirs in milliseconds
BUFFER_BUDGET_BYTES = 64 * 1024 * 1024  # all unfinished requests of one worker together
RECEIVE_BYTES = 256 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
OVER_BUDGET = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class ArrivingConnection(TConn):  # type: ignore[misc]
    """A connection and the bytes of its next request received so far."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any, read_seconds: float) -> None:
        super().__init__(cfg, sock, client, server)
        self.read_seconds = read_seconds
        self.received = bytearray()
        self.deadline = 0.0
        self.continued = False
        self.data_ready = True  # gunicorn's thread must not wait for data: it is here

    def init(self) -> None:
        """On the thread, before parsing: the parser reads the bytes already received first."""
        super().init()
        self.sock.settimeout(self.read_seconds)
        if self.received:
            self.parser.unreader.unread(bytes(self.received))
            self.received = bytearray()


class WholeRequestWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with requests read whole in the main loop (see the module's docstring). The class
    attributes are set by `whole_request_worker` for one `serve`."""

    read_seconds = CLIENT_READ_SECONDS
    budget_bytes = BUFFER_BUDGET_BYTES
    max_body_bytes = 5 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arriving: set[ArrivingConnection] = set()
        self.buffered = 0
        cfg = self.cfg
        self.max_header_bytes = (
            cfg.limit_request_line + cfg.limit_request_fields * (cfg.limit_request_field_size + 2) + 4
        )

    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        server = listener.getsockname()
        self._await_request(ArrivingConnection(self.cfg, client_sock, client_addr, server, self.read_seconds))

    def on_client_socket_readable(self, conn: ArrivingConnection, client: Any) -> None:
        """A kept-alive connection has begun its next request: read it here, not on a thread."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)
        self._receive(conn, client)

    def _await_request(self, conn: ArrivingConnection) -> None:
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + self.cfg.keepalive  # until its first byte
        conn.continued = False
        self.arriving.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))

    def _receive(self, conn: ArrivingConnection, _client: Any) -> None:
        try:
            data = conn.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if self.buffered + len(data) > self.budget_bytes:
            self._close(conn, OVER_BUDGET)
            observe_request_cut(self.wsgi, "over-budget")
            return
        if not conn.received:
            conn.deadline = time.monotonic() + self.read_seconds
        conn.received += data
        self.buffered += len(data)
        framing = frame(conn.received, self.max_header_bytes, self.max_body_bytes)
        if framing.expects_continue and not conn.continued:
            conn.continued = True
            if not self._send(conn, CONTINUE):
                self._close(conn)
                return
        if framing.ready:
            self._stop_waiting(conn)
            self.enqueue_req(conn)

    def handle_request(self, req: Any, conn: ArrivingConnection) -> Any:
        if conn.continued:
            req._expected_100_continue = False  # this loop has sent it: the client must not get two
        return super().handle_request(req, conn)

    def murder_pending(self) -> None:
        """Each turn of the main loop: close the connections whose request is overdue; when the
        worker is stopping, those that have not begun one."""
        super().murder_pending()
        now = time.monotonic()
        for conn in list(self.arriving):
            overdue = conn.deadline <= now
            if overdue and conn.received:
                self._close(conn, TIMED_OUT)
                observe_request_cut(self.wsgi, "read-timeout")
            elif not conn.received and (overdue or not self.alive):
                self._close(conn)

    def _stop_waiting(self, conn: ArrivingConnection) -> None:
        self.arriving.discard(conn)
        self.buffered -= len(conn.received)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: ArrivingConnection, answer: bytes = b"") -> None:
        self._stop_waiting(conn)
        if answer:
            self._send(conn, answer)
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send(conn: ArrivingConnection, data: bytes) -> bool:
        """Best effort, never blocking: a short status line fits any socket buffer not full."""
        try:
            return conn.sock.send(data) == len(data)
        except OSError:
            return False


def whole_request_worker(
    read_seconds: float, max_body_bytes: int, budget_bytes: int
) -> type[WholeRequestWorker]:
    """The worker class for one `serve`, its limits set."""
    return type(
        "WholeRequestWorker",
        (WholeRequestWorker,),
        {"read_seconds": read_seconds, "max_body_bytes": max_body_bytes, "budget_bytes": budget_bytes},
    )
