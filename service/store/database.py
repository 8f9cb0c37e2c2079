"""Opening the service's database from a SQLAlchemy URL, with the tables every module declares.

One `MetaData` holds every table (the audit trail's, the replay store's); `open_database` creates
them if missing, one process at a time. SQLite gets WAL journaling so several worker processes can
share one file, and their write transactions take turns on a lock file beside it
(service/store/writer_turns.py).
`sqlite://` (in memory) is one connection shared by the threads of one process, for tests and
throwaway runs. PostgreSQL (`postgresql+psycopg://…`) is for several replicas. JSON columns take a
`JsonText` (a value its writer already wrote as JSON, as the audit trail does to scan it for
secrets) as it is, instead of writing it again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from service.store.writer_turns import WriterTurns

metadata = MetaData()
SQLITE_BUSY_TIMEOUT_MS = 10_000
SCHEMA_LOCK_KEY = 0x1DD5C4D  # PostgreSQL's advisory lock held while the tables are created
SCHEMA_LOCK_WAIT = "30s"  # then a replica gives up waiting for another that is creating them


class JsonText(str):
    """A value already written as JSON text, stored in a JSON column as it is."""


def _json_column_text(value: Any) -> str:
    return value if isinstance(value, JsonText) else json.dumps(value)


class DatabaseError(RuntimeError):
    """The configured database cannot be opened; the message names the URL without its password."""


@dataclass(frozen=True)
class Database:
    """The engine; whether its one shared in-memory connection must be used by one thread at a time
    (SQLite's connection object is not safe for concurrent use); the turns writers take on a file."""

    engine: Engine
    serialised: bool = False
    writers: WriterTurns | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    def _turn(self) -> Any:
        return self._lock if self.serialised else nullcontext()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends without an error."""
        writing = self.writers.turn() if self.writers else nullcontext()
        with self._turn(), writing, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._turn(), self.engine.connect() as connection:
            yield connection

    def close(self) -> None:
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


IN_MEMORY = ("sqlite://", "sqlite:///:memory:")
OPENING_FAILURES = (ArgumentError, SQLAlchemyError, ModuleNotFoundError)


def _engine(url: str) -> Engine:
    engine = create_engine(url, json_serializer=_json_column_text, **_pooling(url))
    if url.startswith("sqlite") and url not in IN_MEMORY:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _pooling(url: str) -> dict[str, Any]:
    if url in IN_MEMORY:
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    if url.startswith("sqlite"):
        return {
            "connect_args": {"check_same_thread": False, "timeout": 10},
            "pool_size": 1,
            "max_overflow": 0,
        }
    server = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    if url.startswith("postgresql"):
        # Text both ways in UTF-8 whatever the database's encoding: on an SQL_ASCII database (one
        # made under the C locale) psycopg would otherwise hand back bytes, and nothing could start.
        server["connect_args"] = {"client_encoding": "UTF8"}
    return server


def open_database(url: str) -> Database:
    """Connect to `url` and create any missing table; raises DatabaseError when that fails."""
    import service.store.tables  # noqa: F401  (declares every table on `metadata`)

    try:
        engine = _engine(url)
    except OPENING_FAILURES as exc:
        raise _cannot_open(url, exc) from None
    writers = _writer_turns(engine)
    try:
        _create_tables(engine, writers)
    except OPENING_FAILURES as exc:
        if writers is not None:
            writers.close()
        file = _sqlite_file(engine)
        engine.dispose()
        raise _cannot_open(url, exc, os.path.dirname(file) if file else None) from None
    return Database(engine, serialised=url in IN_MEMORY, writers=writers)


def _cannot_open(url: str, failure: Exception, folder: str | None = None) -> DatabaseError:
    """Why a database cannot be opened, without the driver's words (they may hold the password): the
    failure's kind, or, for an SQLite file, that its folder does not exist."""
    why = type(failure).__name__
    if folder is not None and not os.path.isdir(folder):
        missing = "is not a folder" if os.path.exists(folder) else "does not exist"
        why = f"the folder {folder} {missing} (store.url names an SQLite file in it)"
    return DatabaseError(f"cannot open the database {_without_password(url)}: {why}")


def _sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an SQLite database file (None for memory or a server)."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


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


def _writer_turns(engine: Engine) -> WriterTurns | None:
    """Turns on `<file>.writers` beside an SQLite database file (none for memory or a server)."""
    file = _sqlite_file(engine)
    return None if file is None else WriterTurns(f"{file}.writers", SQLITE_BUSY_TIMEOUT_MS / 1000)


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
