"""The audit trail's SQLite file holds patients' ids, orders and requests: made by the service, it
and the files SQLite keeps beside it (-wal, -shm, the writers' lock) are readable by its user alone,
whatever the umask lets through (attack22 M1)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store.database import open_database
from service.store.replay import ReplayStore


@pytest.fixture
def open_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}


def test_a_new_sqlite_trail_and_its_side_files_are_private(tmp_path: Path, open_umask: None) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'idds-crd.sqlite3'}")
    try:
        assert ReplayStore(database).claim("https://ehr.example.org", "jti-1", 2_000_000_000, 1)
        with database.connect():  # a connection open: the -wal and -shm files are there
            modes = _modes(tmp_path)
    finally:
        database.close()
    assert {"idds-crd.sqlite3", "idds-crd.sqlite3-wal", "idds-crd.sqlite3-shm"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


def test_an_existing_trail_keeps_the_mode_its_owner_gave_it(tmp_path: Path, open_umask: None) -> None:
    file = tmp_path / "shared.sqlite3"
    open_database(f"sqlite:///{file}").close()
    file.chmod(0o640)  # the operator's choice (a reading group)
    open_database(f"sqlite:///{file}").close()
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
