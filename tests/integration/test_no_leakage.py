"""No cross-request leakage (issue 10, point 6).

Many patients with different payers and coverages, called concurrently over real HTTP against a
real FHIR server (sekmet on loopback, the service threaded): every answer must speak only of its own
patient (patient references, every id it names), its own coverage and its own payer, and answers to
the same chart must not depend on what ran beside them. And no module of the service may keep
per-request state in globals: a static check of the source that fails on any module-level mutable
container that code changes at run time, any `global` rebinding, any cache that is not reviewed.
"""

from __future__ import annotations

import ast
import json
import random
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

import cards
import service
from service.app import create_app
from service.demo.fhir_server import LocalFhirServer, free_port
from service.demo.runner import patient_files, request_files
from service.settings import FhirSettings
from tests.conformance import COVERAGE_INFO, check_response
from tests.integration.conftest import FHIR_TOKEN, pointed_at
from tests.support import open_settings, serving

PAYER_LABELS: dict[str, str | tuple[str, ...]] = {  # how each base patient's payers are named in its cards
    "demo-cbc-insufficient": "Capital Blue Cross",
    "demo-cmm210-replacement": "eviCore CMM-210",
    "demo-cmm210-short-course": "eviCore CMM-210",
    "demo-cmm210-spasticity": "eviCore CMM-210",
    "demo-cohere-cancer": "Cohere Health",
    "demo-cohere-replacement": "Cohere Health",
    "demo-does-not-meet": "GEHA",
    "demo-insufficient": "GEHA",
    "demo-kaiser-medicare": "Kaiser Permanente Washington",
    "demo-kpwa-meets": "Kaiser Permanente Washington",
    "demo-kpwa-spasticity": "Kaiser Permanente Washington",
    "demo-meets": "GEHA",
    "demo-refill": "GEHA",
    "demo-spasticity": "GEHA",
    "demo-two-coverages": ("Capital Blue Cross", "GEHA"),
}
CLONES_PER_PATIENT = 2
ROUNDS = 2  # every call is made this many times, interleaved with all the others
GENERATED = re.compile(  # uuids, and the hashed suffix of ids the service derives (trial-62322-4eed7a4f3b31)
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=-)[0-9a-f]{12}\b"
)
ID_TOKEN = re.compile(r"[A-Za-z0-9\-.]+")


@dataclass(frozen=True)
class Scenario:
    base: str  # the demo patient this chart copies
    patient_id: str
    ids: frozenset[str]  # every resource id of its chart and its calls
    coverages: frozenset[str]
    calls: tuple[tuple[str, dict[str, Any]], ...]  # (url, body)


def _renamed(value: Any, base: str, patient_id: str) -> Any:
    """`value` (JSON) with the base patient's id replaced by `patient_id` everywhere (ids too)."""
    return json.loads(json.dumps(value).replace(base, patient_id))


def _ids_in(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("id"), str):
                found.add(item["id"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _scenario(base: str, patient_id: str, chart: dict[str, Any], fhir_base: str) -> Scenario:
    selects = [p.stem for p in request_files() if p.stem.startswith("order-select-")]
    name = next(stem for stem in selects if stem.split("-", 3)[3] == base)  # order-select-<code>-<patient>
    select = _renamed(pointed_at(name, fhir_base), base, patient_id)
    sign = {k: v for k, v in select.items() if k != "hookInstance"}
    sign["context"] = {k: v for k, v in select["context"].items() if k != "selections"}
    sign["hook"] = "order-sign"
    sign["hookInstance"] = "0f0e7a52-2a9b-4c1e-9d0f-1a2b3c4d5e6f"
    coverages = {e["resource"]["id"] for e in chart["entry"] if e["resource"]["resourceType"] == "Coverage"}
    return Scenario(
        base,
        patient_id,
        frozenset(_ids_in(chart) | _ids_in(select) | _ids_in(sign)),
        frozenset(coverages),
        (
            ("/cds-services/idds-crd-order-select", select),
            ("/cds-services/idds-crd-order-sign", sign),
        ),
    )


@pytest.fixture(scope="module")
def scenarios(fhir_server: LocalFhirServer) -> list[Scenario]:
    """The demo patients and copies of them under other ids, all loaded into the FHIR server."""
    found = []
    for path in patient_files():
        base = path.stem
        chart = json.loads(path.read_text(encoding="utf-8"))
        found.append(_scenario(base, base, chart, fhir_server.base_url))
        for n in range(1, CLONES_PER_PATIENT + 1):
            patient_id = f"{base}-copy{n}"
            copy = _renamed(chart, base, patient_id)
            fhir_server.load(copy)
            found.append(_scenario(base, patient_id, copy, fhir_server.base_url))
    assert {s.base for s in found} == set(PAYER_LABELS)
    return found


@dataclass(frozen=True)
class Served:
    url: str
    app: Flask


@pytest.fixture(scope="module")
def served(fhir_server: LocalFhirServer) -> Iterator[Served]:
    """The service, threaded, with a deadline no load on the test machine can reach (so answers
    cannot differ by timing, only by leakage), recording its audit trail in a database of its own."""
    port = free_port()
    fhir = FhirSettings(deadline_seconds=60.0, timeout_seconds=50.0)
    settings = open_settings(fhir_server.base_url, public_base_url=f"http://127.0.0.1:{port}", fhir=fhir)
    app = create_app(settings)
    with serving(app, port) as url:
        yield Served(url, app)


def _normalised(answer: dict[str, Any], scenario: Scenario) -> str:
    """The answer as it would read for the base patient, with generated ids blanked."""
    text = json.dumps(answer, sort_keys=True).replace(scenario.patient_id, scenario.base)
    return GENERATED.sub("<generated>", text)


def _leaks(answer: dict[str, Any], scenario: Scenario, everyone: list[Scenario]) -> list[str]:
    text = json.dumps(answer)
    problems = []
    patients = set(re.findall(r"Patient/([A-Za-z0-9\-.]+)", text))
    if patients != {scenario.patient_id}:
        problems.append(f"patient references {sorted(patients)}")
    others = set().union(*(s.ids for s in everyone if s is not scenario)) - scenario.ids
    foreign = sorted(set(ID_TOKEN.findall(text)) & others)
    if foreign:
        problems.append(f"ids of other patients' charts: {foreign[:5]}")
    own = PAYER_LABELS[scenario.base]
    for card in answer["cards"]:
        if not card["summary"].startswith(own) or not card["source"]["label"].startswith(own):
            problems.append(f"card of another payer: {card['summary']} ({card['source']['label']})")
    for action in answer.get("systemActions", []):
        for extension in action["resource"].get("extension", []):
            if extension["url"] == COVERAGE_INFO:
                coverage = next(s for s in extension["extension"] if s["url"] == "coverage")
                reference = coverage["valueReference"]["reference"]
                if reference.removeprefix("Coverage/") not in scenario.coverages:
                    problems.append(f"coverage information for {reference}")
    return problems


def test_interleaved_calls_of_many_patients_speak_only_of_their_own(
    scenarios: list[Scenario], served: Served
) -> None:
    service_url = served.url
    fresh = random.Random(20261203)
    calls = [
        (s, url, {**body, "hookInstance": str(uuid.UUID(int=fresh.getrandbits(128), version=4))})
        for _ in range(ROUNDS)
        for s in scenarios
        for url, body in s.calls
    ]
    fresh.shuffle(calls)
    assert len(calls) >= 50 and len({s.patient_id for s in scenarios}) >= 20

    def call(item: tuple[Scenario, str, dict[str, Any]]) -> tuple[Scenario, str, dict[str, Any], Any]:
        scenario, url, body = item
        response = requests.post(f"{service_url}{url}", json=body, timeout=120)
        assert response.status_code == 200, response.text[:300]
        return scenario, url, body, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(call, calls))

    by_chart: dict[tuple[str, str], set[str]] = {}
    for scenario, url, body, answer in answers:
        assert answer["cards"], f"{scenario.patient_id} {url}: no cards"
        assert _leaks(answer, scenario, scenarios) == [], f"{scenario.patient_id} {url}"
        assert check_response(answer, body) == []
        by_chart.setdefault((scenario.base, url), set()).add(_normalised(answer, scenario))
    differing = sorted(key for key, texts in by_chart.items() if len(texts) != 1)
    assert differing == [], "the same chart got different answers depending on what ran beside it"
    assert FHIR_TOKEN not in json.dumps([a for *_, a in answers])
    trail = served.app.extensions["idds_crd"].stores.audit
    for scenario, url, body, answer in answers:
        [record] = trail.find(body["hookInstance"])  # exactly one record per call
        assert record["patient_id"] == scenario.patient_id
        assert record["response"] == answer
        assert _leaks(record["response"], scenario, scenarios) == [], f"audit of {scenario.patient_id} {url}"
        assert FHIR_TOKEN not in json.dumps(record)


# --------------------------------------------------------------------------- no per-request globals

MUTATING_METHODS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "add",
        "update",
        "setdefault",
        "pop",
        "popitem",
        "remove",
        "discard",
        "clear",
        "appendleft",
        "extendleft",
        "__setitem__",
    }
)
MUTABLE_FACTORIES = frozenset({"dict", "list", "set", "defaultdict", "deque", "OrderedDict", "Counter"})
CACHES = frozenset({"cache", "lru_cache"})  # shared by every call (a cached_property is per object)
# Caches reviewed to hold only data fixed for the life of the process, never anything of a request.
REVIEWED_CACHES = {
    "service/audit_entry.py:_recorded_fields": "the field names of a dataclass, by class",
    "service/openapi.py:openapi_document": "the OpenAPI document, built from the registry",
    "service/version.py:service_version": "the installed package's version",
    "service/yamlsource.py:_validator": "the JSON Schema of the policy files, by file name",
    "service/yamlsource.py:strict_loader": "a YAML loader class, by whether libyaml's parser is used",
}
# Module-level state reviewed to be set at start-up only, never by a request.
REVIEWED_GLOBALS = {
    "service/store/database.py:_TABLES_CHECKED": "the databases whose tables serve's master checked before "
    "forking its workers (set by the master, read by a worker opening its database)",
    "service/log_buffer.py:_drop_observers": "who counts the log lines the process drops: the metrics of "
    "the app built last (set as the app is built, a worker's only one under serve)",
}


def _is_mutable_value(node: ast.expr) -> bool:
    if isinstance(node, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in MUTABLE_FACTORIES
    return False


def _module_mutables(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign) and _is_mutable_value(node.value):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None and _is_mutable_value(node.value):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else ""


def per_request_state_findings(source: str, where: str) -> list[str]:
    """Where a module's code changes module-level state at run time, or caches unreviewed."""
    tree = ast.parse(source)
    mutables = _module_mutables(tree)
    findings = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        for decorator in function.decorator_list:
            if _decorator_name(decorator) in CACHES and f"{where}:{function.name}" not in REVIEWED_CACHES:
                findings.append(f"{where}:{function.lineno} {function.name} caches across calls")
        for node in ast.walk(function):
            if isinstance(node, ast.Global):
                findings.append(f"{where}:{node.lineno} rebinds globals {', '.join(node.names)}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                changing = node.func.attr in MUTATING_METHODS
                reviewed = isinstance(owner, ast.Name) and f"{where}:{owner.id}" in REVIEWED_GLOBALS
                if isinstance(owner, ast.Name) and owner.id in mutables and changing and not reviewed:
                    findings.append(f"{where}:{node.lineno} changes module-level {owner.id}")
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                for target in targets:
                    base = target.value if isinstance(target, ast.Subscript | ast.Attribute) else None
                    if (
                        isinstance(base, ast.Name)
                        and base.id in mutables
                        and f"{where}:{base.id}" not in REVIEWED_GLOBALS
                    ):
                        findings.append(f"{where}:{node.lineno} changes module-level {base.id}")
    return findings


def _service_sources() -> Iterator[tuple[str, str]]:
    for package in (service, cards):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            yield path.read_text(encoding="utf-8"), f"{root.name}/{path.relative_to(root)}"


def test_no_module_of_the_service_keeps_per_request_state_in_globals() -> None:
    findings = [f for source, where in _service_sources() for f in per_request_state_findings(source, where)]
    assert findings == []


@pytest.mark.parametrize(
    "source",
    [
        "SEEN = {}\ndef handle(request):\n    SEEN[request.id] = request\n",
        "LAST = []\ndef handle(request):\n    LAST.append(request)\n",
        "CURRENT = None\ndef handle(request):\n    global CURRENT\n    CURRENT = request\n",
        "from functools import cache\n@cache\ndef patient(patient_id):\n    return {}\n",
        "import collections\nRECENT = collections.deque()\ndef handle(r):\n    RECENT.appendleft(r)\n",
    ],
)
def test_the_static_check_finds_per_request_globals(source: str) -> None:
    assert per_request_state_findings(source, "planted.py") != []


def test_the_static_check_lets_constants_and_locals_be() -> None:
    source = "TABLE = {'a': 1}\ndef handle(request):\n    seen = {}\n    seen[request] = TABLE['a']\n"
    assert per_request_state_findings(source, "fine.py") == []
