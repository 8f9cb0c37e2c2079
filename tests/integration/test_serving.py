"""`idds-crd serve` as an operator runs it (issue 12, points 1 and 5): gunicorn gthread workers
with keep-alive, several workers answering, /readyz and /metrics summed over the workers, clients
sending slowly holding no thread (requests read whole before a thread takes them: chunked bodies,
100-continue, the read timeout, pipelined requests, bodies over the limit), a client connected when
the service stops still answered, and `--dev` running Werkzeug's server."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from service.demo.fhir_server import free_port
from service.serving import REQUESTS_PER_CONNECTION
from tests.observability_support import samples, value
from tests.support import SELECT_URL, select_body, start_serve_process

pytestmark = pytest.mark.integration

ANSWERED = {"service": "idds-crd-order-select", "outcome": "answered"}


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    process: subprocess.Popen[str]
    metrics_dir: Path


STALE = "counter_999999999.db"


def serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """`idds-crd serve` with `args`; its metrics in tmp/metrics (holding a stale file from an
    earlier run) unless `env` says otherwise."""
    config = tmp / "config.yaml"
    config.write_text(f"auth:\n  required: false\nstore:\n  url: sqlite:///{tmp / 'audit.sqlite3'}\n")
    port = free_port()
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / STALE).write_bytes(b"left by an earlier run")
    process = start_serve_process(
        config, port, tmp, *args, env=env or {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    )
    return Served(f"http://127.0.0.1:{port}", port, process, metrics_dir)


def stop(served: Served) -> str:
    served.process.terminate()
    _, stderr = served.process.communicate(timeout=30)
    return stderr


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve(tmp_path_factory.mktemp("serve"), "--workers", "2", "--threads", "4")
    yield served
    stop(served)


def test_gunicorn_answers_with_keep_alive(two_workers: Served) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", two_workers.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        assert first.getheader("Server", "").startswith("gunicorn")
        assert first.getheader("Connection", "").lower() != "close"
        kept = connection.sock
        assert kept is not None  # http.client drops the socket when the server closes it
        connection.request("GET", "/readyz")
        second = connection.getresponse()
        second.read()
        assert second.status == 200
        assert connection.sock is kept
    finally:
        connection.close()


def test_a_session_reuses_its_connection(two_workers: Served) -> None:
    with requests.Session() as session:
        answers = [session.get(f"{two_workers.url}/healthz", timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.headers["Connection"].lower() for a in answers} == {"keep-alive"}


def test_a_kept_alive_connection_is_closed_after_its_share_of_requests(two_workers: Served) -> None:
    """So that an EHR's few persistent connections do not stay piled on one worker (serving.py
    `ConnectionRecycling`): the last of REQUESTS_PER_CONNECTION answers says `Connection: close`,
    and the client's next connection is served."""
    with requests.Session() as session:
        url = f"{two_workers.url}/healthz"
        answers = [session.get(url, timeout=10) for _ in range(REQUESTS_PER_CONNECTION)]
        assert {a.headers["Connection"].lower() for a in answers[:-1]} == {"keep-alive"}
        assert answers[-1].headers["Connection"].lower() == "close"
        after = session.get(url, timeout=10)
    assert [a.status_code for a in answers] == [200] * REQUESTS_PER_CONNECTION and after.status_code == 200
    assert after.headers["Connection"].lower() == "keep-alive"


def test_ready_and_the_hook_histogram_after_a_call(two_workers: Served) -> None:
    assert not (two_workers.metrics_dir / STALE).exists()  # an earlier run's values are not summed in
    assert requests.get(f"{two_workers.url}/readyz", timeout=10).json() == {"status": "ready"}
    before = requests.get(f"{two_workers.url}/metrics", timeout=10).text
    answer = requests.post(two_workers.url + SELECT_URL, json=select_body(), timeout=30)
    assert answer.status_code == 200
    after = requests.get(f"{two_workers.url}/metrics", timeout=10).text
    counted = value(after, "idds_crd_hook_seconds_count", **ANSWERED)
    assert counted == value(before, "idds_crd_hook_seconds_count", **ANSWERED) + 1
    assert determinations(after) > determinations(before)


def determinations(exposition: str) -> float:
    return sum(v for (name, _), v in samples(exposition).items() if name == "idds_crd_determinations_total")


def worker_pids(served: Served) -> set[int]:
    """The gunicorn workers (children of the serve process)."""
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


def test_several_workers_answer(two_workers: Served) -> None:
    """Each worker writes its own metric files (named by its pid): after many calls on fresh
    connections, more than one worker has answered hook calls, and every writer is a worker."""

    def call(_: int) -> int:
        return requests.post(two_workers.url + SELECT_URL, json=select_body(), timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(call, range(40))) == {200}
    workers = worker_pids(two_workers)
    assert len(workers) == 2
    writers = {int(p.stem.rsplit("_", 1)[1]) for p in two_workers.metrics_dir.glob("histogram_*.db")}
    assert writers <= workers
    assert len(writers) == 2


HEALTH_CHECK = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Padding: " + b"x" * 4000 + b"\r\n\r\n"


@dataclass
class Drip:
    """A client sending `request` one byte every 50 ms on `sock` until told to stop or cut off."""

    sock: socket.socket
    request: bytes
    sender: threading.Thread | None = None
    sent: int = 0

    def finish(self) -> None:
        """Once told to stop: the rest of the request at once."""
        assert self.sender is not None
        self.sender.join()
        self.sock.sendall(self.request[self.sent :])


def drip(
    port: int, request: bytes, stop_dripping: threading.Event, before: bytes = b"", answered: bytes = b"200"
) -> Drip:
    """A client that sends `before` at once (a whole earlier request on the same connection, perhaps
    with the start of the next) and is `answered` that status (b"" for no answer yet), then drips
    `request`."""
    dripping = Drip(socket.create_connection(("127.0.0.1", port), timeout=30), request)
    dripping.sock.sendall(before)
    if before and answered:
        assert read_answer(dripping.sock).startswith(b"HTTP/1.1 " + answered + b" ")

    def send() -> None:
        for byte in request:
            if stop_dripping.is_set():
                return
            try:
                dripping.sock.sendall(bytes([byte]))
            except OSError:  # cut off by the server
                return
            dripping.sent += 1
            time.sleep(0.05)

    dripping.sender = threading.Thread(target=send, daemon=True)
    dripping.sender.start()
    return dripping


def read_answer(connection: socket.socket) -> bytes:
    """One whole answer (status line, headers and a Content-Length body) from `connection`."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536) or b"<closed>"
        if received.endswith(b"<closed>"):
            return received
    head, _, body = received.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    ]
    while len(body) < int(lengths[0]):
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


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
        started = time.monotonic()
        answer = requests.post(served.url + SELECT_URL, json=select_body(), timeout=20)
        waited = time.monotonic() - started
        assert answer.status_code == 200 and answer.json()["cards"]
        assert waited < 5, f"answered after {waited:.1f} s while six clients dripped"
        print(f"another client answered in {waited * 1000:.0f} ms while six clients dripped their requests")
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
        started = time.monotonic()
        answer = requests.post(served.url + SELECT_URL, json=select_body(), timeout=20)
        waited = time.monotonic() - started
        assert answer.status_code == 200 and answer.json()["cards"]
        assert waited < 4, f"answered after {waited:.1f} s while four clients dripped"
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


def test_a_request_not_whole_within_the_read_timeout_is_answered_408(tmp_path: Path) -> None:
    """`--read-timeout 1`: a client dripping its body is answered 408 and cut off, a client that
    connects and sends nothing is closed after the keep-alive time, and neither left a stack trace."""
    served = serve(tmp_path, "--workers", "1", "--threads", "1", "--read-timeout", "1")
    stop_dripping = threading.Event()
    try:
        body = json.dumps(select_body()).encode()
        head = f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        slow = drip(served.port, request, stop_dripping)
        silent = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        started = time.monotonic()
        assert read_answer(slow.sock).startswith(b"HTTP/1.1 408 ")
        assert slow.sock.recv(1) == b""
        assert 1 <= time.monotonic() - started < 4
        assert silent.recv(1) == b""  # closed after the keep-alive time (5 s), no answer
        assert requests.post(served.url + SELECT_URL, json=select_body(), timeout=20).status_code == 200
        scraped = requests.get(f"{served.url}/metrics", timeout=10).text
        assert value(scraped, "idds_crd_requests_cut_total", reason="read-timeout") == 1
    finally:
        stop_dripping.set()
        logged = stop(served)
    assert "Traceback" not in logged


def test_a_client_expecting_100_continue_gets_it_once(tmp_path: Path) -> None:
    """`Expect: 100-continue`: the service says `100 Continue` when the headers are in, waits for the
    body, and answers it; the client never sees a second interim answer."""
    served = serve(tmp_path, "--workers", "1")
    try:
        body = json.dumps(select_body()).encode()
        head = (
            f"POST {SELECT_URL} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
            connection.sendall(head.encode())
            assert connection.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
            connection.sendall(body)
            answer = read_answer(connection)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["cards"]
    finally:
        stop(served)


def test_a_chunked_hook_call_is_answered(tmp_path: Path) -> None:
    """A body sent in chunks (no Content-Length, as a streaming HTTP client sends it) is framed by
    its chunks and answered like any other."""
    served = serve(tmp_path, "--workers", "1")
    try:
        body = json.dumps(select_body()).encode()
        pieces = iter([body[:100], body[100:5000], body[5000:]])
        answer = requests.post(
            served.url + SELECT_URL, data=pieces, headers={"Content-Type": "application/json"}, timeout=20
        )
        assert answer.request.headers.get("Transfer-Encoding") == "chunked"
        assert answer.status_code == 200 and answer.json()["cards"]
    finally:
        stop(served)


def test_serve_makes_its_metrics_directory_and_removes_it(tmp_path: Path) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR, `serve` makes a fresh directory for the workers' values
    (under TMPDIR) and removes it when it stops."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    served = serve(tmp_path, "--workers", "1", env={"TMPDIR": str(temporary)})
    try:
        assert requests.post(served.url + SELECT_URL, json=select_body(), timeout=30).status_code == 200
        scraped = requests.get(f"{served.url}/metrics", timeout=10).text
        assert value(scraped, "idds_crd_hook_seconds_count", **ANSWERED) == 1
        [made] = temporary.glob("idds-crd-metrics-*")
        assert list(made.glob("histogram_*.db"))
    finally:
        stop(served)
    assert list(temporary.glob("idds-crd-metrics-*")) == []


def test_dev_runs_werkzeug(tmp_path: Path) -> None:
    served = serve(tmp_path, "--dev")
    try:
        answer = requests.get(f"{served.url}/readyz", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Server"].startswith("Werkzeug")
    finally:
        stop(served)
