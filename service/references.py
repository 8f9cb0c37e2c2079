"""FHIR references, read one way everywhere: `Type/id`, versioned, or absolute.

EHRs write the same reference as `Patient/1`, `Patient/1/_history/3` or
`https://ehr.example/fhir/Patient/1`; comparing such strings by hand in each module gave eight
slightly different rules. `parse_reference` is the one reading, `belongs_to_patient` the one
answer to "is this chart resource about the call's patient", `names_another_patient` the one answer
to "is this order the call hands over another patient's" (on every hook; `names_the_patient`: does it
name this one), and `local_reference` (`chart_lookup` for the resource itself) the one answer to "which
of the chart's resources does this name": given the call's FHIR server, none for a reference written as
another server's URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.shapes import reference_of, reference_target

# the resource a reference names where the call holds it (a `urn:uuid:` of its Bundle); else None
Resolve = Callable[[str], Mapping[str, Any] | None]

FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"  # the R4 `id` datatype
# A FHIR id that is never `.` or `..`, as the last part of a pattern: ids end up in URLs.
URL_SAFE_ID = rf"(?!\.{{1,2}}$){FHIR_ID}"
ID_PATTERN = re.compile(rf"^{URL_SAFE_ID}$")  # an id as the request's and its Coverages' ids are checked
_REFERENCE = re.compile(  # a URL's scheme in any case (RFC 3986 §3.1)
    rf"^(?:(?P<base>(?i:https?)://\S+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>{FHIR_ID})"
    rf"(?:/_history/(?P<version>{FHIR_ID}))?/?$"
)
_ID = re.compile(FHIR_ID)  # an id as `_REFERENCE` reads one
PATIENT_LINKS = ("subject", "patient", "beneficiary", "for")


@dataclass(frozen=True)
class Reference:
    type: str
    id: str
    base: str | None = None  # the server an absolute reference names
    version: str | None = None

    @property
    def local(self) -> str:
        """`Type/id`, whatever form the reference was written in."""
        return f"{self.type}/{self.id}"


def parse_reference(value: Any) -> Reference | None:
    """A literal reference string (or a Reference element) read; None for a contained (`#id`),
    `urn:` or malformed one."""
    text = reference_target(value) if isinstance(value, Mapping) else value
    if not isinstance(text, str):
        return None
    match = _REFERENCE.match(text.strip())
    if match is None:
        return None
    return Reference(match["type"], match["id"], match["base"], match["version"])


def local_reference(value: Any, server: str | None = None) -> str | None:
    """`Type/id` of a reference string or element, however written; None when it has none. Given the
    call's FHIR `server`, also None for a reference written as another server's URL: the same id
    there names another resource (`on_server`)."""
    parsed = parse_reference(value)
    return parsed.local if parsed is not None and on_server(parsed, server) else None


def chart_lookup(
    resources: Iterable[Any], server: str | None = None
) -> Callable[[Any], dict[str, Any] | None]:
    """What a reference (string or element) names among `resources`, the chart's as read from the
    call's FHIR `server`: found by its `Type/id` however it is written, and never for one written as
    another server's URL (`local_reference`: that server's resource of the same id is another one)."""
    by_reference = {reference_of(r): r for r in resources if isinstance(r, dict)}
    return lambda reference: by_reference.get(local_reference(reference, server) or "")


def patient_link(resource: Mapping[str, Any]) -> tuple[str, Any] | None:
    """A resource's patient link, the one every check of whose it is reads: the first of PATIENT_LINKS
    (subject, patient, beneficiary, for) it holds, with its value as written; None when it holds none."""
    for key in PATIENT_LINKS:
        if key in resource:
            return key, resource[key]
    return None


# a reference's last `Patient/…` (`Patient/…`, `…/Patient/…`) naming a Patient by a valid id, as
# `_REFERENCE` reads its end (one regex: `parse_reference` costs some 20,000 instructions more a call)
_PATIENT_BY_ID = re.compile(rf"Patient/{FHIR_ID}(?:/_history/{FHIR_ID})?/?\s*")
_URL_BASE = re.compile(r"(?i:https?)://\S+/")  # the address `_REFERENCE` reads before a type


def _names_a_patient_by_no_id(reference: str) -> bool:
    """Whether `reference` ends naming a Patient by no valid id ("Patient/sómeone", 100,000 letters). Its
    last `Patient/` is read (review26g: a server whose address holds a `Patient/` folder is no Patient)."""
    at = reference.rfind("/Patient/") + 1
    if at == 0 and not reference.startswith("Patient/"):
        return False
    if _PATIENT_BY_ID.fullmatch(reference, at) is None:
        return True
    # an earlier `Patient/` is a folder only of a server's address (review26h: "Patient/sómeone/Patient/p2"
    # is no reference `parse_reference` reads, and was judged for the call's patient)
    before = reference[:at]
    return ("/Patient/" in before or before.startswith("Patient/")) and _URL_BASE.fullmatch(before) is None


def malformed_patient_link(
    resource: Mapping[str, Any], required: str | None = None
) -> tuple[str, str] | None:
    """Where a resource's patient link (`patient_link`) is present but no Reference, as a path from the
    resource (`.subject`, `.subject.reference`), with what it must be; None when it is one, or absent,
    unless the resource must hold the link `required` names (every order of a type R4 requires it of,
    `hooks.models.REQUIRED_PATIENT_LINKS`: R4's `ServiceRequest.subject` and `DeviceRequest.subject` are
    1..1, and an order holding none is as invalid as one holding `subject: null`, review28e; one holding
    another link in its place, a ServiceRequest's `patient` or `for`, holds an element R4 does not define
    for it, and was judged and sent back without its subject, review29e).
    A Reference is a JSON object holding something (FHIR ele-1), its `reference`, when present, a
    non-empty string, and one naming a Patient a valid reference (an id of the call's it cannot be: read
    as naming no Patient, it was judged for the call's patient); CDS Hooks forbids null and empty values,
    in it as anywhere (a member null, "", [] or {}). A call's own resource so written is bad
    input (service/hooks/models.py: 400 naming it): read as no link, an order was judged for the call's
    patient and sent back with its null, where the answer's update must be the order as sent and valid
    (CRD §resp-37, §resp-47)."""
    if required is not None and required not in resource:  # review29e: `patient` or `for` in place of it
        held = patient_link(resource)
        if held is None:
            return f".{required}", "must be a Reference, not absent"
        return (
            f".{held[0]}",
            f"is no element of {resource.get('resourceType')}: its patient link is {required}",
        )
    found = patient_link(resource)
    if found is None:
        return None
    key, value = found
    if value is None:
        return f".{key}", "must be a Reference, not null"
    if not isinstance(value, dict):
        return f".{key}", "must be a Reference (a JSON object)"
    if not value:
        return f".{key}", "must be a Reference, not an empty object"
    if "reference" in value and not (isinstance(value["reference"], str) and value["reference"].strip()):
        return f".{key}.reference", "must be a non-empty string (a reference), not null or blank"
    for member, held in value.items():  # {"display": null} holds nothing, as {} does
        if held is None or (not held and isinstance(held, str | list | dict)):
            return f".{key}.{member}", "must hold a value, not null or empty"
    reference = value.get("reference")  # read as `parse_reference` reads it: white space around it aside
    if (
        isinstance(reference, str)
        and "Patient/" in reference
        and _names_a_patient_by_no_id(reference.strip())
    ):
        # "Patient/sómeone", an id of 100,000 letters: a Patient no id of the call's is, read as naming none
        return f".{key}.reference", "must be a valid reference to a Patient (Patient/id, a FHIR id)"
    return None


def belongs_to_patient(
    resource: Mapping[str, Any], patient_id: str, unlinked: bool, server: str | None = None
) -> bool:
    """Whether `resource` is about Patient/`patient_id`: its patient link (`patient_link`) must name that
    patient. `unlinked` is the answer for a resource with no such link (an order handed over by id may
    omit it; a search result may not). A link written as an absolute URL names a server: given the
    call's FHIR `server`, a Patient of the same id on another server is another person. (`patients_own`
    asks it of every chart resource of a call at once.)"""
    return _belongs(resource, patient_id, _plain_link(patient_id), unlinked, server)


def patients_own(
    resources: Iterable[Mapping[str, Any]], patient_id: str, unlinked: bool, server: str | None = None
) -> list[Any]:
    """Those of `resources` that `belongs_to_patient`, in their order: the link written the plain way
    worked out once for them all (its id's check was 2.4 k instructions a resource, callgrind)."""
    plain = _plain_link(patient_id)
    return [r for r in resources if _belongs(r, patient_id, plain, unlinked, server)]


def _plain_link(patient_id: str) -> str | None:
    """The reference `Patient/<patient_id>` as a patient link writes it the plain way, when `patient_id` is
    an id as `_REFERENCE` reads one (so a link written so is read as naming it); None otherwise."""
    return f"Patient/{patient_id}" if _ID.fullmatch(patient_id) else None


def _belongs(
    resource: Mapping[str, Any], patient_id: str, plain: str | None, unlinked: bool, server: str | None
) -> bool:
    """`belongs_to_patient`, `plain` its `_plain_link`. (The link is found by `patient_link`'s loop written
    out: this is asked of every chart resource of a call, and the call costs some 700 instructions each,
    callgrind.)"""
    for link in PATIENT_LINKS:
        if link in resource:
            value = resource[link]
            if plain is not None and isinstance(value, dict) and value.get("reference") == plain:
                return True  # written the plain way (nearly always): no need to parse it
            return _names_patient(parse_reference(value), patient_id, server) is True
    return unlinked


def _names_patient(parsed: Reference | None, patient_id: str, server: str | None) -> bool | None:
    """Whether a reference as read (`parse_reference`) names Patient/`patient_id`: True, or False when it
    names another Patient (another id, or any id on another server than the call's: another person);
    None when it names no Patient (none read, or another type). The one reading of whom a patient link
    names, for `belongs_to_patient` and `names_another_patient`."""
    if parsed is None or parsed.type != "Patient":
        return None
    return parsed.id == patient_id and _same_server(parsed.base, server)


def names_another_patient(
    resource: Mapping[str, Any],
    patient_id: str,
    server: str | None = None,
    resolve: Resolve | None = None,
) -> bool:
    """Whether an order handed over by the call (drafted, dispatched or booked) is another patient's:
    its first patient link (subject, patient, beneficiary, for) clearly names a Patient other than
    Patient/`patient_id`, written `Patient/<another id>`, as another server's URL of a Patient
    (`belongs_to_patient`: the same id there is another person), or as a reference `resolve` (the
    call's Bundle: a `urn:uuid:` fullUrl) finds to be a Patient of another id. The call says whose its
    orders are, so nothing less sets one aside: a link absent, written without a reference
    (identifier or display only) or naming nothing readable is the call's patient; one naming a Group,
    Location or Device (R4 ServiceRequest.subject may) names no other patient, and is judged for the
    call's patient as any order without a Patient subject is. A link is read as `belongs_to_patient`
    reads it, a string written in a Reference's place too, and so is each item of an array written in its
    place (review28e: `"Patient/someone-else"` or `[{"reference": "Patient/someone-else"}]`, not valid
    R4, was reported on this patient's encounter as their open order not valid): an order naming another
    patient however it is written is another patient's, never this one's (an array naming only this
    patient is neither: `belongs_to_patient` reads no array, and such an order is not valid). An array is
    another patient's only when no item of it names this one (`names_the_patient`): one naming this patient
    and another names both, whose it is cannot be told, and such an order is not valid (R4's subject is
    1..1) and reported on this patient's card, as one naming this patient alone is (review29b)."""
    whom = _whom(resource, patient_id, server, resolve)
    return False in whom and True not in whom


def names_the_patient(
    resource: Mapping[str, Any],
    patient_id: str,
    server: str | None = None,
    resolve: Resolve | None = None,
) -> bool:
    """Whether an order's first patient link names Patient/`patient_id`, read as `names_another_patient`
    reads it (`resolve`: a `urn:uuid:` found in the Bundle the order came in): a Reference, a string
    written in its place, or any item of an array written there (an order so linked is not valid, and is
    this patient's to hear of: `malformed_patient_link`). Beside `belongs_to_patient`, which reads no
    array, for the few open orders of an encounter hook."""
    return True in _whom(resource, patient_id, server, resolve)


def whom_it_names(
    link: Any,
    patient_id: str,
    server: str | None = None,
    resolve: Resolve | None = None,
) -> bool | None:
    """Whom one reference (a Reference, or a string written in its place) names, read as an order's patient
    link is: Patient/`patient_id` (True), another Patient (False: another id, this id on another server,
    or a Patient `resolve` finds it to be, a `urn:uuid:` of the call's Bundle), or no Patient (None)."""
    return _names(link, patient_id, server, resolve)


def may_name_an_untold_patient(link: Any, resolve: Resolve | None = None) -> bool:
    """Whether one reference that names no Patient this service can tell (`whom_it_names` None) may yet name
    one: it holds no reference whose resource type can be read, and does not say it is another type (its
    `type`): an identifier or a name alone, a `urn:uuid:` or `#id` that `resolve` (the call's Bundle, a
    resource's contained ones) does not find, or finds to be a Patient (one with no id, a contained one).
    Not: a reference read as another type (`Practitioner/1`), one `resolve` finds to be another type, an
    empty one. An Appointment so naming its patient is no one's this service can tell (service/appointments.py
    `whose_appointment`, subject29b)."""
    if isinstance(link, Mapping):
        kind = link.get("type")
        if isinstance(kind, str) and kind.strip().rsplit("/", 1)[-1] != "Patient":
            return False  # its `type` says it is another resource (a Practitioner, a Location)
        target = reference_target(link)
        if target is None:
            return "identifier" in link or "display" in link  # an identifier or a name alone
    elif isinstance(link, str):
        target = link
    else:
        return False
    if parse_reference(target) is not None:
        return False  # its type is read: a Patient of it is told (`whom_it_names`), another type is none
    named = resolve(target.strip()) if resolve is not None else None
    return not isinstance(named, Mapping) or named.get("resourceType") == "Patient"


def _whom(
    resource: Mapping[str, Any],
    patient_id: str,
    server: str | None,
    resolve: Resolve | None,
) -> set[bool | None]:
    """Whom each reference of a resource's first patient link names (`_names`): the link itself, or each
    item of an array written in its place; {None} for no link."""
    link = found[1] if (found := patient_link(resource)) is not None else None
    links = link if isinstance(link, list) else [link]
    return {_names(item, patient_id, server, resolve) for item in links}


def _names(link: Any, patient_id: str, server: str | None, resolve: Resolve | None) -> bool | None:
    """Whether one reference of a patient link (a Reference, or a string written in its place, read as
    `belongs_to_patient` reads it) names Patient/`patient_id` (True), another Patient (False,
    `_names_patient`, or a Patient `resolve` finds it to be), or no Patient (None)."""
    target = reference_target(link) if isinstance(link, Mapping) else link
    if not isinstance(target, str):
        return None
    parsed = parse_reference(target)
    if parsed is not None:
        return _names_patient(parsed, patient_id, server)
    named = resolve(target.strip()) if resolve is not None else None
    if not isinstance(named, Mapping) or named.get("resourceType") != "Patient":
        return None
    if not isinstance(named.get("id"), str):  # a Patient with no id: whom it is cannot be told (review29g)
        return None
    return named["id"] == patient_id


def on_server(reference: Reference, server: str | None) -> bool:
    """Whether `reference` names a resource of the call's FHIR `server`: relative, or written as that
    server's URL (another server's resource is not this one's, whatever its id)."""
    return _same_server(reference.base, server)


def _same_server(base: str | None, server: str | None) -> bool:
    """A relative link is the server's own; an absolute one must name `server` (any, when unknown)."""
    return base is None or server is None or _server_key(base) == _server_key(server)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _server_key(url: str) -> tuple[str, int | None, str] | None:
    """A FHIR base however it is written: host in any case (a trailing dot dropped), its scheme's
    default port as no port, the path without a trailing slash. The scheme itself is not compared:
    an EHR behind a TLS proxy may write its own links with http."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    return (parts.hostname or "").rstrip(".").lower(), port, parts.path.rstrip("/")
