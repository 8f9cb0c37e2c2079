"""The coverage-information system action: the mapping from each outcome, the billing code, the
assertion ids, automatic approval and the request's say over unsolicited determinations."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import date
from functools import cache
from typing import Any

import pytest

import policies
from cards.coverage_information import (
    EXTENSION_URL,
    AssertionRules,
    CoverageJudgement,
    CoverageTarget,
    HookCall,
    coverage_actions,
    coverage_extension,
)
from cards.items import Episode
from cards.render import DETAIL_LIMIT, LineApproval, decision_card
from service.app import create_app
from service.catalog import Catalog
from service.codes import CPT, Code
from service.engine.model import Status
from service.record import CLINICAL_TYPES
from service.registry import discovery_document
from tests.builders import (
    ICD,
    cards_of,
    carried_approval,
    catalog,
    condition,
    determine,
    infusate_request,
    life_expectancy,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
    without_codes,
)
from tests.calls import sample, sign_with_chart
from tests.conformance import COVERAGE_INFO, check_response
from tests.markdown_support import shown_lines
from tests.support import (
    FHIR_SERVER,
    SELECT_URL,
    SIGN_URL,
    RecordingFactory,
    RecordingFhirClient,
    assert_outcome,
    assertion_of,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

INFECTION = condition(ICD, "L03.115", "2026-11-01", "Cellulitis of right lower limb")
HOOK_CALL = HookCall("order-sign", "d1a0c0de-0000-4000-8000-000000000001")


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
        "MedicationRequest/demo-meets-sign-mr-infusate",  # the pump's drug shares its determination
        "ServiceRequest/demo-meets-sign-sr-62350",
        "ServiceRequest/demo-meets-sign-sr-62362",
    ]
    for subs in only(response):
        assert subs["covered"] == "covered"
        assert subs["pa-needed"] == "auth-needed"
        assert not {"satisfied-pa-id", "doc-needed", "info-needed"} & set(subs)
    billing = {ref: subs[0].get("billingCode") for ref, subs in found.items()}
    assert billing["MedicationRequest/demo-meets-sign-mr-infusate"] is None  # no procedure code to bill
    assert billing["DeviceRequest/demo-meets-sign-dr-e0783"] == {
        "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "code": "E0783",
    }
    assert billing["ServiceRequest/demo-meets-sign-sr-62362"] == {
        "system": "http://www.ama-assn.org/go/cpt",
        "code": "62362",
    }
    assert len({subs["coverage-assertion-id"] for subs in only(response)}) == 4  # one per order and drug


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
        if "billingCode" not in subs:
            continue
        assert (subs["covered"], subs["pa-needed"]) == ("covered", "satisfied")
        assert subs["satisfied-pa-id"].startswith("IDDS-")
        assert len(subs["satisfied-pa-id"]) <= 50
        numbers.append(subs["satisfied-pa-id"])
    assert len(set(numbers)) == 3  # pump, catheter and hardware: one number each
    _, again = sign_with_chart(meeting_chart(), auto_approving_catalog())
    assert [s["satisfied-pa-id"] for s in only(again) if "billingCode" in s] == numbers  # same numbers


def test_an_approval_is_never_issued_without_a_billing_code_to_bound_it() -> None:
    """The pump's drug (a MedicationRequest coded by RxNorm only) carries the pump's determination
    but no billing code: a PA number on it would approve whatever claim line quotes it (CRD
    §resp-30: qualifiers SHALL be part of the annotation; UM review UM-1)."""
    _, response = sign_with_chart(meeting_chart(), auto_approving_catalog())
    [drug] = [a for a in response["systemActions"] if a["resource"]["resourceType"] == "MedicationRequest"]
    [subs] = [
        {s["url"]: next(v for k, v in s.items() if k.startswith("value")) for s in e["extension"]}
        for e in drug["resource"]["extension"]
    ]
    assert (subs["covered"], subs["pa-needed"]) == ("covered", "auth-needed")
    assert "satisfied-pa-id" not in subs and "billingCode" not in subs
    assert "prior authorization needed" in drug["description"]


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
    assert create_app(open_settings()).extensions["idds_crd"].environment.catalog.payers == catalog().payers


# --------------------------------------------------------------------------- orders that were judged before


def resigned(response: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The sample order-sign again (a new hookInstance) with the drafts as the last answer updated them."""
    body = sign_body()
    body["hookInstance"] = "0b9a4f5e-3c2d-4e1f-8a7b-6c5d4e3f2a1b"
    updated = {a["resource"]["id"]: a["resource"] for a in response["systemActions"]}
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"] = copy.deepcopy(updated.get(entry["resource"]["id"], entry["resource"]))
        entry["resource"].update(changes)
    return body


def test_an_unchanged_assertion_is_not_sent_again() -> None:
    _, first = sign_with_chart(meeting_chart(), auto_approving_catalog())
    _, again = sign_with_chart(meeting_chart(), auto_approving_catalog(), body=resigned(first))
    assert "systemActions" not in again  # CRD §resp-35: nothing new, so no update
    assert len(cards_of(again["cards"])) == 1  # the one decision for the three lines stays


def test_a_changed_assertion_replaces_the_earlier_one_for_that_coverage() -> None:
    _, first = sign_with_chart(without_codes(meeting_chart(), "it-trial-side-effects"))
    _, again = sign_with_chart(meeting_chart(), body=resigned(first))  # checked by the conformance checker
    for subs in assertions(again).values():
        assert [s["covered"] for s in subs] == ["covered"]


def test_an_assertion_for_a_coverage_not_judged_in_the_call_is_kept() -> None:
    """Each Coverage keeps one repetition: the one judged again is replaced, another Coverage's (an
    earlier call's, another payer's) stays as it was."""
    _, first = sign_with_chart(without_codes(meeting_chart(), "it-trial-side-effects"))
    body = resigned(first)
    for entry in body["context"]["draftOrders"]["entry"]:
        extensions = entry["resource"].get("extension") or []
        for extension in [e for e in extensions if e["url"] == COVERAGE_INFO]:
            other = copy.deepcopy(extension)
            for sub in other["extension"]:
                if sub["url"] == "coverage":
                    sub["valueReference"]["reference"] = "Coverage/another-plan"
                if sub["url"] == "coverage-assertion-id":
                    sub["valueString"] = "assertion-of-another-plan"
            extensions.append(other)
    _, again = sign_with_chart(meeting_chart(), body=body)
    assert assertions(again)
    for subs in assertions(again).values():
        assert sorted(s["covered"] for s in subs) == ["conditional", "covered"]


def with_earlier_assertion(coverage: str) -> dict[str, Any]:
    """The sample order-sign with an earlier assertion on each order naming `coverage` (this call's
    Coverage's id, however written): conditional, under an id no call of this service gives."""
    body = sign_body()
    for entry in body["context"]["draftOrders"]["entry"]:
        subs = [
            {"url": "coverage", "valueReference": {"reference": coverage}},
            {"url": "covered", "valueCode": "conditional"},
            {"url": "pa-needed", "valueCode": "auth-needed"},
            {"url": "info-needed", "valueCode": "OTH"},
            {"url": "reason", "valueCodeableConcept": {"text": "an earlier assertion"}},
            {"url": "date", "valueDate": "2026-11-01"},
            {"url": "coverage-assertion-id", "valueString": "earlier-1"},
        ]
        entry["resource"]["extension"] = [{"url": COVERAGE_INFO, "extension": subs}]
    return body


def test_an_assertion_naming_another_servers_coverage_of_the_same_id_is_kept() -> None:
    """An absolute reference names a server: another EHR's Coverage/<same id> is another Coverage, so
    its repetition is kept beside this call's own (fidelity review F-4)."""
    foreign = "https://other-ehr.example.com/fhir/Coverage/demo-meets-coverage-geha"
    _, response = sign_with_chart(meeting_chart(), body=with_earlier_assertion(foreign))
    found = assertions(response)
    assert len(found) == 4
    for subs in found.values():
        assert [s["coverage"]["reference"] for s in subs] == [foreign, "Coverage/demo-meets-coverage-geha"]
        assert [s["coverage-assertion-id"] == "earlier-1" for s in subs] == [True, False]


@pytest.mark.parametrize(
    "own",
    [
        "Coverage/demo-meets-coverage-geha",
        f"{FHIR_SERVER}/Coverage/demo-meets-coverage-geha",
        "HTTPS://EHR.Example.ORG/fhir/Coverage/demo-meets-coverage-geha",
        f"{FHIR_SERVER}/Coverage/demo-meets-coverage-geha/_history/2",
    ],
)
def test_an_assertion_naming_this_calls_coverage_however_written_is_replaced(own: str) -> None:
    _, response = sign_with_chart(meeting_chart(), body=with_earlier_assertion(own))
    found = assertions(response)
    assert len(found) == 4
    for subs in found.values():
        assert [(s["coverage"]["reference"], s["covered"]) for s in subs] == [
            ("Coverage/demo-meets-coverage-geha", "covered")
        ]


def test_an_order_with_a_null_extension_is_a_400_naming_it() -> None:
    """Before, read as no `extension` and judged (nothing broke); now refused as any null element of the
    call's order is (CDS Hooks: no element is null; ehr26's reading, 0317706, for a null subject)."""
    body = sign_body()
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["extension"] = None
    response = post_json(create_app(open_settings(), catalog()).test_client(), SIGN_URL, body)
    assert_outcome(response, 400, "context.draftOrders.entry[0].resource.extension")


def test_no_approval_for_an_order_only_selected() -> None:
    _, response = sign_with_chart(meeting_chart(), auto_approving_catalog(), body=select_body())
    assert cards_of(response["cards"])[0]["summary"].endswith("meets all 14 coverage criteria")
    for subs in only(response):
        assert "satisfied-pa-id" not in subs


def test_approval_numbers_differ_across_coverages() -> None:
    body = sign_body()
    coverage = body["prefetch"]["coverage"]["entry"][0]
    second = copy.deepcopy(coverage)
    second["resource"]["id"] = "demo-meets-coverage-geha-2"
    second["fullUrl"] = second.get("fullUrl", "").replace("geha", "geha-2") or "urn:uuid:second"
    body["prefetch"]["coverage"]["entry"].append(second)
    _, response = sign_with_chart(meeting_chart(), auto_approving_catalog(), body=body)
    for subs in assertions(response).values():
        assert len(subs) == 2
        if "billingCode" not in subs[0]:
            continue  # the pump's drug: no number without a billing code
        assert len({s["satisfied-pa-id"] for s in subs}) == 2
        assert len({s["coverage-assertion-id"] for s in subs}) == 2


def test_an_approval_issued_elsewhere_is_never_taken_back() -> None:
    _, first = sign_with_chart(meeting_chart(), auto_approving_catalog())
    body = resigned(first)
    for entry in body["context"]["draftOrders"]["entry"]:
        for extension in entry["resource"].get("extension") or []:
            if not any(sub["url"] == "satisfied-pa-id" for sub in extension.get("extension", [])):
                continue
            for sub in extension.get("extension", []):
                if sub["url"] == "satisfied-pa-id":
                    sub["valueString"] = "GEHA-PAS-778812"
                if sub["url"] == "coverage":
                    sub["valueReference"]["reference"] = (
                        "http://ehr.example.org/fhir/" + sub["valueReference"]["reference"]
                    )
    _, again = sign_with_chart(meeting_chart(), body=body)  # GEHA no longer auto-approves
    assert "systemActions" not in again  # nothing this service may change


def test_an_approval_this_service_issued_is_taken_back_when_the_order_no_longer_meets() -> None:
    """Only a PA number issued elsewhere is never replaced: this service's own (IDDS-) approval follows
    the chart, so an order that no longer meets is not left marked satisfied."""
    _, first = sign_with_chart(meeting_chart(), auto_approving_catalog())
    assert all(s["pa-needed"] == "satisfied" for s in only(first) if "billingCode" in s)
    _, again = sign_with_chart([*meeting_chart(), INFECTION], auto_approving_catalog(), body=resigned(first))
    for subs in only(again):
        assert subs["covered"] == "not-covered"
        assert "satisfied-pa-id" not in subs


# --------------------------------------------------------------------------- a later call on the signed order

PUMP = "ServiceRequest/demo-meets-sign-sr-62362"
GEHA_COVERAGE = "Coverage/demo-meets-coverage-geha"


def on_pump(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The system actions that update the sample's pump order."""
    return [
        a
        for a in response.get("systemActions", [])
        if f"{a['resource']['resourceType']}/{a['resource']['id']}" == PUMP
    ]


def later_call(
    hook: str,
    signed: dict[str, Any],
    chart: list[dict[str, Any]],
    payers: Catalog | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The answer of a later `hook` call about the pump order as the EHR holds it after applying the
    order-sign answer `signed` (active, carrying its coverage information): selected again, dispatched
    (prefetched), or open in the chart at an encounter."""
    [action] = on_pump(signed)
    order = copy.deepcopy(action["resource"])
    if hook == "order-select":
        body = resigned(signed)
        body["hook"] = "order-select"
        body["context"]["selections"] = [PUMP]
        return sign_with_chart(chart, payers, body, **options)[1]
    order["status"] = "active"
    if hook == "order-dispatch":
        body = sample("order-dispatch-62362-demo-meets")
        body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"] = order
        return sign_with_chart(chart, payers, body, **options)[1]
    return sign_with_chart([*chart, order], payers, sample(f"{hook}-demo-meets"), **options)[1]


@pytest.mark.parametrize(
    ("hook", "options"),
    [
        ("encounter-start", {}),
        ("encounter-discharge", {}),
        ("order-select", {}),
        ("order-dispatch", {"unsolicited-determ": False}),
    ],
    ids=["encounter-start", "encounter-discharge", "order-select", "what-if-dispatch"],
)
def test_a_call_that_may_not_approve_leaves_the_approval_as_it_was(
    hook: str, options: dict[str, Any]
) -> None:
    """It cannot restate an approval (pa-needed=satisfied, the PA number), so it does not replace it:
    the order keeps its assertion id, which the claim, DTR and PAS carry (CRD §resp-31, §resp-35,
    §found-11; hooks review H1), even when the chart changed since (a call that may approve follows
    the chart: `test_an_approval_this_service_issued_is_taken_back_when_the_order_no_longer_meets`)."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    assert assertion_of(on_pump(signed)[0])["pa-needed"] == "satisfied"
    unchanged = later_call(hook, signed, meeting_chart(), auto_approving_catalog(), **options)
    not_met = later_call(hook, signed, [*meeting_chart(), INFECTION], auto_approving_catalog(), **options)
    assert on_pump(unchanged) == [] and on_pump(not_met) == []
    [decision] = cards_of(not_met["cards"])  # the cards say what the chart says now
    assert decision["summary"].startswith("GEHA: not covered")


def instructions(response: dict[str, Any]) -> str:
    """The words of the answer's one Instructions card (summary and detail)."""
    [card] = cards_of(response["cards"], "clinical-reminder")
    return f"{card['summary']}\n{card['detail']}"


@pytest.mark.parametrize(
    ("hook", "options"),
    [
        ("order-sign", {"coverage-info": False}),
        ("order-sign", {"unsolicited-determ": False}),
        ("order-select", {}),
        ("order-select", {"coverage-info": False}),
    ],
    ids=["no-coverage-info", "what-if", "order-select", "order-select-no-coverage-info"],
)
def test_an_order_keeping_its_approval_is_not_told_to_request_prior_authorization(
    hook: str, options: dict[str, Any]
) -> None:
    """A call that may not approve, or asks for no coverage information, leaves the approval the
    order carries as it was; the Instructions card says what the order holds, the approval and its
    number, not "request prior authorization" (review s16 review2 F-3). No new approval is issued."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    number = assertion_of(on_pump(signed)[0])["satisfied-pa-id"]
    if hook == "order-sign":
        _, answer = sign_with_chart(meeting_chart(), auto_approving_catalog(), resigned(signed), **options)
    else:
        answer = later_call(hook, signed, meeting_chart(), auto_approving_catalog(), **options)
    assert on_pump(answer) == []  # the approval kept as it was, none issued anew
    words = instructions(answer)
    assert "approved, no prior authorization request needed" in words and number in words, words
    assert "Request prior authorization" not in words


def test_an_order_without_an_approval_gets_none_from_a_call_that_may_not_approve() -> None:
    _, answer = sign_with_chart(meeting_chart(), auto_approving_catalog(), **{"unsolicited-determ": False})
    assert not any("satisfied-pa-id" in json.dumps(a) for a in answer.get("systemActions", []))
    words = instructions(answer)
    assert "request prior authorization" in words and "approved" not in words, words


# GEHA's own approval, as an order carries it back from the payer's prior authorization
PAYERS_OWN_APPROVAL = carried_approval(GEHA_COVERAGE, "GEHA-PAS-778812", "2026-11-01", "their-assertion")


def test_an_approval_issued_elsewhere_is_named_on_the_instructions_card() -> None:
    """GEHA does not approve automatically here; the episode's billed orders carry the payer's own
    approval, which the answer keeps: the card names it rather than asking for a request."""
    body = sign_body()
    for entry in body["context"]["draftOrders"]["entry"]:
        if entry["resource"]["resourceType"] != "MedicationRequest":
            entry["resource"]["extension"] = [PAYERS_OWN_APPROVAL]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert on_pump(answer) == []
    words = instructions(answer)
    assert "approved" in words and "GEHA-PAS-778812" in words, words
    assert "Request prior authorization" not in words


def test_approvals_kept_beside_ones_issued_now_are_not_all_said_to_be_the_orders_own() -> None:
    """Session review s17 F-6: the implant came carrying its approval, the other lines were approved by
    this call, and the card said "The orders already carry GEHA's approval (the implant's number)"."""
    body = sign_body()
    for entry in body["context"]["draftOrders"]["entry"]:
        if "62362" in str(entry["resource"].get("code")):
            entry["resource"]["extension"] = [PAYERS_OWN_APPROVAL]
    _, answer = sign_with_chart(meeting_chart(), auto_approving_catalog(), body=body)
    words = instructions(answer)
    assert "approved" in words and "already carry" not in words, words


@pytest.mark.parametrize(
    ("catalog_of", "options"),
    [(lambda: None, {}), (auto_approving_catalog, {"unsolicited-determ": False})],
    ids=["payer-approves-nothing-here", "what-if"],
)
def test_a_partly_approved_episode_asks_prior_authorization_only_for_the_lines_without_one(
    catalog_of: Any, options: dict[str, Any]
) -> None:
    """fix-e's leftover (s17 stop note): only the implant carries GEHA's approval, and this call issues
    none for the catheter and the device; the card said "request prior authorization" for all three.
    It names the approval the implant holds and asks for the others only."""
    body = sign_body()
    for entry in body["context"]["draftOrders"]["entry"]:
        if "62362" in str(entry["resource"].get("code")):
            entry["resource"]["extension"] = [PAYERS_OWN_APPROVAL]
    _, answer = sign_with_chart(meeting_chart(), catalog_of(), body=body, **options)
    assert on_pump(answer) == []
    [card] = cards_of(answer["cards"], "clinical-reminder")
    assert card["summary"] == "GEHA: request prior authorization for 62350, E0783"
    steps = shown_lines(card["detail"])
    assert steps[1] == (
        "1. 62362 already carries GEHA's prior authorization approval (GEHA-PAS-778812) in its coverage "
        "information: no new request is needed for it."
    )
    assert steps[2] == "2. Request prior authorization from GEHA for 62350 and E0783: every criterion is met."


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_of_two_orders_of_one_code_one_approval_leaves_the_other_to_request(hook: str) -> None:
    """review24d: two draft 62362 orders, one carrying GEHA's approval, the other none. The lines to
    request were told apart by code, so none was left: order-select (the two selected) raised on an
    empty listing (a 500), order-sign asked for 62350 and E0783 only, and a card with no Instructions
    card beside it said every line approved. The other 62362 is still to request."""
    body = sign_body()
    entries = body["context"]["draftOrders"]["entry"]
    [pump] = [e for e in entries if "62362" in str(e["resource"].get("code"))]
    second = copy.deepcopy(pump)
    second["resource"]["id"] = "sr-second-62362"
    second.pop("fullUrl", None)
    pump["resource"]["extension"] = [PAYERS_OWN_APPROVAL]
    entries.append(second)
    if hook == "order-select":
        body["hook"] = hook
        body["context"]["selections"] = [
            f"ServiceRequest/{pump['resource']['id']}",
            "ServiceRequest/sr-second-62362",
        ]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [card] = cards_of(answer["cards"], "clinical-reminder")
    assert "62362" in card["summary"].split("request prior authorization for ", 1)[1], card["summary"]
    # which 62362 is which: each named by its order (review24e: "62362 already carries … no new request
    # is needed for it", then "Request prior authorization … for 62362")
    carried, request = [s for s in card["detail"].splitlines() if "62362" in s][:2]
    assert f"62362 (ServiceRequest/{pump['resource']['id']}) already carries" in carried, carried
    assert "62362 (ServiceRequest/sr-second-62362): every criterion is met" in request, request
    first, second = determine(meeting_chart()), determine(meeting_chart(), order=service_request("62362"))
    approved = (LineApproval(first.order_reference, ("PA-1",), False),)
    line = str(decision_card(Episode.of([first, second]), False, approved)["detail"])
    assert line.split("\n\n")[1] == (
        f"**Prior authorization still needed** from GEHA for 62362 ({second.order_reference}); "
        f"62362 ({first.order_reference}) already approved (PA-1)."
    )
    verdict = line.split("\n\n")[0]  # one verdict for both: counted, not told apart (review25b)
    assert "62362 programmable pump (2 orders)" in verdict and "ServiceRequest/" not in verdict, verdict


def test_many_orders_of_one_code_keep_the_decision_card_within_its_limit() -> None:
    """review25b: the verdict named each of ten 62362 orders by its reference, and a 64-character id
    each took the card past DETAIL_LIMIT, which no item left out could bring back under it."""
    orders = [{**service_request("62362"), "id": f"{n}{'y' * 63}"} for n in range(10)]
    lines = [determine(meeting_chart(), order=order) for order in orders]
    detail = str(decision_card(Episode.of(lines), False)["detail"])
    assert len(detail) <= DETAIL_LIMIT, len(detail)
    assert "62362 programmable pump (10 orders)" in detail.split("\n\n")[0]


def test_a_call_that_may_approve_takes_its_approval_back_when_the_order_no_longer_meets() -> None:
    """order-dispatch may approve, as order-sign may: its judgement replaces the approval."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    answer = later_call("order-dispatch", signed, [*meeting_chart(), INFECTION], auto_approving_catalog())
    [subs] = [assertion_of(a) for a in on_pump(answer)]
    assert subs["covered"] == "not-covered" and "satisfied-pa-id" not in subs


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge", "order-select"])
def test_a_call_that_may_not_ask_for_documentation_leaves_the_request_for_it_as_it_was(hook: str) -> None:
    """CRD §hook-19: a secondary hook never asks for documentation, so it cannot restate order-sign's
    doc-needed and form (DTR holds its assertion id): it leaves them, documented since or not."""
    chart = without_codes(meeting_chart(), "it-trial-side-effects")
    _, signed = sign_with_chart(chart)
    asked = assertion_of(on_pump(signed)[0])
    assert asked["doc-needed"] == "clinical" and asked["questionnaire"]
    for later_chart in (chart, meeting_chart()):
        assert on_pump(later_call(hook, signed, later_chart)) == [], hook


def test_a_call_replaces_an_assertion_it_may_restate_when_the_chart_changed() -> None:
    """What the encounter may say itself (covered, prior authorization needed) it replaces when the
    chart no longer supports it: the order's coverage information follows the chart."""
    _, signed = sign_with_chart(meeting_chart())
    assert assertion_of(on_pump(signed)[0])["pa-needed"] == "auth-needed"
    assert on_pump(later_call("encounter-start", signed, meeting_chart())) == []  # nothing new
    [changed] = on_pump(later_call("encounter-start", signed, [*meeting_chart(), INFECTION]))
    assert assertion_of(changed)["covered"] == "not-covered"


def test_the_reason_names_the_failing_criterion_not_its_group() -> None:
    kaiser_chart = [
        condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome"),
        life_expectancy(2, "mo", "2026-11-20"),
    ]
    body = sign_request(service_request("62362"), infusate_request(), coverage=payer_coverage("kpwa"))
    _, response = sign_with_chart(kaiser_chart, body=body)
    [pump] = [subs for subs in only(response) if subs["covered"] == "not-covered"][:1]
    reason = pump["reason"]["text"]
    assert "Criteria for the type of treatment" not in reason
    assert "3.b Life expectancy recorded >= 3 months (" in reason  # the criterion, then its policy section


def test_a_plan_the_payers_policy_sends_elsewhere_is_not_judged_and_says_where_its_rules_are() -> None:
    """Capital Blue Cross MP 1.058, Product Variations: "FEP PPO - Refer to FEP Medical Policy Manual."."""
    body = sign_body()
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["payor"] = [{"identifier": {"system": "http://idds-crd.org/fhir/sid/payer-id", "value": "cbc"}}]
    coverage["class"] = [
        {"type": {"coding": [{"code": "plan"}]}, "value": "FEP-STD", "name": "FEP Blue Standard"}
    ]
    _, response = sign_with_chart(meeting_chart(), body=body)
    (notice,) = response["cards"]
    assert (
        notice["summary"]
        == "Capital Blue Cross: coverage rules for 62362, 62350, E0783 not checked for this plan"
    )
    assert "FEP members; refer to the FEP Medical Policy Manual" in notice["detail"]
    (link,) = notice["links"]
    assert (link["label"], link["type"]) == ("FEP Medical Policy Manual", "absolute")
    source = (policies.directory() / "sources" / "002_a8ee541f432101c2.txt").read_text(encoding="utf-8")
    assert f"The FEP Medical Policy manual can be found at:\n\n<{link['url']}>" in source
    for subs in only(response):
        assert subs["covered"] == "conditional"
        assert "FEP members; refer to the FEP Medical Policy Manual" in subs["reason"]["text"]


# --------------------------------------------------------------------------- the policy that judged (CRD 2.2)

CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
GEHA_POLICY = "geha-idds-chronic-pain"


def asking(version: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """`body` (the sample order-sign) asking for CRD `version` (None: no requestedVersion)."""
    body = body or sign_body()
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    return body


def parts(detail: list[dict[str, Any]]) -> dict[str, Any]:
    """A `detail`'s parts, {url: value}."""
    return {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in detail}


def policy_card_link(response: dict[str, Any]) -> str:
    """The URL of the policy-link card's link to the policy as this service checks it."""
    [card] = [c for c in response["cards"] if c["source"].get("topic", {}).get("code") == "guideline"]
    return str(card["links"][0]["url"])


@pytest.mark.parametrize(
    ("chart", "catalog_of", "covered"),
    [
        (meeting_chart(), catalog, "covered"),
        (meeting_chart(), auto_approving_catalog, "covered"),
        ([*meeting_chart(), INFECTION], catalog, "not-covered"),
        (without_codes(meeting_chart(), "it-trial-side-effects"), catalog, "conditional"),
    ],
    ids=["meets", "auto-approved", "does-not-meet", "insufficient"],
)
def test_a_2_2_assertion_names_the_policy_that_judged_the_order_and_links_its_page(
    chart: list[dict[str, Any]], catalog_of: Any, covered: str
) -> None:
    """UM-8: a payer system receiving the order learns which policy judged it and where to read it:
    CRD 2.2's detail `policy-link` (category cat-other, valueUrl), as in the IG's annotated example;
    the URL is the one the policy-link card links, the service's own page of the policy."""
    _, response = sign_with_chart(chart, catalog_of(), body=asking("2.2"))  # checked for conformance
    page = policy_card_link(response)
    assert page.endswith(f"/policies/{GEHA_POLICY}")
    policy = catalog().policies[GEHA_POLICY]
    for subs in only(response):  # the pump, its catheter, hardware and drug: one determination
        assert subs["covered"] == covered
        detail = parts(subs["detail"])
        assert detail["category"] == "cat-other"
        [coding] = detail["code"]["coding"]
        assert (coding["system"], coding["code"]) == (CRD_TEMP, "policy-link")
        assert detail["value"] == page
        assert detail["qualification"] == f"GEHA policy as checked: {policy.title} ({policy.version})"
    app = create_app(open_settings())
    shown = app.test_client().get(page.removeprefix("http://localhost"))
    assert shown.status_code == 200 and policy.title in shown.get_data(as_text=True)


def test_the_policy_link_is_on_the_configured_public_url() -> None:
    """The one way the service names its policy pages: the card's link and the detail agree."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(public_base_url="https://crd.example.org/"), client_factory=factory)
    request = with_fhir(asking("2.2", select_body()))
    response = post_json(app.test_client(), SELECT_URL, request).get_json()
    assert check_response(response, request) == []
    page = "https://crd.example.org/policies/geha-idds-chronic-pain"
    assert policy_card_link(response) == page
    assert [parts(s["detail"])["value"] for s in only(response)] == [page]


@pytest.mark.parametrize("version", [None, "2.0", "2.1"])
def test_an_older_client_gets_no_detail(version: str | None) -> None:
    """CRD 2.0.1 (Inferno) has no `policy-link` detail code (its temp CodeSystem is complete without
    it), no detail category and no url value: nothing carries a detail valid under both versions."""
    _, response = sign_with_chart(meeting_chart(), body=asking(version))
    assert all("detail" not in subs for subs in only(response))


def test_no_policy_link_when_nothing_was_decided_because_the_ehr_data_could_not_be_read() -> None:
    """A 2.2 `indeterminate` rests on the failure to read the EHR's data, not on the policy."""
    _, response = sign_with_chart(meeting_chart(), body=asking("2.2"), failing=("Procedure",))
    for subs in only(response):
        assert subs["covered"] == "indeterminate"
        assert "detail" not in subs


def test_no_policy_link_for_an_order_the_policy_does_not_address() -> None:
    """GEHA's policy gives no criteria for a refill (not-applicable): it judged nothing."""
    body = asking("2.2", sign_request(service_request("95990"), infusate_request()))
    _, response = sign_with_chart(meeting_chart(), body=body)
    for subs in only(response):
        assert subs["covered"] == "conditional"
        assert "GEHA review of a refill is manual" in subs["reason"]["text"]
        assert "detail" not in subs


def test_no_policy_link_for_an_order_no_policy_here_covers() -> None:
    mri = service_request("70553")
    body = asking("2.2", sign_request(service_request("62362"), mri))
    _, response = sign_with_chart(meeting_chart(), body=body)
    found = assertions(response)
    [unaddressed] = found.pop(f"ServiceRequest/{mri['id']}")
    assert "holds no coverage rules for code 70553" in unaddressed["reason"]["text"]
    assert "detail" not in unaddressed
    assert all("detail" in subs for per_order in found.values() for subs in per_order)


def test_no_policy_link_for_a_plan_whose_rules_are_elsewhere() -> None:
    body = asking("2.2")
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["payor"] = [{"identifier": {"system": "http://idds-crd.org/fhir/sid/payer-id", "value": "cbc"}}]
    coverage["class"] = [
        {"type": {"coding": [{"code": "plan"}]}, "value": "FEP-STD", "name": "FEP Blue Standard"}
    ]
    _, response = sign_with_chart(meeting_chart(), body=body)
    for subs in only(response):
        assert "FEP Medical Policy Manual" in subs["reason"]["text"]
        assert "detail" not in subs


def test_a_2_2_re_sign_with_the_same_policy_link_sends_no_update() -> None:
    """CRD §resp-35 holds with the detail: the same assertion, link included, is not sent again."""
    _, first = sign_with_chart(meeting_chart(), body=asking("2.2"))
    _, again = sign_with_chart(meeting_chart(), body=asking("2.2", resigned(first)))
    assert "systemActions" not in again


@pytest.mark.parametrize(("first", "then"), [(None, "2.2"), ("2.2", None)])
def test_a_call_for_another_crd_version_judging_the_same_sends_no_update(
    first: str | None, then: str | None
) -> None:
    """A 2.2 answer names the policy's page in a `detail` a 2.0 answer cannot carry: where the policy
    is read, not what is judged. The same judgement in the other version is nothing new (§resp-35):
    no update, the assertion id the claim carries stands (session review s37, S37-1)."""
    body = sign_body()
    if first:
        body["extension"] = {"davinci-crd.requestedVersion": first}
    _, signed = sign_with_chart(meeting_chart(), body=body)
    again = resigned(signed)
    again.pop("extension", None)
    if then:
        again["extension"] = {"davinci-crd.requestedVersion": then}
    _, answer = sign_with_chart(meeting_chart(), body=again)
    assert on_pump(answer) == []


@pytest.mark.parametrize("version", [None, "2.2"])
def test_a_call_that_could_not_read_the_chart_leaves_the_approval_as_it_was(version: str | None) -> None:
    """An order whose chart could not be read "could not be checked": that call decided nothing, so
    the approval this service issued stands (session review s37, S37-2); read again, the chart decides."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    again = resigned(signed)
    if version:
        again["extension"] = {"davinci-crd.requestedVersion": version}
    _, unread = sign_with_chart(meeting_chart(), auto_approving_catalog(), again, failing=("Observation",))
    assert on_pump(unread) == []
    _, not_met = sign_with_chart([*meeting_chart(), INFECTION], auto_approving_catalog(), resigned(signed))
    [subs] = [assertion_of(a) for a in on_pump(not_met)]
    assert subs["covered"] == "not-covered"


def test_a_call_that_reads_a_gap_takes_the_approval_back_though_other_data_could_not_be_read() -> None:
    """Only a call that decided nothing keeps the approval: one that read the trial gone from the chart
    decided that much, whatever else it could not read (session review s38, S38-1)."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    chart = without_codes(meeting_chart(), "62324")  # the trial gone, read
    _, answer = sign_with_chart(
        chart, auto_approving_catalog(), resigned(signed), failing=("AllergyIntolerance",)
    )
    [subs] = [assertion_of(a) for a in on_pump(answer)]
    assert subs["pa-needed"] != "satisfied" and "satisfied-pa-id" not in subs


def test_a_call_that_could_not_read_the_chart_replaces_what_was_not_an_approval() -> None:
    """Not covered for an infection the chart no longer shows: read again, though another part could
    not be read, the assertion follows what was read (session review s38, S38-1)."""
    _, refused = sign_with_chart([*meeting_chart(), INFECTION])
    assert assertion_of(on_pump(refused)[0])["covered"] == "not-covered"
    _, answer = sign_with_chart(meeting_chart(), body=resigned(refused), failing=("AllergyIntolerance",))
    [subs] = [assertion_of(a) for a in on_pump(answer)]
    assert subs["covered"] == "conditional"


# what a chart meeting the policy needs read (every clinical search; the orders themselves are at hand)
CLINICAL = CLINICAL_TYPES
EARLIER = {
    "covered": meeting_chart(),
    "not-covered": [*meeting_chart(), INFECTION],
    "documentation": without_codes(meeting_chart(), "it-trial-side-effects"),
}


@pytest.mark.parametrize("hook", ["order-dispatch", "encounter-start", "encounter-discharge"])
@pytest.mark.parametrize("earlier", sorted(EARLIER))
def test_a_call_that_could_read_none_of_the_chart_leaves_any_earlier_assertion(
    hook: str, earlier: str
) -> None:
    """Every clinical search failed, so every criterion "could not be checked": the call judged nothing,
    and what order-sign asserted (covered, not covered, documentation needed) stands, its id with it
    (no update), while the cards say the chart could not be read now (ehr review s17, H-1: the order
    got "not checked" and a new assertion id)."""
    _, signed = sign_with_chart(EARLIER[earlier])
    assert assertion_of(on_pump(signed)[0])["covered"] == earlier.replace("documentation", "conditional")
    answer = later_call(hook, signed, meeting_chart(), failing=CLINICAL)
    assert on_pump(answer) == []
    [decision] = cards_of(answer["cards"])
    assert "could not be checked" in decision["summary"]


def test_a_call_that_judged_the_drug_it_was_given_decided_that_much() -> None:
    """order-select gets the pump's drug among its draft orders and judges it (GEHA's excluded
    infusates: none ordered) with the rest of the chart unread: a criterion judged on data read, so
    a `not-covered` (which that criterion could have overturned) is replaced; a `covered` stands, as
    nothing read stops the order meeting the policy."""
    _, refused = sign_with_chart(EARLIER["not-covered"])
    [changed] = on_pump(later_call("order-select", refused, meeting_chart(), failing=CLINICAL))
    assert assertion_of(changed)["covered"] == "conditional"
    _, signed = sign_with_chart(EARLIER["covered"])
    assert on_pump(later_call("order-select", signed, meeting_chart(), failing=CLINICAL)) == []


def test_a_2_2_call_that_could_read_none_of_the_chart_sends_no_indeterminate() -> None:
    """Under CRD 2.2 that call's own assertion would be `indeterminate`/`technical`: nothing decided,
    so the earlier `covered` stands."""
    _, signed = sign_with_chart(meeting_chart())
    body = sample("order-dispatch-62362-demo-meets")
    [action] = on_pump(signed)
    body["prefetch"]["dispatchedServiceRequests"]["entry"][0]["resource"] = {
        **copy.deepcopy(action["resource"]),
        "status": "active",
    }
    _, answer = sign_with_chart(meeting_chart(), body=asking("2.2", body), failing=CLINICAL)
    assert on_pump(answer) == []


def test_a_covered_order_stands_while_only_data_not_at_hand_is_open_but_not_past_a_gap_read() -> None:
    """`covered` rests on every criterion met, as an approval does (S37-2): a call that read the rest
    of the chart and lacks only what it could not fetch has not found it stopped meeting; one that
    read a reason it does not (an infection) has (S38-1)."""
    _, signed = sign_with_chart(meeting_chart())
    assert on_pump(later_call("order-dispatch", signed, meeting_chart(), failing=("Procedure",))) == []
    infected = [*meeting_chart(), INFECTION]
    [changed] = on_pump(later_call("order-dispatch", signed, infected, failing=("Procedure",)))
    assert assertion_of(changed)["covered"] == "not-covered"


def test_a_call_that_read_part_of_the_chart_replaces_documentation_asked_for() -> None:
    """Not every criterion unread: the trial's side effects, asked for, now read as recorded, though
    the procedures could not be fetched: the call judged that much, so its assertion replaces the
    request for documentation (S38-1's rule for what is not `covered`)."""
    _, asked = sign_with_chart(EARLIER["documentation"])
    [changed] = on_pump(later_call("order-dispatch", asked, meeting_chart(), failing=("Procedure",)))
    assert "doc-needed" not in assertion_of(changed)


def test_records_left_out_as_modified_are_the_chart_as_it_is_and_take_an_approval_back() -> None:
    """The trial's Procedure now carries a modifier extension, so it is left out and the trial
    criterion "could not be checked": calling again reads the same, so this is the chart as read, not
    data not at hand: the approval does not stand on it (a new order on this chart would get none)."""
    _, signed = sign_with_chart(meeting_chart(), auto_approving_catalog())
    chart = meeting_chart()
    [trial] = [r for r in chart if r["resourceType"] == "Procedure" and "62324" in str(r["code"])]
    trial["modifierExtension"] = [
        {"url": "http://ehr.example/fhir/StructureDefinition/what-if", "valueBoolean": True}
    ]
    _, answer = sign_with_chart(chart, auto_approving_catalog(), resigned(signed))
    [subs] = [assertion_of(a) for a in on_pump(answer)]
    assert subs["pa-needed"] != "satisfied" and "satisfied-pa-id" not in subs
    assert "2 of 14 criteria could not be checked" in subs["reason"]["text"]


def test_an_appointment_in_a_2_0_answer_never_repeats_a_2_2_indeterminate() -> None:
    """The order keeps a CRD 2.2 `indeterminate` (this call could not read its Device either); a 2.0
    answer cannot say that, so its Appointment gets this call's own judgement (session review s38,
    S38-2)."""
    coverage = "Coverage/c1"
    kept = {
        "url": EXTENSION_URL,
        "extension": [
            {"url": "coverage", "valueReference": {"reference": coverage}},
            {"url": "covered", "valueCode": "indeterminate"},
            {"url": "pa-needed", "valueCode": "indeterminate"},
            {"url": "reason", "valueCodeableConcept": {"coding": [{"code": "technical"}], "text": "down"}},
            {"url": "date", "valueDate": "2026-12-01"},
            {"url": "coverage-assertion-id", "valueString": "a1"},
        ],
    }
    judgement = CoverageJudgement(coverage, "GEHA", undecided="its Device could not be read", technical=True)
    order = CoverageTarget(
        "ServiceRequest/sr",
        {"resourceType": "ServiceRequest", "id": "sr", "extension": [kept]},
        None,
        (judgement,),
    )
    booked = CoverageTarget(
        "Appointment/a", {"resourceType": "Appointment", "id": "a"}, None, (judgement,), order
    )
    rules = AssertionRules(True, "2.0", may_approve=True)
    extension, _ = coverage_extension(judgement, booked, rules, HOOK_CALL, date(2026, 12, 5))
    said = {s["url"]: s.get("valueCode") for s in extension["extension"]}
    assert (said["covered"], said["pa-needed"]) == ("conditional", "conditional")


def test_what_is_not_an_extension_in_an_orders_extensions_goes_back_as_it_came() -> None:
    """An order read from prefetch or the EHR's server (not refused as a draft order is) keeps a
    `null` or a string among its extensions (session review s39, S39-6: they were dropped)."""
    target = CoverageTarget(
        "ServiceRequest/sr-1",
        {"resourceType": "ServiceRequest", "id": "sr-1", "extension": [None, "odd", {"url": "x"}]},
        None,
        (CoverageJudgement("Coverage/c1", "GEHA", undecided="not checked"),),
    )
    [action] = coverage_actions(
        [target], AssertionRules(asks_documentation=True), HOOK_CALL, date(2026, 12, 5)
    )
    assert action["resource"]["extension"][:3] == [None, "odd", {"url": "x"}]


def ids_of(extension: dict[str, Any]) -> tuple[str, str | None]:
    """(coverage-assertion-id, satisfied-pa-id or None) of a repetition."""
    subs = {s["url"]: s.get("valueString") for s in extension["extension"]}
    return subs["coverage-assertion-id"], subs.get("satisfied-pa-id")


def test_an_assertions_ids_name_what_it_asserts_in_which_call_not_when() -> None:
    """One hookInstance reused with other content (a kit body edited, the chart changed) or on another
    hook asserts something else, under other ids and PA number; a retry (the same hook, hookInstance
    and content) gets the same ids, on the next day too (inferno review I-2: the ids were made of the
    hookInstance, order and Coverage alone, so one id named two assertions)."""
    meets = determine(meeting_chart())
    page = "https://crd.example.org/policies/geha-idds-chronic-pain"  # a CRD 2.2 assertion links it
    approved = CoverageJudgement("Coverage/c1", "GEHA", meets, auto_approve=True, policy_page=page)
    target = CoverageTarget(
        "ServiceRequest/sr", {"resourceType": "ServiceRequest", "id": "sr"}, Code(CPT, "62362"), (approved,)
    )
    rules = AssertionRules(True, "2.0", may_approve=True)
    day = date(2026, 12, 5)

    def ids(judgement: CoverageJudgement, call: HookCall = HOOK_CALL, today: date = day) -> tuple[str, ...]:
        extension, _ = coverage_extension(
            judgement, replace(target, judgements=(judgement,)), rules, call, today
        )
        return ids_of(extension)

    first = ids(approved)
    assert first[1] is not None and first[1].startswith("IDDS-")
    assert ids(approved) == first  # a retry
    assert ids(approved, today=date(2026, 12, 6)) == first  # a retry on the next day
    # the policy-link detail (CRD 2.2) says where the policy is read, at the address called: not what
    # is asserted (review s16 R-5: a retry reaching another host name got other ids)
    in_2_2 = replace(rules, crd_version="2.2")
    for address in ("https://crd.example.org", "http://10.0.0.5:8080"):
        linked = replace(approved, policy_page=f"{address}/policies/geha-idds-chronic-pain")
        extension = coverage_extension(linked, target, in_2_2, HOOK_CALL, day)[0]
        assert "detail" in str(extension) and ids_of(extension) == first
    other_hook = ids(approved, HookCall("order-dispatch", HOOK_CALL.hook_instance))
    assert other_hook[1] is not None
    others = [other_hook]
    others.append(ids(CoverageJudgement("Coverage/c1", "GEHA", meets)))  # not approved: auth-needed
    others.append(
        ids(CoverageJudgement("Coverage/c1", "GEHA", determine(without_codes(meeting_chart(), "62324"))))
    )
    others.append(ids(replace(approved, coverage="Coverage/c2")))
    assert len({i[0] for i in [first, *others]}) == 5  # one id per assertion
    numbers = [i[1] for i in [first, *others] if i[1] is not None]
    assert len(numbers) == len(set(numbers)) == 3  # one PA number per approval


@pytest.mark.parametrize(
    "name", ["", "pa|order-sign|1|ServiceRequest/a|00ff", "order-select|é-😀|Appointment/x|" + "9" * 300]
)
def test_an_assertions_ids_are_rfc_4122_version_5_uuids_of_what_names_it(name: str) -> None:
    """`_uuid5_hex` writes what `uuid.uuid5` does (a cheaper way to the same ids), and `assertion_ids`
    are those of the hook, hookInstance, resource and content's digest, as issued before."""
    import hashlib
    import uuid

    from cards.coverage_information import ASSERTION_NAMESPACE, PA_PREFIX, HookCall, _uuid5_hex, assertion_ids

    assert _uuid5_hex(name) == uuid.uuid5(ASSERTION_NAMESPACE, name).hex
    subs = [
        {"url": "coverage", "valueReference": {"reference": "Coverage/c"}},
        {"url": "date", "valueDate": "x"},
    ]
    ids = assertion_ids(HookCall("order-sign", name), "ServiceRequest/s", subs)
    content = hashlib.sha256(b'{"url":"coverage","valueReference":{"reference":"Coverage/c"}}').hexdigest()
    named = f"order-sign|{name}|ServiceRequest/s|{content}"
    assert ids.assertion_id == str(uuid.uuid5(ASSERTION_NAMESPACE, named))
    assert ids.pa_number == PA_PREFIX + uuid.uuid5(ASSERTION_NAMESPACE, f"pa|{named}").hex[:16].upper()


def test_ids_asked_again_in_one_call_are_those_made_afresh() -> None:
    """A call may ask again for the ids of an assertion it makes: what it made is kept by
    its `HookCall`, by resource and content, never for another resource, content or call."""
    from cards.coverage_information import assertion_ids

    def subs(covered: str) -> list[dict[str, Any]]:
        return [
            {"url": "coverage", "valueReference": {"reference": "Coverage/c"}},
            {"url": "covered", "valueCode": covered},
        ]

    call = HookCall("order-sign", "d1a0c0de-0000-4000-8000-00000000beef")
    first = assertion_ids(call, "ServiceRequest/s", subs("covered"))
    other = assertion_ids(call, "ServiceRequest/s", subs("not-covered"))
    assert assertion_ids(call, "ServiceRequest/s", subs("covered")) == first != other
    assert assertion_ids(call, "ServiceRequest/t", subs("covered")) != first
    fresh = HookCall(call.hook, call.hook_instance)
    assert assertion_ids(fresh, "ServiceRequest/s", subs("not-covered")) == other
    assert (
        assertion_ids(HookCall("order-dispatch", call.hook_instance), "ServiceRequest/s", subs("covered"))
        != first
    )
