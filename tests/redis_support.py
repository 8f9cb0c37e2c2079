"""Debian's redis-server as a real server for the tests: a throwaway instance in a temporary
directory, listening on 127.0.0.1 on a free port, with no persistence (no RDB, no AOF), stopped
and removed afterwards. A test may stop it mid-run (`stop`) to see the service degrade.

`make test` installs the `redis-server` package when it is missing (.ci/debian-packages); where the
binary is absent or the server cannot start, the fixtures skip, except when `CI=true`, where they fail.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from service.demo.fhir_server import free_port

STARTUP_SECONDS = 20.0


class RedisUnavailable(RuntimeError):
    """redis-server is missing or would not start; the message says which."""


class RedisServer:
    """`server = RedisServer.launch()`; `server.url`; `server.close()` at the end."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).is_file():
            raise RedisUnavailable("no redis-server on PATH (apt-get install redis-server)")
        self._binary = binary
        self._dir = Path(tempfile.mkdtemp(prefix="idds-crd-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        log = (self._dir / "server.log").open("wb")
        self._process = subprocess.Popen(
            [
                self._binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self._dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self._dir / "server.log").read_text(errors="replace")[-800:]
                raise RedisUnavailable(f"redis-server exited at start-up: {tail}")
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer within {STARTUP_SECONDS:.0f} s")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def flush(self) -> None:
        self.client().flushall()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The server stalled (SIGSTOP: as by a fork for a save, a slow disk, a busy host), its
        connections open and unanswered, and going on again (SIGCONT) afterwards."""
        assert self._process is not None and self.running
        self._process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (its data is gone: nothing is persisted)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port, empty."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    @classmethod
    def launch(cls) -> RedisServer:
        """A started server (its directory removed again if it would not start)."""
        server = cls()
        try:
            return server.start()
        except RedisUnavailable:
            server.close()
            raise
