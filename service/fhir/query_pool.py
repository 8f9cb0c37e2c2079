"""Running a call's queries on the process's shared FHIR worker pool: in parallel, as one batch
where the server takes batches, within the call's deadline and its fair share.

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
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field, replace
from typing import Any

from service.fhir.batch import EntryAnswer
from service.fhir.client import (
    OUT_OF_TIME,
    BatchRefused,
    CutAtDeadline,
    FhirClient,
    FhirError,
    NotAsked,
    NotSent,
    SearchResult,
)
from service.fhir.outbound import NO_ANSWER
from service.fhir.queries import Query, not_offered
from service.observability import observe_fhir_query

log = logging.getLogger(__name__)

MAX_CONCURRENT_PER_CALL = 8
MAX_CONCURRENT_PER_SERVER = 8
REFUSED_TOKEN = (401, 403)  # what a FHIR server answers a bearer token it does not accept with


@dataclass
class QueryOutcome:
    resources: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    pages: int = 0
    scope_ignored: tuple[str, ...] = ()
    status: int | None = None  # the HTTP status of a failed query, when the server answered one
    cached: bool = False  # the answer an earlier call's query got, from the patient-data cache
    not_asked: bool = False  # failed unsent: the call was held back from its server (client.NotAsked)
    # failed unsent: it got no worker or server slot before the call's deadline (`never_started`), or the
    # deadline had passed when its first request was to go (client.NotSent)
    never_started: bool = False
    # no answer: still going at the call's deadline, cut there (client.CutAtDeadline, or still running on its
    # worker when the call's time was up: `_settled`); `seconds` is its time until the cut (review30g L3)
    cut: bool = False

    @property
    def sent(self) -> bool:
        """Whether the query's request went to the EHR's FHIR server (the call's bearer token with it):
        not for an answer from the patient-data cache, a query the call was held back from, or one that
        never started before the deadline."""
        return not (self.cached or self.not_asked or self.never_started)


def never_started() -> QueryOutcome:
    """The outcome of a query that got no worker or server slot before the call's deadline: nothing was
    sent (review30b L2: it counted the token `used`)."""
    return QueryOutcome(error=OUT_OF_TIME, never_started=True)


def _asked_in_batch(outcomes: Mapping[str, QueryOutcome]) -> dict[str, QueryOutcome]:
    """The outcomes of a refused batch's queries asked one by one (`QueryPool.run`): each had gone to the
    server in the batch, with the token (`BatchRefused`: the server answered it), so one that then never
    started, or whose own first request found the time up, failed out of time but was sent, as a sorted
    search asked again unsorted is (`_search`); it is no latency sample (its time was the batch's, whose
    answer it did not take). Else a call whose batch a server refused as its time ran out recorded
    `not-used` (review30g)."""
    return {
        key: replace(o, never_started=False, seconds=0.0) if o.never_started else o
        for key, o in outcomes.items()
    }


@dataclass(frozen=True)
class FhirReads:
    """By type, the resources a call's queries outside the gather answered (`FhirUse`), as the audit row's
    `fhir_access.resources` lists them beside the gathered data's (service/audit_entry.py `_fhir_access`):
    carried from the call to its record in one value (CallData, HookOutcome), whatever is tallied."""

    # all they answered (the open orders, the dispatched and booked orders, an order's Device, the hook's
    # Encounter): review30b L4, they were in no row's `resources`
    answered: Mapping[str, int] = field(default_factory=dict)
    # of those, the hook's focal resources read (its Encounter, the dispatched and booked orders):
    # CRDMetricData's resources are what was accessed "other than the focal resources" (review30i)
    focal: Mapping[str, int] = field(default_factory=dict)
    # of those, what the call did not use: the open-order searches' answers that are no open order of the
    # patient's (another patient's, when the server ignores `patient`; one not draft or active): review30i c
    unused: Mapping[str, int] = field(default_factory=dict)


class FhirUse:
    """How one call's queries to the EHR's FHIR server went, each counted here whatever asked it (the
    open-order searches, the dispatched orders' reads, the hook's Encounter, gather's queries): one sample
    of the FHIR query metric each, and whether the call's bearer token was sent and refused, which the
    audit's token outcome (CRD metrics' tokenUse) records. The open-order searches were left out of it
    (review29a L4): an encounter call refused only there recorded `not-used`. An answer from the
    patient-data cache, a query the call was held back from (`QueryOutcome.not_asked`) and one that never
    started before the deadline (`QueryOutcome.never_started`, client.NotSent) sent nothing
    (`QueryOutcome.sent`): none is a latency sample of the metric, only its failure when it failed
    (review30b L1: a held-back query's few microseconds were one, so the metric counted more requests than
    were sent), and none uses the token (review30b L2: one that never started counted it `used`). The
    call's route makes its FhirUse, so that a call answered 500 after its queries records what they did
    (review30b L3: it recorded `not-used`). A status that says the EHR does not offer a kind of record the
    contract does not ask of it (`queries.not_offered`: a 403 on the QuestionnaireResponse search, read as
    none) refuses no token: the call read it as the EHR's answer, and every call to such an EHR recorded
    `rejected` (review30b). Whether the token went is the fact itself, the client's word (`watch`): set as
    a request carrying it is sent, so a call that failed after its requests went (a bug raised on a pool
    worker, which fails the call 500 before its round is counted) records `used` (review30g L1: it
    recorded `not-used`); the queries' outcomes (`count`) say it too, for stand-ins and calls not
    watched."""

    def __init__(self) -> None:
        self.token_went = threading.Event()  # set by a watched client as it sends the token
        self.sent = False
        self.refused = False
        # by type, what this call's queries outside the gather answered, of it the hook's focal resources,
        # and what the call did not use (`FhirReads`, `reads`)
        self.answered: dict[str, int] = {}
        self.focal: dict[str, int] = {}
        self.unused: dict[str, int] = {}

    def watch(self, client: FhirClient | None) -> None:
        """Let the call's `client` (and its `bounded` copies made after) set `token_went` as it sends a
        request with the token (FhirClient._exchange)."""
        if client is not None:
            client.token_went = self.token_went

    def count(
        self,
        query: Query,
        outcome: QueryOutcome,
        failed: bool | None = None,
        gathered: bool = False,
        focal: bool = False,
    ) -> None:
        """Count one query's `outcome` (`failed`, for the metric: its error, unless the caller knows more,
        such as an answer of another patient's resource; `gathered`: the gather's, whose resources its
        data lists, else those it answered are tallied in `answered`, and in `focal` too when they are the
        hook's focal resources)."""
        sent = outcome.sent
        if sent and not gathered and outcome.error is None:
            for resource in outcome.resources:
                if isinstance(kind := resource.get("resourceType"), str):
                    self.answered[kind] = self.answered.get(kind, 0) + 1
                    if focal:
                        self.focal[kind] = self.focal.get(kind, 0) + 1
        observe_fhir_query(
            query.resource_type,
            outcome.seconds if sent else 0.0,  # (no latency sample: `observe_fhir_query`)
            outcome.error is not None if failed is None else failed,
            cut=outcome.cut,
        )
        if not sent:
            return
        self.sent = True
        refused = outcome.status in REFUSED_TOKEN and not not_offered(query.resource_type, outcome.status)
        self.refused = self.refused or refused

    def not_used(self, resource: Mapping[str, Any]) -> None:
        """Note that a resource a query outside the gather answered (`count`) was not used: an open-order
        search's answer that is no open order of the patient's (service/call_orders.py `_chart`)."""
        if isinstance(kind := resource.get("resourceType"), str):
            self.unused[kind] = self.unused.get(kind, 0) + 1

    @property
    def reads(self) -> FhirReads:
        """What the call's queries outside the gather answered so far, by type (`FhirReads`)."""
        return FhirReads(dict(self.answered), dict(self.focal), dict(self.unused))

    def read(self, client: FhirClient, reference: str, focal: bool = False) -> dict[str, Any] | None:
        """`client.read(reference)` for a read the call makes outside the worker pool (an order's Device,
        a booked Appointment's order), run and counted as a query is: the resource, None when the server
        does not have it, else the FhirError its read failed with (NotAsked for one held back); `focal`:
        the hook's focal resource (a booked order), as `count` tallies it."""
        query = Query(reference, reference.partition("/")[0], reference=reference)
        outcome = _run(client, query)
        self.count(query, outcome, focal=focal)
        if outcome.error is not None:
            raise (NotAsked if outcome.not_asked else FhirError)(outcome.error, outcome.status)
        return outcome.resources[0] if outcome.resources else None

    @property
    def token_use(self) -> str:
        """CRD metrics' tokenUse: `rejected` when the server refused the token on any query, `used` when
        a request carrying it went (or any query counted was sent), else `not-used`."""
        return "rejected" if self.refused else "used" if self.sent or self.token_went.is_set() else "not-used"


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
        try:
            return client.search(query.resource_type, params)
        except NotSent as unsent:  # the refused search went with the token: this one is not its first
            raise FhirError(unsent.reason, unsent.status) from None


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
            result = _search(client, query, answer)
            outcome = QueryOutcome(
                result.resources, result.included, pages=result.pages, scope_ignored=result.scope_ignored
            )
    except FhirError as exc:
        outcome = QueryOutcome(
            error=exc.reason,
            status=exc.status,
            not_asked=isinstance(exc, NotAsked),
            never_started=isinstance(exc, NotSent),
            cut=isinstance(exc, CutAtDeadline),
        )
    outcome.seconds = time.monotonic() - started
    return outcome


Unit = tuple[Query, ...]  # what one worker runs: one query, or the queries of one batch


@dataclass
class _Progress:
    """How far one unit run on the pool got: its queries' outcomes as each is known, and when its worker
    began it (what a unit still running at the call's deadline is timed from: `_settled`)."""

    done: dict[str, QueryOutcome] = field(default_factory=dict)
    began: float | None = None


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
    return query.reference is None or FhirClient.read_path(query.reference) is not None


def _batch_path(client: FhirClient, query: Query) -> str:
    """A batchable query as its batch entry's URL."""
    if query.reference is not None:
        return str(client.read_path(query.reference))
    return client.search_path(query.resource_type, query.params or {})


def _run_unit(
    client: FhirClient, unit: Unit, progress: _Progress | None = None
) -> dict[str, QueryOutcome] | None:
    """The outcomes of a unit's queries, each put in `progress.done` as soon as it is known (those known
    by the deadline count even while the others still page on); None when the server did not take
    their batch (the caller then runs them one by one). A batch that failed otherwise (no answer,
    out of time, 401, 429…) fails each of its queries the same way."""
    progress = _Progress() if progress is None else progress
    progress.began = time.monotonic()
    done = progress.done
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
            done[query.key] = QueryOutcome(
                error=exc.reason,
                seconds=time.monotonic() - started,
                status=exc.status,
                not_asked=isinstance(exc, NotAsked),
                never_started=isinstance(exc, NotSent),
                cut=isinstance(exc, CutAtDeadline),
            )
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
                outcomes.update(
                    _run_unit(client, unit) or _asked_in_batch({q.key: _run(client, q) for q in unit})
                )
            return outcomes
        settled = self._run_units(self.executor, client, units, deadline)
        for unit in units:
            if len(unit) > 1 and settled[unit[0].key] is None:
                alone = self._run_units(self.executor, client, [(q,) for q in unit], deadline)
                settled.update(_asked_in_batch({key: o for key, o in alone.items() if o is not None}))
        return {q.key: settled[q.key] or never_started() for q in queries}

    def _run_units(
        self, executor: Executor, client: FhirClient, units: list[Unit], deadline: float
    ) -> dict[str, QueryOutcome | None]:
        """Each unit on the pool, in parallel within the call's share and its server's slots: the
        outcome of every query (None for those of a batch the server did not take)."""
        server = str(client.origin)
        started: list[Future[dict[str, QueryOutcome] | None]] = []
        done = [_Progress() for _ in units]
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


def log_failures(failed: Mapping[str, list[str]]) -> None:
    """One warning per reason a round of queries failed for, naming its queries (`failed`: reason →
    query keys): a server that is down fails every query of a round alike."""
    for error, keys in failed.items():
        log.warning("%s %s failed: %s", ", ".join(keys), "query" if len(keys) == 1 else "queries", error)


def _settled(
    unit: Unit, future: Future[dict[str, QueryOutcome] | None] | None, progress: _Progress
) -> dict[str, QueryOutcome | None]:
    """A unit's outcomes at the deadline: its results (None for a batch not taken), those it had
    when it is still running (the others cut there, timed from when its worker began it), or why there
    are none."""
    if future is None or future.cancel():
        return {q.key: never_started() for q in unit}
    if not future.done():
        began = progress.began
        until_cut = time.monotonic() - began if began is not None else 0.0
        return {
            q.key: progress.done.get(q.key) or QueryOutcome(error=NO_ANSWER, seconds=until_cut, cut=True)
            for q in unit
        }
    outcomes = future.result()
    return {q.key: None for q in unit} if outcomes is None else dict(outcomes)
