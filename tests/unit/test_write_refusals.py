"""Telling a database that refuses writes (service/store/write_refusals.py): readiness held not ready
for a while after a refused write unless one is taken, the reason logged once per outage, and only
refusals of the database (never an error quoting a value written) given in the driver's words."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service.store.write_refusals import WriteRefusals, refusal_reason


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_write_holds_readiness_until_a_write_is_taken_or_the_hold_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    refusals = WriteRefusals(hold_seconds=30, clock=clock)
    assert refusals.recent() is None
    refusals.refused("DiskFull (SQLSTATE 53100): could not extend file")
    refusals.refused("DiskFull (SQLSTATE 53100): could not extend file")
    refusals.checked(None)  # the check cannot see a full disk: it does not end the hold
    clock.now += 29
    assert refusals.recent() == "DiskFull (SQLSTATE 53100): could not extend file"
    clock.now += 2
    assert refusals.recent() is None
    refusals.refused("DiskFull (SQLSTATE 53100): could not extend file")
    refusals.written()
    assert refusals.recent() is None
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(messages) == 1 and "SQLSTATE 53100" in messages[0], messages


def test_a_problem_the_check_finds_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    refusals = WriteRefusals()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            refusals.checked("the server is a standby in recovery")
        refusals.checked(None)
        refusals.checked(None)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "standby" in said[0] and "takes the service's writes again" in said[1], said


def test_a_read_only_sqlite_file_is_named_and_a_value_error_is_not_quoted(tmp_path: Path) -> None:
    file = tmp_path / "audit.sqlite3"
    sqlite3.connect(file).execute("CREATE TABLE t (v INTEGER UNIQUE)").connection.commit()
    engine = create_engine(f"sqlite:///file:{file}?mode=ro&uri=true")
    with pytest.raises(DBAPIError) as refused, engine.connect() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
    reason = refusal_reason(refused.value, None)
    assert reason is not None and reason.startswith("OperationalError (SQLITE_READONLY"), reason
    writable = create_engine(f"sqlite:///{file}")
    with pytest.raises(IntegrityError) as duplicate, writable.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (7)"))
        connection.execute(text("INSERT INTO t VALUES (7)"))
    assert refusal_reason(duplicate.value, None) is None


def test_the_password_is_masked_in_the_drivers_words() -> None:
    class Refused(Exception):
        sqlstate = "42501"

    wrapped = DBAPIError("INSERT", {}, Refused('permission denied for "s3cr:et" (s3cr%3Aet)\nDETAIL: x'))
    reason = refusal_reason(wrapped, "s3cr:et")
    assert reason == 'Refused (SQLSTATE 42501): permission denied for "***" (***)'
