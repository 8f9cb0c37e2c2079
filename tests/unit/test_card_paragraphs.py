"""Each line of a card stands on its own once an EHR renders its Markdown (CommonMark): the verdict, the
prior authorization, the deceased warning, a policy's explanation, the policy and its review date, and
each group and step of the Instructions card (fix24: joined by a single line break, a CommonMark
renderer ran them together on one line, a soft break)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cards import render
from cards.items import Episode, Step
from cards.render import DETAIL_LIMIT, decision_card, instructions_card, next_steps
from service.engine.model import Determination, Outcome
from tests.builders import HCPCS, ICD, condition, determine, meeting_chart, service_request, without_codes
from tests.markdown_support import run_together, shown_lines

PACEMAKER = condition(ICD, "Z95.0", "2020-01-01", "Presence of cardiac pacemaker")


def _meets() -> Determination:
    return determine(meeting_chart())


def _episodes() -> dict[str, Episode]:
    meets = _meets()
    catheter = determine(without_codes(meeting_chart(), "it-trial-side-effects"), service_request("62350"))
    return {
        "meets, prior authorization and review date": Episode.of([meets]),
        "deceased": Episode.of([replace(meets, deceased=True, deceased_on="2021-03")]),
        "not addressed, the policy's explanation": Episode.of(
            [determine(meeting_chart(), service_request("95990"))]
        ),
        "a line of another verdict": Episode.of([meets, catheter]),
        "not covered": Episode.of([determine([*meeting_chart(), PACEMAKER])]),
        "device too": Episode.of([meets, determine(meeting_chart(), service_request("E0783", HCPCS))]),
    }


@pytest.mark.parametrize("name", list(_episodes()))
@pytest.mark.parametrize("instructions", [False, True], ids=["alone", "beside-instructions"])
def test_no_line_of_a_decision_card_runs_into_the_one_before(name: str, instructions: bool) -> None:
    episode = _episodes()[name]
    detail = str(decision_card(episode, instructions=instructions)["detail"])
    assert run_together(detail) == [], detail
    assert len(detail) <= DETAIL_LIMIT


def test_the_prior_authorization_and_deceased_lines_are_paragraphs_of_their_own() -> None:
    """The lines fix24 and review24d added after the verdict, and the review date after the policy."""
    detail = str(decision_card(Episode.of([_meets()]), instructions=False)["detail"])
    paragraphs = detail.split("\n\n")
    assert paragraphs[1].startswith("**Prior authorization still needed**"), paragraphs
    assert paragraphs[-1].startswith("⚠ Past its review date"), paragraphs
    dead = Episode.of([replace(_meets(), deceased=True, deceased_on="2021-03")])
    assert str(decision_card(dead, instructions=False)["detail"]).split("\n\n")[1].startswith("⚠ The chart")


def test_each_group_of_the_instructions_card_lists_its_steps_on_lines_of_their_own() -> None:
    """ "**Document**" then "3. …": CommonMark lets only a list starting at 1 interrupt a paragraph, so
    the later groups' steps read as one paragraph with their group's name."""
    chart = without_codes([*meeting_chart(), PACEMAKER], "it-trial-side-effects", "psych-eval-cleared")
    d = determine(chart)
    assert d.outcome == Outcome.DOES_NOT_MEET
    episode = Episode.of([d])
    headline, steps = next_steps(episode)
    assert len({kind for kind, _ in steps}) > 1
    detail = str(instructions_card(episode, headline, steps)["detail"])
    assert run_together(detail) == [], detail


def test_a_steps_sub_items_stand_under_it_however_wide_its_number() -> None:
    """The sub-items of a step (what a trial not yet done is to show) are indented to its text: under
    "10. " three spaces put them outside it."""
    once_done = "Order the trial first; once the trial is done:\n   - A: record it\n   - B: too"
    steps = [*((Step.DOCUMENT, f"Item {n}: record it.") for n in range(9)), (Step.DOCUMENT, once_done)]
    detail = str(instructions_card(Episode.of([_meets()]), "how to", steps)["detail"])
    assert "10. Order the trial first; once the trial is done:\n    - A: record it\n    - B: too" in detail
    assert run_together(detail) == [], detail


@pytest.mark.parametrize("instructions", [False, True], ids=["alone", "beside-instructions"])
def test_the_blank_lines_between_paragraphs_cost_no_item_at_the_cards_bound(
    instructions: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review25b L2: the bound of a decision card's detail counted the blank line between each two of its
    paragraphs (fix24), which shows no text: a deceased Kaiser Medicare Synthea patient's card (verdict,
    deceased warning, items, what is met, policy) left out one item more than the lines it shows needed.
    A card whose shown lines hold exactly the bound's characters keeps every item."""
    dead = Episode.of([replace(determine([]), deceased=True, deceased_on="2021-03")])
    monkeypatch.setattr(render, "DETAIL_LIMIT", 100_000)
    whole = str(decision_card(dead, instructions=instructions)["detail"])
    assert "… and" not in whole and whole.count("\n- ") >= 4 and whole.count("\n\n") >= 4, whole
    shown = "\n".join(shown_lines(whole))
    monkeypatch.setattr(render, "DETAIL_LIMIT", len(shown))
    assert decision_card(dead, instructions=instructions)["detail"] == whole
    monkeypatch.setattr(render, "DETAIL_LIMIT", len(shown) - 1)  # a character less: something gives way
    narrower = str(decision_card(dead, instructions=instructions)["detail"])
    assert narrower != whole and len("\n".join(shown_lines(narrower))) < len(shown), narrower
