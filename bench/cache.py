"""The patient-data cache: a pump order-sign alone vs the same order-sign right after an order-select
for the same patient (issue 12's target: at least 3x faster), against a real local FHIR server.

Prints figures; asserts nothing. Loads the demo patients into sekmet-fhir on loopback; for each,
answers its order-select for CPT 62362 and then the order-sign of the same orders (the EHR
prefetches Patient and Coverage, as the samples do; the clinical searches and the reads they lead
to go to the server), in-process through `handle_hook` as a trusted client's calls. "Alone" is the
order-sign on an environment without a cache; "after select" is the order-sign on an environment
whose cache the order-select just filled. The two are interleaved, call by call, so that other
load on the machine falls on both alike; the speedup is the ratio of their medians. Then the same
again through a proxy adding a fixed delay per FHIR request (default 50 ms), the way a real EHR
endpoint's network distance does.

An order-select whose answer leaves the clinician something to do about the chart (an order that
does not meet its policy) keeps nothing (service/pipeline.py `forget_unsettled`: the order-sign
after the documenting reads the chart again), so the speedup is judged over the patients whose
order-select kept the chart, and printed for all of them beside it.

    .venv/bin/python bench/cache.py [--repeat 10] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.latency_proxy import LatencyProxy  # noqa: E402
from service.catalog import Catalog, load_catalog  # noqa: E402
from service.demo.fhir_server import LocalFhirServer  # noqa: E402
from service.demo.runner import patient_files, request_files, with_fhir_server  # noqa: E402
from service.fhir.cache import open_cache  # noqa: E402
from service.hooks.models import HookRequest, parse_hook_request  # noqa: E402
from service.pipeline import HookEnvironment, build_environment, handle_hook  # noqa: E402
from service.registry import PAYER_PREFETCH, STANDARD_PREFETCH, service_for_hook  # noqa: E402
from service.settings import CacheSettings, FhirSettings  # noqa: E402

RUN_ALL = ["--repeat", "5"]  # arguments in `python -m bench` (bench/__main__.py)
CLIENT = "https://bench-ehr.example.org"  # the trusted client (`iss`) the calls come from


def bodies(patient: str, base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The patient's packaged order-select for 62362 and the order-sign of the same orders."""
    path = next(p for p in request_files() if p.stem == f"order-select-62362-{patient}")
    select = with_fhir_server(json.loads(path.read_text(encoding="utf-8")), base_url, None)
    kept = {**STANDARD_PREFETCH, **PAYER_PREFETCH}  # the Patient, the Coverage and its payer, as before
    select["prefetch"] = {k: v for k, v in select["prefetch"].items() if k in kept}
    sign = {k: v for k, v in select.items() if k != "hookInstance"}
    sign["context"] = {k: v for k, v in select["context"].items() if k != "selections"}
    sign["hook"] = "order-sign"
    sign["hookInstance"] = "3d4c2b1a-0f9e-4d8c-b7a6-958473625140"
    return select, sign


def parsed(body: dict[str, Any]) -> HookRequest:
    return parse_hook_request(body, service_for_hook(body["hook"]))


def answer_ms(env: HookEnvironment, request: HookRequest) -> float:
    started = time.perf_counter()
    outcome = handle_hook(
        request, service_for_hook(request.hook), env, datetime.now(UTC).date(), caller=CLIENT
    )
    elapsed = (time.perf_counter() - started) * 1000
    if outcome.status != 200 or not outcome.response["cards"]:
        raise RuntimeError(f"{request.hook} for {request.context.patient_id}: no cards ({outcome.status})")
    return elapsed


def environments(catalog: Catalog, pool: ThreadPoolExecutor) -> tuple[HookEnvironment, HookEnvironment]:
    """Without a cache, and with the default in-process cache."""
    settings = FhirSettings(deadline_seconds=60, timeout_seconds=30)
    cold = build_environment(settings, catalog, pool)
    warm = build_environment(settings, catalog, pool, cache=open_cache(CacheSettings()))
    return cold, warm


def measure(
    patients: list[str], base_url: str, where: str, catalog: Catalog, pool: ThreadPoolExecutor, repeat: int
) -> tuple[float, float, float, float]:
    """(median order-sign alone, median order-sign after order-select) in ms, over the patients whose
    order-select kept the chart in the cache, then over all of them."""
    cold, warm = environments(catalog, pool)
    alone: dict[bool, list[float]] = {True: [], False: []}  # by whether the select kept the chart
    after: dict[bool, list[float]] = {True: [], False: []}
    header = f"{'patient':<24} {'sign alone ms':>14} {'after select ms':>16} {'speedup':>8}  select kept"
    print(f"\norder-sign alone vs after order-select, median of {repeat} runs, {where}\n")
    print(header)
    print("-" * len(header))
    for patient in patients:
        select, sign = (parsed(b) for b in bodies(patient, base_url))
        answer_ms(cold, sign)  # warm the connections and the code paths
        mine_alone, mine_after, kept = [], [], False
        for _ in range(repeat):
            mine_alone.append(answer_ms(cold, sign))
            cache = warm.gatherer.cache = open_cache(CacheSettings())  # empty: only this select fills it
            answer_ms(warm, select)
            kept = cache is not None and len(cache.store) > 0
            mine_after.append(answer_ms(warm, sign))
        alone[kept] += mine_alone
        after[kept] += mine_after
        a, b = statistics.median(mine_alone), statistics.median(mine_after)
        print(f"{patient:<24} {a:>14.1f} {b:>16.1f} {a / b:>8.1f}  {'yes' if kept else 'no (not met)'}")
    print("-" * len(header))
    a, b = statistics.median(alone[True]), statistics.median(after[True])
    every_a, every_b = (
        statistics.median(alone[True] + alone[False]),
        statistics.median(after[True] + after[False]),
    )
    print(f"{'kept':<24} {a:>14.1f} {b:>16.1f} {a / b:>8.1f}")
    print(f"{'all':<24} {every_a:>14.1f} {every_b:>16.1f} {every_a / every_b:>8.1f}")
    return a, b, every_a, every_b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # sekmet ignores QuestionnaireResponse?patient= (said in its log)
    catalog = load_catalog()
    files = patient_files()
    patients = [
        p.stem for p in files if any(r.stem == f"order-select-62362-{p.stem}" for r in request_files())
    ]
    with LocalFhirServer() as fhir, ThreadPoolExecutor(max_workers=8) as pool:
        for path in files:
            fhir.load(json.loads(path.read_text(encoding="utf-8")))
        loopback = "sekmet-fhir on loopback"
        alone, after, every_alone, every_after = measure(
            patients, fhir.base_url, loopback, catalog, pool, args.repeat
        )
        figure("cache.sign_alone_ms", alone, f"ms (median, {loopback}, select kept the chart)")
        figure("cache.sign_after_select_ms", after, f"ms (median, {loopback}, select kept the chart)")
        figure(
            "cache.sign_after_select_speedup",
            alone / after,
            "x (order-sign alone / after order-select, patients whose select kept the chart)",
        )
        figure(
            "cache.sign_after_select_speedup_all",
            every_alone / every_after,
            "x (the same over every patient: a select not met keeps nothing)",
        )
        with LatencyProxy(fhir.base_url, args.latency_ms) as proxy:
            where = f"sekmet-fhir behind a proxy adding {args.latency_ms:g} ms per request"
            alone, after, _, _ = measure(
                patients, proxy.base_url, where, catalog, pool, max(1, args.repeat // 2)
            )
        figure(
            "cache.sign_after_select_speedup_wan",
            alone / after,
            f"x (the same, {args.latency_ms:g} ms added per FHIR request)",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
