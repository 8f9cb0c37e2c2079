"""Getting the data a hook call needs: prefetch first, then parallel FHIR queries within a deadline.

The plan: the service's prefetch keys (Patient, Coverage, the payer Organizations), rendered from their
templates and queried only when the EHR did not prefetch them; the service's own Coverage search
includes its payers (`SEARCH_INCLUDES`: one request, as CRD's template, which includes nothing, cannot
say), and it never runs the payers' reverse chain itself (a server may be slow on, ignore or refuse
`_has`: review s18 R2-1..R2-3): what a prefetched Coverage names and no prefetch gave is read by
reference; then, only when a pump order is in
scope, the clinical searches the contract names, each also a prefetch template (`clinical_templates`,
generated from the codes the policies read) and searched only when the EHR did not prefetch it; all
of it at once on a bounded worker pool; then the resources those results reference and did not
include (the payer Organization, Medications). With a complete prefetch nothing is queried. Whatever
is not back by the deadline is reported as unavailable, with its reason, instead of being waited for.
Where the server takes FHIR batches (`fhir.batch`), the searches and reads of one round go as one
batch request (service/fhir/batch.py); a server that refuses it is asked one query at a time.
A key the EHR prefetched as page one of several (a `next` link) is read as if it were absent, by the
query the service would run for it, in the same round (`instead_of_pages`: one request at
`page_size`, not the EHR's `next` pages one round trip each), page one kept only if that query fails.
With no FHIR server, page one is taken and its kind is unavailable; of a required key, the key is
required and missing when page one lacks what the call needs of it (`_other_pages_needed`: any of
`coverage`, as another payer's Coverage may be on the next page; the Patient of `patient`; and
`_payers_missing`: an Organization a Coverage names as its payer by reference, of
`payerOrganizations`, when the payor's own identifier or display place no payer
(`routing.placed_by_its_words`), which is also lacking when not sent for such a payer, or, with a
server, when its read fails: `GatheredData.routing_missing`, required to route a pump order only).
The required keys' Bundle entries named by a `urn:` fullUrl are kept by it
(`GatheredData.bundle_local`: a payor may reference one).

How the queries run on the shared worker pool: service/fhir/query_pool.py; what they are:
service/fhir/queries.py.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from service.call_day import midday
from service.codes import Code
from service.fhir.cache import Answer, CacheScope, PatientDataCache
from service.fhir.client import FhirClient, count_of
from service.fhir.prefetch import Prefetched, PrefetchState, interpret, render
from service.fhir.queries import (
    OFFERED_OR_NONE,
    PATIENT,
    Query,
    clinical_templates,
    instead_of_pages,
    not_offered,
    policy_pain_codes,
    query_from_url,
    render_searches,
    searches_for_patient,
    trial_order_templates,
)
from service.fhir.query_pool import (
    MAX_CONCURRENT_PER_CALL,
    MAX_CONCURRENT_PER_SERVER,
    FhirUse,
    QueryOutcome,
    QueryPool,
    log_failures,
)
from service.fhir.score_window import (
    OLDER_RUNGS,
    PAIN_KEY,
    fhir_instant,
    is_pain_score,
    known_ids,
    missing_windows,
    newest_first,
    newest_settled,
    recent_since,
    since_of,
    unsettled,
    within,
    without_known,
)
from service.graphemes import whole
from service.hooks.models import HookRequest
from service.modifiers import may_carry
from service.observability import observe_cache
from service.references import on_server, parse_reference, patients_own
from service.request_log import redacted
from service.routing import Payer, placed_by_its_words, routed
from service.shapes import as_dict, as_str, dicts
from service.terminology import Terminology
from service.wording import listing

log = logging.getLogger(__name__)

MAX_REFERENCE_READS = 50
UNSCOPED_TYPES = ("Medication", "Organization", "Patient")
# What a search may bring along (`_include`): never a Patient, which only the patient's own read or
# prefetch key may give (a Coverage's payor can be a guarantor Patient, another person).
INCLUDED_TYPES = ("Medication", "Organization")
OTHER_PATIENT = "the FHIR server answered with another patient's resource"


@dataclass(frozen=True)
class GatheredData:
    """Everything fetched for one call, by resource type, with what could not be had and why."""

    resources: dict[str, list[dict[str, Any]]]
    unavailable: dict[str, str]
    required_missing: dict[str, str]
    timings: dict[str, float]
    pages: dict[str, int] = field(default_factory=dict)
    cached: list[tuple[str, str]] = field(default_factory=list)  # the queries looked for in the cache
    # whether what the EHR prefetched may carry a modifier extension (`HookRequest.may_carry_modifiers`)
    prefetch_may_carry: bool = True
    # of `resources`, those read from the FHIR server or the cache (the rest came in the request)
    fetched: list[dict[str, Any]] = field(default_factory=list)
    # of `fetched`, how many of each type came from the patient-data cache (an earlier call's query), not
    # from this call's (the audit row says which: review30b L4)
    from_cache: dict[str, int] = field(default_factory=dict)
    # the payers' key (`payerOrganizations`) lacking an Organization a Coverage names as its payer by
    # reference, whose own words do not place it (`placed_by_its_words`), with no server to read it from
    # or its read failed: required only to route an order to its payer's policy (a pump order:
    # service/pipeline.py, `_unobtainable`); a call of other orders is answered without the payer
    routing_missing: dict[str, str] = field(default_factory=dict)
    # the keys of `required_missing` and `routing_missing` the EHR sent in part (page one of several, no
    # server to read the rest from): the 412 says so (service/pipeline.py, `Unobtainable.sent_in_part`)
    sent_in_part: set[str] = field(default_factory=set)
    # the keys of `required_missing` and `routing_missing` the call was held back from asking its server
    # for (service/fhir/server_share.py; `QueryOutcome.not_asked`): the 412 says to call again in a
    # moment (service/pipeline.py, `Unobtainable.not_asked`)
    not_asked: set[str] = field(default_factory=set)
    # the keys of `routing_missing` whose every missing Organization is named by a server's URL, with no
    # fhirServer, whether not sent or sent in part: only prefetch helps, a fhirServer would not be read
    # for them (`_payers_missing`; service/pipeline.py, `Unobtainable.prefetch_only`)
    prefetch_only: set[str] = field(default_factory=set)
    # the entries of the required keys' Bundles that the EHR named by a `urn:uuid:`/`urn:oid:` fullUrl,
    # by it: what a Coverage's payor may reference (service/routing.py)
    bundle_local: dict[str, dict[str, Any]] = field(default_factory=dict)
    # where the call counts every query it makes (the FHIR query metric, the token outcome: `_spent`)
    use: FhirUse = field(default_factory=FhirUse, compare=False, repr=False)

    def may_carry_modifiers(self) -> bool:
        """Whether any of `resources` may carry a modifier extension (`modifiers.may_carry`): those
        read from the FHIR server or the cache are looked at, those the EHR prefetched only where the
        request's text may hold one (a large prefetch holds none: it is not written again to tell)."""
        return may_carry(self.resources if self.prefetch_may_carry else self.fetched)

    @property
    def patient(self) -> dict[str, Any] | None:
        return next(iter(self.resources.get("Patient", [])), None)

    @property
    def coverages(self) -> list[dict[str, Any]]:
        return self.resources.get("Coverage", [])


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
        return patients_own(resources, self.patient_id, False, self.server)


NO_OWNER = Owner("")  # for reads of the types no patient owns


def _spent(query: Query, outcome: QueryOutcome, data: GatheredData, failed: bool) -> None:
    """A query's requests counted where every query's are: its seconds and pages added to the call's
    timings under its key (a search asked again longer, `_read_on`'s rungs, is one key: each rung's
    are added, review28c), and counted where every query of the call is (`FhirUse.count`: one sample of
    the FHIR query metric each time, the token outcome)."""
    data.timings[query.key] = data.timings.get(query.key, 0.0) + outcome.seconds
    data.pages[query.key] = data.pages.get(query.key, 0) + outcome.pages
    data.use.count(query, outcome, failed, gathered=True)


def _usable(query: Query, resources: list[dict[str, Any]], owner: Owner) -> list[dict[str, Any]] | None:
    """`Owner.own`, or None when a read was answered with someone else's resource (not evidence)."""
    kept = owner.own(query, resources)
    return None if query.reference is not None and len(kept) != len(resources) else kept


def _pages_unread(key: str) -> str:
    """Why a key prefetched as page one of several is not whole: no FHIR server to read the rest from."""
    return f"prefetch '{key}' has more pages and the EHR gave no FHIR server to read them from"


def _page_one_only(key: str, lacking: str = "") -> str:
    """Why a required key prefetched as page one of several cannot be had (the 412's words: the EHR
    sent part of it, not none), with what page one lacks that the call needs (`lacking`); the key is
    flagged as sent in part (`GatheredData.sent_in_part`), which is what the 412 goes by."""
    sent = f"prefetch.{key} was sent as page one of several (its Bundle has a next link)"
    return f"{sent}{lacking}, and the EHR gave no FHIR server to read the other pages from"


def _other_pages_needed(query: Query, data: GatheredData) -> str | None:
    """What a required key prefetched as page one of several, with no FHIR server to read the rest
    from, lacks that the call needs ("" when it cannot be told: all of it), or None when page one is
    all the call needs. A read (`patient`: one resource) is whole when page one holds the resource
    read. A search's matches are never whole: another Coverage, another payer's, may be on the next
    page (inferno22 M1). (The payers' reverse chain is whole when page one holds every Organization
    routing needs: `DataGatherer.gather`, `_payers_missing`.)"""
    if query.reference is not None:
        return None if query.reference in _held(data, query.resource_type) else f", without {query.reference}"
    return ""


def _held(data: GatheredData, resource_type: str) -> set[str]:
    """`Type/id` of the resources of `resource_type` the call holds so far."""
    return {f"{r.get('resourceType')}/{r.get('id')}" for r in data.resources.get(resource_type, [])}


def _payers_unplaced(
    coverages: Sequence[Mapping[str, Any]],
    resource_type: str,
    have: set[str],
    payers: tuple[Payer, ...],
    today: date,
    now: datetime,
) -> list[tuple[str, dict[str, Any]]]:
    """Each payer of `resource_type` the Coverages routing routes for a call at `now` on `today`
    (`routing.routed`: a Coverage ended, cancelled or not yet begun beside one in force routes nowhere,
    review24c HIGH; the call's one Coverage, ended, routes as not active, by its payer: review24e) name
    by a reference `have` lacks and by no words of the payor's own that
    routing places (`placed_by_its_words`: contract §6 routes by the Organization's identifiers, then
    its name; the payor's own identifier or display stand in for them only when they name a payer of
    `payers`), by `Type/id`, with its payor: without that resource, who the payer is cannot be told (a
    payor named "GEHA Benefit Plan", or by its NAIC code, may be GEHA: review23b M4)."""
    return _unplaced_of(routed(coverages, today, now), resource_type, have, payers)


def _unplaced_of(
    routes: Sequence[Mapping[str, Any]],
    resource_type: str,
    have: set[str],
    payers: tuple[Payer, ...],
    server: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """`_payers_unplaced` of the Coverages `routes`, routed already (`routing.routed`), their references
    on `server` when given (another server's URL is not this one's resource)."""
    return [
        (reference, payor)
        for coverage in routes
        for payor in dicts(coverage.get("payor"))
        if not placed_by_its_words(payers, payor)
        for reference in _referenced([{"payor": payor}], "payor", have, server)
        if reference.startswith(f"{resource_type}/")
    ]


def _payers(named: Sequence[tuple[str, Mapping[str, Any]]], where: str | None = None) -> str:
    """The payers `_payers_unplaced` found, as a 412 names them: their references, and the payors' own
    words that routing did not place, if any; and `where` they are read from (`_only_read_at`), if
    given."""
    references = list(dict.fromkeys(reference for reference, _ in named))
    whose = "a Coverage's payer" if len(references) == 1 else "the Coverages' payers"
    words = list(dict.fromkeys(w for _, payor in named for w in _own_words(payor)))
    if words:
        whose += f", named {listing(words)}, which this service's payer routing does not know"
    if where:
        whose += f"; {where}"
    return f"{', '.join(references)} ({whose})"


def _payers_missing(
    data: GatheredData, key: str, named: Sequence[tuple[str, Mapping[str, Any]]], reason: str
) -> None:
    """The payers' `key` lacks what routing needs (`named`, `_payers_unplaced`), with no fhirServer, for
    `reason`: what the 412 says (`GatheredData.routing_missing`), whether the key was not sent or sent in
    part (its reason's to say, `sent_in_part` its flag); when every Organization lacking is named by a
    server's URL, read from that server alone (`_only_read_at`), only prefetch helps, whichever
    (`GatheredData.prefetch_only`: the 412 offers no fhirServer)."""
    data.routing_missing[key] = reason
    if _only_read_at(named) is not None:
        data.prefetch_only.add(key)


def _only_read_at(named: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
    """Where the payers `_payers_unplaced` found are read from, when every one is named by a server's URL
    (`_named_at_a_server`: read from that server alone, `_referenced`), as a 412 says it; None when one
    is named by a relative reference (a fhirServer would be read for it)."""
    bases = [_named_at_a_server(payor) for _, payor in named]
    if not all(bases):
        return None
    quoted = list(dict.fromkeys(_quoted(redacted(base)) for base in bases if base))  # not its user:password
    servers = "server" if len(quoted) == 1 else "servers"
    which = "it" if len({reference for reference, _ in named}) == 1 else "they"
    return f"named at {listing(quoted)}, the only {servers} {which} would be read from"


def _no_server_to_read(named: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Why the payers `_payers_unplaced` found cannot be had in a call with no fhirServer. A payor naming
    its Organization by a server's URL is read from that server only (`_referenced`: with any other as
    fhirServer it is left unread), so what helps is said: that Organization in the prefetch (review24c
    LOW 2: the 412 asked only for a fhirServer)."""
    said = f"the request has no fhirServer to read {_payers(named)} from"
    at: dict[str, list[str]] = {}  # each Organization named by a server's URL, at which servers
    for reference, payor in named:
        if (base := _named_at_a_server(payor)) is not None:
            at.setdefault(reference, []).append(_quoted(redacted(base)))  # not its user:password
    if not at:
        return said
    bases = listing(list(dict.fromkeys(base for bases in at.values() for base in bases)))
    if len(at) == 1 and len(named) == 1:
        return (
            f"{said}, and its payor names it at {bases}, the only server it would be read from: send that "
            "Organization in prefetch.payerOrganizations"
        )
    return (
        f"{said}, and {listing(list(at))} {'is' if len(at) == 1 else 'are'} named at {bases}, the only "
        f"{'server' if len(at) == 1 else 'servers'} read for {'it' if len(at) == 1 else 'them'}: send "
        f"{'it' if len(at) == 1 else 'them'} in prefetch.payerOrganizations"
    )


def _named_at_a_server(payor: Mapping[str, Any]) -> str | None:
    """The server a payor names its Organization at (an absolute reference's base), the only one it is
    read from (`_referenced`); None for a relative reference."""
    parsed = parse_reference(payor)
    return parsed.base if parsed is not None else None


def _own_words(payor: Mapping[str, Any]) -> list[str]:
    """What a payor says of its payer itself: its display, its identifier, each as the 412 quotes it
    (`_quoted`)."""
    words = []
    if display := as_str(payor.get("display")):
        words.append(f"'{_quoted(display)}'")
    identifier = as_dict(payor.get("identifier"))
    if (system := as_str(identifier.get("system"))) and (value := as_str(identifier.get("value"))):
        words.append(f"by identifier {_quoted(f'{system}|{value}')}")
    return words


QUOTED_MOST = 80  # characters of the EHR's own text an error quotes back


def _quoted(text: str) -> str:
    """The EHR's `text` as an error quotes it back: on one line, nothing unprintable, at most QUOTED_MOST
    characters (a display of 200,000 characters is not echoed whole: review24c MEDIUM), cut where it splits
    nothing a reader sees as one character (`graphemes.whole`, the cards' rule too): not between a letter
    and its accent (an `e` and U+0301 are one `é`: review24e LOW 5), nor inside a flag, an emoji and its
    skin tone or one joined of several (review27a L5)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(line) <= QUOTED_MOST:
        return line
    return f"{line[: whole(line, QUOTED_MOST - 1)].rstrip()}…"


def _read_answered(query: Query, given: Prefetched) -> Prefetched:
    """`given` as the answer of its key's read (`Patient/{{context.patientId}}`): a value holding
    resources but not the one read (another patient's record, one without an id, another type) is not
    what the read returns (CDS Hooks: prefetched data MUST be what the service would get by running
    the query), so it is taken as failed, as an OperationOutcome is: read from the EHR's FHIR server,
    else the 412 naming the key (review24 L4: it was dropped, the key counted as sent, and the call
    judged as if the patient had no record). A search's matches of other patients are dropped instead
    (`_take_prefetched`); nothing (null, an empty searchset) is the read finding none."""
    if query.reference is None or given.state != PrefetchState.PROVIDED or not given.resources:
        return given
    held = [f"{r['resourceType']}/{as_str(r.get('id')) or '(no id)'}" for r in given.resources]
    if query.reference in held:
        return given
    log.warning("prefetch %s: holds %d other resources, not the one read", query.key, len(held))
    named = [_quoted(h) for h in dict.fromkeys(held)]
    sent = listing(named[:3]) + (", among others" if len(named) > 3 else "")
    return Prefetched(
        PrefetchState.FAILED, reason=f"prefetch '{query.key}' holds {sent}, not {query.reference}"
    )


def _take_prefetched(query: Query, resources: list[dict[str, Any]], owner: Owner, data: GatheredData) -> None:
    """A prefetched searchset, kept as its query's results would be: the patient's matches (a payer
    search's Organizations, which no patient owns: all) and the Medications/Organizations it includes;
    another patient's resource is dropped, never evidence."""
    matches = [r for r in resources if r["resourceType"] == query.resource_type]
    kept = owner.own(query, matches)
    if len(kept) != len(matches):
        log.warning(
            "prefetch %s: dropped %d resources of other patients", query.key, len(matches) - len(kept)
        )
    brought = [t for t in INCLUDED_TYPES if t != query.resource_type]  # a payer search's are its matches
    included = [r for r in resources if r["resourceType"] in brought]
    for resource in kept + included:
        data.resources.setdefault(resource["resourceType"], []).append(resource)


# What the service's own search of a type includes (the template CRD gives for the key includes
# nothing): a Coverage's payer Organizations, so that they come in the same request (contract §6).
SEARCH_INCLUDES = {"Coverage": "Coverage:payor"}


def _including(query: Query) -> Query:
    """`query` as the service runs it: a search of a type of `SEARCH_INCLUDES` with its `_include`."""
    include = SEARCH_INCLUDES.get(query.resource_type)
    if include is None or query.params is None or "_include" in query.params:
        return query
    return replace(query, params={**query.params, "_include": include})


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
        trial_codes: Iterable[Code] = (),
        payers: tuple[Payer, ...] = (),
    ) -> None:
        self.pool = QueryPool(executor, per_call, per_server)
        # the routing table: which payors' own words place them (`_payers_unplaced`; none: every payor
        # named by reference needs its Organization)
        self._payers = payers
        self.cache = cache
        self._terminology = terminology
        self._pain_codes = policy_pain_codes(terminology) if terminology is not None else frozenset()
        self._templates = clinical_templates(observation_codes, self._pain_codes)
        self._searches = render_searches(PATIENT, self._templates)
        self._trial_templates = trial_order_templates(trial_codes)
        self._trial_searches = render_searches(PATIENT, self._trial_templates)

    def forget(self, scope: CacheScope | None, data: GatheredData) -> None:
        """Drop from the cache what `data`'s call looked for in it: the next call reads the chart
        again (`pipeline.forget_unsettled`)."""
        if self.cache is not None and scope is not None and data.cached:
            self.cache.forget(scope, data.cached)

    @property
    def clinical_templates(self) -> dict[str, str]:
        """The clinical prefetch templates discovery declares (the same searches `gather` runs)."""
        return dict(self._templates)

    @property
    def trial_templates(self) -> dict[str, str]:
        """The open-trial-orders prefetch templates the services placing orders declare (the searches
        `gather` runs with `trial_orders`); none when the catalog proposes no trial."""
        return dict(self._trial_templates)

    def gather(
        self,
        request: HookRequest,
        templates: Mapping[str, str],
        client: FhirClient | None,
        deadline: float,
        *,
        today: date,
        now: datetime | None = None,
        clinical: bool = True,
        scope: CacheScope | None = None,
        drafts: Sequence[Mapping[str, Any]] = (),
        trial_orders: bool = False,
        use: FhirUse | None = None,
        required: Collection[str] | None = None,
    ) -> GatheredData:
        """The call's data as of `today` and `now` (the call's date and instant, service/call_day.py;
        `now` None: midday of `today`; the recent pain scores
        are searched from it, see score_window.py); with a `scope`, query answers are taken from and
        kept in the cache. The Medications the draft orders `drafts` name but do not hold are read
        with the chart's. With `trial_orders` (and `clinical`), the patient's open trial orders too
        (`trial_templates`: prefetched, else two more searches in the same round), as ServiceRequests
        and DeviceRequests. Each query is counted in the call's `use` (`FhirUse`; None: its own). Of the
        `templates`, the keys in `required` (None: every one) are required (`GatheredData.required_missing`
        when neither prefetched nor readable); another is read as the clinical keys are, unavailable when
        it cannot be had (the registry's `ServiceDefinition.required_prefetch`)."""
        moment = now or midday(today)
        data = GatheredData(
            {}, {}, {}, {}, prefetch_may_carry=request.may_carry_modifiers, use=use or FhirUse()
        )
        owner = Owner(request.context.patient_id, request.fhir.server)
        plan: list[Query] = []
        paged: list[Query] = []  # required keys prefetched as page one of several, no server to read on
        unsent_payers: list[Query] = []  # the payers' key not prefetched, no server to read them from
        payers_key: str | None = None  # the payers' key: what a failed read of a payer routing needs fails
        for key, template in templates.items():
            rendered = render(template, request)
            if rendered is None:
                continue
            query = query_from_url(key, rendered, required=required is None or key in required)
            given = _read_answered(query, interpret(request.prefetch, key))
            if query.resource_type in INCLUDED_TYPES:
                payers_key = key
            if given.has_more_pages and client is not None and query.resource_type not in INCLUDED_TYPES:
                plan.append(instead_of_pages(_including(query), given.resources))
            elif given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                # (the payers' reverse chain, paged: never run by the service, what page one lacks of
                # what the Coverages name is read by reference, as when the key is absent)
                _take_prefetched(query, given.resources, owner, data)
                _note_bundle_local(given, data)
                if given.has_more_pages and client is None:
                    paged.append(query)
            elif query.resource_type in INCLUDED_TYPES:
                if client is None:
                    unsent_payers.append(query)
                continue  # the payers: included by the Coverage search, or read by reference
            elif client is None:
                reason = given.reason or "not prefetched, and the request has no fhirServer"
                if query.required:
                    data.required_missing[key] = reason
                else:
                    data.unavailable.setdefault(query.resource_type, reason)
            else:
                plan.append(_including(query))
        for query in paged:
            # page one of several and no server to read the rest from: what the call needs of the key
            # and page one lacks (a Coverage on another page is another payer's, never asked; the
            # Organization a payor names, `_payers_unplaced`: a payor contained, or whose own words
            # routing places, needs none, and any other Organization is of no use) cannot be had (412)
            if query.resource_type in INCLUDED_TYPES:
                if named := self._unplaced(data, query, today, moment):
                    lacking = f", without {_payers(named, _only_read_at(named))}"
                    _payers_missing(data, query.key, named, _page_one_only(query.key, lacking))
                    data.sent_in_part.add(query.key)
            elif query.required and (lacking := _other_pages_needed(query, data)) is not None:
                data.required_missing[query.key] = _page_one_only(query.key, lacking)
                data.sent_in_part.add(query.key)
        for query in unsent_payers:
            if named := self._unplaced(data, query, today, moment):
                _payers_missing(data, query.key, named, _no_server_to_read(named))
        if clinical:
            searches = self._searches + (self._trial_searches if trial_orders else [])
            plan += self._clinical_plan(request, client, data, owner, recent_since(today), searches)
        if client is not None and plan:
            outcomes = self._outcomes(client, plan, deadline, scope, owner, data)
            self._absorb(plan, outcomes, owner, data)
            self._complete_pain_scores(client, plan, outcomes, owner, data, deadline, scope)
        if client is not None:
            self._follow_references(
                client, data, deadline, scope, drafts, today, moment, owner.server, payers_key
            )
        return data

    def _unplaced(
        self, data: GatheredData, query: Query, today: date, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """`_payers_unplaced` of the payers' key `query`, given the call's data so far."""
        held = _held(data, query.resource_type)
        return _payers_unplaced(data.coverages, query.resource_type, held, self._payers, today, now)

    def _outcomes(
        self,
        client: FhirClient,
        plan: list[Query],
        deadline: float,
        scope: CacheScope | None,
        owner: Owner,
        data: GatheredData,
    ) -> dict[str, QueryOutcome]:
        """The plan's outcomes: cached answers where the cache has them, the rest queried (and
        their successful answers kept; each looked for noted in `data.cached`). A query run instead of
        a prefetch's `next` pages is the key's own, cached as such (an answer the EHR's page one then
        overrides, `_absorb`)."""
        if self.cache is None or scope is None:
            return self.pool.run(client, plan, deadline)
        wanted = {q.key: _cache_query(q) for q in plan}
        data.cached.extend(wanted.values())
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
        self,
        request: HookRequest,
        client: FhirClient | None,
        data: GatheredData,
        owner: Owner,
        recent_from: datetime,
        searches: list[tuple[str, Query]],
    ) -> list[Query]:
        """Take what the EHR prefetched for each key of `searches`; the searches still to run (a key
        absent or failed, or prefetched as page one of several: `instead_of_pages`; the pain scores from
        `recent_from`)."""
        plan: list[Query] = []
        patient_id = request.context.patient_id
        for key, query in searches_for_patient(searches, patient_id):
            given = interpret(request.prefetch, key)
            if key == PAIN_KEY and self._pain_prefetched_before(request, given, client):
                continue
            if key == PAIN_KEY:  # the recent ones, the rest in one more round if needed (score_window.py)
                query = replace(query, params=within(query.params or {}, f"ge{fhir_instant(recent_from)}"))
            if given.has_more_pages and client is not None:
                plan.append(instead_of_pages(query, given.resources))
            elif given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                _take_prefetched(query, given.resources, owner, data)
                if given.has_more_pages:
                    # page one of several and no server to read the rest from: judged on that page,
                    # what is on the others would be asked for as missing (CDS Hooks: follow `next`)
                    data.unavailable.setdefault(query.resource_type, _pages_unread(key))
            elif client is not None:
                plan.append(query)
            elif given.state is not PrefetchState.ABSENT or query.resource_type not in OFFERED_OR_NONE:
                reason = given.reason or "the EHR gave no FHIR server address"
                data.unavailable.setdefault(query.resource_type, reason)
            # (else a kind the EHR need not offer, not prefetched and no server to ask: it gives none)
        return plan

    def _pain_prefetched_before(
        self, request: HookRequest, given: Prefetched, client: FhirClient | None
    ) -> bool:
        """`painScores` not prefetched, but `observations` by the template of earlier versions, which
        held the pain scores too: they are all there, not searched again. Not when that prefetch is
        page one of several and a server can be asked: `observations` is then read by its own search,
        which leaves the pain scores to `painScores` (the two searches the service runs when neither
        key is prefetched, in one round)."""
        if given.state is not PrefetchState.ABSENT:
            return False
        earlier = interpret(request.prefetch, "observations")
        return (
            earlier.state is PrefetchState.PROVIDED
            and not (earlier.has_more_pages and client is not None)
            and any(is_pain_score(r, self._pain_codes) for r in earlier.resources)
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
        it reaches back before them, the newest page of all the scores when none of them is usable
        (read longer while it does not settle the newest usable score, `_read_on`)."""
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
            older_params = newest_first(params, len(mine))
            more.append(replace(recent, key=f"{recent.key}:older", params=older_params, first_page=True))
        if not more:
            return
        found = self._outcomes(client, more, deadline, scope, owner, data)
        if older:
            page = more[-1]
            more[-1], found[page.key] = self._read_on(
                client, page, found[page.key], (params, len(mine)), owner, data, deadline, scope
            )
        known = known_ids(data.resources.get("Observation", []))
        for outcome in found.values():
            outcome.resources = without_known(outcome.resources, known)
        self._absorb(more, found, owner, data)

    def _read_on(
        self,
        client: FhirClient,
        older: Query,
        outcome: QueryOutcome,
        searched: tuple[Mapping[str, Any], int],
        owner: Owner,
        data: GatheredData,
        deadline: float,
        scope: CacheScope | None,
    ) -> tuple[Query, QueryOutcome]:
        """The newest page of the scores (`older`, its `outcome`), asked again longer (`newest_first`'s
        rungs, of the pain-score search's parameters and the number of recent scores: `searched`) while
        it does not settle the most recent usable score (`newest_settled`: 50 scores of no use, off the
        scale or with no value, newer than it held none); past the longest, a failure (the scores
        could not be checked), never a page read as if it held all there is. An ordinary chart's first
        page settles it: no more is asked."""
        terminology = self._terminology
        assert terminology is not None  # the pain scores are searched by time only with it
        rung = 0
        while outcome.error is None:
            asked = count_of(older.params or {})
            page = [r for r in owner.own(older, outcome.resources) if is_pain_score(r, self._pain_codes)]
            if newest_settled(page, len(outcome.resources) < asked, terminology):
                break
            rung += 1
            if rung == OLDER_RUNGS:
                return older, replace(outcome, error=unsettled(asked))
            _spent(older, outcome, data, failed=False)  # its requests made, asked again longer
            older = replace(older, params=newest_first(*searched, rung))
            outcome = self._outcomes(client, [older], deadline, scope, owner, data)[older.key]
        return older, outcome

    @staticmethod
    def _absorb(
        plan: list[Query], outcomes: Mapping[str, QueryOutcome], owner: Owner, data: GatheredData
    ) -> None:
        failed: dict[str, list[str]] = {}  # the keys of the queries that failed, by reason: one line
        page_ones: list[Query] = []  # run instead of a prefetch's pages, and failed: its page one kept
        for query in plan:
            outcome = outcomes[query.key]
            usable = _usable(query, outcome.resources, owner)
            error = outcome.error or (OTHER_PATIENT if usable is None else None)
            if error is not None and query.instead_of is not None:
                page_ones.append(query)
            _spent(query, outcome, data, failed=error is not None)
            if outcome.error is not None and not_offered(query.resource_type, outcome.status):
                log.info("%s: the FHIR server does not offer it (%s); read as none", query.key, error)
                continue
            if error is not None or usable is None:
                failed.setdefault(str(error), []).append(query.key)
                if query.required:
                    data.required_missing[query.key] = error
                    if outcome.not_asked:
                        data.not_asked.add(query.key)
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
            fetched = kept + [r for r in outcome.included if r.get("resourceType") in INCLUDED_TYPES]
            if query.instead_of is not None and outcome.cached:
                fetched = _under_page_one(query, query.instead_of, fetched, owner, data)
            for resource in fetched:
                data.resources.setdefault(resource["resourceType"], []).append(resource)
                data.fetched.append(resource)
                if outcome.cached:
                    kind = resource["resourceType"]
                    data.from_cache[kind] = data.from_cache.get(kind, 0) + 1
        for query in page_ones:  # as a failed `next` page left it; once (another search may have it)
            known = known_ids(data.resources.get(query.resource_type, []))
            page = [r for r in query.instead_of or () if not _among(r, query.resource_type, known)]
            _take_prefetched(query, page, owner, data)
        log_failures(failed)

    def _follow_references(
        self,
        client: FhirClient,
        data: GatheredData,
        deadline: float,
        scope: CacheScope | None,
        drafts: Sequence[Mapping[str, Any]],
        today: date,
        now: datetime,
        server: str | None = None,
        payers_key: str | None = None,
    ) -> None:
        """Read the payer Organizations of the Coverages routing routes (`routing.routed`: 50 cancelled
        Coverages' first would leave out the one in force, review24e) and the Medications that the
        results reference, and the Medications the draft orders reference that are not among them (a
        resource named by another server's URL than the call's `server` is that server's: not read
        from this one). A payer routing
        needs (`_payers_unplaced`) whose read fails leaves `payers_key` missing, to route by; one the
        server does not hold (404, 410: FhirClient.read answers none) is not had, the record lacks it
        (never a 412, CRD §found-32), and the payor's own words are all there is."""
        found = data.resources
        known = {f"{r.get('resourceType')}/{r.get('id')}" for rs in (*found.values(), drafts) for r in rs}
        drafted = [r for r in drafts if r.get("resourceType") == "MedicationRequest"]
        meds = found.get("MedicationRequest", []) + found.get("MedicationStatement", []) + drafted
        routes = routed(found.get("Coverage", []), today, now)  # no other Coverage's payer is of use
        refs = [r for r in _referenced(routes, "payor", known, server) if r.startswith("Organization/")]
        refs += [
            r for r in _referenced(meds, "medicationReference", known, server) if r.startswith("Medication/")
        ]
        reads = [Query(f"read:{ref}", ref.split("/")[0], reference=ref) for ref in refs]
        if not reads:
            return
        needed = _unplaced_of(routes, "Organization", known, self._payers, server)
        outcomes = self._outcomes(client, reads, deadline, scope, NO_OWNER, data)
        self._absorb(reads, outcomes, NO_OWNER, data)
        failed = {ref: o for ref, _ in needed if (o := outcomes.get(f"read:{ref}")) and o.error}
        unread = [(ref, payor) for ref, payor in needed if ref in failed]
        if unread and payers_key is not None:
            first = failed[unread[0][0]]
            data.routing_missing[payers_key] = f"{first.error} reading {_payers(unread)}"
            if first.not_asked:
                data.not_asked.add(payers_key)


def _note_bundle_local(given: Prefetched, data: GatheredData) -> None:
    """Keep, by their `urn:` fullUrl, the entries of a prefetched Bundle that gather kept: a bundle-local
    reference names them (a Coverage's payor as `urn:uuid:…`, its Organization's entry: review23b L5)."""
    entries = as_dict(given.bundle).get("entry")
    local = [
        (url, as_dict(entry).get("resource"))
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(url := as_dict(entry).get("fullUrl"), str) and url.startswith("urn:")
    ]
    if local:
        kept = {id(r) for rs in data.resources.values() for r in rs}
        data.bundle_local.update((url, resource) for url, resource in local if id(resource) in kept)


def _under_page_one(
    query: Query,
    page_one: Sequence[dict[str, Any]],
    cached: list[dict[str, Any]],
    owner: Owner,
    data: GatheredData,
) -> list[dict[str, Any]]:
    """A cached answer to a query run instead of a prefetch's `next` pages (its resources and those it
    includes), under the EHR's page one, which is newer (the prefetch wins, service/fhir/cache.py): page
    one taken as the EHR sent it; returned, the cached resources page one does not hold (by type and id)."""
    _take_prefetched(query, list(page_one), owner, data)
    sent = {(r["resourceType"], r.get("id")) for r in page_one}
    return [r for r in cached if (r["resourceType"], r.get("id")) not in sent]


def _among(resource: Mapping[str, Any], resource_type: str, ids: set[str]) -> bool:
    """Whether `resource` is of `resource_type` and its id one of `ids`."""
    return resource["resourceType"] == resource_type and resource.get("id") in ids


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
        cached=True,
    )


def _resource_list(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    resources = [r for r in value if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    return resources if len(resources) == len(value) else None
