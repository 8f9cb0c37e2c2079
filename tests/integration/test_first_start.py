"""Replicas starting together on a new database: each creates the tables it finds missing, and
none fails because another is creating them at the same moment (found when the compose
deployment's two replicas first started on a fresh PostgreSQL: one exited with IntegrityError)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from service.store.database import DatabaseError, metadata, open_database
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
    """What each of STARTING_AT_ONCE processes opening `url` at the same moment failed with (a
    process that died or hung counts as a failure)."""
    context = multiprocessing.get_context("fork")
    start, failures = context.Barrier(STARTING_AT_ONCE), context.Queue()
    processes = [context.Process(target=_open, args=(url, start, failures)) for _ in range(STARTING_AT_ONCE)]
    for process in processes:
        process.start()
    found = []
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()
            found.append("hung")
        elif process.exitcode != 0:
            found.append(f"exited with {process.exitcode}")
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


def test_replicas_start_together_on_a_database_that_reads_at_repeatable_read(
    postgres_server: PostgresServer,
) -> None:
    """A replica that waited for another to create the tables sees them, whatever isolation level
    the database's transactions take by default."""
    url = postgres_server.new_database()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            name = connection.execute(text("SELECT current_database()")).scalar_one()
            connection.execute(
                text(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'")
            )
    finally:
        engine.dispose()
    assert_all_start_and_make_every_table(url)


@pytest.mark.parametrize("attempt", range(3))
def test_workers_starting_together_on_a_new_sqlite_file_all_start(tmp_path: Path, attempt: int) -> None:
    assert_all_start_and_make_every_table(f"sqlite:///{tmp_path / 'audit.sqlite3'}")


@pytest.fixture(params=["sqlite-file", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    return str(request.getfixturevalue("postgres_server").new_database())


def made_by_an_earlier_release(url: str, *dropped: tuple[str, str]) -> None:
    """Today's tables at `url` less the `dropped` (table, column)s, as an earlier release made them."""
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            for table, column in dropped:
                connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    finally:
        engine.dispose()


def test_a_column_an_earlier_release_did_not_make_is_added(empty_database: str) -> None:
    """The release before 1ff5ad6 made audit_feedback without who sent each item: before, such a
    database started 'ready' and then refused every feedback call with 503."""
    made_by_an_earlier_release(
        empty_database, ("audit_feedback", "client_iss"), ("audit_feedback", "client_jti")
    )
    database = open_database(empty_database)
    try:
        columns = {c["name"] for c in inspect(database.engine).get_columns("audit_feedback")}
    finally:
        database.close()
    assert {"client_iss", "client_jti"} <= columns


def test_a_required_column_an_earlier_release_did_not_make_stops_start_up_naming_it(
    empty_database: str,
) -> None:
    made_by_an_earlier_release(empty_database, ("audit_cards", "service_id"))
    with pytest.raises(DatabaseError, match=r"the table audit_cards lacks the column\(s\) service_id"):
        open_database(empty_database)


def test_a_database_that_cannot_be_opened_says_why_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    """Before, every such failure read as its kind alone (OperationalError), whatever the cause."""
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{postgres_server.port}/no_such_database"
    with pytest.raises(DatabaseError) as refused:
        open_database(url)
    assert 'database "no_such_database" does not exist' in str(refused.value)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(DatabaseError, match=r"write postgresql\+psycopg://"):
        open_database(url.replace("postgresql+psycopg:", "postgres:"))
