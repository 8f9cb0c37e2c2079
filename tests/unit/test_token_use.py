"""The call's FHIR queries as `FhirUse` counts them (service/fhir/query_pool.py), the one place every
query of a call is counted whatever asks it: the audit's token outcome (CRDMetricData tokenUse: used,
not-used, rejected) and the FHIR query metric. It pins what encounter30 changed (a call answered from
the patient-data cache uses no token, a batch refused whole rejects it, a booked order's read is a
query) and review30b's L1-L3 (a query never sent, held back, started too late or finding the time up
at its first request, is no latency sample and uses no token; a call answered 500 records what its
queries did), that a query of a batch the server refused had gone in it, however late it was then
asked alone (review30g M1), that the token is `used` once a request carrying it went, whatever fails
after (review30g L1), and that a read the client refuses before sending uses none (review30g L2)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from service import pipeline
from service.app import create_app
from service.fhir.cache import CacheScope, MemoryStore, PatientDataCache
from service.fhir.client import (
    NOT_A_REFERENCE,
    OUT_OF_TIME,
    BatchRefused,
    FhirClient,
    FhirError,
    NotAsked,
    NotSent,
    SearchResult,
    SessionPool,
)
from service.fhir.gather import DataGatherer, GatheredData
from service.fhir.queries import Query
from service.fhir.query_pool import FhirUse, QueryPool
from service.hooks.models import parse_hook_request
from service.metrics import metric_data
from service.registry import STANDARD_PREFETCH, service_for_hook
from tests.booking_support import appointment
from tests.builders import catalog
from tests.cache_support import HandClock
from tests.observability_support import scrape, summed, value
from tests.support import (
    FHIR_SERVER,
    TOKEN,
    RecordingFactory,
    RecordingFhirClient,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

BOOK_URL = "/cds-services/idds-crd-appointment-book"
SIGN_URL = "/cds-services/idds-crd-order-sign"
LATER = time.monotonic() + 3600  # a deadline no test reaches
SCOPE = CacheScope("https://ehr.example.org", FHIR_SERVER, "Practitioner/1", "demo-meets")
CONDITIONS = Query("conditions", "Condition", {"patient": "demo-meets"})


def gathered(client: FhirClient | RecordingFhirClient, cache: PatientDataCache | None = None) -> GatheredData:
    """What the gather reads for an order-select with nothing prefetched, from `client` (and `cache`)."""
    body = select_body()
    del body["prefetch"]
    request = parse_hook_request(with_fhir(body, TOKEN, FHIR_SERVER), service_for_hook("order-select"))
    gatherer = DataGatherer(None, [], cache=cache)
    today = datetime.now(UTC).date()
    scope = None if cache is None else SCOPE
    return gatherer.gather(request, STANDARD_PREFETCH, client, LATER, today=today, scope=scope)  # type: ignore[arg-type]


def test_a_call_answered_wholly_from_the_cache_uses_no_token() -> None:
    """A call whose every query the patient-data cache answers sends the EHR nothing: its token outcome
    is `not-used` (CRD metrics: the payer did not attempt to use the token), where the call that filled
    the cache `used` it (encounter30: before, every such call recorded `used`)."""
    clock = HandClock()
    cache = PatientDataCache(MemoryStore(100, 1 << 20, clock), 60.0, "test:", clock)
    first, second = RecordingFhirClient(), RecordingFhirClient()
    assert gathered(first, cache).use.token_use == "used" and first.calls
    warm = gathered(second, cache)
    assert second.calls == [] and warm.use.token_use == "not-used"


class BatchRefused401(FhirClient):
    """The EHR's FHIR server, taking batches, refusing the call's token on the batch itself (HTTP 401);
    nothing is asked of it but batches."""

    def __init__(self) -> None:
        super().__init__(FHIR_SERVER, TOKEN, 1.0, batch=True)
        self.calls: list[tuple[str, Any]] = []

    def batch(self, relative_urls: list[str]) -> list[Any]:
        self.calls.append(("batch", tuple(relative_urls)))
        raise FhirError("HTTP 401", 401)


def test_a_batch_refused_whole_rejects_the_token() -> None:
    """A 401 on the batch that holds the call's searches fails each of them so, and the token outcome is
    `rejected` (encounter30: the batch's status was not kept, and such a call recorded `used`)."""
    server = BatchRefused401()
    data = gathered(server)
    assert [kind for kind, _ in server.calls] == ["batch"]
    assert data.use.token_use == "rejected"


class OrderReadRefused(RecordingFhirClient):
    """A FHIR server answering every search and read with nothing but the read of a booked order, which
    it refuses with `status` (None: answers with nothing too)."""

    def __init__(self, status: int | None) -> None:
        super().__init__()
        self.status = status

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        if self.status is not None and reference.startswith("ServiceRequest/"):
            raise FhirError(f"HTTP {self.status}", self.status)
        return None


def book_body() -> dict[str, Any]:
    """An appointment-book call whose Appointment is based on an order read from the server, with the
    Patient and Coverage prefetched (so the order's read is the one query refused or answered)."""
    return {
        "hook": "appointment-book",
        "hookInstance": "4f0d7a36-3f0e-4b8e-9d0c-0a3b1c2d3e4f",
        "context": {
            "userId": "PractitionerRole/scheduler-1",
            "patientId": "demo-meets",
            "appointments": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": appointment("ServiceRequest/sr-implant")}],
            },
        },
        "prefetch": sign_body()["prefetch"],
    }


@pytest.mark.parametrize(("status", "token_use", "errors"), [(401, "rejected", 1), (None, "used", 0)])
def test_a_booked_orders_read_is_a_query_of_the_call(status: int | None, token_use: str, errors: int) -> None:
    """The order an Appointment is booked for, read from the EHR's FHIR server, is counted as every query
    is (`FhirUse.read`): the token outcome and the FHIR query metric (encounter30: before, neither saw it,
    and a 401 there was recorded `used`, the searches answered)."""
    server = OrderReadRefused(status)
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    assert post_json(app.test_client(), BOOK_URL, with_fhir(book_body())).status_code == 200
    assert ("read", "ServiceRequest/sr-implant") in server.calls
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == token_use
    exposition = scrape(app)
    assert value(exposition, "idds_crd_fhir_query_errors_total", resource_type="ServiceRequest") == errors


class HeldBack(RecordingFhirClient):
    """A client the server share holds back (service/fhir/server_share.py): each request fails NotAsked."""

    def refusal(self) -> str | None:
        return "held back"

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> Any:
        time.sleep(0.001)  # what it takes to find that out: not a request's latency
        raise NotAsked("held back")


def test_a_query_held_back_is_no_latency_sample() -> None:
    """A query the call was held back from was never sent: the FHIR query metric counts its failure and
    no latency of it (review30b L1: its time to fail was a sample, and the samples outnumbered the
    requests sent)."""
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(HeldBack()))
    body = sign_body()
    del body["prefetch"]
    post_json(app.test_client(), SIGN_URL, with_fhir(body))
    exposition = scrape(app)
    assert value(exposition, "idds_crd_fhir_query_errors_total", resource_type="Coverage") == 1
    assert summed(exposition, "idds_crd_fhir_query_seconds_count", resource_type="Coverage") == 0


def test_a_query_that_never_started_uses_no_token() -> None:
    """A query that got no worker before the call's deadline was never sent: it fails out of time and
    uses no token (review30b L2: it counted `used`), while one that ran does."""
    client = RecordingFhirClient()
    with ThreadPoolExecutor(2) as executor:
        pool = QueryPool(executor)
        late, on_time = FhirUse(), FhirUse()
        outcome = pool.run(client, [CONDITIONS], time.monotonic() - 1)[CONDITIONS.key]
        late.count(CONDITIONS, outcome)
        on_time.count(CONDITIONS, pool.run(client, [CONDITIONS], LATER)[CONDITIONS.key])
    assert outcome.error is not None and len(client.calls) == 1  # the one that ran
    assert (late.token_use, on_time.token_use) == ("not-used", "used")


@pytest.mark.parametrize(("error", "token_use"), [(None, "used"), (FhirError("HTTP 401", 401), "rejected")])
def test_a_call_answered_500_records_what_its_queries_did(
    monkeypatch: pytest.MonkeyPatch, error: FhirError | None, token_use: str
) -> None:
    """A call that fails after its queries (answered 500) is recorded with their token outcome, as every
    answer is (review30b L3: `not-used`, whatever the queries had sent)."""

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug past the gather")

    monkeypatch.setattr(pipeline, "decide", fails)
    server = RecordingFhirClient(error)
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    body = sign_body()
    del body["prefetch"]
    assert post_json(app.test_client(), SIGN_URL, with_fhir(body)).status_code == 500
    assert server.calls
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == token_use
    assert [m["tokenUse"] for m in metric_data(record)] == [token_use]


def past_its_deadline() -> FhirClient:
    """A real client whose call's deadline has passed: each query's first request finds the time up."""
    return FhirClient(FHIR_SERVER, TOKEN, 1.0, deadline=time.monotonic() - 1)


def test_a_query_whose_first_request_found_the_time_up_uses_no_token() -> None:
    """A query that started (on a worker, or in the call's thread: an order's Device read) but whose first
    request found the call's deadline passed sent nothing (client.NotSent): it fails out of time and uses
    no token (review30b L2 continued: it counted `used`)."""
    read, searched = FhirUse(), FhirUse()
    with pytest.raises(FhirError):
        read.read(past_its_deadline(), "Device/dev-1")
    with ThreadPoolExecutor(2) as executor:
        outcome = QueryPool(executor).run(past_its_deadline(), [CONDITIONS], LATER)[CONDITIONS.key]
    searched.count(CONDITIONS, outcome)
    assert outcome.error == OUT_OF_TIME
    assert (read.token_use, searched.token_use) == ("not-used", "not-used")
    page_one = {
        "resourceType": "Bundle",
        "link": [{"relation": "next", "url": f"{FHIR_SERVER}/Condition?p=2"}],
    }
    with pytest.raises(FhirError) as later:  # a page past the first: the query's first request went
        past_its_deadline().collect(page_one, "Condition")
    assert type(later.value) is FhirError and later.value.reason == OUT_OF_TIME


class SortRefusedThenLate(RecordingFhirClient):
    """A server refusing a sorted search (HTTP 400, sent with the token), the call's time up before the
    search is asked again unsorted (NotSent, as a real client's first request then fails); or, with
    `late` alone, a server whose page past the first finds the time up (a plain FhirError)."""

    def __init__(self, late: bool = False) -> None:
        super().__init__()
        self.late = late

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params, first_page)
        if self.late:
            raise FhirError(OUT_OF_TIME)
        if "_sort" in params:
            raise FhirError("HTTP 400", 400)
        raise NotSent(OUT_OF_TIME)


@pytest.mark.parametrize("late", [False, True], ids=["sort-refused-then-no-time", "a-later-page-late"])
def test_a_query_whose_first_request_went_uses_the_token_whatever_fails_after(late: bool) -> None:
    """Only a query's first request finding the time up makes it unsent: a sorted search refused (400) and
    asked again too late, or a search whose later page is late (plain OUT_OF_TIME), had sent the token."""
    use = FhirUse()
    query = Query("conditions", "Condition", {"patient": "demo-meets", "_sort": "-onset-date"})
    outcome = QueryPool(None).run(SortRefusedThenLate(late), [query], LATER)[query.key]
    use.count(query, outcome)
    assert outcome.error == OUT_OF_TIME and use.token_use == "used"


class BatchRefusedLate(FhirClient):
    """A real client to a server taking batches on its word, whose answer to the batch (sent with the
    token) says it does not (HTTP 405: `BatchRefused`) as the call's time runs out: each query asked alone
    afterwards finds the time up before its own first request."""

    def __init__(self) -> None:
        super().__init__(FHIR_SERVER, TOKEN, 1.0, deadline=time.monotonic() + 0.05, batch=True)
        self.batches_sent = 0

    def batch(self, relative_urls: list[str]) -> list[Any]:
        self.batches_sent += 1
        time.sleep(max(self._deadline - time.monotonic(), 0) + 0.01)  # type: ignore[operator]
        raise BatchRefused("HTTP 405", 405)


@pytest.mark.parametrize("executor", [False, True], ids=["in-the-calls-thread", "on-the-pool"])
def test_a_query_of_a_batch_refused_went_with_the_token_however_late_it_is_asked_alone(
    executor: bool,
) -> None:
    """The queries of a batch the server did not take (BatchRefused: it answered the batch, sent with the
    token) are asked one by one; one that then finds the time up, or gets no worker, before its own first
    request had still gone to the server in the batch: the token was `used` (review30g: recorded
    `not-used`, the batch's request forgotten, where before token30 such a query counted `used`)."""
    reads = [Query(f"read:Organization/o{n}", "Organization", reference=f"Organization/o{n}") for n in (1, 2)]
    client, use = BatchRefusedLate(), FhirUse()
    with ThreadPoolExecutor(2) as pool:
        outcomes = QueryPool(pool if executor else None).run(client, reads, LATER)
    for query in reads:
        use.count(query, outcomes[query.key])
    assert client.batches_sent == 1
    assert all(outcomes[q.key].error == OUT_OF_TIME for q in reads)
    assert use.token_use == "used"
    assert all(outcomes[q.key].seconds == 0.0 for q in reads)  # no latency sample: the batch's time


class BugOnSend:
    """The sessions of a real client whose adapter fails with a bug (not a FHIR failure) as it sends: a
    bug raised on a pool worker, or in the call's thread, once the request carrying the token went."""

    def __init__(self) -> None:
        self.sent = 0
        self.cutoff = SessionPool().cutoff
        self.batch_refusals = SessionPool().batch_refusals

    def adapter(self) -> Any:
        return self

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent += 1
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        raise RuntimeError("a bug past the send")


def test_a_call_failing_500_once_its_token_went_records_it_used() -> None:
    """The token outcome is the client's word that a request carrying the token went (`FhirUse.watch`), not
    what the counted queries say: a bug raised on a pool worker after its request went fails the call 500
    before its round is counted, and recorded `not-used` (review30g L1)."""
    sessions = BugOnSend()

    def factory(request: Any, deadline: float) -> FhirClient:
        return FhirClient(FHIR_SERVER, TOKEN, 1.0, deadline=deadline, sessions=sessions)  # type: ignore[arg-type]

    app = create_app(open_settings(), catalog(), client_factory=factory)
    body = sign_body()
    del body["prefetch"]
    response = post_json(app.test_client(), SIGN_URL, with_fhir(body))
    assert response.status_code == 500 and sessions.sent
    assert TOKEN not in response.get_data(as_text=True)
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == "used"
    assert [m["tokenUse"] for m in metric_data(record)] == ["used"]


@pytest.mark.parametrize("reference", ["Device/..", "Device/a/b", "Device"])
def test_a_read_the_client_refuses_before_sending_uses_no_token_and_is_no_latency_sample(
    reference: str,
) -> None:
    """A read the client's own checks refuse (an order's Device reference `Device/..`: NOT_A_REFERENCE)
    sent nothing: it uses no token and is no latency sample (review30g L2: `used`, with a sample)."""
    read, pooled = FhirUse(), FhirUse()
    app = create_app(open_settings(), catalog())
    with app.app_context():  # the FHIR query metric counts in the app's context
        with pytest.raises(FhirError) as refused:
            read.read(FhirClient(FHIR_SERVER, TOKEN, 1.0, deadline=LATER), reference)
        query = Query(f"read:{reference}", "Device", reference=reference)
        client = FhirClient(FHIR_SERVER, TOKEN, 1.0, deadline=LATER)
        pooled.watch(client)
        outcome = QueryPool(None).run(client, [query], LATER)[query.key]
        pooled.count(query, outcome)
    assert refused.value.reason == NOT_A_REFERENCE
    assert outcome.error == NOT_A_REFERENCE and not outcome.sent
    assert (read.token_use, pooled.token_use) == ("not-used", "not-used")
    exposition = scrape(app)
    assert value(exposition, "idds_crd_fhir_query_errors_total", resource_type="Device") == 2
    assert summed(exposition, "idds_crd_fhir_query_seconds_count", resource_type="Device") == 0
