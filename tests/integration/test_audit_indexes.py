"""`audit show --patient` and `audit export --patient` find one patient's records through an index on
a SQLite file and on a real PostgreSQL server, whether the trail is new or was made by a release
without the index (`idds-crd audit migrate` builds it, and start-up says it is missing)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from service import cli
from service.store.audit import AuditTrail
from service.store.database import Database, open_database
from service.store.tables import audit_records

pytestmark = pytest.mark.integration
INDEX = "ix_audit_records_patient"
PATIENTS = 300
RECORDS = 3000


def filled(url: str) -> Database:
    """The database at `url`, its trail holding RECORDS small records about PATIENTS patients."""
    database = open_database(url)
    start = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    rows = [
        {
            "received_at": start + timedelta(seconds=i),
            "answered_at": start + timedelta(seconds=i),
            "latency_ms": 1.0,
            "service_id": "idds-crd-order-sign",
            "patient_id": f"p{i % PATIENTS}",
            "http_status": 200,
            **{c: [] for c in ("payers", "orders", "determinations", "assertions")},
            "fhir_access": {},
            "response": {"cards": []},
        }
        for i in range(RECORDS)
    ]
    with database.begin() as connection:
        connection.execute(insert(audit_records), rows)
        connection.execute(text("ANALYZE"))
    return database


def plans_of_patient_reads(database: Database, **window: Any) -> list[str]:
    """The query plan of every statement `between(patient=…)` runs on the records' table."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "FROM audit_records" in statement and "patient_id" in statement:
            statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        assert [r["patient_id"] for r in AuditTrail(database).between(patient="p7", **window)] == ["p7"] * 10
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert statements
    explain = "EXPLAIN" if database.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    with database.engine.connect() as connection:
        return [
            "\n".join(str(row[-1]) for row in connection.exec_driver_sql(f"{explain} {sql}", parameters))
            for sql, parameters in statements
        ]


def assert_read_through_the_index(url: str) -> None:
    """One patient's records read through the index by the next command to open the trail."""
    database = open_database(url)
    try:
        for plan in plans_of_patient_reads(database):
            assert INDEX in plan, plan
    finally:
        database.close()


def without_the_index(database: Database) -> None:
    """The trail as a release before the index made it."""
    with database.begin() as connection:
        connection.execute(text(f"DROP INDEX {INDEX}"))


def test_a_new_trail_reads_one_patients_records_through_the_index(database_url: str) -> None:
    database = filled(database_url)
    try:
        for window in ({}, {"since": datetime(2026, 12, 1, tzinfo=UTC)}):
            for plan in plans_of_patient_reads(database, **window):
                assert INDEX in plan, plan
    finally:
        database.close()


def test_a_trail_made_without_the_index_gets_it_from_audit_migrate(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    database = filled(database_url)
    try:
        without_the_index(database)
        assert not any(INDEX in plan for plan in plans_of_patient_reads(database))
        config = tmp_path / "config.yaml"
        config.write_text(f"store:\n  url: {database_url}\n")
        with caplog.at_level(logging.WARNING):
            open_database(database_url).close()  # start-up builds nothing, and says so
        assert f"index(es) {INDEX}" in caplog.text and "idds-crd audit migrate" in caplog.text
        assert not any(INDEX in plan for plan in plans_of_patient_reads(database))

        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert cli.main(["audit", "migrate", "--config", str(config)]) == 0
        assert capsys.readouterr().out == f"audit migrate: built {INDEX}\n"
        assert "idds-crd audit migrate" not in caplog.text  # the command that builds them (review21 L5)
        assert_read_through_the_index(database_url)
        assert cli.main(["audit", "migrate", "--config", str(config)]) == 0
        assert capsys.readouterr().out == "audit migrate: nothing to build\n"
    finally:
        database.close()


def test_on_postgresql_migrate_builds_again_an_index_an_interrupted_build_left_invalid(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = filled(postgres_url)
    try:
        with database.begin() as connection:  # what a CREATE INDEX CONCURRENTLY cut short leaves
            connection.execute(
                text(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{INDEX}'::regclass")
            )
        assert not any(INDEX in plan for plan in plans_of_patient_reads(database))
        config = tmp_path / "config.yaml"
        config.write_text(f"store:\n  url: {postgres_url}\n")
        assert cli.main(["audit", "migrate", "--config", str(config)]) == 0
        assert capsys.readouterr().out == f"audit migrate: built {INDEX}\n"
        assert_read_through_the_index(postgres_url)
    finally:
        database.close()
