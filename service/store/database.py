"""Opening the service's database from a SQLAlchemy URL, with the tables every module declares.

One `MetaData` holds every table (the audit trail's, the replay store's); `open_database` creates
them if missing. SQLite gets WAL journaling and a busy timeout so several worker processes can
share one file; `sqlite://` (in memory) is one connection shared by the threads of one process,
for tests and throwaway runs. PostgreSQL (`postgresql+psycopg://…`) is for several replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

metadata = MetaData()
SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseError(RuntimeError):
    """The configured database cannot be opened; the message names the URL without its password."""


@dataclass(frozen=True)
class Database:
    engine: Engine

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _engine(url: str) -> Engine:
    if url in ("sqlite://", "sqlite:///:memory:"):
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def open_database(url: str) -> Database:
    """Connect to `url` and create any missing table; raises DatabaseError when that fails."""
    import service.store.tables  # noqa: F401  (declares every table on `metadata`)

    try:
        engine = _engine(url)
        metadata.create_all(engine)
    except (ArgumentError, SQLAlchemyError, ModuleNotFoundError) as exc:
        reason = type(exc).__name__
        raise DatabaseError(f"cannot open the database {_without_password(url)}: {reason}") from None
    return Database(engine)


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
