"""gunicorn's gthread worker, taking each request into a thread only once the whole of it is here.

gunicorn's own gthread worker gives a connection a thread as soon as its first byte arrives and
reads the request line, headers and body there with no time limit, so `workers * threads` clients
sending a byte now and then hold every thread of the service (slowloris). This worker reads in its
main loop instead, the way a buffering proxy does: a connection's bytes are collected, without
blocking, until `service.request_framing` says its request is complete, and only then does a
thread parse and answer it from those bytes. A request that has not arrived whole within
`read_seconds` of its first byte is answered 408 and its connection closed; a connection that sends
nothing is closed after the keep-alive time (at most 2 s once the worker is stopping).

What all connections of a worker hold, from a request's first byte until its thread is done with it
(queued for a thread included) and until the client has taken its answer, is bounded by
`budget_bytes`: a request that would go past it is answered 503 and its connection closed. Bytes
pipelined behind a request go back to this loop, not to the thread. A request gunicorn must refuse
is handed over as it stands; one with a body over `max_request_bytes` is handed over once the
application can tell (413), its connection then closed without reading the rest. Closing waits for
the client's side as gunicorn does (FIN, then at most 2 s or 64 KiB of what it still sends is read
and dropped), here without blocking the loop. A thread parses only the bytes this loop received,
served to gunicorn's parser in socket-sized pieces and then as the end of the stream, so it never
waits on a client, whatever the framing concluded. Nor does it wait on a client slow to read: what
the socket does not take at once of an answer is sent by this loop as the client reads it, and a
client that takes none of it for `read_seconds` is cut off by a reset (taking shows in what the
kernel still holds for it, looked at every `LOOK_SECONDS`: the socket is writable again only once
much of that is gone); only then is the connection's next request read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import re
import selectors
import socket
import struct
import termios
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any, BinaryIO

from gunicorn import util
from gunicorn.http.errors import InvalidChunkSize
from gunicorn.http.unreader import SocketUnreader, Unreader
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from service.arrival import arrived
from service.connection_answers import OVER_BUDGET, TIMED_OUT, TOO_LONG, StatusLine, answer
from service.observability import observe_request_cut
from service.request_framing import REFUSED, RequestFramer
from service.request_log import redacted

CLIENT_READ_SECONDS = 10.0  # from a request's first byte to its last; EHRs send theirs in milliseconds
BUFFER_BUDGET_BYTES = 64 * 1024 * 1024  # a worker's requests not yet answered and answers not yet taken
RECEIVE_BYTES = 256 * 1024
SOCKET_READ_BYTES = 8192  # gunicorn's SocketUnreader's
LINGER_SECONDS = 2.0  # as gunicorn's close_graceful
LINGER_BYTES = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LOOK_SECONDS = 0.5  # how often the loop looks whether a client is taking its answer
NOTHING = memoryview(b"")
# What gunicorn says itself of a chunk-size line, quoted as it stands; any other is the body's own text.
GUNICORN_S_OWN = re.compile(rb"line over \d+ bytes with no terminator")


class ReceivedUnreader(Unreader):  # type: ignore[misc]
    """The bytes a request arrived in, read by gunicorn's parser as from its socket: 8 KiB at a
    time, or as much as the caller may consume up to 1 MiB (gunicorn's `SocketUnreader` sizes), then
    the end of the stream. Small pieces keep gunicorn's chunked reader linear."""

    def __init__(self, received: bytes) -> None:
        super().__init__()
        self.received = received
        self.at = 0

    def chunk(self, size_hint: int | None = None) -> bytes:
        size = SOCKET_READ_BYTES
        if size_hint and size_hint > size:
            size = min(size_hint, SocketUnreader.max_body_chunk)
        piece = self.received[self.at : self.at + size]
        self.at += len(piece)
        return piece

    def read(self, size: int | None = None, read_ahead: int | None = None) -> bytes:
        """As gunicorn's `Unreader.read`, without reading ahead: the next `size` bytes are what was
        pushed back (the headers' read-ahead, at most a socket-sized piece) and then those received.
        Its own way, asked for 1 KiB while it may read ahead to the end of the body (as gunicorn
        drains a body the application left unread), copies the whole rest of the body through its
        buffer on every call: 84 ms of CPU for a 5 MiB body."""
        if not isinstance(size, int) or size <= 0:
            return bytes(super().read(size, read_ahead))
        held = self.buf.getvalue()
        self.buf = io.BytesIO()
        if len(held) >= size:
            self.buf.write(held[size:])
            return held[:size]
        piece = self.received[self.at : self.at + size - len(held)]
        self.at += len(piece)
        return held + piece if held else piece

    def take_buffered(self) -> bytes:
        """What the parser has not consumed (read ahead, and not yet read), the rest let go: a
        kept-alive connection must not hold its last request's bytes while it idles."""
        rest = self.received[self.at :]
        self.received = b""
        self.at = 0
        return bytes(super().take_buffered()) + rest


class AnswerWriter:
    """Stands for a connection's socket while a thread handles its request: what the socket takes at
    once of an answer is sent, the rest (a client slow to read) is kept, and what follows is kept
    behind it, for the worker's main loop to send, so the thread is free as soon as the answer is
    made. Anything but writing goes to the socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.unsent = bytearray()

    def sendall(self, data: bytes) -> None:
        if not self.unsent:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        self.unsent += data

    def sendfile(self, file: BinaryIO, offset: int = 0, count: int | None = None) -> int:
        """As `socket.sendfile` (gunicorn's way to send a file answer), through `sendall`."""
        file.seek(offset)
        data = file.read() if count is None else file.read(count)
        self.sendall(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class ArrivingConnection(TConn):  # type: ignore[misc]
    """A connection and the bytes of its next request received so far."""

    def __init__(
        self, cfg: Any, sock: Any, client: Any, server: Any, read_seconds: float, framer: RequestFramer
    ) -> None:
        super().__init__(cfg, sock, client, server)
        self.read_seconds = read_seconds
        self.framer = framer
        self.received = bytearray()
        self.charged = 0  # bytes counted against the worker's budget until its thread is done
        self.deadline = 0.0
        self.continued = False
        self.must_close = False
        self.lingered = 0
        self.unsent = NOTHING  # what the client has yet to take of its last answer
        self.queued: int | None = None  # what the kernel held for the client when last looked at
        self.look_at = 0.0  # when to look at that again
        self.data_ready = True  # gunicorn's thread must not wait for data: it is here
        self.arrived = 0.0  # when its request was here whole (service.arrival)

    def init(self) -> None:
        """On the thread, before parsing: the parser reads the bytes received, and no more, and the
        answer is written without waiting on the client (`AnswerWriter`)."""
        super().init()
        self.sock.setblocking(False)
        self.parser.unreader = ReceivedUnreader(bytes(self.received))
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
        self.answering: set[ArrivingConnection] = set()
        self.lingering: set[ArrivingConnection] = set()
        self.buffered = 0
        self.stop_by = 0.0
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
        framer = RequestFramer(self.max_header_bytes, self.max_body_bytes, self.cfg.limit_request_field_size)
        conn = ArrivingConnection(
            self.cfg, client_sock, client_addr, listener.getsockname(), self.read_seconds, framer
        )
        self._await_request(conn)

    def on_client_socket_readable(self, conn: ArrivingConnection, client: Any) -> None:
        """A kept-alive connection has begun its next request: read it here, not on a thread."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)
        self._receive(conn, client)

    def _await_request(self, conn: ArrivingConnection, pipelined: bytes = b"") -> None:
        """Waits for the connection's next request, of which `pipelined` has arrived already."""
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + self.cfg.keepalive  # until its first byte
        conn.received = bytearray()
        conn.framer.reset()
        conn.continued = False
        conn.must_close = False
        self.arriving.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))
        if pipelined:
            self._take(conn, pipelined)

    def _receive(self, conn: ArrivingConnection, _client: Any) -> None:
        data = _received(conn, RECEIVE_BYTES)
        if data:
            self._take(conn, data)
        elif data is not None:
            self._close(conn)

    def _take(self, conn: ArrivingConnection, data: bytes) -> None:
        """Adds bytes of the connection's request; hands it to a thread once whole."""
        if not conn.received:
            conn.deadline = time.monotonic() + self.read_seconds
        conn.received += data
        conn.charged += len(data)
        self.buffered += len(data)
        try:
            framing = conn.framer.frame(conn.received)
        except Exception:  # a flaw in the framing must cost one connection, not the worker's loop
            self.log.exception("could not frame a request; gunicorn's parser answers it")
            framing = REFUSED
        if framing.too_long:
            self._close(conn, TOO_LONG)
        elif self.buffered > self.budget_bytes:
            self._close(conn, OVER_BUDGET)
            observe_request_cut(self.wsgi, "over-budget")
        elif framing.ready:
            conn.arrived = time.monotonic()
            conn.must_close = framing.oversized
            self._stop_waiting(conn)
            self.enqueue_req(conn)
        elif framing.expects_continue and not conn.continued:
            conn.continued = True
            self._continue(conn)

    def _continue(self, conn: ArrivingConnection) -> None:
        """Sends `100 Continue`; behind answers the client has yet to take, as it takes them, the
        body not read meanwhile (the client sends none before it has read this)."""
        conn.unsent = memoryview(CONTINUE)
        if self._sent_unsent(conn) is False:
            self.poller.modify(conn.sock, selectors.EVENT_WRITE, partial(self._write_continue, conn))

    def _write_continue(self, conn: ArrivingConnection, _client: Any) -> None:
        if self._sent_unsent(conn):
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))

    def handle_request(self, req: Any, conn: ArrivingConnection) -> Any:
        req._expected_100_continue = False  # the body is here: this loop sent 100 Continue if it was due
        if conn.must_close:
            req.must_close = True  # the rest of an oversized body is not read
        return super().handle_request(req, conn)

    def handle(self, conn: ArrivingConnection) -> Any:
        """gunicorn's handling on a thread, every answer (the application's and gunicorn's refusals
        alike) written through an `AnswerWriter`, whose rest `finish_request` sends."""
        writer = AnswerWriter(conn.sock)
        conn.sock = writer
        try:
            with arrived(conn.arrived):
                return super().handle(conn)
        finally:
            conn.sock = writer.sock
            conn.unsent = memoryview(writer.unsent) if writer.unsent else NOTHING

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's logging and status for a request it refuses or a failure outside the
        application; its HTML page replaced by an OperationOutcome (service.connection_answers)."""
        without_credentials(exc)
        page = StatusLine()
        super().handle_error(req, page, addr, exc)
        status, reason = page.status()
        diagnostics = f"{reason}: {exc}" if status < 500 else "the request could not be handled"
        try:
            util.write_nonblock(client, answer(status, reason, diagnostics))
        except Exception:  # as gunicorn's own: the client may be gone
            self.log.debug("Failed to send error message.")

    def finish_request(self, conn: ArrivingConnection, fs: Future[Any]) -> None:
        """On the main loop once a thread is done: what the client has yet to take of the answer is
        sent from here, then bytes pipelined behind the request are waited on here like any other
        request's, and a connection not kept alive is closed without blocking."""
        self._release(conn)
        try:
            keep_alive = False if fs.cancelled() else fs.result()
        except BaseException:  # handle() has logged what it could
            keep_alive = False
        unreader = getattr(conn.parser, "unreader", None)
        pipelined = unreader.take_buffered() if isinstance(unreader, ReceivedUnreader) else b""
        answered = partial(self._answered, conn, fs, keep_alive, pipelined)
        if conn.unsent and conn.sock.fileno() >= 0:  # gunicorn closes a connection whose answer broke off
            self._send_rest(conn, len(pipelined), answered)
        else:
            conn.unsent = NOTHING
            answered()

    def _answered(self, conn: ArrivingConnection, fs: Future[Any], keep_alive: Any, pipelined: bytes) -> None:
        if keep_alive is True and pipelined:
            self._await_request(conn, pipelined)
        elif keep_alive is False:
            self._linger(conn)
        else:
            super().finish_request(conn, fs)

    def _send_rest(self, conn: ArrivingConnection, pipelined: int, answered: Callable[[], None]) -> None:
        """Sends the rest of an answer as the client takes it; a client that takes none of it for
        `read_seconds` is cut off. The rest and the `pipelined` bytes held behind it count against
        the budget meanwhile."""
        conn.charged += len(conn.unsent) + pipelined
        self.buffered += len(conn.unsent) + pipelined
        now = time.monotonic()
        conn.deadline = now + self.read_seconds
        conn.look_at = now + LOOK_SECONDS
        conn.queued = _queued(conn.sock)
        self.answering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_WRITE, partial(self._write, conn, answered))

    def _write(self, conn: ArrivingConnection, answered: Callable[[], None], _client: Any) -> None:
        if self._sent_unsent(conn):
            self._stop_waiting(conn)
            self._release(conn)
            answered()

    def _sent_unsent(self, conn: ArrivingConnection) -> bool | None:
        """Sends what the client takes now of `conn.unsent`: True once all of it is sent (its
        buffer then let go), False while some is left, None when the connection failed (closed)."""
        try:
            sent = conn.sock.send(conn.unsent)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._close(conn)
            return None
        conn.deadline = time.monotonic() + self.read_seconds
        conn.queued = _queued(conn.sock)
        conn.unsent = conn.unsent[sent:]
        if conn.unsent:
            return False
        conn.unsent = NOTHING
        return True

    def murder_pending(self) -> None:
        """Each turn of the main loop: close the connections whose request, answer or linger is
        overdue; once the worker is stopping, those that have not begun a request within 2 s. A
        client still taking what it was sent before (megabytes of pipelined answers, a `100
        Continue` behind them) is given the time to send its next request or its body after it."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive and not self.stop_by:
            self.stop_by = now + STOP_KEEPALIVE_LINGER
        for conn in list(self.arriving):
            if not conn.received and self.stop_by:
                conn.deadline = min(conn.deadline, self.stop_by)
            if conn.deadline > now:
                continue
            if not self.stop_by and self._taking(conn):  # still reading what it was sent before
                conn.deadline = now + (self.read_seconds if conn.received else self.cfg.keepalive)
                continue
            if conn.received:
                self._close(conn, TIMED_OUT)
                observe_request_cut(self.wsgi, "read-timeout")
            else:
                self._close(conn)
        for conn in [c for c in self.answering if c.look_at <= now]:
            conn.look_at = now + LOOK_SECONDS
            if self._taking(conn):
                conn.deadline = now + self.read_seconds
            elif conn.deadline <= now:
                _reset(conn.sock)
                self._close(conn)
                observe_request_cut(self.wsgi, "write-timeout")
        for conn in [c for c in self.lingering if c.deadline <= now]:
            self._close(conn)

    @staticmethod
    def _taking(conn: ArrivingConnection) -> bool:
        """Whether the client has taken bytes the kernel held for it since last looked at (its
        kernel acknowledges them as its receive window opens): the socket is writable again only
        once it has taken a good part of them, seconds later for a client reading steadily but
        slowly through megabytes held."""
        queued = _queued(conn.sock)
        taking = queued is not None and conn.queued is not None and queued < conn.queued
        conn.queued = queued
        return taking

    def _linger(self, conn: ArrivingConnection) -> None:
        """Closes as gunicorn's close_graceful does (RFC 9112 §9.6), the reading done by this loop."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.sock.setblocking(False)
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.lingered = 0
        self.lingering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: ArrivingConnection, _client: Any) -> None:
        data = _received(conn, LINGER_BYTES)
        if data is None:
            return
        conn.lingered += len(data)
        if not data or conn.lingered >= LINGER_BYTES:
            self._close(conn)

    def _stop_waiting(self, conn: ArrivingConnection) -> None:
        self.arriving.discard(conn)
        self.answering.discard(conn)
        self.lingering.discard(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _release(self, conn: ArrivingConnection) -> None:
        """The connection's bytes no longer count against the budget."""
        self.buffered -= conn.charged
        conn.charged = 0

    def _close(self, conn: ArrivingConnection, answer: bytes = b"") -> None:
        """Closes the connection, at once or, after an answer, once the client has had it (linger)."""
        self._stop_waiting(conn)
        self._release(conn)
        if answer and self._send(conn, answer):
            self._linger(conn)
            return
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send(conn: ArrivingConnection, data: bytes) -> bool:
        """Best effort, never blocking: a short status line fits any socket buffer not full."""
        try:
            return conn.sock.send(data) == len(data)
        except OSError:
            return False


def without_credentials(exc: BaseException) -> None:
    """Takes a credential out of the request text a gunicorn refusal quotes (a header line
    `Authorization Bearer eyJ…` missing its colon is refused as an invalid header, quoting the line; a
    request line `POST /x?access_token=…` missing its version, quoting the line): gunicorn logs the
    refusal with it (CDS Hooks: never log the JWT; one refused before its check was never claimed, so
    it could still be used) and this worker's answer would repeat it. A JWT, any HTTP authentication
    scheme's credential (Basic as well as Bearer), the rest of a header line named as holding one
    (Cookie, X-Api-Key, ...), the value of a query parameter named so (access_token, code, ...) and a
    URL's user and password go: review24b R2. A chunk-size line that is none is the body's own text
    (a body labelled chunked but sent whole, drained unread after a 404 or a 401: its first line,
    `{"fhirAuthorization": {"access_token": …`), never quoted, only counted (harden25)."""
    if (
        isinstance(exc, InvalidChunkSize)
        and isinstance(exc.data, bytes)
        and not GUNICORN_S_OWN.fullmatch(exc.data)
    ):
        exc.data = f"[removed: {len(exc.data)} bytes of the body]".encode()
        return
    for name, value in vars(exc).items():
        if isinstance(value, str):
            setattr(exc, name, redacted(value))
        elif isinstance(value, bytes):
            setattr(exc, name, redacted(value.decode("latin-1")).encode("latin-1"))


def _queued(sock: socket.socket) -> int | None:
    """The bytes written to `sock` that its peer has not yet taken (Linux's SIOCOUTQ); None where
    that cannot be told."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])
    except (OSError, ValueError, AttributeError):
        return None


def _reset(sock: socket.socket) -> None:
    """Makes closing `sock` reset the connection: what the kernel holds for a client that takes
    nothing is let go at once, not kept for as long as the client keeps its end open."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _received(conn: ArrivingConnection, most: int) -> bytes | None:
    """What the client has sent, at most `most` bytes: None if nothing yet, b"" if it has closed its
    side or the connection failed."""
    try:
        return conn.sock.recv(most)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def whole_request_worker(
    read_seconds: float, max_body_bytes: int, budget_bytes: int
) -> type[WholeRequestWorker]:
    """The worker class for one `serve`, its limits set."""
    return type(
        "WholeRequestWorker",
        (WholeRequestWorker,),
        {"read_seconds": read_seconds, "max_body_bytes": max_body_bytes, "budget_bytes": budget_bytes},
    )
