"""A worker forked after its parent created and checked the database's tables and let its children trust
that (`idds-crd serve`'s master, before forking) does not check them again (service/store/database.py);
the same process opening the database again, a child finding another SQLite file there, and the child of
a process that did not say so (a test forking replicas, the CLI) still do."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from service.store import database


def in_a_child(check: Callable[[], bool]) -> bool:
    """`check()` run in a forked child: its answer (False if it raised)."""
    child = os.fork()
    if child == 0:
        try:
            answer = check()
        except BaseException:
            answer = False
        os._exit(0 if answer else 1)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables' checks made, by URL (the real ones still run)."""
    made: list[str] = []
    real = database._create_tables

    def counted(engine, writers):  # type: ignore[no-untyped-def]
        made.append(str(engine))
        real(engine, writers)

    monkeypatch.setattr(database, "_create_tables", counted)
    monkeypatch.setattr(database, "_TABLES_CHECKED", {}, raising=False)
    return made


def tables(file: Path) -> set[str]:
    with sqlite3.connect(file) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def opened_for_children(url: str) -> None:
    """What serve's master does before it forks its workers."""
    opened = database.open_database(url)
    database.tables_checked_for_children(url, opened)
    opened.close()


def test_a_child_of_the_process_that_checked_the_tables_does_not_check_them(
    tmp_path: Path, checks: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    opened_for_children(url)
    assert len(checks) == 1

    def child_opens_without_checking() -> bool:
        opened = database.open_database(url)
        try:
            with opened.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM audit_records").one()
        finally:
            opened.close()
        return len(checks) == 1

    assert in_a_child(child_opens_without_checking)


def test_the_same_process_opening_the_database_again_checks_again(tmp_path: Path, checks: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    opened_for_children(url)
    database.open_database(url).close()
    assert len(checks) == 2


def test_the_child_of_a_process_that_did_not_say_so_checks(tmp_path: Path, checks: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    database.open_database(url).close()
    assert in_a_child(lambda: (database.open_database(url).close(), len(checks) == 2)[1])


def test_a_child_finding_another_file_there_checks_and_creates_the_tables(
    tmp_path: Path, checks: list[str]
) -> None:
    file = tmp_path / "audit.sqlite3"
    url = f"sqlite:///{file}"
    opened_for_children(url)
    replacement = tmp_path / "restored.sqlite3"
    sqlite3.connect(replacement).close()
    keep_inode_busy = file.rename(tmp_path / "old.sqlite3")  # the old inode stays: never reused here
    replacement.rename(file)

    def child_checks() -> bool:
        database.open_database(url).close()
        return len(checks) == 2 and "audit_records" in tables(file)

    assert in_a_child(child_checks)
    assert keep_inode_busy.exists()


def test_memory_databases_are_always_checked(checks: list[str]) -> None:
    opened_for_children("sqlite://")
    assert in_a_child(lambda: (database.open_database("sqlite://").close(), len(checks) == 2)[1])


def test_a_child_finding_the_file_restored_in_place_with_another_schema_checks_it(
    tmp_path: Path, checks: list[str]
) -> None:
    """A trail restored from a backup over the same file (its inode kept) after the master checked the
    tables: the worker finds a schema other than the one the master left, and checks (review22c L1).
    Here the backup's feedback table lacks a column a later release added: the check adds it."""
    file = tmp_path / "audit.sqlite3"
    url = f"sqlite:///{file}"
    backup = tmp_path / "backup.sqlite3"
    database.open_database(f"sqlite:///{backup}").close()
    older = sqlite3.connect(backup)
    older.execute("ALTER TABLE audit_feedback DROP COLUMN client_jti")
    older.close()  # the last connection: its WAL is written into the file
    opened_for_children(url)
    inode = file.stat().st_ino
    file.write_bytes(backup.read_bytes())  # in place: the same inode
    assert file.stat().st_ino == inode

    def child_checks() -> bool:
        database.open_database(url).close()
        with sqlite3.connect(file) as connection:
            columns = {row[1] for row in connection.execute("PRAGMA table_info(audit_feedback)")}
        return len(checks) == 3 and "client_jti" in columns

    assert in_a_child(child_checks)


def test_a_child_finding_the_schema_its_parent_left_trusts_the_check(
    tmp_path: Path, checks: list[str]
) -> None:
    file = tmp_path / "audit.sqlite3"
    url = f"sqlite:///{file}"
    opened_for_children(url)
    writer = sqlite3.connect(file)
    writer.execute("INSERT INTO seen_tokens VALUES ('iss', 'jti', 1)")  # rows, not the schema, changed since
    writer.commit()
    writer.close()
    assert in_a_child(lambda: (database.open_database(url).close(), len(checks) == 1)[1])


def feedback_columns(file: Path) -> set[str]:
    with sqlite3.connect(file) as connection:
        return {row[1] for row in connection.execute("PRAGMA table_info(audit_feedback)")}


def test_a_child_on_an_sqlite_url_with_driver_options_checks_a_trail_restored_in_place(
    tmp_path: Path, checks: list[str]
) -> None:
    """The same restore as above, where store.url names a driver option (`?timeout=`: opened through
    SQLAlchemy, service/store/engines.py): the master keeps the file's schema for that URL too, and
    the worker that finds another one checks the tables rather than trusting the inode alone."""
    file = tmp_path / "audit.sqlite3"
    url = f"sqlite:///{file}?timeout=20"
    backup = tmp_path / "backup.sqlite3"
    database.open_database(f"sqlite:///{backup}").close()
    older = sqlite3.connect(backup)
    older.execute("ALTER TABLE audit_feedback DROP COLUMN client_jti")
    older.close()
    opened_for_children(url)
    inode = file.stat().st_ino
    file.write_bytes(backup.read_bytes())
    assert file.stat().st_ino == inode

    def child_checks() -> bool:
        database.open_database(url).close()
        return "client_jti" in feedback_columns(file)

    assert in_a_child(child_checks)


def test_a_child_on_an_sqlite_url_with_driver_options_trusts_the_schema_its_parent_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.store import engines

    made: list[object] = []
    real = engines.create_tables
    monkeypatch.setattr(engines, "create_tables", lambda *args: (made.append(args), real(*args))[1])
    monkeypatch.setattr(database, "_TABLES_CHECKED", {}, raising=False)
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}?timeout=20"
    opened_for_children(url)
    assert in_a_child(lambda: (database.open_database(url).close(), len(made) == 1)[1])
