"""The main loop of `idds-crd serve`'s worker (service/whole_requests.py) on real sockets: a request
is handed to a thread only once whole, bytes arriving in pieces are collected, what all requests
not yet answered hold together (queued for a thread included) stays within the worker's budget
(503 beyond it, counted), bytes pipelined behind a request come back to the loop, and a thread
parses only the bytes received, reading them as one stream in linear time. A thread writes without
waiting on the client: what the socket does not take (file answers and gunicorn's refusals
included) is kept in order for the loop, which sends it within the budget."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import selectors
import socket
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser
from hypothesis import given, settings
from hypothesis import strategies as st

from service import request_log, whole_requests
from service.connection_answers import OVER_BUDGET
from service.request_framing import RequestFramer
from service.whole_requests import (
    AnswerWriter,
    ArrivingConnection,
    ReceivedUnreader,
    WholeRequestWorker,
)
from tests import regex_support
from tests.observability_support import scrape, value

REQUEST = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 200\r\n\r\n" + b"x" * 200
UNFINISHED = len(REQUEST) - 10


class LoopOnly(WholeRequestWorker):
    """The worker's main-loop part alone: no gunicorn arbiter, no thread pool (handed-over
    connections are kept in `handed`)."""

    def __init__(self, app: Flask, budget_bytes: int) -> None:  # gunicorn's Worker.__init__ not run
        self.cfg = SimpleNamespace(keepalive=5)
        self.poller = selectors.DefaultSelector()
        self.arriving = set()
        self.answering = set()
        self.lingering = set()
        self.buffered = 0
        self.nr_conns = 0
        self.max_header_bytes = 8192
        self.budget_bytes = budget_bytes
        self.wsgi = app
        self.log = logging.getLogger("gunicorn.error")
        self.handed: list[ArrivingConnection] = []

    def enqueue_req(self, conn: Any) -> None:
        self.handed.append(conn)

    def connect(self) -> tuple[ArrivingConnection, socket.socket]:
        ours, theirs = socket.socketpair()
        self.nr_conns += 1
        framer = RequestFramer(self.max_header_bytes, self.max_body_bytes)
        conn = ArrivingConnection(self.cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2), 10.0, framer)
        self._await_request(conn)
        return conn, theirs

    def thread_done(
        self, conn: ArrivingConnection, keep_alive: bool, buffered_by_parser: bytes = b""
    ) -> None:
        """As gunicorn's thread pool reports a handled request, its parser having read ahead
        `buffered_by_parser`."""
        assert conn.received.endswith(buffered_by_parser)
        unreader = ReceivedUnreader(bytes(conn.received))
        unreader.at = len(conn.received) - len(buffered_by_parser)  # the request parsed, not what follows
        conn.parser = SimpleNamespace(unreader=unreader)
        done: Future[bool] = Future()
        done.set_result(keep_alive)
        self.handed.remove(conn)
        self.finish_request(conn, done)

    def turn(self) -> None:
        for key, _ in self.poller.select(timeout=0.5):
            key.data(key.fileobj)


class ThreadPart(WholeRequestWorker):
    """The worker's thread part alone: `handle` on one connection, as gunicorn's thread pool runs
    it (no arbiter, no main loop)."""

    def __init__(self, app: Flask) -> None:  # gunicorn's Worker.__init__ not run
        self.cfg = Config()
        self.wsgi = app
        self.log = Logger(self.cfg)
        self.alive = True
        self.nr = 0
        self.max_requests = 10**9
        self.keepalived_conns: deque[Any] = deque()
        self.max_keepalived = 100

    def connect(self, request: bytes) -> tuple[ArrivingConnection, socket.socket]:
        """A connection whose `request` has arrived whole."""
        ours, theirs = socket.socketpair()
        framer = RequestFramer(8192, 2**20)
        conn = ArrivingConnection(self.cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2), 10.0, framer)
        conn.received = bytearray(request)
        return conn, theirs


def fill(sock: socket.socket) -> int:
    """Writes to `sock` until it takes no more (its peer reading none of it); how much it took."""
    sock.setblocking(False)
    taken = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            taken += sock.send(b"-" * 65536)
    return taken


def answer_and_close(client: socket.socket) -> bytes:
    """All the worker sends a client before it closes the connection."""
    received = b""
    while piece := client.recv(4096):
        received += piece
    return received


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_a_request_arriving_in_pieces_is_handed_over_once_whole(app: Flask, sockets: list) -> None:
    worker = LoopOnly(app, budget_bytes=1024)
    conn, client = worker.connect()
    sockets += [conn.sock, client]
    for piece in (REQUEST[:10], REQUEST[10:40], REQUEST[40:100], REQUEST[100:-1]):
        client.sendall(piece)
        worker.turn()
        assert worker.handed == []
    assert worker.buffered == len(REQUEST) - 1
    client.sendall(REQUEST[-1:])
    worker.turn()
    assert worker.handed == [conn] and bytes(conn.received) == REQUEST
    assert worker.arriving == set()
    worker.thread_done(conn, keep_alive=False)
    assert worker.buffered == 0


def test_unfinished_requests_stay_within_the_budget(app: Flask, sockets: list) -> None:
    before = value(scrape(app), "idds_crd_requests_cut_total", reason="over-budget") or 0
    worker = LoopOnly(app, budget_bytes=len(REQUEST) + 20)
    first, first_client = worker.connect()
    second, second_client = worker.connect()
    sockets += [first.sock, first_client, second.sock, second_client]
    first_client.sendall(REQUEST[:UNFINISHED])
    worker.turn()
    second_client.sendall(REQUEST[:40])  # 30 bytes over the budget
    worker.turn()
    assert answer_and_close(second_client) == OVER_BUDGET
    assert worker.arriving == {first} and worker.buffered == UNFINISHED and worker.lingering == {second}
    second_client.close()
    worker.turn()
    assert worker.lingering == set() and worker.nr_conns == 1
    assert value(scrape(app), "idds_crd_requests_cut_total", reason="over-budget") == before + 1
    first_client.sendall(REQUEST[UNFINISHED:])
    worker.turn()
    assert worker.handed == [first]
    worker.thread_done(first, keep_alive=False)
    assert worker.buffered == 0


def test_requests_queued_for_a_thread_count_against_the_budget(app: Flask, sockets: list) -> None:
    """Whole requests waiting for a busy thread still hold their bytes: another arriving beside them,
    unfinished or whole, is refused once all together would pass the budget, and their bytes count
    until their thread is done."""
    worker = LoopOnly(app, budget_bytes=2 * len(REQUEST) + 20)
    queued = [worker.connect() for _ in range(2)]
    late, late_client = worker.connect()
    sockets += [late.sock, late_client] + [s for pair in queued for s in (pair[0].sock, pair[1])]
    for _, client in queued:
        client.sendall(REQUEST)
        worker.turn()
    assert len(worker.handed) == 2 and worker.buffered == 2 * len(REQUEST)
    late_client.sendall(REQUEST[:40])
    worker.turn()
    assert answer_and_close(late_client) == OVER_BUDGET
    whole, whole_client = worker.connect()
    sockets += [whole.sock, whole_client]
    whole_client.sendall(REQUEST)  # complete in one read: refused all the same
    worker.turn()
    assert answer_and_close(whole_client) == OVER_BUDGET and len(worker.handed) == 2
    worker.thread_done(queued[0][0], keep_alive=False)
    assert worker.buffered == len(REQUEST)


def test_bytes_pipelined_behind_a_request_are_waited_on_in_the_loop(app: Flask, sockets: list) -> None:
    """A client that sent the start of its next request with the first: the rest is collected by the
    loop, and a thread gets the connection again only once that request is whole."""
    worker = LoopOnly(app, budget_bytes=4096)
    conn, client = worker.connect()
    sockets += [conn.sock, client]
    client.sendall(REQUEST + REQUEST[:UNFINISHED])
    worker.turn()
    assert worker.handed == [conn]
    worker.thread_done(conn, keep_alive=True, buffered_by_parser=REQUEST[:UNFINISHED])
    assert worker.handed == [] and worker.arriving == {conn} and worker.buffered == UNFINISHED
    assert conn.parser.unreader.received == b""  # the answered request's bytes are let go
    client.sendall(REQUEST[UNFINISHED:])
    worker.turn()
    assert worker.handed == [conn] and bytes(conn.received) == REQUEST


def test_a_connection_not_kept_alive_is_closed_after_the_client_closes_its_side(
    app: Flask, sockets: list
) -> None:
    """The loop sends FIN and reads what the client still sends until it closes, without blocking."""
    worker = LoopOnly(app, budget_bytes=4096)
    conn, client = worker.connect()
    sockets += [conn.sock, client]
    client.sendall(REQUEST)
    worker.turn()
    worker.thread_done(conn, keep_alive=False)
    assert worker.lingering == {conn} and worker.nr_conns == 1
    assert client.recv(1) == b""  # the service's side is shut
    client.sendall(b"the rest of a body nobody reads")
    worker.turn()
    assert worker.lingering == {conn}
    client.shutdown(socket.SHUT_WR)
    worker.turn()
    assert worker.lingering == set() and worker.nr_conns == 0


def test_an_answer_the_client_is_slow_to_take_is_sent_by_the_loop_within_the_budget(
    app: Flask, sockets: list
) -> None:
    """What the socket did not take of an answer while the thread wrote it is sent by the loop as the
    client reads; it and the bytes pipelined behind the request count against the budget until
    then, and the answer's buffer is let go once sent; only then is the next request awaited (or
    the connection closed)."""
    worker = LoopOnly(app, budget_bytes=2**20)
    answer = bytes(range(256)) * 16384  # 4 MiB, more than a socket pair holds
    for keep_alive, pipelined in ((True, REQUEST[:UNFINISHED]), (False, b"")):
        conn, client = worker.connect()
        sockets += [conn.sock, client]
        client.sendall(REQUEST + pipelined)
        worker.turn()
        conn.sock.setblocking(False)
        writer = AnswerWriter(conn.sock)
        writer.sendall(answer)
        conn.unsent = memoryview(writer.unsent)
        assert 0 < len(conn.unsent) < len(answer)
        worker.thread_done(conn, keep_alive, buffered_by_parser=pipelined)
        assert worker.answering == {conn} and worker.buffered == len(conn.unsent) + len(pipelined)
        received = b""
        while len(received) < len(answer):
            received += client.recv(2**20)
            worker.turn()
        assert received == answer
        assert worker.answering == set() and conn.unsent.obj is not writer.unsent
        if keep_alive:  # the start of the next request, charged again as it is awaited
            assert worker.arriving == {conn} and worker.buffered == len(pipelined)
            worker._close(conn)
        else:
            assert worker.lingering == {conn} and worker.buffered == 0
            assert client.recv(1) == b""  # then closed


def test_a_file_answer_goes_through_the_writer_in_order(sockets: list, tmp_path: Path) -> None:
    """gunicorn sends a file answer with `sendfile` (from an offset, a count of bytes): through the
    writer, behind what it already holds, never past it to the socket."""
    ours, theirs = socket.socketpair()
    sockets += [ours, theirs]
    file = tmp_path / "answer.bin"
    file.write_bytes(bytes(range(256)) * 1024)
    taken = fill(ours)
    writer = AnswerWriter(ours)
    writer.sendall(b"HEAD")
    with file.open("rb") as opened:
        assert writer.sendfile(opened, offset=3, count=200_000) == 200_000
    assert bytes(writer.unsent) == b"HEAD" + file.read_bytes()[3:200_003]
    received = b""
    while len(received) < taken:
        received += theirs.recv(taken)
    theirs.setblocking(False)
    assert received == b"-" * taken
    with pytest.raises(BlockingIOError):  # nothing of it reached the socket past the writer
        theirs.recv(1)


def test_gunicorn_s_refusal_after_an_answer_not_yet_taken_follows_it(app: Flask, sockets: list) -> None:
    """A request whose body the application does not read and whose chunks then break off: gunicorn
    writes its 400 once the application's 200 is written. With the socket full, none of the 200 is
    taken yet when the 400 is written: the 400 is kept behind it (it was written to the socket
    first, into the 200's body, or lost when the socket was full)."""
    worker = ThreadPart(app)
    broken = b"GET /openapi.json HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nZZ\r\n"
    conn, client = worker.connect(broken)
    sockets += [conn.sock, client]
    fill(conn.sock)
    assert worker.handle(conn) is False
    unsent = bytes(conn.unsent)
    head, _, rest = unsent.partition(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1]
    )
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(rest[:length])["openapi"]
    refusal = rest[length:]
    assert refusal.startswith(b"HTTP/1.1 400 ") and b"OperationOutcome" in refusal


def test_a_thread_parses_the_bytes_received_and_never_waits_for_more(sockets: list) -> None:
    """gunicorn's parser over what the loop received: a whole request is parsed from it, whatever lies
    beyond is handed back for the loop, and a request cut short reaches the end of the stream
    instead of reading the socket (the client here never sends; a read of it would time out)."""
    ours, theirs = socket.socketpair()
    sockets += [ours, theirs]
    ours.settimeout(1)
    parser = RequestParser(Config(), ours, ("127.0.0.1", 1))
    parser.unreader = ReceivedUnreader(REQUEST + REQUEST[:UNFINISHED])
    assert next(parser).body.read() == b"x" * 200
    assert parser.unreader.take_buffered() == REQUEST[:UNFINISHED]
    cut_short = RequestParser(Config(), ours, ("127.0.0.1", 1))
    cut_short.unreader = ReceivedUnreader(REQUEST[:30])
    with pytest.raises(NoMoreData):
        next(cut_short)


READS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(1, 40_000), st.one_of(st.none(), st.integers(0, 2**20))),
        st.tuples(st.just("next"), st.none(), st.one_of(st.none(), st.integers(0, 2**20))),
        st.tuples(st.just("unread"), st.integers(0, 9_000), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 100_000), READS)
def test_the_received_bytes_read_as_one_stream_with_what_is_pushed_back_in_front(
    length: int, reads: list
) -> None:
    """What gunicorn's parser may ask of its reader, in any mix: a sized read gives the next that many
    bytes, a next-piece read gives some of the next bytes (none only at the end), bytes pushed back
    come first; and what is left over is handed back whole."""
    data = bytes(i % 251 for i in range(length))
    unreader, pending = ReceivedUnreader(data), data
    for kind, size, read_ahead in reads:
        if kind == "unread":
            unreader.unread(data[:size])
            pending = data[:size] + pending
            continue
        got = unreader.read(size if kind == "read" else None, read_ahead)
        if kind == "read":
            assert got == pending[:size]
        else:
            assert pending.startswith(got) and (got or not pending)
        pending = pending[len(got) :]
    assert unreader.take_buffered() == pending


def test_a_body_read_in_small_steps_is_not_copied_whole_at_each_step() -> None:
    """gunicorn drains a body the application left unread 1 KiB at a time, its reader free to read
    ahead to the body's end: each step must not hold (and so copy) the rest of the body again."""
    body = b"x" * 2**20
    parser = RequestParser(Config(), iter(()), ("127.0.0.1", 1))
    parser.unreader = ReceivedUnreader(
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    request = next(parser)
    read = b""
    while piece := request.body.read(1024):
        read += piece
        assert len(parser.unreader.buf.getvalue()) <= 8192
    assert read == body


def test_a_flaw_in_the_framing_costs_one_connection_not_the_loop(
    app: Flask, sockets: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the main loop would end the worker and every connection it holds: the request
    goes to gunicorn's parser as it stands instead, and the flaw is logged."""
    worker = LoopOnly(app, budget_bytes=4096)
    conn, client = worker.connect()
    sockets += [conn.sock, client]

    def flawed(received: bytearray) -> None:
        raise ValueError("a framing bug")

    monkeypatch.setattr(conn.framer, "frame", flawed)
    client.sendall(REQUEST[:10])
    worker.turn()
    assert worker.handed == [conn]
    assert "could not frame a request" in caplog.text


class RecordingLog:
    """Stands for gunicorn's logger: keeps every message logged (gunicorn's own does not propagate)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> Any:
        def logged(message: object, *args: object, **kwargs: object) -> None:
            if level != "access":  # `serve` keeps no access log (`accesslog: None`)
                self.lines.append(str(message) % args if args else str(message))

        return logged


JWT = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2Voci5leGFtcGxlIn0.c2lnbmF0dXJlLW9mLXRoZS1laHI"
)


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization Bearer {JWT}",  # the colon left out: gunicorn quotes the line as an invalid header
        f"Bearer {JWT}: x",  # an invalid header name
        f"X-Token {JWT}",
        # cut across two header lines (review24b R1): the first a valid header, the second quoted
        f"Authorization: Bearer {JWT[:45]}\r\n{JWT[45:]}",
    ],
)
def test_a_refused_request_s_credential_is_neither_logged_nor_repeated(
    app: Flask, sockets: list, line: str
) -> None:
    """gunicorn logs a refused request's offending part (a WARNING) and this worker's answer quoted it:
    a header line holding the EHR's JWT, refused before the token was checked (so never claimed),
    put a live token in the log. Both now say `[removed]` where it was."""
    refused = f"POST /cds-services/x HTTP/1.1\r\nHost: h\r\n{line}\r\nContent-Length: 0\r\n\r\n".encode()
    worker, answered = _refused(app, sockets, refused)
    signature = JWT.rsplit(".", 1)[1]
    assert signature.encode() not in answered
    assert not [logged for logged in worker.log.lines if signature in logged or "eyJpc3Mi" in logged]
    assert not [logged for logged in worker.log.lines if JWT[45:60] in logged]


def _refused(app: Flask, sockets: list, sent: bytes) -> tuple[ThreadPart, bytes]:
    """A worker handed `sent`, which gunicorn refuses, and what it answered: a 400 that, as its log,
    says `[removed]` where a credential was."""
    worker = ThreadPart(app)
    worker.log = RecordingLog()
    conn, client = worker.connect(sent)
    sockets += [conn.sock, client]
    assert worker.handle(conn) is False
    client.setblocking(False)
    answered = bytes(conn.unsent) + client.recv(65536)
    assert answered.startswith(b"HTTP/1.1 400 ") and b"[removed]" in answered
    assert worker.log.lines and any("[removed]" in logged for logged in worker.log.lines)
    return worker, answered


SECRET = "s3cr3tV4lu3"


@pytest.mark.parametrize(
    "refused",
    [
        # a header line missing its colon, quoted whole (review24b R2): any scheme, any credential header
        f"Authorization Basic {SECRET}=",
        f'Authorization Digest username="u", response="{SECRET}"',
        f"Proxy-Authorization Negotiate {SECRET}",
        f"Cookie session={SECRET}; theme=dark",
        f"X-Api-Key {SECRET}",
        f"X-Auth-Token {SECRET}",
        # a request line refused (two parts; a CTL in its target), quoted whole: OAuth's parameters
        f"POST /cds-services/x?access_token={SECRET}",
        f"POST /cds-services/x?a=1&id_token={SECRET}",
        f"GET /callback?code={SECRET}&state=1",
        f"POST /token?client_id=a&client_secret={SECRET}",
        f"POST /x?token={SECRET}\x01 HTTP/1.1",
        f"POST http://u:{SECRET}@h/cds-services/x",  # a URL's user information
    ],
)
def test_a_refused_request_s_other_credentials_are_neither_logged_nor_repeated(
    app: Flask, sockets: list, refused: str
) -> None:
    """Not only a JWT or a Bearer value: a Basic, Digest or Negotiate credential, a cookie, an API key,
    an OAuth token or code in a query, or a URL's password, in the request text gunicorn quotes, was
    logged and answered as sent. Each now reads `[removed]`, the header's or the parameter's name kept."""
    head = refused if refused.startswith(("GET ", "POST ")) else f"POST /x HTTP/1.1\r\nHost: h\r\n{refused}"
    worker, answered = _refused(app, sockets, f"{head}\r\nHost: h\r\nContent-Length: 0\r\n\r\n".encode())
    assert SECRET.encode() not in answered
    assert not [logged for logged in worker.log.lines if SECRET in logged]


REDACTION_PATTERNS = {
    **{f"request_log.{name}": read for name, read in regex_support.patterns_read(request_log).items()},
    **{f"whole_requests.{name}": read for name, read in regex_support.patterns_read(whole_requests).items()},
}


@pytest.mark.parametrize("name", sorted(REDACTION_PATTERNS))
def test_taking_credentials_out_of_a_long_line_reads_no_run_of_it_once_per_position(name: str) -> None:
    """The text is the sender's (a header line up to 8 KiB): a rule tried again from each character of a
    run it scans to its end (`[a-z][a-z0-9+.-]*+://` searched over `http://aaa…`, a parameter's name
    reading on over the next `?` in `?a?a…`) took a second for 8 KiB, a minute for 64 KiB; each is begun
    only where its run begins (review24b R2). Its test timed 64 KiB lines (< 2 s): a timed test flakes on
    a loaded machine and passes on a fast one however slow the shape, so the shape is told from each
    pattern's parsed form instead (tests/regex_support.py), for every pattern `redacted` and
    `without_credentials` read, searched for or matched as their modules call them."""
    pattern, searched = REDACTION_PATTERNS[name]
    assert regex_support.backtracking(pattern, searched) == [], pattern.pattern


def test_the_patterns_read_are_the_redaction_rules() -> None:
    """What the test above reads: each rule `redacted` applies, searched for (`sub`)."""
    rules = ("URL_USERINFO", "QUERY_PARAMETER", "SCHEME_CREDENTIAL", "HEADER_LINE", "JWT_RUN")
    assert all(REDACTION_PATTERNS[f"request_log.{rule}"][1] for rule in rules)


@pytest.mark.parametrize(
    ("pattern", "quadratic"),
    [
        # review24b R2's URL rule without its look-behind: a scheme begun at each letter of `http://aaa…`
        (r"(?i)([a-z][a-z0-9+.-]*+://)[^/\s'\"@?#]*+@", True),
        (r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://)[^/\s'\"@?#]*+@", False),  # as it is
        # a parameter's name reading on over the next `?` of `?a?a…`
        (r"([?&;][^=&;\s'\"#]++=)([^&;\s'\"#]++)", True),
        (r"([?&;][^=&;\s'\"#?]++=)([^&;\s'\"#]++)", False),  # as it is
        (r"[\s-]++$", True),  # possessive, yet searched again from each position of the run
        (r"(?<![\s-])[\s-]++$", False),
        (r"x[^/]*+@", True),
        (r"x://[^/]*+@", False),  # a match begun inside the run must leave it (at `/`) to read it again
    ],
)
def test_the_shape_check_tells_the_redactions_quadratic_variants(pattern: str, quadratic: bool) -> None:
    """The check above finds the shapes the redaction rules were written against, possessive repeats
    included, and passes the rules as they are."""
    assert bool(regex_support.backtracking(re.compile(pattern), True)) is quadratic


@pytest.mark.parametrize("path", ["/nowhere", "/cds-services"])
def test_a_body_labelled_chunked_but_sent_whole_is_not_quoted_when_drained_unread(
    app: Flask, sockets: list, path: str
) -> None:
    """A route that answers without reading the body (a 404, discovery, a 401 before the JWT's check)
    leaves gunicorn to drain it: a body labelled chunked but sent whole had its first line quoted as
    "Invalid chunk size: b'{"fhirAuthorization": {"access_token": …'", logged and answered, the
    EHR's FHIR token (and whatever else that line holds of the chart) with it. Now only counted."""
    worker = ThreadPart(app)
    worker.log = RecordingLog()
    line = json.dumps({"hook": "order-select", "fhirAuthorization": {"access_token": SECRET}})
    sent = f"POST {path} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{line}\r\n"
    conn, client = worker.connect(sent.encode())
    sockets += [conn.sock, client]
    worker.handle(conn)
    client.setblocking(False)
    answered = bytes(conn.unsent) + client.recv(65536)
    assert [logged for logged in worker.log.lines if f"[removed: {len(line)} bytes of the body]" in logged]
    assert SECRET.encode() not in answered
    assert not [logged for logged in worker.log.lines if SECRET in logged]
