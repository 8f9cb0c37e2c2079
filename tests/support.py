"""Calling the service in tests: sample request bodies, a recording stand-in for the EHR's FHIR
server, and the checks every error answer must pass. Shared by the test modules (which never
import one another)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import BaseServer
from typing import Any, TypeVar

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

import service
from service.fhir.client import SearchResult
from service.fhir.queries import CLINICAL_KEYS, TRIAL_ORDER_KEYS
from service.hooks.models import HookRequest
from service.registry import OPEN_ORDERS_PREFETCH, PAYER_PREFETCH
from service.settings import AuthSettings, Settings, StoreSettings
from tests.conformance import COVERAGE_INFO
from tests.postgres_support import in_ci

REQUESTS_DIR = Path(service.__file__).parent / "demo" / "data" / "requests"
SELECT_URL = "/cds-services/idds-crd-order-select"
SIGN_URL = "/cds-services/idds-crd-order-sign"
SELECTED_ORDER = "ServiceRequest/demo-meets-select-sr-62362"
FHIR_SERVER = "https://ehr.example.org/fhir"
TOKEN = "tok-7f3c1a9e-SECRET-b2d4"
MISSING = object()
INFERNO_FHIR_SERVERS = ("https://example/r4", "https://inferno.healthit.gov/reference-server/r4")


def open_settings(*extra_fhir_servers: str, **overrides: Any) -> Settings:
    """Settings of a development deployment: no JWT required, an in-memory database, and the
    test suite's FHIR servers (plus `extra_fhir_servers`) open to unauthenticated callers."""
    auth = AuthSettings(
        required=False, open_fhir_servers=(FHIR_SERVER, *INFERNO_FHIR_SERVERS, *extra_fhir_servers)
    )
    return Settings(**{"auth": auth, "store": StoreSettings(url="sqlite://"), **overrides})


JsonPath = tuple[str | int, ...]
ClientFactory = Callable[[HookRequest, float], Any]


def load_sample(name: str) -> dict[str, Any]:
    """A packaged sample as most tests' EHR sends it: see `as_queried`."""
    return as_queried(json.loads((REQUESTS_DIR / name).read_text(encoding="utf-8")))


def as_queried(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with only the Patient and the Coverage prefetched (without its payer Organization, under
    `coverage` or `payerOrganizations`: it is read by reference), so that the service queries the
    chart itself. The packaged samples are self-contained (every key
    discovery declares is prefetched); tests of the query path use them in this older shape, the demo
    sample tests (tests/demo_support.py) whole. Prefetch keys discovery does not declare stay; an
    appointment-book call keeps only its Appointments (the booked order is read from the EHR)."""
    clinical = {*CLINICAL_KEYS, *OPEN_ORDERS_PREFETCH, *TRIAL_ORDER_KEYS, *PAYER_PREFETCH}
    prefetch = {key: value for key, value in body.get("prefetch", {}).items() if key not in clinical}
    coverage = prefetch.get("coverage")
    if isinstance(coverage, dict) and coverage.get("resourceType") == "Bundle":
        matches = [e for e in coverage.get("entry", []) if e["resource"]["resourceType"] == "Coverage"]
        prefetch["coverage"] = {**coverage, "entry": matches}
    context = body["context"]
    if isinstance(context.get("appointments"), dict):
        entries = context["appointments"].get("entry", [])
        booked = [e for e in entries if e["resource"]["resourceType"] == "Appointment"]
        context = {**context, "appointments": {**context["appointments"], "entry": booked}}
    return {**body, "context": context, "prefetch": prefetch}


def select_body() -> dict[str, Any]:
    """A valid order-select body: one selected CPT 62362 ServiceRequest plus an infusate."""
    return load_sample("order-select-62362-demo-meets.json")


def sign_body() -> dict[str, Any]:
    """A valid order-sign body (no selections): 62362, 62350, E0783 and an infusate."""
    return load_sample("order-sign-implant-demo-meets.json")


def non_pump_body() -> dict[str, Any]:
    return load_sample("order-select-non-pump.json")


def with_fhir(body: dict[str, Any], token: str = TOKEN, server: str = FHIR_SERVER) -> dict[str, Any]:
    """The body pointed at `server` with a bearer `token`, as an EHR sends it."""
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 30,
        "scope": "patient/*.read",
        "subject": "idds-crd",
    }
    return body


def mutate(body: dict[str, Any], path: JsonPath, value: Any) -> dict[str, Any]:
    """Set (or, with MISSING, delete) the element at `path`; returns the same body."""
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    if value is MISSING:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


def assertion_of(action: dict[str, Any]) -> dict[str, Any]:
    """The sub-extensions (by url, their values; a complex one's parts, as a `detail`'s) of the one
    coverage-information repetition that a system action carries."""
    [info] = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
    return {
        s["url"]: next((v for k, v in s.items() if k.startswith("value")), s.get("extension"))
        for s in info["extension"]
    }


def post_json(client: FlaskClient, url: str, body: Any) -> TestResponse:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def no_client(request: HookRequest, deadline: float) -> None:
    return None


class CountedItems(list[Any]):
    """A JSON array that counts the items read out of it: how much work a loop over a resource's
    `contained` costs, told apart from how long it takes (security review S-2)."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self.read = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self.read += 1
            yield item


class AskingClient:
    """What the service reads of a FhirClient besides its queries, for stand-ins that send each
    query on its own and are always let ask their server (service/fhir/server_share.py)."""

    batches = False
    refused = 0

    def refusal(self) -> str | None:
        return None

    def bounded(self, deadline: float) -> Any:
        """A stand-in's requests are its own to time (FhirClient.bounded cuts a real one's timeout)."""
        return self


class RecordingFhirClient(AskingClient):
    """Stands in for FhirClient: records every search/read; optionally fails every call."""

    origin = "https://ehr.example.org"

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error = error

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        self.calls.append(("search", (resource_type, dict(params))))
        if self.error is not None:
            raise self.error
        return SearchResult([], [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        self.calls.append(("read", reference))
        if self.error is not None:
            raise self.error
        return None


class RecordingFactory:
    """A client factory that records its calls and hands out one RecordingFhirClient."""

    def __init__(self, client: RecordingFhirClient) -> None:
        self.client = client
        self.requests: list[HookRequest] = []

    def __call__(self, request: HookRequest, deadline: float) -> RecordingFhirClient:
        self.requests.append(request)
        return self.client


def assert_outcome(
    response: TestResponse, status: int, expression: str | None, mention: str | None = None
) -> dict[str, Any]:
    """The response is `status` with an OperationOutcome error naming `expression` (if given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert response.mimetype == "application/json"
    body = json.loads(text)
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    assert issue["severity"] == "error"
    assert isinstance(issue["code"], str) and issue["code"]
    assert isinstance(issue["diagnostics"], str) and issue["diagnostics"]
    if expression is not None:
        assert issue["expression"][0] == expression
        assert (mention or expression) in issue["diagnostics"]
    return issue


def numbered_steps(detail: str) -> list[str]:
    """The numbered steps of an Instructions card, without the group headings; a step's sub-items (the
    results of a trial not yet done, each on a line "   - …") are part of it, joined by newlines."""
    steps: list[str] = []
    for line in detail.splitlines():
        if line[:1].isdigit():
            steps.append(line)
        elif line.startswith("   - ") and steps:
            steps[-1] += "\n" + line
    return steps


DROPPED_ITEMS = re.compile(r"^- … and (\d+) more: ")


def missing_on_card(detail: str) -> int:
    """How many missing items a decision card names: its ❔ lines and those it left out for length."""
    lines = detail.splitlines()
    dropped = sum(int(m.group(1)) for line in lines if (m := DROPPED_ITEMS.match(line)))
    return sum(1 for line in lines if line.startswith("- ❔")) + dropped


def lists_every_item(detail: str) -> bool:
    """Whether a decision card shows each of its items' lines, none left out for length: with each
    item its own step and nothing to do "before going ahead", it then says all an Instructions card
    would, and the answer carries none beside it (`cards.render.says_every_step`)."""
    return not any(DROPPED_ITEMS.match(line) for line in detail.splitlines())


class ServeProcess(subprocess.Popen[str]):
    """A served process whose log (stderr) goes to a file, never to a pipe: a pipe nobody reads until
    the process stops holds 64 KiB, and once that much is logged every log call in the server blocked,
    its threads first and then its main loop, so requests went unanswered for as long as the test
    waited (review26e's burst: 26 of 210 unanswered in 30 s, "queued" 60 s; serve26; the service no
    longer waits for its log, serve27, but a test reads what it logged). `communicate` waits for the
    process and returns (None, all it logged), as with a pipe. With `log` `subprocess.PIPE`, a pipe
    nobody reads until `communicate` (the log sink that stopped reading, test_serving.py)."""

    def __init__(self, args: list[str], log: Any, **kwargs: Any) -> None:
        piped = log == subprocess.PIPE
        super().__init__(
            args, stdout=subprocess.DEVNULL, stderr=log, **({"encoding": "utf-8"} if piped else {}), **kwargs
        )
        self.log = None if piped else log

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[None, str]:
        if self.log is None:
            return super().communicate(input, timeout)  # type: ignore[return-value]
        self.wait(timeout)
        self.log.seek(0)
        return None, self.log.read()


def start_serve_process(
    config: Path, port: int, cwd: Path, *extra_args: str, env: dict[str, str] | None = None, log: Any = None
) -> ServeProcess:
    """`idds-crd serve` on `port` with `config` (and `extra_args`: --workers, --dev, ...), in a process
    of its own (its log kept in a file, text from `communicate`; `log=subprocess.PIPE`: a pipe read
    only then), once it answers `/healthz`: a second replica, or the production entry point as an
    operator runs it."""
    root = Path(service.__file__).resolve().parents[1]
    process = ServeProcess(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--port",
            str(port),
            "--config",
            str(config),
            *extra_args,
        ],
        # held as long as the process object; appended to, so the parent's reading moves no write
        tempfile.TemporaryFile("a+", encoding="utf-8") if log is None else log,  # noqa: SIM115
        cwd=cwd,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(root)},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return process
        except (requests.ConnectionError, requests.Timeout):  # gunicorn: bound before a worker is up
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                raise AssertionError(f"idds-crd serve did not start: {stderr[-2000:]}") from None
            time.sleep(0.2)


@contextmanager
def running(server: BaseServer) -> Iterator[BaseServer]:
    """`server` answering on a daemon thread until the block ends, then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def serving(app: Flask, port: int | None = None) -> Iterator[str]:
    """The app on a threaded werkzeug server on 127.0.0.1 (`port`, or a free one); yields its base URL."""
    from service.demo.fhir_server import free_port

    port = port or free_port()
    with running(make_server("127.0.0.1", port, app, threaded=True)):
        yield f"http://127.0.0.1:{port}"


Started = TypeVar("Started")


def real_server(start: Callable[[], Started], unavailable: type[Exception], name: str) -> Started:
    """A real server started for this run; the test is skipped where it cannot run, failed in CI."""
    try:
        return start()
    except unavailable as exc:
        if in_ci():
            pytest.fail(f"{name} is required in CI: {exc}")
        pytest.skip(f"{name} cannot run here: {exc}")


def uncommented_entries(text: str) -> str:
    """A YAML configuration with every commented-out list entry (`# - iss: ...` and its `#   key:`
    lines) uncommented, as an integrator enabling them does; other comments stay comments."""
    lines = []
    for line in text.splitlines():
        indent, mark, rest = line.partition("# ")
        entry = mark and not indent.strip() and (rest.startswith("- ") or rest.startswith("  "))
        lines.append(indent + rest if entry else line)
    return "\n".join(lines) + "\n"


DOCKER = Path(service.__file__).resolve().parents[1] / "docker"


def replica_mounts() -> dict[str, Path]:
    """What docker/compose.yaml mounts into each `crd` replica: path inside → the host's file or folder."""
    crd = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))["services"]["crd"]
    return {
        volume.split(":")[1]: (DOCKER / volume.split(":")[0]).resolve()
        for volume in crd["volumes"]
        if ":" in volume
    }
