"""No parenthesis inside another in what a card says (cards26): a policy's version ("Version 2, last updated
3/29/2024 (original 9/14/2023)"), a criterion's section ("Centers for Medicare & Medicaid Services (CMS),
NCD 280.14 …") or an indication's words ("pain (cancer-related or not: …)") put in the card's own
parentheses read as one aside closing twice. The words inside stay as written (the policies' own, word
for word); the card sets them apart in square brackets instead (`wording.aside`)."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from flask import Flask

from service import wording
from service.catalog import Catalog
from service.demo.runner import request_files
from service.questionnaires import questionnaire
from tests.calls import answer


def deepest(text: str) -> int:
    """How deep parentheses nest in `text` (1: none inside another)."""
    depth = most = 0
    for ch in text:
        if ch == "(":
            depth += 1
            most = max(most, depth)
        elif ch == ")":
            depth = max(depth - 1, 0)
    return most


@pytest.mark.parametrize("name", [p.stem for p in request_files()])
def test_no_sample_answer_nests_a_parenthesis_in_another(name: str) -> None:
    body, _ = answer(name)
    texts = [t for c in body["cards"] for t in (c["summary"], c.get("detail", ""), c["source"]["label"])]
    texts += [
        json.dumps(a["resource"].get("extension", []), ensure_ascii=False)
        for a in body.get("systemActions", [])
    ]
    nested = [line for text in texts for line in text.split("\n") if deepest(line) > 1]
    assert not nested, nested


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("order-select-62362-demo-cohere-cancer", "Version 2, last updated 3/29/2024 (original 9/14/2023)"),
        (
            "order-select-62362-demo-kpwa-meets",
            "Last revised 07/24/2023 (created 11/23/1999, reviewed 07/11/2023)",
        ),
    ],
)
def test_a_policys_version_holding_parentheses_is_set_apart_word_for_word(name: str, version: str) -> None:
    """cards26: "(Version 2, last updated 3/29/2024 (original 9/14/2023))" on the policy line and the
    policy-link card."""
    body, _ = answer(name)
    details = [c.get("detail", "") for c in body["cards"]]
    assert sum(f"[{version}]." in d or f"[{version}]._" in d for d in details) == 2, details


@pytest.mark.parametrize(
    ("words", "set_apart"),
    [
        ("MP 1.058, effective 7/1/2025", "(MP 1.058, effective 7/1/2025)"),
        ("pain (cancer-related or not)", "[pain (cancer-related or not)]"),
        ("a) first", "[a) first]"),
    ],
)
def test_aside_keeps_the_words_and_never_nests(words: str, set_apart: str) -> None:
    assert wording.aside(words) == set_apart


def test_no_policy_text_outside_the_cards_nests_a_parenthesis_in_another(
    app: Flask, compiled_catalog: Catalog
) -> None:
    """review27a L6: the documentation Questionnaire's description (DTR shows it: "What Cohere Health's
    criteria (Version 2, last updated 3/29/2024 (original 9/14/2023)) read …"), a criterion's citation (the
    audit record) and the policy page's criterion lines set a policy's own parenthesised words apart as the
    cards do (`wording.aside`), the words inside unchanged."""
    client = app.test_client()
    texts: list[str] = []
    for policy in compiled_catalog.policies.values():
        texts.append(questionnaire(policy, compiled_catalog.assessments, "1")["description"])
        texts += [policy.citation(c.section) for c in policy.all_criteria()]
        page = client.get(f"/policies/{policy.id}").get_data(as_text=True)
        texts += [html.unescape(line) for line in page.split("\n") if 'class="meta"' in line or "<b>" in line]
    nested = [text for text in texts if deepest(text) > 1]
    assert not nested, nested
    versions = {p.version for p in compiled_catalog.policies.values()}
    assert any(f"[{v}]" in text for text in texts for v in versions)  # the words kept, set apart


def item_texts(items: list[dict[str, Any]]) -> list[str]:
    """Every question's text in a Questionnaire's `items`, those nested in groups too."""
    return [t for i in items for t in ([i["text"]] if "text" in i else []) + item_texts(i.get("item", []))]


def test_no_documentation_question_nests_a_parenthesis_in_another(compiled_catalog: Catalog) -> None:
    """review28d: DTR shows each question of the documentation Questionnaire as the assessment and, in
    parentheses, the criterion it answers; a criterion's label holding parentheses of its own ("Body size
    supports the device (Body size adequate (assessment))", "Spasticity trial response (Beneficial response
    to the baclofen trial (e.g. >= 2 points for 4 hours))") nested one in another, beside the description
    842f659 set apart. The label is set apart as the cards set it (`wording.aside`), its words unchanged."""
    texts = [
        text
        for policy in compiled_catalog.policies.values()
        for text in item_texts(questionnaire(policy, compiled_catalog.assessments, "1")["item"])
    ]
    labels = {c.label for p in compiled_catalog.policies.values() for c in p.all_criteria() if "(" in c.label}
    assert texts and labels
    nested = [text for text in texts if deepest(text) > 1]
    assert not nested, nested
    assert any(f"[{label}]" in text for text in texts for label in labels)  # the words kept, set apart
