"""`idds-crd serve` as an operator runs it (issue 12, points 1 and 5): gunicorn gthread workers
with keep-alive, several workers answering, /readyz and /metrics summed over the workers, 100-continue
and chunked bodies answered, and `--dev` running Werkzeug's server (clients sending slowly or
oddly: test_serving_hostile_clients.py)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from service.serving import REQUESTS_PER_CONNECTION
from tests.observability_support import total, value
from tests.serving_support import (
    STALE,
    Served,
    burst,
    burst_expected,
    logged_request_ids,
    read_answer,
    scraped,
    serve,
    stop,
    worker_pids,
)
from tests.support import SELECT_URL, select_body

pytestmark = pytest.mark.integration

ANSWERED = {"service": "idds-crd-order-select", "outcome": "answered"}


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
    return total(exposition, "idds_crd_determinations_total")


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


def test_a_burst_of_many_more_connections_than_threads_is_answered(tmp_path: Path) -> None:
    """400 requests on fresh connections, 48 at a time, to one worker with 2 threads (review26e's
    burst, serve26): every one is answered, and logged once, while the burst is under way. Their
    log lines (over 64 KiB) are more than a pipe nobody reads holds: the served process's log must
    not stall it (tests.support.ServeProcess)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "2")
    try:
        statuses = burst(served, 400, 48)
    finally:
        logged = stop(served)
    assert statuses == burst_expected(400)
    assert sorted(logged_request_ids(logged, "burst-")) == sorted(statuses)
    assert len(logged.encode()) > 65536


def _burst_unread(tmp_path: Path, settings: str) -> tuple[dict[str, int], float, str]:
    """400 calls, 48 at once, to `serve` (one worker, two threads, `settings` added) whose stderr is a
    pipe nobody reads while they run: (their statuses, the log lines /metrics then counts dropped, what
    the pipe held when `serve` stopped)."""
    served = serve(tmp_path, "--workers", "1", "--threads", "2", log=subprocess.PIPE, settings=settings)
    try:
        statuses = burst(served, 400, 48)
        dropped = total(scraped(served), "idds_crd_log_lines_dropped_total")
    finally:
        logged = stop(served)
    return statuses, dropped, logged


def test_a_log_nobody_reads_stops_no_answer(tmp_path: Path) -> None:
    """serve26's production stall: `serve`'s stderr a pipe nobody reads (a container log driver that
    blocks, a log shipper that stopped reading). The burst's lines are more than the pipe holds
    (64 KiB); every request is still answered, none waits on the log (before, no answer from about
    the 220th on: every thread blocked writing its line). Nothing is lost: the lines are held (up to
    `log_buffer_bytes`) and written, each once, when the pipe is read again, all of them by the time
    `serve` has stopped."""
    statuses, dropped, logged = _burst_unread(tmp_path, "")
    assert statuses == burst_expected(400)
    assert dropped == 0
    assert sorted(logged_request_ids(logged, "burst-")) == sorted(statuses)
    assert len(logged.encode()) > 65536


def test_lines_a_full_log_buffer_cannot_hold_are_dropped_and_counted(tmp_path: Path) -> None:
    """With the pipe nobody reads full and the buffer (`log_buffer_bytes`) full too, a line is dropped,
    not waited for, and counted in /metrics; every request is answered and no line is written twice."""
    statuses, dropped, logged = _burst_unread(tmp_path, "log_buffer_bytes: 16384\n")
    assert statuses == burst_expected(400)
    written = logged_request_ids(logged, "burst-")
    assert len(written) == len(set(written)) and set(written) < set(statuses)
    assert 0 < len(statuses) - len(written) <= dropped


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
        log = stop(served)
    assert "development server" in log and "never put it in front of an EHR" in log


def test_a_request_whose_host_is_missing_or_invalid_is_a_400_naming_it(tmp_path: Path) -> None:
    """RFC 9112 §3.2 under gunicorn (review31d L1): a Host gunicorn lets through that is invalid (`a b`,
    UTF-8 bytes, a port over 65535), or none in HTTP/1.1, is a 400 naming `http.Host`, the hook call and
    the probe alike, where before the call was answered with links `http:/policies/<id>`; two Host lines
    are gunicorn's own 400; a punycode Host is the links' host as sent, in ASCII (before: in Unicode)."""
    served = serve(tmp_path, "--workers", "1")
    body = json.dumps(select_body()).encode()

    def sent(path: str, host_lines: bytes, version: bytes = b"HTTP/1.1") -> tuple[bytes, dict[str, Any]]:
        post = path != "/healthz"
        head = (b"POST " if post else b"GET ") + path.encode() + b" " + version + b"\r\n" + host_lines
        if post:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
            connection.sendall(head + b"Connection: close\r\n\r\n" + (body if post else b""))
            answer = read_answer(connection)
        return answer[9:12], json.loads(answer.partition(b"\r\n\r\n")[2])

    try:
        for path in (SELECT_URL, "/healthz"):
            for host_lines, code in (
                (b"Host: a b\r\n", "structure"),
                ("Host: bücher.example\r\n".encode(), "structure"),
                (b"Host: ex.org:99999\r\n", "structure"),
                *([(b"", "required")] if path == SELECT_URL else []),
            ):
                status, outcome = sent(path, host_lines)
                issue = outcome["issue"][0]
                assert (status, issue["code"], issue.get("expression")) == (b"400", code, ["http.Host"]), (
                    path,
                    host_lines,
                )
            status, outcome = sent(path, b"Host: a.example\r\nHost: b.example\r\n")
            assert status == b"400" and "HOST" in outcome["issue"][0]["diagnostics"]
            assert sent(path, b"", b"HTTP/1.0")[0] == b"200"  # HTTP/1.0 needs no Host
        assert sent("/healthz", b"")[0] == b"200"  # a probe with no Host (review31g: HAProxy's httpchk)
        status, answer = sent(SELECT_URL, b"Host: xn--bcher-kva.example:8080\r\n")
        links = {link["url"] for card in answer["cards"] for link in card.get("links", [])}
        assert "http://xn--bcher-kva.example:8080/policies/geha-idds-chronic-pain" in links
    finally:
        logged = stop(served)
    assert "Traceback" not in logged


@pytest.mark.parametrize("trusted", [False, True], ids=["by-default", "loopback-trusted"])
def test_forwarded_headers_are_read_from_a_configured_proxy_only(tmp_path: Path, trusted: bool) -> None:
    """review31g L1 under gunicorn: by default an X-Forwarded-Proto from loopback made the links https
    (gunicorn's own `forwarded_allow_ips` trusts 127.0.0.1 and ::1), so anyone on the host could; now
    no peer is trusted unless `trusted_proxies` names it, and a trusted one's X-Forwarded-Host is read
    too, an invalid one refused naming it."""
    served = serve(tmp_path, "--workers", "1", settings="trusted_proxies: [127.0.0.1]\n" if trusted else "")
    body = json.dumps(select_body()).encode()

    def sent(forwarded: bytes) -> tuple[bytes, dict[str, Any]]:
        head = b"POST " + SELECT_URL.encode() + b" HTTP/1.1\r\nHost: crd:8080\r\n" + forwarded
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
            body
        )
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
            connection.sendall(head + body)
            answer = read_answer(connection)
        return answer[9:12], json.loads(answer.partition(b"\r\n\r\n")[2])

    def linked(forwarded: bytes) -> set[str]:
        status, answer = sent(forwarded)
        assert status == b"200", answer
        return {link["url"] for card in answer["cards"] for link in card.get("links", [])}

    policy = "/policies/geha-idds-chronic-pain"
    try:
        proto = linked(b"X-Forwarded-Proto: https\r\n")
        both = linked(b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: crd.example.org:8443\r\n")
        assert linked(b"") == {f"http://crd:8080{policy}"}
        if trusted:
            assert proto == {f"https://crd:8080{policy}"}
            assert both == {f"https://crd.example.org:8443{policy}"}
            status, outcome = sent(b"X-Forwarded-Host: a b\r\n")
            assert status == b"400" and outcome["issue"][0]["expression"] == ["http.X-Forwarded-Host"]
        else:
            assert proto == both == {f"http://crd:8080{policy}"}
            assert linked(b"X-Forwarded-Host: a b\r\n") == {f"http://crd:8080{policy}"}
    finally:
        logged = stop(served)
    assert "Traceback" not in logged
