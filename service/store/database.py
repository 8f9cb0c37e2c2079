"""Opening the service's database from a SQLAlchemy URL, with the tables every module declares.

One `MetaData` holds every table (the audit trail's, the replay store's); `open_database` creates
them if missing, one process at a time. SQLite gets WAL journaling so several worker processes can
share one file, and their write transactions take turns on a lock file beside it
(service/store/writer_turns.py).
`sqlite://` (in memory) is one connection shared by the threads of one process, for tests and
throwaway runs. PostgreSQL (`postgresql+psycopg://…`) is for several replicas. JSON columns take a
`JsonText` (a value its writer already wrote as JSON, as the audit trail does to scan it for
secrets) as it is, instead of writing it again, and are read back with their numbers as stored.

A process forked from one that checked the tables and said its children may trust that
(`tables_checked_for_children`: `idds-crd serve`'s master, before it forks its workers) does not check
them again: it only connects (a parent's connections are never used in a child). For an SQLite file
the file must still be the one the parent checked (its device and inode); the child of a parent that
checked a database server trusts the parent's check, as its running siblings do. Any other process
(the CLI, tests, a program forking its own children) checks the tables whenever it opens a database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from service.cutoff import Cutoff, current_watch
from service.settings import StoreSettings
from service.store.errors import SchemaOutOfDate, StoreError, kind_of, translated
from service.store.indexes import warn_missing
from service.store.outage import DatabaseTimedOut, Outage
from service.store.sqlite_schema import JsonText as JsonText  # where the audit trail has imported it from
from service.store.sqlite_schema import json_text
from service.store.write_refusals import WriteRefusals, driver_words, refusal_reason
from service.store.writer_turns import WriterTurns
from service.strict_json import loads_exact

log = logging.getLogger(__name__)
metadata = MetaData()
SQLITE_BUSY_TIMEOUT_MS = 10_000
DEFAULT_TIMEOUT_SECONDS = StoreSettings.timeout_seconds  # each use of a database server
CONNECT_TIMEOUT_SECONDS = 2  # libpq's connect_timeout, whole seconds (2 is its least)
WATCHED = "idds_crd_watched"  # a pooled connection's record: (the use's Watch, its watched duplicate)
SCHEMA_LOCK_KEY = 0x1DD5C4D  # PostgreSQL's advisory lock held while the tables are created
SCHEMA_LOCK_WAIT = "30s"  # then a replica gives up waiting for another that is creating them
# url → (the process that created and checked its tables and lets its children trust that, the SQLite
# file's device and inode then): see `tables_checked_for_children`
_TABLES_CHECKED: dict[str, tuple[int, tuple[int, int] | None]] = {}


def _json_column_value(text: str) -> Any:
    """A JSON column's value with its numbers as stored (`2.50`, `-0`: `loads_exact`); NaN or
    Infinity, which the audit trail writes as text, read as `json` would."""
    return loads_exact(text, non_finite=True)


class DatabaseError(RuntimeError):
    """The configured database cannot be opened; the message names the URL without its password."""


@dataclass(frozen=True)
class Database:
    """The engine; whether its one shared in-memory connection must be used by one thread at a time
    (SQLite's connection object is not safe for concurrent use); the turns writers take on a file;
    for a database server, the `cutoff` that ends each use of it after `timeout` seconds and the
    `outage` that leaves it alone for a moment after it failed to answer."""

    engine: Engine
    serialised: bool = False
    writers: WriterTurns | None = None
    cutoff: Cutoff | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    outage: Outage | None = None
    refusals: WriteRefusals = field(default_factory=WriteRefusals, compare=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    def _turn(self) -> Any:
        return self._lock if self.serialised else nullcontext()

    def _bounded(self) -> Any:
        """A server's connections used inside the block are cut after `timeout` seconds (see
        `_watched_checkout`): the use then fails as a lost connection would. Without a `cutoff` (an
        SQLite file, or a maintenance command's unbounded use) nothing is cut."""
        return self.cutoff.until(time.monotonic() + self.timeout) if self.cutoff else nullcontext()

    def _rested(self) -> Any:
        """A use of a database server, refused at once while it is left alone (outage.py)."""
        return self.outage.use() if self.outage else nullcontext()

    def refusing(self) -> bool:
        """Whether a use starting now would fail at once, the server being left alone (outage.py)."""
        return self.outage is not None and self.outage.refusing()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends without an error."""
        writing = self.writers.turn() if self.writers else nullcontext()
        with (
            self._rested(),
            self._bounded(),
            self._turn(),
            writing,
            translated(SQLAlchemyError),
            self.engine.begin() as connection,
        ):
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with (
            self._rested(),
            self._bounded(),
            self._turn(),
            translated(SQLAlchemyError),
            self.engine.connect() as connection,
        ):
            yield connection

    def refusal(self, failure: BaseException) -> str | None:
        """Why the database refused a write that failed with `failure`, in words fit for the log
        (write_refusals.py); None when it is not the database refusing writes."""
        password = self.engine.url.password
        return refusal_reason(failure, None if password is None else str(password))

    def write_problem(self, tokens: bool = True) -> str | None:
        """What stops the service's writes that can be seen without writing, checked with one use
        (a StoreError when the database does not answer: service/store/errors.py); None when nothing
        does. `tokens`: whether calls' JWTs are claimed (AuthSettings.claims_tokens: calls are
        authenticated and some trusted client is not `token_reuse`), else the replay store is never
        written."""
        if self.engine.dialect.name == "postgresql":
            with self.connect() as connection:
                return _postgresql_write_problem(connection, WRITES if tokens else CALL_WRITES)
        with self.connect() as connection:
            connection.execute(text("SELECT 1"))
        file = _sqlite_file(self.engine)
        if file is not None and not (os.access(file, os.W_OK) and os.access(os.path.dirname(file), os.W_OK)):
            return f"this process may not write the SQLite file {file} or its folder (store.url)"
        return None

    def close(self) -> None:
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()


# What a hook call writes (its audit record; and its JWT's claim, where calls are authenticated): the
# privileges the role needs. Not `audit_feedback`: feedback that cannot be kept is refused 503 itself,
# and is no reason to send a replica no hook calls.
CALL_WRITES = (
    ("audit_records", "INSERT"),
    ("audit_assertions", "INSERT"),
    ("audit_cards", "INSERT"),
)
WRITES = (*CALL_WRITES, ("seen_tokens", "INSERT"), ("seen_tokens", "DELETE"))


def _postgresql_write_problem(connection: Connection, writes: tuple[tuple[str, str], ...]) -> str | None:
    """Whether PostgreSQL would take the service's writes: not a standby, transactions not read-only,
    every privilege `writes` names granted to the role (one query: what a readiness probe may cost)."""
    check = text(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), current_user, "
        + ", ".join(f"has_table_privilege(:t{i}, :p{i})" for i in range(len(writes)))
    )
    parameters = {}
    for i, (table, privilege) in enumerate(writes):
        parameters[f"t{i}"], parameters[f"p{i}"] = table, privilege
    standby, read_only, role, *granted = connection.execute(check, parameters).one()
    if standby:
        return "the server is a standby in recovery, which takes no writes (point store.url at the primary)"
    if read_only == "on":
        return (
            "its transactions are read-only (default_transaction_read_only is on for the role, the "
            "database or the server)"
        )
    missing = [
        f"{privilege} on {table}" for (table, privilege), ok in zip(writes, granted, strict=True) if not ok
    ]
    if missing:
        return f"the role {role} lacks the privilege(s) {', '.join(missing)} (GRANT them)"
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


IN_MEMORY = ("sqlite://", "sqlite:///:memory:")
OPENING_FAILURES = (ArgumentError, SQLAlchemyError, StoreError, ModuleNotFoundError)


def _engine(url: str) -> Engine:
    engine = create_engine(
        url, json_serializer=json_text, json_deserializer=_json_column_value, **_pooling(url)
    )
    if url.startswith("sqlite") and url not in IN_MEMORY:
        event.listen(engine, "connect", _sqlite_pragmas)
    if _served(engine):
        event.listen(engine, "do_connect", _connect_in_time)
        event.listen(engine, "checkout", partial(_watched_checkout, engine.dialect))
        event.listen(engine, "checkin", _unwatched_checkin)
    return engine


def _connect_in_time(dialect: Any, _record: Any, args: Any, params: Any) -> Any:
    """A new connection is not tried once the `Database._bounded` block's time is up (a pooled one
    that was cut, replaced by the pool, would otherwise add a connect_timeout to the wait). A failed
    attempt's traceback is dropped: it holds the driver's connect frame and, through it, the attempt's
    open socket, which would stay open (queued at a frozen server) until a cyclic collection."""
    watch = current_watch()
    if watch is not None and (watch.fired or watch.deadline <= time.monotonic()):
        raise DatabaseTimedOut("the database did not answer in time")
    try:
        return dialect.connect(*args, **params)
    except Exception as exc:
        raise exc.with_traceback(None) from None


def _served(engine: Engine) -> bool:
    """Whether the database is a server the service reaches over a connection (not an SQLite file)."""
    return engine.dialect.name != "sqlite"


def _watched_checkout(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection taken from the pool joins the current `Database._bounded` block's watch, then
    is tried (the pool's own pre-ping would run before the watch could see it, and a server that
    stopped answering would hold it for ever); one that does not answer is replaced."""
    watch = current_watch()
    fileno = getattr(dbapi_connection, "fileno", None)
    if watch is not None and fileno is not None:
        watched = socket.socket(fileno=os.dup(fileno()))
        record.info[WATCHED] = (watch, watched)
        watch.add(watched, owned=True)
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError(type(exc).__name__) from None


def _unwatched_checkin(_dbapi_connection: Any, record: Any) -> None:
    """A connection back in the pool leaves the watch of the use that had it: that use's deadline
    may pass while its block is still ending, and must not cut the connection's next user."""
    watched = record.info.pop(WATCHED, None) if record is not None else None
    if watched is not None:
        watch, sock = watched
        watch.discard(sock)


def _pooling(url: str) -> dict[str, Any]:
    if url in IN_MEMORY:
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    if url.startswith("sqlite"):
        return {
            "connect_args": {"check_same_thread": False, "timeout": 10},
            "pool_size": 1,
            "max_overflow": 0,
        }
    server: dict[str, Any] = {"pool_size": 5, "max_overflow": 10}
    if url.startswith("postgresql"):
        # Text both ways in UTF-8 whatever the database's encoding: on an SQL_ASCII database (one
        # made under the C locale) psycopg would otherwise hand back bytes, and nothing could start.
        # A server that does not answer a new connection is given up after connect_timeout.
        given = make_url(url).query
        server["connect_args"] = {"client_encoding": "UTF8"}
        if "connect_timeout" not in given:
            server["connect_args"]["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return server


def open_database(
    url: str,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    rest_seconds: float = StoreSettings.retry_after_seconds,
) -> Database:
    """Connect to `url` and create any missing table; raises DatabaseError when that fails. Each
    later use of a database server is cut after `timeout` seconds, and after one that failed to
    answer the server is left alone for `rest_seconds` (`timeout` None: neither, for the maintenance
    commands, whose one transaction may rightly take longer than a hook call's use)."""
    import service.store.tables  # noqa: F401  (declares every table on `metadata`)

    try:
        engine = _engine(url)
    except OPENING_FAILURES as exc:
        raise _cannot_open(url, exc) from None
    _private_if_new(_sqlite_file(engine))
    writers = _writer_turns(engine)
    try:
        if _checked_by_a_parent(url, engine):
            with engine.connect():  # it still opens; the dialect learns the server, as checking taught it
                pass
        else:
            _create_tables(engine, writers)
    except OPENING_FAILURES as exc:
        if writers is not None:
            writers.close()
        file = _sqlite_file(engine)
        engine.dispose()
        raise _cannot_open(url, exc, os.path.dirname(file) if file else None) from None
    bounded = _served(engine) and timeout is not None
    return Database(
        engine,
        serialised=url in IN_MEMORY,
        writers=writers,
        cutoff=Cutoff() if bounded else None,
        timeout=DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout,
        outage=Outage(rest_seconds) if bounded else None,
    )


def _cannot_open(url: str, failure: Exception, folder: str | None = None) -> DatabaseError:
    """Why a database cannot be opened: for an SQLite file, that its folder does not exist; else the
    failure's kind and the driver's first line ("password authentication failed for user …",
    "database … does not exist") with the URL's password masked. A URL SQLAlchemy could not read
    gets its kind alone: its words would quote the URL, password and all."""
    why = kind_of(failure)
    if folder is not None and not os.path.isdir(folder):
        missing = "is not a folder" if os.path.exists(folder) else "does not exist"
        why = f"the folder {folder} {missing} (store.url names an SQLite file in it)"
    elif not isinstance(failure, ArgumentError):
        password = make_url(url).password
        said = driver_words(failure, None if password is None else str(password))
        if said:
            why = f"{why}: {said}"
    if url.startswith("postgres:"):
        why += " (write postgresql+psycopg:// for PostgreSQL)"
    return DatabaseError(f"cannot open the database {_without_password(url)}: {why}")


def _sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an SQLite database file (None for memory or a server)."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


def _private_if_new(file: str | None) -> None:
    """Make a new SQLite file empty and readable by this user alone (0600): the audit trail holds
    patients' ids, orders and requests, and SQLite would make it (and its -wal and -shm files, which
    take the file's mode) readable by every local user under the usual umask. An existing file is
    left as its owner set it; a folder that is missing is reported by the opening that follows."""
    if file is None:
        return
    with suppress(OSError):  # there already (a link too: opened as its owner made it), or no folder
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))


def tables_checked_for_children(url: str, database: Database) -> None:
    """Let processes forked from this one from now on open `url` (just opened as `database`, its
    tables created and checked) without checking the tables again; never for an in-memory database."""
    if url not in IN_MEMORY:
        _TABLES_CHECKED[url] = (os.getpid(), _file_identity(database.engine))


def _file_identity(engine: Engine) -> tuple[int, int] | None:
    """The SQLite file's device and inode (None for a server); OSError when it is not there."""
    file = _sqlite_file(engine)
    if file is None:
        return None
    status = os.stat(file)
    return status.st_dev, status.st_ino


def _checked_by_a_parent(url: str, engine: Engine) -> bool:
    """Whether a process this one was forked from created and checked the tables of `url`, in the
    SQLite file that is there now (see the module's docstring)."""
    checked = _TABLES_CHECKED.get(url)
    if checked is None or checked[0] == os.getpid():
        return False
    try:
        return _file_identity(engine) == checked[1]
    except OSError:
        return False


def _create_tables(engine: Engine, writers: WriterTurns | None) -> None:
    """Create the missing tables, one process at a time: replicas (or one host's workers) starting
    together on a new database would otherwise each find a table missing and all but one fail to
    create it. PostgreSQL holds a lock every replica takes for the transaction; an SQLite file, the
    writers' turn. (PostgreSQL reads at READ COMMITTED whatever the database's default, so a replica
    that waited for the lock sees the tables made meanwhile: a REPEATABLE READ snapshot, taken at the
    lock, would not.)"""
    postgresql = engine.dialect.name == "postgresql"
    with writers.turn() if writers else nullcontext(), engine.connect() as connection:
        if postgresql:
            connection = connection.execution_options(isolation_level="READ COMMITTED")
        with connection.begin():
            if postgresql:
                connection.execute(text(f"SET LOCAL lock_timeout = '{SCHEMA_LOCK_WAIT}'"))
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(connection)
            _add_missing_columns(connection)
            warn_missing(connection, metadata)


def _add_missing_columns(connection: Connection) -> None:
    """Bring tables an earlier release made up to date: a column it lacked that may be empty is
    added (its rows get none); one that may not stops start-up, naming it."""
    found = inspect(connection)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in found.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        required = [column.name for column in missing if not column.nullable]
        if required:
            raise SchemaOutOfDate(
                f"the table {table.name} lacks the column(s) {', '.join(required)}, which an earlier "
                "release did not make and which cannot be added to its rows; see docs/configuration.md"
            )
        for column in missing:
            kind = column.type.compile(dialect=connection.dialect)
            name, into = connection.dialect.identifier_preparer.quote, table.name
            connection.execute(text(f"ALTER TABLE {name(into)} ADD COLUMN {name(column.name)} {kind}"))
            log.warning(
                "database: added the column %s.%s, which an earlier release did not make", into, column.name
            )


def _writer_turns(engine: Engine) -> WriterTurns | None:
    """Turns on `<file>.writers` beside an SQLite database file (none for memory or a server)."""
    file = _sqlite_file(engine)
    return None if file is None else WriterTurns(f"{file}.writers", SQLITE_BUSY_TIMEOUT_MS / 1000)


def _without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
