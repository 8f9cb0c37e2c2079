"""In-process evaluation time of every policy for one pump order on a 1,000-resource record.

Prints figures; asserts nothing (target from issue 4: under 5 ms for all policies together).
The record is built once from 1,000 clinical resources of a Synthea patient (ts_Erasmo when the
fixtures are beside the repository, else the demo patients repeated); then each policy in the
catalog evaluates a CPT 62362 order against it, many times over.

    .venv/bin/python bench/engine_speed.py [--runs 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from service.catalog import load_catalog  # noqa: E402
from service.demo.runner import patient_files, request_files  # noqa: E402
from service.demo.synthea import SYNTHEA_DIRS  # noqa: E402
from service.engine.context import EvaluationContext  # noqa: E402
from service.engine.evaluate import evaluate_order  # noqa: E402
from service.infusates import infusates  # noqa: E402
from service.orders import DraftOrders, recognise  # noqa: E402
from service.record import CLINICAL_TYPES, build_record  # noqa: E402

RUN_ALL = ["--runs", "200"]  # arguments in `python -m bench` (bench/__main__.py)

SYNTHEA = SYNTHEA_DIRS[0] / "ts_Erasmo.json"
SIZE = 1000


def resources() -> tuple[str, list[dict[str, Any]]]:
    if SYNTHEA.exists():
        entries = json.loads(SYNTHEA.read_text(encoding="utf-8"))["entry"]
        chosen = [e["resource"] for e in entries if e["resource"]["resourceType"] in CLINICAL_TYPES][:SIZE]
        return "ts_Erasmo (Synthea)", chosen
    pool = []
    for path in patient_files():
        pool += [
            e["resource"]
            for e in json.loads(path.read_text())["entry"]
            if e["resource"]["resourceType"] in CLINICAL_TYPES
        ]
    return "demo patients, repeated", [dict(pool[i % len(pool)], id=f"r{i}") for i in range(SIZE)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    catalog = load_catalog()
    source, chosen = resources()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chosen:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    started = time.perf_counter()
    record = build_record("bench", by_type, catalog.terminology)
    build_ms = (time.perf_counter() - started) * 1000
    sample = next(p for p in request_files() if p.stem == "order-select-62362-demo-meets")
    drafts = DraftOrders(json.loads(sample.read_text())["context"]["draftOrders"])
    order = next(o for r in drafts.resources if (o := recognise(r, drafts, catalog.order_codes)))
    drugs = infusates(drafts, catalog.terminology, [order]).found
    per_policy: dict[str, list[float]] = {pid: [] for pid in catalog.policies}
    totals = []
    for _ in range(args.runs):
        total = 0.0
        # one context per call, as the pipeline does: its memo is shared by the policies, not by calls
        ctx = EvaluationContext(record, catalog.terminology, date(2026, 11, 21), order, drugs)
        for pid, policy in catalog.policies.items():
            t0 = time.perf_counter()
            evaluate_order(policy, ctx)
            elapsed = (time.perf_counter() - t0) * 1000
            per_policy[pid].append(elapsed)
            total += elapsed
        totals.append(total)
    print(f"record: {len(chosen)} resources from {source}; build_record {build_ms:.1f} ms (once per call)")
    print(f"{len(catalog.policies)} policies, one CPT 62362 order, {args.runs} runs\n")
    print(f"{'policy':<34} {'median ms':>10} {'p95 ms':>8}")
    for pid, samples in per_policy.items():
        ordered = sorted(samples)
        print(f"{pid:<34} {statistics.median(ordered):>10.3f} {ordered[int(len(ordered) * 0.95)]:>8.3f}")
    ordered = sorted(totals)
    p95 = ordered[int(len(ordered) * 0.95)]
    print(f"{'all policies together':<34} {statistics.median(ordered):>10.3f} {p95:>8.3f}")
    figure("engine.all_policies_median_ms", statistics.median(ordered), "ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
