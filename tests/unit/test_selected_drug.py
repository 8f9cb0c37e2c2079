"""order-select of a pump's drug alone (hooks review H9): the drug belongs to its pump's episode, so
its coverage information is the pump's, as order-sign gives it; a drug that is not the pump's is
still an order this service holds no rules for, with no pump cards."""

from __future__ import annotations

import copy
import json
from typing import Any

from flask.testing import FlaskClient

from tests.builders import (
    PUMP_IN_PLACE,
    cards_of,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sign_with_chart
from tests.support import REQUESTS_DIR, assertion_of, post_json

SELECT_URL = "/cds-services/idds-crd-order-select"
PUMP = "ServiceRequest/demo-meets-select-sr-62362"
DRUG = "MedicationRequest/demo-meets-select-mr-infusate"


def selected(*references: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """demo-meets's order-select (every prefetch key filled) with `references` selected."""
    body = json.loads((REQUESTS_DIR / "order-select-62362-demo-meets.json").read_text(encoding="utf-8"))
    body["context"]["selections"] = list(references)
    if extra is not None:
        body["context"]["draftOrders"]["entry"].append({"resource": extra})
    return body


def answer(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = post_json(client, SELECT_URL, body)
    assert response.status_code == 200
    found: dict[str, Any] = response.get_json()
    return found


def assertions(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each annotated order's coverage information (without the per-call assertion id)."""
    return {
        f"{a['resource']['resourceType']}/{a['resource']['id']}": {
            k: v for k, v in assertion_of(a).items() if k not in ("coverage-assertion-id", "date")
        }
        for a in found.get("systemActions", [])
    }


def test_the_pump_drug_selected_alone_is_covered_as_its_pump_is(client: FlaskClient) -> None:
    pump_alone = assertions(answer(client, selected(PUMP)))
    drug_alone = answer(client, selected(DRUG))
    [(reference, drug)] = assertions(drug_alone).items()
    assert reference == DRUG  # only the selection is annotated
    assert (drug["covered"], drug["pa-needed"]) == (
        pump_alone[PUMP]["covered"],
        pump_alone[PUMP]["pa-needed"],
    )
    assert drug["covered"] == "covered"
    assert drug_alone["cards"]  # the episode's cards, as for the pump


def test_a_drug_that_is_not_the_pumps_gets_no_pump_cards(client: FlaskClient) -> None:
    body = selected(DRUG)
    oral = copy.deepcopy(body["context"]["draftOrders"]["entry"][1]["resource"])
    oral["id"] = "oral-oxycodone"
    oral["medicationCodeableConcept"] = {"text": "oxycodone 5 MG Oral Tablet"}
    oral["dosageInstruction"] = [{"text": "1 tablet by mouth", "route": {"text": "oral"}}]
    found = answer(client, selected("MedicationRequest/oral-oxycodone", extra=oral))
    [(reference, drug)] = assertions(found).items()
    assert reference == "MedicationRequest/oral-oxycodone"
    assert drug["covered"] == "conditional"
    assert "holds no coverage rules for 'oxycodone 5 MG Oral Tablet'" in drug["reason"]["text"]
    assert found["cards"] == []


def _refill_select(*selected: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """order-select on a patient with a pump in place: a 95990 refill and its intrathecal morphine
    drafted, the orders named by `selected` ("refill", "drug") selected; (answer, refill, drug)."""
    refill, drug = service_request("95990"), infusate_request()
    references = {"refill": f"ServiceRequest/{refill['id']}", "drug": f"MedicationRequest/{drug['id']}"}
    body = sign_request(refill, drug, coverage=payer_coverage("geha"))
    body["hook"] = "order-select"
    body["context"]["selections"] = [references[s] for s in selected]
    _, found = sign_with_chart([*meeting_chart(), PUMP_IN_PLACE], body=body)
    return found, refill, drug


def test_the_cards_for_a_pump_drug_selected_alone_name_it() -> None:
    """ehr20 C2: with only the refill's intrathecal morphine selected (95990 unselected context),
    every card was titled by 95990 alone and none named the selected drug: the prescriber could not
    tell the cards were about their selection. The decision and Instructions cards now say so, and
    name the drug order among the resources they are about."""
    found, refill, drug = _refill_select("drug")
    decision = found["cards"][0]
    assert decision["summary"] == (
        "GEHA, for the morphine sulfate order: no coverage criteria for this 95990 request — manual review"
    )
    about = [r["reference"] for r in decision["extension"]["davinci-crd.associated-resource"]]
    assert about == [f"ServiceRequest/{refill['id']}", f"MedicationRequest/{drug['id']}"]


def test_the_cards_for_the_pump_order_and_its_drug_selected_are_titled_by_the_order() -> None:
    found, refill, drug = _refill_select("refill", "drug")
    assert found["cards"][0]["summary"] == "GEHA: no coverage criteria for this 95990 request — manual review"
    about = [r["reference"] for r in found["cards"][0]["extension"]["davinci-crd.associated-resource"]]
    assert about == [f"ServiceRequest/{refill['id']}", f"MedicationRequest/{drug['id']}"]
    found, refill, _ = _refill_select("refill")  # the drug unselected: not named
    about = [r["reference"] for r in found["cards"][0]["extension"]["davinci-crd.associated-resource"]]
    assert about == [f"ServiceRequest/{refill['id']}"]


def test_the_instructions_for_a_pump_drug_selected_alone_name_it_too() -> None:
    """The implant's drug selected alone, on a chart that documents nothing: both the decision card
    and the Instructions card say they are for the selected drug (ehr20 C2)."""
    pump, drug = service_request("62362"), infusate_request()
    body = sign_request(pump, drug, coverage=payer_coverage("geha"))
    body["hook"] = "order-select"
    body["context"]["selections"] = [f"MedicationRequest/{drug['id']}"]
    _, found = sign_with_chart([], body=body)
    decision, steps = cards_of(found["cards"]), cards_of(found["cards"], "clinical-reminder")
    titles = [c["summary"] for c in (*decision, *steps) if "suggestions" not in c]  # not the trial's
    assert titles == [
        "GEHA, for the morphine sulfate order: 10 items to document for 62362 — A. Chronic pain > 6 months",
        "GEHA, for the morphine sulfate order: how to document 10 items for 62362, in 8 steps",
    ]
