"""Serving overhead: a non-pump order-select under `idds-crd serve` (gunicorn gthread) vs `--dev`
(Werkzeug) vs a no-op Flask endpoint under the same gunicorn configuration.

Each server runs in its own process on loopback; a load generator in this process (threads, one
persistent `http.client` connection each, reconnecting whenever the server closes it) calls it
for a fixed time and prints calls/s, p50/p99 latency and the server's CPU per call (its process
tree's user + system time from /proc, which other load on the machine disturbs less than calls/s).
The generator shares the machine's cores with the server, so the figures are for comparing rows
measured in one run, not absolute capacity. Prints figures; asserts nothing.

    .venv/bin/python bench/serving.py [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import drive, free_port, process_tree_cpu, serve_command, start  # noqa: E402

NON_PUMP = ROOT / "service" / "demo" / "data" / "requests" / "order-select-non-pump.json"
SELECT_PATH = "/cds-services/idds-crd-order-select"


def serve_noop(port: int, path: str = SELECT_PATH, decode: bool = False) -> None:
    """A Flask app with one no-op POST endpoint at `path`, under gunicorn with `idds-crd serve`'s
    config; with `decode`, it reads the body and decodes it with orjson, its worker collecting garbage
    as the service's do (service/startup_gc.py): what the body alone costs."""
    import orjson
    from flask import Flask, Response, request
    from gunicorn.app.base import BaseApplication

    from service.serving import ServeOptions
    from service.startup_gc import settle

    class NoOp(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in ServeOptions(port=port).gunicorn_config().items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            app = Flask("noop")

            @app.post(path)
            def select() -> Response:
                if decode:
                    orjson.loads(request.get_data())
                return Response('{"cards":[]}', mimetype="application/json")

            @app.get("/healthz")
            def health() -> Response:
                return Response('{"status":"ok"}', mimetype="application/json")

            if decode:
                settle()
            return app

    NoOp().run()


def load(port: int, body: bytes, seconds: float, clients: int) -> tuple[float, float, float, int]:
    """(calls/s, p50 ms, p99 ms, non-200 answers) of `clients` threads posting `body` for `seconds`."""
    measured = drive(port, SELECT_PATH, body, seconds, clients)
    return measured.calls_per_s, measured.p50_ms, measured.p99_ms, measured.failures


RUN_ALL = ["--seconds", "4", "--clients", "4"]  # arguments in `python -m bench` (bench/__main__.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--serve-noop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--noop-path", default=SELECT_PATH, help=argparse.SUPPRESS)
    parser.add_argument("--noop-decodes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop:
        serve_noop(args.serve_noop, args.noop_path, args.noop_decodes)
        return
    body = json.dumps(json.loads(NON_PUMP.read_text(encoding="utf-8"))).encode()
    with tempfile.TemporaryDirectory() as tmp:
        cli = serve_command(Path(tmp) / "config.yaml", f"sqlite:///{tmp}/audit.sqlite3")
        rows = [
            ("no-op Flask endpoint, gunicorn", [sys.executable, __file__, "--serve-noop"]),
            ("idds-crd serve (gunicorn)", cli),
            ("idds-crd serve --dev (Werkzeug)", [*cli[:-1], "--dev", "--port"]),
        ]
        print(
            f"non-pump order-select, {args.clients} clients with persistent connections, "
            f"{args.seconds:.0f} s each, {os.cpu_count()} cores"
        )
        print(f"{'server':34} {'calls/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8} {'CPU ms/call':>12}")
        baseline = baseline_cpu = None
        for name, command in rows:
            port = free_port()
            process = start([*command, str(port)], port)
            try:
                load(port, body, min(2.0, args.seconds), args.clients)  # warm up
                cpu_before = process_tree_cpu(process.pid)
                rate, p50, p99, bad = load(port, body, args.seconds, args.clients)
                cpu_ms = (process_tree_cpu(process.pid) - cpu_before) * 1000 / max(rate * args.seconds, 1)
            finally:
                process.terminate()
                process.wait(timeout=30)
            baseline, baseline_cpu = baseline or rate, baseline_cpu or cpu_ms
            print(
                f"{name:34} {rate:8.0f} {p50:8.1f} {p99:8.1f} {bad:8d} {cpu_ms:12.2f}   "
                f"({baseline / rate:.2f}x the no-op's cost; {cpu_ms / baseline_cpu:.2f}x its server CPU)"
            )
            if name == "idds-crd serve (gunicorn)":
                figure("order_select.ratio_to_noop", baseline / rate, "x the no-op's cost per call")
                cpu_ratio = cpu_ms / baseline_cpu
                figure("order_select.cpu_ratio_to_noop", cpu_ratio, "x the no-op's server CPU per call")
                figure("order_select.cpu_ms_per_call", cpu_ms, "ms server CPU per call")


if __name__ == "__main__":
    main()
