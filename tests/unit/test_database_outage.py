"""A database server that failed to answer is left alone for a moment, then tried by one use at a
time: during an outage uses fail at once instead of each waiting out its own timeout."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from service.store.errors import StoreError, mapped
from service.store.outage import DatabaseResting, DatabaseTimedOut, Outage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lost() -> StoreError:
    return mapped(OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")))


def fail_with(outage: Outage, error: Exception) -> None:
    with pytest.raises(type(error)), outage.use():
        raise error


def used(outage: Outage) -> bool:
    """Whether a use ran (False: refused at once, its body never run)."""
    ran = False
    try:
        with outage.use():
            ran = True
    except DatabaseResting:
        return False
    return ran


def test_after_a_failure_to_answer_uses_fail_at_once_until_the_rest_is_over() -> None:
    clock = Clock()
    outage = Outage(1.0, clock)
    assert used(outage) and not outage.refusing()
    fail_with(outage, lost())
    assert outage.refusing()
    clock.now += 0.9
    assert not used(outage)
    clock.now += 0.1
    assert not outage.refusing()
    assert used(outage)
    assert used(outage) and not outage.refusing(), "the server answered: the rest is over"


@pytest.mark.parametrize("error", [lost(), DatabaseTimedOut("no answer in time")], ids=["lost", "timed-out"])
def test_while_one_use_tries_the_server_after_the_rest_the_others_fail_at_once(error: Exception) -> None:
    clock = Clock()
    outage = Outage(1.0, clock)
    fail_with(outage, error)
    clock.now += 1.0
    with pytest.raises(type(error)), outage.use():
        assert outage.refusing()
        assert not used(outage), "a second use while the first tries the server"
        raise error
    assert outage.refusing(), "the try failed: another rest"
    clock.now += 0.5
    assert not used(outage)
    clock.now += 0.5
    assert used(outage) and used(outage)


def test_a_use_refused_on_what_it_wrote_was_answered() -> None:
    """An integrity error (or any failure of the use's own) is the server answering: no rest, and
    after a rest such a try ends it."""
    clock = Clock()
    outage = Outage(1.0, clock)
    fail_with(outage, mapped(IntegrityError("INSERT", {}, Exception("duplicate key"))))
    assert not outage.refusing() and used(outage)
    fail_with(outage, lost())
    clock.now += 1.0
    fail_with(outage, ValueError("not writable"))
    assert not outage.refusing() and used(outage)


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = Outage(1.0, clock)
    with caplog.at_level(logging.INFO, logger="service.store.outage"):
        for _ in range(3):
            fail_with(outage, lost())
            clock.now += 1.0
        assert used(outage) and used(outage)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [
        ("WARNING", "database: the server does not answer; uses fail at once for 1 s, then one tries it"),
        ("INFO", "database: the server answers again"),
    ]


class SentByServer(Exception):
    """A driver error carrying the SQLSTATE the server sent (psycopg's `sqlstate`)."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["55P03", "57014", "40P01", "40001"])
def test_an_error_the_server_sent_about_the_use_is_an_answer(sqlstate: str) -> None:
    """A lock or statement timeout, a deadlock, a serialization failure: the server answered."""
    outage = Outage(1.0, Clock())
    fail_with(outage, mapped(OperationalError("INSERT", {}, SentByServer(sqlstate))))
    assert not outage.refusing() and used(outage)


@pytest.mark.parametrize("sqlstate", ["08006", "53300", "57P01", "57P03"])
def test_an_error_saying_the_server_cannot_serve_starts_the_rest(sqlstate: str) -> None:
    outage = Outage(1.0, Clock())
    fail_with(outage, mapped(OperationalError("SELECT 1", {}, SentByServer(sqlstate))))
    assert outage.refusing()
