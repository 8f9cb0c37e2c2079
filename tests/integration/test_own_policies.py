"""`idds-crd serve` with the `policies` setting: the master compiles the operator's folder once and
every worker answers from it; a broken file there stops start-up in one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from service.demo.fhir_server import free_port
from tests.catalog_support import copy_policies, edit_yaml
from tests.serving_support import serve, stop


def test_every_worker_serves_the_configured_folder(tmp_path: Path) -> None:
    own = copy_policies(tmp_path / "own")
    edit_yaml(own / "geha.yaml", lambda raw: raw.update(title="The operator's own title"))
    served = serve(tmp_path, "--workers", "2", settings=f"policies: {own}\n")
    try:
        for _ in range(6):  # several connections: both workers answer
            page = requests.get(f"{served.url}/policies/geha-idds-chronic-pain", timeout=10)
            assert page.status_code == 200 and "The operator&#39;s own title" in page.text
    finally:
        stop(served)


def test_a_broken_file_in_the_folder_stops_serve_naming_it(tmp_path: Path) -> None:
    own = copy_policies(tmp_path / "own")
    edit_yaml(own / "geha.yaml", lambda raw: raw["criteria"][0]["test"].update(valuesets=["gone"]))
    config = tmp_path / "config.yaml"
    config.write_text(f"auth:\n  required: false\nstore:\n  url: sqlite://\npolicies: {own}\n")
    root = Path(__file__).resolve().parents[2]
    finished = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port()), "--config", str(config)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "IDDS_CRD_CATALOG_CACHE": "off"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert (
        finished.stderr.startswith("idds-crd: geha.yaml:") and "unknown value set 'gone'" in finished.stderr
    )
    assert "Traceback" not in finished.stderr
