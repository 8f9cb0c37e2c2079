"""Prefetch templates and prefetched data, as CDS Hooks 2.0 and CRD define them.

`render` turns a template into the query the service would run itself (the EHR's prefetch must
be equivalent to it). `interpret` reads what the EHR sent under a key: absent means "query it",
`null` means "known empty, do not re-query", an OperationOutcome (or a Bundle of more entries or links
than are read from prefetch) means "unavailable, query it if possible", and a searchset Bundle may still
have `next` pages to follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from service.hooks.models import PREFETCH_BOUNDS, HookRequest, past_bound

TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _draft_ids(request: HookRequest, resource_type: str) -> list[str]:
    ids = []
    for entry in request.context.draft_orders.get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] == resource_type:
            ids.append(resource["id"])
    return ids


def _token_value(token: str, request: HookRequest) -> str | None:
    context = request.context
    simple = {
        "context.patientId": context.patient_id,
        "context.userId": context.user_id,
        "context.encounterId": context.encounter_id,
    }
    if token in simple:
        return simple[token]
    if token in _USER_TOKENS:
        kind, _, rid = context.user_id.partition("/")
        return rid if kind == _USER_TOKENS[token] else None
    draft = re.fullmatch(r"context\.draftOrders\.([A-Za-z]+)\.id", token)
    if draft:
        ids = _draft_ids(request, draft.group(1))
        return ",".join(ids) if ids else None
    dispatched = re.fullmatch(r"context\.dispatchedOrders\.resolve\(\)\.ofType\(([A-Za-z]+)\)\.id", token)
    if dispatched:
        named = (reference.partition("/") for reference in context.dispatched)
        of_type = [rid for kind, _, rid in named if kind == dispatched[1]]
        return ",".join(of_type) if of_type else None
    return None


def render(template: str, request: HookRequest) -> str | None:
    """The rendered query, or None when a token has no value (the key is then not needed)."""
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = _token_value(match.group(1), request)
        if value is None:
            missing = True
            return ""
        return value

    rendered = TOKEN.sub(substitute, template)
    return None if missing else rendered


class PrefetchState(StrEnum):
    PROVIDED = "provided"  # a resource, or a searchset Bundle (maybe with `next` pages)
    EMPTY = "empty"  # explicit null: the EHR has nothing; never re-queried
    ABSENT = "absent"  # the EHR did not fill the key: query it
    FAILED = "failed"  # the EHR sent an OperationOutcome (or junk): query it if possible


@dataclass(frozen=True)
class Prefetched:
    state: PrefetchState
    resources: list[dict[str, Any]] = field(default_factory=list)
    bundle: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def has_more_pages(self) -> bool:
        """Whether the EHR sent page one of several (a provided searchset with a `next` link)."""
        links = self.bundle.get("link") if self.bundle is not None else None
        return isinstance(links, list) and any(
            isinstance(link, dict) and link.get("relation") == "next" for link in links
        )


def _is_resource(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("resourceType"), str)


def interpret(prefetch: dict[str, Any], key: str) -> Prefetched:
    """What the EHR sent under `key`."""
    if key not in prefetch:
        return Prefetched(PrefetchState.ABSENT)
    value = prefetch[key]
    if value is None:
        return Prefetched(PrefetchState.EMPTY)
    if not _is_resource(value):
        return Prefetched(PrefetchState.FAILED, reason=f"prefetch '{key}' is not a FHIR resource")
    if value["resourceType"] == "OperationOutcome":
        return Prefetched(PrefetchState.FAILED, reason=f"the EHR reported an error for prefetch '{key}'")
    if value["resourceType"] == "Bundle":
        if over := past_bound(value):
            # more than is read from a prefetch: queried as if not sent where there is a FHIR server (whose
            # search is read to fhir.max_pages pages), else unavailable, the reason naming the key
            what = " and ".join(
                f"more than {PREFETCH_BOUNDS[name][0]} {PREFETCH_BOUNDS[name][1]}" for name in over
            )
            return Prefetched(PrefetchState.FAILED, reason=f"prefetch '{key}' holds {what}")
        entries = value.get("entry")
        # `_is_resource` of each entry's resource, written out: a Synthea-sized prefetch holds hundreds
        resources = [
            resource
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict)
            and isinstance(resource := e.get("resource"), dict)
            and isinstance(resource.get("resourceType"), str)
        ]
        return Prefetched(PrefetchState.PROVIDED, resources, bundle=value)
    return Prefetched(PrefetchState.PROVIDED, [value])
