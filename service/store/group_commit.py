"""Writes that arrive together share one transaction: a group commit.

Every hook call is recorded, committed, before it is answered, and on an SQLite file each commit
waits for the disk (`synchronous=FULL`) while the writers of every worker take turns
(service/store/writer_turns.py). Under load, calls queue for that turn one commit at a time. Here
the first caller to arrive writes (it leads); callers arriving while it waits for its turn or writes
join the queue, and the next leader, the first of them, writes them all in its one transaction. A
caller returns only when its own write has committed or failed, so nothing is answered before it is
kept, and a call alone costs what it did. When a shared transaction fails on what it writes (an
integrity error, a value that cannot be written), each write is tried again alone, so one bad write
fails only its own call; when the database is unavailable, every waiting call fails at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from service.store.database import Database
from service.store.writer_turns import WriterTurnUnavailable

Item = TypeVar("Item")
Result = TypeVar("Result")
Write = Callable[[Connection, Sequence[Item]], list[Result]]  # results in the items' order
UNAVAILABLE = (OperationalError, InterfaceError, WriterTurnUnavailable)  # the database, not the write


class GroupWriteFailed(RuntimeError):
    """This caller's write was not committed; `cause` is the database error's class name."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass(eq=False)
class _Waiting(Generic[Item, Result]):
    item: Item
    settled: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    written: bool = False
    result: Result | None = None
    failure: str | None = None


class GroupCommit(Generic[Item, Result]):
    """`commit(item)` writes `item` with `write` in a transaction shared with the items other threads
    commit at the same moment, and returns its result once committed (GroupWriteFailed if not)."""

    def __init__(self, database: Database, write: Write[Item, Result]) -> None:
        self._database = database
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[_Waiting[Item, Result]] = []
        self._writing = False

    def commit(self, item: Item) -> Result:
        waiting: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            waiting.leads = not self._writing
            self._writing = True
        if not waiting.leads:
            waiting.settled.wait()
        if waiting.leads:
            self._lead()
        if waiting.failure is not None:
            raise GroupWriteFailed(waiting.failure)
        return waiting.result  # type: ignore[return-value]  (set whenever no failure is)

    def _lead(self) -> None:
        """Write every waiting item (the leader's own among them), settle each, hand the lead on."""
        group: list[_Waiting[Item, Result]] = []
        try:
            self._write_group(group)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].leads = True
                    self._queue[0].settled.set()
                else:
                    self._writing = False
            for waiting in group:
                waiting.leads = False
                if not waiting.written and waiting.failure is None:
                    waiting.failure = "not written"
                waiting.settled.set()

    def _write_group(self, group: list[_Waiting[Item, Result]]) -> None:
        """Take the waiting items into `group` once the turn to write is ours (late arrivals join)
        and write them in one transaction."""
        try:
            with self._database.begin() as connection:
                group += self._take()
                results = self._write(connection, [w.item for w in group])
            for waiting, result in zip(group, results, strict=True):
                waiting.result, waiting.written = result, True
        except UNAVAILABLE as exc:
            group += [] if group else self._take()
            for waiting in group:
                waiting.failure = type(exc).__name__
        except Exception as exc:  # a write the database refused, or one that could not be made
            for waiting in group:
                if len(group) > 1:
                    self._write_alone(waiting)
                else:
                    waiting.failure = type(exc).__name__

    def _take(self) -> list[_Waiting[Item, Result]]:
        with self._lock:
            group, self._queue = self._queue, []
        return group

    def _write_alone(self, waiting: _Waiting[Item, Result]) -> None:
        try:
            with self._database.begin() as connection:
                waiting.result = self._write(connection, [waiting.item])[0]
            waiting.written = True
        except Exception as exc:
            waiting.failure = type(exc).__name__
