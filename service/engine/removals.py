"""Whether a removal undoes what it would take out: one rule for the pump's kind and the device check.

The pump's kind (engine/classify: contract §2, "a completed Procedure 62360-62362 with no later 62365") and
the device check (engine/checks/devices: contract §3, "a completed implant Procedure with no later removal")
both weigh the removals of a record, read and left out of the record alike, against what they would undo,
so the weighing is here once. What each counts as later on one day stays its own (`undone_by`'s
`same_day`): a refill is answered by a removal of its day, an implant is not.

A removal and what it would undo whose dates cannot tell which came first (either one undated, or written
to a month or a year its other's day may fall on either side of: `undone_by`) neither clears it nor is
passed over: whether it is in place is left open, as it is for a removal that could not be read, and the
card says why in a few words ("removal CPT 33233 (undated) may have come later"). Before, a
read removal with no date undid nothing, where one left out left the implant open, and an undated implant
was undone by any dated removal in the device check but by none in the pump's (the lead's decision, s31, of
review30a L2). A presence diagnosis (Z95.0, Z45.1, a T85) is weighed as an implant is: a removal read on a
later day clears it, one the dates cannot place or one left out of the record leaves it open (the lead's
decision, s31, of review31a M2; before, it stood as written beside such a removal, and an undated Z95.0
was "not covered" beside a removal of 2023 the card never named). An active Device stands as written: it
carries no date a removal could follow, and only marking it inactive clears it, so it is not weighed here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

from service.codes import CPT, code_words
from service.engine.chart_days import day_order, days_written, one_day
from service.fhirdates import human_date_to
from service.record import MAY_BE_LATER, PatientRecord

# whether a removal dated so (None: undated), written to that precision, undoes the record weighed: True,
# False, or None when the dates cannot tell
Undone = Callable[[datetime | None, str], bool | None]
Item = TypeVar("Item")
_UNDATED = datetime.min.replace(tzinfo=UTC)


def undone_by(put_in: datetime | None, put_in_to: str, same_day: bool) -> Undone:
    """The rule a removal is weighed by against a record dated `put_in` (None: undated), written to
    `put_in_to` (`fhirdates.precision`): on a later day it undoes it, on the same day when `same_day`
    says so, on an earlier one not. When either date is missing, or either is written to a month or a year
    only and their days overlap so that it may be on either side (a Z95.0 of "2023-02" and a removal of 15
    February 2023), the dates cannot tell (None): a coarser date is the same uncertainty as none (the lead's
    decision, s32, of review31f L4; before, overlapping days were one day's, and a removal of 15 February
    undid nothing of February's implant, an implant of one the pump's kind set aside). Two dates each of
    one day (a date or a moment) on the same day stay one day's: `same_day` decides (review24c). Which day
    each is on is `chart_days.day_order`'s."""

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
    """Whether a removal on one of the days `removed` (first, last) undoes a record on one of the days
    `put_in`, days that overlap: True when it does on every pair of them (its first day is the record's
    last, and `same_day`), False when on none (its last day is the record's first, and not `same_day`),
    else None: the dates cannot tell."""
    if same_day and removed[0] >= put_in[1]:
        return True
    if not same_day and removed[1] <= put_in[0]:
        return False
    return None


@dataclass(frozen=True)
class Read(Generic[Item]):
    """A removal read from the record that would undo the record weighed, were it later: its date (None:
    undated), how it is written, its CPT code, and the caller's own item for it."""

    when: datetime | None
    written_to: str
    code: str
    item: Item


@dataclass(frozen=True)
class Weighed(Generic[Item]):
    """What the removals make of a record: the latest removal read that undoes it (None: none does), and,
    when none does, why whether one did cannot be told ("" when it can: it is in place), and whether that is
    a removal left out of the record (`left_out`: the record says why, `could_not_check`) or one read that
    the dates cannot place (`may_be_later`; `may_undo`, the caller's item for it)."""

    removed: Item | None = None
    unsure: str = ""
    left_out: bool = False
    # the removal read that leaves it open, which `unsure` names (None: none read does): evidence of why,
    # as a removal that clears it is (review31a L5)
    may_undo: Item | None = None


def weigh(
    undone: Undone, read: Sequence[Read[Item]], record: PatientRecord, undoers: Collection[str]
) -> Weighed[Item]:
    """The removals `read` weighed against a record by `undone` (`undone_by`): the latest that undoes it
    clears it; else one left out of the record that may (`PatientRecord.removal_unread`), or one read whose
    date or the record's cannot tell which came first, leaves it open, with why. `undoers`: the removal
    codes that may leave it open (none: nothing does)."""
    undoing = [r for r in read if undone(r.when, r.written_to)]
    if undoing:
        return Weighed(max(undoing, key=lambda r: r.when or _UNDATED).item)
    if undoers and (why := record.removal_unread(undoers, undone)) is not None:
        return Weighed(unsure=why, left_out=True)
    open_ = [r for r in read if r.code in undoers and undone(r.when, r.written_to) is None]
    if not open_:
        return Weighed()
    latest = max(open_, key=lambda r: r.when or _UNDATED)
    return Weighed(unsure=may_be_later(latest), may_undo=latest.item)


def may_be_later(removal: Read[Item]) -> str:
    """Why a removal read leaves what it would undo open: "removal CPT 33233 (undated) may have come
    later", or with its day where the record weighed is the undated one; a card says it after the implant
    it may have undone ("implant CPT 33206 (2 Feb 2019), but removal CPT 33233 (undated) …")."""
    day = human_date_to(removal.when, removal.written_to) if removal.when else "undated"
    return f"removal {code_words(CPT, removal.code)} ({day}) {MAY_BE_LATER}"
