"""Running `idds-crd serve` in a test and talking to it over raw sockets: a served process, clients
that drip their requests a byte at a time, and reading one whole answer."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from service.demo.fhir_server import free_port
from tests.support import SELECT_URL, start_serve_process


@dataclass(frozen=True)
class Served:
    """A running `idds-crd serve`: where it answers, its process and its metrics directory."""

    url: str
    port: int
    process: subprocess.Popen[str]
    metrics_dir: Path


STALE = "counter_999999999.db"


def serve(
    tmp: Path, *args: str, env: dict[str, str] | None = None, settings: str = "", log: Any = None
) -> Served:
    """`idds-crd serve` with `args` and any further `settings` (YAML); its metrics in tmp/metrics
    (holding a stale file from an earlier run) unless `env` says otherwise; its log in a file, or
    where `log` says (`subprocess.PIPE`: a pipe nobody reads until it stops)."""
    config = tmp / "config.yaml"
    config.write_text(
        f"auth:\n  required: false\nstore:\n  url: sqlite:///{tmp / 'audit.sqlite3'}\n{settings}"
    )
    port = free_port()
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / STALE).write_bytes(b"left by an earlier run")
    process = start_serve_process(
        config, port, tmp, *args, env=env or {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, log=log
    )
    return Served(f"http://127.0.0.1:{port}", port, process, metrics_dir)


def worker_pids(served: Served) -> set[int]:
    """The gunicorn workers (children of the serve process)."""
    children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text()
    return {int(pid) for pid in children.split()}


# what a burst asks, in turn, and the status each answers a GET with (a hook: 405)
BURST_PATHS = {"/cds-services": 200, "/healthz": 200, SELECT_URL: 405}


def burst(served: Served, count: int, at_once: int, prefix: str = "burst") -> dict[str, int]:
    """`count` GETs of `BURST_PATHS` in turn, each on a fresh connection, `at_once` at a time, the
    n-th with the X-Request-Id `{prefix}-{n}`: the status each id was answered with (0: none in 20 s)."""
    paths = list(BURST_PATHS)

    def call(n: int) -> tuple[str, int]:
        request_id = f"{prefix}-{n}"
        try:
            status = requests.get(
                served.url + paths[n % len(paths)], headers={"X-Request-Id": request_id}, timeout=20
            ).status_code
        except requests.RequestException:
            status = 0
        return request_id, status

    with ThreadPoolExecutor(at_once) as pool:
        return dict(pool.map(call, range(count)))


def burst_expected(count: int, prefix: str = "burst") -> dict[str, int]:
    """The statuses `burst` gets when every request is answered."""
    paths = list(BURST_PATHS)
    return {f"{prefix}-{n}": BURST_PATHS[paths[n % len(paths)]] for n in range(count)}


def logged_request_ids(logged: str, prefix: str) -> list[str]:
    """The request ids starting with `prefix` of a JSON log's lines, one per line that names one."""
    ids = (json.loads(line).get("request_id") for line in logged.splitlines() if line.startswith("{"))
    return [i for i in ids if isinstance(i, str) and i.startswith(prefix)]


def scraped(served: Served) -> str:
    """`/metrics` of the served process, as Prometheus text."""
    answer = requests.get(f"{served.url}/metrics", timeout=20)
    assert answer.status_code == 200
    return answer.text


def stop(served: Served) -> str:
    served.process.terminate()
    _, stderr = served.process.communicate(timeout=30)
    return stderr


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
    """One whole answer (status line, headers and a Content-Length body) from `connection`, nothing
    after it; b"" if the connection closed first."""
    answers = read_answers(connection, 1)
    return answers[0] if answers else b""


def read_answers(connection: socket.socket, count: int, pause: float = 0.0) -> list[bytes]:
    """`count` answers pipelined on `connection`, each whole (status line, headers, Content-Length
    body), in the order they came (fewer if the connection closes first), and nothing after the
    last of them; `pause` seconds between reads of at most 64 KiB."""
    answers, received = [], b""
    while len(answers) < count:
        missing = None  # of the answer being read, once its head is here
        head_end = received.find(b"\r\n\r\n")
        if head_end >= 0:
            head = received[:head_end]
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            missing = head_end + 4 + length - len(received)
            if missing <= 0:
                answers.append(received[: head_end + 4 + length])
                received = received[head_end + 4 + length :]
                continue
        time.sleep(pause)
        try:
            piece = _next_piece(connection, received, missing)
        except ConnectionResetError:
            break
        if not piece:
            break
        received += piece
    return answers


def _next_piece(connection: socket.socket, received: bytes, missing: int | None) -> bytes:
    """At most 64 KiB more of the answer being read: `missing` bytes of its body once its head is
    here, else up to the end of its head (looked at first, not taken, so nothing beyond is read)."""
    if missing is not None:
        return connection.recv(min(65536, missing))
    peeked = connection.recv(65536, socket.MSG_PEEK)
    at = (received + peeked).find(b"\r\n\r\n")
    return connection.recv(len(peeked) if at < 0 else at + 4 - len(received)) if peeked else b""
