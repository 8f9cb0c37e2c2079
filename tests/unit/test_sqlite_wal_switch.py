"""Workers opening a new SQLite file at once each switch it to WAL; SQLite may answer one switch
"database is locked" at once, without its busy handler (2 starts in 100 of six at once failed so in
tests/integration/test_first_start.py): the switch is tried again within the busy timeout."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from service.store.database import sqlite_pragmas


class SwitchRefusedAtFirst:
    """A DB-API connection whose cursor refuses the WAL switch `refusals` times, as SQLite does."""

    def __init__(self, refusals: int, code: int = sqlite3.SQLITE_BUSY) -> None:
        self.refusals, self.code, self.executed = refusals, code, []

    def cursor(self) -> SwitchRefusedAtFirst:
        return self

    def execute(self, sql: str) -> None:
        if sql == "PRAGMA journal_mode=WAL" and self.refusals:
            self.refusals -= 1
            refused = sqlite3.OperationalError("database is locked")
            refused.sqlite_errorcode = self.code  # type: ignore[attr-defined]
            raise refused
        self.executed.append(sql)

    def close(self) -> None:
        pass


def test_a_wal_switch_refused_as_busy_is_tried_again() -> None:
    connection: Any = SwitchRefusedAtFirst(refusals=3)
    sqlite_pragmas(connection)
    assert connection.executed[0] == "PRAGMA journal_mode=WAL"
    assert "PRAGMA synchronous=FULL" in connection.executed


def test_any_other_refusal_of_the_switch_is_not_retried() -> None:
    connection: Any = SwitchRefusedAtFirst(refusals=1, code=sqlite3.SQLITE_READONLY)
    with pytest.raises(sqlite3.OperationalError):
        sqlite_pragmas(connection)
