"""The indexes a database made by an earlier release lacks, and the step that builds them while the
service serves (`idds-crd audit migrate`).

A new database gets every table with its indexes (`open_database`). A table an earlier release made
keeps the indexes it had: one declared since (tables.py) is missing, and building it reads every
row, which on a trail kept for years takes minutes. Start-up does not build it: on SQLite the build
holds the writers' turn, and PostgreSQL's plain CREATE INDEX blocks the table's inserts, for the
whole build, so that every hook call meanwhile would wait for it and be answered 503. Start-up logs
which are missing instead, and `idds-crd audit migrate` builds them:

- on PostgreSQL with CREATE INDEX CONCURRENTLY, outside a transaction: inserts go on while it reads
  the table; an index an interrupted build left invalid is dropped and built again; one migrate at a
  time (an advisory lock), so that it never drops another's build in progress;
- on SQLite with CREATE INDEX IF NOT EXISTS in one transaction, holding the writers' turn: calls
  recorded meanwhile wait for it (past the 10 s busy timeout, 503), so run it at a quiet hour (a
  trail of 4,000 Synthea-sized records, 190 MB: 1.6 s). Where the file holds the planner's
  statistics (someone ran ANALYZE), the new index gets its own, else the planner would pass it by.

A query works without its index, only slower (`audit show --patient` reads the whole trail).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is imported where used: an SQLite store's start-up needs none of it
    from sqlalchemy import Connection, Index, MetaData

    from service.store.database import Database

log = logging.getLogger(__name__)
MIGRATE_LOCK_KEY = 0x1DD5C4E  # PostgreSQL's advisory lock held by `idds-crd audit migrate`

_POSTGRESQL_INDEXES = """
SELECT c.relname, i.indisvalid FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
"""
_SQLITE_INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index'"
_SQLITE_STATISTICS = "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"


def _found(connection: Connection) -> dict[str, bool]:
    """Every index of the database's schema by name: whether it is usable (PostgreSQL: valid)."""
    from sqlalchemy import text

    if connection.dialect.name == "postgresql":
        return {name: bool(valid) for name, valid in connection.execute(text(_POSTGRESQL_INDEXES))}
    if connection.dialect.name == "sqlite":
        return {name: True for (name,) in connection.execute(text(_SQLITE_INDEXES))}
    from sqlalchemy import inspect

    found = inspect(connection)
    tables = found.get_table_names()
    return {i["name"]: True for table in tables for i in found.get_indexes(table) if i["name"]}


def missing_indexes(connection: Connection, metadata: MetaData) -> list[Index]:
    """The indexes `metadata` declares that the database lacks or holds unusable (one query)."""
    found = _found(connection)
    return [
        index
        for table in metadata.sorted_tables
        for index in sorted(table.indexes, key=lambda i: str(i.name))
        if not found.get(str(index.name), False)
    ]


def warn_missing(connection: Connection, metadata: MetaData) -> None:
    """Log, at start-up, the indexes a database an earlier release made lacks (see the module)."""
    warn_missing_names([str(index.name) for index in missing_indexes(connection, metadata)])


def warn_missing_names(missing: Sequence[str]) -> None:
    """Log the names of the indexes missing, if any (see `warn_missing`)."""
    if missing:
        log.warning(
            "database: the index(es) %s, which an earlier release did not make, are missing: the "
            "queries they serve read whole tables until `idds-crd audit migrate` builds them",
            ", ".join(missing),
        )


def build_missing_indexes(database: Database, metadata: MetaData) -> list[str]:
    """Build the indexes the database lacks, as the module says; the names built."""
    from sqlalchemy import text
    from sqlalchemy.schema import CreateIndex

    if database.engine.dialect.name == "postgresql":
        return _build_concurrently(database, metadata)
    built = []
    with database.begin() as connection:
        quote = connection.dialect.identifier_preparer.quote
        statistics = connection.execute(text(_SQLITE_STATISTICS)).first() is not None
        for index in missing_indexes(connection, metadata):
            connection.execute(CreateIndex(index, if_not_exists=True))
            if statistics:  # the planner, given statistics on the other indexes only, would pass it by
                connection.execute(text(f"ANALYZE {quote(str(index.name))}"))
            built.append(str(index.name))
    return built


def _build_concurrently(database: Database, metadata: MetaData) -> list[str]:
    from sqlalchemy import text

    built = []
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
        try:
            quote = connection.dialect.identifier_preparer.quote
            found = _found(connection)
            for index in missing_indexes(connection, metadata):
                name = quote(str(index.name))
                if str(index.name) in found:  # left invalid by a build that was interrupted
                    connection.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                columns = ", ".join(quote(column.name) for column in index.columns)
                table = quote(index.table.name)  # type: ignore[union-attr]  (every index here has one)
                connection.execute(text(f"CREATE INDEX CONCURRENTLY {name} ON {table} ({columns})"))
                built.append(str(index.name))
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATE_LOCK_KEY})
    return built
