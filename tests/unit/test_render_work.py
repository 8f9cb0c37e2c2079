"""A card is rendered without working out what it does not show: the decision card's detail is laid out
several times to fit DETAIL_LIMIT, and names the Instructions card (whose title is its whole next steps)
only when it leaves items out for length (perf26a: the demo chart's order-sign worked those steps out
three times a decision card, about 1.6 M of its 25.4 M instructions)."""

from __future__ import annotations

import pytest

import cards.render as render
from cards.items import Episode
from cards.render import decision_card
from tests.builders import determine, meeting_chart


@pytest.fixture
def steps_worked_out(monkeypatch: pytest.MonkeyPatch) -> list[Episode]:
    """The episodes whose next steps were worked out while the test ran."""
    seen: list[Episode] = []
    original = render.next_steps

    def counted(episode: Episode, *args: object, **kwargs: object) -> object:
        seen.append(episode)
        return original(episode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render, "next_steps", counted)
    return seen


def test_a_card_showing_every_item_does_not_work_out_the_instructions_title(
    steps_worked_out: list[Episode],
) -> None:
    card = decision_card(Episode.of([determine(meeting_chart())]), instructions=True)
    assert "see the card" not in str(card["detail"])
    assert steps_worked_out == []


def test_a_card_leaving_items_out_names_the_instructions_card_by_its_title(
    steps_worked_out: list[Episode],
) -> None:
    episode = Episode.of([determine([])])  # nothing documented: more items than the detail holds
    detail = str(decision_card(episode, instructions=True)["detail"])
    assert "more: see the card “" in detail
    assert steps_worked_out and all(e is episode for e in steps_worked_out)
