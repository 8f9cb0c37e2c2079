"""Where a pump order-sign's CPU goes, stage by stage, for the largest Synthea record: parse / gather
(from prefetch) / record / engine / render / serialise, and the audit record.

In-process, one stage after another on the call bench/pump_sign.py sends (bench/support.py
`pump_sign_body`: a complete prefetch, no FHIR server). `parse` is the strict JSON reading plus the
hook request's validation; `gather` takes the prefetch apart (no request is made); `record` is
`build_record`; `engine` is the rest of `decide` (routing, every policy's evaluation, what is
missing); `render` is `respond` (cards and coverage information); `serialise` writes the answer's
JSON; `audit` builds the audit row and commits it to a SQLite file (the integrator's part, shown
for scale). Medians of `--runs` calls, in CPU time of this process (steady on a shared machine; the
figures) and in wall-clock time (which also holds the audit's wait for the disk, and other
processes' turns on the cores). Prints figures; asserts nothing.

    .venv/bin/python bench/pipeline_split.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import largest_synthea_record, pump_sign_body  # noqa: E402
from cards.response import respond  # noqa: E402
from service.app import AppState, create_app  # noqa: E402
from service.audit_call import CallClock, audited  # noqa: E402
from service.call_day import DEFAULT_TIME_ZONE, call_date, call_instant  # noqa: E402
from service.hooks.models import HookRequest, parse_hook_request  # noqa: E402
from service.http_input import REQUEST_LIMITS  # noqa: E402
from service.modifiers import text_may_carry  # noqa: E402
from service.pipeline import HookOutcome, decide, gather  # noqa: E402
from service.record import build_record  # noqa: E402
from service.registry import CallOptions, ServiceDefinition, service_for_hook  # noqa: E402
from service.settings import AuthSettings, Settings, StoreSettings  # noqa: E402
from service.startup_gc import settle  # noqa: E402
from service.strict_json import dumps, loads_request  # noqa: E402

RUN_ALL = ["--runs", "30"]  # arguments in `python -m bench` (bench/__main__.py)

Samples = dict[str, list[float]]  # stage (CPU) or stage + " wall" → milliseconds of each call
STAGES = ("parse", "gather", "record", "engine", "render", "serialise", "audit")


def timed(samples: Samples, stage: str, work: Callable[..., Any], *args: Any) -> Any:
    """Run one stage, noting its CPU time (`stage`) and its wall-clock time (`stage` + " wall")."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = work(*args)
    samples[stage].append((time.process_time() - cpu) * 1000)
    samples[f"{stage} wall"].append((time.perf_counter() - wall) * 1000)
    return result


def _empty() -> Samples:
    return {name: [] for stage in STAGES for name in (stage, f"{stage} wall")}


def parsed(raw: bytes, service: ServiceDefinition) -> tuple[Any, HookRequest]:
    document = loads_request(raw, REQUEST_LIMITS)
    return document, parse_hook_request(document, service, text_may_carry(raw))


def one_call(samples: Samples, raw: bytes, state: AppState, service: ServiceDefinition) -> None:
    """One call through every stage, each timed into `samples`."""
    env = state.environment
    clock = CallClock()
    document, request = timed(samples, "parse", parsed, raw, service)
    now = call_instant()
    today = call_date(DEFAULT_TIME_ZONE, now)
    deadline = time.monotonic() + env.deadline_seconds
    call = timed(samples, "gather", gather, request, service, env, deadline, today)
    data = call.data
    assert data is not None and call.pump_orders, "the call holds no pump order"
    patient = request.context.patient_id
    terminology, server = env.catalog.terminology, request.fhir.server
    modify = data.may_carry_modifiers()
    timed(
        samples,
        "record",
        build_record,
        patient,
        data.resources,
        terminology,
        data.unavailable,
        server,
        modify,
    )
    decisions = timed(samples, "engine", decide, call, env.catalog, env.published, today, True, now)
    for suffix in ("", " wall"):  # decide builds the record too
        samples[f"engine{suffix}"][-1] = max(
            0.0, samples[f"engine{suffix}"][-1] - samples[f"record{suffix}"][-1]
        )
    response = timed(
        samples, "render", respond, decisions, CallOptions.of({}), "http://localhost", env.catalog
    )
    timed(samples, "serialise", dumps, response)
    outcome = HookOutcome(response, decisions.determinations, data=data, routes=decisions.routes)
    timed(samples, "audit", audited, state, clock, service, document, request, outcome)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--demo-chart", action="store_true", help="demo-meets's own chart alone")
    args = parser.parse_args()
    record_file = None if args.demo_chart else largest_synthea_record()
    body, resources = pump_sign_body(record_file)
    raw = json.dumps(body).encode()
    service = service_for_hook("order-sign")
    samples: dict[str, list[float]] = _empty()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            auth=AuthSettings(required=False), store=StoreSettings(url=f"sqlite:///{tmp}/audit.sqlite3")
        )
        app = create_app(settings)
        settle()
        with app.test_request_context():
            for _ in range(3):  # warm caches; not counted
                one_call(_empty(), raw, app.extensions["idds_crd"], service)
            for _ in range(args.runs):
                one_call(samples, raw, app.extensions["idds_crd"], service)
    where = record_file.stem if record_file else "demo-meets's own chart alone"
    print(
        f"pump order-sign 62362, complete prefetch of {resources} clinical resources ({where}), "
        f"{len(raw) / 1024:.0f} KiB body; median of {args.runs} calls, in-process"
    )
    print(f"{'stage':10} {'CPU ms':>8} {'wall ms':>8} {'wall p95':>9}   (medians; CPU is this process's)")
    for stage in STAGES:
        cpu = statistics.median(samples[stage])
        wall = sorted(samples[f"{stage} wall"])
        p95 = wall[int(len(wall) * 0.95)]
        print(f"{stage:10} {cpu:>8.2f} {statistics.median(wall):>8.2f} {p95:>9.2f}")
    for stage in STAGES:
        figure(f"pipeline.{stage}_ms", statistics.median(samples[stage]), "ms CPU (median)")
    total = sum(statistics.median(samples[stage]) for stage in STAGES)
    print(f"{'total':10} {total:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
