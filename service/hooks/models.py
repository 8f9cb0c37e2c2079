"""The validated shape of a CDS Hooks call, and the checks that produce it.

Validation follows CDS Hooks 2.0 and the definitions of the hooks CRD uses (order-select,
order-sign, order-dispatch, appointment-book, encounter-start, encounter-discharge): who the user
may be, whether `encounterId` is required, and what order-dispatch's performer and orders are, come
from the hook's row of `contexts.HOOK_CONTEXTS`; which orders a call must carry follows from where
its service finds them (`OrderSource`). Every failure names the offending field (as a FHIRPath-like
expression) so the edge can answer 400 with an OperationOutcome that tells the EHR engineer exactly
what to fix. Unknown fields are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.hooks.contexts import HookContextRules, context_rules
from service.modifiers import malformed, path_to, written
from service.references import ID_PATTERN, URL_SAFE_ID, malformed_patient_link
from service.registry import ANSWERED_VERSIONS, OrderSource, ServiceDefinition
from service.strict_json import whole_number

# Ids end up in URLs (`Patient/{{context.patientId}}`): never `.` or `..`.
ORDER_REFERENCE = re.compile(rf"^[A-Za-z]+/{URL_SAFE_ID}$")  # `{type}/{id}` (CDS Hooks ord-1)
MAX_ORDERS = 100  # draft orders, selections, dispatched orders, booked appointments of one call
# entries of one prefetched Bundle read as prefetch: a larger one is a valid request (its template's query
# may return more), counted as a prefetch that failed (service/fhir/prefetch.py `interpret`), not refused,
# and none of its entries read by anything (`past_bound`)
MAX_PREFETCH_ENTRIES = 1000
# links of one prefetched Bundle read (a searchset's are a handful: self, first, previous, next, last): one of
# more is not read at all, as one of too many entries (`past_bound`)
MAX_PREFETCH_LINKS = 100
# the arrays of a prefetched value bounded so (its `entry` and `link`), as a value's reader names their items
PREFETCH_BOUNDS: dict[str, tuple[int, str]] = {
    "entry": (MAX_PREFETCH_ENTRIES, "entries"),
    "link": (MAX_PREFETCH_LINKS, "links"),
}
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The Inferno CRD kit's own requests carry UUID-shaped instances with letters beyond f.
HOOK_INSTANCE = re.compile(r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}")
FHIR_BASE_URL = re.compile(r"(?i:https?)://[^\s/?#]+(/\S*)?")
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# The names of the elements FHIR defines as a repeating primitive in some resource or data type (`given`,
# `instantiatesUri`, `line`): the only arrays FHIR JSON writes beside a `_` array, with nulls in them
# (`_nullable_items`). As fhir.resources models R4B, R5 and STU3 (each such element has a list-typed
# `<name>__ext` field; tests/unit/test_order_subject.py checks R4B's are all here), and R4's (4.0.1, as
# fhirclient 4 models it: the resources R4B dropped hold `modification`, SubstancePolymer's, and
# `specialMeasures`, MedicinalProduct's): a name some type repeats as a primitive is taken as one
# wherever it is (`type`, `value`), so nothing FHIR JSON allows is refused.
_REPEATING_PRIMITIVE_NAMES = """
acceptLanguage actor additionalInfo aggregation alias allowedType anchor base binary careTeamLinkId
careTeamSequence category chain color comment comparator compartment condition conformance context
contextInvariant contextLinkId coordinate date dayOfWeek daysOfWeek definition definitionCanonical
definitionUri derivedFrom derivedFromCanonical derivedFromUri detailSequence diagnosisLinkId
diagnosisSequence disulfideLinkage event exclude excludingDate excludingRecurrenceId expression fMeasure
fhirVersion format geographicalLocation given goalId graph header image implementationGuide import imports
imprint include informationLinkId informationSequence instantiates instantiatesCanonical instantiatesUri
itemSequence language library line link linkId listMode location mimeType mode modification modifier
mustSupport name noteNumber numFN numFP numTP number observationRequirement observationResultRequirement
occurrenceDate op operator origin other package param parameterName parent parentSubstanceName partOf
patchFormat path payloadMimeType performerLinkId permittedDataType policy preAuthRef precision prefix
procedureLinkId procedureSequence productionIdentifierInUDI profile programName property protocol purpose
reason reasonLinkId reference referencePolicy replaces representation requesterLinkId resource revInclude
satisfiedBy scope score searchInclude searchRevInclude securityLabelNumber sensitivity sequenceLinkId
specialMeasures specimenRequirement subDetailSequence subdetailSequence subjectType subset suffix
supportedInteraction supportedProfile supportingInfoSequence synonym target targetLocation targetProfile
timeOfDay type value valueAlternatives valueCode valueSet variable verificationDate version when workflow
"""
REPEATING_PRIMITIVES = frozenset(_REPEATING_PRIMITIVE_NAMES.split())


class RequestInvalid(ValueError):
    """A CDS Hooks request failed a check; `field` is the path of the offending element."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FhirAccess:
    """Where and how to read the EHR's FHIR server. The token never appears in repr or logs."""

    server: str | None
    access_token: str | None = field(default=None, repr=False)

    @property
    def usable(self) -> bool:
        return bool(self.server)


@dataclass(frozen=True)
class HookContext:
    user_id: str | None  # order-dispatch names a performer instead
    patient_id: str
    encounter_id: str | None
    draft_orders: dict[str, Any]  # empty unless the call carries draftOrders
    selections: tuple[str, ...] | None
    appointments: dict[str, Any] | None = None  # appointment-book only
    dispatched: tuple[str, ...] = ()  # order-dispatch: `Type/id` of the orders dispatched
    performer: str | None = None  # order-dispatch: who the orders go to
    # order-dispatch: where the request names each dispatched order (`context.dispatchedOrders[0]`)
    dispatched_at: Mapping[str, str] = field(default_factory=dict)
    # order-dispatch: each dispatched order the EHR prefetched, by `Type/id` (`prefetched_at`, checked)
    dispatched_prefetched: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    fhir: FhirAccess
    context: HookContext
    prefetch: dict[str, Any]
    extension: dict[str, Any]
    crd_version: str = "2.0"  # the CRD version whose content the answer keeps to (requestedVersion)
    # whether the body may hold a modifierExtension anywhere, its prefetch included, as its text told
    # (service/modifiers.py `text_may_carry`); true where that is not known
    may_carry_modifiers: bool = True


def _require_string(container: dict[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if value is None:
        raise RequestInvalid(path, f"{path} is required")
    if not isinstance(value, str) or not value.strip():
        raise RequestInvalid(path, f"{path} must be a non-empty string")
    return value


def _optional_string(container: dict[str, Any], key: str, path: str) -> str | None:
    """`container[key]` when present (a non-empty string, else a 400 naming `path`), None when absent."""
    return None if container.get(key) is None else _require_string(container, key, path)


def _bounded(items: list[Any], path: str, limit: int = MAX_ORDERS) -> None:
    if len(items) > limit:
        raise RequestInvalid(path, f"{path} holds more than {limit} items")


def _require_object(container: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        raise RequestInvalid(path, f"{path} is required")
    if not isinstance(value, dict):
        raise RequestInvalid(path, f"{path} must be a JSON object")
    return value


def _valid_base_url(server: Any) -> bool:
    if not isinstance(server, str) or not FHIR_BASE_URL.fullmatch(server):
        return False
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return bool(parts.hostname)


def _validate_fhir_access(body: dict[str, Any]) -> FhirAccess:
    server = body.get("fhirServer")
    if server is not None and not _valid_base_url(server):
        raise RequestInvalid("fhirServer", "fhirServer must be an absolute http(s) URL")
    auth = body.get("fhirAuthorization")
    token = None
    if auth is not None:
        if not isinstance(auth, dict):
            raise RequestInvalid("fhirAuthorization", "fhirAuthorization must be a JSON object")
        if server is None:
            raise RequestInvalid("fhirServer", "fhirServer is required when fhirAuthorization is present")
        token = _require_string(auth, "access_token", "fhirAuthorization.access_token")
        if not BEARER_TOKEN.fullmatch(token):
            raise RequestInvalid(
                "fhirAuthorization.access_token", "fhirAuthorization.access_token is not a valid bearer token"
            )
        # token_type (only Bearer is usable), scope and subject are REQUIRED by CDS Hooks, but the service
        # uses only the access token: the Inferno kit sends `{access_token, expires_in}` alone when the
        # body it is given has none (jobs/invoke_hook.rb), so absent they are taken as Bearer and unsaid
        # (inferno review s18 K-2); present, they must be what they say
        token_type = _optional_string(auth, "token_type", "fhirAuthorization.token_type") or "Bearer"
        if token_type.lower() != "bearer":
            raise RequestInvalid(
                "fhirAuthorization.token_type", "fhirAuthorization.token_type must be Bearer"
            )
        lifetime = whole_number(auth.get("expires_in"))
        if lifetime is None or lifetime < 0:
            raise RequestInvalid(
                "fhirAuthorization.expires_in",
                "fhirAuthorization.expires_in is required (whole seconds, not negative)",
            )
        _optional_string(auth, "scope", "fhirAuthorization.scope")
        _optional_string(auth, "subject", "fhirAuthorization.subject")
        _optional_string(auth, "patient", "fhirAuthorization.patient")
    return FhirAccess(server.rstrip("/") if isinstance(server, str) else None, token)


def _validate_bundle(context: dict[str, Any], key: str) -> dict[str, Any]:
    """context.<key>: a Bundle with at least one entry, each a resource with a type and a valid id."""
    bundle = _require_object(context, key, f"context.{key}")
    if bundle.get("resourceType") != "Bundle":
        raise RequestInvalid(f"context.{key}.resourceType", f"context.{key} must be a FHIR Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise RequestInvalid(f"context.{key}.entry", f"context.{key}.entry must be a non-empty array")
    _bounded(entries, f"context.{key}.entry")
    for i, entry in enumerate(entries):
        path = f"context.{key}.entry[{i}]"
        if not isinstance(entry, dict):
            raise RequestInvalid(path, f"{path} must be a JSON object")
        resource = _require_object(entry, "resource", f"{path}.resource")
        _require_string(resource, "resourceType", f"{path}.resource.resourceType")
        rid = _require_string(resource, "id", f"{path}.resource.id")
        if not ID_PATTERN.fullmatch(rid):
            raise RequestInvalid(f"{path}.resource.id", f"{path}.resource.id is not a valid FHIR id")
        if (found := malformed_order(resource)) is not None:
            where, must = found
            raise RequestInvalid(f"{path}.resource{where}", f"{path}.resource{where} {must}")
    return bundle


# the patient link R4 requires of each request type (1..1; CommunicationRequest.subject is 0..1): the one
# table of it. An order without it is not valid, as one holding `subject: null` is: the EHR's as its server
# holds it (review28e, lows29), and the call's own too, whose update CRD requires valid against its profile
# (§resp-47) and forbids adding an element to (§resp-37), so no conformant answer exists (review29e)
REQUIRED_PATIENT_LINKS = {
    "DeviceRequest": "subject",
    "MedicationRequest": "subject",
    "NutritionOrder": "patient",
    "ServiceRequest": "subject",
    "VisionPrescription": "patient",
}


def malformed_order(resource: Mapping[str, Any]) -> tuple[str, str] | None:
    """Where a resource the call hands over as its own (a draft order, a booked Appointment and its
    order, a dispatched order the EHR prefetched) is not one this service can read as it says and send
    back as it came, as a path from the resource (`.extension[1]`, `.subject`), with what it must be; None
    when it is. The answer's update is the order as sent with coverage information added among its
    `extension` (CRD §resp-37), so that must be an array of objects, kept as it is; a `modifierExtension`
    that is none of FHIR's is not taken for none (`modifiers.malformed`), nor a patient link that is no
    Reference for no link (`references.malformed_patient_link`: whose would it be?); and the update must
    be valid (§resp-47): no element null or empty (`_empty_value`: a `requester: null` was sent back so).
    An order must hold the patient link R4 requires of its type (`REQUIRED_PATIENT_LINKS`): a draft
    without its subject was judged and its update sent back without one, not valid (review29e).
    Such a resource of the call's is bad input: a 400 naming it (`_validate_bundle`, `_prefetched_orders`);
    one read from the EHR's FHIR server is set aside (service/appointments.py `not_to_judge`)."""
    extensions = resource.get("extension")
    if extensions is not None and not isinstance(extensions, list):
        return ".extension", "must be an array of extensions"
    for i, extension in enumerate(extensions or ()):
        if not isinstance(extension, dict):
            return f".extension[{i}]", "must be an extension (a JSON object)"
    text = written(resource)  # looked at for a modifier and for an empty value: written once
    link = REQUIRED_PATIENT_LINKS.get(resource.get("resourceType"))
    return malformed(resource, text) or malformed_patient_link(resource, link) or _empty_value(resource, text)


def _empty_value(resource: Mapping[str, Any], text: bytes | None) -> tuple[str, str] | None:
    """The first element of `resource` (in the order written) that holds no value at all, null or an
    empty array or object, with what it must be; None when none does. CDS Hooks: no element of a request
    is null or empty; FHIR JSON: neither, but for a null in the array of a primitive's values (`given`)
    or of their extensions (`_given`) where the other holds that item, beside it (R4
    json.html#primitive). An empty string is a value, if not a valid one, and is left as written: the
    Inferno kit's own appointment-book fixture carries one (`reason.coding.system`). Walked only when the
    resource written by orjson (`text`, `modifiers.written`; None: it cannot be, walked) holds what it
    writes for one (`null`, `[]`, `{}`; it may be text inside a string)."""
    if text is not None and b"null" not in text and b"[]" not in text and b"{}" not in text:
        return None
    # (where: (holder's place, key) links, `modifiers.path_to`, the path written only for what is found,
    # as a path written for every element costs its depth in text: quadratic, review27c; value; whether
    # it may be null, a primitive's; for an array, which of its items may be)
    stack: list[tuple[Any, Any, bool, Container[int]]] = [(None, resource, False, ())]
    while stack:
        at, value, may_be_null, nullable = stack.pop()
        if value is None and not may_be_null:
            return path_to(at), "must hold a value, not null"
        if not value and isinstance(value, list | dict):
            return path_to(at), "must hold a value, not be empty"
        if isinstance(value, dict):
            children = [
                ((at, key), held, False, _nullable_items(value, key, held) if isinstance(held, list) else ())
                for key, held in value.items()
            ]
        elif isinstance(value, list):
            children = [((at, i), item, i in nullable, ()) for i, item in enumerate(value)]
        else:
            continue
        stack.extend(reversed(children))  # the first written is looked at first
    return None


def _nullable_items(holder: Mapping[str, Any], key: Any, items: list[Any]) -> Container[int]:
    """The places in `items` (`holder[key]`) that may hold a null: FHIR JSON writes a repeating primitive
    (`given`) as an array of its values beside one of their ids and extensions (`_given`), null where the
    other array holds that item (R4 json.html#primitive), and nowhere else. So only where `key` (less its
    `_`) names a repeating primitive of FHIR's (`REPEATING_PRIMITIVES`: `reasonCode` beside a
    `_reasonCode` is none), the values are JSON strings, numbers or booleans and the others objects (an
    array in an array is no primitive's), and the other array's item at that place is not null (both
    null is no item at all)."""
    if None not in items or not isinstance(key, str):  # nearly every array: no null at all
        return ()
    extensions_side = key.startswith("_")
    name = key[1:] if extensions_side else key
    if name not in REPEATING_PRIMITIVES:
        return ()
    values, extensions = (holder.get(name), items) if extensions_side else (items, holder.get(f"_{name}"))
    if not isinstance(values, list) or not isinstance(extensions, list):
        return ()
    if any(isinstance(v, dict | list) for v in values) or any(
        e is not None and not isinstance(e, dict) for e in extensions
    ):
        return ()
    other = values if extensions_side else extensions
    return {i for i, item in enumerate(items) if item is None and i < len(other) and other[i] is not None}


def _validate_appointments(context: dict[str, Any]) -> dict[str, Any]:
    bundle = _validate_bundle(context, "appointments")
    if not any(e["resource"]["resourceType"] == "Appointment" for e in bundle["entry"]):
        raise RequestInvalid("context.appointments.entry", "context.appointments holds no Appointment")
    return bundle


def _validate_selections(context: dict[str, Any], bundle: dict[str, Any]) -> tuple[str, ...]:
    selections = context.get("selections")
    if selections is None:
        raise RequestInvalid("context.selections", "context.selections is required for order-select")
    if not isinstance(selections, list) or not selections:
        raise RequestInvalid("context.selections", "context.selections must be a non-empty array")
    _bounded(selections, "context.selections")
    present = set()
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        present.add(f"{resource['resourceType']}/{resource['id']}")
        if isinstance(entry.get("fullUrl"), str):
            present.add(entry["fullUrl"])
    for i, ref in enumerate(selections):
        path = f"context.selections[{i}]"
        if not isinstance(ref, str) or not ORDER_REFERENCE.fullmatch(ref):
            raise RequestInvalid(path, f"{path} must be a reference of the form Type/id")
        if ref not in present:
            raise RequestInvalid(path, f"{path} ({ref}) does not name an entry of context.draftOrders")
    return tuple(selections)


def _either(words: Sequence[str]) -> str:
    """`a`, `a or b`, `a, b or c`."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def typed_reference(types: tuple[str, ...]) -> re.Pattern[str]:
    """`{type}/{id}` whose type is one of `types`."""
    return re.compile(rf"^(?:{'|'.join(types)})/{URL_SAFE_ID}$")


def _validate_user(context: dict[str, Any], hook: str, rules: HookContextRules) -> str:
    """context.userId: a reference to one of the user types the hook allows."""
    user_id = _require_string(context, "userId", "context.userId")
    if not typed_reference(rules.user_types).fullmatch(user_id):
        raise RequestInvalid(
            "context.userId",
            f"context.userId must be a reference to a {_either(rules.user_types)} (the users {hook} "
            f"allows), such as {rules.user_types[0]}/123",
        )
    return user_id


def _validate_encounter(context: dict[str, Any], hook: str, rules: HookContextRules) -> str | None:
    """context.encounterId: a bare id; REQUIRED where the hook says so, else checked when present."""
    encounter_id = context.get("encounterId")
    if encounter_id is None and rules.encounter_required:
        raise RequestInvalid("context.encounterId", f"context.encounterId is required for {hook}")
    valid = isinstance(encounter_id, str) and ID_PATTERN.fullmatch(encounter_id)
    if encounter_id is not None and not valid:
        raise RequestInvalid(
            "context.encounterId", "context.encounterId must be a bare FHIR id (not . or ..)"
        )
    return encounter_id


def _validate_performer(context: dict[str, Any]) -> str:
    """order-dispatch: context.performer, whom the orders go to, a `{type}/{id}` reference (ord-1)."""
    performer = _require_string(context, "performer", "context.performer")
    if not ORDER_REFERENCE.fullmatch(performer):
        raise RequestInvalid(
            "context.performer",
            "context.performer must be a reference of the form Type/id, such as Organization/123",
        )
    return performer


def _validate_dispatched(context: dict[str, Any], order_types: frozenset[str]) -> dict[str, str]:
    """order-dispatch: `dispatchedOrders` (hook 1.0), or the single `order` of earlier drafts; each a
    `Type/id` of an order type (`order_types`). Each order (once) → where the request names it."""
    if "dispatchedOrders" in context:
        orders = context["dispatchedOrders"]
        path = "context.dispatchedOrders"
        if not isinstance(orders, list) or not orders:
            raise RequestInvalid(path, f"{path} must be a non-empty array")
        _bounded(orders, path)
    elif "order" in context:
        orders, path = [context["order"]], "context.order"
    else:
        path = "context.dispatchedOrders"
        raise RequestInvalid(path, f"{path} is required for order-dispatch")
    named: dict[str, str] = {}
    for i, ref in enumerate(orders):
        where = f"{path}[{i}]" if path.endswith("Orders") else path
        if not isinstance(ref, str) or not ORDER_REFERENCE.fullmatch(ref):
            raise RequestInvalid(where, f"{where} must be a reference of the form Type/id")
        if ref.partition("/")[0] not in order_types:
            raise RequestInvalid(
                where, f"{where} ({ref}) must name an order: a {_either(sorted(order_types))}"
            )
        named.setdefault(ref, where)
    return named


def past_bound(value: Any) -> dict[str, int]:
    """The arrays of a prefetched value (a Bundle's `entry` and `link`, or any object's: `PREFETCH_BOUNDS`)
    that hold more items than are read from prefetch, each with how many it holds; empty when the value's
    entries and links, if any, are read. None of them is read where any array is past its bound. The one
    place that says whether they are: every reader of the raw prefetch asks it before walking them (the key
    is a prefetch that failed, service/fhir/prefetch.py `interpret`, so whether a Bundle is page one of
    several is never asked of its links; the prefetched orders and Devices, `prefetched_at`; where a 400
    points, `held_at`; the audit row's digest of the prefetch), so that none walks past a bound (a 5 MiB
    body holds a Bundle of 1.7 million `{}` entries, or links). Only `len` is asked of them."""
    if not isinstance(value, dict):
        return {}
    return {
        name: len(items)
        for name, (bound, _) in PREFETCH_BOUNDS.items()
        if isinstance(items := value.get(name), list) and len(items) > bound
    }


def prefetched_at(
    prefetch: Mapping[str, Any], wanted: Collection[str] | None = None
) -> dict[str, tuple[dict[str, Any], str, int | None]]:
    """Every resource the EHR prefetched (or those of `wanted`, by `Type/id`), by `Type/id` (Bundles
    opened; of one `Type/id`, the first), with where the request holds it: its key, and its entry's
    index in that key's Bundle (None: the key's value is the resource itself). Where a dispatched order
    is read from when prefetched (service/call_orders.py `prefetched_resources`), and where a 400 about
    one points. (`wanted`: a resource of another id is passed over before its reference is written.) A
    value of more entries or links than are read (`past_bound`) holds none."""
    ids = None if wanted is None else {reference.partition("/")[2] for reference in wanted}
    found: dict[str, tuple[dict[str, Any], str, int | None]] = {}
    for key, value in prefetch.items():
        if not isinstance(value, dict) or past_bound(value):
            continue
        entries = value.get("entry")
        if not entries:
            held: list[tuple[int | None, Any]] = [(None, value)]
        elif isinstance(entries, list):
            held = [(i, e.get("resource")) for i, e in enumerate(entries) if isinstance(e, dict)]
        else:
            continue
        for index, resource in held:
            if not isinstance(resource, dict):
                continue
            rid = resource.get("id")
            if not isinstance(rid, str) or (ids is not None and rid not in ids):
                continue
            reference = f"{resource.get('resourceType')}/{rid}"
            if reference not in found and (wanted is None or reference in wanted):
                found[reference] = (resource, key, index)
    return found


def held_at(prefetch: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """Where the request holds `resource` itself (this very object, whatever its id: none, or one it
    shares with another), as a 400 names it (`prefetch.coverage.entry[0].resource`); None when the EHR
    did not prefetch it (read from its FHIR server), or in a value of more entries or links than are read
    (`past_bound`)."""
    for key, value in prefetch.items():
        if value is resource:
            return f"prefetch.{key}"
        read = isinstance(value, dict) and not past_bound(value)
        entries = value.get("entry") if read else None
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(entry, dict) and entry.get("resource") is resource:
                return f"prefetch.{key}.entry[{index}].resource"
    return None


def _prefetched_orders(prefetch: Mapping[str, Any], dispatched: Collection[str]) -> dict[str, dict[str, Any]]:
    """order-dispatch: the dispatched orders the EHR prefetched, by `Type/id` (`prefetched_at`). Each is
    handed over by the call as a draft order is, and sent back in the answer's update: it must be one
    this service can read and send back (`malformed_order`), as a draft order must (`_validate_bundle`)."""
    held = prefetched_at(prefetch, dispatched)
    for resource, key, index in held.values():
        if (found := malformed_order(resource)) is not None:
            path = f"prefetch.{key}" if index is None else f"prefetch.{key}.entry[{index}].resource"
            where, must = found
            raise RequestInvalid(f"{path}{where}", f"{path}{where} {must}")
    return {reference: resource for reference, (resource, _, _) in held.items()}


def _requested_version(extension: dict[str, Any]) -> str:
    """The CRD version the client asked for (`davinci-crd.requestedVersion`); 2.0 when none."""
    requested = extension.get("davinci-crd.requestedVersion")
    if requested is None:
        return "2.0"
    if requested not in ANSWERED_VERSIONS:
        raise RequestInvalid(
            "extension.davinci-crd.requestedVersion",
            f"extension.davinci-crd.requestedVersion must be one of {', '.join(ANSWERED_VERSIONS)}",
        )
    return str(requested)


def parse_hook_request(
    body: Any, service: ServiceDefinition, may_carry_modifiers: bool = True
) -> HookRequest:
    """Validate a decoded JSON body for `service`: its hook, and the context its order source needs.
    `may_carry_modifiers`: whether the body's text may hold a modifier extension (kept on the request:
    `HookRequest.may_carry_modifiers`)."""
    expected_hook, orders_from = service.hook, service.behaviour.orders_from
    if not isinstance(body, dict):
        raise RequestInvalid("$", "the request body must be a JSON object")
    hook = _require_string(body, "hook", "hook")
    if hook != expected_hook:
        raise RequestInvalid("hook", f"hook is '{hook}' but this service answers '{expected_hook}'")
    hook_instance = _require_string(body, "hookInstance", "hookInstance")
    if not HOOK_INSTANCE.fullmatch(hook_instance):
        raise RequestInvalid("hookInstance", "hookInstance must be a UUID (8-4-4-4-12 letters and digits)")
    fhir = _validate_fhir_access(body)
    context = _require_object(body, "context", "context")
    rules = context_rules(expected_hook)
    dispatched_at: dict[str, str] = {}
    if orders_from == OrderSource.DISPATCHED:
        dispatched_at = _validate_dispatched(context, rules.order_types)
    performer = _validate_performer(context) if rules.performer else None
    user_id = _validate_user(context, hook, rules) if rules.user_types else None
    patient_id = _require_string(context, "patientId", "context.patientId")
    if not ID_PATTERN.fullmatch(patient_id):
        raise RequestInvalid(
            "context.patientId", "context.patientId must be a bare FHIR id (no 'Patient/'; not . or ..)"
        )
    token_patient = body["fhirAuthorization"].get("patient") if fhir.access_token is not None else None
    if token_patient not in (None, patient_id):
        # CDS Hooks: a patient-scoped token's `patient` is the patient in context; another patient's
        # token reads nothing of this one's chart (or, on a lax server, another chart)
        raise RequestInvalid(
            "fhirAuthorization.patient", "fhirAuthorization.patient is another patient than context.patientId"
        )
    encounter_id = _validate_encounter(context, hook, rules)
    appointments = None
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if orders_from == OrderSource.APPOINTMENTS:
        appointments = _validate_appointments(context)
    elif orders_from in (OrderSource.DRAFT_ORDERS, OrderSource.SELECTIONS):
        bundle = _validate_bundle(context, "draftOrders")
    selections = _validate_selections(context, bundle) if orders_from == OrderSource.SELECTIONS else None
    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise RequestInvalid("prefetch", "prefetch must be a JSON object")
    dispatched_prefetched = _prefetched_orders(prefetch, dispatched_at) if dispatched_at else {}
    extension = body.get("extension", {})
    if not isinstance(extension, dict):
        raise RequestInvalid("extension", "extension must be a JSON object")
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        fhir=fhir,
        context=HookContext(
            user_id,
            patient_id,
            encounter_id,
            bundle,
            selections,
            appointments,
            tuple(dispatched_at),
            performer,
            dispatched_at,
            dispatched_prefetched,
        ),
        prefetch=prefetch,
        extension=extension,
        crd_version=_requested_version(extension),
        may_carry_modifiers=may_carry_modifiers,
    )
