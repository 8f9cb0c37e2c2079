"""Which of the payer's plans a card judged, where an answer judges two Coverages of one payer under two
policies (CRD 2.0/2.1 answer every relevant Coverage; 2.2 refuses two): Kaiser Permanente Washington's
Medicare Coverage goes to the NCD, its other one to Kaiser's criteria, and both cards opened "Kaiser
Permanente Washington: …" (cards25, item 3). Cards of two payers are told apart by the payer already,
and no card names a member id."""

from __future__ import annotations

from typing import Any

from tests.builders import SOPT, cards_of, meeting_chart, payer_coverage, without_codes
from tests.calls import sign_with_chart
from tests.support import sign_body

MEDICARE = {"coding": [{"system": SOPT, "code": "1"}]}
PLAN_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
NOT_CODED = "plan not coded as Medicare"  # a plan told apart from the payer's Medicare one


def _answer(*coverages: dict[str, Any], chart: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = sign_body()
    for coverage in coverages:
        coverage["beneficiary"] = {"reference": f"Patient/{body['context']['patientId']}"}
        coverage["subscriberId"] = f"MEMBER-{coverage['id']}"
    entries = [{"resource": c} for c in coverages]
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    body["prefetch"].pop("payerOrganizations", None)
    return sign_with_chart(meeting_chart() if chart is None else chart, body=body)[1]


def test_two_plans_of_one_payer_are_named_on_their_cards() -> None:
    # two of the catheter trial's results missing, which share what to do: the commercial plan's card has an
    # Instructions card to name its plan (a decision card that says every step has none: says_every_step)
    answer = _answer(
        payer_coverage("kpwa", id="cov-kp-commercial"),
        payer_coverage("kpwa", id="cov-kp-medicare", type=MEDICARE),
        chart=without_codes(meeting_chart(), "it-trial-side-effects"),
    )
    decisions = cards_of(answer["cards"])
    assert len(decisions) == 2
    [medicare] = [c for c in decisions if "policy: National Coverage Determination" in c["detail"]]
    [other] = [c for c in decisions if "policy: Clinical Review Criteria" in c["detail"]]
    assert medicare["summary"].startswith("Kaiser Permanente Washington, Medicare plan: "), medicare[
        "summary"
    ]
    assert other["summary"].startswith(f"Kaiser Permanente Washington, {NOT_CODED}: "), other["summary"]
    assert "(Kaiser Permanente Washington, Medicare plan) for 62362" in medicare["detail"]
    titles = [c["summary"] for c in cards_of(answer["cards"], "clinical-reminder")]
    assert titles and all(title.split(":")[0].endswith((" Medicare plan", NOT_CODED)) for title in titles), (
        titles
    )
    assert "MEMBER-" not in str(answer["cards"])


def test_one_plan_of_each_of_two_payers_is_named_by_its_payer_alone() -> None:
    answer = _answer(payer_coverage("geha", id="cov-geha"), payer_coverage("cbc", id="cov-cbc"))
    summaries = [card["summary"] for card in cards_of(answer["cards"])]
    assert [s.split(":")[0] for s in summaries] == ["GEHA", "Capital Blue Cross"], summaries
    assert "plan" not in " ".join(s.split(":")[0] for s in summaries)


def test_a_plan_named_medicare_but_not_coded_so_is_not_called_non_medicare() -> None:
    """review25b L3: a Kaiser plan named "Kaiser Permanente Medicare Advantage" whose Coverage.type is
    coded SOPT 5 (private health insurance) is judged under Kaiser's own criteria (contract §6: the coded
    type decides, whatever the names say), and its card called it "non-Medicare plan", against the plan's
    own name. The routing stands; the card says what decided it, neither Medicare nor not."""
    named = payer_coverage("kpwa", id="cov-kp-named", type={"coding": [{"system": SOPT, "code": "5"}]})
    named["class"] = [
        {
            "type": {"coding": [{"system": PLAN_CLASS, "code": "plan"}]},
            "value": "KP-MA",
            "name": "Kaiser Permanente Medicare Advantage",
        }
    ]
    answer = _answer(named, payer_coverage("kpwa", id="cov-kp-medicare", type=MEDICARE))
    [other] = [c for c in cards_of(answer["cards"]) if "policy: Clinical Review Criteria" in c["detail"]]
    said = [other["summary"], other["detail"].split("\n")[0]]
    said += [
        c["summary"] for c in cards_of(answer["cards"], "clinical-reminder") if "Medicare" in c["summary"]
    ]
    assert not any("non-Medicare" in words for words in said), said
    assert other["summary"].startswith(f"Kaiser Permanente Washington, {NOT_CODED}: "), other["summary"]
