"""FHIR batches (service/fhir/batch.py and the client and pool around them), against `responses`:
the batch sent, each entry judged as its own request's answer would be, and a server that refuses
batches asked query by query (the integration suite runs batches against a real server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import responses

from service.fhir.batch import BatchRefusals, EntryAnswer, batch_body, entry_answers
from service.fhir.client import TOO_LARGE, WRONG_RESOURCE, BatchRefused, FhirClient, FhirError, SessionPool
from service.fhir.outbound import NO_ANSWER
from service.fhir.queries import Query
from service.fhir.query_pool import QueryOutcome, QueryPool
from tests.builders import searchset

BASE = "https://ehr.example.org/fhir"
TOKEN = "batch-test-token"


def mine(resource_type: str, rid: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "id": rid, "subject": {"reference": "Patient/p1"}}


def entry(status: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"response": {"status": status}}
    if resource is not None:
        answer["resource"] = resource
    return answer


def batch_response(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch-response", "entry": list(entries)}


PATIENT = {"resourceType": "Patient", "id": "p1"}
QUERIES = [
    Query("Patient", "Patient", reference="Patient/p1"),
    Query("Condition", "Condition", params={"patient": "p1", "_sort": "-onset-date"}),
    Query("Procedure", "Procedure", params={"patient": "p1"}),
]
ANSWERS = (
    entry("200 OK", PATIENT),
    entry("200 OK", searchset([mine("Condition", "c1")])),
    entry("200", searchset([mine("Procedure", "pr1")])),
)


def client(
    pool: SessionPool | None = None, batch: bool = True, base: str = BASE, **limits: Any
) -> FhirClient:
    return FhirClient(base, TOKEN, 2.0, deadline=time.monotonic() + 5, sessions=pool, batch=batch, **limits)


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as workers:
        yield workers


def run(
    fhir: FhirClient, executor: ThreadPoolExecutor, queries: list[Query] = QUERIES, seconds: float = 5
) -> dict[str, Any]:
    outcomes = QueryPool(executor).run(fhir, queries, time.monotonic() + seconds)
    return {key: _ids(outcome) for key, outcome in outcomes.items()}


def _ids(outcome: QueryOutcome) -> list[str] | str:
    return outcome.error if outcome.error is not None else [r["id"] for r in outcome.resources]


def posted() -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in responses.calls if c.request.method == "POST"]


def test_the_batch_is_a_bundle_of_gets_in_order() -> None:
    body = json.loads(batch_body(["Patient/p1", "Condition?_count=500&patient=p1"]))
    assert body == {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/p1"}},
            {"request": {"method": "GET", "url": "Condition?_count=500&patient=p1"}},
        ],
    }


@pytest.mark.parametrize(
    "answer",
    [
        {"resourceType": "Bundle", "type": "transaction-response", "entry": [entry("200 OK")]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": []},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [entry("200 OK"), entry("200 OK")]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "OK"}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "²⁰⁰ OK"}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "①②③"}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": 200}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": PATIENT}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": "nope"},
        {"resourceType": "Bundle", "type": "batch-response", "entry": ["nope"]},
        {"resourceType": "OperationOutcome", "issue": []},
    ],
)
def test_an_answer_that_is_not_a_batch_response_of_as_many_entries_is_not_read(
    answer: dict[str, Any],
) -> None:
    assert entry_answers(answer, 1) is None


def test_entry_answers_keep_order_status_and_resource() -> None:
    answers = entry_answers(batch_response(entry("200 OK", PATIENT), entry("404 Not Found")), 2)
    assert answers == [EntryAnswer(200, PATIENT), EntryAnswer(404, None)]


@responses.activate
def test_a_round_of_searches_and_reads_is_one_post_with_the_token_and_answers_as_one_by_one(
    executor: ThreadPoolExecutor,
) -> None:
    responses.post(BASE, json=batch_response(*ANSWERS))
    assert run(client(), executor) == {"Patient": ["p1"], "Condition": ["c1"], "Procedure": ["pr1"]}
    [request] = [c.request for c in responses.calls]
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert [e["request"]["url"] for e in posted()[0]["entry"]] == [
        "Patient/p1",
        "Condition?_count=500&patient=p1&_sort=-onset-date",
        "Procedure?_count=500&patient=p1",
    ]


@responses.activate
def test_without_batch_each_query_is_its_own_get(executor: ThreadPoolExecutor) -> None:
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    responses.get(f"{BASE}/Condition", json=searchset([mine("Condition", "c1")]))
    responses.get(f"{BASE}/Procedure", json=searchset([mine("Procedure", "pr1")]))
    assert run(client(batch=False), executor) == {
        "Patient": ["p1"],
        "Condition": ["c1"],
        "Procedure": ["pr1"],
    }
    assert [c.request.method for c in responses.calls] == ["GET"] * 3


@responses.activate
def test_one_query_alone_is_not_batched(executor: ThreadPoolExecutor) -> None:
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    assert run(client(), executor, QUERIES[:1]) == {"Patient": ["p1"]}
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_each_entry_is_judged_as_its_own_answer(executor: ThreadPoolExecutor) -> None:
    responses.post(
        BASE,
        json=batch_response(
            entry("200 OK", {"resourceType": "Patient", "id": "someone-else"}),
            entry("500 Internal Server Error", {"resourceType": "OperationOutcome", "issue": []}),
            entry("200 OK"),
        ),
    )
    assert run(client(), executor) == {
        "Patient": WRONG_RESOURCE,
        "Condition": "HTTP 500",
        "Procedure": "response is not a FHIR resource",
    }


@responses.activate
def test_a_read_answered_404_in_the_batch_finds_nothing(executor: ThreadPoolExecutor) -> None:
    responses.post(BASE, json=batch_response(entry("404 Not Found"), *ANSWERS[1:]))
    assert run(client(), executor)["Patient"] == []


@responses.activate
def test_a_batched_search_refusing_sort_is_asked_again_without_it(executor: ThreadPoolExecutor) -> None:
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("400 Bad Request"), ANSWERS[2]))
    responses.get(
        f"{BASE}/Condition",
        json=searchset([mine("Condition", "c9")]),
        match=[responses.matchers.query_param_matcher({"patient": "p1", "_count": "500"})],
    )
    assert run(client(), executor)["Condition"] == ["c9"]


@responses.activate
def test_a_batched_search_follows_its_next_pages(executor: ThreadPoolExecutor) -> None:
    responses.post(
        BASE,
        json=batch_response(
            ANSWERS[0],
            entry("200 OK", searchset([mine("Condition", "c1")], next_url=f"{BASE}/Condition?page=2")),
            ANSWERS[2],
        ),
    )
    responses.get(f"{BASE}/Condition", json=searchset([mine("Condition", "c2")]))
    assert run(client(), executor)["Condition"] == ["c1", "c2"]
    [page_two] = [c.request for c in responses.calls if c.request.method == "GET"]
    assert page_two.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_a_next_link_to_another_server_in_a_batch_entry_is_refused(executor: ThreadPoolExecutor) -> None:
    elsewhere = "https://attacker.example.net/fhir/Condition?page=2"
    responses.post(
        BASE,
        json=batch_response(
            ANSWERS[0], entry("200 OK", searchset([mine("Condition", "c1")], next_url=elsewhere)), ANSWERS[2]
        ),
    )
    assert run(client(), executor)["Condition"] == "refused a link to another server"
    assert [c.request.method for c in responses.calls] == ["POST"]


def _one_by_one() -> None:
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    responses.get(f"{BASE}/Condition", json=searchset([mine("Condition", "c1")]))
    responses.get(f"{BASE}/Procedure", json=searchset([mine("Procedure", "pr1")]))


@pytest.mark.parametrize(
    "refusal",
    [
        {"status": 405, "json": {"resourceType": "OperationOutcome", "issue": []}},
        {"status": 400},
        {"status": 404},
        {"status": 200, "json": searchset([])},
        {"status": 200, "json": batch_response(*ANSWERS[:2])},
        {"status": 200, "body": "<html>no</html>"},
        {"status": 302, "headers": {"Location": "https://elsewhere.example.net/"}},
    ],
)
@responses.activate
def test_a_server_refusing_the_batch_is_asked_one_by_one_and_remembered(
    executor: ThreadPoolExecutor, refusal: dict[str, Any]
) -> None:
    responses.post(BASE, **refusal)
    _one_by_one()
    pool = SessionPool()
    assert run(client(pool), executor) == {"Patient": ["p1"], "Condition": ["c1"], "Procedure": ["pr1"]}
    assert sorted(c.request.method for c in responses.calls) == ["GET"] * 3 + ["POST"]
    assert not client(pool).batches  # remembered for the next call to this server
    assert client().batches  # in this pool only

    responses.calls.reset()
    assert run(client(pool), executor) == {"Patient": ["p1"], "Condition": ["c1"], "Procedure": ["pr1"]}
    assert [c.request.method for c in responses.calls] == ["GET"] * 3


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
@responses.activate
def test_a_batch_failed_for_the_token_or_for_load_fails_each_query_so_and_is_not_remembered(
    executor: ThreadPoolExecutor, status: int
) -> None:
    """The same token, or the same busy server, would fail each query alone: asking them all again
    would only add load (and a caller's bad token must not turn batches off for the others)."""
    responses.post(BASE, status=status)
    pool = SessionPool()
    assert run(client(pool), executor) == {
        key: f"HTTP {status}" for key in ("Patient", "Condition", "Procedure")
    }
    assert len(responses.calls) == 1
    assert client(pool).batches


@responses.activate
def test_a_server_that_does_not_answer_the_batch_fails_each_query_so(executor: ThreadPoolExecutor) -> None:
    assert run(client(), executor) == dict.fromkeys(("Patient", "Condition", "Procedure"), NO_ANSWER)
    assert len(responses.calls) == 1


@responses.activate
def test_refusals_are_remembered_by_the_normalised_base(executor: ThreadPoolExecutor) -> None:
    responses.post(BASE, status=405)
    _one_by_one()
    pool = SessionPool()
    run(client(pool, base="HTTPS://EHR.Example.org/fhir/"), executor)
    assert not client(pool).batches


@responses.activate
def test_a_batch_answer_larger_than_its_queries_could_be_is_asked_one_by_one_within_the_call_budget(
    executor: ThreadPoolExecutor,
) -> None:
    """Given up at the size its queries could answer one by one, counting nothing: each query then
    gets its own cap and the whole call budget (only the oversized search fails), not remembered."""
    big = searchset([mine("Condition", f"c{n}") for n in range(60)])
    assert len(json.dumps(batch_response(ANSWERS[0], entry("200 OK", big), ANSWERS[2]))) > 3 * 1000
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("200 OK", big), ANSWERS[2]))
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    responses.get(f"{BASE}/Condition", json=big)
    responses.get(f"{BASE}/Procedure", json=searchset([mine("Procedure", "pr1")]))
    pool = SessionPool()
    limits = {"max_response_bytes": 1000, "max_call_bytes": 4000}
    assert run(client(pool, **limits), executor) == {
        "Patient": ["p1"],
        "Condition": TOO_LARGE,
        "Procedure": ["pr1"],
    }
    assert client(pool).batches


@responses.activate
def test_an_entry_larger_than_its_own_answer_may_be_is_too_large_alone(executor: ThreadPoolExecutor) -> None:
    """As its own answer would be: asked again in smaller pages, and too large still."""
    bigger = searchset([mine("Condition", f"c{n}") for n in range(30)])
    assert len(json.dumps(bigger)) > 1500
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("200 OK", bigger), ANSWERS[2]))
    responses.get(f"{BASE}/Condition", json=bigger)
    assert run(client(max_response_bytes=1500), executor) == {
        "Patient": ["p1"],
        "Condition": TOO_LARGE,
        "Procedure": ["pr1"],
    }


@responses.activate
def test_at_the_deadline_the_entries_already_judged_count_while_another_pages_on() -> None:
    paged = searchset([mine("Condition", "c1")], next_url=f"{BASE}/Condition?page=2")
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("200 OK", paged), ANSWERS[2]))

    def slow_page(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.8)
        return 200, {}, json.dumps(searchset([mine("Condition", "c2")]))

    responses.add_callback(responses.GET, f"{BASE}/Condition", callback=slow_page)
    with ThreadPoolExecutor(2) as own:  # waited for here: the slow page ends within this test's mock
        outcomes = run(client(), own, seconds=0.4)
    assert outcomes == {"Patient": ["p1"], "Condition": NO_ANSWER, "Procedure": ["pr1"]}


@responses.activate
def test_a_server_that_does_not_answer_the_batch_is_not_remembered_as_refusing() -> None:
    pool = SessionPool()
    with pytest.raises(FhirError) as failed:
        client(pool).batch(["Patient/p1", "Condition?patient=p1"])  # nothing registered: no answer
    assert not isinstance(failed.value, BatchRefused)
    assert client(pool).batches


@responses.activate
def test_serially_without_an_executor_the_batch_is_used_too() -> None:
    responses.post(BASE, json=batch_response(*ANSWERS))
    outcomes = QueryPool(None).run(client(), QUERIES, time.monotonic() + 5)
    assert {k: _ids(o) for k, o in outcomes.items()} == {
        "Patient": ["p1"],
        "Condition": ["c1"],
        "Procedure": ["pr1"],
    }
    assert len(responses.calls) == 1


@responses.activate
def test_a_reference_that_names_no_resource_is_never_put_in_a_batch(executor: ThreadPoolExecutor) -> None:
    responses.post(BASE, json=batch_response(*ANSWERS[1:]))
    queries = [Query("read:bad", "Patient", reference="Patient/../../admin"), *QUERIES[1:]]
    assert run(client(), executor, queries) == {
        "read:bad": "not a reference to a resource (Type/id)",
        "Condition": ["c1"],
        "Procedure": ["pr1"],
    }
    assert [e["request"]["url"].split("?")[0] for e in posted()[0]["entry"]] == ["Condition", "Procedure"]


def test_refusals_expire_and_are_bounded() -> None:
    refusals = BatchRefusals(seconds=60, limit=2)
    for server in ("https://a", "https://b", "https://c"):
        refusals.remember(server)
    assert [refusals.refused(s) for s in ("https://a", "https://b", "https://c")] == [False, True, True]
    passing = BatchRefusals(seconds=0)
    passing.remember("https://a")
    assert not passing.refused("https://a")


@responses.activate
def test_a_batch_nested_too_deep_for_one_entry_is_asked_one_by_one_and_only_that_entry_fails(
    executor: ThreadPoolExecutor,
) -> None:
    deep = mine("Condition", "c1")
    for _ in range(99):
        deep = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "x": [deep]}
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("200 OK", searchset([deep])), ANSWERS[2]))
    responses.get(f"{BASE}/Patient/p1", json=PATIENT)
    responses.get(f"{BASE}/Condition", json=searchset([deep]))
    responses.get(f"{BASE}/Procedure", json=searchset([mine("Procedure", "pr1")]))
    pool = SessionPool()
    assert run(client(pool), executor) == {
        "Patient": ["p1"],
        "Condition": "the FHIR server's answer was nested too deeply",
        "Procedure": ["pr1"],
    }
    assert client(pool).batches  # a chart's content says nothing of batches


@responses.activate
def test_a_batched_search_too_large_for_its_own_answer_is_asked_again_in_smaller_pages(
    executor: ThreadPoolExecutor,
) -> None:
    bigger = searchset([mine("Condition", f"c{n}") for n in range(30)])
    responses.post(BASE, json=batch_response(ANSWERS[0], entry("200 OK", bigger), ANSWERS[2]))
    responses.get(
        f"{BASE}/Condition",
        json=searchset([mine("Condition", "c1")]),
        match=[responses.matchers.query_param_matcher({"_count": "100"}, strict_match=False)],
    )
    assert run(client(max_response_bytes=1500), executor) == {
        "Patient": ["p1"],
        "Condition": ["c1"],
        "Procedure": ["pr1"],
    }
