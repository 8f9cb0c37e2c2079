"""The SQLite schema written as SQL text (service/store/sqlite_schema.py) is the one SQLAlchemy makes of
the tables declared for PostgreSQL (service/store/tables.py), word for word, and a row written through
it is stored as SQLAlchemy's SQLite dialect stored it: the two can never drift, and a trail an earlier
release wrote reads back as it did."""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

import service.store.tables as declared
from service.store.audit import AuditTrail
from service.store.database import metadata, open_database
from service.store.sqlite_schema import BY_NAME, INDEX_NAMES, TABLES, JsonText, SqliteInsert, json_text


def made_by_sqlalchemy(file: Path) -> Any:
    engine = create_engine(f"sqlite:///{file}", json_serializer=json_text)
    metadata.create_all(engine)
    return engine


def made_from_text(file: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(file)
    for table in TABLES:
        connection.execute(table.create())
        for index in table.create_indexes():
            connection.execute(index)
    connection.commit()
    return connection


def schema(file: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(file) as connection:
        return connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()


def test_the_sql_text_is_what_sqlalchemy_makes_of_the_declared_tables(tmp_path: Path) -> None:
    made_by_sqlalchemy(tmp_path / "sqlalchemy.sqlite3").dispose()
    made_from_text(tmp_path / "text.sqlite3").close()
    assert schema(tmp_path / "text.sqlite3") == schema(tmp_path / "sqlalchemy.sqlite3")
    assert [table.name for table in TABLES] == [table.name for table in metadata.sorted_tables]


def test_every_declared_column_and_index_is_in_the_sql_text_with_its_nullability() -> None:
    for table in metadata.sorted_tables:
        written = BY_NAME[table.name]
        assert [(c.name, c.nullable) for c in written.columns] == [
            (c.name, c.nullable) for c in table.columns
        ]
        assert [c.name for c in written.columns if c.name in written.primary_key] == [
            c.name for c in table.primary_key.columns
        ]
        assert dict(written.indexes) == {
            str(index.name): tuple(c.name for c in index.columns) for index in table.indexes
        }
    assert sorted(INDEX_NAMES) == sorted(str(i.name) for t in metadata.sorted_tables for i in t.indexes)


RECORD: dict[str, Any] = {
    "received_at": datetime(2026, 12, 3, 20, 0, 0),
    "answered_at": datetime(2026, 12, 3, 20, 0, 1, 5),
    "latency_ms": 12,  # an int: stored as a float, as SQLAlchemy's Float does
    "service_id": "idds-crd-order-sign",
    "hook": "order-sign",
    "hook_instance": "h-1",
    "client_iss": None,
    "client_jti": None,
    "patient_id": "p",
    "http_status": 200,
    "payers": ["geha"],
    "orders": JsonText('[{"price": 12345.50, "zero": -0}]'),  # written as it is
    "determinations": {"nested": [1, 2.5, None, "é"]},
    "assertions": [],
    "fhir_access": {},
    "request": None,  # JSON null, as SQLAlchemy's JSON type stores None
    "response": {"cards": []},
}
FEEDBACK: dict[str, Any] = {
    "key": "k",
    "record_id": 1,
    "card_uuid": "c",
    "service_id": "idds-crd-order-sign",
    "received_at": date(2026, 12, 4),
    "item": {"outcome": "accepted"},
    "client_iss": "https://ehr.example",
}


def stored(file: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(file) as connection:
        columns = [column[1] for column in connection.execute(f"PRAGMA table_info({table})")]
        typed = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
        return connection.execute(f"SELECT {typed} FROM {table}").fetchall()


@pytest.mark.parametrize(("table", "row"), [("audit_records", RECORD), ("audit_feedback", FEEDBACK)])
def test_a_row_written_through_the_sql_text_is_stored_as_sqlalchemy_stored_it(
    tmp_path: Path, table: str, row: dict[str, Any]
) -> None:
    engine = made_by_sqlalchemy(tmp_path / "sqlalchemy.sqlite3")
    with engine.begin() as connection:
        connection.execute(insert(getattr(declared, table)).values(**row))
    engine.dispose()
    connection = made_from_text(tmp_path / "text.sqlite3")
    statement = SqliteInsert.of(table, list(row), keyed=table == "audit_records")
    assert statement.run(connection.cursor(), statement.parameters(row)) in (1, None)
    connection.commit()
    connection.close()
    assert stored(tmp_path / "text.sqlite3", table) == stored(tmp_path / "sqlalchemy.sqlite3", table)


def test_a_value_a_datetime_column_cannot_hold_is_refused_as_sqlalchemy_refused_it() -> None:
    statement = SqliteInsert.of("audit_feedback", ["received_at"])
    with pytest.raises(TypeError, match="only accepts Python datetime and date"):
        statement.parameters({"received_at": "2026-12-04"})


def test_a_trail_sqlalchemy_made_opens_as_it_is_and_reads_back_what_it_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A trail an earlier release made and wrote (SQLAlchemy's `create_all` and insert) is opened by the
    sqlite3 store without a change or a warning, and its record reads back as the one the store writes."""
    file = tmp_path / "audit.sqlite3"
    engine = made_by_sqlalchemy(file)
    with engine.begin() as connection:
        connection.execute(insert(declared.audit_records).values(**RECORD))
    engine.dispose()
    before = schema(file)
    with caplog.at_level(logging.WARNING):
        database = open_database(f"sqlite:///{file}")
    assert database.connection is not None and caplog.records == []
    trail = AuditTrail(database)
    ours = trail.record({**RECORD, "hook_instance": "h-2", "cards": [], "assertion_keys": []})
    [earlier], [written] = trail.find("h-1"), trail.find("h-2")
    database.close()
    assert schema(file) == before
    assert {**earlier, "id": ours, "hook_instance": "h-2"} == written
