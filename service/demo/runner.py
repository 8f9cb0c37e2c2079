"""`idds-crd demo`: start a local FHIR server with the demo patients, then the service, and show
how to call it (with ready-to-send request files).

The demo is a secured deployment in miniature: it makes its own ES384 key, trusts it as an EHR
(`urn:idds-crd:demo`, allowed to name the demo FHIR server), requires authentication, and signs
every call it sends; the printed curl lines sign theirs with `idds-crd token` and the key file."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from service.app import create_app
from service.auth.tokens import PrivateKey, generate_es384_key, private_pem, public_jwks, sign_call_token
from service.demo.fhir_server import LocalFhirServer
from service.demo.synthea import load_in_background, synthea_files
from service.request_log import ACCESS_LOGGER
from service.settings import AuthSettings, SandboxSettings, Settings, StoreSettings, TrustedClient

DATA = Path(__file__).resolve().parent / "data"
DEMO_TOKEN = "demo-access-token"
DEMO_ISSUER = "urn:idds-crd:demo"


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


def demo_store_url(directory: Path) -> str:
    """The demo's audit trail: an SQLite file in its working directory, gone when it stops."""
    return f"sqlite:///{directory / 'idds-crd-demo.sqlite3'}"


def demo_settings(
    base_url: str,
    fhir_base_url: str,
    key: PrivateKey,
    directory: Path,
    key_file: Path | None = None,
    policies: Path | None = None,
) -> Settings:
    """A deployment that trusts only the demo's own key, whose calls may name the demo FHIR server;
    with the key's file, the sandbox page is on and signs its calls with it. `policies`: the policy
    directory to judge by (None: the installed one)."""
    client = TrustedClient(iss=DEMO_ISSUER, jwks=public_jwks(key), fhir_servers=(fhir_base_url,))
    sandbox = SandboxSettings(
        enabled=key_file is not None,
        fhir_server=fhir_base_url,
        fhir_access_token=DEMO_TOKEN,
        issuer=DEMO_ISSUER,
        signing_key_file=str(key_file) if key_file else None,
    )
    return Settings(
        public_base_url=base_url,
        auth=AuthSettings(required=True, trusted_clients=(client,)),
        store=StoreSettings(url=demo_store_url(directory)),
        sandbox=sandbox,
        policies=policies,
    )


def audit_command(directory: Path) -> str:
    """The `idds-crd audit show` line that reads the demo's audit trail while the demo runs (a config
    naming its store, written beside it)."""
    config = directory / "audit-config.yaml"
    config.write_text(f"store:\n  url: {json.dumps(demo_store_url(directory))}\n", encoding="utf-8")
    command = shlex.quote(str(Path(sys.executable).parent / "idds-crd"))
    return f"{command} audit show KEY --config {shlex.quote(str(config))}"


def write_private_key(key: PrivateKey, path: Path) -> None:
    """The demo key, readable by its owner only (created so, never widened afterwards)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_pem(key))


def curl_line(url: str, request_file: Path, key_file: Path) -> str:
    """A curl command that runs as printed: `idds-crd token` named by its path beside this Python
    (make demo installs into ./.venv, which the user's shell need not have on its PATH)."""
    command = shlex.quote(str(Path(sys.executable).parent / "idds-crd"))
    token = f"$({command} token --key {shlex.quote(str(key_file))} --iss {DEMO_ISSUER} --aud {url})"
    return (
        f"curl -s -X POST -H 'Content-Type: application/json' -H \"Authorization: Bearer {token}\" "
        f"--data @{shlex.quote(str(request_file))} {url}"
    )


def run_demo(host: str, port: int, once: bool = False, policies: Path | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)  # one line per call would bury the cards
    started = time.monotonic()
    print("FHIR server: starting sekmet-fhir on loopback (simulator off) ...", flush=True)
    with (
        LocalFhirServer(bearer_token=DEMO_TOKEN) as fhir,
        tempfile.TemporaryDirectory(prefix="idds-crd-demo-requests-") as request_dir,
    ):
        patients = patient_files()
        for path in patients:
            fhir.load_file(path)
        print(f"patients: {len(patients)} demo patients loaded into {fhir.base_url}", flush=True)
        base = f"http://{host}:{port}"
        outdir = Path(request_dir)
        key = generate_es384_key()
        key_file = outdir / "demo-ehr-key.pem"
        write_private_key(key, key_file)
        app = create_app(demo_settings(base, fhir.base_url, key, outdir, key_file, policies))
        server = make_server(host, port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        print(f"service: ready on {base} after {time.monotonic() - started:.1f} s\n", flush=True)
        if not once:
            print(
                f"Calls need a JWT from a trusted EHR; the demo's EHR is {DEMO_ISSUER}, its key {key_file}."
            )
        print("Sample calls (each request file already points at the demo FHIR server):")
        for path in request_files():
            body = with_fhir_server(json.loads(path.read_text(encoding="utf-8")), fhir.base_url, DEMO_TOKEN)
            target = outdir / path.name
            target.write_text(json.dumps(body, indent=2), encoding="utf-8")
            url = f"{base}/cds-services/{_service_for(body['hook'])}"
            token = sign_call_token(key, DEMO_ISSUER, url)
            answer = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            response = answer.json()
            print(f"\n  {path.stem}:")
            if answer.status_code != 200:
                print(f"    HTTP {answer.status_code}")
            for line in _summaries(response):
                print(f"    {line}")
            if not response.get("cards"):
                print("    (no cards: not an intrathecal pump order)")
            if not once:  # with --once the service, the key and the files are gone once it returns
                print(f"    {curl_line(url, target, key_file)}")
        if not once:
            print(f"\nDiscovery: curl -s {base}/cds-services")
            print(f"Sandbox: open {base}/sandbox in a browser to fire hooks at the demo patients")
            print(f"Audit trail: {audit_command(outdir)}  (KEY: a hookInstance, card uuid or assertion id)")
        try:
            if not once:
                if synthea := synthea_files():
                    print(f"Synthea: loading {len(synthea)} patients into {fhir.base_url} in the background")
                    load_in_background(fhir, synthea)
                print("\nPress Ctrl-C to stop the service and the FHIR server.", flush=True)
                threading.Event().wait()
        except KeyboardInterrupt:
            print("\nStopping ...")
        finally:
            server.shutdown()
    return 0
