"""`python -m bench`: run every benchmark under bench/ and rewrite bench/RESULTS.md from what they print.

A benchmark is a script in this folder that declares `RUN_ALL = [...]`, the arguments it gets in this
one-command run (chosen to keep the whole run to a few minutes); helpers without it are not run.
Each runs in its own interpreter, one after another (they would disturb each other's timings); its
output is kept verbatim, and its `figure <key> = <value> <unit>` lines (bench/figures.py) fill the
table of issue 12's targets. A target no benchmark measured reads "not measured yet"; a benchmark
that fails is reported as failed, with the end of its error output. Nothing here passes or fails:
the results are figures for a reader, measured on the machine described at the top.

    PYTHONPATH=. .venv/bin/python -m bench                 # everything; rewrites bench/RESULTS.md
    PYTHONPATH=. .venv/bin/python -m bench --only startup  # some; prints, writes only with --output
"""

from __future__ import annotations

import argparse
import ast
import operator
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.figures import FIGURE_LINE  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
RUN_COMMAND = "PYTHONPATH=. .venv/bin/python -m bench"
TIMEOUT_SECONDS = 900
Figures = dict[str, tuple[float, str, str]]  # key → (value, unit, benchmark name)


COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """One target of issue 12: the figures shown for it, and which of them must meet the bound."""

    text: str
    keys: tuple[str, ...]
    bound: tuple[str, float] | None = None  # (comparator, limit) every judged figure must meet
    judged: int = 1  # the first `judged` keys are held to the bound; the rest are context
    note: str = ""

    def met(self, figures: dict[str, float]) -> str:
        if self.bound is None:
            return "—"
        if any(key not in figures for key in self.keys[: self.judged]):
            return "not measured yet"
        comparator, limit = self.bound
        holds = all(COMPARATORS[comparator](figures[key], limit) for key in self.keys[: self.judged])
        return "yes" if holds else "**no**"


def _target(text: str, key: str, comparator: str, limit: float) -> Target:
    return Target(text, (key,), (comparator, limit))


TARGETS = (
    Target(
        "non-pump order-select ≤ 1.2x a no-op Flask endpoint (same server and config; judged by calls/s, "
        "then the server's CPU per call beside the no-op's)",
        ("order_select.ratio_to_noop", "order_select.cpu_ratio_to_noop", "order_select.cpu_ms_per_call"),
        ("<=", 1.2),
        note="the call is parsed strictly, routed, answered with coverage information and recorded in "
        "the audit trail before it is answered (CRD §found-37: every call and answer SHALL be kept)",
    ),
    Target(
        "pump order-sign from a complete prefetch ≥ 300 calls/s at 4 clients (audit in a SQLite file; "
        "then `serve --threads 1`, in memory, 1 and 8 clients, demo-meets's small chart)",
        (
            "pump_sign.calls_per_s_4",
            "pump_sign.one_thread.calls_per_s_4",
            "pump_sign.memory_store.calls_per_s_4",
            "pump_sign.calls_per_s_1",
            "pump_sign.calls_per_s_8",
            "pump_sign.demo_chart.calls_per_s_4",
            "pump_sign.demo_chart.memory_store.calls_per_s_4",
            "pump_sign.demo_chart.to_healthchain_4",
            "pump_sign.body_alone.calls_per_s_4",
        ),
        (">=", 300),
        note="Synthea-sized prefetch, see bench/pump_sign.py; to_healthchain: demo-meets's chart over "
        "HealthChain's static card, the median of alternating rounds, against the issue's 300 / (400-550) "
        "= 0.55-0.75; body_alone: a no-op endpoint that only reads and decodes the same Synthea-sized body; "
        "memory_store: the audit in memory, no commit to wait for",
    ),
    Target(
        "pump order-sign from a complete prefetch: p99 < 30 ms at 4 clients (audit in a SQLite file; "
        "then `serve --threads 1`, in memory, 1 and 8 clients, demo-meets's small chart)",
        (
            "pump_sign.p99_ms_4",
            "pump_sign.one_thread.p99_ms_4",
            "pump_sign.memory_store.p99_ms_4",
            "pump_sign.p99_ms_1",
            "pump_sign.p99_ms_8",
            "pump_sign.demo_chart.p99_ms_4",
            "pump_sign.demo_chart.memory_store.p99_ms_4",
        ),
        ("<", 30),
    ),
    Target(
        "pump order-sign with FHIR queries: service CPU ≤ 10 ms per call (1 client; 4 and 8 clients; "
        "HTTP client CPU per search and its ratio to a bare http.client GET)",
        (
            "order_sign.fhir.cpu_ms_per_call",
            "order_sign.fhir.cpu_ms_c4",
            "order_sign.fhir.cpu_ms_c8",
            "fhir_client.cpu_ms_per_request",
            "fhir_client.ratio_to_bare",
        ),
        ("<=", 10),
        note="no prefetch: every search to sekmet-fhir on loopback; the service under idds-crd serve, "
        "its CPU read from /proc",
    ),
    Target(
        "pump order-sign with FHIR queries: p95 < 100 ms at 1 client (p95 at 4 and 8; calls/s at 1, 4, 8)",
        (
            "order_sign.fhir.p95_ms_c1",
            "order_sign.fhir.p95_ms_c4",
            "order_sign.fhir.p95_ms_c8",
            "order_sign.fhir.calls_per_s_c1",
            "order_sign.fhir.calls_per_s_c4",
            "order_sign.fhir.calls_per_s_c8",
        ),
        ("<", 100),
        note="sekmet-fhir's own search time is in every call's latency",
    ),
    Target(
        "20,000 Observations within 2x the time of 200 (service CPU ratio; the FHIR server's CPU ratio;"
        " Observations received of each)",
        (
            "scaling.obs_20000_to_200",
            "scaling.cpu_20000_to_200",
            "scaling.server_cpu_20000_to_200",
            "scaling.observations_pain-200",
            "scaling.observations_20000",
        ),
        ("<=", 2),
        note="the wall time is sekmet-fhir's own search time: each patient-scoped Observation search builds"
        " the patient's whole list (bench/NOTES.md)",
    ),
    Target(
        "order-sign after order-select ≥ 3x faster than alone (patient-data cache)",
        (
            "cache.sign_after_select_speedup",
            "cache.sign_alone_ms",
            "cache.sign_after_select_ms",
            "cache.sign_after_select_speedup_wan",
            "cache.sign_after_select_speedup_all",
        ),
        (">=", 3),
        note="sekmet-fhir on loopback, patients whose order-select kept the chart (judged: one whose orders "
        "do not meet keeps nothing, so the order-sign after the documenting reads it again; _all: every "
        "patient); _wan: 50 ms added per FHIR request, as a real EHR is farther",
    ),
    Target(
        "start-up < 0.5 s: create_app (catalog + app) in a fresh worker, warm cache (judged) and cold",
        ("startup.create_app_warm_s", "startup.create_app_cold_s"),
        ("<", 0.5),
        note="imports not included: a worker forked from a preloading server inherits them; cold = first "
        "start after a policy file changed",
    ),
    Target(
        "start-up < 0.5 s: a fresh interpreter, imports included, warm catalog cache (judged); a worker "
        "forked by `idds-crd serve`; `idds-crd serve` from launch to its first 200 from /readyz",
        (
            "startup.ready_warm_s",
            "startup.imports_s",
            "startup.baseline_ready_s",
            "startup.ready_warm_to_baseline",
            "startup.worker_ready_after_fork_s",
            "startup.serve_to_ready_s",
            "startup.serve_master_s",
            "startup.ready_warm_no_bytecode_s",
        ),
        ("<", 0.5),
        note="baseline = importing Flask and building a one-route app, same run; serve's master imports "
        "the service and loads the catalog once, each worker only builds its app; every interpreter runs "
        "from bytecode as an installed service does (_no_bytecode: compiled from source at each start)",
    ),
    Target(
        "memory < 100 MB per worker (RSS after create_app)",
        (
            "startup.rss_warm_mb",
            "startup.baseline_rss_mb",
            "startup.serve_worker_pss_mb",
            "startup.serve_worker_private_mb",
        ),
        ("<", 100),
        note="serve_worker: one of `idds-crd serve`'s workers, its proportional share (PSS) and what is "
        "its own alone (private dirty), the rest shared with the master",
    ),
    Target(
        "figure, no target: HealthChain serving one static order-select card (calls/s, 4 clients)",
        ("healthchain.static_card_calls_per_s_c4",),
    ),
    Target(
        "figure, no target: pipeline split parse / gather / record / engine / render (/ serialise / audit), "
        "largest Synthea record",
        tuple(
            f"pipeline.{stage}_ms"
            for stage in ("parse", "gather", "record", "engine", "render", "serialise", "audit")
        ),
    ),
    Target(
        "figure, no target: profile of the pump path, CPU per call under the profiler (top frames in "
        "the profile section)",
        ("profile.cpu_ms_per_call",),
    ),
    Target(
        "figure, no target: scaling curve, 60 / 600 / 2,000 / 20,000 resources in one chart",
        ("scaling.ms_60", "scaling.ms_600", "scaling.ms_2000", "scaling.ms_20000", "scaling.ms_pain-200"),
    ),
    Target(
        "figure, no target: audit records written by 2 processes x 4 threads on one SQLite file, the group "
        "commit against one transaction each (records/s ratio; records/s and p99 of each)",
        (
            "audit_commit.group_to_alone",
            "audit_commit.group_records_per_s",
            "audit_commit.alone_records_per_s",
            "audit_commit.group_p99_ms",
            "audit_commit.alone_p99_ms",
        ),
    ),
    Target(
        "figure, no target: hook time with one FHIR batch per round against parallel requests (every "
        "demo and Synthea patient, median; on loopback, then 50 ms added per request)",
        ("hook_latency.batch_to_parallel_loopback", "hook_latency.batch_to_parallel_wan"),
    ),
)


@dataclass
class Run:
    """One benchmark's run: its command, what it printed, and the figures in it."""

    name: str
    command: str
    docstring: str
    seconds: float = 0.0
    returncode: int | None = None
    output: str = ""
    errors: str = ""
    figures: dict[str, tuple[float, str]] = field(default_factory=dict)


def _assigns_run_all(node: ast.stmt) -> bool:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return any(isinstance(t, ast.Name) and t.id == "RUN_ALL" for t in targets)


def _literal(node: ast.stmt) -> list[str]:
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    return [str(a) for a in ast.literal_eval(value)] if value is not None else []


def benchmarks(directory: Path = BENCH) -> list[tuple[Path, list[str], str]]:
    """(script, its RUN_ALL arguments, first paragraph of its docstring) of every benchmark here."""
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = ast.parse(path.read_text(encoding="utf-8"))
        arguments = next((_literal(node) for node in module.body if _assigns_run_all(node)), None)
        if arguments is not None:
            summary = (ast.get_docstring(module) or path.stem).split("\n\n")[0].replace("\n", " ")
            found.append((path, arguments, summary))
    return found


def collect_figures(output: str) -> dict[str, tuple[float, str]]:
    figures = {}
    for line in output.splitlines():
        match = FIGURE_LINE.match(line.strip())
        if match:
            figures[match["key"]] = (float(match["value"]), match["unit"].strip())
    return figures


def run(path: Path, arguments: list[str], summary: str) -> Run:
    command = f"PYTHONPATH=. .venv/bin/python bench/{path.name} {' '.join(arguments)}".rstrip()
    result = Run(path.stem, command, summary)
    print(f"== {command}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *arguments],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
        result.returncode, result.output, result.errors = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        result.output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        result.errors = f"stopped after {TIMEOUT_SECONDS} s"
    result.seconds = time.perf_counter() - started
    result.figures = collect_figures(result.output)
    print(result.output, end="", flush=True)
    if result.returncode != 0:
        print(f"   failed ({result.returncode}): {result.errors[-2000:]}", file=sys.stderr, flush=True)
    return result


def machine() -> list[str]:
    model = "unknown CPU"
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.exists():
        for line in with_cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text(encoding="utf-8").split("MemTotal:")[1].split()[0])
        memory = f"{total_kb / 2**20:.1f} GiB"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return [
        f"- CPU: {model}, {os.cpu_count()} cores (logical)",
        f"- memory: {memory}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- load average when the run started (1, 5, 15 min): {load} — a shared machine is noisy; compare "
        "figures with their baseline from the same run",
    ]


def _format(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}".strip() if abs(value) < 1000 else f"{value:,.0f} {unit}".strip()


def targets_table(figures: Figures) -> list[str]:
    rows = ["| target (issue 12) | measured | met | reproduce |", "|---|---|---|---|"]
    for target in TARGETS:
        present = {k: figures[k] for k in target.keys if k in figures}
        if not present:
            rows.append(f"| {target.text} | not measured yet | — | — |")
            continue
        measured = "; ".join(f"`{k}` {_format(v, unit)}" for k, (v, unit, _) in present.items())
        if target.note:
            measured += f" ({target.note})"
        met = target.met({k: v for k, (v, _, _) in present.items()})
        benchmarks_used = sorted({name for (_, _, name) in present.values()})
        reproduce = ", ".join(f"`{RUN_COMMAND} --only {name}`" for name in benchmarks_used)
        rows.append(f"| {target.text} | {measured} | {met} | {reproduce} |")
    return rows


def all_figures(runs: list[Run]) -> Figures:
    return {key: (value, unit, r.name) for r in runs for key, (value, unit) in r.figures.items()}


def render(runs: list[Run], started: datetime, machine_lines: list[str]) -> str:
    figures = all_figures(runs)
    total = sum(r.seconds for r in runs)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{RUN_COMMAND}` (bench/__main__.py), which runs every benchmark",
        "in this folder one after another and keeps what each printed. Do not edit by hand: re-run it.",
        "The benchmarks assert nothing; readings of past runs are in bench/NOTES.md.",
        "",
        f"Date: {started:%Y-%m-%d %H:%M} UTC; whole run {total:.0f} s.",
        "",
        "Machine:",
        "",
        *machine_lines,
        "",
        "## Issue 12 targets",
        "",
        *targets_table(figures),
        "",
    ]
    for result in runs:
        status = "" if result.returncode == 0 else f" — **failed** (exit {result.returncode})"
        lines += [
            f"## {result.name}{status}",
            "",
            result.docstring,
            "",
            f"Command: `{result.command}` ({result.seconds:.0f} s)",
            "",
            "```",
            result.output.rstrip() or "(no output)",
            "```",
            "",
        ]
        if result.returncode != 0:
            lines += ["Error output (end):", "", "```", result.errors.rstrip()[-3000:], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="a benchmark's name, e.g. startup")
    parser.add_argument("--output", type=Path, help="write results here (default: RESULTS.md on a full run)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their arguments")
    args = parser.parse_args(argv)
    chosen = [b for b in benchmarks() if not args.only or b[0].stem in args.only]
    unknown = set(args.only) - {b[0].stem for b in chosen}
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    if args.list:
        for path, arguments, summary in chosen:
            print(f"{path.stem}: {' '.join(arguments)}\n    {summary}")
        return 0
    started = datetime.now(UTC)
    machine_lines = machine()
    runs = [run(path, arguments, summary) for path, arguments, summary in chosen]
    output = args.output or (None if args.only else RESULTS)
    if output is None:
        print("\n" + "\n".join(targets_table(all_figures(runs))))
    else:
        output.write_text(render(runs, started, machine_lines) + "\n", encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
