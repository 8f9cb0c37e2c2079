"""The databases the service reaches through SQLAlchemy: a PostgreSQL server, an SQLite URL that names
driver options, and an SQLite store's engine for the `idds-crd audit` commands' queries.

Imported only when one of those is used: the default SQLite store's start-up and hook calls go
through the standard library's `sqlite3` (service/store/database.py), and SQLAlchemy's import and
set-up were a third of a fresh worker's start (issue 12). A server's connections are watched
(`Database._bounded`) and pinged when taken from the pool; its tables are created under an advisory
lock every replica takes; JSON columns take a `JsonText` as it is and are read back with their numbers
as stored.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from contextlib import nullcontext
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from service.cutoff import Cutoff, current_watch
from service.store.database import (
    DEFAULT_TIMEOUT_SECONDS,
    IN_MEMORY,
    Database,
    DatabaseError,
    cannot_open,
    checked_by_a_parent,
    out_of_date,
    private_if_new,
    sqlite_pragmas,
    writer_turns,
)
from service.store.errors import StoreError
from service.store.indexes import warn_missing
from service.store.outage import DatabaseTimedOut, Outage
from service.store.sqlite_schema import json_text
from service.store.tables import metadata
from service.store.writer_turns import WriterTurns
from service.strict_json import loads_exact

log = logging.getLogger("service.store.database")
CONNECT_TIMEOUT_SECONDS = 2  # libpq's connect_timeout, whole seconds (2 is its least)
WATCHED = "idds_crd_watched"  # a pooled connection's record: (the use's Watch, its watched duplicate)
SCHEMA_LOCK_KEY = 0x1DD5C4D  # PostgreSQL's advisory lock held while the tables are created
SCHEMA_LOCK_WAIT = "30s"  # then a replica gives up waiting for another that is creating them
OPENING_FAILURES = (ArgumentError, SQLAlchemyError, StoreError, ModuleNotFoundError)


def _json_column_value(text: str) -> Any:
    """A JSON column's value with its numbers as stored (`2.50`, `-0`: `loads_exact`); NaN or
    Infinity, which the audit trail writes as text, read as `json` would."""
    return loads_exact(text, non_finite=True)


def open_with_sqlalchemy(url: str, timeout: float | None, rest_seconds: float) -> Database:
    """`open_database` for a URL the standard library's `sqlite3` does not take as it is."""
    try:
        engine = _engine(url)
    except OPENING_FAILURES as exc:
        raise _cannot_open(url, exc) from None
    file = sqlite_file(engine)
    private_if_new(file)
    writers = writer_turns(file)
    try:
        if checked_by_a_parent(url, file):
            with engine.connect():  # it still opens; the dialect learns the server, as checking taught it
                pass
        else:
            create_tables(engine, writers)
    except OPENING_FAILURES as exc:
        if writers is not None:
            writers.close()
        engine.dispose()
        raise _cannot_open(url, exc, os.path.dirname(file) if file else None) from None
    bounded = _served(engine) and timeout is not None
    password = engine.url.password
    return Database(
        url,
        file=file,
        password=None if password is None else str(password),
        serialised=url in IN_MEMORY,
        writers=writers,
        cutoff=Cutoff() if bounded else None,
        timeout=DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout,
        outage=Outage(rest_seconds) if bounded else None,
        made={"engine": engine},
    )


def sqlite_engine(url: str, connection: sqlite3.Connection | None) -> Engine:
    """The engine of an SQLite store opened through `sqlite3`: for a file, a pool of its own (one
    connection, with the store's PRAGMAs); in memory, the store's one connection itself."""
    if connection is not None and url in IN_MEMORY:
        return create_engine(
            "sqlite://",
            creator=lambda: connection,
            poolclass=StaticPool,
            json_serializer=json_text,
            json_deserializer=_json_column_value,
        )
    return _engine(url)


def _engine(url: str) -> Engine:
    engine = create_engine(
        url, json_serializer=json_text, json_deserializer=_json_column_value, **_pooling(url)
    )
    if url.startswith("sqlite") and url not in IN_MEMORY:
        event.listen(engine, "connect", sqlite_pragmas)
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


def _cannot_open(url: str, failure: Exception, folder: str | None = None) -> DatabaseError:
    """`cannot_open` with the URL's password masked; a URL SQLAlchemy could not read gets its kind
    alone: its words would quote the URL, password and all."""
    if isinstance(failure, ArgumentError):
        return cannot_open(url, failure, folder, words=False)
    password = make_url(url).password
    return cannot_open(url, failure, folder, None if password is None else str(password))


def without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def sqlite_file(engine: Engine) -> str | None:
    """The absolute path of an SQLite database file (None for memory or a server)."""
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.abspath(path)


def create_tables(engine: Engine, writers: WriterTurns | None) -> None:
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
            raise out_of_date(table.name, required)
        for column in missing:
            kind = column.type.compile(dialect=connection.dialect)
            name, into = connection.dialect.identifier_preparer.quote, table.name
            connection.execute(text(f"ALTER TABLE {name(into)} ADD COLUMN {name(column.name)} {kind}"))
            log.warning(
                "database: added the column %s.%s, which an earlier release did not make", into, column.name
            )


def postgresql_write_problem(connection: Connection, writes: tuple[tuple[str, str], ...]) -> str | None:
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
