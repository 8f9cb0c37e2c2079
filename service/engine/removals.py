"""Whether a removal undoes what it would take out: one rule for the pump's kind and the device check.

The pump's kind (engine/classify: contract §2, "a completed Procedure 62360-62362 with no later 62365") and
the device check (engine/checks/devices: contract §3, "a completed implant Procedure with no later removal")
both weigh the removals of a record, read and left out of the record alike, against what they would undo,
so the weighing is here once (`Removals`, each code's removals indexed by day). What each counts as later
on one day stays its own (`Undone`'s `same_day`): a refill is answered by a removal of its day, an implant
is not.

A removal and what it would undo whose dates cannot tell which came first (either one undated, or written
to a month or a year its other's day may fall on either side of: `Undone`) neither clears it nor is
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

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

from service.codes import CPT, code_words
from service.engine.chart_days import day_order, days_written, one_day, timed
from service.fhirdates import human_date_to
from service.record import AFTER_UNDATED_ONSET, MAY_BE_LATER, PatientRecord

Item = TypeVar("Item")
_UNDATED = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Undone:
    """The rule removals are weighed by against a record dated `put_in` (None: undated), written to
    `put_in_to` (`fhirdates.precision`): a removal on a later day undoes it, on the same day when `same_day`
    says so, on an earlier one not. When either date is missing, or either is written to a month or a year
    only and their days overlap so that it may be on either side (a Z95.0 of "2023-02" and a removal of 15
    February 2023), the dates cannot tell: a coarser date is the same uncertainty as none (the lead's
    decision, s32, of review31f L4; before, overlapping days were one day's, and a removal of 15 February
    undid nothing of February's implant, an implant of one the pump's kind set aside). Two dates each of
    one day (a date or a moment) on the same day stay one day's: `same_day` decides (review24c). Which day
    each is on is `chart_days.day_order`'s: two moments with a time whose own days contradict the order of
    their instants are one day's. `Removals` answers it for all of a record's removals at once."""

    put_in: datetime | None
    put_in_to: str
    same_day: bool
    # where the record is undated but the chart bounds it (a diagnosis's onsetPeriod with an end only:
    # `ConditionFact.onset_by`), that end and how it is written: no date to weigh by (contract §3), only the
    # words said of a removal the dates leave open (`may_be_later`)
    by: datetime | None = None
    by_to: str = "time"


# a removal's place among those indexed: the latest by its date is the greatest, of equal dates the first
# read (as `max` over them in the record's order would take); an undated one is before any dated one
_Key = tuple[datetime, int]


@dataclass(frozen=True)
class _Sorted:
    """Removals sorted by one of their days (`days`), with the greatest key (`_Key`) of each suffix, so the
    latest removal on or after a day is found by a bisection, not by reading every one."""

    days: list[date]
    latest: list[_Key]  # latest[i]: the greatest key of the removals from i on

    @staticmethod
    def of(dated: Iterable[tuple[date, _Key]]) -> _Sorted:
        ordered = sorted(dated, key=lambda d: d[0])
        latest: list[_Key] = []
        for _, key in reversed(ordered):
            latest.append(max(key, latest[-1]) if latest else key)
        return _Sorted([day for day, _ in ordered], latest[::-1])

    def after(self, day: date, on_it: bool = False) -> _Key | None:
        """The latest removal whose day is after `day` (on or after, `on_it`)."""
        at = (bisect_left if on_it else bisect_right)(self.days, day)
        return self.latest[at] if at < len(self.days) else None


def _latest(*keys: _Key | None) -> _Key | None:
    return max((key for key in keys if key is not None), default=None)


class _Days:
    """The removals of one code, indexed by their days, to weigh them all against a record at once as
    `Undone` reads each pair: a removal on a later day undoes, on an earlier one not, on days that overlap
    the same-day rule where both are of one day, else the dates cannot tell. Each index holds (a day, a
    `_Key`) and reads a removal's date once, so weighing R records against N removals costs O((R + N) log N),
    where reading every pair cost O(R N): seconds of CPU for a 230 KB body (dates33, s33)."""

    def __init__(self, dates: Iterable[tuple[datetime | None, str, int]]) -> None:
        undated: list[_Key] = []
        first: dict[bool, list[tuple[date, _Key]]] = {False: [], True: []}  # by whether timed
        last_all: list[tuple[date, _Key]] = []
        last_span: list[tuple[date, _Key]] = []
        for when, written_to, place in dates:
            if when is None:
                undated.append((_UNDATED, -place))
                continue
            key = (when, -place)
            days = days_written(when, written_to)
            first[timed(when, written_to)].append((days[0], key))
            last_all.append((days[1], key))
            if not one_day(written_to):
                last_span.append((days[1], key))
        self.undated = max(undated, default=None)
        self.first_untimed = _Sorted.of(first[False])
        self.first_timed = _Sorted.of(first[True])
        self.first = _Sorted.of(first[False] + first[True])
        self.last = _Sorted.of(last_all)
        self.last_span = _Sorted.of(last_span)

    def undoing(self, rule: Undone) -> _Key | None:
        """The latest removal that undoes the record `rule` weighs: one whose first day is after its last
        (on it, `same_day`). Between two moments with a time, each by its own day unless the days
        contradict the instants, which are then one day's (`chart_days.day_order`): a timed removal on a
        later day with an instant not after the record's is of its day, one on an earlier day with an
        instant not before it too."""
        put_in = rule.put_in
        if put_in is None:
            return None
        last = days_written(put_in, rule.put_in_to)[1]
        if not timed(put_in, rule.put_in_to):
            return self.first.after(last, on_it=rule.same_day)
        untimed = self.first_untimed.after(last, on_it=rule.same_day)
        later = self.first_timed.after(last, on_it=rule.same_day)
        if rule.same_day:  # on its day, or on an earlier day at an instant not before it: one day's
            earliest = self.first_timed.latest[0] if self.first_timed.latest else None
            return _latest(untimed, later, earliest if earliest and earliest[0] >= put_in else None)
        # on a later day at an instant not after it: one day's, undoing nothing
        return _latest(untimed, later if later and later[0] > put_in else None)

    def untold(self, rule: Undone) -> _Key | None:
        """The latest removal whose date or the record's cannot tell whether it came after it, where none
        undoes it (`undoing` is None): an undated one, any where the record is undated, and one whose days
        overlap the record's where either is written to a month or a year and its last day is after the
        record's first (on it, `same_day`). With none undoing, no removal's first day is after the record's
        last, so that its last day is after the record's first is overlap enough; two dates of one day are
        never untold."""
        if rule.put_in is None:
            return _latest(self.undated, self.first.latest[0] if self.first.latest else None)
        first = days_written(rule.put_in, rule.put_in_to)[0]
        spans = self.last_span if one_day(rule.put_in_to) else self.last
        return _latest(self.undated, spans.after(first, on_it=rule.same_day))


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


class Removals(Generic[Item]):
    """The removals of a record, read (`read`) and left out of it (`PatientRecord.removals_left_out`), by
    code, each code's indexed by day once (`_Days`), to weigh every record they may undo against them."""

    def __init__(self, read: Sequence[Read[Item]], record: PatientRecord) -> None:
        self.read = read
        self.record = record
        by_code: dict[str, list[tuple[datetime | None, str, int]]] = {}
        for place, removal in enumerate(read):
            by_code.setdefault(removal.code, []).append((removal.when, removal.written_to, place))
        self._read = {code: _Days(dates) for code, dates in by_code.items()}
        self._left_out = {
            code: _Days((when, written_to, place) for place, (when, written_to) in enumerate(dates))
            for code, dates in record.removals_left_out.items()
        }

    def weigh(self, undone: Undone, undoers: Collection[str]) -> Weighed[Item]:
        """The removals of `undoers` (removal codes; none: nothing undoes the record) weighed against a record
        by `undone`: the latest read that undoes it clears it; else one left out of the record that may
        (`PatientRecord.removal_unread`), or one read whose date or the record's cannot tell which came first,
        leaves it open, with why."""
        indexed = [self._read[code] for code in undoers if code in self._read]
        if (undoing := _latest(*(days.undoing(undone) for days in indexed))) is not None:
            return Weighed(self.read[-undoing[1]].item)
        may_undo = self._may_undo(undone)
        if undoers and (why := self.record.removal_unread(undoers, may_undo)) is not None:
            return Weighed(unsure=why, left_out=True)
        if (untold := _latest(*(days.untold(undone) for days in indexed))) is None:
            return Weighed()
        latest = self.read[-untold[1]]
        return Weighed(unsure=may_be_later(latest, undone), may_undo=latest.item)

    def _may_undo(self, undone: Undone) -> Callable[[str], bool]:
        """Whether a removal of a code left out of the record (one `removals_left_out` dates) undoes what
        `undone` weighs, or the dates cannot tell: all are weighed, since the latest by the instant need not
        be the latest by the day (review30a L1)."""

        def may_undo(code: str) -> bool:
            days = self._left_out[code]
            return days.undoing(undone) is not None or days.untold(undone) is not None

        return may_undo


def may_be_later(removal: Read[Item], undone: Undone | None = None) -> str:
    """Why a removal read leaves what it would undo open: "removal CPT 33233 (undated) may have come
    later", or with its day where the record weighed is the undated one; a card says it after the implant
    it may have undone ("implant CPT 33206 (2 Feb 2019), but removal CPT 33233 (undated) …"). Where that
    record is a diagnosis the chart dates by its onsetPeriod's end alone (`Undone.by`) and the removal is on a
    later day, it came after the onset, and the diagnosis is open only for having no start date (contract §3):
    "removal CPT 33233 (2 Feb 2023) came after the onset, which has no start date"
    (review32b L3)."""
    day = human_date_to(removal.when, removal.written_to) if removal.when else "undated"
    after = (
        undone is not None
        and undone.put_in is None
        and undone.by is not None
        and removal.when is not None
        and day_order(removal.when, undone.by, removal.written_to, undone.by_to) > 0
    )
    return f"removal {code_words(CPT, removal.code)} ({day}) {AFTER_UNDATED_ONSET if after else MAY_BE_LATER}"
