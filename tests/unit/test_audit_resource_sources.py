"""The audit row's `fhir_access.resources` (service/audit_entry.py, `_fhir_access`): every resource the
call used, by type and by where it came from (`source`: the request's prefetch, a query of this call's,
or the patient-data cache, an earlier call's answer), the reads made outside the gather (the open
orders, the hook's Encounter, a booked order, an order's Device) among them; CRDMetricData's
`resources` as before, one entry per type and `prefetch` (review30b L4)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from service.app import create_app
from service.audit_entry import AuditedCall, audit_row
from service.caller import anonymous
from service.fhir.cache import CacheScope, MemoryStore, PatientDataCache
from service.fhir.client import SearchResult
from service.fhir.gather import DataGatherer, GatheredData
from service.hooks.models import HookRequest, parse_hook_request
from service.metrics import metric_data
from service.pipeline import HookOutcome
from service.registry import STANDARD_PREFETCH, find_service, service_for_hook
from service.settings import AuthSettings
from tests.audit_support import ChartFactory
from tests.builders import catalog, meeting_chart, service_request
from tests.cache_support import HandClock
from tests.calls import sample
from tests.support import (
    FHIR_SERVER,
    TOKEN,
    RecordingFactory,
    RecordingFhirClient,
    open_settings,
    post_json,
    select_body,
    with_fhir,
)

LATER = time.monotonic() + 3600  # a deadline no test reaches
SCOPE = CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-meets")
ENCOUNTER = "Encounter/demo-meets-encounter"


def select_request() -> tuple[dict[str, Any], HookRequest]:
    """An order-select with nothing prefetched but the Patient and Coverage, as sent and as parsed."""
    body = with_fhir(select_body(), TOKEN, FHIR_SERVER)
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in ("patient", "coverage")}
    return body, parse_hook_request(body, service_for_hook("order-select"))


def gathered(request: HookRequest, cache: PatientDataCache) -> GatheredData:
    """The gather of `request` from a FHIR server holding the meeting chart, through `cache`."""
    client = ChartFactory(meeting_chart())(request, LATER)
    gatherer = DataGatherer(None, [], cache=cache)
    today = datetime.now(UTC).date()
    return gatherer.gather(request, STANDARD_PREFETCH, client, LATER, today=today, scope=SCOPE)  # type: ignore[arg-type]


def access_of(body: dict[str, Any], request: HookRequest, data: GatheredData) -> dict[str, Any]:
    """The audit row's `fhir_access` of an order-select that gathered `data`."""
    call = AuditedCall(
        find_service("idds-crd-order-select"),  # type: ignore[arg-type]
        body,
        request,
        HookOutcome({"cards": []}, data=data, token_use=data.use.token_use),
        anonymous(AuthSettings()),
        datetime.now(UTC),
        datetime.now(UTC),
        1.0,
    )
    access: dict[str, Any] = json.loads(audit_row(call, catalog())["fhir_access"])
    return access


def by_source(access: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(r["type"], r["source"]): r["count"] for r in access["resources"]}


def test_a_call_answered_from_the_cache_says_so_where_a_call_that_queried_says_it_queried() -> None:
    """The call that filled the cache lists what it read as queried; the next, answered wholly from the
    cache, lists the same resources as the cache's, none as queried by it (review30b L4: both listed
    them alike, `prefetch: false`, and the auditor could not tell what this call's token fetched).
    The prefetched Patient and Coverage are the prefetch's in both; the metric's entries are as before."""
    clock = HandClock()
    cache = PatientDataCache(MemoryStore(100, 1 << 20, clock), 60.0, "test:", clock)
    body, request = select_request()
    first = access_of(body, request, gathered(request, cache))
    second = access_of(body, request, gathered(request, cache))
    queried = {t: n for (t, source), n in by_source(first).items() if source == "query"}
    assert queried and "Condition" in queried
    assert not {source for (_, source) in by_source(first)} - {"prefetch", "query"}
    assert {t: n for (t, source), n in by_source(second).items() if source == "cache"} == queried
    assert [k for k in by_source(second) if k[1] == "query"] == []
    prefetched = {k: n for k, n in by_source(first).items() if k[1] == "prefetch"}
    assert prefetched == {k: n for k, n in by_source(second).items() if k[1] == "prefetch"}
    assert {("Patient", "prefetch"), ("Coverage", "prefetch")} <= set(prefetched)
    for access in (first, second):
        assert all(r["prefetch"] == (r["source"] == "prefetch") for r in access["resources"])


class EncounterServer(RecordingFhirClient):
    """A FHIR server holding the meeting chart, one open pump order and the hook's Encounter."""

    def __init__(self, encounter: dict[str, Any], order: dict[str, Any]) -> None:
        super().__init__()
        self.encounter, self.order = encounter, order

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        subject = {"reference": "Patient/demo-meets"}
        found = [
            {**r, "subject": subject}
            for r in [*meeting_chart(), self.order]
            if r["resourceType"] == resource_type
        ]
        return SearchResult(found, [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        return self.encounter if reference == ENCOUNTER else None


def test_the_reads_outside_the_gather_are_listed_as_the_calls_queries() -> None:
    """An encounter-start whose open orders are searched and whose Encounter is read: the row lists the
    Encounter and the open order as read by this call's queries (review30b L4: neither was in `resources`,
    though the call's token fetched them); CRDMetricData leaves the Encounter out, the hook's focal
    resource (tests/unit/test_metric_focal.py)."""
    body = sample("encounter-start-demo-meets")
    encounter = body["prefetch"].pop("encounter")
    order = service_request("62362")
    order["status"] = "active"
    server = EncounterServer(encounter, order)
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body))
    assert response.status_code == 200
    assert ("read", ENCOUNTER) in server.calls
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert {"Encounter", "ServiceRequest"} <= {r["type"] for r in record["fhir_access"]["resources"]}
    listed = {(r["type"], r["source"]): r["count"] for r in record["fhir_access"]["resources"]}
    assert listed[("Encounter", "query")] == 1
    assert listed[("ServiceRequest", "query")] >= 1
    [metric] = metric_data(record)
    assert "Encounter" not in {r["type"] for r in metric.get("resources", [])}  # focal (review30i)


def test_crd_metric_data_lists_a_type_queried_and_cached_once_as_not_prefetched() -> None:
    """CRDMetricData has no element for the cache: a type the row lists as queried and as cached is one
    entry of its `resources`, `prefetch: false`, their counts added, as before the row told them apart."""
    body = with_fhir(select_body(), TOKEN, FHIR_SERVER)
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in ("patient", "coverage")}
    app = create_app(open_settings(), catalog(), client_factory=ChartFactory(meeting_chart()))
    assert post_json(app.test_client(), "/cds-services/idds-crd-order-select", body).status_code == 200
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    [before] = metric_data(record)
    resources = record["fhir_access"]["resources"]
    [queried] = [r for r in resources if r["type"] == "Procedure" and r["source"] == "query"]
    assert queried["count"] >= 2
    split = [{**queried, "count": 1}, {**queried, "count": queried["count"] - 1, "source": "cache"}]
    record["fhir_access"]["resources"] = [r for r in resources if r is not queried] + split
    [after] = metric_data(record)
    assert sorted(map(str, after["resources"])) == sorted(map(str, before["resources"]))


class PatientIgnoringServer(EncounterServer):
    """`EncounterServer`, but one that ignores the search's `patient` (as sekmet-fhir does for DeviceRequest)
    and says so: its ServiceRequest search answers other patients' open orders and this patient's completed
    one beside this patient's open one."""

    def __init__(
        self, encounter: dict[str, Any], order: dict[str, Any], others: list[dict[str, Any]]
    ) -> None:
        super().__init__(encounter, order)
        self.others = others

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        found = super().search(resource_type, params, first_page)
        extra = [r for r in self.others if r["resourceType"] == resource_type and "patient" in params]
        ignored = ("patient",) if "patient" in params else ()
        return SearchResult([*found.resources, *extra], [], 1, scope_ignored=ignored)


def test_an_open_order_search_answering_other_patients_orders_says_how_many_of_its_count_were_kept() -> None:
    """review30i c: the row's count of an open-order search is what the server answered, other patients'
    orders included when it ignores `patient` (and this patient's orders that are not open): an honest
    record of what the token fetched, but not of what the call used. The query entry now says how many it
    kept (`kept`) beside that count; CRDMetricData's count stays what was fetched. Where all were used the
    entry has no `kept` (the control: a server that keeps to `patient`)."""
    body = sample("encounter-start-demo-meets")
    encounter = body["prefetch"].pop("encounter")
    order = {**service_request("62362"), "status": "active"}
    others = [
        {**service_request("62362"), "id": f"others-{n}", "status": "active", "subject": {"reference": who}}
        for n, who in enumerate(("Patient/someone-else", "Patient/another-one"))
    ]
    done = {**service_request("62362"), "id": "done", "status": "completed"}
    counts = {}
    for server in (
        EncounterServer(encounter, order),
        PatientIgnoringServer(encounter, order, [*others, done]),
    ):
        app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
        response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body))
        assert response.status_code == 200
        [record] = list(app.extensions["idds_crd"].stores.audit.between())
        [entry] = [
            r
            for r in record["fhir_access"]["resources"]
            if (r["type"], r["source"]) == ("ServiceRequest", "query")
        ]
        [metric] = metric_data(record)
        [exported] = [r for r in metric["resources"] if r["type"] == "ServiceRequest"]
        assert exported["count"] == entry["count"]  # the export: what was fetched
        counts[type(server).__name__] = entry
    alone, beside = counts["EncounterServer"], counts["PatientIgnoringServer"]
    assert "kept" not in alone
    assert beside["count"] == alone["count"] + 3  # two patients' open orders, and the completed one
    assert beside["kept"] == alone["count"]
