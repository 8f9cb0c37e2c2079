"""The removal weighing read pair by pair, as it was before engine/removals.py indexed removals by day
(dates33, s33): each removal asked of each record, the simple reading the indexed one must agree with
everywhere (tests/unit/test_removals_indexed.py). Kept apart from the service so that the test compares two
readings, not one with itself."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime
from typing import TypeVar

from service.engine.chart_days import day_order, days_written, one_day
from service.engine.removals import Read, Weighed, may_be_later
from service.record import REMOVALS, PatientRecord

Item = TypeVar("Item")
PairRule = Callable[[datetime | None, str], bool | None]
_UNDATED = datetime.min.replace(tzinfo=UTC)


def undone_by(put_in: datetime | None, put_in_to: str, same_day: bool) -> PairRule:
    """Whether a removal dated so undoes a record dated `put_in` (`put_in_to`): True, False, None (the dates
    cannot tell), one pair at a time."""

    def undone(removed: datetime | None, removed_to: str) -> bool | None:
        if removed is None or put_in is None:
            return None
        order = day_order(removed, put_in, removed_to, put_in_to)
        if order:
            return order > 0
        if one_day(removed_to) and one_day(put_in_to):
            return same_day
        return _within(days_written(removed, removed_to), days_written(put_in, put_in_to), same_day)

    return undone


def _within(removed: tuple[date, date], put_in: tuple[date, date], same_day: bool) -> bool | None:
    if same_day and removed[0] >= put_in[1]:
        return True
    if not same_day and removed[1] <= put_in[0]:
        return False
    return None


def weigh_each(
    undone: PairRule, read: Sequence[Read[Item]], record: PatientRecord, undoers: Collection[str]
) -> Weighed[Item]:
    """`Removals.weigh` read pair by pair: the removals of `undoers` among `read` against one record."""
    read = [r for r in read if r.code in undoers]
    undoing = [r for r in read if undone(r.when, r.written_to)]
    if undoing:
        return Weighed(max(undoing, key=lambda r: r.when or _UNDATED).item)
    if undoers and (why := _unread(record, undoers, undone)) is not None:
        return Weighed(unsure=why, left_out=True)
    open_ = [r for r in read if undone(r.when, r.written_to) is None]
    if not open_:
        return Weighed()
    latest = max(open_, key=lambda r: r.when or _UNDATED)
    return Weighed(unsure=may_be_later(latest), may_undo=latest.item)


def _unread(record: PatientRecord, codes: Collection[str], undone: PairRule) -> str | None:
    """Why a removal left out may undo it: each left out asked."""
    kept = tuple(codes)
    if REMOVALS not in record.unavailable:
        kept = tuple(
            code
            for code in kept
            if code not in record.removals_left_out
            or any(undone(when, to) is not False for when, to in record.removals_left_out[code])
        )
    return record.unread(REMOVALS, kept) if kept else None
