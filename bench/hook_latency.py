"""Hook latency for a pump order against a real local FHIR server: serial vs parallel vs batched.

Prints figures; asserts nothing. Loads the Synthea patients of ../shared/fhir-fixtures (and the
demo patients) into sekmet-fhir on loopback, then answers an order-select for CPT 62362 with no
prefetch (so the Patient, Coverage and every clinical search go to the server) for each patient,
with the queries sent one request each, one after another (serial) and on the worker pool
(parallel), and as one FHIR batch per round (`fhir.batch`, the default). It does so twice: straight
to the server on loopback, and through a proxy that adds a fixed delay per request (default 50 ms)
the way a real EHR endpoint's network distance does.

    .venv/bin/python bench/hook_latency.py [--repeat 5] [--workers 8] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.latency_proxy import LatencyProxy  # noqa: E402
from service.catalog import load_catalog  # noqa: E402
from service.demo.fhir_server import LocalFhirServer  # noqa: E402
from service.demo.runner import patient_files, request_files, with_fhir_server  # noqa: E402
from service.hooks.models import parse_hook_request  # noqa: E402
from service.pipeline import HookOutcome, build_environment, handle_hook  # noqa: E402
from service.registry import service_for_hook  # noqa: E402
from service.settings import FhirSettings  # noqa: E402

RUN_ALL = ["--repeat", "1"]  # arguments in `python -m bench` (bench/__main__.py)

SYNTHEA = ROOT.parent / "shared" / "fhir-fixtures" / "synthea"


def request_for(patient_id: str, base_url: str) -> Any:
    sample = next(p for p in request_files() if p.stem == "order-select-62362-demo-meets")
    body = with_fhir_server(json.loads(sample.read_text(encoding="utf-8")), base_url, None)
    body["context"]["patientId"] = patient_id
    del body["prefetch"]
    return parse_hook_request(body, service_for_hook("order-select"))


def timed(env: Any, request: Any) -> tuple[float, HookOutcome]:
    started = time.perf_counter()
    outcome = handle_hook(request, service_for_hook("order-select"), env, datetime.now(UTC).date())
    return (time.perf_counter() - started) * 1000, outcome


def measure(
    base_url: str,
    where: str,
    patients: list[tuple[str, str, int]],
    serial_env: Any,
    parallel_env: Any,
    batch_env: Any,
    args: argparse.Namespace,
    name: str,
) -> None:
    for _, patient_id, _ in patients[:2]:  # warm connections
        timed(parallel_env, request_for(patient_id, base_url))
        timed(batch_env, request_for(patient_id, base_url))
    header = (
        f"{'patient':<22} {'resources':>9} {'serial ms':>10} {'parallel ms':>12} {'ratio':>6} "
        f"{'batch ms':>9} {'slowest query ms':>17} {'sum of queries ms':>18}"
    )
    print(
        f"\nhook latency, order-select 62362, no prefetch, median of {args.repeat} runs, "
        f"{args.workers} workers, {where}\n"
    )
    print(header)
    print("-" * len(header))
    ratios, slowest_share, batch_share = [], [], []
    for label, patient_id, size in patients:
        request = request_for(patient_id, base_url)
        serial = [timed(serial_env, request) for _ in range(args.repeat)]
        parallel = [timed(parallel_env, request) for _ in range(args.repeat)]
        batch_ms = statistics.median(timed(batch_env, request)[0] for _ in range(args.repeat))
        serial_ms = statistics.median(ms for ms, _ in serial)
        parallel_ms = statistics.median(ms for ms, _ in parallel)
        serial_timings = [o.data.timings for _, o in serial if o.data is not None]
        slowest = statistics.median(max(t.values()) * 1000 for t in serial_timings)
        total = statistics.median(sum(t.values()) * 1000 for t in serial_timings)
        ratio = serial_ms / parallel_ms
        ratios.append(ratio)
        slowest_share.append(parallel_ms / slowest)
        batch_share.append(batch_ms / parallel_ms)
        print(
            f"{label:<22} {size:>9} {serial_ms:>10.1f} {parallel_ms:>12.1f} {ratio:>6.2f} "
            f"{batch_ms:>9.1f} {slowest:>17.1f} {total:>18.1f}"
        )
    print("-" * len(header))
    print(f"median serial/parallel ratio: {statistics.median(ratios):.2f}")
    share = statistics.median(slowest_share)
    print(f"median parallel hook time / slowest single query (timed alone): {share:.2f}")
    figure(
        f"hook_latency.batch_to_parallel_{name}", statistics.median(batch_share), "x the parallel hook time"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # sekmet ignores QuestionnaireResponse?patient=; said once below
    files = sorted(SYNTHEA.glob("*.json")) + patient_files()
    if not list(SYNTHEA.glob("*.json")):
        print(f"note: no Synthea fixtures in {SYNTHEA}; measuring the demo patients only")
    settings = FhirSettings(deadline_seconds=60, timeout_seconds=30, max_pages=100)
    catalog = load_catalog()
    with LocalFhirServer() as fhir:
        patients = []
        for path in files:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            fhir.load(bundle)
            patient = next(
                e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
            )
            patients.append((path.stem[:22], patient["id"], len(bundle["entry"])))
        one_by_one = replace(settings, batch=False)
        serial_env = build_environment(one_by_one, catalog, None)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            envs = (
                serial_env,
                build_environment(one_by_one, catalog, pool),
                build_environment(settings, catalog, pool),
            )
            measure(fhir.base_url, "sekmet-fhir on loopback", patients, *envs, args, "loopback")
            with LatencyProxy(fhir.base_url, args.latency_ms) as proxy:
                where = f"sekmet-fhir behind a proxy adding {args.latency_ms:g} ms per request"
                measure(proxy.base_url, where, patients, *envs, args, "wan")
    return 0


if __name__ == "__main__":
    sys.exit(main())
