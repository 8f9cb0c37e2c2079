"""Writes that arrive together share one transaction: a group commit.

Every hook call is recorded, committed, before it is answered, and on an SQLite file each commit
waits for the disk (`synchronous=FULL`) while the writers of every worker take turns
(service/store/writer_turns.py). Under load, calls queue for that turn one commit at a time. Here
the first caller to arrive writes (it leads); callers arriving while it waits for its turn or writes
join the queue, and the next leader, the first of them, writes them all in its one transaction. A
caller returns only when its own write has committed or failed, so nothing is answered before it is
kept, and a call alone costs what it did. When a shared transaction fails on what it writes (an
integrity error, a value that cannot be written), each write is tried again alone, so one bad write
fails only its own call. When the database is unavailable (the leader had no turn to write within
the busy timeout, or the connection failed), every call waiting for that turn fails with it: during
an outage calls are answered 503 together rather than each after a full timeout of its own, and
while the server is left alone after failing to answer (service/store/outage.py) a call fails at
once, not queued behind the one use trying it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from service.store.database import Database
from service.store.errors import StoreUnavailable, kind_of
from service.store.outage import DatabaseResting

Item = TypeVar("Item")
Result = TypeVar("Result")
Write = Callable[[Any, Sequence[Item]], list[Result]]  # (a transaction's connection, items): results in order
UNAVAILABLE = (StoreUnavailable,)  # the database, not the write (no answer, no turn to write: errors.py)


class GroupWriteFailed(RuntimeError):
    """This caller's write was not committed; `cause` is the database error's class name (its `kind`:
    service/store/errors.py), `refusal` the database's reason when it answered refusing writes
    (Database.refusal), else None."""

    def __init__(self, cause: str, refusal: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.refusal = refusal


@dataclass(eq=False)
class _Waiting(Generic[Item, Result]):
    item: Item
    settled: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    written: bool = False
    result: Result | None = None
    failure: str | None = None
    refusal: str | None = None


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
        if self._database.refusing():  # not queued behind the one use trying the server
            raise GroupWriteFailed(DatabaseResting.__name__)
        waiting: _Waiting[Item, Result] = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            waiting.leads = not self._writing
            self._writing = True
        if not waiting.leads:
            waiting.settled.wait()
        if waiting.leads:
            self._lead()
        if not waiting.written:
            raise GroupWriteFailed(waiting.failure or "not written", waiting.refusal)
        return waiting.result  # type: ignore[return-value]  (set with `written`)

    def _lead(self) -> None:
        """Write every waiting item (the leader's own among them), settle each, hand the lead on.
        Whatever ends the write, every item it took, or would have taken, is settled: none is left
        waiting with nobody to lead it."""
        group: list[_Waiting[Item, Result]] = []
        try:
            self._write_group(group)
        finally:
            with self._lock:
                if not group:
                    self._take_into(group)
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
            with self._database.transaction() as connection:
                with self._lock:
                    self._take_into(group)
                results = self._write(connection, [w.item for w in group])
        except Exception as exc:  # the database unavailable, or a write it refused or that failed
            taken = bool(group)
            if not taken:  # no turn to write: the items waiting for it fail with the leader's
                with self._lock:
                    self._take_into(group)
            if taken and len(group) > 1 and not isinstance(exc, UNAVAILABLE):
                self._write_each_alone(group)
            else:
                self._failed(group, exc)
            return
        for waiting, result in zip(group, results, strict=True):
            waiting.result, waiting.written = result, True

    def _take_into(self, group: list[_Waiting[Item, Result]]) -> None:
        """Move every waiting item into `group` (the lock held)."""
        group[:], self._queue = self._queue, []

    def _write_each_alone(self, group: list[_Waiting[Item, Result]]) -> None:
        """Each write in a transaction of its own, its caller answered as soon as it is settled; the
        database becoming unavailable fails the rest at once."""
        for index, waiting in enumerate(group):
            try:
                with self._database.transaction() as connection:
                    waiting.result = self._write(connection, [waiting.item])[0]
                waiting.written = True
            except UNAVAILABLE as exc:
                self._failed(group[index:], exc)
                return
            except Exception as exc:
                self._failed([waiting], exc)
            waiting.settled.set()

    def _failed(self, group: Sequence[_Waiting[Item, Result]], exc: Exception) -> None:
        """Each of `group` failed with `exc` (its class name, and the reason if the database refused)."""
        refusal = self._database.refusal(exc)
        for waiting in group:
            waiting.failure, waiting.refusal = kind_of(exc), refusal
