"""What the audit trail keeps of one hook call (CRD §found-37), built as plain values.

Pure: given the request body as received, the answer, the caller and the clock readings, it
returns the row `AuditTrail.record` stores — who called (JWT `iss` and `jti`), about whom, which
payers and policy versions judged which orders, every criterion result with its evidence
references, the coverage assertions and PA numbers issued (and, marked carried, those its orders
came with and it kept), what was read from the EHR, and the request and response themselves. Of a
call's prefetch (a refused one's too) the row keeps who and what paid whole (`PARTIES`: the
coverage, payer and user resources CRDMetricData reads), of the patient what the service reads
(`PATIENT_KEPT`) and each chart resource as its versioned reference (`Condition/7/_history/2`):
the EHR keeps the chart, and a Synthea-sized prefetch would
otherwise make every record, and its writing, hundreds of kilobytes. Of the response, a chart resource
sent back only to carry coverage information (`ANNOTATED_ONLY`: the hook's Encounter) is kept the same
way, with the `meta.lastUpdated` and the digest of its JSON as sent that tie it to what was sent, and the
coverage information on it (another source's marked carried, as its coverage, assertion id and digest).
Likewise each criterion result keeps what was found (status, finding, evidence) and not what the
policy's id and version pin (`POLICY_PINNED`: its wording, which part is a gate).
Secrets never reach the row, whatever the body's shape: every `fhirAuthorization` in it keeps no
token and every `fhirServer` no user information, path parameters, query or fragment; any string
holding such a token or user information, or anything shaped like a JWT, is replaced wherever it
occurs, in the request and in the response.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any, get_origin, get_type_hints

import orjson

from cards.coverage_information import EXTENSION_URL as COVERAGE_INFORMATION
from cards.coverage_information import built_for, coverage_named
from service.caller import Caller
from service.catalog import Catalog
from service.engine.model import CriterionResult, Determination, Evidence, Outcome, Status
from service.fhirdates import written_as_fhir_date
from service.hooks.models import PREFETCH_BOUNDS, HookRequest, past_bound
from service.pipeline import HookOutcome
from service.references import local_reference
from service.registry import ServiceDefinition
from service.shapes import dicts, reference_of
from service.store.audit import card_uuids, utc_naive
from service.store.database import JsonText
from service.store.sqlite_schema import ID_LENGTH
from service.strict_json import (
    ascii_escaped,
    dumps,
    loads_exact,
    orjson_compact,
    taken_as_written,
    written_fast,
)

REMOVED = "[removed]"
# A request carries a token or two. Every credential is gone from the stored request whatever their
# number; only the first ones are also looked for in the record's other columns, so a body crafted
# with thousands of them cannot make scrubbing its record cost the call seconds.
MOST_CARRIED_SECRETS = 16
# A fhirServer as written, in parts: `scheme://`, `user:password@host:port`, the path up to any `;`,
# then what the service refuses after it (path parameters, query, fragment).
SERVER_URL = re.compile(r"(?P<scheme>[^/?#]*//)?(?P<authority>[^/?#]*)(?P<path>[^;?#]*)(?P<rest>.*)", re.S)
# A JWT: a base64url run holding `eyJ` with two more characters after it, a dot, a run of two or more, a
# dot, and what follows. A match starts only where a base64url run starts (the lookbehind), its part up
# to the first `eyJ` is tried once (the atomic group) and each run is taken whole (possessive): so each
# run is scanned a bounded number of times and a search is linear in the text's length, where the plain
# pattern tried every `eyJ` of a run, each to the run's end (quadratic: security review S-1). It removes
# what that pattern did, and the part of the run before the `eyJ` with it.
JWT_SHAPE = re.compile(
    r"(?<![A-Za-z0-9_-])(?>[A-Za-z0-9_-]*?eyJ)[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]*+"
)
JWT_START = "eyJ"  # in every match of JWT_SHAPE: `{"` base64url-encoded, how a JWT's header begins
AUTHORIZATION_KEPT = ("token_type", "expires_in", "scope", "subject", "patient")  # never access_token
SECRET_KEYS = ("access_token", "refresh_token", "id_token")
# `written_for` is kept: a group left with one branch narrows it by the order's indication
POLICY_PINNED = ("label", "text", "section", "citation", "how_to_document", "reading", "gate", "either_or")
# What a criterion result carries only for its card's words: the parts of an unsure finding, which the
# finding the record keeps already says (wording30b)
CARD_ONLY = ("pending",)
PARTIES = ("Coverage", "Organization", "Practitioner", "PractitionerRole", "Location")
# Of the Patient, what the service reads (whether and when deceased): its identifiers (an SSN, a
# licence), names and addresses are the EHR's to keep, not seven years of every call's record.
PATIENT_KEPT = ("resourceType", "id", "meta", "deceasedBoolean", "deceasedDateTime")
KEPT_WHOLE = frozenset((*PARTIES, "Patient"))  # the resource types a record keeps more of than a reference
# What the answer sends back only to carry coverage information, and never reads (the encounter hooks'
# Encounter, service/encounters.py): the EHR holds it, so the response keeps it as the chart's resources
# are kept, its versioned reference (resourceType, id, meta.versionId and lastUpdated) and the SHA-256 of
# its JSON as sent, with the coverage information sent on it (what a reviewer reads the assertion from;
# another source's marked carried, as its coverage, assertion id and digest: review30i), not its diagnoses,
# participants and names (review29a L5; review30b L5: `_annotated_reference`). Orders sent back keep their
# whole shape: they are what the call judged.
ANNOTATED_ONLY = frozenset(("Encounter",))
# (resource, coverage reference, assertion id) of a coverage-information repetition: `_issue_key`
IssueKey = tuple[str, str | None, str | None]
JSON_CONTAINER = dict | list  # the JSON values that hold others (named once: `isinstance` reads it faster)
MIN_EMBEDDED_SECRET = 16  # shorter secrets are removed where a string is exactly the secret
SHAPE_KEYS = 20  # of an object sent where a resource was due, the record names this many keys
# Of a carried coverage-information repetition (another source's), the record keeps each string of the
# sub-extensions `CARRIED_KEPT` names up to this many characters (`_carried_identity`: a real one is far
# shorter, and the repetition's digest ties the row to the whole)
CARRIED_TEXT = 1024
# The sub-extensions of a carried repetition the record keeps: what identifies it and what it determined
# (CRD's coverage-information extension: codes, what it covers (a `billingCode`'s system and code), a date,
# the ids), never its free text (`reason`, `detail`, `contact`, a `billingCode`'s display) nor what repeats
# without bound (`questionnaire`, `dependency`).
CARRIED_KEPT = (
    "coverage",
    "covered",
    "pa-needed",
    "doc-needed",
    "info-needed",
    "billingCode",
    "date",
    "expiry-date",
    "coverage-assertion-id",
    "satisfied-pa-id",
)
# 0..* (CRD 2.2): each code (a billingCode's system and code) kept once, in the order first sent
CARRIED_REPEATING = frozenset(("doc-needed", "info-needed", "billingCode"))
MOST_CARRIED_CODES = 8  # of a repeating one: its value sets hold 6 codes or fewer (CRD 2.2)
CARRIED_CODING = ("system", "code")  # of a carried billingCode (`_coding_kept`), never its display
# Of the repetitions another source put on one resource (the Encounter, an order), each column keeps this
# many and counts the rest (`carried_left_out`): 200 of them, each string 1 KB, made a 3 MB `assertions`
# column (review31e L5); a resource carries one per Coverage and source. Those kept are chosen by
# `_carried_rank` (an approval first), and stand in the order sent
MOST_CARRIED_REPETITIONS = 16
# Of the carried repetitions a row leaves out, the index (`audit_assertions`) holds the ids of this many a
# call, chosen as those kept are, and the `assertions` column names them (`left_out_ids`), so that `find`
# reads every id it was given (review31h): an id past them is found by nothing
MOST_INDEXED_LEFT_OUT = 16
CARRIED_DATES = {
    "date": "date",
    "expiry-date": "expiry_date",
}  # kept under these names (`_assertion_values` reads none)
MAX_ISS_LENGTH = 1024
MAX_JTI_LENGTH = 512
SINGLE_VALUED = {  # coverage-information sub-extensions kept under these names
    "covered": "covered",
    "pa-needed": "pa_needed",
    "doc-needed": "doc_needed",
    "billingCode": "billing_code",
    "reason": "reason",
    "coverage-assertion-id": "assertion_id",
    "satisfied-pa-id": "satisfied_pa_id",
}


@dataclass(frozen=True)
class AuditedCall:
    """One answered hook call: the body as received (`request` None when it did not validate)."""

    service: ServiceDefinition
    body: Any
    request: HookRequest | None
    outcome: HookOutcome
    caller: Caller
    received_at: datetime  # UTC
    answered_at: datetime  # UTC
    latency_ms: float


def audit_row(call: AuditedCall, catalog: Catalog) -> dict[str, Any]:
    """The values of one `audit_records` row (its JSON columns written as `JsonText`, scrubbed), and
    what `AuditTrail.record` indexes beside it: under `cards` the uuids of the cards it issued, under
    `assertion_keys` each coverage assertion's (id, PA number), those the call kept too."""
    prefetch = _PrefetchDigest.of(_prefetch_sent(call))
    kept_request = _kept_request(call.body, prefetch.references)
    request, carried = kept_request.value, kept_request.carried
    repetitions = _answer_repetitions(call.outcome.response)
    answered = _assertions_of(repetitions)
    built = _built(call, repetitions)
    secrets = _secrets(call, carried)
    judged = {route.coverage for route in call.outcome.routes}  # not another payer's, kept on the order
    server = call.request.fhir.server if call.request else None  # nor another server's Coverage
    assertions = [
        a if made_for == target else _carried_assertion(target, extension)
        for (target, extension), a, made_for in zip(repetitions, answered, built, strict=True)
        if local_reference(a.get("coverage"), server) in judged
    ]
    assertions += _kept_unsaid(call.outcome.judged_orders, {a["order"] for a in answered}, judged, server)
    # the ids of each one the column keeps are indexed, and of those it leaves out a bounded number, which
    # it names: `audit show` finds a kept approval by its PA number or assertion id (review31h)
    assertions, left_out = _carried_capped(assertions)
    keys = [
        (_key(a["assertion_id"], secrets), _key(a.get("satisfied_pa_id"), secrets))
        for a in chain(assertions, left_out)
        if isinstance(a.get("assertion_id"), str)
    ]
    return {
        "received_at": utc_naive(call.received_at),
        "answered_at": utc_naive(call.answered_at),
        "latency_ms": round(call.latency_ms, 3),
        "service_id": call.service.id,
        "hook": call.service.hook,
        "hook_instance": _key(_id_of(call, "hookInstance"), secrets),
        "client_iss": _bounded(call.caller.iss, MAX_ISS_LENGTH),
        "client_jti": _bounded(call.caller.jti, MAX_JTI_LENGTH),
        "patient_id": _key(_patient_of(call), secrets),
        "http_status": call.outcome.status,
        "payers": _scrubbed(_payers(call, catalog), secrets),
        "orders": _scrubbed(
            _orders(
                call.outcome.response,
                call.outcome.determinations,
                call.outcome.judged_orders,
                call.outcome.judged_as,
            ),
            secrets,
        ),
        "determinations": _scrubbed_determinations(call.outcome.determinations, secrets),
        "assertions": _scrubbed(assertions, secrets),
        "fhir_access": _scrubbed(_fhir_access(call, prefetch.counts), secrets),
        "request": _scrubbed(request, secrets, kept_request.written),
        "response": _scrubbed(_response_kept(call.outcome.response, _own(repetitions, built)), secrets),
        "cards": card_uuids(call.outcome.response),
        "assertion_keys": keys,
    }


def coverage_assertions(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every coverage-information repetition of the answer's system actions, flattened: the order
    it is on, its coverage, determination, assertion id and any PA number (satisfied-pa-id)."""
    return _assertions_of(_answer_repetitions(response))


def _assertions_of(repetitions: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The values of each repetition (`_answer_repetitions`), after the order it is on."""
    return [{"order": target, **_assertion_values(e.get("extension"))} for target, e in repetitions]


def _answer_repetitions(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(`Type/id` of the resource, repetition) of each coverage-information repetition of the answer's
    system actions, in their order (`_coverage_information`)."""
    return [
        repetition
        for action in dicts(response.get("systemActions"))
        for repetition in _coverage_information(action.get("resource"))
    ]


def _coverage_information(resource: Any) -> list[tuple[str, dict[str, Any]]]:
    """(`Type/id` of the resource, repetition) of each coverage-information repetition it holds."""
    if not isinstance(resource, dict):
        return []
    target = f"{resource.get('resourceType')}/{resource.get('id')}"
    return [(target, e) for e in dicts(resource.get("extension")) if e.get("url") == COVERAGE_INFORMATION]


def _kept_unsaid(
    orders: Iterable[Mapping[str, Any]], updated: set[str], judged: set[str], server: str | None
) -> list[dict[str, Any]]:
    """What the orders (and booked Appointments) the call judged came with for a Coverage it judged,
    on those its answer leaves as they are (no system action: an approval, or an earlier assertion
    judged the same, kept), as `_carried_assertion` keeps them: `carried`, not issued by this call, and
    so never exported as its determination, but indexed under its id and PA number, so a reviewer finds
    each call that judged an approval and kept it (audit review AR-3). Another payer's, on the same
    order, is not this call's to index, nor one naming another FHIR `server`'s Coverage of the same id."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for order in orders:
        for target, extension in _coverage_information(order):
            _, coverage, identifier = _issue_key(target, _assertion_values(extension.get("extension")))
            if (
                target not in updated
                and local_reference(coverage, server) in judged
                and identifier is not None
                and (target, identifier) not in kept
            ):
                kept[(target, identifier)] = _carried_assertion(target, extension)
    return list(kept.values())


def _built(call: AuditedCall, repetitions: list[tuple[str, dict[str, Any]]]) -> list[str | None]:
    """For each repetition of the answer (`_answer_repetitions`), the resource the call built it for
    (cards/coverage_information.py, `built_for`), or None: it issued one it built for the resource it is
    on, and nothing else. Read from the call that answered (`HookOutcome.issuer`), which kept what it
    built (`HookCall.issued`); not from the id alone, which anyone can derive from the body (the
    namespace is public: a draft order's approval under the id the call would give it was recorded and
    exported as the service's own, review32d H1). An outcome with no issuer (a refusal, a 500: none
    sends coverage information), or one of another hook or hookInstance, built nothing: every repetition
    is recorded as not its own (`carried`)."""
    request, issuer = call.request, call.outcome.issuer
    if (
        request is None
        or issuer is None
        or (issuer.hook, issuer.hook_instance) != (request.hook, request.hook_instance)
    ):
        return [None] * len(repetitions)
    return [built_for(issuer, extension) for _, extension in repetitions]


def _own(repetitions: list[tuple[str, dict[str, Any]]], built: list[str | None]) -> set[int] | None:
    """The answer's repetitions (`_answer_repetitions`) that are the call's own, by object id: each it
    built (`built`, from `_built`), for the resource it is on (one it issued) or another (an Appointment's,
    restating its order's under the order's ids); None when every one is one it issued, as on most calls
    (then nothing is looked up). An id matching one it issued, on another resource or for another
    Coverage, is not enough (review32d L4)."""
    if all(made_for == target for (target, _), made_for in zip(repetitions, built, strict=True)):
        return None
    return {
        id(extension)
        for (_, extension), made_for in zip(repetitions, built, strict=True)
        if made_for is not None
    }


def _response_kept(response: dict[str, Any], own: set[int] | None) -> dict[str, Any]:
    """The answer as the record keeps it: each system action's resource of a type sent back only to
    carry coverage information (`ANNOTATED_ONLY`) as its versioned reference and the repetitions this
    call issued on it (`own`, from `_own`: their object ids); any other (an order,
    an Appointment) as sent but for the coverage-information repetitions it did not issue, kept short as
    the Encounter's are (`_repetitions_kept`: an order's is whole in the request column, which is the call
    as sent; review31c: another source's repetition with a 400 KB note was stored twice); the rest as sent."""
    actions = response.get("systemActions")
    if not isinstance(actions, list):
        return response
    kept = []
    for action in actions:
        resource = action.get("resource") if isinstance(action, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") in ANNOTATED_ONLY:
            action = {**action, "resource": _annotated_reference(resource, own)}
        elif own is not None and isinstance(resource, dict) and isinstance(resource.get("extension"), list):
            action = {**action, "resource": _carried_short(resource, own)}
        kept.append(action)
    return {**response, "systemActions": kept}


def _carried_short(resource: dict[str, Any], own: set[int]) -> dict[str, Any]:
    """A resource sent back whole, its extensions as sent but the coverage-information repetitions this
    call did not issue, kept as `_repetitions_kept` keeps them (`carried_left_out` beside them when it
    left some out); the resource itself when it carries none."""
    extensions, left_out = _repetitions_kept(resource["extension"], own)
    if extensions is None:
        return resource
    kept = {**resource, "extension": extensions}
    if left_out:
        kept["carried_left_out"] = left_out
    return kept


def _repetitions_kept(extensions: list[Any], own: set[int] | None) -> tuple[list[Any] | None, int]:
    """`extensions` (of a resource the answer sent back) with each coverage-information repetition not the
    call's own (`own`, from `_own`) kept as its identity (`_carried_identity`), of those the first
    `MOST_CARRIED_REPETITIONS` by `_carried_rank` (an approval first), in the order sent, and how many it
    left out; (None, 0) when it holds no such repetition (`extensions` are kept as they are)."""
    if own is None:  # (every repetition of the answer is the call's own)
        return None, 0
    carried: dict[int, dict[str, Any]] = {}
    for position, extension in enumerate(extensions):
        if (
            isinstance(extension, dict)
            and extension.get("url") == COVERAGE_INFORMATION
            and id(extension) not in own
        ):
            carried[position] = _carried_identity(extension)
    if not carried:
        return None, 0
    positions = list(carried)
    chosen = {positions[k] for k in _chosen([_identity_rank(carried[p]) for p in positions])}
    kept = [
        carried.get(position, extension)
        for position, extension in enumerate(extensions)
        if position not in carried or position in chosen
    ]
    return kept, len(carried) - len(chosen)


def _annotated_reference(resource: dict[str, Any], own: set[int] | None) -> dict[str, Any]:
    """A resource the answer only annotated, as what ties it to exactly what was sent: its id, the
    `meta.versionId` and `meta.lastUpdated` it came with, and `sent_sha256`, the SHA-256 of its JSON as
    it stands in the answer (`dumps`, the answer's writer: an Encounter without `meta`, as the Inferno
    presets send it, was kept as its id alone, and which content was annotated could not be told,
    review30b L5); and every coverage-information repetition sent on it: those this call issued (`own`)
    as sent, the others marked `carried`, as the `assertions` column marks an order's (another source's, for a
    Coverage the call did not judge, was dropped), and kept as their identifying and determination
    sub-extensions and digest (`_carried_identity`), `MOST_CARRIED_REPETITIONS` of them (`_repetitions_kept`),
    the rest counted (`carried_left_out`)."""
    kept: dict[str, Any] = {"resourceType": resource.get("resourceType"), "id": resource.get("id")}
    meta = resource.get("meta")
    pinned = {k: meta[k] for k in ("versionId", "lastUpdated") if isinstance(meta, dict) and k in meta}
    if pinned:
        kept["meta"] = pinned
    sent = [e for _, e in _coverage_information(resource)]
    repetitions, left_out = _repetitions_kept(sent, own)
    kept["extension"] = sent if repetitions is None else repetitions
    if left_out:
        kept["carried_left_out"] = left_out
    with suppress(ValueError):  # (never so: an answer that `dumps` refuses is not sent)
        kept["sent_sha256"] = _sent_sha256(resource)
    return kept


def _carried_identity(extension: dict[str, Any]) -> dict[str, Any]:
    """A coverage-information repetition another source put on a resource the answer only annotated, as
    what an auditor looks it up and ties it by (review30i b): its sub-extensions `_carried_subs` keeps,
    marked `carried`, and `sent_sha256`, the SHA-256 of its JSON as it stands in the answer. Not the rest of
    it: kept as sent, any sub-extension under the coverage-information url (a note holding an SSN, 400 KB of
    text, 20,000 sub-extensions) reached the row; what the other source asserted is its record's, and the
    EHR's."""
    kept: dict[str, Any] = {
        "url": COVERAGE_INFORMATION,
        "extension": _carried_subs(extension.get("extension")),
        "carried": True,
    }
    with suppress(ValueError):  # (never so: an answer that `dumps` refuses is not sent)
        kept["sent_sha256"] = _sent_sha256(extension)
    return kept


def _carried_assertion(target: str, extension: dict[str, Any]) -> dict[str, Any]:
    """The `assertions` column's entry for a repetition on `target` this call did not issue (another
    source's, restated or kept unsaid: `_kept_unsaid`): its values, as `_assertion_values` flattens them, of
    the sub-extensions `_carried_identity` keeps (coverage, covered, pa-needed, doc-needed and info-needed
    codes, each a list, billing codes as `billing_codes`, their system and code, date, expiry-date,
    assertion id, PA number: what an auditor finds a kept approval by, what it covers and what it said),
    marked `carried`, with `sent_sha256`, the SHA-256 of the repetition's JSON as the service writes it (as
    it stands in the answer; of one left unsaid, on the order as the request brought it). Not its reason,
    a billing code's display, detail, contact or questionnaires (review31c MEDIUM 2: an SSN in a reason,
    400 KB of text, 20,000 info-needed reached the column whole)."""
    identity = _carried_identity(extension)
    values = _assertion_values(identity["extension"])
    del values["questionnaires"]  # (none kept)
    values.pop("billing_code", None)  # (as `billing_codes`, each kept)
    for sub in identity["extension"]:
        if sub["url"] in CARRIED_DATES:
            values[CARRIED_DATES[sub["url"]]] = _value(sub)
    doc_needed = [_value(sub) for sub in identity["extension"] if sub["url"] == "doc-needed"]
    if doc_needed:  # 0..*: each code sent, not the last of them alone (review31e L4)
        values["doc_needed"] = doc_needed
    billing_codes = [sub["valueCoding"] for sub in identity["extension"] if sub["url"] == "billingCode"]
    if billing_codes:  # what it covers (review31e L3)
        values["billing_codes"] = billing_codes
    kept = {"order": target, **values, "carried": True}
    if "sent_sha256" in identity:
        kept["sent_sha256"] = identity["sent_sha256"]
    return kept


def _value(sub: dict[str, Any]) -> Any:
    """The value[x] of a sub-extension `_carried_subs` kept (it has one)."""
    return next(v for k, v in sub.items() if k.startswith("value"))


def _carried_capped(assertions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `assertions` column's entries with at most `MOST_CARRIED_REPETITIONS` carried ones of each
    resource (`order`), chosen by `_carried_rank` (an approval first: review31h), in the order sent; of a
    resource with more, an entry saying how many were left out, `{"order": …, "carried": true,
    "carried_left_out": n}` (marked carried: never exported, never indexed as such), naming under
    `left_out_ids` the ids (`assertion_id`, `satisfied_pa_id`) of those left out the index holds: of the
    call's, at most `MOST_INDEXED_LEFT_OUT`, chosen the same way. (The column, those left out indexed.)"""
    by_order: dict[str, list[int]] = {}
    for position, assertion in enumerate(assertions):
        if assertion.get("carried"):
            by_order.setdefault(assertion["order"], []).append(position)
    left_out: dict[str, list[int]] = {}
    for order, positions in by_order.items():
        chosen = _chosen([_entry_rank(assertions[p]) for p in positions])
        if len(chosen) < len(positions):
            left_out[order] = [p for k, p in enumerate(positions) if k not in chosen]
    if not left_out:
        return assertions, []
    dropped = {p for positions in left_out.values() for p in positions}
    indexed = sorted(
        (p for p in dropped if isinstance(assertions[p].get("assertion_id"), str)),
        key=lambda p: (_entry_rank(assertions[p]), p),
    )[:MOST_INDEXED_LEFT_OUT]
    named = set(indexed)
    kept = [a for p, a in enumerate(assertions) if p not in dropped]
    for order, positions in left_out.items():
        entry: dict[str, Any] = {"order": order, "carried": True, "carried_left_out": len(positions)}
        ids = [
            {k: assertions[p][k] for k in ("assertion_id", "satisfied_pa_id") if k in assertions[p]}
            for p in positions
            if p in named
        ]
        if ids:
            entry["left_out_ids"] = ids
        kept.append(entry)
    return kept, [assertions[p] for p in sorted(indexed)]


def _carried_rank(pa_number: bool, identified: bool) -> int:
    """Which carried repetitions of a resource a row keeps first, lower first: one holding a PA number
    (an approval, what `audit show <PA number>` reads), then one holding an assertion id (CRD 2.2 gives
    every repetition one: in a single class with the approvals, 16 stuffed repetitions before an approval
    would still leave it out), then the rest; the same rank in the order sent."""
    return 0 if pa_number else 1 if identified else 2


def _entry_rank(assertion: Mapping[str, Any]) -> int:
    """`_carried_rank` of an `assertions` column's carried entry (its values strings: `_carried_subs`)."""
    return _carried_rank("satisfied_pa_id" in assertion, "assertion_id" in assertion)


def _identity_rank(identity: Mapping[str, Any]) -> int:
    """`_carried_rank` of a carried repetition as `_carried_identity` keeps it."""
    urls = {sub["url"] for sub in identity["extension"]}
    return _carried_rank("satisfied-pa-id" in urls, "coverage-assertion-id" in urls)


def _chosen(ranks: list[int]) -> set[int]:
    """The places, in `ranks`, of the `MOST_CARRIED_REPETITIONS` repetitions kept: the lowest rank first,
    of the same rank the first sent."""
    return set(sorted(range(len(ranks)), key=ranks.__getitem__)[:MOST_CARRIED_REPETITIONS])


def _carried_subs(subs: Any) -> list[dict[str, Any]]:
    """Of a carried repetition's sub-extensions, those `CARRIED_KEPT` names whose value is a string (a
    coverage's reference; a billingCode's system and code, `_coding_kept`), each cut to `CARRIED_TEXT`, in
    `CARRIED_KEPT`'s order: of one that repeats (`CARRIED_REPEATING`) each code once, in the order first
    sent, at most `MOST_CARRIED_CODES`; its Coverage as the answer reads it (`coverage_named`: of two, the
    first); of the others the last, as `_assertion_values` reads them. A value that is no string (a
    billingCode with neither system nor code) is left out, and a date or expiry-date not written as a FHIR
    date or dateTime (free text: an SSN rode in one, review32f L2)."""
    single: dict[str, dict[str, Any]] = {}
    if (reference := coverage_named(subs)) is not None:  # as the answer reads it: of two, the first
        single["coverage"] = {"url": "coverage", "valueReference": {"reference": reference[:CARRIED_TEXT]}}
    repeating: dict[str, dict[Any, dict[str, Any]]] = {url: {} for url in CARRIED_REPEATING}
    for sub in dicts(subs):
        url = sub.get("url")
        if url not in CARRIED_KEPT or url == "coverage":
            continue
        key = next((k for k in sub if k.startswith("value")), None)
        value = sub[key] if key else None
        if url == "billingCode":
            coding = _coding_kept(value)
            if coding and len(repeating[url]) < MOST_CARRIED_CODES:
                repeating[url].setdefault(tuple(coding.items()), {"url": url, "valueCoding": coding})
        elif url in CARRIED_DATES and not (isinstance(value, str) and written_as_fhir_date(value)):
            single.pop(url, None)  # the last one read decides, as `_assertion_values` reads it: no date
        elif isinstance(value, str) and key is not None:
            kept = {"url": url, key: value[:CARRIED_TEXT]}
            if url not in CARRIED_REPEATING:
                single[url] = kept
            elif len(repeating[url]) < MOST_CARRIED_CODES:
                repeating[url].setdefault(kept[key], kept)
    return [
        sub
        for url in CARRIED_KEPT
        for sub in (repeating[url].values() if url in CARRIED_REPEATING else [single.get(url)])
        if sub is not None
    ]


def _coding_kept(value: Any) -> dict[str, str]:
    """A carried billingCode's coding as the row keeps it (`CARRIED_CODING`): its system, a string, and its
    code, each cut to `CARRIED_TEXT`; a code sent as a JSON number (62362) as its JSON text, what the coding
    says it covers all the same (review31h: `{"system": …}` alone said nothing); never its display, free
    text another source wrote (an SSN), not even where it has no code, nor a code that is an object, an
    array or a boolean, which can hold free text as well (`{"display": "SSN …"}`: review32d L3)."""
    if not isinstance(value, dict):
        return {}
    system, code = (value.get(k) for k in CARRIED_CODING)
    kept = {"system": system[:CARRIED_TEXT]} if isinstance(system, str) else {}
    if isinstance(code, str):
        kept["code"] = code[:CARRIED_TEXT]
    elif isinstance(code, int | float) and not isinstance(code, bool):  # a number (DecimalText as written)
        kept["code"] = _json_text(code)[:CARRIED_TEXT]
    return kept


def _json_text(value: Any) -> str:
    """A JSON value's compact text as the answer writes it (a number as it was read)."""
    try:
        return dumps(value)
    except ValueError:  # (a non-finite number, which no parsed body holds)
        return str(value)


def _sent_sha256(value: Any) -> str:
    """The SHA-256 (hex) of `value`'s JSON as it stands in the answer (`dumps`, the answer's writer: the
    compact text of a value is its text inside the answer)."""
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()


def _issue_key(target: str, values: Mapping[str, Any]) -> IssueKey:
    """(resource, coverage reference, assertion id) of a coverage-information repetition (`values`, by
    `_assertion_values`), as `_kept_unsaid` keys those an order kept: a value that is no string keyed as
    None, never hashed. The call's own always hold strings; a repetition
    the EHR's resource came with may hold anything (a list where the id goes made the row unwritable, and
    the call answered 503 unrecorded)."""
    coverage, identifier = values.get("coverage"), values.get("assertion_id")
    return (
        target,
        coverage if isinstance(coverage, str) else None,
        identifier if isinstance(identifier, str) else None,
    )


def _assertion_values(subs: Any) -> dict[str, Any]:
    """A repetition's values by name: its Coverage as the answer reads it (`coverage_named`: of two, the
    first), each of `SINGLE_VALUED` the last sent, the info-needed codes and questionnaires each."""
    values: dict[str, Any] = {"info_needed": [], "questionnaires": []}
    if (coverage := coverage_named(subs)) is not None:
        values["coverage"] = coverage
    for sub in dicts(subs):
        url = sub.get("url")
        if not isinstance(url, str):  # an order as the EHR sent it may hold anything
            continue
        value = next((v for k, v in sub.items() if k.startswith("value")), None)
        if url == "info-needed":
            values["info_needed"].append(value)
        elif url == "questionnaire":
            values["questionnaires"].append(value)
        elif url in SINGLE_VALUED:
            values[SINGLE_VALUED[url]] = value
    return values


def _orders(
    response: Mapping[str, Any],
    determinations: Iterable[Determination],
    judged: Iterable[Mapping[str, Any]],
    judged_as: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The orders (and booked Appointments) the answer speaks of, with their codes: those its system
    actions annotate, then any other its determinations judged (its cards speak of it, its assertion
    kept from an earlier call: audit review AR-2; or the call asked for no coverage information), with
    the code the order carries (`judged`: the orders the call judged), else named as the cards name it
    (review s16 R-11). An order whose coverage information is a pump order's judgement (`judged_as`:
    the pump's drug) says which under `judged_as`: it has no determination of its own (audit20 M5)."""
    orders: dict[str, dict[str, Any]] = {}
    actions = response.get("systemActions")
    for action in actions if isinstance(actions, list) else []:
        resource = action.get("resource") if isinstance(action, dict) else None
        if isinstance(resource, dict):
            reference = f"{resource.get('resourceType')}/{resource.get('id')}"
            orders.setdefault(reference, {"reference": reference, "code": order_code(resource)})
    codes = {reference_of(r): code for r in judged if (code := order_code(r)) is not None}
    for d in determinations:
        code = codes.get(d.order_reference) or {"text": d.order_name}
        orders.setdefault(d.order_reference, {"reference": d.order_reference, "code": code})
    for reference, entry in orders.items():
        if judged_as and (pump := judged_as.get(reference)) is not None and pump != reference:
            entry["judged_as"] = pump
    return list(orders.values())


def order_code(resource: Mapping[str, Any]) -> Any:
    """The CodeableConcept naming what a request resource orders (CRD metrics' orderDetail): an
    Appointment's first `serviceType` (0..*), an Encounter's `serviceType` (R4: one CodeableConcept,
    review29a L3)."""
    for element in ("code", "codeCodeableConcept", "medicationCodeableConcept"):
        if isinstance(resource.get(element), dict):
            return resource[element]
    service_type = resource.get("serviceType")
    if isinstance(service_type, dict):
        return service_type
    if isinstance(service_type, list) and service_type and isinstance(service_type[0], dict):
        return service_type[0]
    return None


def _payers(call: AuditedCall, catalog: Catalog) -> list[dict[str, Any]]:
    """Each active Coverage, the payer it was routed to and the policy (and version) that judged it,
    with the digest of the rules it was read by (the payer's version label does not change when this
    service's reading of the document does), or why the payer's policy did not judge it (the call's
    own routing, `HookOutcome.routes`)."""
    payers = []
    for route in call.outcome.routes:
        policy = catalog.policies.get(route.policy_id) if route.policy_id else None
        identifier = min(route.payer.identifiers) if route.payer and route.payer.identifiers else None
        payers.append(
            {
                "coverage": route.coverage,
                "payer": route.payer.key if route.payer else None,
                "payer_name": route.payer_display,
                "identifier": {"system": identifier[0], "value": identifier[1]} if identifier else None,
                "policy_id": route.policy_id,
                "policy_version": policy.version if policy else None,
                "rules_digest": catalog.rules_digest if policy else None,
                "medicare": route.medicare,
                "not_judged_because": route.elsewhere
                or (f"the Coverage is not active: {route.inactive}" if route.inactive else None),
            }
        )
    return payers


def _fhir_access(call: AuditedCall, prefetched: Mapping[str, int]) -> dict[str, Any]:
    """Whether the access token was used (CRD metrics' tokenUse), as the call counted it over every query
    it made (`HookOutcome.token_use`, `FhirUse`), and every resource the call used, by type and by where
    it came from (`source`): the request's prefetch, a query of this call's (`FhirUse` tallied those made
    outside the gather: the open and booked orders, an order's Device, the hook's Encounter) or the
    patient-data cache, the answer an earlier call's query got (`GatheredData.from_cache`). `prefetch`
    says as CRDMetricData does whether it was prefetched (review30b L4: a cached resource read as queried
    now, and the reads outside the gather were listed nowhere). A query entry's `focal` says how many of
    its count were the hook's focal resources read (its Encounter, the dispatched and booked orders:
    `FhirUse.focal`), which CRDMetricData's resources, "other than the focal resources", leave out
    (review30i). Its `kept`, when the call used fewer than its count, says how many it used: an open-order
    search's answer holds other patients' orders when the server ignores `patient`, counted as fetched
    but not used (`FhirReads.unused`, review30i c); CRDMetricData's count stays what was fetched."""
    data, token_use = call.outcome.data, call.outcome.token_use
    reads = call.outcome.fhir_reads
    answered, focal, unused = reads.answered, reads.focal, reads.unused
    found = data.resources if data is not None else {}
    from_cache = data.from_cache if data is not None else {}
    resources = []
    for resource_type in sorted(found.keys() | answered.keys()):
        gathered = len(found.get(resource_type, ()))
        from_prefetch = min(prefetched.get(resource_type, 0), gathered)
        cached = min(from_cache.get(resource_type, 0), gathered - from_prefetch)
        queried = gathered - from_prefetch - cached + answered.get(resource_type, 0)
        for count, source in ((from_prefetch, "prefetch"), (queried, "query"), (cached, "cache")):
            if count:
                entry = {
                    "type": resource_type,
                    "count": count,
                    "prefetch": source == "prefetch",
                    "source": source,
                }
                if source == "query" and focal.get(resource_type):
                    entry["focal"] = focal[resource_type]
                if source == "query" and unused.get(resource_type):
                    entry["kept"] = count - unused[resource_type]
                resources.append(entry)
    if data is None:
        return {"token_use": token_use, "resources": resources}
    return {"token_use": token_use, "resources": resources, "unavailable": dict(data.unavailable)}


@dataclass(frozen=True)
class _PrefetchDigest:
    """A call's prefetch, read once: how many resources of each type it holds, and the
    prefetch as the record keeps it, each chart resource (in a Bundle's entries too) as its versioned
    reference and the parties whole. A Bundle of more entries or links than are read from prefetch
    (`past_bound`: none of them is read, by this either) keeps, in place of its entries and links, how
    many it held (`_unread`), and counts none."""

    counts: dict[str, int]
    references: dict[str, Any]

    @classmethod
    def of(cls, prefetch: Mapping[str, Any]) -> _PrefetchDigest:
        counts: dict[str, int] = {}
        references: dict[str, Any] = {}
        for key, value in prefetch.items():
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                if over := past_bound(value):
                    references[key] = {**value, **_unread(value, over)}
                    continue
                entries = value.get("entry")
                kept = _entries(entries, counts) if isinstance(entries, list) else _shape(entries)
                references[key] = {**value, "entry": kept} if "entry" in value else dict(value)
            else:
                references[key] = _party_or_reference(value, counts)
        return cls(counts, references)


def _unread(bundle: Mapping[str, Any], over: Mapping[str, int]) -> dict[str, str]:
    """What the record keeps of the entries and links of a prefetched Bundle too large to be read (`over`,
    `past_bound`): how many of each it held, and the bound each one past it is past."""
    kept = {}
    for name, (bound, items) in PREFETCH_BOUNDS.items():
        held = bundle.get(name)
        if isinstance(held, list):
            past = f" (more than {bound})" if name in over else ""
            kept[name] = f"[{len(held)} {name if len(held) == 1 else items}, not read{past}]"
    return kept


def _entries(entries: list[Any], counts: dict[str, int]) -> list[Any]:
    """`_entry` of each of a Bundle's entries, a chart resource's reference made in the loop itself (a
    Synthea-sized prefetch holds hundreds of them; two calls for each were a third of the record's
    building; `_versioned_reference` is written out in it too): parties, the Patient and whatever is no
    resource go through `_entry`."""
    kept: list[Any] = []
    add = kept.append
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or kind in KEPT_WHOLE:
            add(_entry(entry, counts))
            continue
        counts[kind] = counts.get(kind, 0) + 1
        # `_versioned_reference`, written out: one call less per chart resource
        meta = resource.get("meta")
        version = meta.get("versionId") if isinstance(meta, dict) else None
        if isinstance(version, str):
            add({"reference": f"{kind}/{resource.get('id')}/_history/{version}"})
        else:
            add({"reference": f"{kind}/{resource.get('id')}"})
    return kept


def _entry(entry: Any, counts: dict[str, int]) -> Any:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(resource, dict):
        return entry
    kept = _party_or_reference(resource, counts)
    if kept is resource:
        return entry
    return {**entry, "resource": kept} if isinstance(kept, dict) else {"reference": kept}


def _shape(value: Any) -> Any:
    """What a prefetch value that is no FHIR resource was (often why the call was refused), without its
    content, which may be a chart's all the same: "[not a FHIR resource: an object with keys id, name]"."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        keys = ", ".join(sorted(str(k) for k in value)[:SHAPE_KEYS]) or "none"
        return f"[not a FHIR resource: an object with keys {keys}]"
    return f"[not a FHIR resource: {'an array' if isinstance(value, list) else 'a string'}]"


def _party_or_reference(resource: Any, counts: dict[str, int]) -> Any:
    """A party whole, the Patient as what the service reads of it, any other resource as its
    (versioned) reference; counted by type."""
    if not isinstance(resource, dict):
        return resource
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return _shape(resource)
    counts[kind] = counts.get(kind, 0) + 1
    if kind in PARTIES:
        return resource
    if kind == "Patient":
        return {key: resource[key] for key in PATIENT_KEPT if key in resource}
    return _versioned_reference(kind, resource)


def _versioned_reference(kind: str, resource: dict[str, Any]) -> str:
    """`Condition/7/_history/2`, or `Condition/7` for a resource without a version."""
    reference = f"{kind}/{resource.get('id')}"
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return f"{reference}/_history/{version}" if isinstance(version, str) else reference


def _prefetch_sent(call: AuditedCall) -> Mapping[str, Any]:
    """The prefetch the record keeps as references: a validated request's, or a refused body's when
    it is an object (a refused call's chart is no more the trail's to keep than an answered one's)."""
    if call.request is not None:
        return call.request.prefetch
    prefetch = call.body.get("prefetch") if isinstance(call.body, dict) else None
    return prefetch if isinstance(prefetch, dict) else {}


def _id_of(call: AuditedCall, key: str) -> str | None:
    if call.request is not None and key == "hookInstance":
        return call.request.hook_instance
    value = call.body.get(key) if isinstance(call.body, dict) else None
    return value if isinstance(value, str) else None


def _patient_of(call: AuditedCall) -> str | None:
    if call.request is not None:
        return call.request.context.patient_id
    context = call.body.get("context") if isinstance(call.body, dict) else None
    patient = context.get("patientId") if isinstance(context, dict) else None
    return patient if isinstance(patient, str) else None


def _key(value: Any, secrets: list[str]) -> str | None:
    """A text the record is found by (an id, a PA number), scrubbed and cut to its column's length
    (an earlier assertion an EHR sends back keeps its own id and PA number, of any length)."""
    return _bounded(_walked(value, secrets) if isinstance(value, str) else None, ID_LENGTH)


def _bounded(value: str | None, limit: int) -> str | None:
    """`value` cut to its column's length (a longer one is kept whole in the request column)."""
    return value[:limit] if value is not None else None


def _secrets(call: AuditedCall, carried: list[str]) -> list[str]:
    """The token strings to remove wherever they occur: the one the request validated to, and the
    credentials its body carried (`carried`, from `_kept_request`)."""
    found = list(carried)
    if call.request is not None and call.request.fhir.access_token:
        found.append(call.request.fhir.access_token)
    return [s for s in found if s]


@dataclass(frozen=True)
class _KeptRequest:
    """The body as the record keeps it, before scrubbing (`value`), the credentials it carried
    (`carried`), and orjson's text of `value` where finding them wrote it already (`written`, by
    `orjson_compact`; None otherwise), which the request column then takes rather than write it again."""

    value: Any
    carried: list[str]
    written: bytes | None


def _kept_request(body: Any, prefetch: dict[str, Any] | None) -> _KeptRequest:
    """The body with its prefetch as `prefetch` (its digest's references; None: as sent), then every
    credential taken out whatever the body's shape (`_without_credentials`). The text `_at_top_only`
    wrote is kept's own when each credential key's value was kept as it was (a `fhirServer` without
    any), the other values being the same objects in the same order (perf31: the request was written
    twice, 0.06-0.09 M instructions a call)."""
    if prefetch is not None and isinstance(body, dict) and isinstance(body.get("prefetch"), dict):
        body = {**body, "prefetch": prefetch}
    carried: list[str] = []
    written = _at_top_only(body)
    if written is not None:
        kept = _object_kept(body, carried, lambda item: item)
        if not all(_as_it_was(kept[key], body[key]) for key in CREDENTIAL_KEYS if key in body):
            written = None
    else:
        kept = _without_credentials(body, carried)
    return _KeptRequest(kept, list(dict.fromkeys(s for s in carried if s))[:MOST_CARRIED_SECRETS], written)


def _as_it_was(kept: Any, value: Any) -> bool:
    """Whether a value kept writes as the value did: the same object, or a text equal to it."""
    return kept is value or (type(kept) is str and type(value) is str and kept == value)


CREDENTIAL_KEYS = ("fhirAuthorization", "fhirServer")  # the keys `_without_credentials` acts on


def _at_top_only(body: Any) -> bytes | None:
    """orjson's text of a body whose own keys are the only `CREDENTIAL_KEYS` in it (a request's), which
    `_object_kept` then keeps as `_without_credentials` would, found without walking it: orjson writes
    each key of every object at any depth as its JSON string, `"fhirServer"`, so a text holding that
    string as often as the body itself has the key holds no other. (A string value of the same text
    counts too: that body is walked.) Nothing below the top then holds a credential, and the body's
    values are kept as they are, which is what the walk's copy of them writes. None: walk the body."""
    if not isinstance(body, dict):
        return None
    text = orjson_compact(body)
    if text is None:  # an integer past 64 bits: walked
        return None
    if any(text.count(b'"%s"' % key.encode()) != (key in body) for key in CREDENTIAL_KEYS):
        return None
    return text


def _without_credentials(value: Any, carried: list[str]) -> Any:
    """`value` with every object in it, at any depth, holding no credential: a `fhirAuthorization`
    keeps only `AUTHORIZATION_KEPT`, a `fhirServer` loses its user information, path parameters,
    query and fragment. What was taken out is added to `carried`, to be scrubbed wherever else it
    occurs. Any depth, because a refused body need not be a request (an array around one)."""

    def deeper(item: Any) -> Any:  # a string, number, boolean or null: nothing in it to take out
        return _without_credentials(item, carried) if isinstance(item, JSON_CONTAINER) else item

    if isinstance(value, list):
        return [deeper(item) for item in value]
    if not isinstance(value, dict):
        return value
    return _object_kept(value, carried, deeper)


def _object_kept(value: dict[str, Any], carried: list[str], rest: Callable[[Any], Any]) -> dict[str, Any]:
    """An object with its `fhirAuthorization` and `fhirServer` (a string) kept without credentials, what
    was taken out added to `carried`, and each other value as `rest` keeps it."""
    kept = {}
    for key, item in value.items():
        if key == "fhirAuthorization":
            kept[key] = _authorization_kept(item, carried)
        elif key == "fhirServer" and isinstance(item, str):
            kept[key] = _server_kept(item, carried)
        else:
            kept[key] = rest(item)
    return kept


def _authorization_kept(authorization: Any, carried: list[str]) -> Any:
    """A `fhirAuthorization` without its tokens (an access token present is marked removed); one
    that is not an object is removed whole."""
    if not isinstance(authorization, dict):
        carried += _strings_in(authorization)
        return None if authorization is None else REMOVED
    carried += [t for k, v in authorization.items() if k in SECRET_KEYS for t in _strings_in(v)]
    kept = {k: v for k, v in authorization.items() if k in AUTHORIZATION_KEPT}
    if "access_token" in authorization:
        kept["access_token"] = REMOVED
    return kept


def _strings_in(value: Any) -> list[str]:
    """Every string in a JSON value (a token may come as a string, or in a list)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


def _server_kept(server: str, carried: list[str]) -> str:
    """A `fhirServer` without user information (`user:password@`), path parameters (`;…`), query or
    fragment: the service refuses them all, and an integrator may have put a credential in any."""
    parts = SERVER_URL.fullmatch(server)
    assert parts is not None  # every part may be empty
    userinfo, at, host = parts["authority"].rpartition("@")
    if at:
        carried += [userinfo, userinfo.partition(":")[2]]  # a token may also stand as the user name
    authority = f"{REMOVED}@{host}" if at else host
    rest = f"{parts['rest'][0]}{REMOVED}" if parts["rest"] else ""
    return f"{parts['scheme'] or ''}{authority}{parts['path']}{rest}"


def _holds(text: str, secret: str) -> bool:
    """Whether `text` carries the secret: is it, or (for a secret long enough not to occur by chance,
    say inside a URL) contains it. A short token must not decide what else the record loses."""
    return text == secret or (len(secret) >= MIN_EMBEDDED_SECRET and secret in text)


def _scrubbed(value: Any, secrets: list[str], written: bytes | None = None) -> JsonText:
    """`value` written as JSON (dataclasses field by field) with every string holding a secret
    replaced, every JWT-shaped text removed, and numbers JSON cannot hold written as text; `written`:
    orjson's text of `value` already (`orjson_compact`), not written again."""
    try:
        text = _json(value, allow_nan=False, written=written)
    except ValueError:  # NaN or Infinity: the walk writes them as text
        text = None
    if text is not None and _clean(text, secrets):
        return JsonText(text)
    return JsonText(
        _json(
            _walked(loads_exact(_json(value, allow_nan=True), non_finite=True), secrets),
            allow_nan=False,
        )
    )


def _scrubbed_determinations(determinations: Any, secrets: list[str]) -> JsonText:
    """`_scrubbed(determinations)`, the criteria results that several determinations share written once
    (the pump, its catheter and its hardware share their policy's: tests/unit/test_engine_sharing.py)."""
    try:
        text = _determinations_text(determinations)
    except ValueError:  # NaN or Infinity: the general way writes them as text
        text = None
    if text is not None and _clean(text, secrets):
        return JsonText(text)
    return _scrubbed(determinations, secrets)


SHARED_CRITERIA = "\ue000criteria\ue000"  # stands for criteria results written once, then put in place


def _determinations_text(determinations: Any) -> str:
    """What `_json(determinations, allow_nan=False)` writes, each distinct criteria tuple written once:
    by orjson where that is proven to be `json`'s text (`_CheckedWriter`), else by `json` alone.

    JSON is written piece by piece: a determination's text is its fields' with the criteria's text in
    place of the stand-in's, which occurs once unless some other field holds it too (then that
    determination is written whole)."""
    written = _CheckedWriter().determinations(determinations)
    if written is not None:
        return written
    if not isinstance(determinations, tuple | list):
        return _json_by_json(determinations, allow_nan=False)
    stand_in = _json_by_json(SHARED_CRITERIA, allow_nan=False)
    written: dict[int, str] = {}  # by id of a criteria tuple, which the determinations hold meanwhile
    parts = []
    for determination in determinations:
        if not isinstance(determination, Determination) or not determination.criteria:
            parts.append(_json_by_json(determination, allow_nan=False))
            continue
        criteria = written.get(id(determination.criteria))
        if criteria is None:
            criteria = written[id(determination.criteria)] = _json_by_json(
                determination.criteria, allow_nan=False
            )
        fields_text = _json_by_json({**_plain(determination), "criteria": SHARED_CRITERIA}, allow_nan=False)
        if fields_text.count(stand_in) == 1:
            parts.append(fields_text.replace(stand_in, criteria))
        else:
            parts.append(_json_by_json(determination, allow_nan=False))
    return "[" + ",".join(parts) + "]"


def _json(value: Any, allow_nan: bool, written: bytes | None = None) -> str:
    """ASCII JSON (as SQLAlchemy writes a JSON column: a database in any encoding stores it), orjson's
    text when it is the same (`written_fast`; from `written`, orjson's text of `value` by
    `orjson_compact`, where given): `_clean` then finds a secret as `json` escapes it."""
    if written is None:
        fast = written_fast(value, ensure_ascii=True)
    else:
        fast = taken_as_written(value, written, ensure_ascii=True)
    return fast.decode() if fast is not None else _json_by_json(value, allow_nan)


def _json_by_json(value: Any, allow_nan: bool) -> str:
    """`_json` written by `json` alone: for values orjson is not given (dataclasses, their fields)."""
    return json.dumps(value, default=_plain, allow_nan=allow_nan, separators=(",", ":"))


def _clean(text: str, secrets: list[str]) -> bool:
    """Whether a value written as `text` certainly needs no scrubbing, from one search. JSON escapes
    character by character, so a string holding a secret or a JWT leaves it (escaped) in the text;
    a match here only means the value is walked string by string."""
    if _jwt_shaped(text):
        return False
    return not any(json.dumps(secret)[1:-1] in text for secret in secrets)


def _jwt_shaped(text: str) -> bool:
    """Whether `text` holds a JWT. Every one holds `eyJ`, which `in` finds at C speed where the linear
    pattern, starting with no literal, walks the text position by position (40x slower on a chart)."""
    return JWT_START in text and JWT_SHAPE.search(text) is not None


def _walked(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        if any(_holds(value, secret) for secret in secrets):
            return REMOVED
        return JWT_SHAPE.sub(REMOVED, value) if JWT_START in value else value
    if isinstance(value, dict):
        return {_walked(k, secrets): _walked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_walked(v, secrets) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON; PostgreSQL refuses them
    return value


@cache
def _recorded_fields(kind: type) -> tuple[str, ...] | None:
    """The fields of a dataclass the record keeps, by class (None for any other type)."""
    if not is_dataclass(kind):
        return None
    omitted = (*(POLICY_PINNED if issubclass(kind, CriterionResult) else ()), *card_only(kind))
    return tuple(f.name for f in fields(kind) if f.name not in omitted)


def card_only(kind: type) -> tuple[str, ...]:
    """The fields of a dataclass only a card's words use (`CARD_ONLY`, of a criterion result): the record
    leaves them out, and so do `idds-crd evaluate --determinations` (service/cli.py: review30j, it printed
    each criterion's `pending`)."""
    return CARD_ONLY if is_dataclass(kind) and issubclass(kind, CriterionResult) else ()


def _plain(value: Any) -> Any:
    """What the JSON writer cannot write itself, one level at a time: a dataclass as the fields the
    record keeps (`asdict` would deep-copy every value first), a date as ISO text, a set as a list."""
    kept = _recorded_fields(type(value))
    if kept is not None:
        return {name: getattr(value, name) for name in kept}
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(value, key=str)  # in one order whatever the process's hash seed
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


# What `_CheckedWriter` lets orjson write of a determination: field values of these exact types (strings
# and the engine's string enums as `json` writes them, dates and sets through `_plain`), containers (a
# field declared a tuple or a set) of these types holding items of these: never a number, which orjson
# writes otherwise than `json` (NaN and Infinity as null, `1e16` for `1e+16`).
_CHECKED_SCALARS = frozenset({str, bool, type(None), Status, Outcome, date, datetime})
_CHECKED_CONTAINERS = frozenset({tuple, frozenset, type(None)})
_CHECKED_ITEMS = frozenset({str, Evidence, CriterionResult})
_CHECKED_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _declares_container(annotation: Any) -> bool:
    """Whether a field's type is a tuple or a frozenset (or one of them or None)."""
    if isinstance(annotation, types.UnionType):
        return any(_declares_container(a) for a in annotation.__args__)
    return get_origin(annotation) in (tuple, frozenset)


@dataclass(frozen=True)
class _Shape:
    """How `_CheckedWriter` reads one dataclass: the fields the record keeps (`names`, in order) and
    those it leaves out (`omitted`), and of the kept ones, which are declared scalars and which
    containers (a tuple or a set), read at once (`itemgetter`), and whether it holds criteria."""

    names: tuple[str, ...]
    omitted: tuple[str, ...]
    scalars: Callable[[dict[str, Any]], tuple[Any, ...]]
    containers: Callable[[dict[str, Any]], tuple[Any, ...]] | None
    criteria: bool

    @classmethod
    def of(cls, kind: type) -> _Shape:
        names = _recorded_fields(kind)
        assert names is not None
        hints = get_type_hints(kind)
        held = [name for name in names if _declares_container(hints[name])]
        plain = [name for name in names if name not in held]
        return cls(
            names,
            tuple(f.name for f in fields(kind) if f.name not in names),
            itemgetter(*plain, *plain),  # twice: a tuple whatever their number
            itemgetter(*held, *held) if held else None,
            "criteria" in names,
        )


_SHAPES = {kind: _Shape.of(kind) for kind in (Determination, CriterionResult, Evidence)}


class _CheckedWriter:
    """Determinations written by orjson, the text `json` writes (`_json_by_json`, ASCII) where that is
    proven: every field value the writing read is of `_CHECKED_SCALARS`, or a container of
    `_CHECKED_CONTAINERS` holding `_CHECKED_ITEMS`, checked once the text is written, from what
    `default` kept of each dataclass (a float anywhere, or anything orjson writes its own way, and the
    text is not taken: `json` writes it). A criteria tuple several determinations share is written once
    (`orjson.Fragment`). orjson asks `default` for each dataclass, date and set, as `json` asks `_plain`;
    `json`'s own writing of what `_plain` gives it was half the cost (demo-meets's criteria: 1.40 M
    instructions by `json`, 0.71 M by orjson, 0.91 M with what the check keeps)."""

    def __init__(self) -> None:
        self._scalars: list[tuple[Any, ...]] = []
        self._containers: list[tuple[Any, ...]] = []
        self._criteria: dict[int, orjson.Fragment] = {}  # by id of a tuple the determinations hold

    def determinations(self, determinations: Any) -> str | None:
        """Their text, or None when it is not proven `json`'s."""
        if type(determinations) not in (tuple, list) or not {*map(type, determinations)} <= {Determination}:
            return None
        try:
            written = orjson.dumps(determinations, default=self._default, option=_CHECKED_OPTIONS)
        except orjson.JSONEncodeError:
            return None
        if not self._proven():
            return None
        return (written if written.isascii() and b"\x7f" not in written else ascii_escaped(written)).decode()

    def _proven(self) -> bool:
        if not {*map(type, chain.from_iterable(self._scalars))} <= _CHECKED_SCALARS:
            return False
        held = tuple(chain.from_iterable(self._containers))
        return {*map(type, held)} <= _CHECKED_CONTAINERS and {
            *map(type, chain.from_iterable(filter(None, held)))
        } <= _CHECKED_ITEMS

    def _default(self, value: Any) -> Any:
        kind = type(value)
        shape = _SHAPES.get(kind)
        if shape is None:
            if kind is datetime or kind is date:
                return value.isoformat()
            if kind is frozenset:
                return _plain(value)
            raise TypeError(f"{kind.__name__} is left to json")
        # its fields as its own dict holds them (a frozen dataclass's __init__ sets each in order), those
        # the record leaves out taken out of a copy: what `_plain` builds field by field, when its keys
        # are the kept fields in their order
        plain = value.__dict__
        if shape.omitted:
            plain = plain.copy()
            for name in shape.omitted:
                del plain[name]
        if tuple(plain) != shape.names:
            raise TypeError(f"{kind.__name__} holds other attributes: left to json")
        self._scalars.append(shape.scalars(plain))
        if shape.containers is not None:
            self._containers.append(shape.containers(plain))
        if shape.criteria:
            return {**plain, "criteria": self._criteria_of(plain["criteria"])}
        return plain

    def _criteria_of(self, criteria: Any) -> orjson.Fragment:
        written = self._criteria.get(id(criteria))
        if written is None:
            text = orjson.dumps(criteria, default=self._default, option=_CHECKED_OPTIONS)
            if not text.isascii() or b"\x7f" in text:
                text = ascii_escaped(text)
            written = self._criteria[id(criteria)] = orjson.Fragment(text)
        return written
