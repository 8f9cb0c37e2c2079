"""A real local FHIR R4 server (sekmet-fhir) on loopback, for the demo and the integration tests.

Started as a child process with its simulator off and its data in a temporary folder; stopped
(with its whole process group) when the context exits. Nothing here is used by the service
itself.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

STARTUP_SECONDS = 60.0


def _die_with_parent() -> None:
    """Linux: have the kernel stop the FHIR server if the process that started it dies."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installed() -> bool:
    """Whether the local FHIR server (the `demo` extra: sekmet-fhir) is installed."""
    return importlib.util.find_spec("sekmet") is not None


class LocalFhirServer:
    """`with LocalFhirServer() as fhir: fhir.load(bundle)`; `fhir.base_url` is the FHIR base."""

    def __init__(self, port: int | None = None, bearer_token: str | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self.bearer_token = bearer_token
        self._workdir = tempfile.TemporaryDirectory(prefix="idds-crd-fhir-")
        self._process: subprocess.Popen[bytes] | None = None

    def _settings(self) -> str:
        lines = [
            f"base_url: {self.base_url}",
            "host: 127.0.0.1",
            f"port: {self.port}",
            f"data_dir: {self._workdir.name}/data",
            "simulator:",
            "  enabled: false",
            "log_inbound: false",
            "validation:",
            "  inbound: warn",
        ]
        if self.bearer_token:
            lines += ["server_auth:", "  types: [bearer]", f"  tokens: [{json.dumps(self.bearer_token)}]"]
        path = Path(self._workdir.name) / "settings.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        return headers

    def start(self) -> LocalFhirServer:
        config = self._settings()
        log_path = Path(self._workdir.name) / "server.log"
        self._log = log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sekmet.cli", "serve", "--config", config],
            cwd=self._workdir.name,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env={**os.environ, "SEKMET_CONFIG": config},
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the FHIR server exited at start-up: {log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.base_url}/metadata", timeout=2, headers=self._headers()).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the FHIR server did not answer within {STARTUP_SECONDS:.0f} s")

    def load(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; raises unless every entry succeeded."""
        response = requests.post(self.base_url, json=bundle, headers=self._headers(), timeout=120)
        response.raise_for_status()
        result = response.json()
        failed = [
            e.get("response", {}).get("status")
            for e in result.get("entry", [])
            if not str(e.get("response", {}).get("status", "")).startswith(("200", "201"))
        ]
        if failed:
            raise RuntimeError(f"the FHIR server rejected {len(failed)} entries: {failed[:3]}")
        return result

    def load_file(self, path: Path) -> dict[str, Any]:
        return self.load(json.loads(path.read_text(encoding="utf-8")))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process = None
        if hasattr(self, "_log"):
            self._log.close()
        self._workdir.cleanup()

    def __enter__(self) -> LocalFhirServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
