"""A drug order coded with an order code is billed as a line of the pump order of that code's kind
(service/billed_lines.py): a refill 95990 ordered with a MedicationRequest coded HCPCS J2274 (morphine,
preservative-free, no route) gets one answer, the refill's manual review, on its card and in both lines'
coverage information. Before, the drug line said "this service holds no coverage rules for code J2274
…; the payer's own requirements apply" beside the refill's "no coverage criteria … manual review"
(ehr review s17, L-4). The drug is still not the pump's drug (contract §2: no intrathecal or epidural
route), and a pump order a payer judges is not joined."""

from __future__ import annotations

from typing import Any

import pytest

from service.orders import billed_code
from tests.builders import (
    HCPCS,
    PATIENT,
    PUMP_IN_PLACE,
    RX,
    SCT,
    baclofen_request,
    cards_of,
    catalog,
    concept,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sign_with_chart
from tests.reference_support import indications
from tests.support import assertion_of

MORPHINE_J2274 = "Injection, morphine sulfate, preservative-free"
BACLOFEN_J0476 = "Injection, baclofen, 50 mcg for intrathecal trial"
INTRATHECAL = "72607000"
INTRAVENOUS = "47625008"


def coded_drug(code: str, display: str, route: str | None = None, rid: str = "mr-j") -> dict[str, Any]:
    """A drafted drug order coded with HCPCS `code`, given by `route` (none: no route, as in L-4)."""
    drug: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": concept(HCPCS, code, display),
    }
    if route is not None:
        drug["dosageInstruction"] = [{"route": concept(SCT, route)}]
    return drug


def answered(
    *orders: dict[str, Any], payer: str = "geha", version: str | None = None, **kw: Any
) -> dict[str, Any]:
    """The order-sign answer for `orders` (a pump in place), under CRD `version` (2.0.1 when None)."""
    body = sign_request(*orders, coverage=payer_coverage(payer))
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    body.update(kw)
    _, answer = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=body)
    return answer


def coverage_of(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each annotated order's coverage information, without what differs per order (its assertion id)
    and the billing code a pump order carries."""
    skip = ("coverage-assertion-id", "date", "billingCode")
    return {
        f"{a['resource']['resourceType']}/{a['resource']['id']}": {
            k: v for k, v in assertion_of(a).items() if k not in skip
        }
        for a in answer.get("systemActions", [])
    }


def associated(card: dict[str, Any]) -> list[str]:
    return [r["reference"] for r in card.get("extension", {}).get("davinci-crd.associated-resource", [])]


@pytest.mark.parametrize("version", [None, "2.2"], ids=["CRD 2.0.1", "CRD 2.2"])
@pytest.mark.parametrize("payer", ["geha", "kpwa", "cmm210"])
def test_a_refill_drug_coded_j2274_shares_the_refills_manual_review(payer: str, version: str | None) -> None:
    refill = service_request("95990")
    answer = answered(refill, coded_drug("J2274", MORPHINE_J2274), payer=payer, version=version)
    told = coverage_of(answer)
    drug, line = told["MedicationRequest/mr-j"], told[f"ServiceRequest/{refill['id']}"]
    assert drug == line  # one assertion: the refill's manual review, not "no rules here"
    assert (drug["covered"], drug["pa-needed"]) == ("conditional", "conditional")
    assert "no coverage rules" not in drug["reason"]["text"]
    [decision] = cards_of(answer["cards"])
    assert decision["summary"].endswith("no coverage criteria for this 95990, J2274 request — manual review")
    assert " for 95990 pump refill and J2274 morphine, for " in decision["detail"].splitlines()[0]
    assert associated(decision) == [f"ServiceRequest/{refill['id']}", "MedicationRequest/mr-j"]
    assert cards_of(answer["cards"], "clinical-reminder") == []  # the decision card says what to do


def test_the_refill_drug_without_a_route_is_still_not_the_pumps_drug() -> None:
    """Contract §2 holds: the J2274 morphine (no route) tells nothing; the chart's active intrathecal
    baclofen is the pump's drug (spasticity). A guard: it held before the change too."""
    chart_drug = baclofen_request(status="active")
    body = sign_request(
        service_request("95990"), coded_drug("J2274", MORPHINE_J2274), coverage=payer_coverage("kpwa")
    )
    _, answer = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE, chart_drug], body=body)
    assert indications(answer) == {"spasticity"}


def test_a_drug_coded_for_a_judged_order_is_not_joined_to_it() -> None:
    """A J0476 baclofen trial dose given by another route (not the pump's drug) beside a 62322 trial
    GEHA judges (meets): the trial's "covered" speaks for criteria read without this drug, so the drug
    keeps "no rules here" and the trial's card does not name it. A guard: as before the change."""
    trial = service_request("62322")
    answer = answered(trial, coded_drug("J0476", BACLOFEN_J0476, INTRAVENOUS))
    told = coverage_of(answer)
    assert told[f"ServiceRequest/{trial['id']}"]["covered"] == "covered"
    assert "holds no coverage rules for code J0476" in told["MedicationRequest/mr-j"]["reason"]["text"]
    [decision] = cards_of(answer["cards"])
    assert "J0476" not in decision["summary"] and associated(decision) == [f"ServiceRequest/{trial['id']}"]


def test_a_j0476_with_no_route_is_the_trials_drug_by_its_words() -> None:
    """J0476's own words ("Injection, baclofen, 50 mcg for intrathecal trial") say intrathecal: with no
    route, the drug order is an intrathecal one, the trial's drug, as the record reads such an order
    (one definition, codes.neuraxial_order; loose end 3, s19). Before, the call's drug order was read
    by its route alone and this one was "no rules here" beside a pain trial "covered", though the trial
    is of baclofen: now the trial is judged with its drug (spasticity, which GEHA does not address)
    and the drug is a line of it."""
    trial = service_request("62322")
    answer = answered(trial, coded_drug("J0476", BACLOFEN_J0476))
    told = coverage_of(answer)
    assert told["MedicationRequest/mr-j"] == told[f"ServiceRequest/{trial['id']}"]
    assert "spasticity (baclofen pumps) is not addressed" in told["MedicationRequest/mr-j"]["reason"]["text"]


def test_a_pump_drug_coded_with_its_orders_kind_is_named_on_its_card() -> None:
    """The J0476 baclofen given intrathecally is the trial's drug (contract §2), and joined its episode
    already (the same coverage information); the card now names it as a line of that trial."""
    trial = service_request("62322")
    answer = answered(trial, coded_drug("J0476", BACLOFEN_J0476, INTRATHECAL))
    told = coverage_of(answer)
    assert told["MedicationRequest/mr-j"] == told[f"ServiceRequest/{trial['id']}"]
    [decision] = cards_of(answer["cards"])
    assert "62322, J0476" in decision["summary"]
    assert "62322 trial injection (lumbar) and J0476 baclofen trial dose" in decision["detail"]


def test_a_drug_coded_for_a_kind_the_call_does_not_order_is_not_joined() -> None:
    """J2274 is a refill code: beside a 62362 implant (judged, and of another kind) it stays "no rules
    here", and the implant's card does not name it."""
    implant = service_request("62362")
    answer = answered(implant, coded_drug("J2274", MORPHINE_J2274))
    assert (
        "holds no coverage rules for code J2274"
        in coverage_of(answer)["MedicationRequest/mr-j"]["reason"]["text"]
    )
    assert all("J2274" not in c["summary"] for c in answer["cards"])


def selected(selection: str) -> dict[str, Any]:
    """order-select of a 95990 refill and a J2274 drug order, `selection` ("refill" or "drug") selected."""
    refill = service_request("95990")
    drug = coded_drug("J2274", MORPHINE_J2274)
    chosen = f"ServiceRequest/{refill['id']}" if selection == "refill" else "MedicationRequest/mr-j"
    body = sign_request(refill, drug, coverage=payer_coverage("geha"))
    body["hook"] = "order-select"
    body["context"]["selections"] = [chosen]
    _, found = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=body)
    return found


def test_order_select_of_the_refill_drug_alone_answers_with_the_refills_manual_review() -> None:
    """As for a pump's drug selected alone (tests/unit/test_selected_drug.py): the episode's card, and
    the drug's coverage information is the refill's manual review (before: "no rules here", no card)."""
    found = selected("drug")
    [(reference, drug)] = coverage_of(found).items()
    assert reference == "MedicationRequest/mr-j"
    assert drug["covered"] == "conditional" and "refill" in drug["reason"]["text"]
    assert "no coverage rules" not in drug["reason"]["text"]
    [decision] = cards_of(found["cards"])
    assert "95990, J2274" in decision["summary"]


def test_order_select_of_the_refill_alone_does_not_name_the_unselected_drug() -> None:
    found = selected("refill")
    [decision] = cards_of(found["cards"])
    assert "J2274" not in decision["detail"] and "MedicationRequest/mr-j" not in associated(decision)


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (coded_drug("J2274", MORPHINE_J2274), ("J2274", "refill-analysis")),
        (coded_drug("j0476", BACLOFEN_J0476), ("J0476", "trial")),
        ({**coded_drug("J2274", ""), "medicationCodeableConcept": concept(RX, "7052", "morphine")}, None),
        (service_request("J2274", HCPCS), None),  # a pump order itself (service/orders.py recognise)
    ],
    ids=["J2274", "J0476 in lower case", "RxNorm", "ServiceRequest"],
)
def test_the_order_code_a_drug_order_is_billed_with(resource: dict[str, Any], expected: Any) -> None:
    found = billed_code(resource, catalog().order_codes)
    assert (None if found is None else (found[0].code, found[1])) == expected


def test_order_select_of_a_drug_coded_for_a_judged_order_alone_gets_no_pump_cards() -> None:
    """A J0476 given by another route selected alone beside a 62322 trial GEHA judges: not joined
    (above), so no card speaks for the unselected trial, as before the change
    (tests/unit/test_selected_drug.py)."""
    trial = service_request("62322")
    drug = coded_drug("J0476", BACLOFEN_J0476, INTRAVENOUS)
    body = sign_request(trial, drug, coverage=payer_coverage("geha"))
    body["hook"] = "order-select"
    body["context"]["selections"] = ["MedicationRequest/mr-j"]
    _, found = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=body)
    [(reference, drug)] = coverage_of(found).items()
    assert reference == "MedicationRequest/mr-j" and "holds no coverage rules" in drug["reason"]["text"]
    assert found["cards"] == []
