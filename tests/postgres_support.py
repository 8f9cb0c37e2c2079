"""Debian's PostgreSQL as a real server for the tests: a throwaway cluster in a temporary directory,
listening on 127.0.0.1 on a free port (its unix socket in the same directory), stopped and removed
afterwards. As root the server runs as the `postgres` user (`runuser`), as PostgreSQL requires.

`make test` installs the `postgresql` package when it is missing (.ci/debian-packages); where the
binaries are absent or the server cannot start, the fixtures skip, except when `CI=true`, where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import psycopg

from service.demo.fhir_server import free_port

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing or the server would not start; the message says which."""


def postgres_binaries() -> Path | None:
    """The newest installed `/usr/lib/postgresql/<version>/bin` holding initdb, pg_ctl and postgres."""
    found = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if all((Path(d) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


class PostgresServer:
    """`with PostgresServer() as server: url = server.new_database()`."""

    def __init__(self) -> None:
        binaries = postgres_binaries()
        if binaries is None:
            raise PostgresUnavailable("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
        self._bin = binaries
        self._dir = Path(tempfile.mkdtemp(prefix="idds-crd-pg-"))
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self._dir, SUPERUSER, SUPERUSER)

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as_postgres, *command], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {result.stderr.strip()[-800:]}")

    def start(self) -> PostgresServer:
        data = self._dir / "data"
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._dir} -c max_connections=200"
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self._dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); the files stay until `remove`."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def new_database(self, encoding: str | None = None) -> str:
        """A fresh, empty database (in `encoding`, under the C locale, when given); its SQLAlchemy URL."""
        name = f"idds_{uuid.uuid4().hex[:12]}"
        made_in = f" ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" if encoding else ""
        with self.admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"{made_in}')
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except Exception:
            self.remove()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self.stop()
        except PostgresUnavailable:
            pass  # already stopped (a test took it down)
        finally:
            self.remove()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
