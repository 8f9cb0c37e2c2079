"""The service's tables on an SQLite file, as SQL text, and the values SQLite stores in them.

The default store is an SQLite file written through the standard library's `sqlite3`: SQLAlchemy's
import and set-up were a third of a fresh worker's start (issue 12), and it stays for PostgreSQL
(service/store/tables.py declares the tables for it). What is here is what SQLAlchemy's SQLite dialect
made of those declarations, word for word (tests/unit/test_sqlite_schema.py holds the two together):
the same `CREATE TABLE` and `CREATE INDEX` text, so a file made here is the file SQLAlchemy made, and
the same stored forms, so a trail an earlier release wrote reads back as it did: a `DATETIME` as the
text `YYYY-MM-DD HH:MM:SS.ffffff`, a `JSON` column as JSON text (a `JsonText` as it is, anything else,
None too, through `json.dumps`: service/store/database.py), a `FLOAT` as a float.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# the column names SQLite reserves, quoted as SQLAlchemy's SQLite dialect quotes them
RESERVED = frozenset({"key"})
DATETIME_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class JsonText(str):
    """A value already written as JSON text, stored in a JSON column as it is."""


def json_text(value: Any) -> str:
    """A JSON column's stored text: a `JsonText` as it is, any other value (None: `null`) as JSON."""
    return value if isinstance(value, JsonText) else json.dumps(value)


def datetime_text(value: Any) -> str | None:
    """A DATETIME column's stored text, as SQLAlchemy's SQLite dialect writes it (a date at midnight;
    a time zone, if any, dropped: the service writes naive UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = (value.hour, value.minute, value.second, value.microsecond)
    elif isinstance(value, date):
        moment = (0, 0, 0, 0)
    else:
        raise TypeError("SQLite DateTime type only accepts Python datetime and date objects as input.")
    return DATETIME_FORMAT % (value.year, value.month, value.day, *moment)


def float_value(value: Any) -> float | None:
    return None if value is None else float(value)


NUL = "\x00"
NUL_KEPT_AS = "\ufffd"


def text_value(value: Any) -> Any:
    """A text column's stored form, on either database: a U+0000 as U+FFFD. PostgreSQL's text cannot
    hold U+0000, and an id the record is found by may hold one (an EHR sends back the PA number another
    system gave it): written as it is, the record could not be written there (the call answered 503,
    and every call sending the id again). Kept alike on SQLite, a record is found the same on either; a
    lookup's key is stored the same way (`AuditTrail.find`), and of the records its stored form finds,
    those whose id as sent is the key are kept (an id holding U+FFFD where another held U+0000 is stored
    alike). The JSON columns keep the NUL (escaped)."""
    return value.replace(NUL, NUL_KEPT_AS) if isinstance(value, str) and NUL in value else value


STORED: dict[str, Callable[[Any], Any]] = {"DATETIME": datetime_text, "JSON": json_text, "FLOAT": float_value}


def stored_form(column_type: str) -> Callable[[Any], Any] | None:
    """What converts a value to its stored form in a column of `column_type` (None: stored as it is)."""
    return text_value if column_type.startswith("VARCHAR") else STORED.get(column_type)


def quote(name: str) -> str:
    return f'"{name}"' if name in RESERVED else name


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as SQLAlchemy's SQLite dialect writes the declared type
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    references: tuple[tuple[str, str, str], ...] = ()  # (column, table, its column)
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, columns), by name

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def create(self) -> str:
        lines = [f"{quote(c.name)} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns]
        if self.primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(quote(name) for name in self.primary_key)})")
        lines += [f"FOREIGN KEY({quote(c)}) REFERENCES {t} ({quote(r)})" for c, t, r in self.references]
        return f"CREATE TABLE {self.name} (\n\t" + ", \n\t".join(lines) + "\n)"

    def create_indexes(self) -> list[str]:
        return [
            f"CREATE INDEX {name} ON {self.name} ({', '.join(quote(c) for c in columns)})"
            for name, columns in self.indexes
        ]

    def add_column(self, column: Column) -> str:
        return f"ALTER TABLE {self.name} ADD COLUMN {quote(column.name)} {column.type}"


def _nullable(name: str, kind: str) -> Column:
    return Column(name, kind, nullable=True)


# In the order SQLAlchemy's `MetaData.sorted_tables` gives them (a table after those it references).
TABLES = (
    Table(
        "audit_purges",
        (
            Column("id", "INTEGER"),
            Column("started_at", "DATETIME"),
            Column("older_than", "DATETIME"),
            Column("removed", "INTEGER"),
            _nullable("last_record_id", "INTEGER"),
            Column("operator", "VARCHAR(512)"),
        ),
        primary_key=("id",),
    ),
    Table(
        "audit_records",
        (
            Column("id", "INTEGER"),
            Column("received_at", "DATETIME"),
            Column("answered_at", "DATETIME"),
            Column("latency_ms", "FLOAT"),
            Column("service_id", "VARCHAR(128)"),
            _nullable("hook", "VARCHAR(64)"),
            _nullable("hook_instance", "VARCHAR(128)"),
            _nullable("client_iss", "VARCHAR(1024)"),
            _nullable("client_jti", "VARCHAR(512)"),
            _nullable("patient_id", "VARCHAR(128)"),
            Column("http_status", "INTEGER"),
            Column("payers", "JSON"),
            Column("orders", "JSON"),
            Column("determinations", "JSON"),
            Column("assertions", "JSON"),
            Column("fhir_access", "JSON"),
            _nullable("request", "JSON"),
            Column("response", "JSON"),
        ),
        primary_key=("id",),
        indexes=(
            ("ix_audit_records_hook_instance", ("hook_instance",)),
            ("ix_audit_records_patient", ("patient_id", "id")),
            ("ix_audit_records_received_at", ("received_at",)),
        ),
    ),
    Table(
        "seen_tokens",
        (Column("iss", "VARCHAR(1024)"), Column("jti", "VARCHAR(512)"), Column("expires_at", "BIGINT")),
        primary_key=("iss", "jti"),
        indexes=(("ix_seen_tokens_expires_at", ("expires_at",)),),
    ),
    Table(
        "audit_assertions",
        (
            Column("record_id", "INTEGER"),
            Column("assertion_id", "VARCHAR(128)"),
            _nullable("satisfied_pa_id", "VARCHAR(128)"),
        ),
        references=(("record_id", "audit_records", "id"),),
        indexes=(
            ("ix_audit_assertions_assertion_id", ("assertion_id",)),
            ("ix_audit_assertions_record_id", ("record_id",)),
            ("ix_audit_assertions_satisfied_pa_id", ("satisfied_pa_id",)),
        ),
    ),
    Table(
        "audit_cards",
        (
            Column("card_uuid", "VARCHAR(64)"),
            Column("record_id", "INTEGER"),
            Column("service_id", "VARCHAR(128)"),
        ),
        primary_key=("card_uuid",),
        references=(("record_id", "audit_records", "id"),),
        indexes=(("ix_audit_cards_record_id", ("record_id",)),),
    ),
    Table(
        "audit_feedback",
        (
            Column("key", "VARCHAR(64)"),
            Column("record_id", "INTEGER"),
            Column("card_uuid", "VARCHAR(64)"),
            Column("service_id", "VARCHAR(128)"),
            Column("received_at", "DATETIME"),
            Column("item", "JSON"),
            _nullable("client_iss", "VARCHAR(1024)"),
            _nullable("client_jti", "VARCHAR(512)"),
        ),
        primary_key=("key",),
        references=(("record_id", "audit_records", "id"),),
        indexes=(
            ("ix_audit_feedback_card_uuid", ("card_uuid",)),
            ("ix_audit_feedback_record_id", ("record_id",)),
        ),
    ),
)
BY_NAME = {table.name: table for table in TABLES}
# the ids' columns' length (VARCHAR(128)): an id longer is stored cut to it (service/audit_entry.py)
ID_LENGTH = int(BY_NAME["audit_records"].column("hook_instance").type.removeprefix("VARCHAR(")[:-1])
INDEX_NAMES = tuple(name for table in TABLES for name, _ in table.indexes)


@dataclass(frozen=True)
class SqliteInsert:
    """One INSERT of a table's `names` columns, with each value converted to its stored form; the
    interface of service/store/driver_insert.py's `DriverInsert`, which PostgreSQL's inserts use.
    `keyed`: it answers the new row's key (the cursor's `lastrowid`: the tables' integer keys are
    SQLite's row ids)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    keyed: bool = False

    @classmethod
    def of(cls, table: str, names: Sequence[str], keyed: bool = False) -> SqliteInsert:
        declared = BY_NAME[table]
        columns = [declared.column(name) for name in names]
        sql = (
            f"INSERT INTO {table} ({', '.join(quote(name) for name in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        return cls(sql, tuple(names), tuple(stored_form(c.type) for c in columns), keyed)

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """`values` (by column) in their stored forms, by position; a column left out is SQL NULL."""
        return [
            (values[name] if process is None else process(values[name])) if name in values else None
            for name, process in zip(self.names, self.processors, strict=True)
        ]

    def run(self, cursor: Any, parameters: Sequence[Any]) -> Any:
        cursor.execute(self.sql, parameters)
        return cursor.lastrowid if self.keyed else None

    def run_many(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self.sql, rows)
