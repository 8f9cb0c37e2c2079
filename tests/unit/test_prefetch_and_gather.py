"""Prefetch templates and prefetched data (CDS Hooks 2.0 §Prefetch), and the query plan around them."""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from service.app import create_app
from service.catalog import Catalog
from service.demo.runner import request_files
from service.fhir.cache import CacheScope, MemoryStore, PatientDataCache
from service.fhir.client import FhirClient
from service.fhir.gather import DataGatherer
from service.fhir.prefetch import PrefetchState, interpret, render
from service.fhir.queries import (
    TRIAL_ORDER_KEYS,
    clinical_queries,
    policy_observation_codes,
    policy_pain_codes,
    prefetchable_queries,
    query_from_url,
    searches_for_patient,
)
from service.hooks.models import ID_PATTERN, HookRequest, parse_hook_request
from service.registry import STANDARD_PREFETCH, service_for_hook
from tests.builders import searchset
from tests.cache_support import sign_after
from tests.demo_support import packaged_sample
from tests.fuzz_support import seeded
from tests.prefetch_support import without_uuids
from tests.scaling_support import pain_score
from tests.support import (
    RecordingFactory,
    RecordingFhirClient,
    as_queried,
    assert_outcome,
    open_settings,
    post_json,
    with_fhir,
)

TODAY = datetime.now(UTC).date()
BASE = "https://ehr.example.org/fhir"
TOKEN = "prefetch-test-token"


def sample(name: str = "order-select-62362-demo-meets") -> dict[str, Any]:
    path = next(p for p in request_files() if p.stem == name)
    return as_queried(json.loads(path.read_text(encoding="utf-8")))


def hook_request(body: dict[str, Any], with_server: bool = True) -> HookRequest:
    if with_server:
        with_fhir(body, TOKEN, BASE)
    return parse_hook_request(body, service_for_hook(body["hook"]))


ORG_URL = f"{BASE}/Organization/demo-meets-org-geha"


def stub_payer() -> None:
    responses.get(ORG_URL, json={"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"})


def stub_clinical(patient: str = "demo-meets") -> None:
    stub_payer()
    for query in clinical_queries(patient, []):
        responses.get(f"{BASE}/{query.resource_type}", json=searchset([]))


def gather(request: HookRequest, *, clinical: bool = True, executor: Any = None) -> Any:
    client = FhirClient(BASE, TOKEN, 2.0, deadline=time.monotonic() + 5)
    return DataGatherer(executor, []).gather(
        request, STANDARD_PREFETCH, client, time.monotonic() + 5, today=TODAY, clinical=clinical
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/demo-meets"),
        ("Coverage?patient={{context.patientId}}&status=active", "Coverage?patient=demo-meets&status=active"),
        ("Practitioner/{{userPractitionerId}}", "Practitioner/demo-practitioner"),
        ("PractitionerRole/{{userPractitionerRoleId}}", None),
        ("Encounter/{{context.encounterId}}", None),
        (
            "ServiceRequest?_id={{context.draftOrders.ServiceRequest.id}}",
            "ServiceRequest?_id=demo-meets-select-sr-62362",
        ),
        (
            "MedicationRequest?_id={{ context.draftOrders.MedicationRequest.id }}",
            "MedicationRequest?_id=demo-meets-select-mr-infusate",
        ),
        ("DeviceRequest?_id={{context.draftOrders.DeviceRequest.id}}", None),
    ],
)
def test_render(template: str, expected: str | None) -> None:
    assert render(template, hook_request(sample(), with_server=False)) == expected


def test_render_lists_every_draft_of_a_type() -> None:
    request = hook_request(sample("order-sign-implant-demo-meets"), with_server=False)
    assert render("ServiceRequest?_id={{context.draftOrders.ServiceRequest.id}}", request) == (
        "ServiceRequest?_id=demo-meets-sign-sr-62362,demo-meets-sign-sr-62350"
    )


def test_query_from_url() -> None:
    assert query_from_url("patient", "Patient/p1").reference == "Patient/p1"
    search = query_from_url("coverage", "Coverage?patient=p1&status=active")
    assert search.resource_type == "Coverage"
    assert dict(search.params or {}) == {"patient": "p1", "status": "active"}


@pytest.mark.parametrize(
    ("prefetch", "state"),
    [
        ({}, PrefetchState.ABSENT),
        ({"coverage": None}, PrefetchState.EMPTY),
        ({"coverage": {"resourceType": "OperationOutcome", "issue": []}}, PrefetchState.FAILED),
        ({"coverage": "oops"}, PrefetchState.FAILED),
        ({"coverage": searchset([{"resourceType": "Coverage", "id": "c"}])}, PrefetchState.PROVIDED),
    ],
)
def test_interpret(prefetch: dict[str, Any], state: PrefetchState) -> None:
    assert interpret(prefetch, "coverage").state == state


def test_a_prefetched_bundle_gives_each_entry_holding_a_resource_as_it_was_sent() -> None:
    """A Bundle's entries are its resources where each is an object holding a `resource` object with a
    `resourceType` in text; an entry of any other shape is no resource (perf32 wrote the test out)."""
    one, two = {"resourceType": "Condition", "id": "c1"}, {"resourceType": "Condition", "id": "c2"}
    entries: list[Any] = [
        {"resource": one},
        "an entry written as text",
        {"fullUrl": "urn:uuid:1"},
        {"resource": None},
        {"resource": ["Condition"]},
        {"resource": {"id": "no type"}},
        {"resource": {"resourceType": 7, "id": "a number"}},
        {"resource": two, "search": {"mode": "match"}},
    ]
    read = interpret({"conditions": {"resourceType": "Bundle", "entry": entries}}, "conditions")
    assert read.state is PrefetchState.PROVIDED
    assert [id(r) for r in read.resources] == [id(one), id(two)]


@responses.activate
def test_prefetched_keys_are_not_queried() -> None:
    stub_clinical()
    data = gather(hook_request(sample()))
    requested = {call.request.url.split("?")[0] for call in responses.calls}
    assert f"{BASE}/Coverage" not in requested and f"{BASE}/Patient/demo-meets" not in requested
    assert data.patient["id"] == "demo-meets"
    assert [c["id"] for c in data.coverages] == ["demo-meets-coverage-geha"]
    assert not data.required_missing


@responses.activate
def test_absent_keys_are_queried_with_the_rendered_template() -> None:
    body = sample()
    del body["prefetch"]
    responses.get(f"{BASE}/Patient/demo-meets", json={"resourceType": "Patient", "id": "demo-meets"})
    responses.get(
        f"{BASE}/Coverage",
        json=searchset(
            [{"resourceType": "Coverage", "id": "cov1", "beneficiary": {"reference": "Patient/demo-meets"}}]
        ),
        match=[
            responses.matchers.query_param_matcher(  # CRD 2.2.1's expression, the payers included
                {"patient": "demo-meets", "status": "active", "_include": "Coverage:payor", "_count": "500"}
            )
        ],
    )
    data = gather(hook_request(body), clinical=False)
    assert data.patient["id"] == "demo-meets"
    assert [c["id"] for c in data.coverages] == ["cov1"]
    assert all(call.request.headers["Authorization"] == f"Bearer {TOKEN}" for call in responses.calls)


@responses.activate
def test_null_key_is_known_empty_and_never_requeried() -> None:
    body = sample()
    body["prefetch"]["coverage"] = None
    data = gather(hook_request(body), clinical=False)
    assert data.coverages == []
    assert len(responses.calls) == 0  # nothing to query: the patient was prefetched, coverage is known empty
    assert not data.required_missing


@responses.activate
def test_operation_outcome_key_is_queried() -> None:
    body = sample()
    body["prefetch"]["coverage"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    responses.get(
        f"{BASE}/Coverage",
        json=searchset(
            [{"resourceType": "Coverage", "id": "cov2", "beneficiary": {"reference": "Patient/demo-meets"}}]
        ),
    )
    data = gather(hook_request(body), clinical=False)
    assert [c["id"] for c in data.coverages] == ["cov2"]


@responses.activate
def test_a_paged_coverage_prefetch_is_read_by_the_keys_own_search_with_its_payers() -> None:
    """Page one of the Coverages with a `next` link: the rest is what the service's own Coverage search
    gives (CRD's template and its payers `_include`d: the same Coverages), one request in the round,
    not the EHR's `next` pages one round trip each; with the call's token."""
    body = sample()
    first = copy.deepcopy(body["prefetch"]["coverage"])
    first["link"] = [{"relation": "next", "url": f"{BASE}/Coverage?page=2"}]
    body["prefetch"]["coverage"] = first
    second = {
        "resourceType": "Coverage",
        "id": "cov-page-2",
        "beneficiary": {"reference": "Patient/demo-meets"},
    }
    payer = {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}
    whole = [*(e["resource"] for e in first["entry"]), second, payer]
    responses.get(f"{BASE}/Coverage", json=searchset(whole))
    data = gather(hook_request(body), clinical=False)
    assert [c["id"] for c in data.coverages] == ["demo-meets-coverage-geha", "cov-page-2"]
    [asked] = [call.request for call in responses.calls]
    assert asked.url == (
        f"{BASE}/Coverage?_count=500&patient=demo-meets&status=active&_include=Coverage%3Apayor"
    )
    assert asked.headers["Authorization"] == f"Bearer {TOKEN}"
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]


def test_missing_prefetch_without_a_server_is_required_missing() -> None:
    body = sample()
    del body["prefetch"]
    data = DataGatherer(None, []).gather(
        hook_request(body, with_server=False), STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY
    )
    assert set(data.required_missing) == {"patient", "coverage"}
    assert data.unavailable["Condition"] == "the EHR gave no FHIR server address"


@responses.activate
def test_failed_required_query_is_required_missing_and_clinical_failure_is_unavailable() -> None:
    body = sample()
    del body["prefetch"]["coverage"]
    responses.get(f"{BASE}/Coverage", status=401)
    responses.get(f"{BASE}/Condition", status=500)
    for query in clinical_queries("demo-meets", []):
        if query.resource_type != "Condition":
            responses.get(f"{BASE}/{query.resource_type}", json=searchset([]))
    data = gather(hook_request(body))
    assert data.required_missing == {"coverage": "HTTP 401"}
    assert data.unavailable == {"Condition": "HTTP 500"}


@responses.activate
def test_clinical_queries_run_in_parallel_and_are_patient_scoped() -> None:
    stub_clinical()
    with ThreadPoolExecutor(max_workers=8) as pool:
        data = gather(hook_request(sample()), executor=pool)
    searches = [call.request.url for call in responses.calls if call.request.url != ORG_URL]
    searched = sorted(url.split("?")[0].rsplit("/", 1)[-1] for url in searches)
    assert searched == sorted(q.resource_type for q in clinical_queries("x", []))
    assert all("patient=demo-meets" in url for url in searches)
    assert data.unavailable == {}


@responses.activate
def test_resources_of_other_patients_are_dropped() -> None:
    stub_clinical()
    responses.replace(
        responses.GET,
        f"{BASE}/Condition",
        json=searchset(
            [
                {"resourceType": "Condition", "id": "mine", "subject": {"reference": "Patient/demo-meets"}},
                {
                    "resourceType": "Condition",
                    "id": "theirs",
                    "subject": {"reference": "Patient/someone-else"},
                },
            ]
        ),
    )
    data = gather(hook_request(sample()))
    assert [c["id"] for c in data.resources["Condition"]] == ["mine"]


def answers(qr_id: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": qr_id,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
    }


@responses.activate
def test_a_search_whose_patient_scope_was_ignored_keeps_only_this_patients_resources(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub_clinical()
    everyone = searchset(
        [answers("mine", "demo-meets"), answers("theirs", "someone-else"), answers("x", "x")]
    )
    everyone["link"] = [{"relation": "self", "url": f"{BASE}/QuestionnaireResponse?_count=200"}]
    responses.replace(responses.GET, f"{BASE}/QuestionnaireResponse", json=everyone)
    with caplog.at_level("WARNING"):
        data = gather(hook_request(sample()))
    assert [r["id"] for r in data.resources["QuestionnaireResponse"]] == ["mine"]
    assert "QuestionnaireResponse" not in data.unavailable
    assert "ignored patient; kept 1 of 3" in caplog.text
    assert "someone-else" not in caplog.text and "theirs" not in caplog.text


@responses.activate
def test_an_unscoped_search_is_never_paged_through() -> None:
    stub_clinical()
    endless = searchset([answers("theirs", "someone-else")], next_url=f"{BASE}/QuestionnaireResponse?page=2")
    endless["link"].append({"relation": "self", "url": f"{BASE}/QuestionnaireResponse?_count=200"})
    responses.replace(responses.GET, f"{BASE}/QuestionnaireResponse", json=endless)
    data = gather(hook_request(sample()))
    assert "more than one page" in data.unavailable["QuestionnaireResponse"]
    assert "QuestionnaireResponse" not in data.resources
    pages = [c for c in responses.calls if "/QuestionnaireResponse" in c.request.url]
    assert len(pages) == 1


@responses.activate
def test_referenced_payer_and_medications_are_read() -> None:
    stub_clinical()
    responses.replace(
        responses.GET,
        f"{BASE}/MedicationRequest",
        json=searchset(
            [
                {
                    "resourceType": "MedicationRequest",
                    "id": "mr",
                    "subject": {"reference": "Patient/demo-meets"},
                    "medicationReference": {"reference": "Medication/med1"},
                },
            ]
        ),
    )
    responses.get(f"{BASE}/Medication/med1", json={"resourceType": "Medication", "id": "med1"})
    data = gather(hook_request(sample()))
    assert [m["id"] for m in data.resources["Medication"]] == ["med1"]
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]


@responses.activate
def test_a_payer_named_by_another_servers_url_is_not_read_from_the_calls_server() -> None:
    """Its Organization is that server's: the call's server holding one of the same id is no answer
    (a wrong payer would route the order to another payer's policy). Before, it was read by id."""
    stub_clinical()
    body = sample()
    [entry] = body["prefetch"]["coverage"]["entry"]
    entry["resource"]["payor"] = [
        {"reference": "https://payer.example.org/fhir/Organization/demo-meets-org-geha"}
    ]
    data = gather(hook_request(body))
    assert "Organization" not in data.resources
    assert not any("/Organization/" in call.request.url for call in responses.calls)


@responses.activate
def test_included_medications_are_not_read_again() -> None:
    stub_clinical()
    responses.replace(
        responses.GET,
        f"{BASE}/MedicationRequest",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {
                    "resource": {
                        "resourceType": "MedicationRequest",
                        "id": "mr",
                        "subject": {"reference": "Patient/demo-meets"},
                        "medicationReference": {"reference": "Medication/med1"},
                    }
                },
                {"resource": {"resourceType": "Medication", "id": "med1"}, "search": {"mode": "include"}},
            ],
        },
    )
    data = gather(hook_request(sample()))
    assert [m["id"] for m in data.resources["Medication"]] == ["med1"]
    assert not any("Medication/med1" in call.request.url for call in responses.calls)


# --------------------------------------------------------------------------- clinical prefetch keys

CLINICAL_KEYS = {key: q.resource_type for key, q in prefetchable_queries("demo-meets", [])}
# with the pain scores searched on their own (a gatherer given the terminology, as the app's is)
APP_CLINICAL_KEYS = [key for key, _ in prefetchable_queries("demo-meets", [], ["72514-3"])]


def mine(resource_type: str, rid: str, patient: str = "demo-meets") -> dict[str, Any]:
    return {"resourceType": resource_type, "id": rid, "subject": {"reference": f"Patient/{patient}"}}


def searched_types() -> list[str]:
    return [c.request.url.split("?")[0].rsplit("/", 1)[-1] for c in responses.calls if "?" in c.request.url]


@responses.activate
def test_a_prefetched_clinical_key_replaces_its_search() -> None:
    stub_clinical()
    body = sample()
    body["prefetch"]["conditions"] = searchset([mine("Condition", "c1")])
    data = gather(hook_request(body))
    assert [c["id"] for c in data.resources["Condition"]] == ["c1"]
    assert "Condition" not in searched_types()
    assert sorted(searched_types()) == sorted(t for t in CLINICAL_KEYS.values() if t != "Condition")


@responses.activate
def test_a_null_clinical_key_is_known_empty_and_not_searched() -> None:
    stub_clinical()
    body = sample()
    body["prefetch"]["procedures"] = None
    data = gather(hook_request(body))
    assert "Procedure" not in searched_types() and "Procedure" not in data.resources
    assert "Procedure" not in data.unavailable


@responses.activate
def test_a_clinical_key_with_an_operation_outcome_is_searched() -> None:
    stub_clinical()
    responses.replace(responses.GET, f"{BASE}/Procedure", json=searchset([mine("Procedure", "p1")]))
    body = sample()
    body["prefetch"]["procedures"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    data = gather(hook_request(body))
    assert [p["id"] for p in data.resources["Procedure"]] == ["p1"]
    assert searched_types().count("Procedure") == 1


@responses.activate
def test_a_paged_clinical_prefetch_is_read_by_the_keys_own_search_not_its_next_link() -> None:
    """With a fhirServer, the rest of a prefetched searchset is what the key's own search gives (CDS
    Hooks: the prefetch holds what that search does), page one's resources not taken twice."""
    stub_clinical()
    body = sample()
    body["prefetch"]["observations"] = searchset(
        [mine("Observation", "o1")], next_url=f"{BASE}/Observation?page=2"
    )
    whole = searchset([mine("Observation", "o1"), mine("Observation", "o2")])
    responses.replace(responses.GET, f"{BASE}/Observation", json=whole)
    data = gather(hook_request(body))
    assert [o["id"] for o in data.resources["Observation"]] == ["o1", "o2"]
    [observations] = [c.request.url for c in responses.calls if "/Observation" in c.request.url]
    assert "page=2" not in observations and "patient=demo-meets" in observations


@responses.activate
def test_a_prefetched_searchset_keeps_its_includes_and_drops_other_patients() -> None:
    stub_clinical()
    body = sample()
    request = mine("MedicationRequest", "mr")
    request["medicationReference"] = {"reference": "Medication/med1"}
    body["prefetch"]["medicationRequests"] = searchset(
        [
            request,
            mine("MedicationRequest", "theirs", "someone-else"),
            {"resourceType": "Medication", "id": "med1"},
        ]
    )
    data = gather(hook_request(body))
    assert [r["id"] for r in data.resources["MedicationRequest"]] == ["mr"]
    assert [m["id"] for m in data.resources["Medication"]] == ["med1"]
    assert not any("/Medication/" in c.request.url for c in responses.calls)


def test_the_patient_and_coverage_keys_give_only_this_patients_patient_and_coverage() -> None:
    """What else an EHR puts in them (another patient's chart, another Patient, a Coverage another
    person is the beneficiary of) is never evidence; the payer Organization included is kept."""
    body = sample()
    coverage = body["prefetch"]["coverage"]
    theirs = {**coverage["entry"][0]["resource"], "id": "theirs", "beneficiary": {"reference": "Patient/x"}}
    coverage["entry"] += [
        {"resource": theirs},
        {"resource": {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}},
        {"resource": mine("Condition", "their-fbss", "someone-else")},
        {"resource": mine("Condition", "planted-fbss")},
    ]
    body["prefetch"]["patient"] = searchset(
        [body["prefetch"]["patient"], {"resourceType": "Patient", "id": "x"}]
    )
    data = DataGatherer(None, []).gather(
        hook_request(body, with_server=False),
        STANDARD_PREFETCH,
        None,
        time.monotonic() + 5,
        today=TODAY,
        clinical=False,
    )
    assert [p["id"] for p in data.resources["Patient"]] == ["demo-meets"]
    assert [c["id"] for c in data.resources["Coverage"]] == [coverage["entry"][0]["resource"]["id"]]
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]
    assert "Condition" not in data.resources


@responses.activate
def test_a_chart_linked_to_the_same_patient_id_on_another_server_is_left_out() -> None:
    stub_clinical()
    body = sample()
    elsewhere = {
        **mine("Condition", "theirs"),
        "subject": {"reference": "https://elsewhere.example/fhir/Patient/demo-meets"},
    }
    own = {**mine("Condition", "ours"), "subject": {"reference": f"{BASE}/Patient/demo-meets"}}
    body["prefetch"]["conditions"] = searchset([mine("Condition", "c1"), elsewhere, own])
    data = gather(hook_request(body))
    assert [c["id"] for c in data.resources["Condition"]] == ["c1", "ours"]


def test_without_a_server_prefetched_clinical_keys_are_used_and_the_rest_unavailable() -> None:
    body = sample()
    body["prefetch"]["conditions"] = searchset([mine("Condition", "c1")])
    body["prefetch"]["patientDevices"] = {"resourceType": "OperationOutcome", "issue": []}
    data = DataGatherer(None, []).gather(
        hook_request(body, with_server=False), STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY
    )
    assert [c["id"] for c in data.resources["Condition"]] == ["c1"]
    assert "Condition" not in data.unavailable
    assert data.unavailable["Device"] == "the EHR reported an error for prefetch 'patientDevices'"
    assert data.unavailable["Procedure"] == "the EHR gave no FHIR server address"


def complete_prefetch(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with every clinical key prefetched (and the open trial orders, which the order hooks
    declare) and the payer Organization in the coverage Bundle."""
    body["prefetch"]["coverage"]["entry"].append(
        {"resource": {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}}
    )
    for key in [*APP_CLINICAL_KEYS, *TRIAL_ORDER_KEYS]:
        body["prefetch"][key] = searchset([])
    return body


@responses.activate
def test_a_complete_prefetch_makes_no_fhir_request() -> None:
    data = gather(hook_request(complete_prefetch(sample())))
    assert len(responses.calls) == 0
    assert data.unavailable == {} and not data.required_missing
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]


@responses.activate
def test_the_coverage_search_includes_the_payer_so_it_is_not_read_again() -> None:
    stub_clinical()
    body = sample()
    del body["prefetch"]["coverage"]
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "beneficiary": {"reference": "Patient/demo-meets"},
        "payor": [{"reference": "Organization/demo-meets-org-geha"}],
    }
    payer = {"resourceType": "Organization", "id": "demo-meets-org-geha"}
    responses.get(f"{BASE}/Coverage", json=searchset([coverage, payer]))
    data = gather(hook_request(body))
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]
    assert not any(c.request.url == ORG_URL for c in responses.calls)


SERVICE_TEMPLATES = service_for_hook("order-sign").prefetch  # patient, coverage and payerOrganizations
GEHA = {"resourceType": "Organization", "id": "demo-meets-org-geha", "name": "GEHA"}


def gather_all(body: dict[str, Any], with_server: bool = True) -> Any:
    """`body` gathered with the service's own templates (the payers' key too), the chart left out."""
    client = FhirClient(BASE, TOKEN, 2.0, deadline=time.monotonic() + 5) if with_server else None
    return DataGatherer(None, []).gather(
        hook_request(body, with_server),
        SERVICE_TEMPLATES,
        client,
        time.monotonic() + 5,
        today=TODAY,
        clinical=False,
    )


def requested() -> list[str]:
    return [c.request.url.split("?")[0] for c in responses.calls]


@responses.activate
def test_with_nothing_prefetched_the_coverage_search_includes_its_payers_and_no_reverse_chain_runs() -> None:
    """CRD's `coverage` template includes nothing; the service's own Coverage search includes the
    payers (one request, no second round), and it never runs the `payerOrganizations` reverse chain,
    which a server may be slow on, ignore or refuse (review s18 R2-1..R2-3)."""
    body = sample()
    del body["prefetch"]
    responses.get(f"{BASE}/Patient/demo-meets", json={"resourceType": "Patient", "id": "demo-meets"})
    coverage = body_coverage()
    responses.get(
        f"{BASE}/Coverage",
        json=searchset([coverage, GEHA]),
        match=[
            responses.matchers.query_param_matcher(
                {"patient": "demo-meets", "status": "active", "_include": "Coverage:payor", "_count": "500"}
            )
        ],
    )
    data = gather_all(body)
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]
    assert sorted(requested()) == sorted([f"{BASE}/Patient/demo-meets", f"{BASE}/Coverage"])
    assert data.unavailable == {} and not data.required_missing


def body_coverage() -> dict[str, Any]:
    [entry] = sample()["prefetch"]["coverage"]["entry"]
    return dict(entry["resource"])


@responses.activate
def test_a_prefetched_coverage_has_only_its_missing_payer_read_and_no_payer_search() -> None:
    stub_payer()
    data = gather_all(sample())  # the Coverage prefetched as CRD's expression gives it, no payers' key
    assert requested() == [ORG_URL]
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]


@responses.activate
def test_an_earlier_coverage_bundle_with_its_payer_included_still_needs_no_request() -> None:
    """An EHR still running the earlier template (`...&_include=Coverage:payor`) and not the payers'."""
    body = sample()
    body["prefetch"]["coverage"]["entry"].append({"resource": GEHA, "search": {"mode": "include"}})
    data = gather_all(body)
    assert len(responses.calls) == 0
    assert [o["id"] for o in data.resources["Organization"]] == ["demo-meets-org-geha"]


@responses.activate
def test_prefetched_payers_are_taken_once_and_nothing_is_requested() -> None:
    body = sample()
    body["prefetch"]["payerOrganizations"] = searchset([GEHA])
    data = gather_all(body)
    assert len(responses.calls) == 0
    assert data.resources["Organization"] == [GEHA]


def test_without_a_server_the_payers_key_is_not_required() -> None:
    data = gather_all(sample(), with_server=False)
    assert data.unavailable == {} and not data.required_missing
    assert [c["id"] for c in data.coverages] == ["demo-meets-coverage-geha"]


@responses.activate
def test_a_patient_a_search_brings_along_never_becomes_the_patient() -> None:
    """A Coverage's payor may be a guarantor Patient, another person: only the patient's own read
    (or prefetch key) gives the Patient."""
    stub_clinical()
    body = sample()
    del body["prefetch"]["coverage"]
    del body["prefetch"]["patient"]
    guarantor = {"resourceType": "Patient", "id": "guarantor", "name": [{"family": "Else"}]}
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "beneficiary": {"reference": "Patient/demo-meets"},
        "payor": [{"reference": "Patient/guarantor"}],
    }
    responses.get(f"{BASE}/Patient/demo-meets", status=404)
    responses.get(f"{BASE}/Coverage", json=searchset([coverage, guarantor]))
    data = gather(hook_request(body))
    assert data.patient is None
    assert "Patient" not in data.resources


SORTED = responses.matchers.query_param_matcher({"_sort": "-date"}, strict_match=False)


@responses.activate
def test_a_server_refusing_sort_is_asked_again_without_it() -> None:
    stub_clinical()
    responses.replace(responses.GET, f"{BASE}/Procedure", status=400, match=[SORTED])
    responses.get(f"{BASE}/Procedure", json=searchset([mine("Procedure", "p1")]))
    data = gather(hook_request(sample()))
    assert [p["id"] for p in data.resources["Procedure"]] == ["p1"]
    procedure_urls = [c.request.url for c in responses.calls if "/Procedure" in c.request.url]
    assert ["_sort=" in url for url in procedure_urls] == [True, False]


@responses.activate
def test_a_400_to_a_search_without_sort_is_not_retried() -> None:
    stub_clinical()
    responses.replace(responses.GET, f"{BASE}/Device", status=400)
    data = gather(hook_request(sample()))
    assert data.unavailable == {"Device": "HTTP 400"}
    assert searched_types().count("Device") == 1


def test_through_the_app_a_complete_prefetch_calls_no_fhir_client_and_answers_as_the_queries(
    compiled_catalog: Catalog,
) -> None:
    """The recorded client holds an empty chart, as the complete prefetch does: same cards, no call."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(), compiled_catalog, client_factory=factory)

    def answer(body: dict[str, Any]) -> Any:
        response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", body)
        assert response.status_code == 200
        return without_uuids(response.get_json())

    queried = hook_body("order-sign-implant-demo-meets")
    from_queries = answer(queried)
    searched = {call[1][0] for call in factory.client.calls if call[0] == "search"}
    assert searched == {*CLINICAL_KEYS.values(), *TRIAL_ORDER_KEYS.values()}  # and the trials ordered
    factory.client.calls.clear()
    from_prefetch = answer(complete_prefetch(hook_body("order-sign-implant-demo-meets")))
    assert factory.client.calls == []
    assert from_prefetch["cards"] and from_prefetch == from_queries


def hook_body(name: str) -> dict[str, Any]:
    body = sample(name)
    with_fhir(body, TOKEN, BASE)
    return body


@seeded(200)
@given(patient_id=st.from_regex(ID_PATTERN, fullmatch=True))
def test_the_searches_read_once_per_gatherer_are_the_templates_rendered_for_each_patient(
    compiled_catalog: Catalog, patient_id: str
) -> None:
    terminology = compiled_catalog.terminology
    codes = policy_observation_codes(terminology)
    gatherer = DataGatherer(None, codes, terminology=terminology)
    expected = prefetchable_queries(patient_id, codes, policy_pain_codes(terminology))
    assert searches_for_patient(gatherer._searches, patient_id) == expected


def test_a_paged_clinical_prefetch_without_a_server_is_unavailable_not_complete() -> None:
    """Page one of a prefetched search, its `next` link and no fhirServer to follow it: the rest of the
    chart is unknown, so the kind is unavailable ("could not be checked"), never judged on page one
    (which asked the clinician to document what the second page held; ehr20)."""
    body = sample()
    body["prefetch"]["procedures"] = searchset([mine("Procedure", "p1")], next_url=f"{BASE}/Procedure?page=2")
    request = hook_request(body, with_server=False)
    data = DataGatherer(None, []).gather(request, STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY)
    assert [p["id"] for p in data.resources["Procedure"]] == ["p1"]
    assert "more pages" in data.unavailable["Procedure"]


TWO_COVERAGES = "order-select-62362-demo-two-coverages"  # GEHA and Capital Blue Cross, both active
PAGE_ONE_ONLY = (
    "prefetch.{} was sent as page one of several (its Bundle has a next link){}, and the EHR gave no FHIR "
    "server to read the other pages from; send all of it in the one prefetch Bundle, or provide a reachable "
    "fhirServer with fhirAuthorization"
)


def paged_at_one(body: dict[str, Any], key: str, first: int = 0) -> dict[str, Any]:
    """`body` whose prefetch `key` is page one of its search paged at one: its `first` match, with a
    `next` link to the others (on a server the call does not name)."""
    bundle = body["prefetch"][key]
    body["prefetch"][key] = searchset([bundle["entry"][first]["resource"]], next_url=f"{BASE}/{key}?page=2")
    return body


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        ("coverage", {"coverage": PAGE_ONE_ONLY.format("coverage", "").split("; send")[0]}),
        ("payerOrganizations", {}),
    ],
)
def test_a_paged_coverage_prefetch_without_a_server_cannot_be_had_whole(
    key: str, missing: dict[str, str]
) -> None:
    """Page one of `coverage` and no fhirServer: a Coverage on the next page is another payer's, whom the
    call would not ask and the answer would not name (pages22 L1: page one was judged as if it held every
    Coverage), so the key is required and missing, with the paging as its reason; page one is kept. The
    payers' reverse chain is not among CRD's standard keys (`STANDARD_PREFETCH`): not asked, nothing
    missing."""
    body = paged_at_one(packaged_sample(TWO_COVERAGES), key)
    request = hook_request(body, with_server=False)
    data = DataGatherer(None, []).gather(request, STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY)
    assert data.required_missing == missing
    assert len(data.coverages) == (1 if key == "coverage" else 2)


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("version", [None, "2.2"])
@pytest.mark.parametrize("first", [0, 1])
def test_a_paged_coverage_prefetch_without_a_server_is_a_412_not_one_payers_answer(
    hook: str, version: str | None, first: int
) -> None:
    """CDS Hooks 412: the Coverages beyond page one can neither be had from the prefetch nor read. Before,
    200 with one payer's answer alone (GEHA's or Capital Blue Cross's "request prior authorization"), where
    the whole prefetch answers both (CRD 2.0.1) or is refused for two Coverages (CRD 2.2: 400). The 412
    says what happened: page one was sent, and no server was given to read the rest (inferno22 L1: it
    began "coverage was not prefetched")."""
    body = paged_at_one(packaged_sample(TWO_COVERAGES), "coverage", first)
    if hook == "order-sign":
        body = sign_after(body)
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    response = post_json(create_app(open_settings()).test_client(), f"/cds-services/idds-crd-{hook}", body)
    issue = assert_outcome(response, 412, "prefetch.coverage")
    assert issue["diagnostics"] == PAGE_ONE_ONLY.format("coverage", ""), issue


def _without_payor_display(body: dict[str, Any]) -> dict[str, Any]:
    """`body` whose Coverages name their payer by reference alone (no display to route by)."""
    for entry in body["prefetch"]["coverage"]["entry"]:
        for payor in entry["resource"]["payor"]:
            payor.pop("display", None)
    return body


def _call_without_server(body: dict[str, Any]) -> Any:
    return post_json(
        create_app(open_settings()).test_client(), f"/cds-services/idds-crd-{body['hook']}", body
    )


def test_a_paged_patient_prefetch_holding_the_patient_is_whole_without_a_server() -> None:
    """A Patient read is one resource: page one holding the call's patient is all of it, whatever the
    `next` link. Before, 412 "patient was not prefetched" for a prefetch that held it (inferno22 L1)."""
    whole = packaged_sample(TWO_COVERAGES)
    body = copy.deepcopy(whole)
    body["prefetch"]["patient"] = searchset([whole["prefetch"]["patient"]], next_url=f"{BASE}/Patient?page=2")
    response = _call_without_server(body)
    assert response.status_code == 200, response.get_json()
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert summaries == [c["summary"] for c in _call_without_server(whole).get_json()["cards"]]


def test_a_paged_patient_prefetch_without_the_patient_is_a_412_saying_page_one_lacked_it() -> None:
    body = packaged_sample(TWO_COVERAGES)
    body["prefetch"]["patient"] = searchset([], next_url=f"{BASE}/Patient?page=2")
    issue = assert_outcome(_call_without_server(body), 412, "prefetch.patient")
    assert issue["diagnostics"] == PAGE_ONE_ONLY.format("patient", ", without Patient/demo-two-coverages")


def test_a_paged_payer_prefetch_lacking_a_payer_named_by_reference_alone_without_a_server_is_a_412() -> None:
    """`payerOrganizations` paged at one, Capital Blue Cross's Organization on page one, GEHA's on the
    next, no fhirServer, the payors named by reference alone: routing reads the payer Organization's
    identifiers (contract §6), which cannot be had. Before, 200 judged on page one: GEHA's Coverage read
    "unnamed payer: no intrathecal pump coverage rules here", where GEHA's policy asks 5 items."""
    body = paged_at_one(_without_payor_display(packaged_sample(TWO_COVERAGES)), "payerOrganizations", 0)
    issue = assert_outcome(_call_without_server(body), 412, "prefetch.payerOrganizations")
    lacking = ", without Organization/demo-two-coverages-org-geha (a Coverage's payer)"
    assert issue["diagnostics"] == PAGE_ONE_ONLY.format("payerOrganizations", lacking), issue


@pytest.mark.parametrize("paged", [True, False], ids=["page-one-without-geha", "not-sent"])
def test_a_payer_named_by_its_display_is_routed_by_it_when_its_organization_is_not_had(paged: bool) -> None:
    """Guard: with no fhirServer and GEHA's Organization neither on page one nor sent, a payor that says
    its name is routed by it (contract §6: the Organization's identifiers, else the payor's own
    identifier or name), the same answer whether the key was paged or not sent."""
    whole = packaged_sample(TWO_COVERAGES)
    body = copy.deepcopy(whole)
    if paged:
        body = paged_at_one(body, "payerOrganizations", 0)
    else:
        del body["prefetch"]["payerOrganizations"]
    response = _call_without_server(body)
    assert response.status_code == 200, response.get_json()
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert summaries == [c["summary"] for c in _call_without_server(whole).get_json()["cards"]]


def test_a_payer_prefetch_not_sent_without_a_server_is_a_412_for_a_payer_named_by_reference_alone() -> None:
    """No `payerOrganizations`, no fhirServer, the Coverages naming their payers by reference alone:
    neither Organization can be had, so no Coverage can be routed. Before, 200 with "unnamed payer: no
    intrathecal pump coverage rules here" for a GEHA and a Capital Blue Cross Coverage (cards23)."""
    body = _without_payor_display(packaged_sample(TWO_COVERAGES))
    del body["prefetch"]["payerOrganizations"]
    response = _call_without_server(body)
    issue = assert_outcome(response, 412, "prefetch.payerOrganizations", mention="payerOrganizations was not")
    assert (
        "the request has no fhirServer to read Organization/demo-two-coverages-org-geha, "
        "Organization/demo-two-coverages-org-cbc (the Coverages' payers) from" in issue["diagnostics"]
    ), issue


def test_a_paged_payer_prefetch_holding_every_coverages_payer_is_whole_without_a_server() -> None:
    """Guard: page one holding every Organization the Coverages name as payer is all routing reads: the
    next page is other Organizations, of no use to the call."""
    whole = packaged_sample(TWO_COVERAGES)
    body = copy.deepcopy(whole)
    orgs = [e["resource"] for e in whole["prefetch"]["payerOrganizations"]["entry"]]
    body["prefetch"]["payerOrganizations"] = searchset(orgs, next_url=f"{BASE}/Organization?page=2")
    response = _call_without_server(body)
    assert response.status_code == 200, response.get_json()
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert summaries == [c["summary"] for c in _call_without_server(whole).get_json()["cards"]]


def paged_conditions(count: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """`count` Conditions of demo-meets, and a server stub that pages them 2 a page by `?page=N` and
    answers the `conditions` search whole: (the Conditions, the log of (kind, URL) it was asked)."""
    conditions = [
        {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/demo-meets"}}
        for i in range(count)
    ]
    asked: list[tuple[str, str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = request.params.get("page")
        asked.append(("page" if page else "search", request.url))
        if page is None:
            return 200, {}, json.dumps(searchset(conditions))
        start = 2 * (int(page) - 1)
        more = f"{BASE}/Condition?page={int(page) + 1}" if start + 2 < count else None
        return 200, {}, json.dumps(searchset(conditions[start : start + 2], more))

    responses.remove(responses.GET, f"{BASE}/Condition")  # stub_clinical's
    responses.add_callback(responses.GET, f"{BASE}/Condition", callback=answer)
    return conditions, asked


@responses.activate
def test_a_clinical_prefetch_paged_small_is_read_by_its_own_search_in_one_request() -> None:
    """Page one of the EHR's Conditions (2 a page, 5 pages) and a fhirServer: the rest is what the
    `conditions` template's own search gives (CDS Hooks: a prefetch holds what its query does), one
    request at the service's page size instead of a round trip per page; the same Conditions as following
    the pages gives, page one's not twice."""
    stub_clinical()
    conditions, asked = paged_conditions(10)
    body = sample()
    body["prefetch"]["conditions"] = searchset(conditions[:2], f"{BASE}/Condition?page=2")
    data = gather(hook_request(body))
    assert [kind for kind, _ in asked] == ["search"]
    assert "_count=500" in asked[0][1] and "patient=demo-meets" in asked[0][1]
    assert [c["id"] for c in data.resources["Condition"]] == [c["id"] for c in conditions]
    assert "Condition" not in data.unavailable


@responses.activate
def test_a_clinical_prefetch_paged_small_whose_own_search_fails_keeps_page_one_and_is_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The search run instead of the EHR's `next` pages fails: as a failed `next` page, page one is kept
    and the rest is "could not be checked" (Condition unavailable, with the server's reason)."""
    stub_clinical()
    responses.replace(responses.GET, f"{BASE}/Condition", status=500)
    body = sample()
    first = [{"resourceType": "Condition", "id": "c0", "subject": {"reference": "Patient/demo-meets"}}]
    body["prefetch"]["conditions"] = searchset(first, f"{BASE}/Condition?page=2")
    data = gather(hook_request(body))
    assert [c["id"] for c in data.resources["Condition"]] == ["c0"]
    assert data.unavailable["Condition"] == "HTTP 500"
    assert "Condition" in caplog.text and TOKEN not in caplog.text  # the failure logged, not the token


@responses.activate
@pytest.mark.parametrize("pain_sent", [False, True])
def test_paged_observations_are_read_by_their_own_search_and_the_pain_scores_by_theirs(
    compiled_catalog: Catalog, pain_sent: bool
) -> None:
    """`observations` held the pain scores too by the template of earlier versions. Page one of it with
    a pain score and a fhirServer: read by the key's own search, which leaves the pain scores out, and
    (no `painScores` key sent) the pain scores by theirs, by time: the two searches the service runs
    when neither key is prefetched, in one round; no `next` page asked, and every pain score once.
    Before, with no `painScores` key, the `next` pages were followed one round trip each."""
    terminology = compiled_catalog.terminology
    stub_clinical()
    first = pain_score("demo-meets", "first", datetime.now(UTC) - timedelta(days=2), 6)
    later = pain_score("demo-meets", "later", datetime.now(UTC) - timedelta(days=3), 7)
    asked: list[dict[str, str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:  # a server: the pain scores by code
        asked.append(dict(request.params))
        return 200, {}, json.dumps(searchset([first, later] if "72514-3" in request.params["code"] else []))

    responses.remove(responses.GET, f"{BASE}/Observation")
    responses.add_callback(responses.GET, f"{BASE}/Observation", callback=answer)
    body = sample()
    body["prefetch"]["observations"] = searchset([first], f"{BASE}/Observation?page=2")
    if pain_sent:
        body["prefetch"]["painScores"] = None
    gatherer = DataGatherer(None, policy_observation_codes(terminology), terminology=terminology)
    client = FhirClient(BASE, TOKEN, 2.0, deadline=time.monotonic() + 5)
    request = hook_request(body)
    data = gatherer.gather(request, STANDARD_PREFETCH, client, time.monotonic() + 5, today=TODAY)
    assert [a for a in asked if "page" in a] == []
    assert len([a for a in asked if "date" not in a]) == 1  # the key's own search
    assert len([a for a in asked if "date" in a]) == (0 if pain_sent else 1)  # the pain scores', by time
    if not pain_sent:
        assert sorted(o["id"] for o in data.resources["Observation"]) == ["first", "later"]


@responses.activate
def test_the_search_run_instead_of_a_prefetchs_pages_is_cached_under_the_ehrs_page_one() -> None:
    """The key's own search, run instead of a paged prefetch's `next` pages, is kept in the patient-data
    cache under its own query, as when the key is absent: the next call of the same scope with the same
    paged prefetch (order-sign after order-select) asks the FHIR server nothing. The EHR's page one is
    newer than the cache: its resources win (a Condition changed since, one added), the cache's others
    are kept. Before, the search was neither looked up nor kept: asked again on every call."""
    stub_clinical()
    conditions, asked = paged_conditions(6)
    cache = PatientDataCache(MemoryStore(100, 1 << 20, time.monotonic), 60.0, "test:", time.monotonic)
    scope = CacheScope("https://ehr.example.org", BASE, "Practitioner/1", "demo-meets")

    def gathered(page_one: list[dict[str, Any]]) -> Any:
        body = sample()
        body["prefetch"]["conditions"] = searchset(page_one, f"{BASE}/Condition?page=2")
        client = FhirClient(BASE, TOKEN, 2.0, deadline=time.monotonic() + 5)
        return DataGatherer(None, [], cache=cache).gather(
            hook_request(body), STANDARD_PREFETCH, client, time.monotonic() + 5, today=TODAY, scope=scope
        )

    first = gathered(conditions[:2])
    assert len(asked) == 1
    assert [c["id"] for c in first.resources["Condition"]] == [f"c{i}" for i in range(6)]
    assert "Condition" in {kind for kind, _ in first.cached}  # looked for: dropped with the others
    changed = {**conditions[0], "note": [{"text": "changed since"}]}
    added = {**conditions[0], "id": "c-new"}
    second = gathered([changed, added])
    assert len(asked) == 1  # nothing asked again
    assert [c["id"] for c in second.resources["Condition"]] == ["c0", "c-new", "c1", "c2", "c3", "c4", "c5"]
    assert second.resources["Condition"][0] == changed


@pytest.mark.parametrize("observations_paged", [False, True])
def test_paged_pain_scores_without_a_server_are_judged_on_page_one_and_said_to_have_more_pages(
    compiled_catalog: Catalog, observations_paged: bool
) -> None:
    """Page one of `painScores` and no fhirServer: its scores are judged (as any paged key's page one)
    and the reason the Observations are unavailable is the paging, not "no FHIR server address"
    (inferno21 L1: page one was dropped and the reason said the EHR gave no server, as if nothing had
    been prefetched). With `observations` paged too, its own reason (the first) stands."""
    terminology = compiled_catalog.terminology
    body = sample()
    score = pain_score("demo-meets", "p1", datetime.now(UTC) - timedelta(days=400), 6)
    body["prefetch"]["painScores"] = searchset([score], next_url=f"{BASE}/Observation?page=2")
    body["prefetch"]["observations"] = searchset(
        [], f"{BASE}/Observation?page=2" if observations_paged else None
    )
    gatherer = DataGatherer(None, policy_observation_codes(terminology), terminology=terminology)
    request = hook_request(body, with_server=False)
    data = gatherer.gather(request, STANDARD_PREFETCH, None, time.monotonic() + 5, today=TODAY)
    assert [o["id"] for o in data.resources["Observation"]] == ["p1"]
    key = "observations" if observations_paged else "painScores"
    assert data.unavailable["Observation"] == (
        f"prefetch '{key}' has more pages and the EHR gave no FHIR server to read them from"
    )


@responses.activate
def test_paged_pain_scores_whose_search_by_time_fails_keep_page_one(compiled_catalog: Catalog) -> None:
    """Page one of `painScores` with a fhirServer: the pain scores are searched by time instead of the
    `next` pages (score_window.py); when that search fails, page one is kept and the rest is
    unavailable with the server's reason, as for every key prefetched as page one of several (before,
    page one was dropped)."""
    terminology = compiled_catalog.terminology
    stub_clinical()
    responses.replace(responses.GET, f"{BASE}/Observation", status=500)
    body = sample()
    score = pain_score("demo-meets", "p1", datetime.now(UTC) - timedelta(days=400), 6)
    body["prefetch"]["painScores"] = searchset([score], next_url=f"{BASE}/Observation?page=2")
    body["prefetch"]["observations"] = searchset([])
    gatherer = DataGatherer(None, policy_observation_codes(terminology), terminology=terminology)
    client = FhirClient(BASE, TOKEN, 2.0, deadline=time.monotonic() + 5)
    data = gatherer.gather(hook_request(body), STANDARD_PREFETCH, client, time.monotonic() + 5, today=TODAY)
    assert [o["id"] for o in data.resources["Observation"]] == ["p1"]
    assert data.unavailable["Observation"] == "HTTP 500"
    assert all("page=2" not in call.request.url for call in responses.calls)


def test_a_412_for_a_key_not_sent_and_one_sent_in_part_says_each_as_it_happened() -> None:
    """The `patient` not prefetched and `coverage` sent as page one of several, no fhirServer: one
    sentence for the key not sent, one for the key sent in part, each element named."""
    body = paged_at_one(packaged_sample(TWO_COVERAGES), "coverage")
    del body["prefetch"]["patient"]
    issue = assert_outcome(_call_without_server(body), 412, "prefetch.patient", "patient was not prefetched")
    assert issue["expression"] == ["prefetch.patient", "prefetch.coverage"]
    assert issue["diagnostics"] == (
        "patient was not prefetched and could not be read from the EHR's FHIR server (not prefetched, and "
        "the request has no fhirServer); send it as prefetch or provide a reachable fhirServer with "
        f"fhirAuthorization. {PAGE_ONE_ONLY.format('coverage', '')}"
    ), issue


NON_PUMP = "order-select-non-pump"  # an office visit (99213) for a GEHA member: no payer policy judges it


@pytest.mark.parametrize("paged", [False, True], ids=["not-sent", "page-one-without-it"])
def test_a_call_with_no_pump_order_needs_no_payer_organization(paged: bool) -> None:
    """No fhirServer, the Coverage naming its payer by reference alone and `payerOrganizations` not sent
    (or page one without that Organization): the call judges no pump order, so no payer's policy is
    read, and its coverage information is the same whoever the payer is (but the payer's name: "unnamed
    payer: this service holds no coverage rules for code 99213"). Answered 200, as with the payer
    named; d81d24b made it a 412 naming prefetch.payerOrganizations (review23b H1: the Inferno kit's
    order-sign, order-dispatch and appointment-book bodies without a fhirServer, too)."""
    named = copy.deepcopy(packaged_sample(NON_PUMP))
    named.pop("fhirServer", None)
    body = _without_payor_display(copy.deepcopy(named))
    if paged:
        body["prefetch"]["payerOrganizations"] = searchset([], next_url=f"{BASE}/Organization?page=2")
    else:
        del body["prefetch"]["payerOrganizations"]
    response = _call_without_server(body)
    assert response.status_code == 200, response.get_json()
    answer = json.dumps(without_uuids(_call_without_server(named).get_json()))
    assert "GEHA: this service holds no coverage rules for code 99213" in answer
    assert without_uuids(response.get_json()) == json.loads(answer.replace("GEHA: ", "unnamed payer: "))
