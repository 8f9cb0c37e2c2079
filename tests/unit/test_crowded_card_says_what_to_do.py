"""On a crowded decision card each open criterion's line says what to do, whole or from its beginning, and
no criterion is left off the card for it (cards33, on cards32's two lines that pointed to the Instructions
card): a finding that only says a record is missing, which what to do names, gives way to what to do
(`Item.brief`, "not recorded"), on a card short of room even where its line has room for both
(`cards.render.BRIEF`); what to do that no line holds whole is said from its beginning beside the finding
cut after its records; and where either leaves more lines out than pointing did, the card points as before
(`cards.render.POINT`)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from cards.items import NOT_RECORDED, Episode, Item, Step
from cards.render import ON_THE_LISTING, WHOLE_THERE, detail
from service.engine.model import Status
from tests.builders import (
    cards_of,
    determine,
    device,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
)
from tests.contract_support import call

# a pump Device whose status is none of FHIR R4's codes: whether a pump is already in place could not be
# told, so the card asks that first, beside every criterion of a first implant (review30c)
UNREAD_PUMP = {**device({"text": "SynchroMed II implanted infusion pump"}), "status": "Active"}
_ITEM = re.compile(r"- (?:❔|❌) \*\*(.+?)\*\*")
_MORE = re.compile(r"- … and (\d+) more")


def _decision(payer: str) -> dict[str, Any]:
    answer = call(
        [*meeting_chart(), UNREAD_PUMP],
        service_request("62362"),
        infusate_request(),
        coverage=payer_coverage(payer),
    )
    [card] = cards_of(answer["cards"])
    return card


def _lines(card: dict[str, Any]) -> dict[str, str]:
    return {m.group(1): line for line in card["detail"].splitlines() if (m := _ITEM.match(line))}


def test_cohere_pharmacological_line_says_what_to_do_and_the_card_keeps_its_lines() -> None:
    """Cohere's no-pump card: "Pharmacological modalities …" pointed to the Instructions card, its finding
    (the last course and its dates) leaving no line room for the instruction it shares with four other
    criteria; it says that instruction's beginning now, and "Home exercise program" stays on the card."""
    card = _decision("cohere")
    lines = _lines(card)
    pharmacological = lines["Pharmacological modalities (>= 6 months within the last year)"]
    assert ON_THE_LISTING not in card["detail"], card["detail"]
    assert " — Record the analgesic prescriptions of the last year…" in pharmacological, pharmacological
    assert pharmacological.endswith(WHOLE_THERE)
    assert "ended 15 Jun 2025…" in pharmacological  # the finding cut after its last record's date
    assert "Home exercise program" in lines, card["detail"]


def test_kpwa_3g_line_says_its_whole_instruction() -> None:
    """KPWA's 3.g "Function increased during the trial" said its instruction (its parent's: the catheter
    trial's records) cut, whole on the Instructions card, the record it lacks cut away; its finding only said
    that record is missing, which the instruction names, so the line says the instruction whole."""
    card = _decision("kpwa")
    line = _lines(card)["3.g Function increased during the trial"]
    assert line.endswith(
        "“function increased during the trial”, “side effects of the trial” and "
        "“patient accepts the procedure”."
    ), line
    assert WHOLE_THERE not in card["detail"] and ON_THE_LISTING not in card["detail"]
    assert not _MORE.search(card["detail"]), card["detail"]


def test_a_card_leaves_out_no_line_that_pointing_as_before_kept() -> None:
    """Pointing to the Instructions card (`cards.render.POINT`) is the layout before cards33, the fallback
    that leaves out no more lines than before: items whose findings only say a long record is missing, each
    line pointing beside its finding whole, keep all four lines (review33d F2: "not recorded" said in that
    form too made each line say its whole instruction, and the card left one out)."""
    d = determine(meeting_chart(), order=service_request("62362"), policy_id="kpwa-implanted-infusion-pumps")

    def missing(n: int) -> Item:
        record = (
            f"“clinician attests that condition number {n} of the policy's list, as the payer's reviewer "
            f"reads it, has been reviewed{' and' * 7} and is not a contraindication”"
        )
        todo = f"Record {record} (yes), with the attesting clinician as the performer."
        return Item(
            Status.NOT_DOCUMENTED,
            f"Condition {n} reviewed",
            "",
            f"no {record} recorded",
            todo,
            Step.DOCUMENT,
            (f"c{n}",),
            brief=NOT_RECORDED,
        )

    episode = replace(Episode.of([d]), failing=(), missing=tuple(missing(n) for n in range(4)))
    text = detail(episode, instructions=True)
    assert not _MORE.search(text), text
    assert all(f"**Condition {n} reviewed**" in text for n in range(4)), text
