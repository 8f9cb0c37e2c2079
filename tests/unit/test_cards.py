"""The decision card: short summary, evidence and citations, no empty values anywhere."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from cards.render import SUMMARY_LIMIT, decision_card
from service.engine.model import Determination, Outcome
from tests.builders import ICD, condition, determine, infusate_request, med_request, meeting_chart


def no_empty_values(value: Any, path: str = "card") -> None:
    assert value is not None, path
    if isinstance(value, str | list | dict):
        assert len(value) > 0, path
    if isinstance(value, dict):
        for key, item in value.items():
            no_empty_values(item, f"{path}.{key}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            no_empty_values(item, f"{path}[{i}]")


def determinations() -> list[Determination]:
    return [
        determine(meeting_chart()),
        determine([]),
        determine([*meeting_chart(), condition(ICD, "Z95.0", "2020-01-01")]),
        determine(
            [condition(ICD, "G35.A", "2019-01-01")],
            drugs=(infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),),
        ),
    ]


@pytest.mark.parametrize("d", determinations(), ids=lambda d: d.outcome.value)
def test_card_shape(d: Determination) -> None:
    card = decision_card(d)
    no_empty_values(card)
    assert len(card["summary"]) <= SUMMARY_LIMIT
    assert card["indicator"] in ("info", "warning")
    assert card["source"]["label"] == "GEHA"
    assert card["source"]["topic"]["code"] == "coverage-info"
    uuid.UUID(card["uuid"])


def test_outcomes_are_all_covered() -> None:
    assert {d.outcome for d in determinations()} == set(Outcome)


def test_long_payer_names_keep_the_summary_short() -> None:
    d = dataclasses.replace(determine([]), payer="The Extraordinarily Long Named Regional Health Plan " * 4)
    summary = decision_card(d)["summary"]
    assert len(summary) <= SUMMARY_LIMIT
    assert summary.endswith("…")


def test_detail_leads_with_what_blocks_coverage_and_cites_evidence() -> None:
    chart = [*meeting_chart(), condition(ICD, "Z95.0", "2020-01-01", "Presence of cardiac pacemaker")]
    detail = decision_card(determine(chart))["detail"]
    assert detail.index("❌ Not met") < detail.index("✅ Met")
    assert "Presence of cardiac pacemaker (onset 1 Jan 2020) [Condition/" in detail
    assert (
        'When Implantable infusion pumps are not covered, item B: "Other implanted programmable devices'
        in detail
    )


def test_missing_items_say_how_to_document_them() -> None:
    detail = decision_card(determine([med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01")]))["detail"]
    assert "❔ Not documented: D. Trial relief >= 50 %" in detail
    assert "To document: Document the trial" in detail
    assert "(completed, 1 Jan 2025 → 31 Jan 2025, 4 weeks 2 days) [MedicationRequest/" in detail


def test_each_card_gets_a_fresh_uuid() -> None:
    d = determine([])
    assert decision_card(d)["uuid"] != decision_card(d)["uuid"]


@pytest.mark.parametrize("d", determinations(), ids=lambda d: d.outcome.value)
def test_override_reasons_only_when_the_order_does_not_clearly_meet(d: Determination) -> None:
    card = decision_card(d)
    if d.outcome == Outcome.MEETS:
        assert "overrideReasons" not in card
        return
    reasons = card["overrideReasons"]
    assert len(reasons) >= 2
    assert len({r["code"] for r in reasons}) == len(reasons)
    for reason in reasons:
        assert set(reason) == {"system", "code", "display"}
        assert reason["system"] == "http://idds-crd.org/fhir/CodeSystem/idds-override-reason"
        assert reason["display"].strip()
