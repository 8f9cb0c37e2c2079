"""A call whose one Coverage is not active (its period ended, or cancelled) is answered 200: every order
`not-covered` for that Coverage, reason `no-active-coverage` under CRD 2.2 (its text alone under 2.0.1,
whose value set has no such code), with one card saying so (CRD §resp-45, digest §6.7/§6.9; the 2.2.1
kit's No Active Coverage group; inferno review s18 K-1). What stays a 400 (§hook-13): no Coverage, several,
or one whose payer this endpoint does not serve."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.app import create_app
from tests.builders import carried_approval, catalog
from tests.calls import _orders_outside_draft_orders
from tests.conformance import check_response
from tests.demo_support import packaged_sample
from tests.support import assert_outcome, assertion_of, no_client, open_settings, post_json

COVERAGE = "Coverage/demo-meets-coverage-geha"
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
CPT = "http://www.ama-assn.org/go/cpt"
HOOKS = (
    "order-sign-implant-demo-meets",
    "order-select-62362-demo-meets",
    "order-dispatch-62362-demo-meets",
    "appointment-book-62362-demo-meets",
)


def _body(name: str, version: str | None, change: str) -> dict[str, Any]:
    """The demo request with its Coverage (GEHA) made `change`: ended, cancelled, begins later,
    entered in error, two ended, another payer's and ended, or none."""
    body = packaged_sample(name)
    entries = body["prefetch"]["coverage"]["entry"]
    coverage = entries[0]["resource"]
    if change in ("ended", "two-ended", "other-payer-ended"):
        coverage["period"] = {"start": "2020-01-01", "end": "2024-12-31"}
    if change == "cancelled":
        coverage["status"] = "cancelled"
    if change == "entered-in-error":
        coverage["status"] = "entered-in-error"
    if change == "begins-later":
        coverage["period"] = {"start": "2099-01-01"}
    if change == "two-ended":
        second = copy.deepcopy(entries[0])
        second["resource"]["id"] += "-2"
        entries.append(second)
    if change == "other-payer-ended":
        coverage["payor"] = [{"display": "Acme Health Plan"}]
        coverage.pop("contained", None)
        del entries[1:]
    if change == "none":
        del entries[:]
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    return body


def _call(body: dict[str, Any]) -> Any:
    app = create_app(open_settings(), catalog(), client_factory=no_client)
    return app, post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", body)


@pytest.mark.parametrize("version", [None, "2.2"])
@pytest.mark.parametrize("change", ["ended", "cancelled"])
@pytest.mark.parametrize("name", HOOKS)
def test_a_coverage_not_active_is_answered_not_covered_no_active_coverage(
    name: str, change: str, version: str | None
) -> None:
    body = _body(name, version, change)
    app, response = _call(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert check_response(answer, body, _orders_outside_draft_orders(body, {})) == []
    why = "ended 2024-12-31" if change == "ended" else "cancelled"
    assert answer["systemActions"], "coverage information on every order"
    for action in answer["systemActions"]:
        subs = assertion_of(action)
        assert (subs["coverage"]["reference"], subs["covered"]) == (COVERAGE, "not-covered")
        assert "pa-needed" not in subs and "doc-needed" not in subs
        reason = subs["reason"]
        assert f"not active ({why})" in reason["text"]
        if version == "2.2":
            assert reason["coding"] == [{"system": CRD_TEMP, "code": "no-active-coverage"}]
        else:
            assert "coding" not in reason  # 2.0.1's value set has no such code
    [card] = answer["cards"]
    assert card["summary"] == f"GEHA: coverage not active ({why}); no coverage information"
    assert card["source"]["label"] == "GEHA"
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    [payer] = record["payers"]
    assert payer["policy_id"] is None and payer["not_judged_because"].endswith(why)
    assert {a["covered"] for a in record["assertions"]} == {"not-covered"}


def test_every_order_is_answered_not_only_the_pump() -> None:
    """On order-sign every draft order gets coverage information (§hook-16): the pump's catheter,
    hardware and drug too, each not covered for the Coverage that is not active."""
    body = _body("order-sign-implant-demo-meets", "2.2", "ended")
    _, response = _call(body)
    drafts = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body["context"]["draftOrders"]["entry"]
    }
    answered = {
        f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in response.get_json()["systemActions"]
    }
    assert answered == drafts


@pytest.mark.parametrize(
    ("change", "versions", "why"),
    [
        ("none", (None, "2.2"), "no active Coverage was sent or found"),
        ("entered-in-error", (None, "2.2"), "no active Coverage was sent or found"),
        ("two-ended", (None, "2.2"), "no active Coverage was sent or found"),
        (
            "other-payer-ended",
            (None, "2.2"),
            "the Coverage is not active (ended 2024-12-31) and its payer is not one this service answers for",
        ),
    ],
)
def test_what_names_no_one_coverage_of_a_served_payer_is_still_400(
    change: str, versions: tuple[str | None, ...], why: str
) -> None:
    """§hook-13: none (one entered in error is none), several, or a payer this endpoint does not serve
    (this service cannot say for another payer that the member is not covered): 400, on a primary
    hook in every version."""
    for version in versions:
        _, response = _call(_body("order-sign-implant-demo-meets", version, change))
        issue = assert_outcome(response, 400, "prefetch.coverage")
        assert issue["diagnostics"].startswith(f"prefetch.coverage: {why}"), issue["diagnostics"]


@pytest.mark.parametrize("change", ["none", "two-ended", "other-payer-ended"])
def test_a_2_0_1_order_select_with_no_coverage_to_answer_for_keeps_its_card(change: str) -> None:
    """A CRD 2.0.1 secondary hook may answer nothing (§hook-17): as before, the pump order is told on a
    card that its coverage rules were not checked, and no coverage information is given."""
    _, response = _call(_body("order-select-62362-demo-meets", None, change))
    assert response.status_code == 200
    answer = response.get_json()
    assert [c["summary"] for c in answer["cards"]] == [
        "No active coverage found: coverage rules for 62362 were not checked"
    ]
    assert "systemActions" not in answer


def test_a_coverage_that_begins_later_is_judged_not_answered_as_not_active() -> None:
    """The only Coverage begins after the call's day: the order may be carried out then, under that
    plan (session review s17 F-2), so its payer judges it: not `no-active-coverage`."""
    _, response = _call(_body("order-sign-implant-demo-meets", "2.2", "begins-later"))
    assert response.status_code == 200
    pump = next(
        a for a in response.get_json()["systemActions"] if a["resource"]["id"] == "demo-meets-sign-sr-62362"
    )
    subs = assertion_of(pump)
    assert subs["covered"] == "covered" and "reason" not in subs


def test_coverage_info_switched_off_gives_neither_action_nor_card() -> None:
    body = _body("order-sign-implant-demo-meets", "2.2", "ended")
    body["extension"]["davinci-crd.configuration"] = {"coverage-info": False}
    _, response = _call(body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def _approved(body: dict[str, Any], number: str) -> int:
    """The call's 62362 order (draft, dispatched or booked, wherever the body holds it) made to carry
    an approval for the call's Coverage (`pa-needed` satisfied, `satisfied-pa-id` `number`), as an
    earlier call left it; how many resources were changed."""
    approval = carried_approval(
        COVERAGE, number, "2024-06-01", "0f6f2b4e-1c1d-4f7e-9a61-3f1b9b1c2a10", billing_code="62362"
    )
    bundles = [body["context"].get(k, {}) for k in ("draftOrders", "appointments")]
    bundles += [v for v in body.get("prefetch", {}).values() if isinstance(v, dict)]
    changed = 0
    for bundle in bundles:
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
            if resource.get("resourceType") == "ServiceRequest" and "62362" in codes:
                resource["extension"] = [copy.deepcopy(approval)]
                changed += 1
    return changed


@pytest.mark.parametrize("number", ["IDDS-0123456789ABCDEF", "PA-777"])
@pytest.mark.parametrize("version", [None, "2.2"])
@pytest.mark.parametrize("name", HOOKS)
def test_an_approval_for_a_coverage_no_longer_active_is_taken_back_on_every_hook(
    name: str, version: str | None, number: str
) -> None:
    """An order approved earlier (by this service: IDDS-…, or by another system: PA-777) whose one
    Coverage has since ended: on every hook, order-select too, the approval does not stand; the order
    is answered `not-covered` for that Coverage and the audit records that, not the approval (session
    review s18 R-1: order-select left the approval standing, silently, and recorded it as its answer)."""
    body = _body(name, version, "ended")
    assert _approved(body, number)
    app, response = _call(body)
    assert response.status_code == 200
    [pump] = [a for a in response.get_json()["systemActions"] if "62362" in a["resource"]["id"]]
    subs = assertion_of(pump)
    assert (subs["covered"], "pa-needed" in subs, "satisfied-pa-id" in subs) == ("not-covered", False, False)
    assert f"replaces the approval it carried (prior authorization {number})" in pump["description"]
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    assert {a["covered"] for a in record["assertions"]} == {"not-covered"}


@pytest.mark.parametrize("version", [None, "2.2"])
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_call_about_no_pump_order_is_answered_not_covered_without_a_card(
    hook: str, version: str | None
) -> None:
    """Session review s18 R-7: an office visit (99213) ordered for a patient whose one Coverage ended gets
    its coverage information (`not-covered`, payer-wide, as the kit checks) but no card: this service's
    cards are about the pump, and one on every order of a lapsed patient is noise (before the not-active
    answer, the "No active coverage found" card too came only with a pump order)."""
    body = _body("order-select-non-pump", version, "ended")
    if hook == "order-sign":  # the same office visit, signed
        visit = body["context"]["draftOrders"]
        body = _body("order-sign-implant-demo-meets", version, "ended")
        body["context"]["draftOrders"] = visit
    _, response = _call(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["cards"] == []
    [action] = answer["systemActions"]
    assert (action["resource"]["id"], assertion_of(action)["covered"]) == (
        "demo-meets-select-sr-99213",
        "not-covered",
    )
