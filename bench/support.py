"""Helpers the serving benchmarks share: starting a server process, driving it with persistent
connections, and the pump order-sign call with a complete, Synthea-sized prefetch.

Not a benchmark itself (no `RUN_ALL`): bench/serving.py, bench/pump_sign.py, bench/pipeline_split.py
and bench/profile.py import it.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = ROOT / "service" / "demo" / "data" / "requests"
PATIENTS = ROOT / "service" / "demo" / "data" / "patients"
PUMP_SIGN_SAMPLE = REQUESTS / "order-sign-implant-demo-meets.json"
PUMP_SIGN_PATH = "/cds-services/idds-crd-order-sign"
PATIENT_ID = "demo-meets"


def free_port() -> int:
    from service.demo.fhir_server import free_port as pick

    return pick()


def start(command: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server process (its output discarded) and wait until GET /healthz on `port` answers."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,  # a server's banner is not a benchmark's output
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {command}")


def serve_command(config: Path, store_url: str, open_fhir_servers: tuple[str, ...] = ()) -> list[str]:
    """`idds-crd serve` (gunicorn) without authentication, auditing to `store_url` and allowed to
    name `open_fhir_servers`, its configuration written to `config`; the port is appended."""
    servers = f"\n  open_fhir_servers: {json.dumps(list(open_fhir_servers))}" if open_fhir_servers else ""
    config.write_text(f"auth:\n  required: false{servers}\nstore:\n  url: {store_url}\n", encoding="utf-8")
    return [sys.executable, "-m", "service.cli", "serve", "--config", str(config), "--port"]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Load:
    """What `drive` measured: calls per second, latency percentiles, answers other than 200, and
    answers that did not ask their FHIR server (held back: "not asked", service/fhir/server_share.py)."""

    calls_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failures: int
    held_back: int


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def drive(port: int, path: str, body: bytes, seconds: float, clients: int) -> Load:
    """`clients` threads, one persistent `http.client` connection each (reconnecting whenever the
    server closes it), posting `body` to `path` for `seconds`."""
    latencies: list[float] = []
    failures = [0]
    held_back = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        mine: list[float] = []
        bad = 0
        held = 0
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                held += b"not asked:" in answer.read()
                bad += answer.status != 200
                if answer.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                connection.close()
                bad += 1
                continue
            mine.append(time.perf_counter() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad
            held_back[0] += held

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies) or [float("nan")]
    return Load(
        len(latencies) / seconds,
        percentile(ordered, 0.50) * 1000,
        percentile(ordered, 0.95) * 1000,
        percentile(ordered, 0.99) * 1000,
        failures[0],
        held_back[0],
    )


def largest_synthea_record() -> Path | None:
    from service.demo.synthea import synthea_files

    files = sorted(synthea_files(), key=lambda p: p.stat().st_size)
    return files[-1] if files else None


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def _as_demo_patient(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """A Synthea transaction Bundle's resources, re-pointed at the demo patient."""
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    text = text.replace(f"urn:uuid:{patient['id']}", f"Patient/{PATIENT_ID}")
    text = text.replace(f"Patient/{patient['id']}", f"Patient/{PATIENT_ID}")
    return [r for r in json.loads(text) if r["resourceType"] != "Patient"]


def _matches_template(resource: dict[str, Any], codes: set[str], systems: set[str]) -> bool:
    for coding in resource.get("code", {}).get("coding", []):
        system = coding.get("system", "")
        if system in systems or f"{system}|{coding.get('code')}" in codes:
            return True
    return False


def pump_sign_body(record: Path | None) -> tuple[dict[str, Any], int]:
    """The demo-meets pump order-sign (CPT 62362) with every prefetch key filled, as an EHR running
    the discovery templates would send it, and how many clinical resources it carries.

    The clinical keys hold demo-meets's own chart plus, when `record` is given, that Synthea
    patient's chart re-pointed at demo-meets. The Observation template names the codes the policies
    read, so only Observations with those codes are sent (as the EHR's search would return)."""
    from service.catalog import load_catalog
    from service.fhir.queries import policy_templates

    body = json.loads(PUMP_SIGN_SAMPLE.read_text(encoding="utf-8"))
    demo = json.loads((PATIENTS / f"{PATIENT_ID}.json").read_text(encoding="utf-8"))
    chart = [e["resource"] for e in demo["entry"]]
    if record is not None:
        chart += _as_demo_patient(json.loads(record.read_text(encoding="utf-8")))
    templates = policy_templates(load_catalog().terminology)
    prefetch = copy.deepcopy(body["prefetch"])
    payers = {r["id"]: r for r in chart if r["resourceType"] == "Organization"}
    coverage = prefetch["coverage"]
    for entry in list(coverage["entry"]):
        for payor in entry["resource"].get("payor", []):
            organisation = payers.get(payor.get("reference", "").removeprefix("Organization/"))
            if organisation is not None:
                coverage["entry"].append({"resource": organisation, "search": {"mode": "include"}})
    sent = 0
    for key, template in templates.items():
        resource_type = template.split("?", 1)[0]
        chosen = [r for r in chart if r["resourceType"] == resource_type]
        if resource_type == "Observation":
            code_param = template.split("code=", 1)[1].split("&", 1)[0]
            wanted = {c for c in code_param.split(",") if not c.endswith("|")}
            systems = {c[:-1] for c in code_param.split(",") if c.endswith("|")}
            chosen = [r for r in chosen if _matches_template(r, wanted, systems)]
        prefetch[key] = _searchset(chosen)
        sent += len(chosen)
    body["prefetch"] = prefetch
    return body, sent


TICKS = os.sysconf("SC_CLK_TCK")


def process_tree_cpu(root: int) -> float:
    """Seconds of user + system CPU used so far by `root` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(times.get(pid, 0.0) for pid in tree)
