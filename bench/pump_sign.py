"""Pump order-sign from a complete prefetch (pure CPU: no FHIR request) under `idds-crd serve`, at 1, 4
and 8 concurrent clients, beside HealthChain serving one static order-select card.

The call is the demo-meets order-sign for CPT 62362 (with its catheter, pump and infusate), every
prefetch key filled as an EHR running the discovery templates would fill it: demo-meets's chart plus
the largest Synthea record re-pointed at demo-meets (bench/support.py `pump_sign_body`). The body
names no FHIR server, so the service cannot query one. It runs with the audit store as deployed
(SQLite in a file); then under `serve --threads 1`, one call at a time per worker, beside which the
default's compute turn is judged (service/compute_turns.py, bench/NOTES.md); then with
`store.url: sqlite://` (in memory), so the audit write's share shows; and once more with
demo-meets's own small chart alone, the size the issue's "130/s" was measured at. Beside them, a
no-op endpoint that only reads and decodes the Synthea-sized body shows what the body alone costs
under the same server (bench/serving.py's no-op, decoding). Clients hold persistent connections
(bench/support.py `drive`). HealthChain runs in its own virtual environment
under ./.bench-venvs/ (made on first use), its CDS Hooks service answering one static card, under
uvicorn as it ships. The ratio of demo-meets's chart to that card is taken with both servers up, in
alternating rounds (`--pairs`), because this machine's speed swings within minutes. Prints figures;
asserts nothing.

    .venv/bin/python bench/pump_sign.py [--seconds 8] [--clients 1 4 8] [--no-healthchain] [--pairs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import (  # noqa: E402
    PUMP_SIGN_PATH,
    Load,
    drive,
    free_port,
    largest_synthea_record,
    pump_sign_body,
    serve_command,
    start,
    stop,
)

RUN_ALL = ["--seconds", "5"]  # arguments in `python -m bench` (bench/__main__.py)

HEALTHCHAIN_VENV = ROOT / ".bench-venvs" / "healthchain"
HEALTHCHAIN_APP = Path(__file__).resolve().parent / "healthchain_static.py"
HEALTHCHAIN_PATH = "/cds/cds-services/static-card"
NON_PUMP_SELECT = ROOT / "service" / "demo" / "data" / "requests" / "order-select-non-pump.json"


def healthchain_python() -> tuple[Path | None, str]:
    """The HealthChain venv's interpreter (made and filled on first use), or None and why not."""
    python = HEALTHCHAIN_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(HEALTHCHAIN_VENV)], capture_output=True)
        if made.returncode != 0:
            return None, f"could not make a virtual environment: {made.stderr.decode()[-300:]}"
    check = subprocess.run([str(python), "-c", "import healthchain, uvicorn"], capture_output=True)
    if check.returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", "healthchain", "uvicorn"]
        installed = subprocess.run(pip, capture_output=True, text=True)
        if installed.returncode != 0:
            return None, f"pip install healthchain failed: {installed.stderr.strip()[-400:]}"
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('healthchain'))"],
        capture_output=True,
        text=True,
    )
    return python, version.stdout.strip()


def show(name: str, clients: int, measured: Load) -> None:
    print(
        f"{name:40} {clients:>7} {measured.calls_per_s:8.0f} {measured.p50_ms:8.1f} "
        f"{measured.p95_ms:8.1f} {measured.p99_ms:8.1f} {measured.failures:8d}"
    )


def measure_service(
    name: str,
    store_url: str,
    key: str,
    body: bytes,
    args: argparse.Namespace,
    tmp: Path,
    options: tuple[str, ...] = (),
) -> dict[int, float]:
    """Calls/s by number of clients (and the figures printed); `options` are given to `serve`."""
    port = free_port()
    command = serve_command(tmp / f"{key or 'file'}.yaml", store_url)
    process = start([*command[:-1], *options, command[-1], str(port)], port)
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{PUMP_SIGN_PATH}", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # the call is answered, with cards
            cards = json.loads(answer.read())["cards"]
        assert cards, "the pump order-sign answered no card"
        drive(port, PUMP_SIGN_PATH, body, min(2.0, args.seconds), max(args.clients))  # warm up
        rates = {}
        for clients in args.clients:
            measured = drive(port, PUMP_SIGN_PATH, body, args.seconds, clients)
            show(name, clients, measured)
            prefix = f"pump_sign.{key}." if key else "pump_sign."
            figure(f"{prefix}calls_per_s_{clients}", measured.calls_per_s, "calls/s")
            figure(f"{prefix}p99_ms_{clients}", measured.p99_ms, "ms")
            rates[clients] = measured.calls_per_s
        return rates
    finally:
        stop(process)


def measure_body_alone(body: bytes, args: argparse.Namespace) -> None:
    """What the body alone costs: a no-op endpoint under the same gunicorn configuration that reads
    the same body and decodes it with orjson (bench/serving.py), at 4 clients."""
    port = free_port()
    serving = Path(__file__).resolve().parent / "serving.py"
    noop = [sys.executable, str(serving), "--noop-path", PUMP_SIGN_PATH, "--noop-decodes", "--serve-noop"]
    process = start([*noop, str(port)], port)
    try:
        drive(port, PUMP_SIGN_PATH, body, min(2.0, args.seconds), 4)  # warm up
        measured = drive(port, PUMP_SIGN_PATH, body, args.seconds, 4)
        show("no-op reading + decoding the body", 4, measured)
        figure("pump_sign.body_alone.calls_per_s_4", measured.calls_per_s, "calls/s")
    finally:
        stop(process)


def start_healthchain() -> tuple[subprocess.Popen[bytes], int, str] | tuple[None, None, str]:
    """HealthChain's static-card service, started (its process, port and name), or why it cannot be."""
    python, detail = healthchain_python()
    if python is None:
        return None, None, detail
    port = free_port()
    process = start([str(python), str(HEALTHCHAIN_APP), str(port)], port, env={"PYTHONPATH": ""})
    return process, port, f"HealthChain {detail}, static card (uvicorn)"


def measure_healthchain(port: int, name: str, args: argparse.Namespace) -> None:
    """HealthChain's calls/s by number of clients (the figures printed)."""
    body = NON_PUMP_SELECT.read_bytes()  # the order-select bench/serving.py sends; the card ignores it
    drive(port, HEALTHCHAIN_PATH, body, min(2.0, args.seconds), max(args.clients))  # warm up
    for clients in args.clients:
        measured = drive(port, HEALTHCHAIN_PATH, body, args.seconds, clients)
        show(name[:40], clients, measured)
        figure(f"healthchain.static_card_calls_per_s_c{clients}", measured.calls_per_s, "calls/s")


def paired_ratios(ours: int, healthchain: int, body: bytes, args: argparse.Namespace) -> list[float]:
    """demo-meets's order-sign over HealthChain's static card in calls/s at 4 clients, round by
    round: each round drives one server and then the other for `seconds / 2` each, so both are
    measured within the same few seconds of a machine whose speed swings within minutes."""
    card = NON_PUMP_SELECT.read_bytes()
    half = args.seconds / 2
    ratios = []
    for _ in range(args.pairs):
        mine = drive(ours, PUMP_SIGN_PATH, body, half, 4)
        theirs = drive(healthchain, HEALTHCHAIN_PATH, card, half, 4)
        ratios.append(mine.calls_per_s / theirs.calls_per_s)
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--no-healthchain", action="store_true")
    parser.add_argument("--pairs", type=int, default=6, help="alternating rounds for the HealthChain ratio")
    args = parser.parse_args()
    record = largest_synthea_record()
    body, resources = pump_sign_body(record)
    raw = json.dumps(body).encode()
    where = record.stem if record else "no Synthea record beside the repository: demo-meets only"
    print(
        f"pump order-sign 62362, complete prefetch of {resources} clinical resources ({where}), "
        f"{len(raw) / 1024:.0f} KiB body; {args.seconds:.0f} s per row, persistent connections, "
        f"{os.cpu_count()} cores shared by server and clients"
    )
    columns = ("clients", "calls/s", "p50 ms", "p95 ms", "p99 ms", "non-200")
    print(f"{'server':40} {columns[0]:>7} " + " ".join(f"{c:>8}" for c in columns[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        file_url = f"sqlite:///{tmp}/audit.sqlite3"
        rows: list[tuple[str, str, str, tuple[str, ...]]] = [
            ("idds-crd serve, audit in SQLite file", file_url, "", ()),
            ("idds-crd serve --threads 1, audit in file", file_url, "one_thread", ("--threads", "1")),
            ("idds-crd serve, audit in memory", "sqlite://", "memory_store", ()),
        ]
        for name, url, key, options in rows:
            measure_service(name, url, key, raw, args, Path(tmp), options)
        measure_body_alone(raw, args)
        small, small_resources = pump_sign_body(None)
        small_raw = json.dumps(small).encode()
        print(f"(demo-meets's own chart alone: {small_resources} clinical resources, {len(small_raw)} bytes)")
        stores = (("file", file_url, "demo_chart"), ("memory", "sqlite://", "demo_chart.memory_store"))
        for where, url, key in stores:
            measure_service(f"demo-meets chart only, audit in {where}", url, key, small_raw, args, Path(tmp))
        if args.no_healthchain:
            return 0
        healthchain, healthchain_port, detail = start_healthchain()
        if healthchain is None or healthchain_port is None:
            print(f"HealthChain: not measured ({detail})")
            return 0
        try:
            measure_healthchain(healthchain_port, detail, args)
            ours = free_port()
            command = serve_command(Path(tmp) / "paired.yaml", file_url)
            service = start([*command, str(ours)], ours)
            try:
                drive(ours, PUMP_SIGN_PATH, small_raw, min(2.0, args.seconds), 4)  # warm up
                ratios = paired_ratios(ours, healthchain_port, small_raw, args)
            finally:
                stop(service)
        finally:
            stop(healthchain)
    ratio = statistics.median(ratios)
    print(
        f"demo-meets's chart over HealthChain's static card, 4 clients, {len(ratios)} alternating rounds "
        f"of {args.seconds / 2:.1f} s each: " + ", ".join(f"{r:.2f}" for r in ratios) + f"; median "
        f"{ratio:.2f} (the issue's 300/s was set when that card served 400-550/s: 0.55-0.75 of it)"
    )
    figure("pump_sign.demo_chart.to_healthchain_4", ratio, "x HealthChain's static card calls/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
