"""A pyinstrument profile of the pump path: which functions the CPU time of a pump order-sign goes
to, by own time (time in the function itself, not in what it calls).

In-process through the Flask app (the request's route, strict JSON, validation, gather from the
complete prefetch, record, engine, cards, serialisation and the audit record; audit store in
memory so the disk's sync does not hide the CPU), on the call bench/pump_sign.py sends. Prints the
top frames by own time, summed over every place a function is called from, and the share of the
whole per top-level module. Prints figures; asserts nothing.

    .venv/bin/python bench/profile.py [--calls 100] [--top 25]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402
from bench.support import PUMP_SIGN_PATH, largest_synthea_record, pump_sign_body  # noqa: E402
from service.app import create_app  # noqa: E402
from service.settings import AuthSettings, Settings, StoreSettings  # noqa: E402
from service.startup_gc import settle  # noqa: E402

RUN_ALL = ["--calls", "60"]  # arguments in `python -m bench` (bench/__main__.py)


def own_times(root: Any) -> tuple[dict[tuple[str, str, int], float], float]:
    """(function, file, line) → own seconds (its time less its callees'), summed over the tree; and
    the whole tree's seconds. pyinstrument's synthetic `[self]` leaves are the parent's own time."""
    totals: dict[tuple[str, str, int], float] = defaultdict(float)
    stack = [root]
    while stack:
        frame = stack.pop()
        callees = [child for child in frame.children if not child.is_synthetic]
        stack.extend(callees)
        own = frame.time - sum(child.time for child in callees)
        totals[(frame.function or "?", frame.file_path_short or "?", frame.line_no or 0)] += own
    return totals, root.time


def area(file_path: str) -> str:
    """Where a frame's code lives: the project's package and module, or the library's top package."""
    parts = file_path.replace("\\", "/").split("/")
    for project in ("service", "cards", "policies"):
        if project in parts:
            return "/".join(parts[parts.index(project) :][:2]).removesuffix(".py")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return parts[-1].removesuffix(".py") if parts else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    from pyinstrument import Profiler

    body, resources = pump_sign_body(largest_synthea_record())
    raw = json.dumps(body).encode()
    app = create_app(Settings(auth=AuthSettings(required=False), store=StoreSettings(url="sqlite://")))
    settle()
    client = app.test_client()

    def call() -> None:
        answer = client.post(PUMP_SIGN_PATH, data=raw, content_type="application/json")
        assert answer.status_code == 200 and answer.get_json()["cards"], answer.get_data(as_text=True)[:500]

    for _ in range(3):
        call()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.calls):
        call()
    session = profiler.stop()
    root = session.root_frame()
    if root is None:
        print("no samples")
        return 0
    totals, whole = own_times(root)
    per_call_ms = session.cpu_time / args.calls * 1000
    print(
        f"pump order-sign 62362, {resources} prefetched clinical resources, {args.calls} calls in-process "
        f"(Flask test client, audit in memory); CPU {per_call_ms:.1f} ms per call under the profiler"
    )
    print(f"\ntop {args.top} frames by own time\n{'own %':>6} {'own ms/call':>11}  function (file:line)")
    for (function, file, line), seconds in sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{seconds / whole * 100:6.1f} {seconds / args.calls * 1000:11.2f}  {function} ({file}:{line})")
    by_area: dict[str, float] = defaultdict(float)
    for (_, file, _), seconds in totals.items():
        by_area[area(file)] += seconds
    print(f"\nown time by module or library\n{'own %':>6}  where")
    for where, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{seconds / whole * 100:6.1f}  {where}")
    figure("profile.cpu_ms_per_call", per_call_ms, "ms (under the profiler)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
