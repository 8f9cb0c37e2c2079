"""Getting the data a hook call needs: prefetch first, then parallel FHIR queries within a deadline.

The plan: the service's prefetch keys (Patient, Coverage), rendered from their templates and
queried only when the EHR did not prefetch them; then, only when a pump order is in scope, the
clinical searches the contract names, all at once on a bounded worker pool; then the resources
those results reference (the payer Organization, Medications). Whatever is not back by the
deadline is reported as unavailable, with its reason, instead of being waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from service.codes import ASSESSMENT_SYSTEM
from service.fhir.client import FhirClient, FhirError
from service.fhir.prefetch import PrefetchState, interpret, render
from service.hooks.models import HookRequest
from service.references import belongs_to_patient, local_reference

log = logging.getLogger(__name__)

MAX_REFERENCE_READS = 50
UNSCOPED_TYPES = ("Medication", "Organization", "Patient")


@dataclass(frozen=True)
class Query:
    """One FHIR interaction: a search (`params`), a read (`reference`), or the remaining pages
    of a prefetched searchset (`continue_from`). `required` data missing means HTTP 412."""

    key: str
    resource_type: str
    params: Mapping[str, str] | None = None
    reference: str | None = None
    continue_from: Mapping[str, Any] | None = None
    required: bool = False


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


def clinical_queries(patient_id: str, observation_codes: Iterable[tuple[str, str]]) -> list[Query]:
    """The searches the clinical data contract needs (section 3), scoped to one patient."""
    codes = ",".join([f"{system}|{code}" for system, code in observation_codes] + [f"{ASSESSMENT_SYSTEM}|"])
    scope = {"patient": patient_id}
    return [
        Query("Condition", "Condition", scope),
        Query(
            "MedicationRequest", "MedicationRequest", {**scope, "_include": "MedicationRequest:medication"}
        ),
        Query(
            "MedicationStatement",
            "MedicationStatement",
            {**scope, "_include": "MedicationStatement:medication"},
        ),
        Query("Procedure", "Procedure", scope),
        Query("Observation", "Observation", {**scope, "code": codes}),
        Query("Device", "Device", scope),
        Query("AllergyIntolerance", "AllergyIntolerance", scope),
        Query("QuestionnaireResponse", "QuestionnaireResponse", scope),
    ]


def _run(client: FhirClient, query: Query) -> QueryOutcome:
    started = time.monotonic()
    try:
        if query.reference is not None:
            found = client.read(query.reference)
            outcome = QueryOutcome(resources=[found] if found else [], pages=1)
        else:
            if query.continue_from is not None:
                result = client.collect(query.continue_from, query.resource_type, include_first=False)
            else:
                result = client.search(query.resource_type, query.params or {})
            outcome = QueryOutcome(
                result.resources, result.included, pages=result.pages, scope_ignored=result.scope_ignored
            )
    except FhirError as exc:
        outcome = QueryOutcome(error=exc.reason)
    outcome.seconds = time.monotonic() - started
    return outcome


def run_queries(
    client: FhirClient, queries: list[Query], executor: Executor | None, deadline: float
) -> dict[str, QueryOutcome]:
    """Run queries in parallel on `executor` (serially when None), stopping at `deadline`."""
    if executor is None:
        return {q.key: _run(client, q) for q in queries}
    futures: dict[str, Future[QueryOutcome]] = {q.key: executor.submit(_run, client, q) for q in queries}
    wait(futures.values(), timeout=max(deadline - time.monotonic(), 0))
    results = {}
    for key, future in futures.items():
        if future.done():
            results[key] = future.result()
        else:
            future.cancel()
            results[key] = QueryOutcome(error="no answer within the hook's time budget")
    return results


def _referenced(resources: Iterable[Mapping[str, Any]], element: str, known: set[str]) -> list[str]:
    refs: list[str] = []
    for resource in resources:
        values = resource.get(element)
        for value in values if isinstance(values, list) else [values]:
            tail = local_reference(value)
            if tail is not None and tail not in known and tail not in refs:
                refs.append(tail)
    return refs[:MAX_REFERENCE_READS]


class DataGatherer:
    """Resolves prefetch and runs the query plan for one hook call."""

    def __init__(self, executor: Executor | None, observation_codes: list[tuple[str, str]]) -> None:
        self._executor = executor
        self._observation_codes = observation_codes

    @property
    def executor(self) -> Executor | None:
        """The worker pool every query of a call runs on (None: serially)."""
        return self._executor

    def gather(
        self,
        request: HookRequest,
        templates: Mapping[str, str],
        client: FhirClient | None,
        deadline: float,
        clinical: bool = True,
    ) -> GatheredData:
        found: dict[str, list[dict[str, Any]]] = {}
        unavailable: dict[str, str] = {}
        required_missing: dict[str, str] = {}
        plan: list[Query] = []
        for key, template in templates.items():
            rendered = render(template, request)
            if rendered is None:
                continue
            query = query_from_url(key, rendered, required=True)
            given = interpret(request.prefetch, key)
            if given.state in (PrefetchState.PROVIDED, PrefetchState.EMPTY):
                for resource in given.resources:
                    found.setdefault(resource["resourceType"], []).append(resource)
                if given.has_more_pages and given.bundle is not None:
                    plan.append(Query(f"{key}:next", query.resource_type, continue_from=given.bundle))
            elif client is None:
                required_missing[key] = given.reason or "not prefetched, and the request has no fhirServer"
            else:
                plan.append(query)
        if clinical:
            queries = clinical_queries(request.context.patient_id, self._observation_codes)
            if client is None:
                unavailable.update({q.resource_type: "the EHR gave no FHIR server address" for q in queries})
            else:
                plan += queries
        data = GatheredData(found, unavailable, required_missing, {})
        if client is not None and plan:
            outcomes = run_queries(client, plan, self._executor, deadline)
            self._absorb(plan, outcomes, request.context.patient_id, data)
            self._follow_references(client, data, deadline)
        return data

    @staticmethod
    def _absorb(
        plan: list[Query], outcomes: Mapping[str, QueryOutcome], patient_id: str, data: GatheredData
    ) -> None:
        for query in plan:
            outcome = outcomes[query.key]
            data.timings[query.key] = outcome.seconds
            data.pages[query.key] = outcome.pages
            if outcome.error is not None:
                log.warning("%s query failed: %s", query.key, outcome.error)
                if query.required:
                    data.required_missing[query.key] = outcome.error
                else:
                    data.unavailable.setdefault(query.resource_type, outcome.error)
                continue
            kept = [
                r
                for r in outcome.resources
                if query.resource_type in UNSCOPED_TYPES or belongs_to_patient(r, patient_id, unlinked=False)
            ]
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
            for resource in kept + [r for r in outcome.included if r.get("resourceType") in UNSCOPED_TYPES]:
                data.resources.setdefault(resource["resourceType"], []).append(resource)

    def _follow_references(self, client: FhirClient, data: GatheredData, deadline: float) -> None:
        """Read the payer Organizations and the Medications that the results reference."""
        found = data.resources
        known = {f"{r.get('resourceType')}/{r.get('id')}" for rs in found.values() for r in rs}
        meds = found.get("MedicationRequest", []) + found.get("MedicationStatement", [])
        refs = [
            r for r in _referenced(found.get("Coverage", []), "payor", known) if r.startswith("Organization/")
        ]
        refs += [r for r in _referenced(meds, "medicationReference", known) if r.startswith("Medication/")]
        reads = [Query(f"read:{ref}", ref.split("/")[0], reference=ref) for ref in refs]
        if reads:
            self._absorb(reads, run_queries(client, reads, self._executor, deadline), "", data)


def observation_codes_from(loinc_codes: Iterable[str]) -> list[tuple[str, str]]:
    return [("http://loinc.org", code) for code in sorted(loinc_codes)]
