"""The audit record inserted on the driver's cursor (service/store/driver_insert.py) is stored exactly
as SQLAlchemy's own insert stores it, on a SQLite file and on a real PostgreSQL server; a driver
error comes out as the store's exception the group commit judges (service/store/errors.py), without the
values in it. On the SQLite file the record goes through `sqlite3` alone (service/store/sqlite_schema.py),
the reference through SQLAlchemy's insert."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from service.store.audit import AuditTrail
from service.store.database import Database, JsonText, open_database
from service.store.errors import DuplicateKey, StoreError
from service.store.tables import audit_records

pytestmark = pytest.mark.integration

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_COLUMNS = ("payers", "orders", "determinations", "assertions", "fhir_access", "request", "response")


@st.composite
def audit_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row as `audit_row` writes one: its JSON columns as JsonText or as plain values, any text."""
    row: dict[str, Any] = {
        "received_at": draw(MOMENTS),
        "answered_at": draw(MOMENTS),
        "latency_ms": draw(st.floats(0, 1e6)),
        "service_id": draw(TEXT),
        "hook": draw(st.none() | TEXT),
        "hook_instance": draw(st.none() | TEXT),
        "client_iss": draw(st.none() | TEXT),
        "client_jti": draw(st.none() | TEXT),
        "patient_id": draw(st.none() | TEXT),
        "http_status": draw(st.sampled_from([200, 400, 412, 500, 503])),
    }
    for column in JSON_COLUMNS:
        value = draw(JSON_VALUES)
        row[column] = JsonText(json.dumps(value, separators=(",", ":"))) if draw(st.booleans()) else value
    if draw(st.booleans()):
        row["request"] = None  # a nullable column set to None (a JSON column writes it as null)
    for column in draw(st.sets(st.sampled_from(["hook", "client_iss", "patient_id", "request"]))):
        del row[column]  # a nullable column left out: SQL NULL
    return row


@pytest.fixture(params=["sqlite-file", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_url"))
    opened = open_database(url)
    yield opened
    opened.close()


def stored(database: Database, record_id: int) -> dict[str, Any]:
    """The record as the database holds it, read without SQLAlchemy's types (SQLite: the very text)."""
    with database.connect() as connection:
        row = connection.execute(text("SELECT * FROM audit_records WHERE id = :id"), {"id": record_id}).one()
    return {k: v for k, v in row._mapping.items() if k != "id"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=audit_rows())
def test_a_record_is_stored_as_sqlalchemy_stores_it(database: Database, row: dict[str, Any]) -> None:
    trail = AuditTrail(database)
    with database.begin() as connection:
        reference_id = connection.execute(insert(audit_records).values(**row)).inserted_primary_key[0]
    ours = trail.record(
        {**row, "cards": [str(uuid.uuid4())], "assertion_keys": [("a-" + str(uuid.uuid4()), None)]}
    )
    assert stored(database, ours) == stored(database, reference_id)


def test_a_driver_error_is_raised_as_the_stores_without_the_values(database: Database) -> None:
    trail = AuditTrail(database)
    card = "card-" + str(uuid.uuid4())
    row = {
        "received_at": datetime(2026, 12, 3, 20, 0),
        "answered_at": datetime(2026, 12, 3, 20, 0, 0, 5),
        "latency_ms": 1.5,
        "service_id": "idds-crd-order-sign",
        "hook": "order-sign",
        "hook_instance": "h",
        "client_iss": None,
        "client_jti": None,
        "patient_id": "secret-patient-id",
        "http_status": 200,
        **{column: JsonText("[]") for column in JSON_COLUMNS},
        "cards": [card],
        "assertion_keys": [],
    }
    prepared = trail.inserts.prepare(row)
    with pytest.raises(DuplicateKey) as raised, database.transaction() as connection:
        trail.inserts.write(connection, [prepared, prepared])  # the card's uuid twice
    assert "[parameters:" not in str(raised.value)  # what the database's own message says may stay
    with database.begin() as connection:
        connection.execute(text("DROP TABLE audit_cards"))
    missing_table = "OperationalError" if database.engine.dialect.name == "sqlite" else "ProgrammingError"
    with pytest.raises(StoreError) as gone, database.transaction() as connection:
        trail.inserts.write(connection, [prepared])
    assert gone.value.kind == missing_table and "secret-patient-id" not in str(gone.value)
    assert "[parameters:" not in str(gone.value)


def test_without_returning_the_new_key_is_the_cursors_lastrowid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 has no RETURNING: SQLAlchemy then takes the key from the cursor, and so
    does the driver insert; the cards and assertions point at the record they came with."""
    database = open_database(f"sqlite:///{tmp_path}/audit.sqlite3")
    monkeypatch.setattr(database.engine.dialect, "insert_returning", False)
    trail = AuditTrail(database)
    assert "RETURNING" not in trail.inserts.record.sql
    row = {
        "received_at": datetime(2026, 12, 3, 21, 0),
        "answered_at": datetime(2026, 12, 3, 21, 0),
        "latency_ms": 2.0,
        "service_id": "idds-crd-order-select",
        "http_status": 200,
        **{column: JsonText("[]") for column in JSON_COLUMNS},
    }
    recorded = {
        trail.record(
            {**row, "hook_instance": f"h{n}", "cards": [f"card-{n}"], "assertion_keys": [(f"a-{n}", None)]}
        ): n
        for n in range(3)
    }
    assert len(recorded) == 3
    for record_id, n in recorded.items():
        [found] = trail.find(f"card-{n}")
        assert found["id"] == record_id and found["hook_instance"] == f"h{n}"
        assert [r["id"] for r in trail.find(f"a-{n}")] == [record_id]
    database.close()
