"""A decision card's item line that cannot hold its label, its finding and what to do cuts the finding
first, after the records it names and their dates, before it cuts what to do (the lead's decision, s32,
on wording31's "What item 1 did not reach")."""

from __future__ import annotations

from cards.items import Item, Step
from cards.render import (
    ITEM_LIMIT,
    MIN_FINDING,
    ON_THE_LISTING,
    _item_line,
)
from service.engine.model import Status

COURSE = (
    "none in the last 12 months (since 7 Dec 2025): the last course, morphine sulfate 10 MG/ML Injectable "
    "Solution, ended 15 Jun 2025, needs at least 6 months"
)


def item(label: str, finding: str, todo: str) -> Item:
    return Item(Status.NOT_DOCUMENTED, label, "", finding, todo, Step.DOCUMENT, ("c",))


def test_a_finding_is_cut_after_the_records_it_names_so_that_what_to_do_is_whole() -> None:
    """Where the finding whole leaves what to do no room: the words after its last record and date go
    (never "none in the last 12 months…", which lost why: wording31), and what to do is said whole."""
    label = "Pharmacological modalities (>= 6 months within the last year)"
    todo = "Record the analgesic prescriptions of the last year, with start and end dates, in the chart."
    for whole in (False, True):  # `whole`: the card says the in-place condition once (`_item_lines`)
        line = _item_line(item(label, COURSE, todo), todo, beside=True, whole=whole)
        assert line.endswith(f"ended 15 Jun 2025… — {todo}"), line
        assert COURSE.removesuffix(", needs at least 6 months") in line
        assert len(line) <= ITEM_LIMIT + 2
    # less than MIN_FINDING of the finding fits: it was kept whole and what to do cut; its record kept
    found = "removal CPT 62365 (2 Feb 2021) may have come later"
    todo = "Check " + "the chart's removal records and their dates again, " * 4 + "then call again."
    label = "L" * (ITEM_LIMIT - len(todo) - 45)
    line = _item_line(item(label, found, todo), todo, beside=True)
    assert ITEM_LIMIT - len(todo) - len(label) - 12 < MIN_FINDING
    assert line.endswith(f": removal CPT 62365 (2 Feb 2021)… — {todo}"), line


def test_a_finding_whose_records_leave_what_to_do_no_room_is_not_cut_and_the_card_points_there() -> None:
    """The cut keeps every record named and its date: where what to do still does not fit, the finding is
    said whole and what to do is pointed to, as before."""
    label = "Pharmacological modalities (>= 6 months within the last year)"
    todo = "Record the analgesic prescriptions of the last year, the physical therapy visits, " * 2
    line = _item_line(item(label, COURSE, todo.strip()), todo.strip(), beside=True, whole=True)
    assert line == f"- ❔ **{label}**: {COURSE}{ON_THE_LISTING}"


def test_with_no_instructions_card_what_to_do_is_not_what_the_cut_takes() -> None:
    """With no Instructions card beside (`beside` False) a line too long was cut whole at its end, so what
    to do went first ("…: no “side effects of the trial” recorded…"); the words after the finding's record
    go instead."""
    todo = "Record “side effects of the trial”."
    label = "D. Trial without side effects " + "very long words " * 12
    line = _item_line(item(label, "no “side effects of the trial” recorded", todo), todo)
    assert line.endswith(f"**: no “side effects of the trial”… — {todo}"), line
    assert len(line) <= ITEM_LIMIT + 2
