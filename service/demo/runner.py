"""`idds-crd demo`: start a local FHIR server with the demo patients, then the service, and show
how to call it (with ready-to-send request files)."""

from __future__ import annotations

import json
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from service.app import create_app
from service.demo.fhir_server import LocalFhirServer
from service.settings import AuthSettings, Settings

DATA = Path(__file__).resolve().parent / "data"
DEMO_TOKEN = "demo-access-token"


def patient_files() -> list[Path]:
    return sorted((DATA / "patients").glob("*.json"))


def request_files() -> list[Path]:
    return sorted((DATA / "requests").glob("*.json"))


def with_fhir_server(body: dict[str, Any], base_url: str, token: str | None) -> dict[str, Any]:
    """A copy of a sample request pointing at `base_url` (with a bearer token when given)."""
    filled = dict(body, fhirServer=base_url)
    if token:
        filled["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "idds-crd",
            "patient": body["context"]["patientId"],
        }
    return filled


def _service_for(hook: str) -> str:
    return f"idds-crd-{hook}"


def _summaries(response: dict[str, Any]) -> Iterator[str]:
    for card in response.get("cards", []):
        yield f"[{card['indicator']}] {card['summary']}"


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(host: str, port: int, once: bool = False) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print("Starting a local FHIR server (sekmet-fhir, simulator off) ...", flush=True)
    with (
        LocalFhirServer(bearer_token=DEMO_TOKEN) as fhir,
        tempfile.TemporaryDirectory(prefix="idds-crd-demo-requests-") as request_dir,
    ):
        for path in patient_files():
            fhir.load_file(path)
            print(f"  loaded {path.stem}")
        settings = Settings(
            public_base_url=f"http://{host}:{port}",
            auth=AuthSettings(required=False, open_fhir_servers=(fhir.base_url,)),
        )
        app = create_app(settings)
        server = make_server(host, port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://{host}:{port}"
        outdir = Path(request_dir)
        print(f"\nidds-crd is serving on {base} (FHIR server {fhir.base_url})\n")
        print("Sample calls (each request file already points at the demo FHIR server):")
        for path in request_files():
            body = with_fhir_server(json.loads(path.read_text(encoding="utf-8")), fhir.base_url, DEMO_TOKEN)
            target = outdir / path.name
            target.write_text(json.dumps(body, indent=2), encoding="utf-8")
            url = f"{base}/cds-services/{_service_for(body['hook'])}"
            response = requests.post(url, json=body, timeout=30).json()
            print(f"\n  {path.stem}:")
            for line in _summaries(response):
                print(f"    {line}")
            if not response.get("cards"):
                print("    (no cards: not an intrathecal pump order)")
            print(f"    curl -s -X POST -H 'Content-Type: application/json' --data @{target} {url}")
        print(f"\nDiscovery: curl -s {base}/cds-services")
        try:
            if not once:
                print("\nPress Ctrl-C to stop the service and the FHIR server.", flush=True)
                threading.Event().wait()
        except KeyboardInterrupt:
            print("\nStopping ...")
        finally:
            server.shutdown()
    return 0
