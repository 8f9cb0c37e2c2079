"""The order's reason (contract §2: `reasonCode`, or `reasonReference` to a Condition) read however an
EHR writes the reference: relative, absolute, versioned, contained, among the draft orders, or naming
a later copy of a diagnosis the chart repeats."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    HCPCS,
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


def _indications(orders: list[dict[str, Any]], chart: list[dict[str, Any]]) -> dict[str, bool]:
    """Whether GEHA's coverage information for each order of one call says cancer pain (GEHA does
    not address it), by the order's code."""
    _, response = sign_with_chart(chart, body=sign_request(*orders))
    said = {}
    for action in response["systemActions"]:
        code = action["resource"]["code"]["coding"][0]["code"]
        said[code] = "cancer pain" in assertion_of(action)["reason"]["text"]
    return said


def test_an_order_whose_reason_tells_no_indication_takes_the_episodes() -> None:
    """A catheter whose reason is Z45.49 (device adjustment), beside a 62362 for postlaminectomy
    syndrome, with a malignancy on the problem list: the same implant (late review). Before, its
    reason, though it told nothing, kept the 62362's from it, and it was judged for cancer pain."""
    chart = [*without_codes(meeting_chart(), "M96.1"), metastasis("c-met", "2026-03-02")]
    pump, catheter = service_request("62362"), service_request("62350")
    pump["reasonCode"] = [concept(ICD, "M96.1", "Postlaminectomy syndrome")]
    catheter["reasonCode"] = [concept(ICD, "Z45.49", "Encounter for adjustment of implanted nervous device")]
    assert _indications([pump, catheter], chart) == {"62362": False, "62350": False}


def test_an_order_without_a_reason_takes_the_principals_not_a_pooled_one() -> None:
    """The 62362 for a bone metastasis, the catheter for postlaminectomy syndrome (contradicting), the
    E0783 with none: it is the 62362's device and is judged as the 62362 is (late review). Before, the
    reasons of both others were pooled, the catheter's pain cause outweighed the malignancy (AMB-11),
    and the E0783 was judged for non-malignant pain beside a 62362 judged for cancer pain."""
    chart = [*without_codes(meeting_chart(), "M96.1"), metastasis("c-met", "2026-03-02")]
    pump, catheter, device = (
        service_request("62362"),
        service_request("62350"),
        service_request("E0783", HCPCS),
    )
    pump["reasonCode"] = [concept(ICD, "C79.51", "Secondary malignant neoplasm of bone")]
    catheter["reasonCode"] = [concept(ICD, "M96.1", "Postlaminectomy syndrome")]
    assert _indications([pump, catheter, device], chart) == {"62362": True, "62350": False, "E0783": True}


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
