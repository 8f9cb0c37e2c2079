"""Writers of one SQLite file take turns across processes (service/store/writer_turns.py):
a waiting writer is woken by the lock file, not by SQLite's sleeping busy handler."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from service.store.database import Database, DatabaseError, open_database
from service.store.errors import StoreUnavailable
from service.store.tables import seen_tokens
from service.store.writer_turns import WriterTurns

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


def test_a_writer_waits_no_longer_than_its_limit_for_a_turn_held_elsewhere(tmp_path: Path) -> None:
    turns = WriterTurns(f"{tmp_path}/a.writers", wait_seconds=0.2)
    holder = os.open(turns.path, os.O_RDWR | os.O_CREAT)  # another open file: another writer
    fcntl.flock(holder, fcntl.LOCK_EX)
    with pytest.raises(StoreUnavailable, match="no turn to write"), turns.turn():
        pass
    fcntl.flock(holder, fcntl.LOCK_UN)
    with turns.turn():
        pass
    os.close(holder)
    turns.close()


def test_a_lock_file_that_cannot_be_opened_fails_the_write_as_a_database_error(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/audit.sqlite3")  # creating the tables opened it
    assert database.writers is not None
    database.writers.close()  # as a forked worker starts: it opens the file afresh
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "audit.sqlite3.writers").unlink()
    (tmp_path / "audit.sqlite3.writers").symlink_to(tmp_path / "elsewhere")  # never followed
    with pytest.raises(StoreUnavailable, match="lock file"), database.begin() as connection:
        connection.execute(insert(seen_tokens), {"iss": "x", "jti": "1", "expires_at": 1})
    database.close()
    with pytest.raises(DatabaseError, match="WriterTurnUnavailable"):
        open_database(f"sqlite:///{tmp_path}/audit.sqlite3")


def test_closing_the_database_closes_its_lock_file(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/audit.sqlite3")
    with database.begin() as connection:
        connection.execute(insert(seen_tokens), {"iss": "x", "jti": "1", "expires_at": 1})
    lock_file = f"{tmp_path}/audit.sqlite3.writers"
    assert lock_file in _open_files()
    database.close()
    assert lock_file not in _open_files()


def test_a_database_that_cannot_be_opened_leaves_no_file_open(tmp_path: Path) -> None:
    (tmp_path / "audit.sqlite3").mkdir()  # a directory where the database file should be
    for _ in range(3):
        with pytest.raises(DatabaseError):
            open_database(f"sqlite:///{tmp_path}/audit.sqlite3")
    assert {name for name in _open_files() if name.startswith(str(tmp_path))} == set()


def _open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
    return found
