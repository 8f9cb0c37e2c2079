"""A decision card's item line that cannot hold its label, its finding and what to do cuts the finding
first, after the records it names and their dates, before it cuts what to do (the lead's decision, s32,
on wording31's "What item 1 did not reach")."""

from __future__ import annotations

import re

from cards import items
from cards.items import NOT_RECORDED, Item, Step
from cards.render import (
    BRIEF,
    ITEM_LIMIT,
    MIN_FINDING,
    ON_THE_LISTING,
    POINT,
    SAY,
    WHOLE_THERE,
    _item_line,
)
from service.engine.model import Status
from tests.builders import determine, meeting_chart, service_request, without_codes

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


def test_what_to_do_a_finding_whole_leaves_no_room_for_is_said_from_its_beginning_beside_its_records() -> (
    None
):
    """Where what to do does not fit beside the finding cut after its records, and less than MIN_FINDING of
    it beside the finding whole: the line says the finding cut after its records and what to do from its
    beginning, whole on the Instructions card (cards33: Cohere's "Pharmacological modalities …" pointed
    there, saying nothing of what to do). Under `POINT`, the fallback a card takes where that leaves out
    more lines (`_detail`), the finding is said whole and what to do is pointed to, as before."""
    label = "Pharmacological modalities (>= 6 months within the last year)"
    todo = ("Record the analgesic prescriptions of the last year, the physical therapy visits, " * 2).strip()
    line = _item_line(item(label, COURSE, todo), todo, beside=True, whole=True)
    kept = COURSE.removesuffix(", needs at least 6 months")
    assert line.startswith(f"- ❔ **{label}**: {kept}… — Record the analgesic prescriptions of the last year")
    assert line.endswith(f"…{WHOLE_THERE}"), line
    assert len(line) <= ITEM_LIMIT + 2
    pointed = _item_line(item(label, COURSE, todo), todo, beside=True, whole=True, form=POINT)
    assert pointed == f"- ❔ **{label}**: {COURSE}{ON_THE_LISTING}"


def test_with_no_instructions_card_what_to_do_is_not_what_the_cut_takes() -> None:
    """With no Instructions card beside (`beside` False) a line too long was cut whole at its end, so what
    to do went first ("…: no “side effects of the trial” recorded…"); the words after the finding's record
    go instead."""
    todo = "Record “side effects of the trial”."
    label = "D. Trial without side effects " + "very long words " * 12
    line = _item_line(item(label, "no “side effects of the trial” recorded", todo), todo)
    assert line.endswith(f"**: no “side effects of the trial”… — {todo}"), line
    assert len(line) <= ITEM_LIMIT + 2


def test_a_finding_only_missing_what_to_do_names_is_said_briefly_where_the_card_is_short_of_room() -> None:
    """Under `BRIEF` (a card that leaves lines out otherwise) a finding whose few words are "not recorded"
    gives way to them even where the line has room for both; under `SAY` it is said whole; and what to do
    that is not the item's own ("as above") keeps the finding, which alone names the record."""
    todo = "Record “months of difficulty with activities of daily living” (whole months)."
    found = "no “months of difficulty with activities of daily living” recorded"
    adl = Item(
        Status.NOT_DOCUMENTED,
        "Difficulty with ADLs",
        "",
        found,
        todo,
        Step.DOCUMENT,
        ("c",),
        brief=NOT_RECORDED,
    )
    assert _item_line(adl, todo, beside=True, form=SAY) == f"- ❔ **Difficulty with ADLs**: {found} — {todo}"
    assert (
        _item_line(adl, todo, beside=True, form=BRIEF)
        == f"- ❔ **Difficulty with ADLs**: {NOT_RECORDED} — {todo}"
    )
    assert _item_line(adl, "as above", beside=True, form=BRIEF).endswith(f"{found} — as above")


def test_a_finding_is_brief_only_where_it_says_no_more_than_that_the_record_what_to_do_names_is_missing() -> (
    None
):
    """`Item.brief` "not recorded": KPWA's 3.g function line, whose instruction (the catheter trial's, its
    parent's) names the record; no other finding (one saying more than the record's absence keeps it)."""
    chart = without_codes(meeting_chart(), "64483", "90791")
    d = determine(chart, order=service_request("62362"), policy_id="kpwa-implanted-infusion-pumps")
    missing = items.missing(d)
    [function] = [i for i in missing if i.label == "3.g Function increased during the trial"]
    assert function.brief == NOT_RECORDED
    for i in missing:
        named = re.fullmatch(r"no (“[^”]+”) recorded", i.finding)
        assert (i.brief == NOT_RECORDED) == bool(named and i.todo and named.group(1) in i.todo), i


def test_only_a_finding_of_mere_absence_whose_record_what_to_do_names_is_brief() -> None:
    """review33d: "not recorded" stands for the whole finding only where that finding says no more than that
    the record is missing, and only where what to do names that very record."""
    record = "“months of difficulty with activities of daily living”"
    todo = "Record “months of …” (whole months)."
    named = f"Record {record} (whole months)."
    cases = [
        (f"no {record} recorded", named, NOT_RECORDED),
        (f"no {record} recorded; one of 2019 was entered in error", named, ""),
        (f"could not be checked: no {record} recorded", named, ""),
        (f"no {record} recorded", todo, ""),
        (f"no {record} recorded", None, ""),
    ]
    assert [items._brief(found, what) for found, what, _ in cases] == [brief for _, _, brief in cases]
