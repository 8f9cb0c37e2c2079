"""Start-up time and memory of one worker: `create_app` cold (no catalog cache) and warm (cache).

Each measurement is a fresh interpreter, as a new worker is, timed from inside (imports, then
`create_app` with the default production settings and a file SQLite store) and from outside (the
whole process, interpreter start included); RSS is read from /proc after `create_app`. Beside it,
in the same run, the baseline: importing Flask and building an app with one route. "Cold" uses an
empty catalog cache directory (so it compiles every policy and the code of the service's dataclasses,
and writes both: service/dataclass_cache.py), "warm" the filled one, "no cache" runs with
IDDS_CRD_CATALOG_CACHE=off (neither cache). Prints figures (medians of --repeat runs); asserts nothing.

Bytecode: an installed service runs from compiled modules (pip compiles every module when it
installs a wheel, as the Docker image does). A source checkout whose shell sets
PYTHONDONTWRITEBYTECODE (this machine's does) instead compiles the service's ~90 modules from source
on every start, 0.1-0.2 s that no deployment pays; so every interpreter here writes and reads its
bytecode under the run's temporary directory (PYTHONPYCACHEPREFIX), and one row shows the warm
start without any bytecode, for comparison.

`idds-crd serve` is split by its own log lines (JSON, millisecond times): launch to "Starting
gunicorn" (interpreter, imports, settings, catalog, database: the master), to the first "Booting
worker" (gunicorn's arbiter), to the first 200 from /readyz (the forked worker builds its app and
answers; the client polls every 10 ms); then the memory of each of its workers (PSS and private
dirty, from /proc) after a few calls: what a worker costs beyond what it shares with the master.

    PYTHONPATH=. .venv/bin/python bench/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure  # noqa: E402

RUN_ALL = ["--repeat", "5"]

_RSS = """
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
"""

BASELINE = (
    _RSS
    + """
import json, time
started = time.perf_counter()
from flask import Flask
imported = time.perf_counter()
app = Flask("baseline")
app.add_url_rule("/", "noop", lambda: "")
ready = time.perf_counter()
print(json.dumps({"import": imported - started, "create": ready - imported, "rss_mb": rss_mb()}))
"""
)

SERVICE = (
    _RSS
    + """
import json, sys, time
started = time.perf_counter()
from service.app import create_app
from service.settings import Settings, StoreSettings
imported = time.perf_counter()
app = create_app(Settings(store=StoreSettings(url="sqlite:///" + sys.argv[1])))
ready = time.perf_counter()
print(json.dumps({"import": imported - started, "create": ready - imported, "rss_mb": rss_mb()}))
"""
)

# What `idds-crd serve` does for each worker: the master imports the service and compiles (or loads)
# the catalog once; a forked worker only builds its app.
FORKED = """
import json, os, sys, time
from service.app import create_app
from service.catalog import load_catalog
from service.settings import Settings, StoreSettings
settings = Settings(store=StoreSettings(url="sqlite:///" + sys.argv[1]))
catalog = load_catalog()
create_app(settings, catalog)  # creates the tables, as `serve` does before forking
from service.store.database import open_database, tables_checked_for_children
opened = open_database(settings.store.url)
tables_checked_for_children(settings.store.url, opened)  # as `serve` does: its workers need not check them
opened.close()
reader, writer = os.pipe()
started = time.perf_counter()
child = os.fork()
if child == 0:
    create_app(settings, catalog)
    os.write(writer, json.dumps({"worker_ready": time.perf_counter() - started}).encode())
    os._exit(0)
os.close(writer)
answer = os.read(reader, 1000)
os.waitpid(child, 0)
print(answer.decode())
"""


def _logged_at(log: Path, message_start: str) -> float | None:
    """The epoch time of the first JSON log line whose message starts with `message_start`."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and str(entry.get("message", "")).startswith(message_start):
            return datetime.fromisoformat(entry["time"]).timestamp()
    return None


def serve_until_ready(environment: dict[str, str], work: Path) -> dict[str, float]:
    """Seconds from launching `idds-crd serve` to its first 200 from /readyz, and the phases between."""
    from service.demo.fhir_server import free_port

    port = free_port()
    log = work / "serve.log"
    (work / "serve.yaml").write_text(f"store:\n  url: sqlite:///{work / 'serve.sqlite3'}\n")
    command = [sys.executable, "-m", "service.cli", "serve", "--config", "serve.yaml", "--port", str(port)]
    with log.open("w") as log_file:
        launched_at, started = time.time(), time.perf_counter()
        process = subprocess.Popen(command, env=environment, cwd=work, stderr=log_file)
        try:
            while process.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                        if answer.status == 200:
                            ready = time.perf_counter() - started
                            break
                except OSError:
                    time.sleep(0.01)
            else:
                raise SystemExit("idds-crd serve stopped before it was ready")
            memory = workers_memory(process.pid, port)
        finally:
            process.terminate()
            process.wait(timeout=30)
    master = _logged_at(log, "Starting gunicorn")
    forked = _logged_at(log, "Booting worker")
    if master is None or forked is None:
        raise SystemExit(f"idds-crd serve did not log its start-up as expected: see {log}")
    return {
        "ready": ready,
        "master": master - launched_at,
        "arbiter": forked - master,
        "worker": ready - (forked - launched_at),
        **memory,
    }


def _memory_mb(pid: int) -> dict[str, float]:
    """A process's proportional set size and private dirty memory (MB), from /proc."""
    wanted = {"Pss:": "pss_mb", "Private_Dirty:": "private_mb"}
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        label, value, *_ = line.split()
        if label in wanted:
            found[wanted[label]] = int(value) / 1024
    return found


def workers_memory(master: int, port: int, expected: int = os.cpu_count() or 1) -> dict[str, float]:
    """Median PSS and private dirty memory of `serve`'s workers once every worker has started and
    answered a few requests: what each worker costs beyond the pages it shares with the master."""
    children = Path(f"/proc/{master}/task/{master}/children")
    deadline = time.monotonic() + 10
    while len(children.read_text().split()) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cds-services", timeout=5) as answer:
            answer.read()
    measured = [_memory_mb(int(pid)) for pid in children.read_text().split()]
    return {key: statistics.median(m[key] for m in measured) for key in ("pss_mb", "private_mb")}


def run(script: str, environment: dict[str, str], work: Path) -> dict[str, float]:
    """One fresh interpreter: its own phase times and RSS, plus the whole process's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, str(work / "store.sqlite3")],
        capture_output=True,
        text=True,
        env=environment,
        cwd=work,
        check=True,
    )
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    measured["process"] = time.perf_counter() - started
    return measured


def import_breakdown(environment: dict[str, str], work: Path, shown: int = 10) -> list[tuple[str, float]]:
    """Import time of `service.app` by top-level package (own time of its modules), one interpreter."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import service.app"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=work,
        check=True,
    )
    by_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(own) / 1e6
    return sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:shown]


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="idds-crd-startup-") as temporary:
        work = Path(temporary)
        base_environment = {
            **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPATH": str(ROOT),
            "PYTHONPYCACHEPREFIX": str(work / "bytecode"),
        }
        cache = work / "catalog-cache"
        cold, warm, from_source, uncached, baseline, forked, served = [], [], [], [], [], [], []
        uncached_environment = {**base_environment, "IDDS_CRD_CATALOG_CACHE": "off"}
        run(SERVICE, uncached_environment, work)  # fills the OS page cache and the bytecode cache first
        for attempt in range(args.repeat):
            attempt_cache = cache / str(attempt)
            with_cache = {**base_environment, "IDDS_CRD_CATALOG_CACHE": str(attempt_cache)}
            without_bytecode = {**with_cache, "PYTHONDONTWRITEBYTECODE": "1"}
            without_bytecode.pop("PYTHONPYCACHEPREFIX")
            cold.append(run(SERVICE, with_cache, work))
            warm.append(run(SERVICE, with_cache, work))
            from_source.append(run(SERVICE, without_bytecode, work))
            uncached.append(run(SERVICE, uncached_environment, work))
            baseline.append(run(BASELINE, base_environment, work))
            forked.append(run(FORKED, with_cache, work)["worker_ready"])
            served.append(serve_until_ready(with_cache, work))
        breakdown = import_breakdown(uncached_environment, work)
        rows = {
            "baseline: Flask app, one route": medians(baseline),
            "idds-crd, catalog cache off": medians(uncached),
            "idds-crd, cold (empty cache)": medians(cold),
            "idds-crd, warm (cache filled)": medians(warm),
            "idds-crd, warm, no bytecode": medians(from_source),
        }
    print(f"{args.repeat} fresh interpreters each, medians; Python {sys.version.split()[0]}\n")
    header = f"{'':<32} {'imports s':>9} {'create_app s':>12} {'ready s':>8} {'process s':>9} {'RSS MB':>7}"
    print(header)
    print("-" * len(header))
    for label, m in rows.items():
        ready = m["import"] + m["create"]
        print(
            f"{label:<32} {m['import']:>9.3f} {m['create']:>12.3f} {ready:>8.3f} {m['process']:>9.3f} "
            f"{m['rss_mb']:>7.1f}"
        )
    print("\nready = imports + create_app, timed inside the interpreter; process = the whole run, outside")
    print("no bytecode = compiling the service's modules from source at every start (see the docstring)")
    worker_ready, serve = statistics.median(forked), medians(served)
    serve_ready = serve["ready"]
    print(
        f"\na worker forked from a master that imported the service and loaded the catalog: ready in "
        f"{worker_ready:.3f} s"
    )
    print(
        f"`idds-crd serve` (gunicorn, {os.cpu_count()} workers), launch to first 200 from /readyz: "
        f"{serve_ready:.3f} s, of which"
    )
    print(f"  master (interpreter, imports, settings, catalog, database) {serve['master']:>6.3f} s")
    print(f"  gunicorn's arbiter, to its first worker's fork            {serve['arbiter']:>6.3f} s")
    print(f"  first worker: create_app, answering /readyz (10 ms polls)  {serve['worker']:>6.3f} s")
    print(
        f"each worker after 20 discovery calls: PSS {serve['pss_mb']:.1f} MB, private dirty "
        f"{serve['private_mb']:.1f} MB (the rest it shares with the master and the other workers)"
    )
    print("\nwhere the imports of service.app go (own time of each top-level package's modules, one run):")
    for package, seconds in breakdown:
        print(f"  {package:<28} {seconds:>6.3f} s")
    cold_m, warm_m, from_source_m, base_m = (
        rows["idds-crd, cold (empty cache)"],
        rows["idds-crd, warm (cache filled)"],
        rows["idds-crd, warm, no bytecode"],
        rows["baseline: Flask app, one route"],
    )
    figure("startup.create_app_cold_s", cold_m["create"], "s")
    figure("startup.create_app_warm_s", warm_m["create"], "s")
    figure("startup.ready_cold_s", cold_m["import"] + cold_m["create"], "s")
    figure("startup.ready_warm_s", warm_m["import"] + warm_m["create"], "s")
    figure("startup.imports_s", warm_m["import"], "s")
    figure("startup.baseline_ready_s", base_m["import"] + base_m["create"], "s")
    figure(
        "startup.ready_warm_to_baseline",
        (warm_m["import"] + warm_m["create"]) / (base_m["import"] + base_m["create"]),
        "x",
    )
    figure("startup.worker_ready_after_fork_s", worker_ready, "s")
    figure("startup.serve_to_ready_s", serve_ready, "s")
    figure("startup.serve_master_s", serve["master"], "s")
    figure("startup.ready_warm_no_bytecode_s", from_source_m["import"] + from_source_m["create"], "s")
    figure("startup.process_warm_s", warm_m["process"], "s")
    figure("startup.baseline_process_s", base_m["process"], "s")
    figure("startup.rss_warm_mb", warm_m["rss_mb"], "MB")
    figure("startup.serve_worker_pss_mb", serve["pss_mb"], "MB")
    figure("startup.serve_worker_private_mb", serve["private_mb"], "MB")
    figure("startup.rss_cold_mb", cold_m["rss_mb"], "MB")
    figure("startup.baseline_rss_mb", base_m["rss_mb"], "MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
