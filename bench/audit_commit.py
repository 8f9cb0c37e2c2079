"""Audit records written by concurrent calls: one transaction each (the baseline) against the group
commit (service/store/group_commit.py), on one SQLite file as `idds-crd serve` writes it.

Two processes (the workers) of four threads each record demo-meets's pump order-sign audit row (a
real row from `audit_row`, fresh card uuids each time) as fast as they can for `--seconds`, every
record committed (`synchronous=FULL`, the writers taking turns on the lock file) before the next.
The two ways alternate `--rounds` times, so the machine's drift falls on both; records/s and the
latency of one record (median of the rounds). These are the audit writes alone: in the service
they are a quarter of a call's CPU, so calls meet at the commit less often than here. Prints
figures; asserts nothing.

    .venv/bin/python bench/audit_commit.py [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import percentile, pump_sign_body  # noqa: E402

RUN_ALL = ["--seconds", "3", "--rounds", "2"]  # arguments in `python -m bench` (bench/__main__.py)
PROCESSES, THREADS = 2, 4


def audit_row() -> dict[str, Any]:
    """The audit row of demo-meets's pump order-sign, answered in-process."""
    from service.app import create_app
    from service.audit_entry import AuditedCall
    from service.audit_entry import audit_row as row_of
    from service.caller import Caller
    from service.hooks.models import parse_hook_request
    from service.pipeline import handle_hook
    from service.registry import service_for_hook
    from service.settings import AuthSettings, Settings, StoreSettings

    app = create_app(Settings(auth=AuthSettings(required=False), store=StoreSettings(url="sqlite://")))
    environment = app.extensions["idds_crd"].environment
    body = pump_sign_body(None)[0]
    service = service_for_hook("order-sign")
    request = parse_hook_request(body, service)
    outcome = handle_hook(request, service, environment, datetime.now(UTC).date())
    now = datetime.now(UTC)
    call = AuditedCall(service, body, request, outcome, Caller(None, None, ()), now, now, 3.0)
    return row_of(call, environment.catalog)


def writer(url: str, grouped: bool, row: dict[str, Any], seconds: float, results: Any) -> None:
    """One worker process: THREADS threads recording `row` until `seconds` have passed."""
    from service.store.audit import AuditTrail
    from service.store.database import open_database

    database = open_database(url)
    trail = AuditTrail(database)

    def alone(fresh: dict[str, Any]) -> None:
        prepared = trail.inserts.prepare(fresh)
        with database.transaction() as connection:
            trail.inserts.write(connection, [prepared])

    record = trail.record if grouped else alone
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter()

    def loop() -> None:
        mine = []
        while time.perf_counter() - start < seconds:
            fresh = {**row, "cards": [str(uuid.uuid4()) for _ in row["cards"]]}
            began = time.perf_counter()
            record(fresh)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.close()
    results.put(latencies)


def measure(url: str, grouped: bool, row: dict[str, Any], seconds: float) -> tuple[float, float, float]:
    """(records/s, p50 ms, p99 ms) of PROCESSES writer processes."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [
        context.Process(target=writer, args=(url, grouped, row, seconds, results)) for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    latencies = sorted(latency for _ in processes for latency in results.get(timeout=seconds + 120))
    for process in processes:
        process.join()
    return len(latencies) / seconds, percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    row = audit_row()
    size = sum(len(v) for v in row.values() if isinstance(v, str))
    print(
        f"audit records of demo-meets's pump order-sign ({size / 1024:.0f} KiB of JSON each), "
        f"{PROCESSES} processes x {THREADS} threads, one SQLite file, "
        f"{args.seconds:.0f} s x {args.rounds} rounds"
    )
    ways = {"one transaction each": False, "group commit": True}
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/audit.sqlite3"
        from service.store.database import open_database

        open_database(url).close()  # the tables, before the writers race to make them
        for _ in range(args.rounds):
            for name, grouped in ways.items():
                measured[name].append(measure(url, grouped, row, args.seconds))
    print(f"{'way':24} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    medians = {}
    for name, runs in measured.items():
        medians[name] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
        rate, p50, p99 = medians[name]
        rounds = ", ".join(f"{r[0]:.0f}" for r in runs)
        print(f"{name:24} {rate:10.0f} {p50:8.2f} {p99:8.2f}   (rounds: {rounds})")
    ratio = medians["group commit"][0] / medians["one transaction each"][0]
    figure("audit_commit.group_to_alone", ratio, "x the records/s of one transaction each")
    figure("audit_commit.group_records_per_s", medians["group commit"][0], "records/s")
    figure("audit_commit.alone_records_per_s", medians["one transaction each"][0], "records/s")
    figure("audit_commit.group_p99_ms", medians["group commit"][2], "ms per record")
    figure("audit_commit.alone_p99_ms", medians["one transaction each"][2], "ms per record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
