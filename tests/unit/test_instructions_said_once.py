"""The Instructions card says once what the decision card beside it does not (cards23 LOW): where the
decision card shows every missing item in full and each is a step of its own, a second card listing
the same items in the same words only repeated it (demo-two-coverages: GEHA's five items twice;
demo-cbc-insufficient: "order the trial" on three cards in a row). It stays wherever it adds
something: steps shared by several items, items the decision card leaves out for length, what not
being covered asks, what comes before the trial, and wherever the decision card is not in the answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cards import render
from cards.items import Episode, Item, Step
from service.engine.model import Outcome, Status
from tests.builders import ICD, cards_of, condition, determine, meeting_chart, without_codes
from tests.calls import sign_with_chart

NO_PSYCH_CLEARANCE = without_codes(meeting_chart(), "psych-clearance", "90791", "90792")


def _listings(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in cards_of(response["cards"], "clinical-reminder") if "suggestions" not in c]


@pytest.mark.parametrize(
    "chart",
    [NO_PSYCH_CLEARANCE, without_codes(meeting_chart(), "62324")],
    ids=["one-item-to-document", "the-trial-to-order-first"],
)
def test_no_instructions_card_repeats_a_decision_card_that_says_every_step(
    chart: list[dict[str, Any]],
) -> None:
    _, response = sign_with_chart(chart)
    [decision] = cards_of(response["cards"])
    items = [line for line in decision["detail"].splitlines() if line.startswith("- ❔")]
    assert len(items) == 1 and " — " in items[0], decision["detail"]  # the item, with what to do
    assert _listings(response) == [], [c["summary"] for c in _listings(response)]


def test_the_instructions_card_stays_where_the_decision_card_is_not_in_the_answer() -> None:
    """With coverage-info off the decision card is not sent: the Instructions card is the one that
    says what to document."""
    _, response = sign_with_chart(NO_PSYCH_CLEARANCE, **{"coverage-info": False})
    assert cards_of(response["cards"]) == []
    [listing] = _listings(response)
    assert listing["summary"] == "GEHA: how to document 1 item for 62362, 62350, E0783", listing["summary"]


def test_the_instructions_card_stays_where_its_steps_group_the_items() -> None:
    """Cohere on an empty chart: criteria sharing one instruction are one step."""
    episode = Episode.of([determine([], policy_id="cohere-intrathecal-pain-pumps")])
    assert not render.says_every_step(episode)


def test_the_instructions_card_stays_where_the_trial_is_said_once_for_its_results() -> None:
    """Two results of the trial to order first (its relief, its side effects): one step saying to order
    it, each result a sub-item, where the decision card says it on the first and "after the trial" on
    the next."""
    _, response = sign_with_chart(without_codes(meeting_chart(), "62324", "it-trial-side-effects"))
    [listing] = _listings(response)
    assert "Order the trial first (CPT 62322 or 62326); once the trial is done:" in listing["detail"]


def test_the_instructions_card_stays_where_the_decision_card_leaves_items_out() -> None:
    """GEHA on an empty chart: more items than the decision card's budget holds."""
    episode = Episode.of([determine([])])
    assert not render.says_every_step(episode)


def test_the_instructions_card_stays_for_an_order_not_covered() -> None:
    """What not being covered asks (review what fails, override with a reason) is said on it alone."""
    infection = condition(ICD, "L03.115", "2026-11-01", "Cellulitis of right lower limb")
    _, response = sign_with_chart([*NO_PSYCH_CLEARANCE, infection])
    [decision] = cards_of(response["cards"])
    assert decision["detail"].startswith("**Not covered as ordered**"), decision["detail"]
    [listing] = _listings(response)
    assert listing["summary"].startswith("GEHA: before going ahead with ")


def test_the_instructions_card_stays_where_the_decision_card_cuts_the_cause_its_step_names() -> None:
    """An item to check again names its cause in its step ("… (the EHR's Observation search timed out
    …): call again …"); a cause the decision card's line cut for length is said whole only there."""
    d = determine([], unavailable={"Observation": "timed out"})
    cause = "the EHR's Observation search timed out after 30 s " + "while reading the pain scores " * 8
    recheck = Item(
        Status.NOT_DOCUMENTED,
        "2 of 14 criteria could not be checked",
        "",
        cause.strip(),
        "call again once the EHR's data is available",
        Step.RECHECK,
        ("x",),
    )
    whole = replace(recheck, finding="the EHR's Observation search timed out")
    cut = Episode((d,), d, (), (recheck,))
    assert d.outcome == Outcome.INSUFFICIENT
    assert render.says_every_step(Episode((d,), d, (), (whole,)))  # the same item, its cause short
    assert not render.says_every_step(cut)
