"""`idds-crd serve` against clients that send slowly or oddly (issue 12, point 1): requests are read
whole in the worker's main loop before a thread takes them (service/whole_requests.py), so no
client holds a thread by dripping, pipelining, declaring a huge body or chunk, or sending a request
gunicorn's parser would chew on; a request not whole within the read timeout is answered 408, a
client connected when the service stops is still answered, and an idle kept-alive connection holds
none of its last request's bytes. Nor does a client slow to read its answers hold a thread: the
main loop sends what it has yet to take, whole and in order, and cuts it off once it takes nothing
for the read timeout. One worker with one or two threads, so a held thread shows as another client
waiting."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from service.serving import KEEPALIVE_SECONDS
from tests.observability_support import value
from tests.serving_support import (
    HEALTH_CHECK,
    Served,
    drip,
    read_answer,
    read_answers,
    serve,
    stop,
    worker_pids,
)
from tests.support import SELECT_URL, select_body

pytestmark = pytest.mark.integration


def assert_another_client_answered(served: Served, within: float, meanwhile: str) -> None:
    """A pump order-select from a new client is answered with cards within `within` seconds."""
    started = time.monotonic()
    answer = requests.post(served.url + SELECT_URL, json=select_body(), timeout=40)
    waited = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["cards"]
    assert waited < within, f"answered after {waited:.1f} s while {meanwhile}"
    print(f"another client answered in {waited * 1000:.0f} ms while {meanwhile}")


def test_clients_sending_slowly_hold_no_thread(tmp_path: Path) -> None:
    """One worker with two threads and six clients dripping their requests, two of them on a kept-alive
    connection after a first request: a seventh client is answered at once, and each dripping
    client is answered once its request is complete (gunicorn's own gthread worker gave each a
    thread for as long as it dripped, so the seventh waited for all of them)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "2")
    stop_dripping = threading.Event()
    try:
        slow = [drip(served.port, HEALTH_CHECK, stop_dripping) for _ in range(4)]
        slow += [drip(served.port, HEALTH_CHECK, stop_dripping, before=HEALTH_CHECK) for _ in range(2)]
        time.sleep(1)  # every drip has begun
        assert_another_client_answered(served, 5, "six clients dripped their requests")
        stop_dripping.set()
        for dripping in slow:
            dripping.finish()
        for dripping in slow:
            assert read_answer(dripping.sock).startswith(b"HTTP/1.1 200 ")
            dripping.sock.close()
    finally:
        stop_dripping.set()
        stop(served)


def test_requests_a_thread_once_waited_on_hold_no_thread(tmp_path: Path) -> None:
    """One worker with one thread and four clients whose requests gunicorn's thread used to wait on:
    one that pipelined the start of its next request behind a first, one that began with an empty
    line, one that declared a huge chunk and drips its data, and one whose declared body is over
    the limit (413, the connection closed, not drained by a thread) dripping that body anyway. A
    fifth client is answered at once, and the first two once their requests are complete."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1")
    stop_dripping = threading.Event()
    pipelined = HEALTH_CHECK + HEALTH_CHECK[:100]
    huge_chunk = b"POST /healthz HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFF\r\n"
    too_long = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    too_long += "Content-Length: 6000000\r\n\r\n"
    try:
        slow = [
            drip(served.port, HEALTH_CHECK[100:], stop_dripping, before=pipelined),
            drip(served.port, b"\r\n" + HEALTH_CHECK, stop_dripping),
            drip(served.port, b"x" * 1000, stop_dripping, before=huge_chunk + b"x" * 10, answered=b""),
        ]
        refused = drip(served.port, b"{" * 1000, stop_dripping, before=too_long.encode(), answered=b"413")
        time.sleep(1)
        assert_another_client_answered(served, 4, "four clients dripped")
        assert refused.sock.recv(1) == b""  # shut after its 413
        stop_dripping.set()
        for dripping in slow[:2]:
            dripping.finish()
            assert read_answer(dripping.sock).startswith(b"HTTP/1.1 200 ")
        for dripping in [*slow, refused]:
            dripping.sock.close()
    finally:
        stop_dripping.set()
        logged = stop(served)
    assert "Traceback" not in logged


def test_a_client_connected_when_the_service_stops_is_still_answered(tmp_path: Path) -> None:
    """A stopping worker keeps a just-accepted connection open a moment (2 s), as it does a kept-alive
    one, for the request its client may be sending: answered, with `Connection: close`."""
    served = serve(tmp_path, "--workers", "1")
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        time.sleep(0.2)  # accepted
        served.process.terminate()
        time.sleep(1)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        answer = read_answer(connection)
    _, logged = served.process.communicate(timeout=30)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer.lower()
    assert "Traceback" not in logged


def cuts(served: Served, reason: str) -> float:
    """How many connections /metrics counts as cut for `reason`."""
    scraped = requests.get(f"{served.url}/metrics", timeout=10).text
    return value(scraped, "idds_crd_requests_cut_total", reason=reason) or 0


def assert_still_serving_after_one_cut(served: Served, reason: str) -> None:
    """Another client is answered, and /metrics counts one connection cut for `reason`."""
    assert requests.post(served.url + SELECT_URL, json=select_body(), timeout=20).status_code == 200
    assert cuts(served, reason) == 1


def test_a_request_not_whole_within_the_read_timeout_is_answered_408(tmp_path: Path) -> None:
    """`--read-timeout 1`: a client dripping its body is answered 408 and cut off, a client that
    connects and sends nothing is closed after the keep-alive time, and neither left a stack trace."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "1")
    stop_dripping = threading.Event()
    try:
        body = json.dumps(select_body()).encode()
        head = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        started = time.monotonic()  # before the connection whose read time the server counts
        slow = drip(served.port, request, stop_dripping)
        silent = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        timed_out = read_answer(slow.sock)
        assert timed_out.startswith(b"HTTP/1.1 408 ")
        assert outcome_of(timed_out)["issue"][0]["code"] == "timeout"
        assert slow.sock.recv(1) == b""
        assert 1 <= time.monotonic() - started < 4
        assert silent.recv(1) == b""  # closed after the keep-alive time (5 s), no answer
        assert_still_serving_after_one_cut(served, "read-timeout")
    finally:
        stop_dripping.set()
        logged = stop(served)
    assert "Traceback" not in logged


OPENAPI = b"GET /openapi.json HTTP/1.1\r\nHost: h\r\n\r\n"  # a 45 KB answer
PIPELINED = 100  # 4.6 MB of answers (the most one connection gets): more than the kernel holds (4 MB)


def slow_reader(port: int, requests_sent: int, then: bytes = b"") -> socket.socket:
    """A client with a 4 KiB receive buffer that pipelines `requests_sent` requests for the OpenAPI
    document (megabytes of answers), and `then`, and reads none of them yet."""
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.settimeout(30)
    reader.connect(("127.0.0.1", port))
    reader.sendall(OPENAPI * requests_sent + then)
    return reader


def test_clients_slow_to_read_their_answers_hold_no_thread(tmp_path: Path) -> None:
    """One worker with one thread and two clients that pipelined 100 requests for a 45 KB answer and
    do not read: another client is answered at once (the answers the slow clients have yet to take
    are sent by the worker's main loop; a thread used to wait on each for up to the read timeout,
    30 s here), and each slow client gets all its answers, whole and in order, once it reads."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "30")
    readers = [slow_reader(served.port, PIPELINED) for _ in range(2)]
    try:
        time.sleep(1)  # both have filled what the sockets hold
        assert_another_client_answered(served, 5, "two clients did not read")
        expected = requests.get(served.url + "/openapi.json", timeout=10).content
        for reader in readers:
            answers = read_answers(reader, PIPELINED)
            assert len(answers) == PIPELINED
            assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(expected) for a in answers)
    finally:
        for reader in readers:
            reader.close()
        logged = stop(served)
    assert "Traceback" not in logged


def test_a_client_reading_steadily_is_not_cut_off(tmp_path: Path) -> None:
    """`--read-timeout 1` bounds how long a client may take none of its answer, not how long it may
    take to read all of them: a client that pipelined 99 requests (4.5 MB of answers) and reads
    what its 4 KiB receive buffer holds every 5 ms, several seconds in all, gets every answer."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "1")
    reader = slow_reader(served.port, 99)
    try:
        started = time.monotonic()
        answers = read_answers(reader, 99, pause=0.005)
        assert len(answers) == 99 and all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
        print(f"99 answers read in {time.monotonic() - started:.1f} s with a read timeout of 1 s")
    finally:
        reader.close()
        logged = stop(served)
    assert "Traceback" not in logged


def test_a_client_taking_none_of_its_answer_is_cut_off_and_let_go(tmp_path: Path) -> None:
    """`--read-timeout 1`: a client that takes none of its answers is cut off a second or two after
    its kernel stopped taking them (counted as a write timeout), by a reset: what the kernel still
    held for it is let go, not delivered for as long as the client keeps its end open. The service
    answers others."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "1")
    reader = slow_reader(served.port, PIPELINED)
    try:
        started = time.monotonic()
        while not cuts(served, "write-timeout") and time.monotonic() - started < 10:
            time.sleep(0.1)
        waited = time.monotonic() - started
        assert 1 <= waited < 4, f"cut off after {waited:.1f} s"  # looked at each 0.5-1 s
        received = b""
        with pytest.raises(ConnectionResetError):
            while piece := reader.recv(65536):
                received += piece
        assert len(received) < 1024 * 1024
        assert_still_serving_after_one_cut(served, "write-timeout")
    finally:
        reader.close()
        logged = stop(served)
    assert "Traceback" not in logged


def test_a_request_behind_answers_its_client_is_still_taking_is_given_time(tmp_path: Path) -> None:
    """`--read-timeout 1`: a client pipelines 40 requests (1.8 MB of answers) and a POST that waits
    for `100 Continue`, then reads what its 4 KiB receive buffer holds every 5 ms; reaching the
    `100 Continue` takes it seconds, and it then sends its body. Its request's time runs while it
    takes nothing, not while it is still reading what it was sent before (408 before)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "1")
    body = json.dumps(select_body()).encode()
    waiting = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    waiting += f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
    reader = slow_reader(served.port, 40, then=waiting.encode())
    try:
        started = time.monotonic()
        answers = read_answers(reader, 40, pause=0.005)
        assert len(answers) == 40 and all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
        continued = b""
        while not continued.endswith(b"\r\n\r\n") and (piece := reader.recv(1)):
            continued += piece
        assert continued == b"HTTP/1.1 100 Continue\r\n\r\n"
        print(f"100 Continue read after {time.monotonic() - started:.1f} s with a read timeout of 1 s")
        reader.sendall(body)
        final = read_answer(reader)
        assert final.startswith(b"HTTP/1.1 200 ") and json.loads(final.partition(b"\r\n\r\n")[2])["cards"]
    finally:
        reader.close()
        logged = stop(served)
    assert "Traceback" not in logged


def test_file_answers_are_sent_whole(tmp_path: Path) -> None:
    """The sandbox's page and scripts are files Flask hands gunicorn to send: sent whole, through the
    same writer as every answer."""
    sandbox = "sandbox:\n  enabled: true\n  fhir_server: http://127.0.0.1:9/fhir\n"
    served = serve(tmp_path, "--workers", "1", "--threads", "1", settings=sandbox)
    try:
        static = Path(__file__).resolve().parents[2] / "service" / "sandbox" / "static"
        for path, name in (("/sandbox", "index.html"), ("/sandbox/static/sandbox.js", "sandbox.js")):
            answer = requests.get(served.url + path, timeout=10)
            assert answer.status_code == 200 and answer.content == (static / name).read_bytes()
    finally:
        logged = stop(served)
    assert "Traceback" not in logged


def outcome_of(answer: bytes) -> dict[str, Any]:
    """The OperationOutcome an answer carries."""
    outcome: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome


def answered_within(seconds: float, port: int, request: bytes) -> bytes:
    """The answer to `request` sent at once on a new connection, if it comes within `seconds`."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as connection:
        connection.sendall(request)
        return read_answer(connection)


def answered_beside_a_kept_client(seconds: float, port: int, request: bytes) -> bytes:
    """The answer to `request` (as `answered_within`) sent while another client holds a kept-alive
    connection, which is answered again after it unless the request outlasted the keep-alive time
    (the server then closes the idle connection, as it should; a loaded machine takes that long)."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as kept:
        kept.sendall(HEALTH_CHECK)
        assert read_answer(kept).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        answer = answered_within(seconds, port, request)
        if time.monotonic() - started < KEEPALIVE_SECONDS - 1:
            kept.sendall(HEALTH_CHECK)
            assert read_answer(kept).startswith(b"HTTP/1.1 200 "), "the kept-alive connection was dropped"
    return answer


def test_requests_that_cost_gunicorn_s_parser_are_answered_at_once(tmp_path: Path) -> None:
    """With one thread and a read timeout of 60 s, each is answered well within it (30 s, a bound a loaded
    machine keeps, where each fault below waited for the read timeout or took minutes) and a kept-alive
    client's connection survives each: a Content-Length of 5,000 digits (converting it failed in the
    worker's loop, dropping every connection; gunicorn refuses it), an unfinished head past gunicorn's
    limit (its thread waited for more), a chunked body just over the limit (the thread waited for
    gunicorn's next read step, then 500), a 900 KB body of one-byte chunks (gunicorn's chunked reader,
    handed it whole, took minutes), and 6.5 MB of them (past the limit and a quarter in all: refused 413
    by the loop, no thread parsing a million chunks)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "60")
    at_once = 30
    hook = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n".encode()
    limit = 5 * 1024 * 1024

    def answered(request: bytes) -> bytes:
        return answered_beside_a_kept_client(at_once, served.port, request)

    try:
        endless_length = hook + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n"
        assert answered(endless_length).startswith(b"HTTP/1.1 400 ")
        endless_head = b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Padding: " + b"x" * 420_000
        assert answered(endless_head).startswith(b"HTTP/1.1 431 ")
        just_over = hook + b"Transfer-Encoding: chunked\r\n\r\nA00000\r\n" + b" " * (limit + 1025)
        assert answered(just_over).startswith(b"HTTP/1.1 413 ")
        padded = json.dumps(select_body()).encode() + b" " * 150_000
        one_byte_chunks = b"".join(b"1\r\n" + bytes([byte]) + b"\r\n" for byte in padded) + b"0\r\n\r\n"
        answer = answered(hook + b"Transfer-Encoding: chunked\r\n\r\n" + one_byte_chunks)
        assert answer.startswith(b"HTTP/1.1 200 ") and json.loads(answer.partition(b"\r\n\r\n")[2])["cards"]
        wire_cap = limit + 1024 + limit // 4  # past it the loop refuses a chunked body itself
        fragmented = hook + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * (wire_cap // 6 + 100)
        answer = answered(fragmented)
        assert answer.startswith(b"HTTP/1.1 413 ") and outcome_of(answer)["issue"][0]["code"] == "too-costly"
    finally:
        logged = stop(served)
    assert "Traceback" not in logged and "Exception in worker process" not in logged


def test_a_body_whose_chunks_break_off_is_refused_400(tmp_path: Path) -> None:
    """gunicorn's reader raises on a malformed chunk (here a chunk extension cut by the CRLF inside
    its quotes) or a body ending early: the client's error, answered 400 with an OperationOutcome
    and no stack trace, not 500."""
    served = serve(tmp_path, "--workers", "1")
    hook = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n".encode()
    try:
        answer = answered_within(
            5, served.port, hook + b'Transfer-Encoding: chunked\r\n\r\n2;a="x\r\n"\r\n{}\r\n0\r\n\r\n'
        )
    finally:
        logged = stop(served)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert "could not be read" in outcome_of(answer)["issue"][0]["diagnostics"]
    assert "Traceback" not in logged


def worker_rss_mb(served: Served) -> float:
    """The resident memory of `served`'s one worker (Linux /proc)."""
    [worker] = worker_pids(served)
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_kept_alive_connections_do_not_hold_their_last_request(tmp_path: Path) -> None:
    """Twenty clients each send a 4 MiB body once and keep their connections open: the worker lets
    the bytes go once each is answered (it held about 4.6 MB per idle connection before)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "2")
    body = b'{"hook":"order-select"' + b" " * (4 * 1024 * 1024) + b"}"
    head = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    idle: list[socket.socket] = []
    try:
        before = worker_rss_mb(served)
        for _ in range(20):
            connection = socket.create_connection(("127.0.0.1", served.port), timeout=30)
            idle.append(connection)
            connection.sendall(request)
            assert read_answer(connection).startswith(b"HTTP/1.1 400 ")  # not a hook request: read, refused
        grown = worker_rss_mb(served) - before
        print(f"worker memory grew {grown:.0f} MB with 20 idle connections after a 4 MiB request each")
        assert grown < 40
    finally:
        for connection in idle:
            connection.close()
        stop(served)


def test_requests_gunicorn_refuses_are_answered_with_an_operation_outcome(tmp_path: Path) -> None:
    """A folded header line, a request line too long, headers past the limit: gunicorn's status, the
    service's JSON (gunicorn's own answer is an HTML page), the connection closed."""
    served = serve(tmp_path, "--workers", "1")
    refused = {
        b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n": b"400",
        b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n": b"414",
        b"GET /healthz HTTP/1.1\r\n" + b"X-A: a\r\n" * 60 + b"\r\n": b"431",
    }
    try:
        for request, status in refused.items():
            answer = answered_within(5, served.port, request)
            assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:60]
            assert b"connection: close" in answer.lower()
            assert outcome_of(answer)["issue"][0]["diagnostics"]
    finally:
        logged = stop(served)
    assert "Traceback" not in logged
