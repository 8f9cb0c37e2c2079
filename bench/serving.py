"""Serving overhead: a non-pump order-select under `idds-crd serve` (gunicorn gthread) vs `--dev`
(Werkzeug) vs a no-op Flask endpoint under the same gunicorn configuration.

Each server runs in its own process on loopback; a load generator in this process (threads, one
persistent `http.client` connection each, reconnecting whenever the server closes it) calls it
for a fixed time and prints calls/s and p50/p99 latency. The generator shares the machine's cores
with the server, so the figures are for comparing rows measured in one run, not absolute
capacity. Prints figures; asserts nothing.

    .venv/bin/python bench/serving.py [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402

NON_PUMP = ROOT / "service" / "demo" / "data" / "requests" / "order-select-non-pump.json"
SELECT_PATH = "/cds-services/idds-crd-order-select"


def serve_noop(port: int) -> None:
    """A Flask app with one no-op POST endpoint, under gunicorn with `idds-crd serve`'s config."""
    from flask import Flask, Response
    from gunicorn.app.base import BaseApplication

    from service.serving import ServeOptions

    class NoOp(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in ServeOptions(port=port).gunicorn_config().items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            app = Flask("noop")

            @app.post(SELECT_PATH)
            def select() -> Response:
                return Response('{"cards":[]}', mimetype="application/json")

            @app.get("/healthz")
            def health() -> Response:
                return Response('{"status":"ok"}', mimetype="application/json")

            return app

    NoOp().run()


def free_port() -> int:
    from service.demo.fhir_server import free_port as pick

    return pick()


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {command}")


def load(port: int, body: bytes, seconds: float, clients: int) -> tuple[float, float, float, int]:
    """(calls/s, p50 ms, p99 ms, non-200 answers) of `clients` threads posting `body` for `seconds`."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        mine: list[float] = []
        bad = 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                connection.request("POST", SELECT_PATH, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                bad += answer.status != 200
                if answer.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                connection.close()
                bad += 1
                continue
            mine.append(time.perf_counter() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return len(ordered) / seconds, statistics.median(ordered) * 1000, p99, failures[0]


RUN_ALL = ["--seconds", "4", "--clients", "4"]  # arguments in `python -m bench` (bench/__main__.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--serve-noop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop:
        serve_noop(args.serve_noop)
        return
    body = json.dumps(json.loads(NON_PUMP.read_text(encoding="utf-8"))).encode()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(f"auth:\n  required: false\nstore:\n  url: sqlite:///{tmp}/audit.sqlite3\n")
        cli = [sys.executable, "-m", "service.cli", "serve", "--config", str(config)]
        rows = [
            ("no-op Flask endpoint, gunicorn", [sys.executable, __file__, "--serve-noop"]),
            ("idds-crd serve (gunicorn)", [*cli, "--port"]),
            ("idds-crd serve --dev (Werkzeug)", [*cli, "--dev", "--port"]),
        ]
        print(
            f"non-pump order-select, {args.clients} clients with persistent connections, "
            f"{args.seconds:.0f} s each, {os.cpu_count()} cores"
        )
        print(f"{'server':34} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
        baseline = None
        for name, command in rows:
            port = free_port()
            process = start([*command, str(port)], port)
            try:
                load(port, body, min(2.0, args.seconds), args.clients)  # warm up
                rate, p50, p99, bad = load(port, body, args.seconds, args.clients)
            finally:
                process.terminate()
                process.wait(timeout=30)
            baseline = baseline or rate
            print(
                f"{name:34} {rate:8.0f} {p50:8.1f} {p99:8.1f} {bad:8d}   "
                f"({baseline / rate:.2f}x the no-op's cost)"
            )
            if name == "idds-crd serve (gunicorn)":
                figure("order_select.ratio_to_noop", baseline / rate, "x the no-op's cost per call")


if __name__ == "__main__":
    main()
