"""What the Instructions card says beside its steps (cardfix20): its title counts what the clinician
reads, the numbered steps, when several criteria share one step (defect 1 of session 20: "8 items"
above 4 steps since `items.steps` merged them); and for a patient the chart records as deceased, no
order is proposed, and the card says why (defect 3: a trial was offered for a dead patient)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from cards.items import TRIAL_NOT_DONE, Episode
from cards.render import instructions_card, next_steps, summary
from service.catalog import Catalog
from service.engine.model import CriterionResult
from tests.builders import (
    ICD,
    PATIENT,
    SCT,
    cards_of,
    catalog,
    condition,
    determine,
    meeting_chart,
    without_codes,
)
from tests.calls import sign_with_chart
from tests.markdown_support import shown_lines
from tests.support import numbered_steps, sign_body

NUMBERED = re.compile(r"^\d+\. ", flags=re.M)
INFECTION = condition(ICD, "L03.115", "2026-11-01", "Cellulitis of right lower limb")
TOOTH = condition(SCT, "427898007", "2006-01-01", "Infection of tooth (disorder)")
TITLED = {
    "items-to-document": ([], "geha-idds-chronic-pain"),
    "items-in-fewer-steps": ([], "cohere-intrathecal-pain-pumps"),
    "items-and-reviewer": ([TOOTH], "kpwa-implanted-infusion-pumps"),
    "one-item": (without_codes(meeting_chart(), "62324"), "geha-idds-chronic-pain"),
    "not-covered": ([*meeting_chart(), INFECTION], "geha-idds-chronic-pain"),
}


def test_the_title_counts_the_steps_the_card_numbers_when_criteria_share_them() -> None:
    """Cohere on an empty chart: 20 criteria in 10 steps; the title said "20 items to document" above
    10 numbered steps."""
    episode = Episode.of([determine([], policy_id="cohere-intrathecal-pain-pumps")])
    card = instructions_card(episode, *next_steps(episode))
    numbered = len(NUMBERED.findall(card["detail"]))
    assert numbered < len(episode.missing)
    assert card["summary"].endswith(
        f"how to document {len(episode.missing)} items for 62362, in {numbered} steps"
    )


def test_the_steps_in_the_title_are_all_the_items_not_the_reviewers_alone() -> None:
    """review20 L1: "9 items to document and 1 for the payer's reviewer in 6 steps" read as six steps
    for the reviewer's one item."""
    chart = [condition(SCT, "427898007", "2006-01-01", "Infection of tooth (disorder)")]
    episode = Episode.of([determine(chart, policy_id="kpwa-implanted-infusion-pumps")])
    card = instructions_card(episode, *next_steps(episode))
    numbered = len(NUMBERED.findall(card["detail"]))
    assert f"leave 1 to the payer's reviewer for 62362, in {numbered} steps" in card["summary"], card[
        "summary"
    ]


def test_the_title_says_no_steps_when_each_item_is_its_own() -> None:
    episode = Episode.of([determine(without_codes(meeting_chart(), "62324"))])
    card = instructions_card(episode, *next_steps(episode))
    assert len(NUMBERED.findall(card["detail"])) == len(episode.missing) == 1
    assert card["summary"] == "GEHA: how to document 1 item for 62362"


def _answer(patient: dict[str, Any], catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """The cards of an order-sign of a pump with no trial and no trial result on the chart (`catalog`:
    the shipped one unless given), the Patient given `patient`."""
    body = sign_body()
    body["prefetch"]["patient"].update(patient)
    chart = without_codes(meeting_chart(), "62324", "it-trial-side-effects")
    return sign_with_chart(chart, catalog, body=body)[1]["cards"]


def test_no_order_is_proposed_for_a_patient_the_chart_records_as_deceased() -> None:
    alive = _answer({})
    assert any("suggestions" in c for c in alive)  # the trial is proposed while the patient lives
    cards = _answer({"deceasedDateTime": "2021-03"})
    assert not any("suggestions" in c for c in cards)
    [listing] = [c for c in cards_of(cards, "clinical-reminder")]
    first = shown_lines(listing["detail"])[:2]
    assert first[0] == "**Before going ahead**"
    assert first[1].startswith(
        "1. The chart records this patient as deceased (March 2021): no order or form"
    ), first
    assert (
        listing["summary"]
        == "GEHA: patient recorded as deceased: check the chart first for 62362, 62350, E0783"
    )
    [decision] = cards_of(cards)
    assert decision["detail"].count("deceased") == 1  # the decision card says it once, as before
    [alive_listing] = [c for c in cards_of(alive, "clinical-reminder") if "suggestions" not in c]
    # what to document is still listed, after it; not the trial to order first, as none is proposed, but
    # that none has been done (the alive card's Order group, which holds what the trial is to show, comes
    # before its other steps)
    assert sorted(_steps(listing)[1:]) == sorted(_not_ordered_first(step) for step in _steps(alive_listing))


def _not_ordered_first(step: str) -> str:
    """`step` with the lead-in that says to order the trial first as it reads where none is proposed
    ("Order the trial first (CPT …); once the trial is done: …" is "No completed trial on the chart yet;
    once the trial is done: …")."""
    proposed = "Order the trial first (CPT 62322 or 62326); "
    return step.replace(proposed, f"{TRIAL_NOT_DONE}; ")


def _steps(card: dict[str, Any]) -> list[str]:
    return [step.split(". ", 1)[1] for step in numbered_steps(card["detail"])]


def test_the_title_for_a_patient_recorded_as_deceased_is_never_cut() -> None:
    """Fletcher (Synthea, Kaiser): "…: patient recorded as deceased, check the chart first; 8 items to
    document and 1 for the payer's reviewer in 5…", the order lines cut off, and a count of steps that
    left out the step saying so. The title says only what comes first."""
    deceased = {"resourceType": "Patient", "id": PATIENT, "deceasedDateTime": "1996-01-21"}
    d = determine([deceased], policy_id="kpwa-implanted-infusion-pumps")
    episode = Episode.of([d])
    card = instructions_card(episode, *next_steps(episode))
    assert card["summary"] == (
        "Kaiser Permanente Washington: patient recorded as deceased: check the chart first for 62362"
    ), card["summary"]


def test_no_form_is_proposed_for_a_patient_the_chart_records_as_deceased() -> None:
    """A payer without DTR gets its documentation form as a Task to add (CRD §resp-59): not for a
    patient the chart records as deceased either."""
    base = catalog()
    forms = replace(base, payers=tuple(replace(p, uses_dtr=p.key != "geha") for p in base.payers))
    assert any("Task" in str(c.get("suggestions")) for c in _answer({}, forms))
    assert not any("suggestions" in c for c in _answer({"deceasedBoolean": True}, forms))


@pytest.mark.parametrize("name", list(TITLED))
def test_the_instructions_title_does_not_read_like_the_decision_cards(name: str) -> None:
    """ehr20 C3 (cards20b, not done): in an EHR's list of titles "GEHA: 8 items to document for E0783 —
    B. Opioids > 6 weeks" sat beside "GEHA: 8 items to document for E0783", and "GEHA: not covered — …"
    beside "GEHA: not covered as ordered for 62362": the Instructions title says what to do, in other
    first words than the decision card's verdict."""
    chart, policy_id = TITLED[name]
    episode = Episode.of([determine(chart, policy_id=policy_id)])
    lead = episode.payer_lead
    decision = summary(episode).removeprefix(lead)
    steps = instructions_card(episode, *next_steps(episode))["summary"].removeprefix(lead)
    assert decision.split()[:2] != steps.split()[:2], (decision, steps)
    assert not decision.startswith(steps.split(" for ")[0]), (decision, steps)
    assert steps.startswith(("how to ", "before going ahead ")), steps
    assert len(steps) + len(lead) <= 140


def test_a_met_order_is_not_said_to_have_every_criterion_documented() -> None:
    """cards23: beside the decision card's "All 14 criteria met, 6 with none documented against them"
    (those met because nothing on the chart says otherwise: no infection, no other device), the
    Instructions card said "Request prior authorization from GEHA: every criterion is documented", the
    same word saying the opposite for a payer's reviewer. It says every criterion is met, as the
    decision card does."""
    _, response = sign_with_chart(meeting_chart())
    [decision] = cards_of(response["cards"])
    assert "with none documented against them" in decision["detail"], decision["detail"]
    [listing] = cards_of(response["cards"], "clinical-reminder")
    [first, _] = numbered_steps(listing["detail"])
    assert first == "1. Request prior authorization from GEHA: every criterion is met.", listing["detail"]


def test_evidence_is_asked_only_for_the_criteria_the_chart_documents() -> None:
    """cards23 LOW: "Send the chart evidence for each criterion with the request." beside "All 14
    criteria met, 6 with none documented against them": there is no record to send for those (no
    infection, no other device). The step names the criteria whose evidence to send, and says the
    others have none."""
    _, response = sign_with_chart(meeting_chart())
    [decision] = cards_of(response["cards"])
    assert "All 14 criteria met, 6 with none documented against them" in decision["detail"]
    [listing] = cards_of(response["cards"], "clinical-reminder")
    [_, second] = numbered_steps(listing["detail"])
    assert "each criterion" not in second, second
    assert second.startswith(
        "2. With the request, send the chart evidence for: "
        "A. Chronic pain > 6 months; A. Known cause of pain; "
    ), second
    assert second.endswith(
        "Psychiatric evaluation and its result. The other 6 criteria need none: nothing is documented "
        "against them."
    ), second


def test_evidence_is_asked_for_each_criterion_when_the_chart_documents_each() -> None:
    """The same step, where no criterion is met by absence alone: every criterion has its evidence."""
    d = determine(meeting_chart())
    episode = Episode.of([replace(d, criteria=tuple(_on_record(top) for top in d.criteria))])
    _, steps = next_steps(episode)
    assert steps[1][1] == "Send the chart evidence for each criterion with the request."


def _on_record(result: CriterionResult) -> CriterionResult:
    """`result` and every result below it as met on a record, none by absence."""
    return replace(result, by_absence=False, children=tuple(_on_record(c) for c in result.children))
