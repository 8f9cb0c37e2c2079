"""`max-cards`: which cards an answer keeps when it may show fewer than it has (cards/response.py
`_within`): the decision cards saying an order is not covered first, then the notices of what was
not checked, then the other decision cards, then the rest in the answer's order; and a decision card
whose Instructions card was left out names the items it could not hold itself."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.calls import prefetch_app
from tests.demo_support import packaged_sample
from tests.support import post_json

WHAT_IF = {"url": "http://ehr.example/fhir/StructureDefinition/what-if", "valueBoolean": True}
NOT_COVERED = "GEHA: not covered — D. Trial relief >= 50 %: 29 % relief (needs at least 50 %)"
NOT_CHECKED = "Coverage not checked: the order carries an extension that changes its meaning"
POINTER = re.compile(r"see the card “([^”]+)”")


def answered(body: dict[str, Any], max_cards: int) -> list[dict[str, Any]]:
    body = copy.deepcopy(body)
    body["extension"] = {"davinci-crd.configuration": {"max-cards": max_cards}}
    response = post_json(prefetch_app().test_client(), f"/cds-services/idds-crd-{body['hook']}", body)
    assert response.status_code == 200, response.get_json()
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return cards


def not_covered_beside_a_modified_order() -> dict[str, Any]:
    """The demo order that is not covered (GEHA, 29 % trial relief) selected beside a second 62362
    carrying a modifier extension, which is not checked (review2's p11)."""
    body = packaged_sample("order-select-62362-demo-does-not-meet")
    entries = body["context"]["draftOrders"]["entry"]
    order = next(e for e in entries if e["resource"]["resourceType"] == "ServiceRequest")
    modified = copy.deepcopy(order)
    modified["resource"]["id"] = "what-if-1"
    modified["fullUrl"] = modified["fullUrl"].rsplit("/", 1)[0] + "/what-if-1"
    modified["resource"]["modifierExtension"] = [WHAT_IF]
    entries.append(modified)
    body["context"]["selections"] = [
        f"ServiceRequest/{e['resource']['id']}"
        for e in entries
        if e["resource"]["resourceType"] == "ServiceRequest"
    ]
    return body


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (1, [NOT_COVERED]),
        (2, [NOT_COVERED, NOT_CHECKED]),
        (3, [NOT_COVERED, "GEHA: before going ahead with 62362", NOT_CHECKED]),
    ],
)
def test_a_notice_does_not_displace_the_card_saying_the_judged_order_is_not_covered(
    limit: int, expected: list[str]
) -> None:
    """Review2 N-6: at max-cards 1 the info notice about the modified order was the only card, and the
    warning that the order judged is not covered was gone."""
    cards = answered(not_covered_beside_a_modified_order(), limit)
    assert [c["summary"] for c in cards] == expected
    assert cards[0]["indicator"] == "warning"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_decision_card_points_only_to_an_instructions_card_the_answer_shows(limit: int) -> None:
    """Review2 N-7: at max-cards 1-2, demo-insufficient's decision card said "… and 1 more: see the card
    “GEHA: 6 items to document for 62362”", a card the answer had cut, and the item it left out was
    on no card. With the Instructions card left out, the decision card names the item itself."""
    cards = answered(packaged_sample("order-select-62362-demo-insufficient"), limit)
    titles = {c["summary"] for c in cards}
    [decision] = [c for c in cards if c["summary"].startswith("GEHA: 6 items to document for 62362 —")]
    [more] = [line for line in decision["detail"].splitlines() if line.startswith("- … and ")]
    pointed = POINTER.findall(more)
    if limit >= 3:
        title = "GEHA: how to document 6 items for 62362, in 4 steps"  # the trial's results one step
        assert pointed == [title] and pointed[0] in titles, more
    else:
        assert not pointed and not any(t.startswith("GEHA: how to document") for t in titles), more
        assert more.startswith("- … and 1 more: ") and len(more) > len("- … and 1 more: ") + 10, more


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_notice_still_outranks_a_decision_card_saying_meets(limit: int) -> None:
    """Review s17 F-10 kept: the lines that meet are an info card, and the implant carrying a modifier
    extension was not checked; the notice is kept before the info decision card."""
    body = packaged_sample("order-sign-implant-demo-meets")
    for entry in body["context"]["draftOrders"]["entry"]:
        if "62362" in str(entry["resource"].get("code")):
            entry["resource"]["modifierExtension"] = [WHAT_IF]
    summaries = [c["summary"] for c in answered(body, limit)]
    assert len(summaries) == limit and NOT_CHECKED in summaries


@pytest.mark.parametrize("limit", [1, 2])
def test_a_meets_card_whose_instructions_card_is_left_out_says_the_prior_authorization_it_said(
    limit: int,
) -> None:
    """At order-sign, an order that meets says "request prior authorization" on its Instructions card
    alone (the decision card does not say it twice); with that card left out by max-cards, the decision
    card says it itself (cards24 MEDIUM), so that no card of the answer reads "meets" as approved."""
    cards = answered(packaged_sample("order-sign-implant-demo-meets"), limit)
    [decision] = [c for c in cards if " meet " in c["summary"] or " meets " in c["summary"]]
    listed = any(c["summary"].startswith("GEHA: request prior authorization") for c in cards)
    said = "**Prior authorization still needed** from GEHA" in decision["detail"]
    assert said != listed, [c["summary"] for c in cards]
    assert said or limit > 1
