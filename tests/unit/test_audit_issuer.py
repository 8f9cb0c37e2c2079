"""The audit record tells the assertions a call issued by what the call built: `coverage_extension` keeps
each assertion it builds on its `HookCall` (`HookCall.issued`), and the record asks, of each of the answer's,
whether it is one of those (`built_for`), from the call that answered (`HookOutcome.issuer`), never deriving
an id again. An id alone says nothing: anyone can derive the one the call gives what a repetition asserts
(hook, hookInstance, resource and content, under a namespace in the public source), so a draft order's
approval sent under that id was recorded, found and exported as the service's own (review32d H1). A record
whose call built nothing (no issuer, or another call's) issued nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

import cards.coverage_information as coverage_information
import service.audit_call as audit_call
from cards.coverage_information import EXTENSION_URL, HookCall, assertion_ids
from service.app import create_app
from service.audit_entry import AuditedCall, audit_row
from service.catalog import Catalog
from service.metrics import metric_data
from service.settings import StoreSettings
from service.shapes import reference_of
from service.store.audit import AuditTrail
from tests.audit_support import approving, two_coverages_encounter_start, two_coverages_sign
from tests.builders import catalog
from tests.support import SIGN_URL, no_client, open_settings, post_json, sign_body

GEHA = "Coverage/demo-two-coverages-coverage-geha"  # documentation needed, on the two-coverages order
CBC = "Coverage/demo-two-coverages-coverage-cbc"  # meets
FORGED = "PA-FORGED"
SSN = "123-45-6789"
JSON_COLUMNS = ("payers", "orders", "determinations", "assertions", "fhir_access", "request", "response")


def _audited(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[AuditedCall, Any]:
    """The demo-meets order-sign's AuditedCall and catalog, as the route gave them to `audit_row`."""
    seen: list[tuple[AuditedCall, Any]] = []

    def kept(call: AuditedCall, catalog: Any) -> dict[str, Any]:
        seen.append((call, catalog))
        return audit_row(call, catalog)

    monkeypatch.setattr(audit_call, "audit_row", kept)
    assert post_json(app.test_client(), SIGN_URL, sign_body()).status_code == 200
    [found] = seen
    return found


def _entries(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in json.loads(row["assertions"]) if "carried_left_out" not in a]


def test_the_record_derives_no_id_the_answer_made(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    call, catalog = _audited(app, monkeypatch)
    derived = []
    uuid5_hex = coverage_information._uuid5_hex
    monkeypatch.setattr(
        coverage_information, "_uuid5_hex", lambda name: derived.append(name) or uuid5_hex(name)
    )
    row = audit_row(call, catalog)
    assert derived == []
    entries = _entries(row)
    assert len(entries) == 4 and all(not a.get("carried") for a in entries)
    [metric] = metric_data({**row, **{k: json.loads(row[k]) for k in JSON_COLUMNS}})
    assert "coverageInfo" in json.dumps(metric, default=str)


@pytest.mark.parametrize("issuer", ["none", "another-hook-instance"])
def test_a_record_whose_call_built_nothing_issued_nothing(
    app: Flask, monkeypatch: pytest.MonkeyPatch, issuer: str
) -> None:
    """An outcome with no issuer (a refusal's, a 500's, one made by hand) or another call's HookCall built
    none of the answer's assertions: each is recorded as not this call's (`carried`), and none exported as
    its determination. (They were derived again and taken as its own: an id the body's content gives.)"""
    call, catalog = _audited(app, monkeypatch)
    assert call.request is not None
    other = None if issuer == "none" else HookCall(call.request.hook, "another-hook-instance")
    row = audit_row(replace(call, outcome=replace(call.outcome, issuer=other)), catalog)
    entries = _entries(row)
    assert len(entries) == 4 and all(a.get("carried") is True for a in entries)
    stored = {**row, **{k: json.loads(row[k]) for k in JSON_COLUMNS}}
    [metric] = metric_data(stored)
    assert "coverageInfo" not in json.dumps(metric, default=str)


def _forged(body: dict[str, Any], order: dict[str, Any], subs: list[dict[str, Any]]) -> dict[str, Any]:
    """A repetition holding `subs`, on `order`, under the id the call of `body` gives what they assert:
    anyone can derive it."""
    ids = assertion_ids(HookCall(body["hook"], body["hookInstance"]), reference_of(order), subs)
    return {
        "url": EXTENSION_URL,
        "extension": [*subs, {"url": "coverage-assertion-id", "valueString": ids.assertion_id}],
    }


def _recorded(
    body: dict[str, Any], with_catalog: Catalog | None = None
) -> tuple[dict[str, Any], dict[str, Any], AuditTrail]:
    """The answer to `body`, its audit record and the trail."""
    app = create_app(
        open_settings(store=StoreSettings(url="sqlite://")),
        with_catalog or catalog(),
        client_factory=no_client,
    )
    answer = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    return answer.get_json(), record, trail


def _approval(coverage: str, number: str = FORGED) -> list[dict[str, Any]]:
    return [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "covered"},
        {"url": "pa-needed", "valueCode": "satisfied"},
        {"url": "satisfied-pa-id", "valueString": number},
        {"url": "date", "valueDate": "2026-01-05"},
    ]


def _exported(record: dict[str, Any]) -> str:
    return json.dumps(list(metric_data(record)), default=str)


@pytest.mark.parametrize("coverage", [GEHA, CBC], ids=["geha", "cbc"])
def test_an_approval_sent_under_the_id_the_call_would_give_it_is_kept_as_the_orders_own(
    coverage: str,
) -> None:
    """review32d H1: the draft order comes with an approval (`pa-needed` satisfied, PA-FORGED) under the id
    the call derives for it. The answer keeps it (an approval issued elsewhere is never taken back; the other
    Coverage's judgement sends the order back), and the record took it as the call's own: unmarked in the
    `assertions` column, and exported as its CRDMetricData. It is `carried`: found by its number as the
    approval the order kept, never exported; the call's own assertions stay its own."""
    body, order = two_coverages_sign()
    order["extension"] = [_forged(body, order, _approval(coverage))]
    answer, record, trail = _recorded(body)
    assert FORGED in json.dumps(answer["systemActions"])
    [entry] = [a for a in record["assertions"] if a.get("satisfied_pa_id") == FORGED]
    assert entry["carried"] is True and entry["coverage"] == coverage
    assert [r["id"] for r in trail.find(FORGED)] == [record["id"]]
    assert FORGED not in _exported(record)
    assert [a for a in record["assertions"] if not a.get("carried")], "the call's own are still its own"


def test_the_cards_name_such_an_approval_as_the_one_the_order_carries() -> None:
    """The card read that approval (CBC's, whose policy the order meets) as this call's: "the approval
    number is in the order's coverage information", as for one it issued. It names it as the order's."""
    body, order = two_coverages_sign()
    order["extension"] = [_forged(body, order, _approval(CBC))]
    answer, _, _ = _recorded(body)
    [card] = [c for c in answer["cards"] if "approv" in c["summary"]]
    assert f"already carries Capital Blue Cross's prior authorization approval ({FORGED})" in card["detail"]


def test_an_approval_with_two_coverages_is_recorded_for_the_one_the_answer_read() -> None:
    """review32d H1, case E: a repetition naming another Coverage first and the judged one last, under the id
    the call derives for it. The answer read it as the first's (`_coverage_of`) and kept it; the row read it
    as the last's, took it as the call's own assertion for the judged Coverage, its reason (an SSN) whole, and
    exported it. Both read the first (`coverage_named`): another Coverage's, not in the column."""
    body, order = two_coverages_sign()
    subs = [
        *_approval("Coverage/other-plan")[:4],
        {"url": "reason", "valueCodeableConcept": {"text": f"SSN {SSN}"}},
        {"url": "date", "valueDate": "2026-01-05"},
        {"url": "coverage", "valueReference": {"reference": GEHA}},
    ]
    order["extension"] = [_forged(body, order, subs)]
    answer, record, trail = _recorded(body)
    assert FORGED in json.dumps(answer["systemActions"])
    assert FORGED not in json.dumps(record["assertions"]) and SSN not in json.dumps(record["assertions"])
    assert trail.find(FORGED) == []
    assert FORGED not in _exported(record)


def _approved_by_cbc(body: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """CBC's approval this call issues on the two-coverages order (CBC approving what meets its policy)."""
    answer, _, _ = _recorded(body, approving(catalog(), "cbc"))
    [sent] = [
        a["resource"] for a in answer["systemActions"] if reference_of(a["resource"]) == reference_of(order)
    ]
    [approval] = [
        e
        for e in sent["extension"]
        if {"url": "coverage", "valueReference": {"reference": CBC}} in e["extension"]
    ]
    assert any(s["url"] == "satisfied-pa-id" for s in approval["extension"]), "CBC approves what meets"
    return approval


def _numbered(approval: dict[str, Any], how: str) -> dict[str, Any]:
    subs = approval["extension"]
    if how == "another-number":
        subs = [{**s, "valueString": FORGED} if s["url"] == "satisfied-pa-id" else s for s in subs]
    else:  # a second number after the call's
        subs = [*subs, {"url": "satisfied-pa-id", "valueString": FORGED}]
    return {**approval, "extension": subs}


@pytest.mark.parametrize("how", ["another-number", "a-second-number"])
def test_the_calls_own_approval_under_another_number_is_not_its_own(how: str) -> None:
    """The id does not read the PA number: the approval the call issues, sent back by a retry (the same
    hookInstance) with PA-FORGED in its place, or after it (the row reads the last), held the call's id and
    was recorded and exported under PA-FORGED as the call's. It is not what the call built: `carried`."""
    body, order = two_coverages_sign()
    approval = _approved_by_cbc(body, order)
    order["extension"] = [_numbered(approval, how)]
    answer, record, _ = _recorded(body, approving(catalog(), "cbc"))
    assert FORGED in json.dumps(answer["systemActions"])
    assert all(a.get("carried") for a in record["assertions"] if a.get("satisfied_pa_id") == FORGED)
    assert FORGED not in _exported(record)


def test_the_calls_own_approval_sent_back_by_a_retry_on_another_day_is_still_its_own() -> None:
    """A retry (the same hookInstance) whose order came with the approval the first attempt issued, made on
    an earlier day: the same assertion, kept as it came, is the call's own (its date is not what it
    asserts)."""
    body, order = two_coverages_sign()
    approval = _approved_by_cbc(body, order)
    subs = [{**s, "valueDate": "2026-01-05"} if s["url"] == "date" else s for s in approval["extension"]]
    order["extension"] = [{**approval, "extension": subs}]
    answer, record, _ = _recorded(body, approving(catalog(), "cbc"))
    [number] = [s["valueString"] for s in approval["extension"] if s["url"] == "satisfied-pa-id"]
    assert "2026-01-05" in json.dumps(answer["systemActions"])
    [entry] = [a for a in record["assertions"] if a.get("satisfied_pa_id") == number]
    assert not entry.get("carried")
    assert number in _exported(record)


def test_another_resources_repetition_under_an_issued_id_is_kept_short_in_the_response() -> None:
    """review32d L4: the response keeps whole the repetitions that are the call's own; one on another order
    (the infusate) for CBC under the id of the approval the call issued on the pump order, with a 400 KB note
    holding an SSN, was taken as its own, as any holding an issued (Coverage, id) was, and kept whole. Only
    what the call built is: this one is kept short, as another source's are."""
    body, order = two_coverages_sign()
    approval = _approved_by_cbc(body, order)
    [identifier] = [s["valueString"] for s in approval["extension"] if s["url"] == "coverage-assertion-id"]
    [infusate] = [
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["id"].endswith("infusate")
    ]
    note = {"url": "note", "valueString": f"SSN {SSN} " + "N" * 400_000}
    subs = [*_approval(CBC), note, {"url": "coverage-assertion-id", "valueString": identifier}]
    infusate["extension"] = [{"url": EXTENSION_URL, "extension": subs}]
    answer, record, _ = _recorded(body, approving(catalog(), "cbc"))
    assert SSN in json.dumps(answer["systemActions"])
    assert SSN not in json.dumps(record["response"]) and SSN not in json.dumps(record["assertions"])


def _padded(repetition: dict[str, Any], how: str) -> dict[str, Any]:
    """`repetition` with what a repetition the call builds never holds, an SSN in it."""
    subs = repetition["extension"]
    if how == "a-second-date":
        return {
            **repetition,
            "extension": [*subs, {"url": "date", "valueDate": "2026-01-05", "id": f"SSN {SSN}"}],
        }
    if how == "text-as-its-date":
        return {
            **repetition,
            "extension": [{**s, "valueDate": f"SSN {SSN}"} if s["url"] == "date" else s for s in subs],
        }
    if how == "another-key":
        return {**repetition, "id": f"SSN {SSN}"}
    return {**repetition, "extension": [*subs, f"SSN {SSN}"]}  # an item that is no object


PADDINGS = ["a-second-date", "text-as-its-date", "another-key", "a-string-item"]


@pytest.mark.parametrize("how", PADDINGS)
def test_the_calls_own_approval_padded_with_what_it_never_builds_is_not_its_own(how: str) -> None:
    """A retry's order came with the approval the call issues, but padded: a second `date` (the date was left
    out of the comparison, every one of them), text where the date goes, a key beside `url` and `extension`,
    an item that is no object (neither was compared). It was taken as what the call built: unmarked, and
    kept whole in the response column, the SSN in it. It is not what the call built: `carried`, kept short
    (as another source's, its date's text with it, cut)."""
    body, order = two_coverages_sign()
    approval = _approved_by_cbc(body, order)
    order["extension"] = [_padded(approval, how)]
    answer, record, _ = _recorded(body, approving(catalog(), "cbc"))
    assert SSN in json.dumps(answer["systemActions"])
    [number] = [s["valueString"] for s in approval["extension"] if s["url"] == "satisfied-pa-id"]
    [entry] = [a for a in record["assertions"] if a.get("satisfied_pa_id") == number]
    assert entry.get("carried") is True
    assert number not in _exported(record)
    if how != "text-as-its-date":  # (a carried repetition's date is kept as its text, cut: CARRIED_TEXT)
        assert SSN not in json.dumps(record["response"])


@pytest.mark.parametrize("how", PADDINGS)
def test_an_encounters_copy_of_the_calls_own_assertion_padded_is_not_kept_in_the_response(how: str) -> None:
    """The Encounter is kept in the response column as its reference and the repetitions the call issued on
    it; one it came with for one Coverage, a copy of what the call builds there padded with an SSN, went
    back with the other Coverage's added and was kept whole, the SSN in the row where the Encounter's other
    extensions never are. It is another source's: kept short."""
    body = two_coverages_encounter_start()
    encounter = body["prefetch"]["encounter"]
    first, _, _ = _recorded(json.loads(json.dumps(body)))
    [sent] = [a["resource"] for a in first["systemActions"] if a["resource"]["resourceType"] == "Encounter"]
    [own, _] = [e for e in sent["extension"] if e["url"] == EXTENSION_URL]
    encounter["extension"] = [_padded(own, how)]
    answer, record, _ = _recorded(body)
    assert SSN in json.dumps(answer["systemActions"])
    marks = [a.get("carried") for a in record["assertions"] if a["order"] == reference_of(encounter)]
    assert marks == [True, None]  # the padded copy, then the other Coverage's, the call's own
    if how != "text-as-its-date":  # (a carried repetition's date is kept as its text, cut: CARRIED_TEXT)
        assert SSN not in json.dumps(record["response"])
