"""`idds-crd serve` in production: gunicorn, run in-process through its `BaseApplication`.

Why these choices (docs/serving.md says the same to operators):

- **gthread workers**: one process per core (`--workers`, default `os.cpu_count()`), each with a
  few threads (`--threads`, default 4). A hook call waits on the FHIR server most of its time, so
  threads overlap that waiting; processes use every core for the pure-Python evaluation.
- **Keep-alive** (`KEEPALIVE_SECONDS`): an EHR's next call reuses its connection. Idle kept-alive
  connections wait in the worker's poller, not in a thread. Every `REQUESTS_PER_CONNECTION`th answer
  on a connection closes it (`ConnectionRecycling`), so connections that piled onto one worker do
  not stay there.
- **Policies compiled and the service's modules imported once, in the master, before forking**,
  with the garbage collector paused and what they made frozen (`service.startup_gc`), so a worker's
  collections neither walk nor copy it; the app itself is built in each worker after the fork
  (`preload_app` off), which takes `create_app`'s time only (bench/startup.py). The compiled catalog
  is immutable data and survives a fork; the app's database engine (pooled connections), its FHIR
  thread pool and its metrics must not be shared across a fork, so each worker opens its own before
  its first request. A broken policy or an unreachable database stops `serve` before any worker
  starts; a worker that gunicorn restarts gets the catalog without compiling it again.
- **Slow clients hold no thread** (`service.whole_requests`): gunicorn's gthread worker, changed to
  read each request whole in its main loop, without blocking, before a thread takes it. A request
  must arrive within `--read-timeout` seconds of its first byte (408 otherwise) and a connection
  that sends nothing is closed after `KEEPALIVE_SECONDS`; a thread parses only the bytes received,
  and what a client slow to read has not taken of its answer is sent by the loop (the client cut
  off if it takes none of it for the read timeout). What requests not yet answered hold is bounded
  per worker (`BUFFER_BUDGET_BYTES`). `limit_request_line`, `limit_request_fields` and
  `limit_request_field_size` bound the headers, `max_request_bytes` the body; `timeout` restarts a
  worker whose main loop hangs and does not bound one request.
- **Metrics**: every worker writes its values under `PROMETHEUS_MULTIPROC_DIR` (a fresh temporary
  directory unless given, which is then emptied of old values at start-up); `/metrics` answered
  by any worker sums them all. A worker's files stay when it exits (its counts must not vanish
  from the totals); its live gauges are marked dead, and the temporary directory goes when
  `serve` stops.
- **Logs**: gunicorn's own lines go through the service's log configuration (JSON lines by
  default); gunicorn's access log stays off, the service's request log has one line per request.
  A stderr nobody reads holds no request: each process writes its log from a thread of its own
  (`service.log_buffer`).
- **Heartbeat in memory**: each worker touches its heartbeat file on every turn of its loop; on a
  disk-backed temporary directory that can wait behind the journal (the audit trail's SQLite file
  syncs to the same disk on every call), so the file goes in `/dev/shm` where it exists, as
  gunicorn's own documentation advises.
- **Stopped while a worker boots**: the master forks with the workers' signals blocked and a worker
  unblocks them once its handlers are in place (`service.fork_signals`), so a SIGTERM sent then is
  not lost and `serve` stops at once rather than after the graceful timeout.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from service.fork_signals import SignalSafeArbiter
from service.settings import Settings
from service.startup_gc import collection_paused, settle
from service.whole_requests import BUFFER_BUDGET_BYTES, CLIENT_READ_SECONDS, whole_request_worker

if TYPE_CHECKING:
    from flask import Flask

    from service.catalog import Catalog

# Not imported from service.observability: importing prometheus_client before this variable is set
# would fix it in single-process mode.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_THREADS = 4
KEEPALIVE_SECONDS = 5
TIMEOUT_SECONDS = 30
GRACEFUL_TIMEOUT_SECONDS = 10
LIMIT_REQUEST_LINE = 4094  # gunicorn's default: the service's URLs are short
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190  # a CDS Hooks JWT in Authorization fits well within
REQUESTS_PER_CONNECTION = 100  # then a kept-alive connection is closed (ConnectionRecycling)
MAX_TRACKED_CONNECTIONS = 10_000
HEARTBEAT_DIR = "/dev/shm"  # memory-backed: a worker's heartbeat never waits on the disk's journal


def default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ServeOptions:
    """How `idds-crd serve` runs gunicorn."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=default_workers)
    threads: int = DEFAULT_THREADS
    read_timeout: float = CLIENT_READ_SECONDS
    max_body_bytes: int = Settings.max_request_bytes

    def gunicorn_config(self) -> dict[str, Any]:
        return {
            "bind": f"{self.host}:{self.port}",
            "workers": self.workers,
            "worker_class": whole_request_worker(self.read_timeout, self.max_body_bytes, BUFFER_BUDGET_BYTES),
            "threads": self.threads,
            "keepalive": KEEPALIVE_SECONDS,
            "timeout": TIMEOUT_SECONDS,
            "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
            "preload_app": False,
            "worker_tmp_dir": HEARTBEAT_DIR if os.path.isdir(HEARTBEAT_DIR) else None,
            "accesslog": None,
            "logger_class": ServiceLogger,
            "proc_name": "idds-crd",
            "control_socket_disable": True,  # one shared path per user: replicas on one host would clash
            "pre_request": ConnectionRecycling(REQUESTS_PER_CONNECTION),
            # gunicorn reads X-Forwarded-Proto from loopback (and FORWARDED_ALLOW_IPS) by default; the
            # service reads it, and X-Forwarded-Host, from its `trusted_proxies` only (service.host_header)
            "forwarded_allow_ips": "",
        }


class ConnectionRecycling:
    """gunicorn's `pre_request` hook: a kept-alive connection is answered `Connection: close` after
    `limit` requests, and its client reconnects.

    The workers share one listening socket and a connection stays with the worker that accepted it,
    so an EHR's few persistent connections can all land on one worker while another core idles
    (4 connections across 2 workers: 4:0 or 3:1 in 4 of 5 starts). A reconnecting client is taken by
    whichever worker accepts first, not by load, so a bad placement lasts at most `limit` calls per
    connection rather than for good (bench/NOTES.md); one new connection per `limit` calls costs next
    to nothing (nginx's `keepalive_requests` does the same).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._served: dict[Any, int] = {}  # requests so far, by the client's address (ip, port)
        self._lock = threading.Lock()

    def __call__(self, _worker: Any, request: Any) -> None:
        with self._lock:
            served = self._served.pop(request.peer_addr, 0) + 1
            if served >= self.limit:
                request.must_close = True
                return
            if len(self._served) >= MAX_TRACKED_CONNECTIONS:  # closed connections are never told
                self._served.clear()
            self._served[request.peer_addr] = served


class ServiceLogger(Logger):
    """gunicorn's error log through the service's handlers (JSON lines, as configured). A client that
    let a read or write on its socket time out is one line, not a stack trace."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers.clear()
        self.error_log.propagate = True

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        failure = sys.exc_info()[1]
        if isinstance(failure, TimeoutError) and failure.args == ("timed out",):  # a socket's timeout
            self.info("a client's connection was closed: it sent or read nothing within the read timeout")
            return
        super().exception(msg, *args, **kwargs)


def prepare_multiprocess_metrics() -> tuple[str, bool]:
    """The metrics directory every worker writes to, and whether `serve` made it (and removes it).

    Must run before prometheus_client is first imported: it chooses file-backed values then."""
    given = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        directory, made = given, False
    else:
        directory, made = tempfile.mkdtemp(prefix="idds-crd-metrics-"), True
        os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
    if "prometheus_client" in sys.modules:  # imported before the variable was set (an embedding program)
        from prometheus_client import values

        values.ValueClass = values.get_value_class()
    return directory, made


class ServiceApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn serving `create_app(settings, catalog)`, the app built anew in each worker."""

    def __init__(self, settings: Settings, catalog: Catalog, options: ServeOptions, metrics_dir: str) -> None:
        self.settings = settings
        self.catalog = catalog
        self.options = options
        self.metrics_dir = metrics_dir
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.gunicorn_config().items():
            self.cfg.set(key, value)
        self.cfg.set("child_exit", _worker_exited)

    def run(self) -> None:
        try:
            SignalSafeArbiter(self).run()
        except RuntimeError as failure:  # gunicorn's own start-up refusals, printed as `BaseApplication` does
            print(f"\nError: {failure}\n", file=sys.stderr)
            sys.exit(1)

    def load(self) -> Flask:
        from service.app import create_app

        app = create_app(self.settings, self.catalog, request_threads=self.options.threads)
        settle()
        return app


def _worker_exited(_arbiter: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def serve(settings: Settings, options: ServeOptions) -> None:
    """Compile the policies, check the database opens, then run gunicorn until it is stopped."""
    metrics_dir, made = prepare_multiprocess_metrics()
    master = os.getpid()
    try:
        with collection_paused(freeze=True):  # frozen before the fork: shared, never walked again
            import service.app  # noqa: F401  (imported once here, so a forked worker only builds the app)
            from service.catalog import configured_catalog
            from service.store.database import open_database, tables_checked_for_children

            # once: every worker inherits it
            catalog = configured_catalog(settings)
            database = open_database(settings.store.url)  # creates the tables once, before workers race to
            tables_checked_for_children(settings.store.url, database)  # which they then need not check
            database.close()
        ServiceApplication(settings, catalog, options, metrics_dir).run()
    finally:
        if made and os.getpid() == master:  # a worker leaves through here too, on its way out
            shutil.rmtree(metrics_dir, ignore_errors=True)
