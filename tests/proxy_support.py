"""Debian's nginx running the compose file's own proxy configuration (docker/compose/nginx.conf) on
loopback, for the deployment rehearsal: only what Docker would supply is put in by hand (the
upstream replicas' addresses for the `crd` service's DNS name, the port for 443, the certificate's
directory for the `tls` volume); everything else is the shipped file as it is.

`make test` installs the `nginx-light` package when it is missing (.ci/debian-packages); where nginx is
absent the fixture skips, except when `CI=true`, where it fails. nginx refusing the configuration always
fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from service.demo.fhir_server import free_port

COMPOSE_PROXY = Path(__file__).resolve().parents[1] / "docker" / "compose" / "nginx.conf"
STARTUP_SECONDS = 20.0


class NginxUnavailable(RuntimeError):
    """nginx is not installed here."""


class NginxFailed(RuntimeError):
    """nginx is installed but did not start on the configuration: its error log says why. Never a
    reason to skip: a broken docker/compose/nginx.conf must fail the tests."""


def compose_site(upstreams: list[int], port: int, tls_dir: Path) -> str:
    """docker/compose/nginx.conf with the replicas at `upstreams` (loopback ports), listening on
    `port` and reading the certificate from `tls_dir`; ValueError if the file no longer has the
    lines put in by hand."""
    site = COMPOSE_PROXY.read_text(encoding="utf-8")
    replaced = {
        "    server crd:8080;\n": "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams),
        "    listen 443 ssl;\n": f"    listen 127.0.0.1:{port} ssl;\n",
        " /tls/": f" {tls_dir}/",
    }
    for old, new in replaced.items():
        if old not in site:
            raise ValueError(f"docker/compose/nginx.conf no longer has {old.strip()!r}")
        site = site.replace(old, new)
    return site


@dataclass
class Nginx:
    """`Nginx.launch(upstreams, tls_dir, workdir)`: the compose proxy on https://localhost:`port`, its
    files and log in `workdir`."""

    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @classmethod
    def launch(cls, upstreams: list[int], tls_dir: Path, workdir: Path, port: int | None = None) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).is_file():
            raise NginxUnavailable("no nginx on PATH (apt-get install nginx-light)")
        port = port or free_port()
        (workdir / "site.conf").write_text(compose_site(upstreams, port, tls_dir), encoding="utf-8")
        temp = "".join(f"    {kind}_temp_path {workdir}/{kind};\n" for kind in _TEMP_PATHS)
        # As root, nginx would run its workers as another user, who cannot write to `workdir`.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
            f"events {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n{temp}"
            f"    include {workdir}/site.conf;\n}}\n",
            encoding="utf-8",
        )
        command = [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", "nginx.conf"]
        process = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started = cls(port, process, workdir)
        started._wait_until_up()
        return started

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NginxFailed(f"nginx exited: {self.error_log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise NginxFailed(f"nginx did not answer within {STARTUP_SECONDS:.0f} s")

    def error_log(self) -> str:
        log = self.workdir / "error.log"
        return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
