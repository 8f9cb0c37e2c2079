"""A card is rendered without working out what it does not show: the decision card's detail is laid out
several times to fit DETAIL_LIMIT, and names the Instructions card (whose title is its whole next steps)
only when it leaves items out for length (perf26a: the demo chart's order-sign worked those steps out
three times a decision card, about 1.6 M of its 25.4 M instructions)."""

from __future__ import annotations

import pytest

import cards.items as items
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


def test_the_evidence_step_walks_each_met_criterion_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """It names the criteria met on record and says the others have none documented against them:
    one walk of each met criterion's leaves tells both (perf26c: it walked them once for each)."""

    determination = determine(meeting_chart())
    walked: list[str] = []
    original = items._met_by_absence

    def counted(top: object) -> bool:
        walked.append(top.id)  # type: ignore[attr-defined]
        return original(top)  # type: ignore[arg-type]

    monkeypatch.setattr(items, "_met_by_absence", counted)
    step = render.evidence_step(determination)
    met = [top.id for top in determination.criteria if top.status == "met"]
    assert walked == met
    assert step.startswith("With the request, send the chart evidence for: ")
    absent = items.none_documented(determination)
    labels = [top.label for top in determination.criteria if top.id in met]
    assert absent and items.met_by_kind(determination) == (
        absent,
        tuple(x for x in labels if x not in absent),
    )
