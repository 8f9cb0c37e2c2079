"""Getting the data a hook call needs: prefetch first, then parallel FHIR queries within a deadline.

The plan: the service's prefetch keys (Patient, Coverage with its payer), rendered from their
templates and queried only when the EHR did not prefetch them; then, only when a pump order is in
scope, the clinical searches the contract names, each also a prefetch template (`clinical_templates`,
generated from the codes the policies read) and searched only when the EHR did not prefetch it; all
of it at once on a bounded worker pool; then the resources those results reference and did not
include (the payer Organization, Medications). With a complete prefetch nothing is queried. Whatever
is not back by the deadline is reported as unavailable, with its reason, instead of being waited for.
Where the server takes FHIR batches (`fhir.batch`), the searches and reads of one round go as one
batch request (service/fhir/batch.py); a server that refuses it is asked one query at a time.

How calls share the worker pool (one slow EHR must not hurt another):

- The pool (`fhir.max_workers` threads) is shared by every call of the process. A query takes a
  worker only once it has a slot: each FHIR server (origin) has `fhir.max_concurrent_per_server`
  slots for all calls together, fewer than the pool has workers, so the calls to one server can
  never hold the whole pool. A call waits for a slot in its own (request) thread, never on a
  worker, and only until its deadline.
- One call has at most `fhir.max_concurrent_per_call` queries on the pool at once; the rest wait
  in the call's own thread for one of its queries to finish. So a call never queues more than its
  share in front of other calls.
- A query that could not start before the deadline answers "no answer within the hook's time
  budget"; one still running at the deadline is cut there (the client's transport shuts its
  connection down, so its worker is free again at once) and answers "the FHIR server did not
  answer".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from service.codes import ASSESSMENT_SYSTEM
from service.fhir.batch import EntryAnswer
from service.fhir.cache import Answer, CacheScope, PatientDataCache
from service.fhir.client import OUT_OF_TIME, BatchRefused, FhirClient, FhirError, SearchResult
from service.fhir.outbound import NO_ANSWER
from service.fhir.prefetch import Prefetched, PrefetchState, interpret, render
from service.fhir.score_window import (
    PAIN_KEY,
    fhir_instant,
    is_pain_score,
    known_ids,
    missing_windows,
    older_newest_first,
    recent_since,
    since_of,
    within,
    without_known,
)
from service.hooks.models import HookRequest
from service.observability import observe_cache, observe_fhir_query
from service.references import belongs_to_patient, on_server, parse_reference
from service.terminology import Terminology

log = logging.getLogger(__name__)

MAX_REFERENCE_READS = 50
UNSCOPED_TYPES = ("Medication", "Organization", "Patient")
# What a search may bring along (`_include`): never a Patient, which only the patient's own read or
# prefetch key may give (a Coverage's payor can be a guarantor Patient, another person).
INCLUDED_TYPES = ("Medication", "Organization")
MAX_CONCURRENT_PER_CALL = 8
MAX_CONCURRENT_PER_SERVER = 8
OTHER_PATIENT = "the FHIR server answered with another patient's resource"


@dataclass(frozen=True)
class Query:
    """One FHIR interaction: a search (`params`), a read (`reference`), or the remaining pages
    of a prefetched searchset (`continue_from`). `required` data missing means HTTP 412."""

    key: str
    resource_type: str
    params: Mapping[str, str | list[str]] | None = None
    reference: str | None = None
    continue_from: Mapping[str, Any] | None = None
    required: bool = False
    first_page: bool = False  # a sorted search whose first page is all that is wanted


@dataclass
class QueryOutcome:
    resources: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    pages: int = 0
    scope_ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class GatheredData:
    """Everything fetched for one call, by resource type, with what could not be had and why."""

    resources: dict[str, list[dict[str, Any]]]
    unavailable: dict[str, str]
    required_missing: dict[str, str]
    timings: dict[str, float]
    pages: dict[str, int] = field(default_factory=dict)

    @property
    def patient(self) -> dict[str, Any] | None:
        return next(iter(self.resources.get("Patient", [])), None)

    @property
    def coverages(self) -> list[dict[str, Any]]:
        return self.resources.get("Coverage", [])


def query_from_url(key: str, relative: str, required: bool = False) -> Query:
    """A rendered prefetch template (`Patient/1`, `Coverage?patient=1&status=active`) as a Query."""
    path, _, query = relative.partition("?")
    path = path.strip("/")
    if query or "/" not in path:
        return Query(key, path, params=dict(parse_qsl(query, keep_blank_values=True)), required=required)
    return Query(key, path.split("/")[0], reference=path, required=required)


PATIENT = "{{context.patientId}}"
# The clinical searches of the contract (section 3), by prefetch key. Keys are stable (the EHR-facing
# contract) and avoid CRD's standard `devices`/`medications` keys, which mean the draft orders' own.
# `_sort` puts the newest first where R4 defines a date parameter for it; a server that refuses it is
# asked again without it (see `_search`). Observations come in two searches: the pain scores (a chart
# can hold thousands; searched by time, see score_window.py) and the other coded Observations
# (few; all of them, in any order).
_CLINICAL_SEARCHES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("conditions", "Condition", (("_sort", "-onset-date"),)),
    (
        "medicationRequests",
        "MedicationRequest",
        (("_include", "MedicationRequest:medication"), ("_sort", "-authoredon")),
    ),
    ("medicationStatements", "MedicationStatement", (("_include", "MedicationStatement:medication"),)),
    ("procedures", "Procedure", (("_sort", "-date"),)),
    ("observations", "Observation", (("code", ""),)),
    (PAIN_KEY, "Observation", (("code", ""),)),
    ("patientDevices", "Device", ()),
    ("allergyIntolerances", "AllergyIntolerance", ()),
    ("questionnaireResponses", "QuestionnaireResponse", ()),
)


CLINICAL_KEYS = tuple(key for key, _, _ in _CLINICAL_SEARCHES)


def clinical_templates(
    observation_codes: Iterable[tuple[str, str]], pain_codes: Iterable[str] = ()
) -> dict[str, str]:
    """The clinical searches as CDS Hooks prefetch templates (key → template): what discovery
    declares and, rendered, what the service queries when the EHR did not prefetch a key (the pain
    scores narrowed further by date, see `DataGatherer`). The Observation searches are narrowed to
    the codes the policies read: the pain-severity codes (`pain_codes`, LOINC) in `painScores`, the
    other codes plus the assessment system in `observations` (all of them there without pain codes)."""
    pain = frozenset(pain_codes)
    other = [f"{system}|{code}" for system, code in observation_codes if code not in pain]
    codes_of = {
        "observations": ",".join([*other, f"{ASSESSMENT_SYSTEM}|"]),
        PAIN_KEY: ",".join(f"http://loinc.org|{code}" for code in sorted(pain)),
    }
    templates = {}
    for key, resource_type, params in _CLINICAL_SEARCHES:
        if key == PAIN_KEY and not pain:
            continue
        values = [(name, codes_of[key] if name == "code" else value) for name, value in params]
        query = "".join(f"&{name}={quote(value, safe=':/|,-')}" for name, value in values)
        templates[key] = f"{resource_type}?patient={PATIENT}{query}"
    return templates


def prefetchable_queries(
    patient_id: str, observation_codes: Iterable[tuple[str, str]], pain_codes: Iterable[str] = ()
) -> list[tuple[str, Query]]:
    """Each clinical search with its prefetch key: the template, rendered for one patient (the
    query keeps the resource type as its key, which timings and logs name; `Observation:painScores`
    for the pain scores)."""
    return _rendered(patient_id, clinical_templates(observation_codes, pain_codes))


def _rendered(patient_id: str, templates: Mapping[str, str]) -> list[tuple[str, Query]]:
    rendered = [(key, query_from_url(key, t.replace(PATIENT, patient_id))) for key, t in templates.items()]
    return [
        (key, replace(query, key=query.resource_type if key != PAIN_KEY else f"{query.resource_type}:{key}"))
        for key, query in rendered
    ]


def _for_patient(searches: list[tuple[str, Query]], patient_id: str) -> list[tuple[str, Query]]:
    """`_rendered(patient_id, templates)` from `_rendered(PATIENT, templates)`, read once: a patient
    id (a FHIR id, service/hooks/models.py) holds nothing a query string would decode or split on."""
    return [
        (key, Query(q.key, q.resource_type, {k: v.replace(PATIENT, patient_id) for k, v in q.params.items()}))
        for key, q in searches
    ]


def clinical_queries(
    patient_id: str, observation_codes: Iterable[tuple[str, str]], pain_codes: Iterable[str] = ()
) -> list[Query]:
    """The searches the clinical data contract needs (section 3), scoped to one patient: the
    clinical prefetch templates, rendered."""
    return [query for _, query in prefetchable_queries(patient_id, observation_codes, pain_codes)]


def _search(client: FhirClient, query: Query, answer: EntryAnswer | None = None) -> SearchResult:
    """The search (its first page given as a batch entry `answer`, or searched); asked again
    without `_sort` when the server refuses it (HTTP 400): the order is a nicety, the data is not."""
    params = dict(query.params or {})
    try:
        if answer is not None:
            return client.search_answered(query.resource_type, params, answer, first_page=query.first_page)
        return client.search(query.resource_type, params, first_page=query.first_page)
    except FhirError as exc:
        if exc.status != 400 or "_sort" not in params:
            raise
        log.info("%s: the server refused _sort=%s; searching unsorted", query.key, params.pop("_sort"))
        return client.search(query.resource_type, params)


def _run(client: FhirClient, query: Query, answer: EntryAnswer | None = None) -> QueryOutcome:
    """The query's outcome: from its own request, or from its entry of a batch (`answer`)."""
    started = time.monotonic()
    try:
        if query.reference is not None:
            if answer is not None:
                found = client.read_answered(query.reference, answer)
            else:
                found = client.read(query.reference)
            outcome = QueryOutcome(resources=[found] if found else [], pages=1)
        else:
            if query.continue_from is not None:
                result = client.collect(query.continue_from, query.resource_type, include_first=False)
            else:
                result = _search(client, query, answer)
            outcome = QueryOutcome(
                result.resources, result.included, pages=result.pages, scope_ignored=result.scope_ignored
            )
    except FhirError as exc:
        outcome = QueryOutcome(error=exc.reason)
    outcome.seconds = time.monotonic() - started
    return outcome


Unit = tuple[Query, ...]  # what one worker runs: one query, or the queries of one batch


def _units(client: FhirClient, queries: list[Query]) -> list[Unit]:
    """The queries as the worker pool runs them: the searches and reads in one batch where the
    server takes batches (at least two of them), every other query on its own."""
    batched = [q for q in queries if _batchable(q)] if client.batches else []
    if len(batched) < 2:
        return [(q,) for q in queries]
    keys = {q.key for q in batched}
    return [tuple(batched)] + [(q,) for q in queries if q.key not in keys]


def _batchable(query: Query) -> bool:
    """Whether the query can be a batch entry: a search, or a read of a reference to one resource."""
    if query.continue_from is not None:
        return False
    return query.reference is None or FhirClient.read_path(query.reference) is not None


def _batch_path(client: FhirClient, query: Query) -> str:
    """A batchable query as its batch entry's URL."""
    if query.reference is not None:
        return str(client.read_path(query.reference))
    return client.search_path(query.resource_type, query.params or {})


def _run_unit(
    client: FhirClient, unit: Unit, done: dict[str, QueryOutcome] | None = None
) -> dict[str, QueryOutcome] | None:
    """The outcomes of a unit's queries, each put in `done` as soon as it is known (those known by
    the deadline count even while the others still page on); None when the server did not take
    their batch (the caller then runs them one by one). A batch that failed otherwise (no answer,
    out of time, 401, 429…) fails each of its queries the same way."""
    done = {} if done is None else done
    if len(unit) == 1:
        done[unit[0].key] = _run(client, unit[0])
        return done
    started = time.monotonic()
    try:
        answers = client.batch([_batch_path(client, q) for q in unit])
    except BatchRefused as exc:
        log.info("a batch of %d queries was not taken (%s); asking one by one", len(unit), exc.reason)
        return None
    except FhirError as exc:
        for query in unit:
            done[query.key] = QueryOutcome(error=exc.reason, seconds=time.monotonic() - started)
        return done
    answered = sorted(zip(unit, answers, strict=True), key=lambda pair: pair[1].needs_more_requests)
    for query, answer in answered:
        outcome = _run(client, query, answer)
        outcome.seconds = time.monotonic() - started
        done[query.key] = outcome
    return done


class ServerSlots:
    """How many queries each FHIR server (origin) has on the worker pool, across all calls, capped."""

    def __init__(self, per_server: int) -> None:
        self.per_server = per_server
        self._busy: dict[str, int] = {}
        self._condition = threading.Condition()

    def acquire(self, server: str, deadline: float) -> bool:
        """Take one of the server's slots, waiting until `deadline` at most."""
        with self._condition:
            while self._busy.get(server, 0) >= self.per_server:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
            self._busy[server] = self._busy.get(server, 0) + 1
            return True

    def release(self, server: str) -> None:
        with self._condition:
            self._busy[server] -= 1
            if not self._busy[server]:
                del self._busy[server]
            self._condition.notify_all()


class QueryPool:
    """The shared worker pool as one call may use it: its fair share, within its deadline."""

    def __init__(
        self,
        executor: Executor | None,
        per_call: int = MAX_CONCURRENT_PER_CALL,
        per_server: int = MAX_CONCURRENT_PER_SERVER,
    ) -> None:
        self.executor = executor
        self.per_call = per_call
        self.slots = ServerSlots(per_server)

    def run(self, client: FhirClient, queries: list[Query], deadline: float) -> dict[str, QueryOutcome]:
        """Run queries in parallel (serially without an executor, or for a client held back, whose
        queries fail at once and must not wait for the server's slots), stopping at `deadline`; a
        batch the server did not take is run again query by query, within the same deadline."""
        units = _units(client, queries)
        if self.executor is None or client.refusal() is not None:
            outcomes: dict[str, QueryOutcome] = {}
            for unit in units:
                outcomes.update(_run_unit(client, unit) or {q.key: _run(client, q) for q in unit})
            return outcomes
        settled = self._run_units(self.executor, client, units, deadline)
        for unit in units:
            if len(unit) > 1 and settled[unit[0].key] is None:
                settled.update(self._run_units(self.executor, client, [(q,) for q in unit], deadline))
        return {q.key: settled[q.key] or QueryOutcome(error=OUT_OF_TIME) for q in queries}

    def _run_units(
        self, executor: Executor, client: FhirClient, units: list[Unit], deadline: float
    ) -> dict[str, QueryOutcome | None]:
        """Each unit on the pool, in parallel within the call's share and its server's slots: the
        outcome of every query (None for those of a batch the server did not take)."""
        server = str(client.origin)
        started: list[Future[dict[str, QueryOutcome] | None]] = []
        done: list[dict[str, QueryOutcome]] = [{} for _ in units]
        for unit in units:
            if not self._make_room(started, deadline) or not self.slots.acquire(server, deadline):
                break
            try:
                future = executor.submit(_run_unit, client, unit, done[len(started)])
            except RuntimeError:  # the pool is shutting down
                self.slots.release(server)
                break
            future.add_done_callback(lambda _: self.slots.release(server))
            started.append(future)
        wait(started, timeout=max(deadline - time.monotonic(), 0))
        settled: dict[str, QueryOutcome | None] = {}
        for index, unit in enumerate(units):
            settled.update(_settled(unit, started[index] if index < len(started) else None, done[index]))
        return settled

    def _make_room(self, futures: Iterable[Future[Any]], deadline: float) -> bool:
        """Wait until fewer than `per_call` of the call's queries are unfinished (False: deadline)."""
        while True:
            unfinished = [f for f in futures if not f.done()]
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if len(unfinished) < self.per_call:
                return True
            wait(unfinished, timeout=left, return_when=FIRST_COMPLETED)


def _settled(
    unit: Unit, future: Future[dict[str, QueryOutcome] | None] | None, done: dict[str, QueryOutcome]
) -> dict[str, QueryOutcome | None]:
    """A unit's outcomes at the deadline: its results (None for a batch not taken), those it had
    when it is still running, or why there are none."""
    if future is None or future.cancel():
        return {q.key: QueryOutcome(error=OUT_OF_TIME) for q in unit}
    if not future.done():
        return {q.key: done.get(q.key) or QueryOutcome(error=NO_ANSWER) for q in unit}
    outcomes = future.result()
    return {q.key: None for q in unit} if outcomes is None else dict(outcomes)


@dataclass(frozen=True)
class Owner:
    """Whose data a call may use: its patient, on the FHIR server the call names (None: none named;
    a link naming another server is another person's, whatever the id)."""

    patient_id: str
    server: str | None = None

    def own(self, query: Query, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The resources of a query's results that may be used: this patient's (the Patient itself,
        or a resource linked to it), or any of a type no patient owns (a Medication, an Organization)."""
        if query.resource_type == "Patient":
            return [r for r in resources if r.get("id") == self.patient_id]
        if query.resource_type in UNSCOPED_TYPES:
            return resources
        return [r for r in resources if belongs_to_patient(r, self.patient_id, False, self.server)]


NO_OWNER = Owner("")  # for reads of the types no patient owns


def _usable(query: Query, resources: list[dict[str, Any]], owner: Owner) -> list[dict[str, Any]] | None:
    """`Owner.own`, or None when a read was answered with someone else's resource (not evidence)."""
    kept = owner.own(query, resources)
    return None if query.reference is not None and len(kept) != len(resources) else kept


def _take_prefetched(query: Query, resources: list[dict[str, Any]], owner: Owner, data: GatheredData) -> None:
    """A prefetched searchset, kept as its query's results would be: the patient's matches and the
    Medications/Organizations it includes; another patient's resource is dropped, never evidence."""
    matches = [r for r in resources if r["resourceType"] == query.resource_type]
    kept = owner.own(query, matches)
    if len(kept) != len(matches):
        log.warning(
            "prefetch %s: dropped %d resources of other patients", query.key, len(matches) - len(kept)
        )
    included = [r for r in resources if r["resourceType"] in INCLUDED_TYPES]
    for resource in kept + included:
        data.resources.setdefault(resource["resourceType"], []).append(resource)


def _referenced(
    resources: Iterable[Mapping[str, Any]], element: str, known: set[str], server: str | None = None
) -> list[str]:
    """`Type/id` of what the resources' `element` references and `known` lacks; with `server`, a
    reference written as another server's URL is left out (that server's resource, not this one's)."""
    refs: list[str] = []
    for resource in resources:
        values = resource.get(element)
        for value in values if isinstance(values, list) else [values]:
            parsed = parse_reference(value)
            if parsed is None or not on_server(parsed, server):
                continue
            tail = parsed.local
            if tail not in known and tail not in refs:
                refs.append(tail)
    return refs[:MAX_REFERENCE_READS]


class DataGatherer:
    """Resolves prefetch and runs the query plan for one hook call.

    With `terminology`, the pain scores are searched on their own and by time (score_window.py):
    the recent ones with the other searches, then the trial's window or the newest older page only
    when the recent ones do not answer what the policies read. Without it, one Observation search."""

    def __init__(
        self,
        executor: Executor | None,
        observation_codes: list[tuple[str, str]],
        per_call: int = MAX_CONCURRENT_PER_CALL,
        per_server: int = MAX_CONCURRENT_PER_SERVER,
        cache: PatientDataCache | None = None,
        terminology: Terminology | None = None,
    ) -> None:
        self.pool = QueryPool(executor, per_call, per_server)
        self.cache = cache
        self._terminology = terminology
        self._pain_codes = policy_pain_codes(terminology) if terminology is not None else frozenset()
        self._templates = clinical_templates(observation_codes, self._pain_codes)
        self._searches = _rendered(PATIENT, self._templates)

    @property
    def clinical_templates(self) -> dict[str, str]:
        """The clinical prefetch templates discovery declares (the same searches `gather` runs)."""
        return dict(self._templates)

    def gather(
        self,
        request: HookRequest,
        templates: Mapping[str, str],
        client: FhirClient | None,
        deadline: float,
        clinical: bool = True,
        scope: CacheScope | None = None,
        drafts: Sequence[Mapping[str, Any]] = (),
    ) -> GatheredData:
        """The call's data; with a `scope`, query answers are taken from and kept in the cache. The
        Medications the draft orders `drafts` name but do not hold are read with the chart's."""
        data = GatheredData({}, {}, {}, {})
        owner = Owner(request.context.patient_id, request.fhir.server)
        plan: list[Query] = []
        for key, template in templates.items():
            rendered = render(template, request)
            if rendered is None:
                continue
            query = query_from_url(key, rendered, required=True)
            given = interpret(request.prefetch, key)
            if given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                _take_prefetched(query, given.resources, owner, data)
                if given.has_more_pages and given.bundle is not None:
                    plan.append(Query(f"{key}:next", query.resource_type, continue_from=given.bundle))
            elif client is None:
                reason = given.reason or "not prefetched, and the request has no fhirServer"
                data.required_missing[key] = reason
            else:
                plan.append(query)
        if clinical:
            plan += self._clinical_plan(request, client, data, owner)
        if client is not None and plan:
            outcomes = self._outcomes(client, plan, deadline, scope, owner)
            self._absorb(plan, outcomes, owner, data)
            self._complete_pain_scores(client, plan, outcomes, owner, data, deadline, scope)
        if client is not None:
            self._follow_references(client, data, deadline, scope, drafts, owner.server)
        return data

    def _outcomes(
        self,
        client: FhirClient,
        plan: list[Query],
        deadline: float,
        scope: CacheScope | None,
        owner: Owner,
    ) -> dict[str, QueryOutcome]:
        """The plan's outcomes: cached answers where the cache has them, the rest queried (and
        their successful answers kept). The remaining pages of a prefetch are never cached."""
        if self.cache is None or scope is None:
            return self.pool.run(client, plan, deadline)
        wanted = {q.key: _cache_query(q) for q in plan if q.continue_from is None}
        cached = {
            key: outcome
            for key, answer in self.cache.lookup(scope, wanted, deadline).items()
            if (outcome := _from_answer(answer)) is not None
        }
        for query in plan:
            if query.key in wanted:
                observe_cache(query.resource_type, hit=query.key in cached)
        to_run = [q for q in plan if q.key not in cached]
        outcomes = self.pool.run(client, to_run, deadline) if to_run else {}
        fresh = [
            (wanted[q.key], answer)
            for q in to_run
            if q.key in wanted and (answer := _answer_of(q, outcomes[q.key], owner)) is not None
        ]
        self.cache.keep(scope, fresh, deadline)
        return {**outcomes, **cached}

    def _clinical_plan(
        self, request: HookRequest, client: FhirClient | None, data: GatheredData, owner: Owner
    ) -> list[Query]:
        """Take what the EHR prefetched for each clinical key; the searches still to run (a key
        absent or failed, or the remaining pages of a prefetched searchset)."""
        plan: list[Query] = []
        patient_id = request.context.patient_id
        for key, query in _for_patient(self._searches, patient_id):
            given = interpret(request.prefetch, key)
            if key == PAIN_KEY and self._pain_prefetched_before(request, given):
                continue
            if key == PAIN_KEY and given.has_more_pages:
                given = Prefetched(PrefetchState.ABSENT)  # one page of many: searched by time instead
            if key == PAIN_KEY and given.state not in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                query = replace(query, params=within(query.params or {}, f"ge{fhir_instant(self._since())}"))
            if given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                _take_prefetched(query, given.resources, owner, data)
                if given.has_more_pages and given.bundle is not None:
                    plan.append(Query(f"{query.key}:next", query.resource_type, continue_from=given.bundle))
            elif client is None:
                data.unavailable[query.resource_type] = given.reason or "the EHR gave no FHIR server address"
            else:
                plan.append(query)
        return plan

    @staticmethod
    def _since() -> datetime:
        return recent_since(datetime.now(UTC))

    def _pain_prefetched_before(self, request: HookRequest, given: Prefetched) -> bool:
        """`painScores` not prefetched, but `observations` by the template of earlier versions, which
        held the pain scores too: they are all there (with its `next` pages), not searched again."""
        if given.state is not PrefetchState.ABSENT:
            return False
        earlier = interpret(request.prefetch, "observations")
        return earlier.state is PrefetchState.PROVIDED and any(
            is_pain_score(r, self._pain_codes) for r in earlier.resources
        )

    def _complete_pain_scores(
        self,
        client: FhirClient,
        plan: list[Query],
        outcomes: Mapping[str, QueryOutcome],
        owner: Owner,
        data: GatheredData,
        deadline: float,
        scope: CacheScope | None,
    ) -> None:
        """The one more round the recent pain scores may need: the most recent trial's window when
        it reaches back before them, the newest older scores when none of them is usable."""
        recent = next((q for q in plan if q.key.endswith(f":{PAIN_KEY}") and q.params), None)
        if recent is None or recent.params is None or self._terminology is None:
            return
        if outcomes[recent.key].error is not None or "Procedure" in data.unavailable:
            return  # what is missing is reported as such (the trial cannot be known without Procedures)
        params = {k: v for k, v in recent.params.items() if k != "date"}
        since = since_of(recent.params)
        mine = owner.own(recent, outcomes[recent.key].resources)
        pain = [r for r in mine if is_pain_score(r, self._pain_codes)]
        window, older = missing_windows(owner.patient_id, data.resources, pain, since, self._terminology)
        more: list[Query] = []
        if window is not None:
            bounds = (f"ge{fhir_instant(window[0])}", f"le{fhir_instant(window[1])}")
            more.append(replace(recent, key=f"{recent.key}:trial", params=within(params, *bounds)))
        if older:
            older_params = older_newest_first(params, since)
            more.append(replace(recent, key=f"{recent.key}:older", params=older_params, first_page=True))
        if not more:
            return
        found = self._outcomes(client, more, deadline, scope, owner)
        known = known_ids(data.resources.get("Observation", []))
        for outcome in found.values():
            outcome.resources = without_known(outcome.resources, known)
        self._absorb(more, found, owner, data)

    @staticmethod
    def _absorb(
        plan: list[Query], outcomes: Mapping[str, QueryOutcome], owner: Owner, data: GatheredData
    ) -> None:
        for query in plan:
            outcome = outcomes[query.key]
            data.timings[query.key] = outcome.seconds
            data.pages[query.key] = outcome.pages
            usable = _usable(query, outcome.resources, owner)
            error = outcome.error or (OTHER_PATIENT if usable is None else None)
            observe_fhir_query(query.resource_type, outcome.seconds, failed=error is not None)
            if error is not None or usable is None:
                log.warning("%s query failed: %s", query.key, error)
                if query.required:
                    data.required_missing[query.key] = error
                else:
                    data.unavailable.setdefault(query.resource_type, error)
                continue
            kept = usable
            if outcome.scope_ignored:
                log.log(
                    logging.WARNING if len(kept) != len(outcome.resources) else logging.INFO,
                    "%s: the server ignored %s; kept %d of %d resources by their subject",
                    query.key,
                    ", ".join(outcome.scope_ignored),
                    len(kept),
                    len(outcome.resources),
                )
            elif len(kept) != len(outcome.resources):
                log.warning(
                    "%s: dropped %d resources of other patients",
                    query.key,
                    len(outcome.resources) - len(kept),
                )
            for resource in kept + [r for r in outcome.included if r.get("resourceType") in INCLUDED_TYPES]:
                data.resources.setdefault(resource["resourceType"], []).append(resource)

    def _follow_references(
        self,
        client: FhirClient,
        data: GatheredData,
        deadline: float,
        scope: CacheScope | None,
        drafts: Sequence[Mapping[str, Any]],
        server: str | None = None,
    ) -> None:
        """Read the payer Organizations and the Medications that the results reference, and the
        Medications the draft orders reference that are not among them (a resource named by another
        server's URL than the call's `server` is that server's: not read from this one)."""
        found = data.resources
        known = {f"{r.get('resourceType')}/{r.get('id')}" for rs in (*found.values(), drafts) for r in rs}
        drafted = [r for r in drafts if r.get("resourceType") == "MedicationRequest"]
        meds = found.get("MedicationRequest", []) + found.get("MedicationStatement", []) + drafted
        refs = [
            r
            for r in _referenced(found.get("Coverage", []), "payor", known, server)
            if r.startswith("Organization/")
        ]
        refs += [
            r for r in _referenced(meds, "medicationReference", known, server) if r.startswith("Medication/")
        ]
        reads = [Query(f"read:{ref}", ref.split("/")[0], reference=ref) for ref in refs]
        if reads:
            self._absorb(reads, self._outcomes(client, reads, deadline, scope, NO_OWNER), NO_OWNER, data)


def _cache_query(query: Query) -> tuple[str, str]:
    """A query as the cache keys it: its resource type, and its read reference or its exact
    parameters (sorted, so that the same search is the same key however it was written)."""
    if query.reference is not None:
        return query.resource_type, query.reference
    return query.resource_type, "?" + urlencode(sorted((query.params or {}).items()))


def _answer_of(query: Query, outcome: QueryOutcome, owner: Owner) -> Answer | None:
    """What the cache may keep of a query's outcome: only a success, only the patient's own
    resources (and the unscoped ones included); nothing of a read answered with another's."""
    kept = _usable(query, outcome.resources, owner) if outcome.error is None else None
    if kept is None:
        return None
    included = [r for r in outcome.included if r.get("resourceType") in INCLUDED_TYPES]
    return {
        "resources": kept,
        "included": included,
        "pages": outcome.pages,
        "scope_ignored": list(outcome.scope_ignored),
    }


def _from_answer(answer: Answer) -> QueryOutcome | None:
    """A cached answer as the query's outcome (None when it is not in the shape `_answer_of` keeps)."""
    resources, included = _resource_list(answer.get("resources")), _resource_list(answer.get("included"))
    if resources is None or included is None:
        return None
    pages = answer.get("pages")
    ignored = answer.get("scope_ignored")
    return QueryOutcome(
        resources,
        included,
        pages=pages if isinstance(pages, int) else 1,
        scope_ignored=tuple(str(p) for p in ignored) if isinstance(ignored, list) else (),
    )


def _resource_list(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    resources = [r for r in value if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    return resources if len(resources) == len(value) else None


def policy_observation_codes(terminology: Terminology) -> list[tuple[str, str]]:
    """The Observation codes the compiled policies read (LOINC), as (system, code)."""
    return observation_codes_from(terminology["observation-evidence"].codes.get("loinc", ()))


def policy_pain_codes(terminology: Terminology) -> frozenset[str]:
    """The pain-severity LOINC codes, searched on their own (`painScores`)."""
    return frozenset(terminology["pain-score"].codes.get("loinc", ()))


def policy_templates(terminology: Terminology) -> dict[str, str]:
    """The clinical prefetch templates of the compiled policies: what discovery declares."""
    return clinical_templates(policy_observation_codes(terminology), policy_pain_codes(terminology))


def observation_codes_from(loinc_codes: Iterable[str]) -> list[tuple[str, str]]:
    return [("http://loinc.org", code) for code in sorted(loinc_codes)]
