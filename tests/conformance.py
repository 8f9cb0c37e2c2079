"""A conformance checker for CDS Hooks / Da Vinci CRD responses, run on every response the suite makes.

It implements the server-side assertions of the Inferno Da Vinci CRD test kit (digest §7.1:
response fields, cards, links, suggestions, system actions, coverage-information actions) and the
coverage-information invariants of CRD 2.0.1 and 2.2 (digest §6.3): a call without
`davinci-crd.requestedVersion` 2.2 must get content valid under both versions; a 2.2 call may get
2.2-only content (`indeterminate`, with a reason; a `detail`, whose category 2.0.1 lacks) and is
held to the 2.2 invariants. On the primary
hooks every order (and on appointment-book every booked Appointment) must carry coverage
information, and an Appointment carrying the assertion of the order it is based on carries that
order's assertion id and PA number. `check_response` returns a list of errors.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B import get_fhir_model_class

from service.orders import REQUEST_TYPES

COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
ONLY_2_2 = {
    "covered": {"indeterminate"},
    "pa-needed": {"indeterminate"},
    "doc-needed": {"patient", "indeterminate"},
    "info-needed": {"detail-code"},
}
BOTH_VERSIONS = {
    "covered": {"covered", "not-covered", "conditional"},
    "pa-needed": {"no-auth", "auth-needed", "satisfied", "performpa", "conditional"},
    "doc-needed": {"clinical", "admin", "conditional"},
    "doc-purpose": {"withpa", "withclaim", "withorder", "retain-doc", "OTH"},
    "info-needed": {"performer", "location", "timeframe", "contract-window", "OTH"},
}
REQUIRED_SUBS = ("coverage", "covered", "date", "coverage-assertion-id")
KNOWN_SUBS = {
    *REQUIRED_SUBS,
    *BOTH_VERSIONS,
    "billingCode",
    "reason",
    "detail",
    "dependency",
    "questionnaire",
    "satisfied-pa-id",
}
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
# a `detail` per version (CRD input/fsh/extensions/CoverageInformation.fsh, codesystems/CRDTempCodes.fsh
# and valuesets/CRDCoverageDetailCodes.fsh at tags 2.0.1 and 2.2.1): its parts, its value types and the
# detail codes of the temp CodeSystem (content complete: any other temp code is unknown). 2.0.1 has no
# category, no url value and no policy-link.
DETAIL_PARTS = {
    "2.0.1": {"code", "value", "qualification"},
    "2.2": {"category", "code", "value", "qualification"},
}
DETAIL_VALUES = {
    "2.0.1": {"valueBoolean", "valueString", "valueQuantity", "valuePeriod"},
    "2.2": {"valueBoolean", "valueString", "valueUrl", "valueQuantity", "valuePeriod"},
}
DETAIL_CATEGORIES = {"cat-limitation", "cat-decisional", "cat-other"}
_DETAIL_CODES = {"allowed-quantity", "allowed-period", "in-network-copay", "out-network-copay"}
TEMP_DETAIL_CODES = {
    "2.0.1": {*_DETAIL_CODES, "concurrent-review", "appropriate-use-needed", "auth-out-network-only"},
    "2.2": {*_DETAIL_CODES, "concurrent-review", "appropriate-use-needed", "policy-link", "instructions"},
}
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _empties(value: Any, path: str, errors: list[str]) -> None:
    """CDS Hooks: no null, empty string, empty array or empty object anywhere."""
    if value is None or value == "" or value == [] or value == {}:
        errors.append(f"{path}: empty value")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _empties(item, f"{path}.{key}", errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _empties(item, f"{path}[{i}]", errors)


def _check_card(card: Any, path: str, errors: list[str]) -> None:
    if not isinstance(card, dict):
        errors.append(f"{path}: not an object")
        return
    if not isinstance(card.get("uuid"), str) or not UUID.match(card["uuid"]):
        errors.append(f"{path}.uuid: missing or not a UUID (CRD ResponseBase)")
    summary = card.get("summary")
    if not isinstance(summary, str) or len(summary) >= 140:
        errors.append(f"{path}.summary: must be a string under 140 characters")
    if card.get("indicator") not in ("info", "warning", "critical"):
        errors.append(f"{path}.indicator: must be info, warning or critical")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str):
        errors.append(f"{path}.source.label: required")
    else:
        topic = source.get("topic")
        if (
            not isinstance(topic, dict)
            or not isinstance(topic.get("system"), str)
            or not isinstance(topic.get("code"), str)
        ):
            errors.append(f"{path}.source.topic: system and code required (CRD §resp-5)")
    if "suggestions" in card:
        if card.get("selectionBehavior") not in ("at-most-one", "any"):
            errors.append(f"{path}.selectionBehavior: required with suggestions (cds-resp-6)")
        for i, suggestion in enumerate(card["suggestions"]):
            if not isinstance(suggestion.get("label"), str) or not suggestion.get("uuid"):
                errors.append(f"{path}.suggestions[{i}]: label and uuid required (CRD §resp-3)")
            if not suggestion.get("actions"):
                errors.append(f"{path}.suggestions[{i}].actions: required")
            for j, action in enumerate(suggestion.get("actions") or []):
                _check_action(action, f"{path}.suggestions[{i}].actions[{j}]", errors)
        if card.get("selectionBehavior") == "at-most-one" and (
            sum(bool(s.get("isRecommended")) for s in card["suggestions"]) > 1
        ):
            errors.append(f"{path}.suggestions: at most one isRecommended with at-most-one (cds-resp-1)")
        if card.get("links"):
            errors.append(f"{path}: links and suggestions on one card fit no CRD response type (§resp-19)")
    for i, reason in enumerate(card.get("overrideReasons") or []):
        if not all(isinstance(reason.get(k), str) for k in ("code", "system", "display")):
            errors.append(f"{path}.overrideReasons[{i}]: code, system and display required (cds-resp-4)")
    for i, link in enumerate(card.get("links") or []):
        if not isinstance(link.get("label"), str) or not re.match(r"^https?://", str(link.get("url", ""))):
            errors.append(f"{path}.links[{i}]: label and an absolute http(s) url required")
        if link.get("type") not in ("absolute", "smart"):
            errors.append(f"{path}.links[{i}].type: absolute or smart")
        if link.get("type") == "absolute" and "appContext" in link:
            errors.append(f"{path}.links[{i}].appContext: only for smart links (cds-resp-3)")


SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"


def _check_form_task(task: dict[str, Any], path: str, errors: list[str]) -> None:
    """Inferno's Form Completion test and the CRD profile-taskquestionnaire constraints."""
    codes = [c.get("code") for c in task.get("code", {}).get("coding", []) if isinstance(c, dict)]
    if "complete-questionnaire" not in codes:
        errors.append(f"{path}.code: complete-questionnaire required (Inferno form completion)")
    inputs = [i for i in task.get("input", []) if isinstance(i, dict)]
    forms = [i for i in inputs if i.get("type", {}).get("text") == "questionnaire"]
    if not forms or not all(re.match(r"^https?://", str(i.get("valueCanonical", ""))) for i in forms):
        errors.append(f"{path}.input: a questionnaire input with an http(s) valueCanonical (Inferno)")
    after = [
        i
        for i in inputs
        if any(
            c.get("system") == CRD_TEMP and c.get("code") == "after-completion-action"
            for c in i.get("type", {}).get("coding", [])
        )
    ]
    if not after or not all("valueCodeableConcept" in i for i in after):
        errors.append(f"{path}.input: an after-completion-action input required (profile-taskquestionnaire)")
    if (task.get("status"), task.get("intent")) != ("ready", "order"):
        errors.append(f"{path}: status ready and intent order (profile-taskquestionnaire)")
    for element in ("for", "authoredOn", "requester"):
        if not task.get(element):
            errors.append(f"{path}.{element}: required (profile-taskquestionnaire)")
    if not str(task.get("for", {}).get("reference", "")).startswith("Patient/"):
        errors.append(f"{path}.for: a Patient reference (profile-taskquestionnaire)")
    requester = task.get("requester") or {}
    if not (
        str(requester.get("reference", "")).split("/")[-2:-1] == ["Organization"]
        or requester.get("type") == "Organization"
    ):
        errors.append(f"{path}.requester: the payer Organization (profile-taskquestionnaire)")


def _check_action(action: Any, path: str, errors: list[str]) -> None:
    if not isinstance(action, dict) or action.get("type") not in ("create", "update", "delete"):
        errors.append(f"{path}.type: create, update or delete")
        return
    if not isinstance(action.get("description"), str):
        errors.append(f"{path}.description: required (Inferno)")
    if action["type"] in ("create", "update"):
        if not isinstance(action.get("resource"), dict):
            errors.append(f"{path}.resource: required for {action['type']}")
        else:
            _check_fhir(action["resource"], f"{path}.resource", errors)
            if action["resource"].get("resourceType") == "Task":
                _check_form_task(action["resource"], f"{path}.resource", errors)
    if action["type"] == "delete" and not re.match(r"^[A-Za-z]+/[^/]+$", str(action.get("resourceId", ""))):
        errors.append(f"{path}.resourceId: Type/id required for delete (cds-resp-2)")


def _subs(extension: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for sub in extension.get("extension", []):
        value = next((v for k, v in sub.items() if k.startswith("value")), None)
        found.setdefault(sub.get("url"), []).append(value)
    return found


def _check_coverage_information(
    extension: dict[str, Any], hook: str, version: str, path: str, errors: list[str]
) -> None:
    subs = _subs(extension)
    for url in subs:
        if url not in KNOWN_SUBS:
            errors.append(f"{path}: sub-extension '{url}' is not valid under both CRD 2.0.1 and 2.2")
    for url in REQUIRED_SUBS:
        if len(subs.get(url, [])) != 1:
            errors.append(f"{path}: exactly one '{url}' required")
    for url, allowed in BOTH_VERSIONS.items():
        permitted = allowed | ONLY_2_2.get(url, set()) if version == "2.2" else allowed
        for value in subs.get(url, []):
            if value not in permitted:
                errors.append(f"{path}.{url}: '{value}' is not valid under CRD {version}")
    covered = (subs.get("covered") or [None])[0]
    pa = subs.get("pa-needed", [])
    doc = subs.get("doc-needed", [])
    values = [*subs.get("covered", []), *pa, *doc]
    if len(pa) > 1 or len(doc) > 1:
        errors.append(f"{path}: pa-needed and doc-needed repeat at most once (2.0.1)")
    if covered == "not-covered" and pa:
        errors.append(f"{path}: q2 - not-covered must not carry pa-needed")
    if covered != "not-covered" and not pa and version != "2.2":
        errors.append(f"{path}: q2 (2.0.1) - pa-needed required unless not-covered")
    if "indeterminate" in values and not subs.get("reason"):
        errors.append(f"{path}: q9 - indeterminate needs a reason")
    if ("conditional" in values) != bool(subs.get("info-needed")):
        errors.append(f"{path}: q3 - info-needed exactly when something is conditional")
    if subs.get("questionnaire") and not doc:
        errors.append(f"{path}: q1 - questionnaire needs doc-needed")
    if set(pa) & {"satisfied", "no-auth"} and "withpa" in subs.get("doc-purpose", []):
        errors.append(f"{path}: q4 - withpa with no PA needed")
    if bool(subs.get("satisfied-pa-id")) != ("satisfied" in pa):
        errors.append(f"{path}: q5 - satisfied-pa-id exactly when pa-needed is satisfied")
    if ("OTH" in subs.get("info-needed", []) or subs.get("doc-purpose")) and not subs.get("reason"):
        errors.append(f"{path}: q6/q8 - reason required")
    for reason in subs.get("reason", []):
        if not isinstance(reason, dict) or not reason.get("text"):
            errors.append(f"{path}.reason: text required for reasons outside the value set (q7)")
        elif reason.get("coding") and version != "2.2":
            errors.append(f"{path}.reason: coded reasons (e.g. technical) exist only in CRD 2.2")
    if hook in SECONDARY_HOOKS and set(doc) & {"clinical", "admin"}:
        errors.append(f"{path}: CRD §hook-19 - no clinical/admin doc-needed on {hook}")
    for coding in subs.get("billingCode", []):
        if not isinstance(coding, dict) or not coding.get("system") or not coding.get("code"):
            errors.append(f"{path}.billingCode: system and code required")
    for i, detail in enumerate(s for s in extension.get("extension", []) if s.get("url") == "detail"):
        _check_detail(detail, version, f"{path}.detail[{i}]", errors)


def _check_detail(detail: dict[str, Any], version: str, path: str, errors: list[str]) -> None:
    """A coverage-information `detail` in the shape of the version asked for; none unless 2.2 is asked
    for, as none is valid under both 2.0.1 (no category) and 2.2 (category 1..1)."""
    if version != "2.2":
        errors.append(f"{path}: no detail is valid under both CRD 2.0.1 and 2.2 (category)")
    if any(k.startswith("value") for k in detail):
        errors.append(f"{path}: a detail has parts, not a value")
    parts: dict[str, list[dict[str, Any]]] = {}
    for part in detail.get("extension", []):
        parts.setdefault(part.get("url"), []).append(part)
    for url, found in parts.items():
        if url not in DETAIL_PARTS[version]:
            errors.append(f"{path}: '{url}' is not a part of a detail in CRD {version}")
        elif len(found) > 1:
            errors.append(f"{path}: '{url}' at most once")
    for url in ("category", "code", "value") if version == "2.2" else ("code", "value"):
        if url not in parts:
            errors.append(f"{path}: '{url}' required (1..1) in CRD {version}")
    category = (parts.get("category") or [{}])[0]
    if "category" in parts and category.get("valueCode") not in DETAIL_CATEGORIES:
        errors.append(f"{path}.category: '{category.get('valueCode')}' is not a detail category")
    value = (parts.get("value") or [{}])[0]
    kinds = [k for k in value if k.startswith("value")]
    if "value" in parts and (len(kinds) != 1 or kinds[0] not in DETAIL_VALUES[version]):
        errors.append(f"{path}.value: {kinds} is not a detail value type in CRD {version}")
    code = (parts.get("code") or [{}])[0]
    codings = (code.get("valueCodeableConcept") or {}).get("coding") or []
    if "code" in parts and not isinstance(code.get("valueCodeableConcept"), dict):
        errors.append(f"{path}.code: a valueCodeableConcept required")
    for coding in codings:
        temp = coding.get("system") == CRD_TEMP
        if temp and coding.get("code") not in TEMP_DETAIL_CODES[version]:
            errors.append(f"{path}.code: '{coding.get('code')}' is not a detail code of CRD {version}")
        if (
            temp
            and coding.get("code") == "policy-link"
            and (category.get("valueCode") != "cat-other" or "valueUrl" not in value)
        ):
            errors.append(f"{path}: a policy-link is category cat-other with a valueUrl (CRD 2.2)")
    qualification = (parts.get("qualification") or [{}])[0]
    if "qualification" in parts and not isinstance(qualification.get("valueString"), str):
        errors.append(f"{path}.qualification: a valueString")


def _check_coverage_action(
    action: dict[str, Any],
    request: dict[str, Any],
    drafts: dict[str, dict[str, Any]],
    path: str,
    errors: list[str],
) -> None:
    hook, version = request["hook"], requested_version(request)
    resource = action["resource"]
    ref = f"{resource.get('resourceType')}/{resource.get('id')}"
    if action.get("type") != "update":
        errors.append(f"{path}.type: coverage information is an update")
    if "resourceId" in action:
        errors.append(f"{path}.resourceId: not allowed on coverage information (0..0)")
    if ref not in drafts:
        errors.append(f"{path}.resource: {ref} is not an order (or booked Appointment) of the request")
        return
    original = copy.deepcopy(drafts[ref])
    updated = copy.deepcopy(resource)
    added = [e for e in updated.pop("extension", []) if e.get("url") == COVERAGE_INFO]
    kept = [e for e in resource.get("extension", []) if e.get("url") != COVERAGE_INFO]
    if (
        kept != [e for e in original.pop("extension", None) or [] if e.get("url") != COVERAGE_INFO]
        or updated != original
    ):
        errors.append(f"{path}.resource: must be the draft order unchanged but for the extension (§resp-37)")
    if not added:
        errors.append(f"{path}.resource: no coverage-information extension (crd-respci1)")
    ids: dict[str, str] = {}
    for i, extension in enumerate(added):
        where = f"{path}.resource.extension(coverage-information)[{i}]"
        _check_coverage_information(extension, hook, version, where, errors)
        subs = _subs(extension)
        coverage = str((subs.get("coverage") or [{}])[0])
        assertion = str((subs.get("coverage-assertion-id") or [""])[0])
        if coverage in ids and ids[coverage] != assertion:
            errors.append(f"{where}: same coverage, different coverage-assertion-id (Inferno)")
        if coverage not in ids and assertion in ids.values():
            errors.append(f"{where}: different coverages share a coverage-assertion-id")
        ids[coverage] = assertion
    _check_fhir(resource, f"{path}.resource", errors)


def _check_fhir(resource: dict[str, Any], path: str, errors: list[str]) -> None:
    """Every resource the service emits must validate with the fhir.resources R4B models."""
    try:
        get_fhir_model_class(str(resource.get("resourceType"))).model_validate(resource)
    except Exception as exc:
        errors.append(f"{path}: not valid FHIR: {str(exc).splitlines()[0]}")


PRIMARY_HOOKS = ("order-sign", "order-dispatch", "appointment-book")
SECONDARY_HOOKS = ("order-select", "encounter-start", "encounter-discharge")
UNJUDGED = ("No active coverage found", "Coverage not checked")


ENCOUNTER_HOOKS = ("encounter-start", "encounter-discharge")  # the Inferno kit looks on the Encounter


def _hook_encounter(request: dict[str, Any]) -> dict[str, Any] | None:
    """encounter-start/-discharge: the hook's Encounter as the EHR prefetched it (CRD's `encounter` key),
    which an update must leave unchanged but for its coverage information; None when not prefetched
    (one read from the FHIR server is passed among `check_response`'s `orders`)."""
    value = (request.get("prefetch") or {}).get("encounter")
    if request["hook"] not in ENCOUNTER_HOOKS or not isinstance(value, dict):
        return None
    wanted = f"Encounter/{request['context'].get('encounterId')}"
    return next((r for r in _opened(value) if reference_of(r) == wanted), None)


def reference_of(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _dispatched_from_prefetch(request: dict[str, Any]) -> list[dict[str, Any]]:
    """order-dispatch: the dispatched orders the EHR prefetched (what an update must leave unchanged)."""
    context = request["context"]
    dispatched = set(context.get("dispatchedOrders", [context["order"]] if "order" in context else []))
    prefetched = [v for v in (request.get("prefetch") or {}).values() if isinstance(v, dict)]
    return [r for value in prefetched for r in _opened(value) if reference_of(r) in dispatched]


def _opened(value: dict[str, Any]) -> list[dict[str, Any]]:
    """A prefetched value's resources: a Bundle's (the templates' searchsets) opened, as the service
    reads them (`prefetched_resources`), junk left out."""
    entries = value.get("entry")
    if not isinstance(entries, list) or not entries:
        return [value]
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def requested_version(request: dict[str, Any]) -> str:
    """The CRD version whose rules an answer to `request` must follow (2.0.1 unless 2.2 is asked)."""
    asked = (request.get("extension") or {}).get("davinci-crd.requestedVersion")
    return "2.2" if asked == "2.2" else "2.0.1"


def check_response(
    body: Any, request: dict[str, Any], orders: list[dict[str, Any]] | None = None
) -> list[str]:
    """Every Inferno CRD server-side assertion and coverage-information invariant this response breaks.

    `orders` are the orders an update may target when they are not the request's draftOrders: on
    appointment-book, the ServiceRequests the Appointments are based on, as the EHR holds them; on the
    encounter hooks, the open orders and the Encounter read from the EHR (a prefetched one is taken
    from the request)."""
    errors: list[str] = []
    hook = request["hook"]
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        return ["cards: required array"]
    for key, value in body.items():
        if key != "cards":
            _empties(value, key, errors)
    for i, card in enumerate(body["cards"]):
        _empties(card, f"cards[{i}]", errors)
        _check_card(card, f"cards[{i}]", errors)
    if orders is None:
        drafted = [e["resource"] for e in request["context"].get("draftOrders", {}).get("entry", [])]
        orders = [r for r in drafted if r.get("resourceType") in REQUEST_TYPES]
        orders += _dispatched_from_prefetch(request)
    appointments = [
        e["resource"]
        for e in request["context"].get("appointments", {}).get("entry", [])
        if e["resource"].get("resourceType") == "Appointment"
    ]
    drafts = {f"{o['resourceType']}/{o['id']}": o for o in [*orders, *appointments]}
    encounter = _hook_encounter(request)  # encounter-start/-discharge: the hook's Encounter, if prefetched
    if encounter is not None:
        drafts.setdefault(reference_of(encounter), encounter)
    coverage_actions = 0
    informed: set[str] = set()
    for i, action in enumerate(body.get("systemActions", [])):
        _check_action(action, f"systemActions[{i}]", errors)
        resource = action.get("resource") if isinstance(action, dict) else None
        if isinstance(resource, dict) and any(
            isinstance(e, dict) and e.get("url") == COVERAGE_INFO for e in resource.get("extension", [])
        ):
            coverage_actions += 1
            informed.add(f"{resource.get('resourceType')}/{resource.get('id')}")
            allowed = REQUEST_TYPES | ({"Appointment"} if hook == "appointment-book" else set())
            if resource.get("resourceType") == "Encounter" and hook in ENCOUNTER_HOOKS:
                if reference_of(resource) != f"Encounter/{request['context'].get('encounterId')}":
                    errors.append(f"systemActions[{i}].resource: an Encounter not the hook's encounterId")
            elif resource.get("resourceType") not in allowed:
                errors.append(f"systemActions[{i}].resource: coverage information on a non-order resource")
            _check_coverage_action(action, request, drafts, f"systemActions[{i}]", errors)
    for i, card in enumerate(body["cards"]):
        if isinstance(card, dict) and COVERAGE_INFO in str(card):
            errors.append(f"cards[{i}]: coverage information must never be in a card (§resp-25)")
    judged = [
        c for c in body["cards"] if isinstance(c, dict) and not str(c.get("summary", "")).startswith(UNJUDGED)
    ]
    already_told = any(
        COVERAGE_INFO in json.dumps(o.get("extension", [])) for o in drafts.values()
    )  # §resp-35
    configuration = (request.get("extension") or {}).get("davinci-crd.configuration") or {}
    asked = configuration.get("coverage-info") is not False  # §resp-28: unless the call switches it off
    if hook in PRIMARY_HOOKS and asked and judged and not coverage_actions and not already_told:
        errors.append(f"systemActions: coverage information required on {hook} (Inferno; CRD §hook-16)")
    if not asked and coverage_actions:
        errors.append("systemActions: coverage information sent though the call set coverage-info false")
    if hook in PRIMARY_HOOKS and coverage_actions:
        # appointment-book: every booked Appointment (the orders behind them may not be readable); under
        # CRD 2.2 one based on a ServiceRequest is annotated on that request instead
        must_carry = [(reference_of(a), a) for a in appointments] if appointments else drafts.items()
        # another patient's order is reported, not judged: it takes none (ehr20 M4)
        must_carry = [(ref, r) for ref, r in must_carry if not _another_patients_order(r, request)]
        crd_2_2 = (request.get("extension") or {}).get("davinci-crd.requestedVersion") == "2.2"
        for ref, resource in must_carry:
            told = COVERAGE_INFO in json.dumps(resource.get("extension", []))  # §resp-35
            based_on = {b.get("reference") for b in resource.get("basedOn") or [] if isinstance(b, dict)}
            if crd_2_2 and based_on & informed:
                continue
            if ref not in informed and not told:
                errors.append(f"systemActions: no coverage information for {ref} (CRD §resp-29)")
    if hook == "appointment-book":
        _check_appointment_repeats_its_order(body, request, orders, errors)
    return errors


_PATIENT_LINKS = ("subject", "patient", "beneficiary", "for")
_PATIENT_REFERENCE = re.compile(
    r"^(?:(?P<base>(?i:https?)://\S+?)/)?Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?/?$"
)


def _another_patients_order(order: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether an order the call hands over (drafted, dispatched or booked) is another patient's, and so
    takes no coverage information (ehr20 M4): its first patient link (subject, patient, beneficiary,
    for) names a Patient of another id than `context.patientId`, written `Patient/id`, as a URL (this
    id at another base than `fhirServer` is another person too), or as the fullUrl of a Patient in the
    call. No link, one without a reference, an unresolved urn, or a Group, Location or Device subject
    names no other patient: the order is the call's patient's."""
    link = next((order[k] for k in _PATIENT_LINKS if k in order), None)
    reference = link.get("reference") if isinstance(link, dict) else None
    if not isinstance(reference, str):
        return False
    patient = request["context"].get("patientId")
    if (match := _PATIENT_REFERENCE.match(reference.strip())) is not None:
        server = request.get("fhirServer")
        elsewhere = match["base"] is not None and server and _base_key(match["base"]) != _base_key(server)
        return match["id"] != patient or bool(elsewhere)
    entries = [
        e
        for key in ("draftOrders", "appointments")
        for e in (request["context"].get(key) or {}).get("entry", [])
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    named = next((e["resource"] for e in entries if e.get("fullUrl") == reference.strip()), None)
    return named is not None and named.get("resourceType") == "Patient" and named.get("id") != patient


def _base_key(url: str) -> tuple[str, int | None, str]:
    """A FHIR base, compared as a server: host in any case, default port as none, no trailing slash."""
    parts = urlsplit(url.strip())
    port = None if parts.port in (None, {"http": 80, "https": 443}.get(parts.scheme.lower())) else parts.port
    return (parts.hostname or "").rstrip(".").lower(), port, parts.path.rstrip("/")


def _order_named(reference: Any, full_urls: dict[str, str]) -> str | None:
    """`Type/id` of an Appointment's `basedOn` reference: a Bundle fullUrl, relative or absolute."""
    if not isinstance(reference, str):
        return None
    if reference in full_urls:
        return full_urls[reference]
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _check_appointment_repeats_its_order(
    body: dict[str, Any], request: dict[str, Any], orders: list[dict[str, Any]], errors: list[str]
) -> None:
    """An Appointment annotated with the assertion of an order it is based on (the same content for
    the same Coverage) carries that order's coverage-assertion-id and PA number, as the order has
    them once the answer is applied: one booked service, one assertion and one approval (the claim
    carries one id and one PA number, CRD §resp-31; an update targets the ServiceRequest an
    Appointment is based on, cards.md)."""
    ids = ("coverage-assertion-id", "satisfied-pa-id")
    entries = request["context"].get("appointments", {}).get("entry", [])
    full_urls = {
        e["fullUrl"]: reference_of(e["resource"]) for e in entries if isinstance(e.get("fullUrl"), str)
    }
    updated = {
        reference_of(a["resource"]): a["resource"]
        for a in body.get("systemActions", [])
        if isinstance(a, dict) and isinstance(a.get("resource"), dict)
    }
    held = {reference_of(o): o for o in orders}

    def assertions(resource: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
        found = [_subs(e) for e in resource.get("extension", []) if e.get("url") == COVERAGE_INFO]
        return {str((s.get("coverage") or [{}])[0]): s for s in found}

    def content(subs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {url: values for url, values in subs.items() if url not in (*ids, "date")}

    for ref, resource in updated.items():
        if resource.get("resourceType") != "Appointment":
            continue
        for based in resource.get("basedOn") or []:
            order_ref = _order_named(based.get("reference") if isinstance(based, dict) else None, full_urls)
            order = updated.get(order_ref or "") or held.get(order_ref or "")
            on_order = assertions(order) if order is not None else {}
            for coverage, subs in assertions(resource).items():
                theirs = on_order.get(coverage)
                if theirs is None or content(theirs) != content(subs):
                    continue  # not the order's assertion that it carries
                for url in ids:
                    if subs.get(url) != theirs.get(url):
                        errors.append(
                            f"systemActions: {ref} repeats {order_ref} with another {url} (§resp-31)"
                        )
