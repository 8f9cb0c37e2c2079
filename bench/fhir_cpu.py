"""A pump order-sign that reads the FHIR server: calls/s, latency and the service's own CPU per call.

The service runs under `idds-crd serve` (gunicorn, its default workers and threads) in its own
process group; a real FHIR server (sekmet-fhir, loaded with the demo patients) runs in another;
this process drives 1, 4 and 8 concurrent clients (one persistent connection each) posting a pump
order-sign with no prefetch, so every clinical search goes to the FHIR server (one FHIR batch per
round of queries, the service's default). The service's CPU
is read from /proc (user + system time of the gunicorn master and its workers) before and after
each run and divided by the calls made: the FHIR server's and the load generator's CPU are not in
it. "not asked" counts the answers of a call held back from the FHIR server, past its share of a
worker's threads (service/fhir/server_share.py): a figure from such calls would flatter. Then the
HTTP client alone: the CPU of one `FhirClient.search` on this thread against the same
server, beside a bare `http.client` GET of the same URL (the floor any client pays).

    PYTHONPATH=. .venv/bin/python bench/fhir_cpu.py [--seconds 5] [--clients 1 4 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import drive, free_port, process_tree_cpu, serve_command, start  # noqa: E402
from service.demo.fhir_server import LocalFhirServer  # noqa: E402
from service.demo.runner import patient_files, request_files, with_fhir_server  # noqa: E402
from service.fhir.client import FhirClient  # noqa: E402

SIGN_PATH = "/cds-services/idds-crd-order-sign"
REQUEST = "order-sign-implant-demo-meets"


def client_cpu(base_url: str, patient: str, rounds: int) -> tuple[float, float]:
    """CPU ms on this thread per FhirClient search, and per bare http.client GET of the same URL."""
    client = FhirClient(base_url, None, 10.0)
    params = {"patient": patient, "_sort": "-date"}
    client.search("Procedure", params)  # warm: connection open, code paths loaded
    began = time.thread_time()
    for _ in range(rounds):
        client.search("Procedure", params)
    ours = (time.thread_time() - began) / rounds * 1000
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    path = f"{parts.path}/Procedure?patient={patient}&_sort=-date&_count=200"
    began = time.thread_time()
    for _ in range(rounds):
        connection.request("GET", path, headers={"Accept": "application/fhir+json"})
        json.loads(connection.getresponse().read())
    bare = (time.thread_time() - began) / rounds * 1000
    connection.close()
    return ours, bare


def sign_body(base_url: str) -> bytes:
    path = next(p for p in request_files() if p.stem == REQUEST)
    body: dict[str, Any] = with_fhir_server(json.loads(path.read_text(encoding="utf-8")), base_url, None)
    body.pop("prefetch", None)  # every search goes to the FHIR server
    return json.dumps(body).encode()


RUN_ALL = ["--seconds", "4"]  # arguments in `python -m bench` (bench/__main__.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=200, help="searches for the client CPU figure")
    args = parser.parse_args()
    with LocalFhirServer() as fhir, tempfile.TemporaryDirectory() as tmp:
        for path in patient_files():
            fhir.load_file(path)
        command = serve_command(Path(tmp) / "config.yaml", f"sqlite:///{tmp}/audit.sqlite3", (fhir.base_url,))
        port = free_port()
        service = start([*command, str(port)], port)
        body = sign_body(fhir.base_url)
        print(
            f"pump order-sign, no prefetch (every search to sekmet-fhir on loopback), {os.cpu_count()} cores"
        )
        print(
            f"{'clients':>7} {'calls/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'CPU ms/call':>12} "
            f"{'not asked':>10}"
        )
        try:
            drive(port, SIGN_PATH, body, min(2.0, args.seconds), 2)  # warm up: workers' pools, connections
            for clients in args.clients:
                cpu_before = process_tree_cpu(service.pid)
                load = drive(port, SIGN_PATH, body, args.seconds, clients)
                calls = max(round(load.calls_per_s * args.seconds), 1)
                cpu_ms = (process_tree_cpu(service.pid) - cpu_before) * 1000 / calls
                rate, p50, p95, p99 = load.calls_per_s, load.p50_ms, load.p95_ms, load.p99_ms
                print(
                    f"{clients:7d} {rate:8.1f} {p50:8.1f} {p95:8.1f} {p99:8.1f} {cpu_ms:12.1f} "
                    f"{load.held_back:10d}"
                )
                figure(f"order_sign.fhir.calls_per_s_c{clients}", rate, "calls/s")
                figure(f"order_sign.fhir.p50_ms_c{clients}", p50, "ms")
                figure(f"order_sign.fhir.p95_ms_c{clients}", p95, "ms")
                figure(f"order_sign.fhir.p99_ms_c{clients}", p99, "ms")
                figure(f"order_sign.fhir.cpu_ms_c{clients}", cpu_ms, "ms service CPU per call")
                if clients == 1:
                    figure("order_sign.fhir.cpu_ms_per_call", cpu_ms, "ms service CPU per call (1 client)")
        finally:
            service.terminate()
            service.wait(timeout=30)
        ours, bare = client_cpu(fhir.base_url, "demo-meets", args.rounds)
        print(
            f"HTTP client: {ours:.2f} ms CPU per search (FhirClient), {bare:.2f} ms bare http.client + json"
        )
        figure("fhir_client.cpu_ms_per_request", ours, "ms CPU per search")
        figure("fhir_client.ratio_to_bare", ours / bare, "x a bare http.client GET")


if __name__ == "__main__":
    main()
