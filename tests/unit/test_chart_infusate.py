"""The pump's drug from the chart (contract §2): a catheter revision or a refill ordered without a drug is
judged by the patient's active intrathecal or epidural MedicationRequest, and once that tells the
indication, neither the judgement nor the instructions speak of the other indication's criteria."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.builders import (
    ICD,
    ORAL_ROUTE,
    PUMP_IN_PLACE,
    SCT,
    allergy,
    baclofen_request,
    cards_of,
    catalog,
    concept,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sign_body, sign_with_chart
from tests.card_scenarios import CLINICAL_TYPES_READ
from tests.reference_support import indications
from tests.support import assertion_of

SPASTICITY_WORDS = re.compile(r"baclofen|ashworth|spastic|spasm", re.IGNORECASE)
PAIN_WORDS = re.compile(r"opioid|pain relief|life expectancy|relief >", re.IGNORECASE)
ORDERS_WITHOUT_A_DRUG = ["62350", "62355", "62369", "95990"]


def hook(chart: list[dict[str, Any]], *orders: dict[str, Any], payer: str = "kpwa") -> dict[str, Any]:
    """The response to an order-sign of `orders` for a patient with a pump in place and `chart`."""
    call = sign_request(*orders, coverage=payer_coverage(payer))
    _, response = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE, *chart], body=call)
    return response


def instructions(response: dict[str, Any]) -> str:
    """The instructions cards' text, without the policies' titles (a title is not a criterion); where
    there are none (a request its policy has no criteria for; items the decision card shows in full,
    each its own step), the decision card's, which says what to do then, but its line of what is met
    (those criteria are not to document)."""
    cards = cards_of(response["cards"], "clinical-reminder") or cards_of(response["cards"])
    said = [line for c in cards for line in [c["summary"], *c["detail"].splitlines()]]
    text = "\n".join(line for line in said if not line.startswith("✅"))
    for policy in catalog().policies.values():
        text = text.replace(policy.title, "the policy")
    return text


@pytest.mark.parametrize("code", ORDERS_WITHOUT_A_DRUG)
@pytest.mark.parametrize("payer", ["kpwa", "cbc", "cohere", "cmm210"])
@pytest.mark.parametrize(
    ("pump_drug", "indication", "other_indication"),
    [
        (infusate_request(status="active"), "non-malignant-pain", SPASTICITY_WORDS),
        (baclofen_request(status="active"), "spasticity", PAIN_WORDS),
    ],
    ids=["morphine", "baclofen"],
)
def test_the_charts_pump_drug_tells_the_indication_and_nothing_speaks_of_the_other(
    code: str, payer: str, pump_drug: dict[str, Any], indication: str, other_indication: re.Pattern[str]
) -> None:
    response = hook([pump_drug], service_request(code), payer=payer)
    assert indications(response) == {indication}
    assert instructions(response)
    assert not other_indication.findall(instructions(response))


@pytest.mark.parametrize(
    "not_in_the_pump",
    [baclofen_request(status="stopped"), baclofen_request(status="active", route=ORAL_ROUTE)],
    ids=["stopped", "oral"],
)
def test_a_stopped_or_oral_chart_drug_is_not_the_infusate(not_in_the_pump: dict[str, Any]) -> None:
    response = hook([not_in_the_pump], service_request("62350"))
    assert indications(response) == {"non-malignant-pain"}  # from the chart's postlaminectomy syndrome


def test_a_drug_the_call_orders_wins_over_the_chart() -> None:
    response = hook([baclofen_request(status="active")], service_request("62350"), infusate_request())
    assert indications(response) == {"non-malignant-pain"}
    assert not SPASTICITY_WORDS.findall(instructions(response))


@pytest.mark.parametrize("code", ["62350", "95990"])
def test_a_chart_drug_order_the_pump_order_names_tells_the_indication(code: str) -> None:
    """Contract §2: the infusate is "... or `ServiceRequest.orderDetail` / `reasonReference` naming it";
    the chart's baclofen order the refill names (active, no route given) is the pump's drug, found
    among the chart's gathered drug orders. Before, only a draft order was followed (contract review
    s17 F7), and the order was judged for the problem list's pain."""
    named = baclofen_request(status="active")
    del named["dosageInstruction"]
    order = service_request(code)
    order["reasonReference"] = [{"reference": f"MedicationRequest/{named['id']}"}]
    response = hook([named], order)
    assert indications(response) == {"spasticity"}
    assert not PAIN_WORDS.findall(instructions(response))


@pytest.mark.parametrize("payer", ["kpwa", "cbc", "cohere", "cmm210"])
@pytest.mark.parametrize("code", ["62350", "62362"])
def test_when_nothing_tells_the_indication_documenting_it_is_the_one_step(payer: str, code: str) -> None:
    """Every open criterion but those of every indication the policy addresses depends on it: only
    CMM-210, which addresses all four, lists its replacement criteria beside it."""
    call = sign_request(service_request(code), coverage=payer_coverage(payer))
    _, response = sign_with_chart([PUMP_IN_PLACE], body=call)
    [decision] = cards_of(response["cards"])
    assert decision["detail"].startswith("**What the pump is for is not documented**")
    missing = [line for line in decision["detail"].splitlines() if line.startswith("- ❔")]
    assert len(missing) == (2 if payer == "cmm210" else 1)
    assert missing[0].startswith("- ❔ **What the pump is for**")
    assert "— Record the diagnosis the pump treats" in missing[0], missing[0]
    # each item its own step, all on the decision card: no Instructions card says them again (cards23)
    assert cards_of(response["cards"], "clinical-reminder") == []


@pytest.mark.parametrize("payer", ["geha", "kpwa", "cbc", "cohere", "cmm210"])
def test_when_the_chart_that_could_tell_the_indication_could_not_be_read_the_order_could_not_be_checked(
    payer: str,
) -> None:
    """The pump's drug is the chart's, and every clinical search fails: the problem list and the drug
    were never read, so nothing says what the pump is for is undocumented, and the payer is not told
    documentation is needed. Before, the card read "1 item to document — What the pump is for:
    neither the order's reason, its drug nor the problem list tells" (clinical review 3, H1)."""
    chart = [*meeting_chart(), infusate_request(status="active")]
    call = sign_request(service_request("62362"), coverage=payer_coverage(payer))
    _, response = sign_with_chart(chart, body=call, failing=CLINICAL_TYPES_READ)
    [decision] = cards_of(response["cards"])
    assert "could not be checked" in decision["summary"], decision["summary"]
    assert decision["detail"].startswith("**Could not be checked**")
    [reminder] = cards_of(response["cards"], "clinical-reminder")
    assert "neither the order's reason" not in decision["detail"] + reminder["detail"]
    # what the pump is for is unread, not undocumented: a step to check again (late review 36, M4)
    assert "What the pump is for (the chart data that could tell it" in reminder["detail"]
    assert "call again once the EHR's data is available" in reminder["detail"]
    reason = assertion_of(response["systemActions"][0])["reason"]["text"]
    assert "documentation needed" not in reason and "the EHR's data could not be read" in reason, reason


@pytest.mark.parametrize("payer", ["geha", "cohere"])
def test_a_drafted_pain_drug_with_the_problem_list_unread_does_not_name_the_kind_of_pain(payer: str) -> None:
    """The drug says pain; whether cancer pain only the problem list would tell, and it could not be
    read: the cards do not state "chronic non-malignant pain", the default the order is judged under
    (clinical review 3, L1)."""
    call = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage(payer))
    _, response = sign_with_chart(meeting_chart(), body=call, failing=("Condition",))
    text = " ".join(c["summary"] + " " + c["detail"] for c in response["cards"])
    assert "non-malignant" not in text, text
    [decision] = cards_of(response["cards"])
    assert "for pain (cancer-related or not: the problem list could not be read)." in decision["detail"]
    told = sign_request(
        service_request("62362", reason=[concept(ICD, "M96.1", "Postlaminectomy syndrome")]),
        infusate_request(),
        coverage=payer_coverage(payer),
    )
    _, response = sign_with_chart(meeting_chart(), body=told, failing=("Condition",))
    assert "for chronic non-malignant pain." in cards_of(response["cards"])[0]["detail"]


def test_an_indication_nothing_read_tells_is_still_the_one_item_when_only_other_data_failed() -> None:
    """The problem list and the medications were read and tell nothing: the pain scores failing
    does not make what the pump is for unknown."""
    call = sign_request(service_request("62362"), coverage=payer_coverage("geha"))
    _, response = sign_with_chart([], body=call, failing=("Observation",))
    [decision] = cards_of(response["cards"])
    assert decision["summary"] == "GEHA: 1 item to document for 62362 — What the pump is for"


def decision_lines(response: dict[str, Any]) -> list[str]:
    """The decision cards' lines, without the policy line (a title is not a criterion)."""
    details = "\n".join(c["detail"] for c in cards_of(response["cards"]))
    return [line for line in details.splitlines() if not line.startswith("_")]


# A criterion of every pump, whatever its drug: Cohere's non-indications apply to baclofen pumps too (AMB-39).
EVERY_PUMP = re.compile(r"No opioid addiction")


@pytest.mark.parametrize("code", ["62350", "62362", "62369"])
@pytest.mark.parametrize("payer", ["kpwa", "cbc", "cohere", "cmm210"])
@pytest.mark.parametrize(
    ("pump_drug", "other_indication"),
    [(infusate_request(status="active"), SPASTICITY_WORDS), (baclofen_request(status="active"), PAIN_WORDS)],
    ids=["morphine", "baclofen"],
)
def test_no_line_of_the_decision_card_speaks_of_the_other_indication(
    code: str, payer: str, pump_drug: dict[str, Any], other_indication: re.Pattern[str]
) -> None:
    response = hook([pump_drug], service_request(code), payer=payer)
    spoken = [line for line in decision_lines(response) if other_indication.search(line)]
    assert [line for line in spoken if not EVERY_PUMP.search(line)] == []


def test_with_the_medication_orders_unread_the_card_says_what_the_pump_is_for_could_not_be_read() -> None:
    """No drug in the call, the problem list read and empty, the medication orders unread: the chart's
    pump drug could tell what the pump is for. Before, the card named only the one criterion the
    failed search left unchecked (late review 36, M4)."""
    call = sign_request(service_request("62362"), coverage=payer_coverage("geha"))
    _, response = sign_with_chart([], body=call, failing=("MedicationRequest",))
    [decision] = cards_of(response["cards"])
    assert decision["detail"].startswith("**Could not be checked** (GEHA)")
    listed = [line.split("**")[1] for line in decision["detail"].splitlines() if line.startswith("- ")]
    assert listed[0] == "What the pump is for"


def test_with_the_medication_orders_unread_the_pumps_drug_is_not_taken_for_none() -> None:
    """A catheter for the pump in place, ordered without a drug: the pump's drug is the chart's
    (contract §2), whose medication orders could not be read. What reads the pump's drug could not be
    checked; before, it read as no drug ordered, and the card asked to order the infusate."""
    call = sign_request(service_request("62350"), coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart(
        [*meeting_chart(), PUMP_IN_PLACE], body=call, failing=("MedicationRequest",)
    )
    text = "\n".join(c["detail"] for c in response["cards"])
    assert "no drug for the pump is ordered" not in text
    assert "Order the opioid infusate" not in text
    assert "the EHR's pump drug orders were not available (HTTP 503)" in text


@pytest.mark.parametrize("named", ["stopped", "active oral"])
def test_the_failed_oral_opioid_a_pump_order_names_as_its_reason_is_not_the_pumps_drug(named: str) -> None:
    """Session review s18 R-6: the implant's reasonReference names the chart's oral oxycodone order (the
    failed systemic opioid: why the pump is ordered), and the chart records an allergy to oxycodone. The
    pump's drug is the call's intrathecal morphine: the order meets the policy, never "not covered -
    allergy to the infused agent" (a chart drug order named by reasonReference was read as the pump's
    whatever its route and status). A stopped order, or one given by another route, is not one the
    pump could deliver."""
    chart = [*meeting_chart(), allergy("oxycodone", "7804")]
    oxycodone = next(r for r in chart if "Oxycodone" in str(r.get("medicationCodeableConcept")))
    if named == "active oral":
        oxycodone["status"] = "active"
        oxycodone["dosageInstruction"] = [{"route": concept(SCT, ORAL_ROUTE, "Oral route")}]
    body = sign_body()
    pump = next(
        e["resource"] for e in body["context"]["draftOrders"]["entry"] if "62362" in str(e["resource"])
    )
    pump["reasonReference"] = [{"reference": f"MedicationRequest/{oxycodone['id']}"}]
    _, response = sign_with_chart(chart, body=body)
    [decision] = cards_of(response["cards"])
    assert decision["summary"] == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
