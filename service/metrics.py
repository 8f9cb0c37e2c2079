"""CRD 2.2 metric data from the audit trail: `idds-crd audit export` writes one `CRDMetricData`
per record (and routed payer) as NDJSON, the payer-side view the CRD metrics page asks for.

Elements, from the logical model `http://hl7.org/fhir/us/davinci-crd/StructureDefinition/CRDMetricData`
(CRD 2.2, input/fsh/logicals/CRDMetricData.fsh of github.com/HL7/davinci-crd, version 2.2.1):

    source 1..1 code (provider-src | payer-src)      hookInstance 1..1 string
    hookType 1..1 code                               providerId 1..1 Identifier (NPI; value 1..1)
    groupId 1..1 Identifier (NPI; value 1..1)        payerId 1..1 Identifier (system, value 1..1)
    requestTime 1..1 instant                         responseTime 0..1 instant
    httpResponse 1..1 positiveInt                    issue 0..* {code 1..1, details 0..1}
    tokenUse 1..1 code (used | not-used | rejected)
    resources 0..* {type 1..1, profile 0..1, count 1..1 positiveInt, prefetch 0..1 boolean}
    request 1..* {type 1..1, orderDetail 1..1 CodeableConcept,
                  response 0..* {type 0..1, focus 0..* code, engagement 0..1 (ignore|accept|override),
                                 coverageInfo 0..* {covered 0..1, paNeeded 0..1, docNeeded 0..1,
                                                    infoNeeded 0..1, questionnaire 0..* {reference 1..1,
                                                    adaptive 1..1, response 1..1}, assertionId 1..1,
                                                    satisfiedId 0..1, businessLine 0..1}}}

How the trail maps onto it: `source` is always `payer-src`. A call routed to several payers gives
one record per payer (payerId is 1..1), each with that payer's coverage information only; the
Coverages of payers this service holds no policy for (answered "no rules here"), and of those
payers.yaml lists by name with no identifier, share one more, its payerId data-absent. A
required value the call did not give (the user's NPI when no resource in the call carries it; the
payer of a call routed to none) is present with the FHIR `data-absent-reason` extension instead of
a value (`_value` in JSON). `infoNeeded` is 0..1 in the model; the first of the assertion's
`info-needed` codes is given. `engagement` is `accept` or `override` from feedback on the card and
absent when none came. `coverageInfo` is what the call issued, each assertion once: not one the
order arrived with and the answer kept (`carried`), nor one an earlier record of the same call
issued first (an EHR's retry, `retry_of`: service/store/audit.py), whose record is still exported,
as a call, with its orders and cards. `request` is every order (and booked Appointment) the answer
gave coverage information for, else every order of the request body; a refused call whose body
named no order has no `request` (the only element the trail cannot fill).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from service.audit_entry import order_code

MODEL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/CRDMetricData"
NPI = "http://hl7.org/fhir/sid/us-npi"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ENGAGEMENT = {"accepted": "accept", "overridden": "override"}
ABSENT = {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}
# The audit record's columns `metric_data` reads (and feedback, which comes with every record): the
# export reads these alone (`AuditTrail.between(columns=…)`), not `determinations`, the largest, nor
# the others a reviewer reads with `audit show`.
READS = (
    "hook_instance",
    "hook",
    "received_at",
    "answered_at",
    "http_status",
    "payers",
    "orders",
    "assertions",
    "fhir_access",
    "request",
    "response",
)


def metric_data(record: Mapping[str, Any], payer: str | None = None) -> Iterator[dict[str, Any]]:
    """The CRDMetricData of one audit record: one per routed payer with an identifier, and one, its
    payerId data-absent, for the Coverages of payers this service holds none for (their "no rules
    here" assertions were issued too) and of those payers.yaml lists by name only; one in all when
    the call was routed to none. With `payer`, only that payer's (named by its key in
    policies/payers.yaml or its identifier's value; one listed by name only, data-absent), none when
    the call was not routed to it."""
    routed = record.get("payers") or []
    body = record.get("request") if isinstance(record.get("request"), dict) else {}
    found = _resources_in(body)  # once for all the record's lines: the walk costs as much as the rest
    by_payer: dict[tuple[str, str] | None, list[str]] = {}
    for route in routed:
        if payer is not None and payer not in _names(route):
            continue
        identifier = route.get("identifier")
        key = (identifier["system"], identifier["value"]) if identifier else None
        by_payer.setdefault(key, []).append(route["coverage"])
    if payer is None and not by_payer:
        yield _metric(record, body, found, None, None)
    medicare = {p["coverage"] for p in routed if p.get("medicare")}
    for key, coverages in by_payer.items():
        payer_id = {"system": key[0], "value": key[1]} if key else None
        yield _metric(record, body, found, payer_id, (set(coverages), medicare))


def _names(route: Mapping[str, Any]) -> set[str]:
    """What `--payer` may name a routed payer by: its key and its identifier's value."""
    identifier = route.get("identifier")
    return {route.get("payer"), identifier["value"] if identifier else None} - {None}


def _metric(
    record: Mapping[str, Any],
    body: Mapping[str, Any],
    found: Mapping[str, Any],
    payer_id: dict[str, str] | None,
    coverages: tuple[set[str], set[str]] | None,
) -> dict[str, Any]:
    user = _context(body).get("userId")
    metric: dict[str, Any] = {
        "source": "payer-src",
        **_required("hookInstance", record.get("hook_instance")),
        **_required("hookType", record.get("hook")),
        "providerId": _npi(found, _role_target(found, user, "practitioner") or user),
        "groupId": _npi(found, _role_target(found, user, "organization")),
        "payerId": payer_id or {"_system": ABSENT, "_value": ABSENT},
        "requestTime": record["received_at"],
        "responseTime": record["answered_at"],
        "httpResponse": record["http_status"],
        "tokenUse": (record.get("fhir_access") or {}).get("token_use", "not-used"),
    }
    issues = _issues(record)
    if issues:
        metric["issue"] = issues
    resources = _resource_use((record.get("fhir_access") or {}).get("resources", []))
    if resources:
        metric["resources"] = resources
    requests = _requests(record, body, coverages)
    if requests:
        metric["request"] = requests
    return metric


def _required(name: str, value: Any) -> dict[str, Any]:
    """A required primitive: its value, or the data-absent-reason extension in its place."""
    return {name: value} if value not in (None, "") else {f"_{name}": ABSENT}


def _issues(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    response = record.get("response") or {}
    if record["http_status"] == 200 or response.get("resourceType") != "OperationOutcome":
        return []
    return [{"code": i["code"]} for i in response.get("issue") or [] if isinstance(i.get("code"), str)]


def _resource_use(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The row's resources as CRDMetricData's: one entry per type and `prefetch`, the row's queried and
    cached entries (its `source`, which the metric has no element for) added together, less the hook's
    focal resources read (an entry's `focal`: its Encounter, the dispatched and booked orders): the IG's
    `resources` is the information "other than the 'focal' resources (orders, encounter, appointment)"
    accessed (review30i: the encounter hooks' Encounter and order-dispatch's orders were listed)."""
    merged: dict[tuple[str, bool], dict[str, Any]] = {}
    for used in rows:
        count = used["count"] - used.get("focal", 0)
        if count <= 0:
            continue
        key = (used["type"], used["prefetch"])
        if key in merged:
            merged[key]["count"] += count
        else:
            merged[key] = {"type": used["type"], "count": count, "prefetch": used["prefetch"]}
    return list(merged.values())


def _requests(
    record: Mapping[str, Any], body: Mapping[str, Any], coverages: tuple[set[str], set[str]] | None
) -> list[dict[str, Any]]:
    orders = [(o["reference"], o.get("code")) for o in record.get("orders") or []]
    if not orders:
        orders = [(f"{r['resourceType']}/{r['id']}", order_code(r)) for r in _ordered_resources(body)]
    engagement = {f["card"]: ENGAGEMENT[f["outcome"]] for f in record.get("feedback") or [] if "outcome" in f}
    routed = record.get("payers") or []
    others = {
        p["payer_name"] for p in routed if coverages is not None and p.get("coverage") not in coverages[0]
    } - {None}
    requests = []
    for reference, code in orders:
        responses = _card_responses(record, reference, engagement, others)
        infos = [
            _coverage_info(a, coverages) for a in record.get("assertions") or [] if a["order"] == reference
        ]
        infos = [i for i in infos if i is not None]
        if infos:
            responses.append(
                {"type": "coverage-info", "focus": [reference.split("/")[0]], "coverageInfo": infos}
            )
        entry: dict[str, Any] = {"type": reference.split("/")[0], "orderDetail": code or ABSENT}
        if responses:
            entry["response"] = responses
        requests.append(entry)
    return requests


def _card_responses(
    record: Mapping[str, Any], reference: str, engagement: dict[str, str], others: set[str]
) -> list[dict[str, Any]]:
    """The cards about the order `reference`, but those of the other payers the call was routed to
    (`others`: their names, as a payer's cards carry it in `source.label`)."""
    responses = []
    for card in (record.get("response") or {}).get("cards") or []:
        associated = [
            r.get("reference")
            for r in (card.get("extension") or {}).get("davinci-crd.associated-resource") or []
            if isinstance(r, dict)
        ]
        if reference not in associated or (card.get("source") or {}).get("label") in others:
            continue
        response: dict[str, Any] = {"focus": sorted({str(r).split("/")[0] for r in associated})}
        topic = (card.get("source") or {}).get("topic") or {}
        if isinstance(topic.get("code"), str):
            response["type"] = topic["code"]
        if card.get("uuid") in engagement:
            response["engagement"] = engagement[card["uuid"]]
        responses.append(response)
    return responses


def _coverage_info(
    assertion: Mapping[str, Any], coverages: tuple[set[str], set[str]] | None
) -> dict[str, Any] | None:
    if coverages is not None and assertion.get("coverage") not in coverages[0]:
        return None
    if assertion.get("carried") or assertion.get("retry_of") is not None:
        return None  # not issued by this call: kept from the order as it arrived, or a retry's repeat
    info: dict[str, Any] = _required("assertionId", assertion.get("assertion_id"))
    for name, key in (("covered", "covered"), ("paNeeded", "pa_needed"), ("docNeeded", "doc_needed")):
        if assertion.get(key):
            info[name] = assertion[key]
    if assertion.get("info_needed"):
        info["infoNeeded"] = assertion["info_needed"][0]
    if assertion.get("questionnaires"):
        info["questionnaire"] = [
            {"reference": q, "adaptive": False, "response": False} for q in assertion["questionnaires"]
        ]
    if assertion.get("satisfied_pa_id"):
        info["satisfiedId"] = assertion["satisfied_pa_id"]
    if coverages is not None and assertion.get("coverage") in coverages[1]:
        info["businessLine"] = {"text": "Medicare"}
    return info


def _context(body: Mapping[str, Any]) -> Mapping[str, Any]:
    context = body.get("context")
    return context if isinstance(context, dict) else {}


def _ordered_resources(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of the request's draftOrders (or appointments) Bundle."""
    context = _context(body)
    bundle = context.get("draftOrders") or context.get("appointments")
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    resources = (
        [e.get("resource") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    )
    return [
        r for r in resources if isinstance(r, dict) and isinstance(r.get("resourceType"), str) and r.get("id")
    ]


def _resources_in(value: Any, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every resource (by `Type/id`) and every logical reference (by its `reference`) in the body."""
    found = {} if found is None else found
    if isinstance(value, dict):
        if isinstance(value.get("resourceType"), str) and isinstance(value.get("id"), str):
            found.setdefault(f"{value['resourceType']}/{value['id']}", value)
        elif isinstance(value.get("reference"), str) and isinstance(value.get("identifier"), dict):
            found.setdefault(value["reference"], {"identifier": [value["identifier"]]})
        for item in value.values():
            _resources_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _resources_in(item, found)
    return found


def _npi(found: Mapping[str, Any], reference: Any) -> dict[str, Any]:
    resource = found.get(reference) if isinstance(reference, str) else None
    identifiers = resource.get("identifier") if isinstance(resource, dict) else None
    for identifier in identifiers if isinstance(identifiers, list) else []:
        if (
            isinstance(identifier, dict)
            and identifier.get("system") == NPI
            and isinstance(identifier.get("value"), str)
        ):
            return {"system": NPI, "value": identifier["value"]}
    return {"system": NPI, "_value": ABSENT}


def _role_target(found: Mapping[str, Any], user: Any, element: str) -> str | None:
    """The Practitioner or Organization of a PractitionerRole user, when the call carries that role."""
    role = found.get(user) if isinstance(user, str) and user.startswith("PractitionerRole/") else None
    target = role.get(element) if isinstance(role, dict) else None
    reference = target.get("reference") if isinstance(target, dict) else None
    return reference if isinstance(reference, str) else None
