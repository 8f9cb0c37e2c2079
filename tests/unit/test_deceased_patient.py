"""A patient the chart records as deceased: no policy or contract clause names it, so no verdict changes,
but the decision card says it in one line (review s19 L1: six Synthea patients with a deceasedDateTime got
cards asking for a trial and a life expectancy, and none said so)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.calls import prefetch_app
from tests.support import REQUESTS_DIR

SAMPLE = "order-sign-implant-demo-meets.json"  # every prefetch key: the chart comes from prefetch alone


def _decision_details(patient_fields: dict[str, Any]) -> list[tuple[str, str]]:
    """(indicator, detail) of the decision cards (a verdict first) of the sample's answer, its Patient
    given `patient_fields`."""
    body = json.loads((REQUESTS_DIR / SAMPLE).read_text(encoding="utf-8"))
    body = copy.deepcopy(body)
    body["prefetch"]["patient"].update(patient_fields)
    response = prefetch_app().test_client().post("/cds-services/idds-crd-order-sign", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    return [(c["indicator"], c["detail"]) for c in cards if c["detail"].startswith("**Meets the criteria**")]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"deceasedDateTime": "2021-03-12T08:00:00Z"}, "deceased (12 Mar 2021)"),
        ({"deceasedDateTime": "2021-03"}, "deceased (March 2021)"),  # no invented day (review19 L2)
        ({"deceasedDateTime": "2021"}, "deceased (2021)"),
        ({"deceasedBoolean": True}, "this patient as deceased:"),
    ],
)
def test_a_deceased_patient_is_named_on_the_decision_card_and_changes_no_verdict(
    fields: dict[str, Any], said: str
) -> None:
    alive = _decision_details({})
    dead = _decision_details(fields)
    assert alive and len(dead) == len(alive)
    assert not any("deceased" in detail for _, detail in alive)
    for (alive_indicator, alive_detail), (indicator, detail) in zip(alive, dead, strict=True):
        assert indicator == alive_indicator
        assert said in detail
        paragraphs = [p for p in detail.split("\n\n") if "deceased" not in p]
        assert paragraphs == alive_detail.split("\n\n")


def test_a_living_patient_or_a_false_deceased_flag_gets_no_such_line() -> None:
    assert not any("deceased" in detail for _, detail in _decision_details({"deceasedBoolean": False}))


def _decision_summaries(patient_fields: dict[str, Any]) -> list[str]:
    body = copy.deepcopy(json.loads((REQUESTS_DIR / SAMPLE).read_text(encoding="utf-8")))
    body["prefetch"]["patient"].update(patient_fields)
    response = prefetch_app().test_client().post("/cds-services/idds-crd-order-sign", json=body)
    assert response.status_code == 200
    return [
        c["summary"] for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "coverage-info"
    ]


def test_the_decision_cards_summary_says_the_patient_is_recorded_as_deceased() -> None:
    """cardfix20 F4h: a clinician reading only titles saw the Instructions card's "patient recorded as
    deceased" but not the decision card's, whose detail alone said it. Its title says it first, the
    verdict after it unchanged."""
    alive = _decision_summaries({})
    dead = _decision_summaries({"deceasedDateTime": "2021-03"})
    assert alive and len(dead) == len(alive)
    for living, deceased in zip(alive, dead, strict=True):
        payer, verdict = living.split(": ", 1)
        assert deceased == f"{payer}: patient recorded as deceased; {verdict}"


@pytest.mark.parametrize(
    ("sample", "hook"),
    [
        ("appointment-book-62362-demo-meets.json", "appointment-book"),
        ("order-dispatch-62362-demo-meets.json", "order-dispatch"),
        ("encounter-start-demo-meets.json", "encounter-start"),
    ],
)
def test_a_deceased_patients_order_that_meets_is_not_told_to_get_a_prior_authorization(
    sample: str, hook: str
) -> None:
    """review24d: on a hook with no Instructions card, a met order's decision card said "Prior
    authorization still needed from GEHA" above the deceased warning, where order-sign's Instructions
    card proposes no order or form for that patient, only to check the chart first. Alive, it says it."""

    def detail(patient_fields: dict[str, Any]) -> str:
        body = copy.deepcopy(json.loads((REQUESTS_DIR / sample).read_text(encoding="utf-8")))
        body["prefetch"]["patient"].update(patient_fields)
        response = prefetch_app().test_client().post(f"/cds-services/idds-crd-{hook}", json=body)
        assert response.status_code == 200
        [decision] = [c for c in response.get_json()["cards"] if c["detail"].startswith("**Meets")]
        return str(decision["detail"])

    assert "**Prior authorization still needed**" in detail({})
    dead = detail({"deceasedDateTime": "2021-03"})
    assert "deceased (March 2021)" in dead
    assert "prior authorization" not in dead.lower()
