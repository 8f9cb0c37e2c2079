"""The ten-second shape, over every scenario of the suite and the demo: one decision card per payer,
a detail within its budget, and, where the hook's user places the order, an Instructions card that
lists the decision card's missing items in its words, one step per thing to do (synthea review s19,
M1): as many steps as missing items at most, none saying what another says, every item on one; or
none, where the decision card shows every item and each is a step of its own (cards23 LOW)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cards.render import DETAIL_LIMIT
from service.demo.runner import request_files
from service.registry import service_for_hook
from tests.builders import cards_of
from tests.calls import answer
from tests.card_scenarios import answer_with_chart, scenarios
from tests.support import lists_every_item, missing_on_card, numbered_steps


def answers() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in request_files():
        body, request = answer(path.stem)
        yield path.stem, request["hook"], body
    for name, (request, chart) in scenarios().items():
        yield name, request["hook"], answer_with_chart(request, chart)


ANSWERED = list(answers())
ANSWERS = {name: body for name, _, body in ANSWERED}
HOOKS = {name: hook for name, hook, _ in ANSWERED}


def decisions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The decision cards (not the notices about coverage that was not checked)."""
    return [c for c in cards_of(body.get("cards", [])) if "overrideReasons" in c or "✅" in c["detail"]]


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_one_decision_card_per_payer_within_its_budget(name: str) -> None:
    cards = decisions(ANSWERS[name])
    per_payer = Counter(c["source"]["label"] for c in cards)
    assert all(count == 1 for count in per_payer.values()), per_payer
    assert all(len(c["detail"]) <= DETAIL_LIMIT for c in cards), [len(c["detail"]) for c in cards]


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_the_instructions_list_the_missing_items_one_step_per_thing_to_do(name: str) -> None:
    body = ANSWERS[name]
    reminders = [c for c in cards_of(body.get("cards", []), "clinical-reminder") if "suggestions" not in c]
    if not service_for_hook(HOOKS[name]).behaviour.places_order:
        assert not reminders  # the order was placed before: no Instructions card (what to order next)
        return
    for decision in decisions(body):
        missing = missing_on_card(decision["detail"])
        if not missing:
            continue
        payer = decision["source"]["label"]
        listed = [numbered_steps(r["detail"]) for r in reminders if r["source"]["label"] == payer]
        if not listed:  # the decision card says it all, each item its own step (cards23 LOW)
            assert lists_every_item(decision["detail"]), decision["detail"]
            assert not decision["detail"].startswith("**Not covered as ordered**")
            continue
        [steps] = listed
        if decision["detail"].startswith("**Not covered as ordered**"):  # what not being covered asks leads
            assert steps[0].startswith("1. Review what") and "give the reason when you override" in steps[1]
            steps = steps[2:]
        assert 0 < len(steps) <= missing
        todos = [step.split(". ", 1)[1].rsplit(": ", 1)[-1] for step in steps]
        assert len(todos) == len(set(todos)), steps
        labels = re.findall(r"^- ❔ \*\*(.+?)\*\*", decision["detail"], flags=re.M)
        assert all(any(label in step.split(". ", 1)[1] for step in steps) for label in labels)


def test_the_budget_is_met_by_dropping_items_not_by_cutting_the_verdict() -> None:
    details = [c["detail"] for body in ANSWERS.values() for c in decisions(body)]
    assert details
    assert all(d.startswith("**") and "policy:" in d for d in details)
