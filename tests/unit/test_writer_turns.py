"""Writers of one SQLite file take turns across processes (service/store/database.py `WriterTurns`):
a waiting writer is woken by the lock file, not by SQLite's sleeping busy handler."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import insert, select

from service.store.database import Database, open_database
from service.store.tables import seen_tokens

FORK = multiprocessing.get_context("fork")
PAUSE = 0.3  # seconds the holder keeps its turn after the other process has asked for one


def _take_turn_when_told(
    database: Database, asking: Event, released: Event, entered_after_release: Event
) -> None:
    database.engine.dispose(close=False)  # SQLAlchemy's advice for a pool inherited through fork
    asking.set()
    with database.begin() as connection:
        if released.is_set():
            entered_after_release.set()
        connection.execute(insert(seen_tokens), {"iss": "child", "jti": "1", "expires_at": 1})


def test_a_forked_process_waits_for_the_writer_holding_the_turn(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/audit.sqlite3")
    assert database.writers is not None
    asking, released, entered_after_release = FORK.Event(), FORK.Event(), FORK.Event()
    with database.begin() as connection:  # the parent opens its lock file before the fork
        connection.execute(insert(seen_tokens), {"iss": "parent", "jti": "1", "expires_at": 1})
    with database.begin() as connection:
        child = FORK.Process(
            target=_take_turn_when_told, args=(database, asking, released, entered_after_release)
        )
        child.start()
        assert asking.wait(30)
        time.sleep(PAUSE)  # room for a child that does not wait to write now (and fail the test)
        connection.execute(insert(seen_tokens), {"iss": "parent", "jti": "2", "expires_at": 1})
        released.set()
    child.join(30)
    assert child.exitcode == 0
    assert entered_after_release.is_set(), "the child wrote while the parent held the turn"
    with database.connect() as connection:
        kept = {(row.iss, row.jti) for row in connection.execute(select(seen_tokens))}
    assert kept == {("parent", "1"), ("parent", "2"), ("child", "1")}
    assert Path(f"{tmp_path}/audit.sqlite3.writers").exists()


def test_memory_and_server_databases_take_no_file_turns(tmp_path: Path) -> None:
    assert open_database("sqlite://").writers is None
    assert open_database("sqlite:///:memory:").writers is None
    relative = open_database(f"sqlite:///{tmp_path}/a.sqlite3")
    assert relative.writers is not None and relative.writers.path == f"{tmp_path}/a.sqlite3.writers"
