"""The FHIR client's HTTP behaviour, against `responses` (the integration suite uses a real server)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from requests.utils import requote_uri

from service import strict_json
from service.fhir import client as fhir_client
from service.fhir.client import (
    MAX_PAGES,
    MIN_PAGE_SIZE,
    PAGE_SIZE,
    TOO_DEEP,
    BatchRefused,
    FhirClient,
    FhirError,
    _executed,
    _quoted,
)
from service.fhir.server_share import NOT_ASKED
from tests.builders import searchset
from tests.fuzz_support import seeded

BASE = "https://ehr.example.org/fhir"
TOKEN = "secret-token-123"


def cond(n: int) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"c{n}"}


@responses.activate
def test_search_follows_next_links_and_sends_token_on_every_page() -> None:
    responses.get(
        f"{BASE}/Condition",
        json=searchset([cond(1)], f"{BASE}/Condition?page=2"),
        match=[responses.matchers.query_param_matcher({"patient": "p1", "_count": "500"})],
    )
    responses.get(
        f"{BASE}/Condition",
        json=searchset([cond(2), cond(3)]),
        match=[responses.matchers.query_param_matcher({"page": "2"})],
    )
    found = FhirClient(BASE, TOKEN, 2.0).search("Condition", {"patient": "p1"})
    assert [r["id"] for r in found.resources] == ["c1", "c2", "c3"]
    assert found.pages == 2
    assert len(responses.calls) == 2
    for call in responses.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["Accept"] == "application/fhir+json"


@responses.activate
def test_search_skips_other_resource_types_in_the_bundle() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    responses.get(f"{BASE}/Condition", json=searchset([cond(1), outcome]))
    result = FhirClient(BASE, None, 2.0).search("Condition", {})
    assert [r["id"] for r in result.resources] == ["c1"]
    assert result.included == []


@responses.activate
def test_no_authorization_header_without_token() -> None:
    responses.get(f"{BASE}/Condition", json=searchset([]))
    FhirClient(BASE, None, 2.0).search("Condition", {})
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_next_link_to_another_origin_is_refused_and_token_not_sent() -> None:
    responses.get(
        f"{BASE}/Condition", json=searchset([cond(1)], "https://evil.example.com/fhir/Condition?page=2")
    )
    with pytest.raises(FhirError, match="another server"):
        FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_is_not_followed() -> None:
    responses.get(f"{BASE}/Condition", status=302, headers={"Location": "https://evil.example.com/x"})
    with pytest.raises(FhirError, match="redirect"):
        FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert len(responses.calls) == 1


@responses.activate
def test_endless_next_loop_stops_at_the_page_cap() -> None:
    """Pages of one entry (smaller than `_count` asked) are the size the server chose: read to what
    `MAX_PAGES` pages of `PAGE_SIZE` hold, a page under MIN_PAGE_SIZE counted as that many, as an EHR's
    prefetched pages are (the same server could send them so)."""
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)], f"{BASE}/Condition?again=1"))
    with pytest.raises(FhirError, match="pages"):
        FhirClient(BASE, None, 2.0).search("Condition", {})
    assert len(responses.calls) == -(-MAX_PAGES * PAGE_SIZE // MIN_PAGE_SIZE)


@pytest.mark.parametrize("status", [401, 403, 404, 410, 429, 500, 503])
@responses.activate
def test_error_statuses_become_fhir_errors(status: int) -> None:
    responses.get(f"{BASE}/Condition", status=status, json={"resourceType": "OperationOutcome"})
    with pytest.raises(FhirError) as caught:
        FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert caught.value.reason == f"HTTP {status}"
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"resourceType": "Bundle", "entry": [', "not JSON"),
        (b'{"hello": "world"}', "not a FHIR resource"),
        (b"[1, 2]", "not a FHIR resource"),
    ],
)
@responses.activate
def test_garbage_bodies(body: bytes, reason: str) -> None:
    responses.get(f"{BASE}/Condition", body=body, content_type="application/json")
    with pytest.raises(FhirError, match=reason):
        FhirClient(BASE, None, 2.0).search("Condition", {})


@responses.activate
def test_search_returning_a_non_bundle_is_an_error() -> None:
    responses.get(f"{BASE}/Condition", json={"resourceType": "Patient", "id": "x"})
    with pytest.raises(FhirError, match="not a Bundle"):
        FhirClient(BASE, None, 2.0).search("Condition", {})


@responses.activate
def test_connection_failure_and_timeout_read_the_same() -> None:
    responses.get(f"{BASE}/Condition", body=requests.ConnectionError("refused"))
    responses.get(f"{BASE}/Observation", body=requests.ReadTimeout("slow"))
    responses.get(f"{BASE}/Procedure", body=requests.ConnectTimeout("no route"))
    client = FhirClient(BASE, None, 2.0)
    reasons = set()
    for resource_type in ("Condition", "Observation", "Procedure"):
        with pytest.raises(FhirError) as caught:
            client.search(resource_type, {})
        reasons.add(caught.value.reason)
    assert reasons == {"the FHIR server did not answer"}


@responses.activate
def test_spent_deadline_makes_no_call() -> None:
    responses.get(f"{BASE}/Condition", json=searchset([]))
    client = FhirClient(BASE, None, 2.0, deadline=time.monotonic() - 1)
    with pytest.raises(FhirError, match="time budget"):
        client.search("Condition", {})
    assert len(responses.calls) == 0


@responses.activate
def test_read_returns_the_resource() -> None:
    responses.get(f"{BASE}/Device/d1", json={"resourceType": "Device", "id": "d1"})
    assert FhirClient(BASE, TOKEN, 2.0).read("Device/d1")["id"] == "d1"
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_repr_never_shows_the_token() -> None:
    assert TOKEN not in repr(FhirClient(BASE, TOKEN, 2.0))


@responses.activate
def test_search_whose_self_link_dropped_the_patient_says_so() -> None:
    everyone = searchset([cond(1)])
    everyone["link"] = [{"relation": "self", "url": f"{BASE}/QuestionnaireResponse?_count=200"}]
    responses.get(f"{BASE}/QuestionnaireResponse", json=everyone)
    result = FhirClient(BASE, None, 2.0).search("QuestionnaireResponse", {"patient": "p1"})
    assert result.scope_ignored == ("patient",)


@responses.activate
def test_self_link_keeping_the_patient_is_accepted() -> None:
    scoped = searchset([cond(1)])
    scoped["link"] = [{"relation": "self", "url": f"{BASE}/Condition?patient=p1&_count=200"}]
    responses.get(f"{BASE}/Condition", json=scoped)
    result = FhirClient(BASE, None, 2.0).search("Condition", {"patient": "p1"})
    assert (len(result.resources), result.scope_ignored) == (1, ())


@responses.activate
def test_429_is_retried_once_after_a_short_retry_after() -> None:
    responses.get(f"{BASE}/Condition", status=429, headers={"Retry-After": "0.1"})
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)]))
    assert len(FhirClient(BASE, TOKEN, 2.0).search("Condition", {}).resources) == 1
    assert len(responses.calls) == 2
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in responses.calls)


@responses.activate
def test_429_with_a_long_retry_after_is_not_waited_for() -> None:
    responses.get(f"{BASE}/Condition", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FhirError, match="HTTP 429"):
        FhirClient(BASE, None, 2.0).search("Condition", {})
    assert len(responses.calls) == 1


@responses.activate
def test_a_server_giving_more_results_than_pages_of_page_size_hold_fails_the_search() -> None:
    """What `max_pages` pages of `page_size` hold is the most a search is read to, however it is paged:
    a server ignoring `_count` with one huge page costs the call no more than a paging one."""
    responses.get(f"{BASE}/Condition", json=searchset([cond(n) for n in range(16)]))
    with pytest.raises(FhirError, match="more than 15 results"):
        FhirClient(BASE, None, 2.0, page_size=5, max_pages=3).search("Condition", {})
    fifteen_with_includes = searchset([cond(n) for n in range(15)])
    fifteen_with_includes["entry"] += [
        {"resource": {"resourceType": "Organization", "id": f"o{n}"}} for n in range(15)
    ]
    responses.replace(responses.GET, f"{BASE}/Condition", json=fifteen_with_includes)
    found = FhirClient(BASE, None, 2.0, page_size=5, max_pages=3).search("Condition", {})
    assert (len(found.resources), len(found.included)) == (15, 15)  # counted apart from the matches
    fifteen_with_includes["entry"].append({"resource": {"resourceType": "Organization", "id": "o-more"}})
    responses.replace(responses.GET, f"{BASE}/Condition", json=fifteen_with_includes)
    with pytest.raises(FhirError, match="more than 15 results"):
        FhirClient(BASE, None, 2.0, page_size=5, max_pages=3).search("Condition", {})


@pytest.mark.parametrize("status", [404, 410])
@responses.activate
def test_read_of_a_missing_resource_is_none(status: int) -> None:
    responses.get(f"{BASE}/Patient/gone", status=status)
    assert FhirClient(BASE, None, 2.0).read("Patient/gone") is None


def ehr_pages(count: int, size: int) -> dict[str, Any]:
    """An EHR's prefetched search of `count` Conditions in pages of `size` (its page one, the others
    registered with `responses`), as a server paging at its own default page size gives it."""
    pages = [[cond(n) for n in range(start, min(start + size, count))] for start in range(0, count, size)]
    for number, resources in enumerate(pages[1:], start=2):
        following = f"{BASE}/Condition?page={number + 1}" if number < len(pages) else None
        responses.get(
            f"{BASE}/Condition",
            json=searchset(resources, following),
            match=[responses.matchers.query_param_matcher({"page": str(number)})],
        )
    return searchset(pages[0], f"{BASE}/Condition?page=2")


@responses.activate
def test_a_search_in_pages_smaller_than_asked_is_read_to_what_the_page_cap_holds() -> None:
    """Pages smaller than `page_size` are the size the server chose (10 here, as some servers'
    default): 200 Conditions on 20 pages are all read, where counting those pages against `max_pages`
    (10) made the search fail "more than 10 pages" (inferno21: Synthea charts of 160-200 Conditions or
    Procedures at 10 a page)."""
    page_one = ehr_pages(200, 10)
    found = FhirClient(BASE, TOKEN, 2.0).collect(page_one, "Condition")
    assert len(found.resources) == 200
    assert found.pages == 20


@pytest.mark.parametrize(
    ("count", "size", "read"),
    [(100, 20, True), (120, 20, False), (10, 2, True), (12, 2, False)],
)
@responses.activate
def test_a_search_in_small_pages_is_read_to_what_the_page_cap_holds_at_most(
    count: int, size: int, read: bool
) -> None:
    """Small pages buy no more than `max_pages` pages of `page_size` hold: 2 pages of 50 here, so
    5 pages of 20, and a page under MIN_PAGE_SIZE (20) counts as 20: 5 pages of 2 are read, not 6."""
    client = FhirClient(BASE, TOKEN, 2.0, page_size=50, max_pages=2)
    page_one = ehr_pages(count, size)
    if read:
        assert len(client.collect(page_one, "Condition").resources) == count
    else:
        with pytest.raises(FhirError, match="more than 5 pages"):
            client.collect(page_one, "Condition")
        assert len(responses.calls) == 4


@responses.activate
def test_a_search_the_server_pages_smaller_than_asked_is_read_whole() -> None:
    """A server that clamps `_count` (10 a page, 500 asked) gives a search of ours pages the size it
    chose: 200 Conditions on 20 pages are all read, where counting
    them against `max_pages` (10) failed "more than 10 pages" (review21b M1: an EHR paging at 10 whose
    page one the service searches again instead, a41d967, lost a chart read whole before)."""
    page_one = ehr_pages(200, 10)
    responses.get(
        f"{BASE}/Condition", json=page_one, match=[responses.matchers.query_param_matcher({"_count": "500"})]
    )
    found = FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert len(found.resources) == 200
    assert found.pages == 20


@responses.activate
def test_a_search_in_small_pages_is_read_to_the_results_cap_at_most() -> None:
    client = FhirClient(BASE, TOKEN, 2.0, page_size=50, max_pages=2)
    responses.get(f"{BASE}/Condition", json=searchset([cond(n) for n in range(101)]))
    with pytest.raises(FhirError, match="more than 100 results"):
        client.collect(searchset([cond(0)], f"{BASE}/Condition?page=2"), "Condition")


@responses.activate
def test_page_size_and_page_cap_are_configurable() -> None:
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)], f"{BASE}/Condition?again=1"))
    with pytest.raises(FhirError, match="more than 3 pages"):
        FhirClient(BASE, None, 2.0, page_size=5, max_pages=3).search("Condition", {})
    assert len(responses.calls) == 3
    assert "_count=5" in responses.calls[0].request.url


@responses.activate
def test_an_answer_larger_than_the_cap_is_a_failed_query() -> None:
    big = searchset([{"resourceType": "Condition", "id": "c", "note": [{"text": "x" * 5000}]}])
    responses.get(f"{BASE}/Condition", json=big)
    with pytest.raises(FhirError, match="too large"):
        FhirClient(BASE, None, 2.0, max_response_bytes=4000).search("Condition", {})


@responses.activate
def test_an_answer_within_the_cap_is_read() -> None:
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)]))
    assert len(FhirClient(BASE, None, 2.0, max_response_bytes=4000).search("Condition", {}).resources) == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(searchset([{"resourceType": "Device", "id": "d1"}]), id="a-bundle"),
        pytest.param({"resourceType": "Patient", "id": "d1"}, id="another-type"),
        pytest.param({"resourceType": "Device", "id": "d2"}, id="another-id"),
        pytest.param({"resourceType": "Device"}, id="no-id"),
    ],
)
@responses.activate
def test_a_read_answered_with_another_resource_fails(answer: dict[str, Any]) -> None:
    responses.get(f"{BASE}/Device/d1", json=answer)
    with pytest.raises(FhirError, match="another resource"):
        FhirClient(BASE, TOKEN, 2.0).read("Device/d1")


@pytest.mark.parametrize("reference", ["Device/..", "Device/.", "../Device/d1", "Device/d1?x=1", "Device"])
@responses.activate
def test_a_read_of_something_that_is_not_type_slash_id_sends_nothing(reference: str) -> None:
    with pytest.raises(FhirError, match="Type/id"):
        FhirClient(BASE, TOKEN, 2.0).read(reference)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    "next_url",
    [
        "https://ehr.example.org:8443/fhir/Condition?page=2",
        "http://ehr.example.org/fhir/Condition?page=2",
        "https://user@ehr.example.org/fhir/Condition?page=2",
        "ftp://ehr.example.org/fhir/Condition?page=2",
    ],
)
@responses.activate
def test_next_links_off_the_origin_are_refused(next_url: str) -> None:
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)], next_url))
    with pytest.raises(FhirError, match="another server"):
        FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert len(responses.calls) == 1


OFF_THE_BASE = [
    "https://ehr.example.org/other-tenant/Condition?page=2",
    "https://ehr.example.org/Condition?page=2",
    "https://ehr.example.org/fhir-admin/Condition?page=2",
    "https://ehr.example.org/fhir/../other-tenant/Condition?page=2",
    "https://ehr.example.org/fhir/%2e%2e/other-tenant/Condition?page=2",
    "https://ehr.example.org/fhir/x%2F..%2F..%2Fother-tenant/Condition?page=2",
]
UNDER_THE_BASE = [
    "https://ehr.example.org/fhir?_getpages=abc&_offset=1",
    "https://EHR.example.org:443/fhir/Condition?page=2",
    "https://ehr.example.org/fhir/Condition/_search?page=2",
]


@pytest.mark.parametrize(
    ("next_url", "followed"), [(url, False) for url in OFF_THE_BASE] + [(url, True) for url in UNDER_THE_BASE]
)
@responses.activate
def test_next_links_are_followed_only_under_the_base(next_url: str, followed: bool) -> None:
    """One host may serve several FHIR bases (a tenant each): the token goes only under the one named."""
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)], next_url))
    responses.get(next_url, json=searchset([cond(2)]))
    if not followed:
        with pytest.raises(FhirError, match="another server"):
            FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
        assert len(responses.calls) == 1
        return
    found = FhirClient(BASE, TOKEN, 2.0).search("Condition", {})
    assert [r["id"] for r in found.resources] == ["c1", "c2"]


@responses.activate
def test_the_answers_of_one_call_together_are_bounded() -> None:
    padding = [cond(n) | {"note": [{"text": "x" * 1000}]} for n in range(900)]  # about 1 MB a page
    for number in range(1, 11):
        responses.get(
            f"{BASE}/Condition",
            json=searchset(padding, f"{BASE}/Condition?page={number + 1}"),
            match=[responses.matchers.query_param_matcher({"page": str(number)}, strict_match=False)]
            if number > 1
            else [responses.matchers.query_param_matcher({"patient": "p1"}, strict_match=False)],
        )
    client = FhirClient(BASE, TOKEN, 2.0, max_call_bytes=3 * 1024 * 1024)
    with pytest.raises(FhirError) as refused:
        client.search("Condition", {"patient": "p1"})
    assert refused.value.reason == "the FHIR server's answers to this call were too large together"
    assert len(responses.calls) <= 4  # every page is under the per-answer cap: the call's cap stops it


@seeded(200)
@given(
    st.lists(
        st.sampled_from(["_sort", "patient", "p%61tient", "a+b", "code", "=", "&", "", "x=", "%zz", "é"]),
        max_size=8,
    )
)
def test_the_executed_parameters_are_read_from_the_self_link_as_parse_qs_reads_them(parts: list[str]) -> None:
    query = "&".join(parts) + "=v"
    bundle = {"link": [{"relation": "self", "url": f"{BASE}/Condition?{query}"}]}
    assert _executed(bundle) == frozenset(parse_qs(query))


@seeded(200)
@given(
    st.dictionaries(
        st.sampled_from(["patient", "code", "date", "_sort", "_include", "a b", "é"]),
        st.one_of(st.text(max_size=12), st.integers(0, 999), st.lists(st.text(max_size=8), max_size=3)),
        max_size=4,
    )
)
def test_a_search_path_is_the_query_urlencode_and_requests_would_write(params: dict[str, Any]) -> None:
    client = FhirClient(BASE, None, 2.0)
    expected = requote_uri(f"Condition?{urlencode({'_count': client.page_size, **params}, doseq=True)}")
    assert client.search_path("Condition", params) == expected


@seeded(300)
@given(st.one_of(st.text(st.characters(max_codepoint=127)), st.text()))
def test_a_query_value_is_quoted_as_quote_plus_quotes_it(text: str) -> None:
    assert _quoted(text) == quote_plus(text)


def nested(resource: dict[str, Any], depth: int) -> dict[str, Any]:
    """The resource with an element nested `depth` levels below it (lists in objects)."""
    deep: Any = []
    for _ in range(depth - 2):
        deep = [deep]
    return {**resource, "_deep": deep}


@responses.activate
def test_an_answer_nested_deeper_than_any_fhir_resource_is_refused_and_a_deep_one_is_taken() -> None:
    responses.get(
        f"{BASE}/ServiceRequest/sr1", json=nested({"resourceType": "ServiceRequest", "id": "sr1"}, 100)
    )
    responses.get(
        f"{BASE}/ServiceRequest/sr2", json=nested({"resourceType": "ServiceRequest", "id": "sr2"}, 101)
    )
    client = FhirClient(BASE, TOKEN, 2.0)
    assert client.read("ServiceRequest/sr1") is not None
    with pytest.raises(FhirError, match="nested too deeply"):
        client.read("ServiceRequest/sr2")


def deep_batch(depth: int) -> dict[str, Any]:
    """A batch-response whose one entry (a read's) is a resource with an element `depth` levels below it."""
    resource = nested({"resourceType": "Condition", "id": "c1"}, depth)
    return {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"response": {"status": "200 OK"}, "resource": resource}],
    }


@responses.activate
def test_an_answers_depth_is_told_without_a_pass_over_its_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The depth of an answer (a read, a search, a batch) is told by writing the decoded answer with
    orjson (`strict_json.document_within`): the pass over its brackets outside the strings cost a
    quarter of a chart-sized search's client CPU, twice the writing."""

    def no_pass(text: bytes, max_depth: int) -> bool:
        raise AssertionError("the brackets were passed over")

    monkeypatch.setattr(strict_json, "nested_within", no_pass)
    monkeypatch.setattr(fhir_client, "nested_within", no_pass, raising=False)
    responses.get(
        f"{BASE}/ServiceRequest/sr1", json=nested({"resourceType": "ServiceRequest", "id": "sr1"}, 100)
    )
    condition = json.dumps(searchset([{**cond(1), "onsetAge": {"value": 0}}])).replace(
        '"value": 0', '"value": 2.50'
    )
    responses.get(f"{BASE}/Condition", body=condition, content_type="application/fhir+json")
    responses.post(BASE, json=deep_batch(100))
    client = FhirClient(BASE, TOKEN, 2.0)
    assert client.read("ServiceRequest/sr1") is not None
    assert client.search("Condition", {}).resources[0]["onsetAge"]["value"].text == "2.50"
    assert client.batch(["Condition/c1"])[0].status == 200


@pytest.mark.parametrize("orjson_nesting", [254, None])
@pytest.mark.parametrize("held", [{}, {"big": 2**64}, {"big": -(2**63) - 1}])
@responses.activate
def test_an_answer_is_refused_exactly_past_the_depth_bound_however_its_depth_is_told(
    orjson_nesting: int | None, held: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 levels below a read or a search (103 in a batch: Bundle.entry[].resource) are taken and 101
    refused, where orjson's writing tells the depth and where it cannot (an integer past 64 bits, which
    it does not write; an orjson that stops elsewhere): then the pass over the brackets tells it."""
    monkeypatch.setattr(strict_json, "ORJSON_NESTING", orjson_nesting)
    for depth, taken in ((99, True), (100, True), (101, False)):
        responses.get(
            f"{BASE}/ServiceRequest/sr{depth}",
            json=nested({"resourceType": "ServiceRequest", "id": f"sr{depth}", **held}, depth),
        )
        responses.post(BASE, json=deep_batch(depth))
        client = FhirClient(BASE, TOKEN, 2.0)
        if taken:
            read = client.read(f"ServiceRequest/sr{depth}")
            assert read is not None and read.get("big") == held.get("big")
            assert client.batch(["Condition/c1"])[0].resource is not None
        else:
            with pytest.raises(FhirError, match="nested too deeply"):
                client.read(f"ServiceRequest/sr{depth}")
            with pytest.raises(BatchRefused) as refused:
                client.batch(["Condition/c1"])
            assert refused.value.reason == TOO_DEEP


@responses.activate
def test_a_first_page_too_large_at_the_page_size_is_asked_again_in_pages_a_fifth_the_size() -> None:
    large = searchset([{**cond(n), "note": [{"text": "x" * 200}]} for n in range(8)])
    small = searchset([cond(1)], f"{BASE}/Condition?page=2&_count=20")
    responses.get(
        f"{BASE}/Condition",
        json=large,
        match=[responses.matchers.query_param_matcher({"patient": "p1", "_count": "100"})],
    )
    responses.get(
        f"{BASE}/Condition",
        json=small,
        match=[responses.matchers.query_param_matcher({"patient": "p1", "_count": "20"})],
    )
    responses.get(
        f"{BASE}/Condition",
        json=searchset([cond(2)]),
        match=[responses.matchers.query_param_matcher({"page": "2", "_count": "20"})],
    )
    client = FhirClient(BASE, TOKEN, 2.0, page_size=100, max_response_bytes=1000)
    assert [r["id"] for r in client.search("Condition", {"patient": "p1"}).resources] == ["c1", "c2"]
    assert len(responses.calls) == 3


@responses.activate
def test_a_search_that_asked_its_own_page_size_is_not_asked_again_when_too_large() -> None:
    large = searchset([{**cond(n), "note": [{"text": "x" * 200}]} for n in range(8)])
    responses.get(f"{BASE}/Condition", json=large)
    client = FhirClient(BASE, TOKEN, 2.0, page_size=100, max_response_bytes=1000)
    with pytest.raises(FhirError, match="too large"):
        client.search("Condition", {"patient": "p1", "_count": 50})
    with pytest.raises(FhirError, match="too large"):
        FhirClient(BASE, TOKEN, 2.0, page_size=20, max_response_bytes=1000).search("Condition", {})
    assert len(responses.calls) == 2


@responses.activate
def test_a_client_held_back_asks_nothing() -> None:
    responses.get(f"{BASE}/Condition", json=searchset([cond(1)]))
    client = FhirClient(BASE, TOKEN, 2.0)
    admissions: list[float | None] = []
    client.ask_through(lambda deadline: admissions.append(deadline) or NOT_ASKED)
    for _ in range(2):
        with pytest.raises(FhirError, match=NOT_ASKED):
            client.search("Condition", {})
    assert len(responses.calls) == 0 and client.refused == 2
    assert len(admissions) == 1  # settled once, at the first request
