"""Inserts run on the database driver's own cursor, inside a SQLAlchemy transaction (PostgreSQL).

Every hook call inserts its audit record while it holds the turn to write (the writers of an SQLite
file take turns: service/store/writer_turns.py), so what the insert costs, every worker waiting for
the turn pays too. SQLAlchemy's statement execution (cache lookups, parameter construction, result
set-up) cost two to four times the driver's own work on a record (bench/NOTES.md). Here SQLAlchemy still
compiles each statement, once per dialect, and its parameters are converted by the very bind
processors SQLAlchemy applies (a date as SQLite stores it, JSON as the column writes it), before the
turn is taken; the driver then gets what `Connection.execute` would have sent it. A driver error is
raised as the store's exception for it (service/store/errors.py: a `DuplicateKey`, a
`StoreUnavailable`), without the parameters in its message (`Database.transaction`). The default
SQLite store writes through `sqlite3` with the same interface and no SQLAlchemy at all
(service/store/sqlite_schema.py `SqliteInsert`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.store.sqlite_schema import text_value

if TYPE_CHECKING:
    from sqlalchemy import Dialect, Table

Parameters = Sequence[Any] | dict[str, Any]  # as the driver takes them: by position or by name


@dataclass(frozen=True)
class DriverInsert:
    """One INSERT of `table`'s `columns`, compiled for `dialect`. `keyed`: it answers the new row's
    primary key, by `RETURNING` where the database has it (`returning`), else by the cursor's
    `lastrowid` (SQLite before 3.35), as SQLAlchemy does."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    keyed: bool
    returning: bool

    @classmethod
    def compile(
        cls, table: Table, columns: Sequence[str], dialect: Dialect, keyed: bool = False
    ) -> DriverInsert:
        from sqlalchemy import insert

        statement = insert(table)
        returning = keyed and bool(dialect.insert_returning)
        if returning:
            statement = statement.returning(*table.primary_key.columns)
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        processors = tuple(_with_text_value(compiled.binds[name].type, dialect) for name in names)
        return cls(
            compiled.string,
            names,
            processors,
            compiled.positional,
            keyed,
            returning,
        )

    def parameters(self, values: Mapping[str, Any]) -> Parameters:
        """`values` (by column) converted as SQLAlchemy binds them, in the driver's parameter style; a
        column `values` leaves out is SQL NULL, as an insert of the other columns stores it (these
        tables declare no default), not what its type would make of None (a JSON column's `null`)."""
        converted = [
            _bound(values, name, process) for name, process in zip(self.names, self.processors, strict=True)
        ]
        return converted if self.positional else dict(zip(self.names, converted, strict=True))

    def run(self, cursor: Any, parameters: Parameters) -> Any:
        """Insert one row with a cursor from `driver_cursor`; its new primary key when `keyed`."""
        cursor.execute(self.sql, parameters)
        if self.returning:
            return cursor.fetchone()[0]
        return cursor.lastrowid if self.keyed else None

    def run_many(self, cursor: Any, rows: Sequence[Parameters]) -> None:
        """Insert every row with a cursor from `driver_cursor`."""
        if rows:
            cursor.executemany(self.sql, rows)


@contextmanager
def driver_cursor(connection: Any) -> Iterator[Any]:
    """A cursor of the driver's connection `connection` (from `Database.transaction`, which raises a
    driver error as the store's: service/store/errors.py), closed after the block."""
    cursor = connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _with_text_value(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's bind processor of `column_type`, a text column's value first in its stored form
    (service/store/sqlite_schema.py `text_value`: PostgreSQL's text holds no U+0000)."""
    from sqlalchemy import String

    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if not isinstance(column_type, String):
        return process
    if process is None:
        return text_value
    return lambda value: process(text_value(value))


def _bound(values: Mapping[str, Any], name: str, process: Callable[[Any], Any] | None) -> Any:
    if name not in values:
        return None
    return values[name] if process is None else process(values[name])
