"""Replicas starting together on a new database: each creates the tables it finds missing, and
none fails because another is creating them at the same moment (found when the compose
deployment's two replicas first started on a fresh PostgreSQL: one exited with IntegrityError)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import inspect

from service.store.database import metadata, open_database
from tests.postgres_support import PostgresServer

pytestmark = pytest.mark.integration

STARTING_AT_ONCE = 6


def _open(url: str, start: multiprocessing.synchronize.Barrier, failures: multiprocessing.Queue) -> None:
    start.wait()
    try:
        open_database(url).close()
    except Exception as exc:  # reported to the test, which names it
        failures.put(f"{type(exc).__name__}: {exc}")


def replicas_start_together(url: str) -> list[str]:
    """What each of STARTING_AT_ONCE processes opening `url` at the same moment failed with."""
    context = multiprocessing.get_context("fork")
    start, failures = context.Barrier(STARTING_AT_ONCE), context.Queue()
    processes = [context.Process(target=_open, args=(url, start, failures)) for _ in range(STARTING_AT_ONCE)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    found = []
    while not failures.empty():
        found.append(failures.get())
    return found


def assert_all_start_and_make_every_table(url: str) -> None:
    assert replicas_start_together(url) == []
    database = open_database(url)
    try:
        assert set(inspect(database.engine).get_table_names()) == set(metadata.tables)
    finally:
        database.close()


@pytest.mark.parametrize("attempt", range(3))
def test_replicas_starting_together_on_a_new_postgresql_database_all_start(
    postgres_server: PostgresServer, attempt: int
) -> None:
    assert_all_start_and_make_every_table(postgres_server.new_database())


@pytest.mark.parametrize("attempt", range(3))
def test_workers_starting_together_on_a_new_sqlite_file_all_start(tmp_path: Path, attempt: int) -> None:
    assert_all_start_and_make_every_table(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
