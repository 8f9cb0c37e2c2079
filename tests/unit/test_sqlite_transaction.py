"""`Database.transaction` on an SQLite store (service/store/database.py): the standard library's
connection, committed when the block ends, rolled back on any failure, a commit's own failure
included, so that the process's one connection is never left inside a transaction."""

from __future__ import annotations

import pytest

from service.store.database import open_database
from service.store.errors import DuplicateKey, StoreError


def test_a_failure_in_the_block_rolls_back_and_the_next_transaction_starts_clean() -> None:
    database = open_database("sqlite://")
    assert database.connection is not None
    with pytest.raises(DuplicateKey), database.transaction() as connection:
        connection.execute("INSERT INTO seen_tokens VALUES ('iss', 'jti', 1)")
        connection.execute("INSERT INTO seen_tokens VALUES ('iss', 'jti', 1)")
    assert not database.connection.in_transaction
    with database.transaction() as connection:
        assert connection.execute("SELECT count(*) FROM seen_tokens").fetchone() == (0,)
    database.close()


def test_a_commit_that_fails_is_rolled_back() -> None:
    """SQLite keeps a transaction open after a COMMIT it refused (here a deferred foreign key)."""
    database = open_database("sqlite://")
    assert database.connection is not None
    database.connection.execute("PRAGMA foreign_keys = ON")
    database.connection.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    database.connection.execute("CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(StoreError, match="FOREIGN KEY"), database.transaction() as connection:
        connection.execute("INSERT INTO c VALUES (1)")
    assert not database.connection.in_transaction
    with database.transaction() as connection:
        assert connection.execute("SELECT count(*) FROM c").fetchone() == (0,)
    database.close()
