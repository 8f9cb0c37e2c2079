"""The order's reason (contract §2: `reasonCode`, or `reasonReference` to a Condition) read however an
EHR writes the reference: relative, absolute, versioned, contained, among the draft orders, or naming
a later copy of a diagnosis the chart repeats."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ICD,
    cards_of,
    concept,
    condition,
    determine,
    meeting_chart,
    service_request,
    sign_request,
    without_codes,
)
from tests.calls import sign_with_chart
from tests.support import assertion_of


def metastasis(rid: str, onset: str) -> dict[str, Any]:
    resource = condition(ICD, "C79.51", onset, "Secondary malignant neoplasm of bone")
    return {**resource, "id": rid}


def order_naming(reference: str, contained: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    order = service_request()
    order["reasonReference"] = [{"reference": reference}]
    if contained:
        order["contained"] = contained
    return order


CHART = [*meeting_chart(), metastasis("c-met", "2026-03-02"), metastasis("c-met-2", "2026-06-01")]


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param("Condition/c-met", id="relative"),
        pytest.param("https://ehr.example.org/fhir/Condition/c-met", id="absolute"),
        pytest.param("Condition/c-met/_history/2", id="versioned"),
        pytest.param("Condition/c-met-2", id="a-later-copy-of-a-repeated-diagnosis"),
    ],
)
def test_a_reason_reference_to_a_chart_condition_gives_the_indication(reference: str) -> None:
    assert determine(CHART, order=order_naming(reference)).indication == "cancer-pain"


def test_a_contained_reason_condition_gives_the_indication() -> None:
    order = order_naming("#why", contained=[metastasis("why", "2026-03-02")])
    assert determine(meeting_chart(), order=order).indication == "cancer-pain"


@pytest.mark.parametrize("reference", ["urn:uuid:why", "Condition/why"])
def test_a_reason_condition_among_the_draft_orders_gives_the_indication(reference: str) -> None:
    why = metastasis("why", "2026-03-02")
    d = determine(meeting_chart(), order=order_naming(reference), companions=(why,))
    assert d.indication == "cancer-pain"


def test_an_order_of_the_episode_without_a_reason_takes_the_reason_of_the_one_that_gives_it() -> None:
    """EHRs often put the reason on one order of an implant only. With a malignancy and no pain cause
    on the problem list, the catheter ordered beside a 62362 whose reason is postlaminectomy syndrome
    was judged for cancer pain, the 62362 for non-malignant pain: GEHA's coverage information said
    cancer pain is not addressed for the one and documentation needed for the other, and the card
    said the catheter had no criteria (Synthea review, F2)."""
    chart = [*without_codes(meeting_chart(), "M96.1"), metastasis("c-met", "2026-03-02")]
    pump, catheter = service_request("62362"), service_request("62350")
    pump["reasonCode"] = [concept(ICD, "M96.1", "Postlaminectomy syndrome")]
    _, response = sign_with_chart(chart, body=sign_request(pump, catheter))
    reasons = [assertion_of(action)["reason"]["text"] for action in response["systemActions"]]
    assert len(reasons) == 2 and not any("cancer pain" in r for r in reasons), reasons
    [decision] = cards_of(response["cards"])
    assert "for chronic non-malignant pain" in decision["detail"]
    assert "no criteria for this request" not in decision["detail"], decision["detail"]


def test_without_a_reason_the_problem_list_decides() -> None:
    assert determine(meeting_chart()).indication == "non-malignant-pain"


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_a_reason_condition_carried_in_the_call_counts_only_as_the_charts_do(verification: str) -> None:
    """Contract §3's filter holds for a Condition the order carries too: a metastasis refuted, or
    entered in error, says nothing of the indication, contained or among the draft orders."""
    why = metastasis("why", "2026-03-02")
    why["verificationStatus"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}
        ]
    }
    contained = determine(meeting_chart(), order=order_naming("#why", contained=[why]))
    drafted = determine(meeting_chart(), order=order_naming("Condition/why"), companions=(why,))
    assert (contained.indication, drafted.indication) == ("non-malignant-pain", "non-malignant-pain")
