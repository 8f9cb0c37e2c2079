"""What the audit row's `assertions` column keeps of a coverage-information repetition the call did not issue
(another source's, on the Encounter or an order, for a Coverage the call judged): what identifies it and what
it determined, each string bounded, and the digest of it as sent; never its free text nor its bulk
(review31c MEDIUM 2: an SSN in its reason or billing code, 400 KB of text or id, 20,000 info-needed reached
the column whole, as df15b1d had already stopped for the Encounter kept in the row's response)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from service.app import create_app
from service.catalog import Catalog
from service.metrics import metric_data
from service.settings import StoreSettings
from service.strict_json import dumps
from tests.audit_support import assertions_indexed, kept_as_carried, two_coverages_sign, without_display
from tests.builders import CPT, carried_approval, catalog
from tests.calls import sample
from tests.support import (
    RecordingFactory,
    RecordingFhirClient,
    no_client,
    open_settings,
    post_json,
    with_fhir,
)

COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
ENCOUNTER = "Encounter/demo-meets-encounter"
JUDGED = "Coverage/demo-meets-coverage-geha"  # the Coverage encounter-start-demo-meets is judged for
OTHER = "Coverage/other-plan"  # one it is not: the answer sends another source's repetition for it back
SSN = "123-45-6789"
BULK = "A" * 400_000
EXTRAS = {
    "ssn-in-a-reason": [{"url": "reason", "valueCodeableConcept": {"text": f"SSN {SSN}"}}],
    "ssn-in-a-billing-code": [{"url": "billingCode", "valueCoding": {"code": "x", "display": f"SSN {SSN}"}}],
    "ssn-in-a-contact": [{"url": "contact", "valueContactDetail": {"name": f"SSN {SSN}"}}],
    "ssn-in-a-detail": [{"url": "detail", "extension": [{"url": "qualification", "valueString": SSN}]}],
    "400-kb-reason": [{"url": "reason", "valueCodeableConcept": {"text": BULK}}],
    "20000-info-needed": [{"url": "info-needed", "valueCode": "OTH"} for _ in range(20_000)],
    "20000-questionnaires": [{"url": "questionnaire", "valueCanonical": f"q{i}"} for i in range(20_000)],
}


def theirs(coverage: str, assertion_id: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    """Another source's repetition for `coverage`: conditional, as of 2026-01-05, under `assertion_id`."""
    subs = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "conditional"},
        {"url": "pa-needed", "valueCode": "no-auth"},
        {"url": "info-needed", "valueCode": "performer"},
        {"url": "date", "valueDate": "2026-01-05"},
        {"url": "coverage-assertion-id", "valueString": assertion_id},
        *extra,
    ]
    return {"url": COVERAGE_INFO, "extension": subs}


def recorded_encounter_call(
    repetition: dict[str, Any] | list[dict[str, Any]],
) -> tuple[Any, dict[str, Any]]:
    """The audit trail of encounter-start-demo-meets whose Encounter came with `repetition` (or these), and
    its row."""
    body = sample("encounter-start-demo-meets")
    body["prefetch"]["encounter"]["extension"] = repetition if isinstance(repetition, list) else [repetition]
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(RecordingFhirClient()))
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    trail = app.extensions["idds_crd"].stores.audit
    [record] = list(trail.between())
    return trail, record


def digest(value: Any) -> str:
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("extra", list(EXTRAS.values()), ids=list(EXTRAS))
def test_another_sources_assertion_for_the_judged_coverage_is_kept_as_its_identity_and_determination(
    extra: list[dict[str, Any]],
) -> None:
    """The Encounter came with another source's repetition for the Coverage the call judged, carrying PII
    or bulk beside what it determined (the answer leaves it as it is): the row's assertions keep its
    coverage, covered, pa-needed, info-needed codes (each once), date and assertion id, marked carried,
    with the digest of it as the request brought it; not its reason, billing code, contact, detail or
    questionnaires."""
    repetition = theirs(JUDGED, "x-6", extra)
    _, record = recorded_encounter_call(repetition)
    column = json.dumps(record["assertions"])
    assert SSN not in column and len(column) < 8_000
    [kept] = [a for a in record["assertions"] if a.get("carried")]
    codes = [s["valueCode"] for s in repetition["extension"] if s["url"] == "info-needed"]
    billing = [
        without_display(s)["valueCoding"] for s in repetition["extension"] if s["url"] == "billingCode"
    ]
    assert kept == {
        "order": ENCOUNTER,
        "coverage": JUDGED,
        "covered": "conditional",
        "pa_needed": "no-auth",
        "info_needed": list(dict.fromkeys(codes)),
        "date": "2026-01-05",
        "assertion_id": "x-6",
        "carried": True,
        "sent_sha256": digest(repetition),
        **({"billing_codes": billing} if billing else {}),
    }


def test_a_carried_assertion_id_is_kept_cut_to_a_bound() -> None:
    """An assertion id of 400 KB is kept, in the column and its index, as its first characters: the call
    is still found by them."""
    repetition = theirs(JUDGED, "x-6" + BULK, [])
    trail, record = recorded_encounter_call(repetition)
    [kept] = [a for a in record["assertions"] if a.get("carried")]
    assert kept["assertion_id"].startswith("x-6A") and len(kept["assertion_id"]) <= 1_024
    assert len(json.dumps(record["assertions"])) < 8_000
    assert [r["hook_instance"] for r in trail.find(kept["assertion_id"])] == [record["hook_instance"]]


def test_a_kept_approval_keeps_what_an_auditor_finds_it_by_and_not_its_free_text(
    compiled_catalog: Catalog,
) -> None:
    """An order-sign whose pump order came with a GEHA approval from the payer's PA system, its reason
    holding an SSN: the row's carried assertion keeps the approval's assertion id, covered, pa-needed,
    PA number and date, so `audit show` of the PA number or the id finds the call (AR-3), and the digest of
    it as sent; not the reason, and it is not exported as this call's determination."""
    body, order = two_coverages_sign()
    approval = carried_approval(
        "Coverage/demo-two-coverages-coverage-geha", "PAS-1", "2026-11-01", "theirs-1"
    )
    approval["extension"].append({"url": "reason", "valueCodeableConcept": {"text": f"gold card, SSN {SSN}"}})
    order["extension"] = [approval]
    app = create_app(
        open_settings(store=StoreSettings(url="sqlite://")), compiled_catalog, client_factory=no_client
    )
    answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answer.status_code == 200
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    assert trail.find("PAS-1") == [record] == trail.find("theirs-1")
    [kept] = [a for a in record["assertions"] if a.get("satisfied_pa_id") == "PAS-1"]
    assert kept == {
        "order": f"ServiceRequest/{order['id']}",
        "coverage": "Coverage/demo-two-coverages-coverage-geha",
        "covered": "covered",
        "pa_needed": "satisfied",
        "satisfied_pa_id": "PAS-1",
        "info_needed": [],
        "date": "2026-11-01",
        "assertion_id": "theirs-1",
        "carried": True,
        "sent_sha256": digest(approval),
    }
    assert SSN not in json.dumps(record["assertions"])
    assert "PAS-1" not in json.dumps(list(metric_data(record)))


def encounter_kept(record: dict[str, Any]) -> dict[str, Any]:
    """The hook's Encounter as the row's response keeps it (its system action's resource)."""
    [encounter] = [
        a["resource"]
        for a in record["response"]["systemActions"]
        if a["resource"]["resourceType"] == "Encounter"
    ]
    return encounter


def kept_in_both_columns(extra: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """What the row keeps of another source's repetition holding `extra`: the `assertions` column's entry
    (the repetition for the judged Coverage, which the answer leaves as it is) and the row's Encounter's
    (one for another Coverage, which the answer sends back), with both rows' text."""
    _, judged = recorded_encounter_call(theirs(JUDGED, "x-6", extra))
    _, other = recorded_encounter_call(theirs(OTHER, "y-6", extra))
    [entry] = [a for a in judged["assertions"] if a.get("carried")]
    [repetition] = [e for e in encounter_kept(other)["extension"] if e.get("carried")]
    return entry, repetition, json.dumps([judged, other], default=str)


def test_a_carried_approvals_billing_codes_are_kept_as_their_system_and_code_in_both_columns() -> None:
    """What a carried approval covers (its billingCode, 0..*: CPT 62362) is what a reviewer matches a PA
    against (review31e L3: kept in neither column since b52d002): the row's assertions and its Encounter keep
    each coding's system and code, cut to 1,024 characters, each once, at most 8; never its display (free
    text: an SSN)."""
    long_code = "9" * 5_000
    billing = [
        {"url": "billingCode", "valueCoding": {"system": CPT, "code": "62362", "display": f"SSN {SSN}"}},
        {"url": "billingCode", "valueCoding": {"system": CPT, "code": "62362"}},
        {"url": "billingCode", "valueCoding": {"system": CPT, "code": long_code}},
        *({"url": "billingCode", "valueCoding": {"system": CPT, "code": f"6{i:04}"}} for i in range(20)),
    ]
    entry, repetition, text = kept_in_both_columns(billing)
    expected = [
        {"system": CPT, "code": "62362"},
        {"system": CPT, "code": long_code[:1_024]},
        *({"system": CPT, "code": f"6{i:04}"} for i in range(6)),
    ]
    assert entry["billing_codes"] == expected and "billing_code" not in entry
    assert [s["valueCoding"] for s in repetition["extension"] if s["url"] == "billingCode"] == expected
    assert SSN not in text


def test_a_carried_approval_for_62362_on_the_encounter_keeps_what_it_covers() -> None:
    """A carried approval for CPT 62362 on a prefetched Encounter (no order keeps it in the request) keeps
    the code in the assertions column."""
    approval = carried_approval(JUDGED, "PAS-9", "2026-11-01", "theirs-9", billing_code="62362")
    _, record = recorded_encounter_call(approval)
    [kept] = [a for a in record["assertions"] if a.get("carried")]
    assert kept["billing_codes"] == [{"system": CPT, "code": "62362"}]
    assert kept["satisfied_pa_id"] == "PAS-9"


def test_a_carried_repetitions_doc_needed_codes_are_each_kept() -> None:
    """doc-needed is 0..* (CRD 2.2): a carried repetition's [clinical, admin, clinical] is kept as
    [clinical, admin] (review31e L4: "admin" alone, the last of the codes kept once), as the Encounter keeps
    them."""
    docs = [{"url": "doc-needed", "valueCode": code} for code in ("clinical", "admin", "clinical")]
    entry, repetition, _ = kept_in_both_columns(docs)
    assert entry["doc_needed"] == ["clinical", "admin"]
    assert [s["valueCode"] for s in repetition["extension"] if s["url"] == "doc-needed"] == [
        "clinical",
        "admin",
    ]


def test_the_carried_repetitions_a_row_keeps_are_bounded_and_the_rest_counted() -> None:
    """200 carried repetitions, each string 1 KB, made a 3 MB assertions column (review31e L5): of each
    resource the row keeps the first 16, in both columns, and says how many it left out (here 100, within
    the body's 5 MB)."""
    junk = "Z" * 1_000
    stuffed = [{"url": "info-needed", "valueCode": f"{junk}{i}"} for i in range(4)] + [
        {"url": "doc-needed", "valueCode": f"{junk}{i}"} for i in range(4)
    ]
    _, judged = recorded_encounter_call([theirs(JUDGED, f"x-{n}-{junk}", stuffed) for n in range(100)])
    carried = [a for a in judged["assertions"] if a.get("carried")]
    assert [a["assertion_id"] for a in carried[:-1]] == [f"x-{n}-{junk}"[:1_024] for n in range(16)]
    named = [{"assertion_id": f"x-{n}-{junk}"[:1_024]} for n in range(16, 32)]  # (those left out indexed)
    assert carried[-1] == {"order": ENCOUNTER, "carried": True, "carried_left_out": 84, "left_out_ids": named}
    assert len(json.dumps(judged["assertions"])) < 250_000
    _, other = recorded_encounter_call([theirs(OTHER, f"y-{n}-{junk}", stuffed) for n in range(100)])
    encounter = encounter_kept(other)
    kept = [e for e in encounter["extension"] if e.get("carried")]
    assert [_id(e) for e in kept] == [f"y-{n}-{junk}"[:1_024] for n in range(16)]
    assert encounter["carried_left_out"] == 84
    assert len(json.dumps(other["response"])) < 250_000


def _id(repetition: dict[str, Any]) -> str:
    [identifier] = [s["valueString"] for s in repetition["extension"] if s["url"] == "coverage-assertion-id"]
    return identifier


def test_a_carried_approval_past_the_rows_bound_is_still_found_by_its_pa_number_and_assertion_id() -> None:
    """review31h: the cap on carried repetitions (review31e L5) also dropped the index keys of those past
    it, so the 17th carried approval on the Encounter, found by `audit show <PA number>` before the cap,
    was found by nothing; the column stays bounded, the ids are indexed."""
    pa = "PA-2026-0042"
    approval = theirs(JUDGED, "the-approval", [{"url": "satisfied-pa-id", "valueString": pa}])
    trail, record = recorded_encounter_call([theirs(JUDGED, f"a-{n}", []) for n in range(16)] + [approval])
    assert [a.get("carried_left_out") for a in record["assertions"] if a.get("carried")][-1] == 1
    assert [r["hook_instance"] for r in trail.find(pa)] == [record["hook_instance"]]
    assert [r["hook_instance"] for r in trail.find("the-approval")] == [record["hook_instance"]]


PA = "PA-2026-0042"


def an_approval(coverage: str, assertion_id: str) -> dict[str, Any]:
    """Another source's approval for `coverage`: PA number `PA` satisfied."""
    return theirs(
        coverage,
        assertion_id,
        [{"url": "pa-needed", "valueCode": "satisfied"}, {"url": "satisfied-pa-id", "valueString": PA}],
    )


def test_an_approval_among_200_stuffed_repetitions_is_kept_and_read_by_its_pa_number() -> None:
    """review31h: past the 16th carried repetition of one resource an approval was found by its PA number,
    but its entry was among those counted, not kept. A row keeps first the repetitions carrying a PA
    number, then those carrying an assertion id, then the rest, each in the order sent: `audit show` of the
    PA number reads its values, in the assertions column and on the row's Encounter (another Coverage's)."""
    stuffed = [theirs(JUDGED, f"a-{n}", []) for n in range(200)]
    trail, record = recorded_encounter_call(
        [*stuffed[:150], an_approval(JUDGED, "the-approval"), *stuffed[150:]]
    )
    [found] = trail.find(PA)
    [approval] = [a for a in found["assertions"] if a.get("satisfied_pa_id") == PA]
    assert (approval["assertion_id"], approval["pa_needed"], approval["covered"]) == (
        "the-approval",
        "satisfied",
        "conditional",
    )
    carried = [a.get("assertion_id") for a in record["assertions"] if a.get("carried")]
    assert carried[:-1] == [*(f"a-{n}" for n in range(15)), "the-approval"]  # in the order sent
    others = [theirs(OTHER, f"o-{n}", []) for n in range(200)]
    _, other = recorded_encounter_call([*others[:150], an_approval(OTHER, "their-approval"), *others[150:]])
    kept = [e for e in encounter_kept(other)["extension"] if e.get("carried")]
    assert [_id(e) for e in kept] == [*(f"o-{n}" for n in range(15)), "their-approval"]
    assert {"url": "satisfied-pa-id", "valueString": PA} in kept[-1]["extension"]


def test_the_ids_indexed_of_one_call_are_bounded_each_kept_one_first() -> None:
    """review31h: the index held one row per carried id, however many (unbounded again since the index took
    the ids past the column's bound). It holds each repetition the column keeps (16 a resource) and of those
    left out 16 a call, approvals first, which the column names (`left_out_ids`); an id past them is found by
    nothing."""
    stuffed = [theirs(JUDGED, f"a-{n}", []) for n in range(80)]
    trail, record = recorded_encounter_call([*stuffed, an_approval(JUDGED, "the-approval")])
    kept = [*(f"a-{n}" for n in range(15)), "the-approval"]
    named = [f"a-{n}" for n in range(15, 31)]
    assert sorted(assertions_indexed(trail)) == sorted(
        [*((i, None) for i in kept if i != "the-approval"), ("the-approval", PA), *((i, None) for i in named)]
    )
    assert [e["assertion_id"] for e in record["assertions"][-1]["left_out_ids"]] == named
    for identifier in (*kept, *named):
        assert [r["hook_instance"] for r in trail.find(identifier)] == [record["hook_instance"]]
    assert trail.find("a-31") == [] == trail.find("a-79")


AMBIGUOUS = {  # an id the index cannot tell from another (`unlike`): U+0000 is kept as U+FFFD, or its length
    "u+fffd": ("amb\ufffdid", "amb\u0000id"),
    "u+0000": ("amb\u0000id", "amb\ufffdid"),
    "the-index-columns-length": ("L" * 200, "L" * 200 + "M"),
}


@pytest.mark.parametrize("identifier, unlike", list(AMBIGUOUS.values()), ids=list(AMBIGUOUS))
def test_an_ambiguous_id_past_the_columns_bound_is_found_as_indexed(identifier: str, unlike: str) -> None:
    """review31h: `find` of a key that other ids are stored as too (a U+FFFD or U+0000, or as long as the
    index column) keeps the records whose id as sent is the key, read from the `assertions` column, which
    held the first 16 carried repetitions alone: the 17th, indexed, was found by nothing. The column names
    those left out it indexes; an id that differs only where the index cannot tell is still not found."""
    trail, record = recorded_encounter_call(
        [theirs(JUDGED, f"a-{n}", []) for n in range(16)] + [theirs(JUDGED, identifier, [])]
    )
    assert [r["hook_instance"] for r in trail.find(identifier)] == [record["hook_instance"]]
    assert trail.find(unlike) == []


BILLING_CODES = {
    "an-int-code": ({"system": CPT, "code": 62362}, {"system": CPT, "code": "62362"}),
    "a-decimal-code": ({"system": CPT, "code": 62362.0}, {"system": CPT, "code": "62362.0"}),
    "an-object-code": ({"system": CPT, "code": {"value": "62362"}}, {"system": CPT}),
    "an-object-code-with-an-ssn": ({"system": CPT, "code": {"display": f"SSN {SSN}"}}, {"system": CPT}),
    "an-array-code": ({"system": CPT, "code": [f"SSN {SSN}"]}, {"system": CPT}),
    "a-boolean-code": ({"system": CPT, "code": True}, {"system": CPT}),
    "a-long-number": ({"system": CPT, "code": int("9" * 1_100)}, {"system": CPT, "code": "9" * 1_024}),
    "no-code-but-a-display": ({"system": CPT, "display": f"SSN {SSN}"}, {"system": CPT}),
    "no-code": ({"system": CPT, "display": "Intrathecal pump, programmable"}, {"system": CPT}),
}


@pytest.mark.parametrize("sent, kept", list(BILLING_CODES.values()), ids=list(BILLING_CODES))
def test_a_carried_billing_code_sent_as_a_number_is_kept_as_its_json_text_and_no_other(
    sent: dict[str, Any], kept: dict[str, Any]
) -> None:
    """review31h: a billingCode coding whose code is no string (62362 sent as a number) was kept as its
    system alone, which says nothing of what the approval covers: a code sent as a JSON number is kept as
    its JSON text, cut to 1,024 characters as the others are. A code that is an object, an array or a boolean
    is not (review32d L3: `{"display": "SSN …"}` reached the column as its text): free text can ride in it as
    in a display; a coding with no code keeps its system alone, never its display (free text another source
    wrote)."""
    entry, repetition, text = kept_in_both_columns([{"url": "billingCode", "valueCoding": sent}])
    assert entry["billing_codes"] == [kept]
    assert [s["valueCoding"] for s in repetition["extension"] if s["url"] == "billingCode"] == [kept]
    assert SSN not in text and "Intrathecal pump, programmable" not in text


def sign_with_carried(
    extensions: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The order-sign of the two-coverages pump order carrying `extensions`: its answer, row and order."""
    body, order = two_coverages_sign()
    order["extension"] = extensions
    app = create_app(open_settings(store=StoreSettings(url="sqlite://")), catalog(), client_factory=no_client)
    answer = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    return answer.get_json(), record, order


def order_sent_back(response: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    [resource] = [
        a["resource"]
        for a in response.get("systemActions", [])
        if (a["resource"]["resourceType"], a["resource"]["id"]) == (order["resourceType"], order["id"])
    ]
    return resource


def test_an_orders_carried_repetition_is_kept_whole_in_the_request_alone() -> None:
    """stop-note-53 (review31c): a draft order carrying another Coverage's repetition with a 400 KB note was
    stored twice, whole in the request column (the call as sent: it stays so) and again in the response's
    order sent back. The response keeps it as the Encounter's are, short: what identifies it and what it
    determined, marked carried, with the digest of it as sent; the answer sends it whole."""
    note = "N" * 400_000
    repetition = theirs(OTHER, "y-6", [{"url": "note", "valueString": note}])
    answer, record, order = sign_with_carried([repetition])
    assert repetition in order_sent_back(answer, order)["extension"]
    [request_order] = [
        e["resource"]
        for e in record["request"]["context"]["draftOrders"]["entry"]
        if e["resource"]["id"] == order["id"]
    ]
    assert repetition in request_order["extension"]
    kept = order_sent_back(record["response"], order)
    [carried] = [e for e in kept["extension"] if e.get("carried")]
    assert carried == kept_as_carried(repetition)
    assert len(json.dumps(record["response"])) < 100_000
    issued = [e for e in order_sent_back(answer, order)["extension"] if e != repetition]
    assert [e for e in kept["extension"] if not e.get("carried")] == issued


def test_an_orders_carried_repetitions_in_the_response_are_bounded_as_the_encounters() -> None:
    """The response's order keeps 16 carried repetitions (an approval first) and counts the rest, as the
    row's Encounter does; the request keeps all 40 as sent."""
    others = [theirs(OTHER, f"o-{n}", []) for n in range(40)]
    answer, record, order = sign_with_carried([*others, an_approval(OTHER, "their-approval")])
    kept = order_sent_back(record["response"], order)
    assert [_id(e) for e in kept["extension"] if e.get("carried")] == [
        *(f"o-{n}" for n in range(15)),
        "their-approval",
    ]
    assert kept["carried_left_out"] == 25
    assert len(order_sent_back(answer, order)["extension"]) == 43  # 41 theirs and the call's two


def test_a_carried_repetition_naming_two_coverages_is_kept_as_the_first_ones() -> None:
    """review32d: the answer reads a repetition's Coverage from its first `coverage` (`_coverage_of`), the row
    read the last: one on the Encounter naming the judged Coverage first and another last, which the answer
    keeps as the judged one's, was left out of the `assertions` column as the other's; one naming them the
    other way round, which the answer sends back as the other Coverage's, was in the column as the judged
    one's and named it in the response. Both read the first (`coverage_named`)."""
    also = [{"url": "coverage", "valueReference": {"reference": OTHER}}]
    _, record = recorded_encounter_call(theirs(JUDGED, "x-7", also))
    [entry] = [a for a in record["assertions"] if a.get("assertion_id") == "x-7"]
    assert entry["carried"] is True and entry["coverage"] == JUDGED
    also = [{"url": "coverage", "valueReference": {"reference": JUDGED}}]
    _, record = recorded_encounter_call(theirs(OTHER, "y-7", also))
    assert [a for a in record["assertions"] if a.get("assertion_id") == "y-7"] == []
    [kept] = [e for e in encounter_kept(record)["extension"] if e.get("carried")]
    assert [s for s in kept["extension"] if s["url"] == "coverage"] == [
        {"url": "coverage", "valueReference": {"reference": OTHER}}
    ]


@pytest.mark.parametrize(
    ("dates", "kept"),
    [
        ([{"url": "date", "valueDate": f"SSN {SSN}"}], {}),
        ([{"url": "expiry-date", "valueDate": f"{SSN}"}], {"date": "2026-01-05"}),
        (
            [{"url": "date", "valueDate": "2026-02-01"}, {"url": "expiry-date", "valueDate": "2027-01"}],
            {"date": "2026-02-01", "expiry_date": "2027-01"},
        ),
        ([{"url": "date", "valueDate": "2026-02-01T10:00:00Z"}], {"date": "2026-02-01T10:00:00Z"}),
    ],
    ids=["ssn-as-its-date", "ssn-as-its-expiry-date", "dates", "a-date-time"],
)
def test_a_carried_date_not_written_as_a_date_is_left_out(
    dates: list[dict[str, Any]], kept: dict[str, str]
) -> None:
    """review32f L2: a carried repetition's date and expiry-date were kept as any string up to 1,024
    characters, so an SSN sent as its date reached the `assertions` column. One not written as a FHIR date
    or dateTime is left out; the last one sent decides (the repetition's own date, 2026-01-05, comes first),
    as the row reads the others."""
    entry, repetition, text = kept_in_both_columns(dates)
    assert {k: entry[k] for k in ("date", "expiry_date") if k in entry} == kept
    subs = {s["url"]: s["valueDate"] for s in repetition["extension"] if s["url"] in ("date", "expiry-date")}
    assert subs == {k.replace("_", "-"): v for k, v in kept.items()}
    assert SSN not in text
