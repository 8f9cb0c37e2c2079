"""A database that answers but refuses the service's writes, told to the operator and to `/readyz`.

A failover that left `store.url` on a read-only standby, a revoked INSERT grant, a full disk: the
server answers (`SELECT 1` works) while every hook call, which must be recorded before it is answered
(and whose JWT must be claimed in the replay store), is refused 503. Two things make that visible:

- `/readyz` asks what a write needs (service/store/database.py `Database.write_problem`: on
  PostgreSQL, one query for recovery, `transaction_read_only` and the role's privileges on the
  tables the service writes; on an SQLite file, whether this process may write it), so a load
  balancer stops sending calls while the cause lasts; and it stays not ready for `HOLD_SECONDS`
  after any write the server refused (a cause the check cannot see, such as a full disk), unless
  a write succeeds meanwhile.
- The reason is logged once per outage, in the driver's words (SQLSTATE, the message's first line)
  with the URL's password masked, and again when writes are taken. An error about a value written
  (SQLSTATE classes 22 and 23: its message may quote the value, which may be a patient's data) is not
  a refusal of the database, and is never quoted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import quote_plus

log = logging.getLogger(__name__)
HOLD_SECONDS = 30.0  # not ready for this long after a refused write (unless one succeeds)
MAX_REASON_CHARACTERS = 300  # of the driver's words in a log line
# SQLSTATEs of a server refusing writes it would otherwise take: a read-only transaction (a standby,
# default_transaction_read_only), a missing privilege, a table or column gone, insufficient
# resources (a full disk, too many connections).
REFUSING_SQLSTATES = ("25006", "42501", "42P01", "42703", "53")
# SQLite's names for a file it cannot write: read-only, full, cannot be opened, an I/O error.
REFUSING_SQLITE = ("SQLITE_READONLY", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")


def driver_words(failure: BaseException, password: str | None) -> str:
    """The first line of what the driver said about `failure` (SQLAlchemy's wrapper unwrapped), with
    `password` masked as written or URL-quoted, cut to MAX_REASON_CHARACTERS."""
    words = str(getattr(failure, "orig", None) or failure).strip().splitlines()
    said = words[0].strip() if words else ""
    for written in {password, quote_plus(password)} if password else ():
        said = said.replace(written, "***")
    return said[:MAX_REASON_CHARACTERS]


def refusal_reason(failure: BaseException, password: str | None) -> str | None:
    """Why the database refused a write, for the log: the driver's error class, SQLSTATE (or SQLite
    error name) and words; None when `failure` is not the database refusing writes (no answer, a
    replay's duplicate key, a value it cannot hold...)."""
    driver = getattr(failure, "orig", None)
    sqlstate = getattr(driver, "sqlstate", None)
    sqlite_name = getattr(driver, "sqlite_errorname", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(REFUSING_SQLSTATES):
        code = f"SQLSTATE {sqlstate}"
    elif isinstance(sqlite_name, str) and sqlite_name.startswith(REFUSING_SQLITE):
        code = sqlite_name
    else:
        return None
    return f"{type(driver).__name__} ({code}): {driver_words(failure, password)}"


class WriteRefusals:
    """Whether the database is refusing the service's writes: noted by the writes themselves
    (`refused`, `written`) and by the readiness check (`checked`); the reason logged once per outage."""

    def __init__(
        self, hold_seconds: float = HOLD_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold_seconds = hold_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._reported: str | None = None  # the reason logged for the outage going on
        self._refused_at: float | None = None  # when a write was last refused

    def refused(self, reason: str) -> None:
        """A write was refused for `reason` (from `refusal_reason`)."""
        with self._lock:
            self._refused_at = self._clock()
        self._report(reason)

    def written(self) -> None:
        """A write was taken: the database takes writes again."""
        with self._lock:
            self._refused_at = None
        self._settled()

    def checked(self, problem: str | None) -> None:
        """What the readiness check found (None: nothing that stops a write)."""
        if problem is not None:
            self._report(problem)
        elif self.recent() is None:
            self._settled()

    def recent(self) -> str | None:
        """The reason logged, while a write was refused less than `hold_seconds` ago."""
        with self._lock:
            held = self._refused_at is not None and self._clock() - self._refused_at < self.hold_seconds
            return (self._reported or "a write was refused") if held else None

    def _report(self, reason: str) -> None:
        with self._lock:
            first = self._reported is None
            self._reported = reason if first else self._reported
        if first:
            log.error(
                "database: it answers but refuses the service's writes: %s; hook calls are answered 503 "
                "(they cannot be recorded) and /readyz 503 until it takes them",
                reason,
            )

    def _settled(self) -> None:
        with self._lock:
            was, self._reported = self._reported, None
        if was is not None:
            log.info("database: it takes the service's writes again")
