"""A payer the routing cannot place (contract §6: `Coverage.payor` → its Organization's identifiers, then
its name): when the payor's own words (its identifier, its display) name no payer of the routing table
and the Organization it references could be neither had from the prefetch nor read, who the payer is
cannot be told, and a pump order's answer depends on it: CDS Hooks' 412, naming
`prefetch.payerOrganizations` and the words routing did not know (review23b M4, cards23 MEDIUM). A payor
whose Organization was had, or that names none (its words are all there is), and that routes nowhere, is
a payer this service holds no rules for (200, "no intrathecal pump coverage rules here")."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import responses

from service.app import create_app
from tests.builders import searchset
from tests.demo_support import packaged_sample
from tests.support import assert_outcome, open_settings, post_json, with_fhir

MEETS = "order-select-62362-demo-meets"  # a GEHA member (payer-id geha), every criterion met
GEHA_ORG = "Organization/demo-meets-org-geha"
BASE = "https://ehr.example.org/fhir"
NAIC = {"system": "http://www.naic.org/companies", "value": "99999"}
NO_RULES = "no intrathecal pump coverage rules here"
GEHA_MEETS = "GEHA: 62362 meets all 14 coverage criteria"
REMEDY = "send it as prefetch or provide a reachable fhirServer with fhirAuthorization"


def _body(payor: dict[str, Any], name: str = MEETS, payers_sent: bool = False) -> dict[str, Any]:
    """`name`'s sample with no fhirServer, each Coverage's payor as `payor`, `payerOrganizations` sent
    only with `payers_sent`."""
    body = copy.deepcopy(packaged_sample(name))
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    for entry in body["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"] = [copy.deepcopy(payor)]
    if not payers_sent:
        del body["prefetch"]["payerOrganizations"]
    return body


def _call(body: dict[str, Any]) -> Any:
    app = create_app(open_settings()).test_client()
    return post_json(app, f"/cds-services/idds-crd-{body['hook']}", body)


def _first_summary(response: Any) -> str:
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["cards"][0]["summary"])


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ({"display": "GEHA Benefit Plan"}, "named 'GEHA Benefit Plan'"),
        ({"identifier": NAIC}, f"named by identifier {NAIC['system']}|{NAIC['value']}"),
    ],
    ids=["display", "identifier"],
)
def test_a_payor_whose_words_do_not_route_and_whose_organization_cannot_be_had_is_a_412(
    words: dict[str, Any], said: str
) -> None:
    """No fhirServer, `payerOrganizations` not sent, the payor naming GEHA's Organization by reference and
    itself by a display or identifier the routing table does not hold: before, 200 "<display>: no
    intrathecal pump coverage rules here", though that Organization (payer-id geha) routes to GEHA."""
    response = _call(_body({"reference": GEHA_ORG, **words}))
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert issue["diagnostics"] == (
        "payerOrganizations was not prefetched and could not be read from the EHR's FHIR server (the request "
        f"has no fhirServer to read {GEHA_ORG} (a Coverage's payer, {said}, which this service's payer "
        f"routing does not know) from); {REMEDY}"
    ), issue


def test_a_payor_named_by_reference_alone_keeps_its_412_word_for_word() -> None:
    """The payor without any words of its own (d81d24b's case): the 412 is unchanged."""
    response = _call(_body({"reference": GEHA_ORG}))
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert issue["diagnostics"] == (
        "payerOrganizations was not prefetched and could not be read from the EHR's FHIR server (the request "
        f"has no fhirServer to read {GEHA_ORG} (a Coverage's payer) from); {REMEDY}"
    ), issue


def test_a_payor_whose_words_route_needs_no_organization() -> None:
    """The payor's display is a payer's name in the routing table: routed by it, as before."""
    assert _first_summary(_call(_body({"reference": GEHA_ORG, "display": "GEHA"}))) == GEHA_MEETS


def test_a_payor_naming_no_organization_is_a_payer_without_rules_here() -> None:
    """A payor given by its display alone (no reference): its words are all there is, and they name no
    payer here; the payer is not one this service holds rules for, not an error."""
    summary = _first_summary(_call(_body({"display": "Acme Health Plan"})))
    assert summary == f"Acme Health Plan: {NO_RULES} for 62362"


def test_a_payer_whose_organization_was_had_and_routes_nowhere_is_without_rules_here() -> None:
    """The Organization sent in `payerOrganizations`, its identifier and name not in the routing table:
    who the payer is, is known, and this service holds no rules for it."""
    body = _body({"reference": GEHA_ORG, "display": "GEHA Benefit Plan"}, payers_sent=True)
    org = body["prefetch"]["payerOrganizations"]["entry"][0]["resource"]
    org["identifier"], org["name"] = [NAIC], "Acme Health Plan"
    assert _first_summary(_call(body)) == f"Acme Health Plan: {NO_RULES} for 62362"


def test_a_paged_payer_prefetch_without_the_organization_names_the_words_not_known() -> None:
    """`payerOrganizations` sent as page one of several, without the payor's Organization, the payor's
    display unknown to routing: the 412 says the key was sent in part, and what routing did not know."""
    body = _body({"reference": GEHA_ORG, "display": "GEHA Benefit Plan"}, payers_sent=True)
    body["prefetch"]["payerOrganizations"] = searchset([], next_url=f"{BASE}/Organization?page=2")
    issue = assert_outcome(_call(body), 412, "prefetch.payerOrganizations")
    assert issue["diagnostics"] == (
        "prefetch.payerOrganizations was sent as page one of several (its Bundle has a next link), without "
        f"{GEHA_ORG} (a Coverage's payer, named 'GEHA Benefit Plan', which this service's payer routing does "
        "not know), and the EHR gave no FHIR server to read the other pages from; send all of it in the one "
        "prefetch Bundle, or provide a reachable fhirServer with fhirAuthorization"
    ), issue


def test_a_call_with_no_pump_order_needs_no_payer_it_cannot_place() -> None:
    """An office visit: no payer's policy judges it, so the payer need not be told (review23b H1)."""
    body = _body({"reference": GEHA_ORG, "display": "GEHA Benefit Plan"}, name="order-select-non-pump")
    response = _call(body)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    ("words", "answer"),
    [
        ({}, None),
        ({"display": "GEHA Benefit Plan"}, None),
        ({"display": "GEHA"}, GEHA_MEETS),
    ],
    ids=["reference-alone", "display-unknown", "display-known"],
)
@responses.activate
def test_a_payer_organization_the_server_fails_to_read_is_a_412_when_routing_needs_it(
    words: dict[str, Any], answer: str | None
) -> None:
    """With a fhirServer, `payerOrganizations` not sent and the payor's Organization's read failing
    (HTTP 500): the payer cannot be told unless the payor's own words route, so a 412 saying the read
    failed (before: 200 "unnamed payer: no intrathecal pump coverage rules here", and for a display
    unknown to routing "GEHA Benefit Plan: ..."). Everything else is prefetched."""
    body = with_fhir(_body({"reference": GEHA_ORG, **words}), "t", BASE)
    responses.get(f"{BASE}/{GEHA_ORG}", status=500)
    response = _call(body)
    if answer is not None:
        assert _first_summary(response) == answer
        return
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert issue["diagnostics"].startswith(
        f"payerOrganizations was not prefetched and could not be read from the EHR's FHIR server (HTTP 500 "
        f"reading {GEHA_ORG} (a Coverage's payer"
    ), issue


@pytest.mark.parametrize("status", [404, 410])
@responses.activate
def test_a_payer_organization_the_server_does_not_hold_leaves_the_payors_words(status: int) -> None:
    """The read answered 404 (410): the server holds no such Organization. The record lacks it, which is
    never a 412 (CRD §found-32): the payor's own words are all there is, and they name no payer here."""
    body = with_fhir(_body({"reference": GEHA_ORG, "display": "GEHA Benefit Plan"}), "t", BASE)
    responses.get(f"{BASE}/{GEHA_ORG}", status=status)
    assert _first_summary(_call(body)) == f"GEHA Benefit Plan: {NO_RULES} for 62362"


def test_a_payor_named_by_urn_uuid_is_the_entry_of_that_full_url() -> None:
    """A payor referenced as `urn:uuid:…`, the `fullUrl` of the Organization's entry in
    `payerOrganizations` (review23b L5): routed by that Organization (before: "unnamed payer: no
    intrathecal pump coverage rules here")."""
    uuid = "urn:uuid:1b8c2f7e-0000-4000-8000-000000000001"
    body = _body({"reference": uuid}, payers_sent=True)
    body["prefetch"]["payerOrganizations"]["entry"][0]["fullUrl"] = uuid
    assert _first_summary(_call(body)) == GEHA_MEETS


def _with_coverage_beside(body: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`body` with a second Coverage beside its GEHA one, its payor an unknown payer's Organization by
    reference, changed by `change` (its status or period)."""
    entries = body["prefetch"]["coverage"]["entry"]
    other = copy.deepcopy(entries[0])
    other["resource"]["id"] = "other-coverage"
    other.pop("fullUrl", None)
    other["resource"]["payor"] = [{"reference": "Organization/acme-org", "display": "Acme Health Plan"}]
    other["resource"].update(change)
    entries.append(other)
    return body


@pytest.mark.parametrize(
    "change",
    [
        {"period": {"start": "2015-01-01", "end": "2020-12-31"}},
        {"period": {"start": "2099-01-01"}},
        {"status": "cancelled"},
        {"status": "entered-in-error"},
    ],
    ids=["ended", "next-years-plan", "cancelled", "entered-in-error"],
)
def test_a_coverage_routing_never_routes_needs_no_organization(change: dict[str, Any]) -> None:
    """review24c HIGH: a GEHA member's second Coverage, ended, not yet begun, cancelled or entered in error,
    its payor an unknown payer by reference: no route is made for it, so its Organization is not needed;
    the GEHA order is answered (it was a 412 naming prefetch.payerOrganizations)."""
    body = _with_coverage_beside(copy.deepcopy(packaged_sample(MEETS)), change)
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    del body["prefetch"]["payerOrganizations"]
    assert _first_summary(_call(body)) == GEHA_MEETS


def test_a_coverage_routing_never_routes_is_not_read_for_its_payer() -> None:
    """The same with a FHIR server whose read of that payer fails: no 412 either."""
    body = _with_coverage_beside(
        with_fhir(copy.deepcopy(packaged_sample(MEETS)), "t", BASE), {"status": "cancelled"}
    )
    del body["prefetch"]["payerOrganizations"]
    geha = {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{BASE}/{GEHA_ORG}", json=geha)
        rsps.add(responses.GET, f"{BASE}/Organization/acme-org", status=500)
        assert _first_summary(_call(body)) == GEHA_MEETS


def test_the_412_quotes_a_payors_words_on_one_line_and_briefly() -> None:
    """review24c MEDIUM: the payor's display was echoed whole (200,000 characters, new lines and all)."""
    response = _call(_body({"reference": GEHA_ORG, "display": "Acme\nHealth " + "x" * 200_000}))
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    quoted = issue["diagnostics"].split("named '", 1)[1].split("'", 1)[0]
    assert quoted.startswith("Acme Health xxx") and len(quoted) == 80 and quoted.endswith("…"), quoted
    assert len(issue["diagnostics"]) < 600


@pytest.mark.parametrize("hook", ["order-select-62362-demo-meets", "order-sign-implant-demo-meets"])
def test_the_one_coverage_ended_still_needs_its_payers_organization(hook: str) -> None:
    """review24e: the patient's one Coverage, ended, routes as not active by its payer (GEHA's answer is
    `not-covered`, no-active-coverage; an unserved payer's none, or a 400 saying so), so its Organization
    is needed: a 412, where 4aaceac answered it as an unknown payer's (order-sign: 400 'its payer is not
    one this service answers for', for a GEHA member)."""
    body = _body({"reference": GEHA_ORG}, name=hook)
    for entry in body["prefetch"]["coverage"]["entry"]:
        entry["resource"]["period"] = {"start": "2015-01-01", "end": "2020-12-31"}
    assert_outcome(_call(body), 412, "prefetch.payerOrganizations", "payerOrganizations")


def test_only_the_routed_coverages_payers_are_read() -> None:
    """review24e: the payers of every Coverage were read, cut at 50 references: fifty cancelled Coverages
    named first left the one in force unread, its member answered as an unknown payer's."""
    body = with_fhir(copy.deepcopy(packaged_sample(MEETS)), "t", BASE)
    [geha] = body["prefetch"]["coverage"]["entry"]
    geha["resource"]["payor"] = [{"reference": GEHA_ORG}]
    cancelled = []
    for i in range(50):
        old = copy.deepcopy(geha)
        old.pop("fullUrl", None)
        old["resource"].update(
            id=f"old-{i}", status="cancelled", payor=[{"reference": f"Organization/old-{i}"}]
        )
        cancelled.append(old)
    body["prefetch"]["coverage"]["entry"] = [*cancelled, geha]
    del body["prefetch"]["payerOrganizations"]
    organization = {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{BASE}/{GEHA_ORG}", json=organization)
        old_reads = rsps.add(responses.GET, re.compile(f"{BASE}/Organization/old-.*"), status=404)
        assert _first_summary(_call(body)) == GEHA_MEETS
        assert old_reads.call_count == 0


@pytest.mark.parametrize(
    "accented",
    ["e\u0301", "e\u0301\u0323", "\u0915\u093f"],  # é as e + acute; e, acute, dot below; Devanagari कि
    ids=["acute", "two-marks", "spacing-mark"],
)
def test_the_412_cuts_a_payors_words_before_a_letter_not_between_it_and_its_marks(accented: str) -> None:
    """review24e LOW 5: the quote was cut at 79 code points, which could keep a letter and leave out the
    accent written after it (`e` of `é`): the 412 then named the payer with a letter it does not have."""
    display = "x" * 77 + " " + accented + " Health"
    response = _call(_body({"reference": GEHA_ORG, "display": display}))
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    quoted = issue["diagnostics"].split("named '", 1)[1].split("'", 1)[0]
    assert quoted == "x" * 77 + "…", quoted


@pytest.mark.parametrize(
    "joined",
    [
        "\U0001f1eb\U0001f1f7",  # a flag: two regional indicators
        "\U0001f44d\U0001f3fd",  # an emoji and its skin tone
        "\u2764\ufe0f",  # a heart shown as an emoji (a variation selector)
    ],
    ids=["flag", "skin-tone", "variation-selector"],
)
def test_the_412_cuts_a_payors_words_between_characters_a_reader_sees(joined: str) -> None:
    """review27a L5: the quote had its own cut, which kept a letter's marks but split a flag or an emoji and
    its skin tone (a lone letter box, a yellow thumb); it now cuts by the one rule the cards cut by
    (service/graphemes.py). (A zero-width joiner is no printable character: the quote shows it as a space
    before any cut.)"""
    display = "x" * 77 + " " + joined + " Health"
    response = _call(_body({"reference": GEHA_ORG, "display": display}))
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", "payerOrganizations")
    quoted = issue["diagnostics"].split("named '", 1)[1].split("'", 1)[0]
    assert quoted == "x" * 77 + "…", quoted


def test_a_payor_named_at_another_server_with_no_fhir_server_asks_for_its_organization_in_prefetch() -> None:
    """review24c LOW 2: no fhirServer, and the payor names its Organization by another server's URL, with
    words routing does not know: the 412 asked for a fhirServer, which is read for that Organization only
    if it is that very server (any other's leaves it unread, `_referenced`). It now names the server
    and asks for the Organization in prefetch.payerOrganizations, which answers the call."""
    payor = {"reference": f"https://payer.example/fhir/{GEHA_ORG}", "display": "GEHA Benefit Plan"}
    issue = assert_outcome(_call(_body(payor)), 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert (
        f"the request has no fhirServer to read {GEHA_ORG} (a Coverage's payer, named 'GEHA Benefit Plan', "
        "which this service's payer routing does not know) from, and its payor names it at "
        "https://payer.example/fhir, the only server it would be read from: send that Organization in "
        "prefetch.payerOrganizations"
    ) in issue["diagnostics"], issue
    assert _first_summary(_call(_body(payor, payers_sent=True))) == GEHA_MEETS


def test_the_412_names_a_payors_server_without_its_user_and_password() -> None:
    """review25a: the server a payor names its Organization at was quoted with the user:password its URL
    carried."""
    url = f"https://svc:pw-SECRET@payer.example/fhir/{GEHA_ORG}"
    payor = {"reference": url, "display": "GEHA Benefit Plan"}
    issue = assert_outcome(_call(_body(payor)), 412, "prefetch.payerOrganizations", "payerOrganizations")
    said = issue["diagnostics"]
    assert "its payor names it at https://[removed]@payer.example/fhir, the only server" in said
    assert "pw-SECRET" not in issue["diagnostics"]


def test_the_412_for_an_organization_named_at_a_server_offers_prefetch_alone() -> None:
    """review25a LOW 5 / harden25: the 412 for a payor naming its Organization by a server's URL, with no
    fhirServer, closed with "send it as prefetch or provide a reachable fhirServer with
    fhirAuthorization"; the EHR's own fhirServer is never read for that Organization (it is answered
    "no intrathecal pump coverage rules here"), so only prefetch is offered."""
    payor = {"reference": f"https://payer.example/fhir/{GEHA_ORG}", "display": "GEHA Benefit Plan"}
    issue = assert_outcome(_call(_body(payor)), 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert issue["diagnostics"].endswith(
        "send that Organization in prefetch.payerOrganizations); send it as prefetch"
    )
    assert "fhirServer with fhirAuthorization" not in issue["diagnostics"]


def test_the_412_still_offers_a_fhir_server_while_one_missing_organization_would_be_read_from_it() -> None:
    """Two payors, one naming its Organization by a server's URL, one by `Organization/id`: a fhirServer
    would be read for the second, so it is still offered."""
    body = _body({"reference": f"https://payer.example/fhir/{GEHA_ORG}", "display": "GEHA Benefit Plan"})
    for entry in body["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"].append({"reference": "Organization/other-plan", "display": "Other Plan"})
    issue = assert_outcome(_call(body), 412, "prefetch.payerOrganizations", "payerOrganizations")
    assert issue["diagnostics"].endswith(REMEDY)


def _paged(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `payerOrganizations` sent as page one of several holding no Organization."""
    body["prefetch"]["payerOrganizations"] = searchset([], next_url=f"{BASE}/Organization?page=2")
    return body


def test_the_412_for_a_payer_prefetch_sent_in_part_offers_prefetch_alone_for_one_named_at_a_server() -> None:
    """patient25: `payerOrganizations` sent as page one of several, without the Organization the payor
    names by a server's URL, and no fhirServer: the 412 still closed with "or provide a reachable
    fhirServer with fhirAuthorization", which would not be read for it (`_referenced`), where the same
    call with the key not sent asks for prefetch alone (9c8b8ec). Now it says where the Organization is
    named and asks for the whole Bundle alone."""
    payor = {"reference": f"https://payer.example/fhir/{GEHA_ORG}", "display": "GEHA Benefit Plan"}
    issue = assert_outcome(_call(_paged(_body(payor, payers_sent=True))), 412, "prefetch.payerOrganizations")
    assert issue["diagnostics"] == (
        "prefetch.payerOrganizations was sent as page one of several (its Bundle has a next link), without "
        f"{GEHA_ORG} (a Coverage's payer, named 'GEHA Benefit Plan', which this service's payer routing does "
        "not know; named at https://payer.example/fhir, the only server it would be read from), and the EHR "
        "gave no FHIR server to read the other pages from; send all of it in the one prefetch Bundle"
    ), issue


def test_the_412_for_a_payer_prefetch_sent_in_part_still_offers_a_fhir_server_that_would_be_read() -> None:
    """Two payors, one naming its Organization by a server's URL, one by `Organization/id`, neither on
    page one: a fhirServer would be read for the second, so it is still offered, as when not sent."""
    body = _body({"reference": f"https://payer.example/fhir/{GEHA_ORG}", "display": "GEHA Benefit Plan"})
    for entry in body["prefetch"]["coverage"]["entry"]:
        entry["resource"]["payor"].append({"reference": "Organization/other-plan", "display": "Other Plan"})
    issue = assert_outcome(_call(_paged(body)), 412, "prefetch.payerOrganizations")
    assert "the only server" not in issue["diagnostics"]
    assert issue["diagnostics"].endswith(
        "send all of it in the one prefetch Bundle, or provide a reachable fhirServer with fhirAuthorization"
    )
