"""What the service asks a FHIR server for: one interaction as a `Query`, and the clinical
searches of the contract (section 3) as CDS Hooks prefetch templates generated from the codes the
compiled policies read. Discovery declares these templates and the gather runs them, so what the
EHR is asked to prefetch and what the service searches for are one list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote

from service.codes import ASSESSMENT_SYSTEM, CANONICAL_SYSTEM, LOINC, SYSTEM_ALIASES, Code
from service.fhir.score_window import PAIN_KEY
from service.orders import OrderCodeTable
from service.terminology import Terminology


@dataclass(frozen=True)
class Query:
    """One FHIR interaction: a search (`params`) or a read (`reference`). `required` data missing
    means HTTP 412. A query run instead of following a prefetched searchset's `next` pages carries
    that prefetch's page one (`instead_of`, `instead_of_pages`): its results replace the page, which
    is kept only when it fails."""

    key: str
    resource_type: str
    params: Mapping[str, str | list[str]] | None = None
    reference: str | None = None
    required: bool = False
    first_page: bool = False  # a sorted search whose first page is all that is wanted
    instead_of: tuple[dict[str, Any], ...] | None = None


def instead_of_pages(query: Query, page_one: Iterable[dict[str, Any]]) -> Query:
    """`query`, the key's own query (what the service runs when the EHR did not prefetch the key), run
    instead of the `next` pages of the searchset the EHR prefetched as page one of several (`page_one`):
    CDS Hooks has a prefetch hold what its template's query does, so the whole is what that query gives,
    at the service's page size and in its round's batch, not one round trip per page of the EHR's size.
    Page one is carried (taken only when the query fails), and the query is never required: a key the
    EHR prefetched is not missing, whatever becomes of the rest of it."""
    return replace(query, instead_of=tuple(page_one), required=False)


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
# asked again without it (query_pool.py). Observations come in two searches: the pain scores (a chart
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

# The kinds of record searched that the contract does not ask of an EHR: an assessment's form is its
# `Observation.code` (contract §3's last row, §5), and a QuestionnaireResponse answers the service's
# own documentation Questionnaire (§5: its item codes). An EHR that does not offer them (the key not
# prefetched and no FHIR server; a search the server answers as not supported or not permitted,
# `NOT_OFFERED`) gives none, as one with none to give does: §3's absence rule reads "the data above".
# Only one it offers and that could not be read (an error, no answer by the deadline) is unavailable.
OFFERED_OR_NONE = frozenset({"QuestionnaireResponse"})
NOT_OFFERED = frozenset({400, 403, 404, 405, 501})  # a search's HTTP statuses that say it is not offered


def not_offered(resource_type: str, status: int | None) -> bool:
    """Whether a search of `resource_type` that failed with HTTP `status` (None: no HTTP answer, or none
    asked for) says the EHR does not offer that kind of record: only a kind the contract does not ask
    of it (`OFFERED_OR_NONE`), then read as none."""
    return resource_type in OFFERED_OR_NONE and status in NOT_OFFERED


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
        PAIN_KEY: ",".join(f"{CANONICAL_SYSTEM[LOINC]}|{code}" for code in sorted(pain)),
    }
    templates = {}
    for key, resource_type, params in _CLINICAL_SEARCHES:
        if key == PAIN_KEY and not pain:
            continue
        values = [(name, codes_of[key] if name == "code" else value) for name, value in params]
        query = "".join(f"&{name}={quote(value, safe=':/|,-')}" for name, value in values)
        templates[key] = f"{resource_type}?patient={PATIENT}{query}"
    return templates


# The order hooks' searches of the trials already ordered (service/next_steps.py): the patient's open
# (active or on-hold) orders, of the kinds a draft order is recognised from (service/orders.py
# ORDER_TYPES: a procedure ServiceRequest, a device DeviceRequest, contract §2); the procedure orders
# of a trial code, each code in every system spelling the contract accepts (§1: two for CPT, four for
# HCPCS), the device orders of any (`trial_order_templates`).
OPEN_TRIAL_ORDERS = "openTrialOrders"
OPEN_TRIAL_DEVICE_ORDERS = "openTrialDeviceOrders"
TRIAL_ORDER_KEYS = {OPEN_TRIAL_ORDERS: "ServiceRequest", OPEN_TRIAL_DEVICE_ORDERS: "DeviceRequest"}
OPEN_TRIAL_STATUSES = ("active", "on-hold")


def trial_order_templates(trial_codes: Iterable[Code]) -> dict[str, str]:
    """The prefetch templates of the patient's open trial orders (key → template), one per order kind,
    the procedure orders narrowed to the `trial_codes` (CPT and HCPCS) as the Observation searches are
    to the codes the policies read; none without trial codes. Declared by the services whose user
    places the order (service/registry.py) and searched only when the call orders an implant without
    a trial (`DataGatherer.gather`). The device orders are not narrowed: R4's DeviceRequest `code` search
    parameter reads `codeCodeableConcept` alone, and contract §2 codes a device order by a
    `codeReference` to a Device too (a patient has few open device orders; their trial code is checked
    by service/next_steps.py `trials_ordered`)."""
    codes = sorted({(code.system, code.code) for code in trial_codes})
    if not codes:
        return {}
    systems = sorted({system for system, _ in codes})
    tokens = ",".join(
        f"{url}|{code}"
        for system in systems
        for url in (url for url, name in SYSTEM_ALIASES.items() if name == system)
        for of, code in codes
        if of == system
    )
    open_orders = f"patient={PATIENT}&status={','.join(OPEN_TRIAL_STATUSES)}"
    return {
        OPEN_TRIAL_ORDERS: f"ServiceRequest?{open_orders}&code={quote(tokens, safe=':/|,-')}",
        OPEN_TRIAL_DEVICE_ORDERS: f"DeviceRequest?{open_orders}",
    }


def prefetchable_queries(
    patient_id: str, observation_codes: Iterable[tuple[str, str]], pain_codes: Iterable[str] = ()
) -> list[tuple[str, Query]]:
    """Each clinical search with its prefetch key: the template, rendered for one patient (the
    query keeps the resource type as its key, which timings and logs name; `Observation:painScores`
    for the pain scores)."""
    return render_searches(patient_id, clinical_templates(observation_codes, pain_codes))


def render_searches(patient_id: str, templates: Mapping[str, str]) -> list[tuple[str, Query]]:
    rendered = [(key, query_from_url(key, t.replace(PATIENT, patient_id))) for key, t in templates.items()]
    return [
        (key, replace(query, key=query.resource_type if key != PAIN_KEY else f"{query.resource_type}:{key}"))
        for key, query in rendered
    ]


def searches_for_patient(searches: list[tuple[str, Query]], patient_id: str) -> list[tuple[str, Query]]:
    """`render_searches(patient_id, templates)` from `render_searches(PATIENT, templates)`, read
    once: a patient id (a FHIR id, service/hooks/models.py) holds nothing a query string would decode
    or split on."""
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


def policy_observation_codes(terminology: Terminology) -> list[tuple[str, str]]:
    """The Observation codes the compiled policies read (LOINC), as (system, code)."""
    return observation_codes_from(terminology["observation-evidence"].codes.get("loinc", ()))


def policy_pain_codes(terminology: Terminology) -> frozenset[str]:
    """The pain-severity LOINC codes, searched on their own (`painScores`)."""
    return frozenset(terminology["pain-score"].codes.get("loinc", ()))


def policy_templates(terminology: Terminology) -> dict[str, str]:
    """The clinical prefetch templates of the compiled policies: what discovery declares."""
    return clinical_templates(policy_observation_codes(terminology), policy_pain_codes(terminology))


def policy_trial_templates(order_codes: OrderCodeTable) -> dict[str, str]:
    """The open-trial-orders prefetch templates of the catalog's order codes: what discovery declares
    for the services that place orders (none when the catalog proposes no trial)."""
    return trial_order_templates(order_codes.proposed_trial_codes())


def observation_codes_from(loinc_codes: Iterable[str]) -> list[tuple[str, str]]:
    return [(CANONICAL_SYSTEM[LOINC], code) for code in sorted(loinc_codes)]
