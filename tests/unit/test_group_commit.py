"""Writes arriving together share one transaction, each caller still learns its own outcome, and
one bad write, a failing database or a broken write never fails or strands the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.store.errors import mapped
from service.store.group_commit import GroupCommit, GroupWriteFailed


class Transactions:
    """A stand-in database: counts transactions, can hold the first one back until released, can be
    down or left alone after an outage (`resting`), and keeps what each committed transaction wrote."""

    def __init__(self) -> None:
        self.begun = 0
        self.committed: list[list[Any]] = []
        self.down = False
        self.resting = False
        self.raising: list[BaseException | None] = []  # raised by the next transactions, in turn
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()
        self._pending: list[Any] | None = None

    def refusing(self) -> bool:
        return self.resting

    def refusal(self, _failure: BaseException) -> str | None:
        return None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        self.begun += 1
        self.holding.set()
        self.hold.wait(5)
        if self.down:
            raise mapped(OperationalError("BEGIN", {}, Exception("database is locked")))
        raised = self.raising.pop(0) if self.raising else None
        if raised is not None:
            raise raised
        self._pending = []
        yield self
        self.committed.append(self._pending)

    def write(self, _connection: Any, items: Sequence[str]) -> list[str]:
        if any(item == "broken" for item in items):
            raise TypeError("not writable")
        if len(items) > 1 and "duplicate" in items:
            raise mapped(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
        if items == ["duplicate"]:
            raise mapped(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
        assert self._pending is not None
        self._pending += items
        return [f"id-{item}" for item in items]


def queued(group: GroupCommit[str, str]) -> int:
    with group._lock:
        return len(group._queue)


class Caller(threading.Thread):
    """One caller committing one item on a daemon thread: a caller left waiting fails the test
    instead of hanging the suite."""

    def __init__(self, group: GroupCommit[str, str], item: str) -> None:
        super().__init__(daemon=True)
        self.group, self.item = group, item
        self.outcome: Any = None
        self.start()

    def run(self) -> None:
        try:
            self.outcome = self.group.commit(self.item)
        except GroupWriteFailed as exc:
            self.outcome = exc

    def settled(self) -> Any:
        self.join(5)
        assert not self.is_alive(), f"the caller of {self.item!r} was never answered"
        return self.outcome


def settled(group: GroupCommit[str, str], item: str) -> Any:
    return Caller(group, item).settled()


def commit_together(database: Transactions, items: list[str]) -> list[Any]:
    """Commit `items` from one thread each while the first transaction is held back until every
    other item is waiting; each item's result, or the GroupWriteFailed it raised."""
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    database.hold.clear()
    first = Caller(group, items[0])
    assert database.holding.wait(5)
    rest = [Caller(group, item) for item in items[1:]]
    deadline = time.monotonic() + 5
    while queued(group) < len(items) and time.monotonic() < deadline:
        time.sleep(0.001)
    database.hold.set()
    return [caller.settled() for caller in [first, *rest]]


def test_a_write_alone_is_committed_in_its_own_transaction() -> None:
    database = Transactions()
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    assert group.commit("a") == "id-a"
    assert group.commit("b") == "id-b"
    assert database.committed == [["a"], ["b"]]


def test_writes_arriving_while_one_waits_for_its_turn_share_the_next_transaction() -> None:
    database = Transactions()
    results = commit_together(database, ["first", "b", "c", "d"])
    assert results == ["id-first", "id-b", "id-c", "id-d"]
    assert database.committed == [["first", "b", "c", "d"]]  # the first waits for its turn with the rest
    assert database.begun == 1


def test_one_bad_write_in_a_shared_transaction_fails_only_its_own_caller() -> None:
    database = Transactions()
    results = commit_together(database, ["a", "duplicate", "c"])
    assert results[0] == "id-a" and results[2] == "id-c"
    assert isinstance(results[1], GroupWriteFailed) and results[1].cause == "IntegrityError"
    assert sorted(item for items in database.committed for item in items) == ["a", "c"]


def test_a_database_that_is_down_fails_every_waiting_caller_then_writing_resumes() -> None:
    database = Transactions()
    database.down = True
    results = commit_together(database, ["a", "b", "c"])
    assert all(isinstance(r, GroupWriteFailed) and r.cause == "OperationalError" for r in results)
    database.down = False
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    assert settled(group, "d") == "id-d"


def test_a_database_left_alone_after_an_outage_fails_a_caller_at_once_without_a_transaction() -> None:
    """Not queued behind the one use trying the server (service/store/outage.py): such a caller
    would hold its request thread until that use's timeout."""
    database = Transactions()
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    database.resting = True
    refused = settled(group, "a")
    assert isinstance(refused, GroupWriteFailed) and refused.cause == "DatabaseResting"
    assert database.begun == 0
    database.resting = False
    assert settled(group, "b") == "id-b"


def test_a_write_that_raises_strands_no_caller_and_the_next_commit_proceeds() -> None:
    database = Transactions()
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    with pytest.raises(GroupWriteFailed) as failed:
        group.commit("broken")
    assert failed.value.cause == "TypeError"
    assert settled(group, "e") == "id-e"
    results = commit_together(database, ["x", "broken", "y"])
    assert results[0] == "id-x" and results[2] == "id-y"
    assert isinstance(results[1], GroupWriteFailed) and results[1].cause == "TypeError"


def test_many_threads_each_get_their_own_result_and_every_write_is_kept_once() -> None:
    database = Transactions()
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    items = [f"item{n}" for n in range(200)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(group.commit, items))
    assert results == [f"id-{item}" for item in items]
    assert sorted(item for items in database.committed for item in items) == sorted(items)
    assert not group._queue and not group._writing


def test_a_failure_of_any_kind_before_the_turn_is_had_fails_the_waiting_callers_and_strands_none() -> None:
    database = Transactions()
    database.raising = [mapped(PoolTimeout("QueuePool limit reached"))]
    results = commit_together(database, ["a", "b", "c"])
    assert all(isinstance(r, GroupWriteFailed) and r.cause == "TimeoutError" for r in results)
    group: GroupCommit[str, str] = GroupCommit(database, database.write)  # type: ignore[arg-type]
    database.raising = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        group.commit("d")
    assert not group._queue and not group._writing
    assert settled(group, "e") == "id-e"
    assert database.committed == [["e"]]


def test_the_database_failing_while_each_write_is_tried_alone_fails_the_rest_at_once() -> None:
    database = Transactions()
    lost = mapped(OperationalError("BEGIN", {}, Exception("disk I/O error")))
    database.raising = [None, None, lost]  # the shared transaction, "a" alone, then the database is gone
    results = commit_together(database, ["a", "duplicate", "c", "d"])
    assert results[0] == "id-a"
    assert [r.cause for r in results[1:] if isinstance(r, GroupWriteFailed)] == ["OperationalError"] * 3
    assert database.begun == 3  # not one more for each write left
