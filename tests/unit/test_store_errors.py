"""A failure of either driver (sqlite3's own, or SQLAlchemy's wrapping psycopg's or sqlite3's) is the
same store error, with the same kind the log gives and the driver's error kept for the refusal reason."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError, ProgrammingError

from service.store.errors import DuplicateKey, StoreError, StoreUnavailable, mapped, translated
from service.store.write_refusals import refusal_reason


def sqlite_error(sql: str) -> sqlite3.Error:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    connection.execute("INSERT INTO t VALUES ('a')")
    try:
        connection.execute(sql)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


@pytest.mark.parametrize(
    ("sql", "family", "kind"),
    [
        ("INSERT INTO t VALUES ('a')", DuplicateKey, "IntegrityError"),
        ("SELECT * FROM gone", StoreError, "OperationalError"),
    ],
)
def test_a_driver_error_and_sqlalchemys_wrapping_of_it_are_the_same_store_error(
    sql: str, family: type[StoreError], kind: str
) -> None:
    driver = sqlite_error(sql)
    wrapper = IntegrityError if kind == "IntegrityError" else OperationalError
    for failure in (driver, wrapper(sql, {"p": "secret-patient-id"}, driver)):
        error = mapped(failure)
        assert isinstance(error, family) and error.kind == kind and error.orig is driver
        assert "secret-patient-id" not in str(error) and str(driver) in str(error)


def test_what_means_the_database_cannot_be_used_is_unavailable() -> None:
    assert isinstance(mapped(sqlite_error("SELECT * FROM gone")), StoreUnavailable)  # OperationalError
    assert isinstance(mapped(DisconnectionError("lost")), StoreUnavailable)
    programming = mapped(ProgrammingError("SELECT", {}, Exception("relation does not exist")))
    assert type(programming) is StoreError and programming.kind == "ProgrammingError"


def test_a_refusal_reads_the_driver_error_a_store_error_keeps() -> None:
    readonly = sqlite3.connect("file::memory:?mode=ro", uri=True)
    with pytest.raises(StoreError) as refused, translated(sqlite3.Error):
        readonly.execute("CREATE TABLE t (k TEXT)")
    reason = refusal_reason(refused.value, None)
    assert reason is not None and reason.startswith("OperationalError (SQLITE_READONLY"), reason
    assert isinstance(refused.value.__cause__, sqlite3.OperationalError)
