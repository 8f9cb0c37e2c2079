"""What a fresh worker imports before it is ready, and that its first hook calls import nothing more.

Start-up must stay under 0.5 s (issue 12; bench/startup.py measures it), so what no hook call needs
is imported only when used (the sandbox when it is off, the OpenAPI document, the CLI, the demo,
PyYAML once the catalog comes from the cache). And a hook call must not pay for an import on its
first run, so everything the calls use is imported before `create_app` returns. Each check runs in a
fresh interpreter: the test process itself has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from service.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]

READY_WORKER = """
import gc, json, sys
from service.app import create_app
from service.settings import Settings, StoreSettings

collector = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
create_app(Settings(store=StoreSettings(url=sys.argv[1] if sys.argv[1:] else "sqlite://")))
print(json.dumps({"modules": sorted(sys.modules), "collector": collector}))
"""

FIRST_CALLS = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from service.app import create_app
from service.settings import AuthSettings, Settings, StoreSettings


class EmptyChart(BaseHTTPRequestHandler):
    searches = 0

    def do_GET(self):
        EmptyChart.searches += 1
        body = json.dumps({"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), EmptyChart)
threading.Thread(target=server.serve_forever, daemon=True).start()
fhir_server = f"http://127.0.0.1:{server.server_address[1]}/fhir"
samples = Path("service/demo/data/requests")
calls = [json.loads((samples / name).read_text()) for name in sys.argv[1:]]
queried = json.loads((samples / "order-sign-implant-demo-meets.json").read_text())
queried["prefetch"] = {key: queried["prefetch"][key] for key in ("patient", "coverage")}
queried["fhirServer"] = fhir_server
queried["fhirAuthorization"] = {
    "access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "s"
}
auth = AuthSettings(required=False, open_fhir_servers=(fhir_server,))
client = create_app(Settings(auth=auth, store=StoreSettings(url="sqlite://"))).test_client()
ready = set(sys.modules)
statuses = [client.get("/cds-services").status_code]
for body in [*calls, queried]:
    statuses.append(client.post(f"/cds-services/idds-crd-{body['hook']}", json=body).status_code)
server.shutdown()
imported = sorted(set(sys.modules) - ready)
print(json.dumps({"statuses": statuses, "searches": EmptyChart.searches, "imported": imported}))
"""

# Imported only when used: none of these is part of a hook call. SQLAlchemy serves PostgreSQL and the
# `idds-crd audit` commands' queries: the default SQLite store is written through `sqlite3`.
NOT_AT_START = (
    "service.sandbox",
    "service.openapi",
    "service.demo",
    "service.cli",
    "yaml",
    "jsonschema",
    "sqlalchemy",
    "service.store.engines",
    "service.store.tables",
)
# Used by hook calls (the FHIR client, token checks, the audit store, metrics): imported before ready.
AT_START = (
    "flask",
    "sqlite3",
    "service.store.audit",
    "requests",
    "jwt",
    "prometheus_client",
    "service.pipeline",
    "service.fhir.client",
    "service.auth.verify",
    "service.audit_entry",
    "cards.render",
)


def fresh_interpreter(script: str, *arguments: str) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_a_ready_worker_has_imported_what_hook_calls_use_and_nothing_they_do_not(
    compiled_catalog: Catalog,  # the run's catalog cache holds the shipped policies: a warm start
) -> None:
    ready = fresh_interpreter(READY_WORKER)
    modules = set(ready["modules"])
    assert [name for name in NOT_AT_START if name in modules] == []
    assert [name for name in AT_START if name not in modules] == []
    assert not any(name.startswith("service.sandbox.") for name in modules)


def test_a_worker_on_an_sqlite_file_is_ready_without_sqlalchemy(
    compiled_catalog: Catalog, tmp_path: Path
) -> None:
    """The default store, a file (bench/startup.py's): its tables checked, nothing of SQLAlchemy's
    imported (issue 12: its import and set-up were a third of the start)."""
    modules = set(fresh_interpreter(READY_WORKER, f"sqlite:///{tmp_path / 'audit.sqlite3'}")["modules"])
    assert sorted(name for name in modules if name.split(".")[0] == "sqlalchemy") == []
    assert (tmp_path / "audit.sqlite3").stat().st_size > 0


def test_importing_the_app_leaves_the_collector_on_with_what_the_imports_made_frozen(
    compiled_catalog: Catalog,
) -> None:
    collector = fresh_interpreter(READY_WORKER)["collector"]
    assert collector["enabled"] is True
    assert collector["frozen"] > 10_000


def test_the_first_hook_calls_of_a_ready_app_import_nothing() -> None:
    """Discovery, a pump order-select and a non-pump one from prefetch, and a pump order-sign that
    queries a (loopback) FHIR server: all answered, and not one module imported on the way (but the
    standard library's own `_strptime`, which the first `datetime.strptime` of the pain-score window
    loads: 1.6 ms, once)."""
    samples = ("order-select-62362-demo-meets.json", "order-select-non-pump.json")
    answer = fresh_interpreter(FIRST_CALLS, *samples)
    assert answer["statuses"] == [200, 200, 200, 200]
    assert answer["searches"] > 0
    assert [name for name in answer["imported"] if name != "_strptime"] == []


def test_the_cli_imports_neither_flask_nor_sqlalchemy_before_a_command_needs_them() -> None:
    script = "import json, sys, service.cli; print(json.dumps({'modules': sorted(sys.modules)}))"
    modules = set(fresh_interpreter(script)["modules"])
    assert {"flask", "sqlalchemy", "service.app"} & modules == set()
