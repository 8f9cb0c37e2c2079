"""Issue 5's bar for every demo scenario, signed against the real FHIR server: the answer passes the
CRD conformance checker, carries one coverage-information repetition per order and Coverage, and
has the decision, External Reference and Instructions cards."""

from __future__ import annotations

from typing import Any

import pytest

from service.demo.fhir_server import LocalFhirServer
from service.demo.runner import request_files
from tests.builders import cards_of
from tests.conformance import COVERAGE_INFO
from tests.integration.conftest import LiveService, pointed_at
from tests.support import lists_every_item, numbered_steps

pytestmark = pytest.mark.integration

SCENARIOS = sorted(p.stem for p in request_files() if p.stem.startswith("order-select-62362-demo-"))


def signed(name: str, base_url: str) -> dict[str, Any]:
    """The scenario's order-select call as an order-sign of the same draft orders."""
    body = pointed_at(name, base_url)
    body["hook"] = "order-sign"
    del body["context"]["selections"]
    return body


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_signs_with_a_conformant_complete_answer(
    name: str, fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = signed(name, fhir_server.base_url)
    response = live_service.call(body)  # fails on any conformance error
    assert response.status_code == 200
    answer = response.json()
    coverages = [
        e["resource"]["id"]
        for e in body["prefetch"]["coverage"]["entry"]
        if e["resource"].get("status", "active") == "active"
    ]
    drafts = body["context"]["draftOrders"]["entry"]
    orders = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in drafts}
    actions = {f"{a['resource']['resourceType']}/{a['resource']['id']}": a for a in answer["systemActions"]}
    assert set(actions) == orders  # every order, its drug included (CRD §resp-29)
    for action in actions.values():
        repetitions = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
        covered = sorted(
            s["valueReference"]["reference"]
            for e in repetitions
            for s in e["extension"]
            if s["url"] == "coverage"
        )
        assert covered == sorted(f"Coverage/{c}" for c in coverages)
    decisions = cards_of(answer["cards"])
    assert len(decisions) == len(coverages)  # one decision per payer for the episode's lines
    assert {
        r["reference"] for c in decisions for r in c["extension"]["davinci-crd.associated-resource"]
    } == orders  # the pump's drug too: the coverage information written on it is the decision's (audit20 M5)
    references = cards_of(answer["cards"], "guideline")
    assert references and all(link["type"] == "absolute" for c in references for link in c["links"])
    instructions = [c for c in cards_of(answer["cards"], "clinical-reminder") if "suggestions" not in c]
    # none where every payer's policy has no criteria for the request: its decision card says to ask
    # for a manual review, which was all such a card said (ehr20 C3); nor where the decision card shows
    # every item, each its own step (cards23 LOW)
    assert instructions or all(
        "no coverage criteria for this" in c["summary"] or lists_every_item(c["detail"]) for c in decisions
    )
    assert all("links" not in c and numbered_steps(c["detail"])[0].startswith("1. ") for c in instructions)
