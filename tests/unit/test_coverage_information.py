"""The coverage-information system action: the mapping from each outcome, the billing code, the
assertion ids, automatic approval and the request's say over unsolicited determinations."""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import cache
from typing import Any

import pytest

from service.app import create_app
from service.catalog import Catalog
from service.engine.model import Status
from service.registry import discovery_document
from service.settings import Settings
from tests.builders import ICD, catalog, condition, determine, meeting_chart, without_codes
from tests.calls import sign_with_chart
from tests.conformance import COVERAGE_INFO
from tests.unit.test_validation import sign_body

INFECTION = condition(ICD, "L03.115", "2026-11-01", "Cellulitis of right lower limb")


@cache
def auto_approving_catalog() -> Catalog:
    """The shipped catalog with GEHA configured to approve what meets its policy."""
    base = catalog()
    payers = tuple(replace(p, auto_approval=True) if p.key == "geha" else p for p in base.payers)
    return replace(base, payers=payers)


def assertions(response: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """order reference → its coverage-information repetitions, each as {sub-extension url: value}."""
    found: dict[str, list[dict[str, Any]]] = {}
    for action in response["systemActions"]:
        resource = action["resource"]
        reference = f"{resource['resourceType']}/{resource['id']}"
        for extension in resource.get("extension", []):
            if extension["url"] == COVERAGE_INFO:
                subs = {s["url"]: next(v for k, v in s.items() if k != "url") for s in extension["extension"]}
                found.setdefault(reference, []).append(subs)
    return found


def only(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The single repetition of each order (the sample patient has one Coverage)."""
    per_order = assertions(response)
    assert all(len(r) == 1 for r in per_order.values())
    return [r[0] for r in per_order.values()]


def test_an_order_that_meets_is_covered_and_needs_prior_authorization() -> None:
    _, response = sign_with_chart(meeting_chart())
    found = assertions(response)
    assert sorted(found) == [
        "DeviceRequest/demo-meets-sign-dr-e0783",
        "ServiceRequest/demo-meets-sign-sr-62350",
        "ServiceRequest/demo-meets-sign-sr-62362",
    ]
    for subs in only(response):
        assert subs["covered"] == "covered"
        assert subs["pa-needed"] == "auth-needed"
        assert not {"satisfied-pa-id", "doc-needed", "info-needed"} & set(subs)
    billing = {ref: subs[0]["billingCode"] for ref, subs in found.items()}
    assert billing["DeviceRequest/demo-meets-sign-dr-e0783"] == {
        "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "code": "E0783",
    }
    assert billing["ServiceRequest/demo-meets-sign-sr-62362"] == {
        "system": "http://www.ama-assn.org/go/cpt",
        "code": "62362",
    }
    assert len({subs["coverage-assertion-id"] for subs in only(response)}) == 3


def test_the_update_keeps_the_draft_order_and_its_extensions() -> None:
    body = sign_body()
    ehr_flag = {"url": "http://example.org/ehr-flag", "valueBoolean": True}
    body["context"]["draftOrders"]["entry"][0]["resource"]["extension"] = [ehr_flag]
    original = copy.deepcopy(body["context"]["draftOrders"]["entry"][0]["resource"])
    _, response = sign_with_chart(meeting_chart(), body=body)
    updated = next(a["resource"] for a in response["systemActions"] if a["resource"]["id"] == original["id"])
    assert updated["extension"][0] == ehr_flag
    assert [e["url"] for e in updated["extension"][1:]] == [COVERAGE_INFO]
    assert {**updated, "extension": [ehr_flag]} == original


def test_an_order_that_does_not_meet_is_not_covered_and_the_reason_names_the_failures() -> None:
    chart = [*meeting_chart(), INFECTION]
    failed = determine(chart).by_status(Status.NOT_MET)
    assert failed
    _, response = sign_with_chart(chart)
    for subs in only(response):
        assert subs["covered"] == "not-covered"
        assert "pa-needed" not in subs
        assert all(c.label in subs["reason"]["text"] for c in failed)


def test_an_order_needing_documentation_is_conditional_and_asks_for_it_on_sign() -> None:
    _, response = sign_with_chart(without_codes(meeting_chart(), "it-trial-side-effects"))
    for subs in only(response):
        assert (subs["covered"], subs["pa-needed"], subs["info-needed"]) == (
            "conditional",
            "auth-needed",
            "OTH",
        )
        assert (subs["doc-needed"], subs["doc-purpose"]) == ("clinical", "withpa")
        assert "side effects" in subs["reason"]["text"].lower()


def test_automatic_approval_gives_a_prior_authorization_number() -> None:
    _, response = sign_with_chart(meeting_chart(), auto_approving_catalog())
    numbers = []
    for subs in only(response):
        assert (subs["covered"], subs["pa-needed"]) == ("covered", "satisfied")
        assert subs["satisfied-pa-id"].startswith("IDDS-")
        assert len(subs["satisfied-pa-id"]) <= 50
        numbers.append(subs["satisfied-pa-id"])
    assert len(set(numbers)) == 3
    assert all("prior authorization satisfied" in a["description"] for a in response["systemActions"])
    _, again = sign_with_chart(meeting_chart(), auto_approving_catalog())
    assert [s["satisfied-pa-id"] for s in only(again)] == numbers  # same hookInstance, same numbers


def test_a_what_if_call_gets_no_unsolicited_approval() -> None:
    _, response = sign_with_chart(meeting_chart(), auto_approving_catalog(), **{"unsolicited-determ": False})
    for subs in only(response):
        assert subs["pa-needed"] == "auth-needed"
        assert "satisfied-pa-id" not in subs


@pytest.mark.parametrize(
    "chart",
    [without_codes(meeting_chart(), "it-trial-side-effects"), [*meeting_chart(), INFECTION]],
    ids=["insufficient", "does-not-meet"],
)
def test_automatic_approval_only_for_orders_that_meet(chart: list[dict[str, Any]]) -> None:
    _, response = sign_with_chart(chart, auto_approving_catalog())
    assert not any(s.get("pa-needed") == "satisfied" or "satisfied-pa-id" in s for s in only(response))


def test_discovery_offers_the_unsolicited_determination_switch() -> None:
    for service in discovery_document()["services"]:
        options = {o["code"]: o for o in service["extension"]["davinci-crd.configuration-options"]}
        assert options["unsolicited-determ"]["type"] == "boolean"
        assert options["unsolicited-determ"]["default"] is True


def test_the_shipped_payers_do_not_approve_automatically() -> None:
    assert not any(p.auto_approval for p in catalog().payers)
    assert create_app(Settings()).extensions["idds_crd"].environment.catalog.payers == catalog().payers
