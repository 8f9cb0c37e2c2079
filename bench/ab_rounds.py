"""Two versions of the service, measured in alternating rounds: the CPU of the strict JSON reading (`parse`:
`loads_request`) and of a whole order-sign call through the app (`call`: a test-client POST, no FHIR server),
on the Synthea-sized body (bench/support.py `pump_sign_body`) and on the demo order-sign sample.

This machine's speed swings over minutes, so one long-lived process per version takes a round in turn
(A, B, A, B...), each round the median of `--calls` calls; the figures are the medians of the rounds.

    .venv/bin/python bench/ab_rounds.py --a /path/to/clone-before --b . [--rounds 15 --calls 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BODIES = ("synthea", "demo")
MEASURES = ("parse", "call")


def _worker(calls: int) -> None:
    """Read a line per round, answer a JSON line of median CPU milliseconds by body and measure."""
    from bench.support import largest_synthea_record, pump_sign_body
    from service.app import create_app
    from service.http_input import REQUEST_LIMITS
    from service.settings import AuthSettings, Settings, StoreSettings
    from service.startup_gc import settle
    from service.strict_json import loads_request

    synthea, _ = pump_sign_body(largest_synthea_record())
    demo = Path("service/demo/data/requests/order-sign-implant-demo-meets.json").read_bytes()
    bodies = {"synthea": json.dumps(synthea).encode(), "demo": demo}
    settings = Settings(auth=AuthSettings(required=False), store=StoreSettings(url="sqlite://"))
    client = create_app(settings).test_client()
    settle()

    def cpu(work: object) -> float:
        started = time.process_time()
        work()  # type: ignore[operator]
        return (time.process_time() - started) * 1000

    def post(raw: bytes) -> None:
        response = client.post("/cds-services/idds-crd-order-sign", data=raw, content_type="application/json")
        assert response.status_code == 200, response.status_code

    for raw in bodies.values():  # warm up
        post(raw)
    for _ in sys.stdin:
        figures = {}
        for name, raw in bodies.items():
            figures[f"{name} parse"] = statistics.median(
                cpu(lambda raw=raw: loads_request(raw, REQUEST_LIMITS)) for _ in range(calls)
            )
            figures[f"{name} call"] = statistics.median(cpu(lambda raw=raw: post(raw)) for _ in range(calls))
        print(json.dumps(figures), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="the tree measured first in each pair")
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.calls)
        return 0
    workers = {}
    for label, tree in (("A", args.a.resolve()), ("B", args.b.resolve())):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--a", ".", "--b", "."]
        workers[label] = subprocess.Popen(
            [*command, "--calls", str(args.calls)],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    rounds: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for label, worker in workers.items():
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
            rounds[label].append(json.loads(worker.stdout.readline()))
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    print(f"medians of {args.rounds} alternating rounds of {args.calls} calls, CPU ms: A={args.a} B={args.b}")
    for body in BODIES:
        for measure in MEASURES:
            key = f"{body} {measure}"
            a, b = (statistics.median(r[key] for r in rounds[label]) for label in ("A", "B"))
            print(f"{key:15} A {a:7.2f}  B {b:7.2f}  B-A {b - a:+6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
