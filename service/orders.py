"""Order recognition: which draft orders are intrathecal pump orders, and of what kind.

Reads `context.draftOrders` as the clinical data contract (section 2) says: CPT/HCPCS under every
system alias in `ServiceRequest.code`, `DeviceRequest.codeCodeableConcept`, a `Device` reached
through `DeviceRequest.codeReference`, and the CRD billing-options extension. The code table
itself is data (`policies/order-codes.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.codes import CPT, Code, code_words, codings, first_display
from service.references import on_server, parse_reference
from service.shapes import (
    as_dict,
    as_list,
    contained,
    contained_by_id,
    dicts,
    reference_of,
    reference_target,
)
from service.terminology import IngredientFinder
from service.vocabulary import Vocabulary
from service.yamlsource import Located, SourceError, check_schema, load

BILLING_OPTIONS_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options"
ORDER_TYPES = ("ServiceRequest", "DeviceRequest")  # the orders that can be pump orders
# appointment-book: an Appointment based on no order is the order itself, what is booked coded on it
# (CRD 2.2 profile-appointment-no-order: `serviceType` from the order codes, with billing options)
BOOKED = "Appointment"
ORDER_TYPE_WORDS = {"ServiceRequest": "procedure orders", "DeviceRequest": "device (pump hardware) orders"}
# The orders CRD's draftOrders may hold; other resources there (a Device, Medication or Condition an
# order references) are read as the orders' detail and never get coverage information.
REQUEST_TYPES = frozenset(
    {
        "CommunicationRequest",
        "DeviceRequest",
        "MedicationRequest",
        "NutritionOrder",
        "ServiceRequest",
        "VisionPrescription",
    }
)


class OrderCodesError(SourceError):
    """The order-code table is invalid, or uses a kind the vocabulary does not define."""


DeviceFetcher = Callable[[str], dict[str, Any] | None]
# How long an open trial order counts as the trial already ordered, from the later of when it was
# written and when it is planned for: none of the five policies bounds a trial's timing, so a default
# of the order-code table (`trial_ordered_days`), a judgement (review s17 review2 N-4): past about
# three months an order never done is more likely left behind than waiting.
TRIAL_ORDERED_DAYS = 90


@dataclass(frozen=True)
class OrderCodeTable:
    """(system, code) → base request kind, for every code that puts an order in scope."""

    kinds: Mapping[tuple[str, str], str]
    trial_first: tuple[Code, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)  # code → the short name a card uses
    drugs: Mapping[str, str] = field(default_factory=dict)  # code → the drug its order line names
    trial_ordered_days: int = TRIAL_ORDERED_DAYS  # how long an open trial order counts (next_steps.py)
    on_a_pump: frozenset[str] = frozenset()  # the codes that act on a pump already implanted

    def kind_of(self, code: Code) -> str | None:
        return self.kinds.get((code.system, code.code))

    def line_name(self, code: Code, kind: str) -> str:
        """How a card names an order line of `code` (of `kind`): "62362 programmable pump"."""
        return f"{code.code} {self.names.get(code.code, kind.replace('-', ' '))}"

    def cpt_codes(self, kind: str) -> tuple[str, ...]:
        """The CPT codes that imply `kind`, sorted."""
        return tuple(sorted(code for (system, code), of in self.kinds.items() if (system, of) == (CPT, kind)))

    def proposed_trial_codes(self) -> tuple[Code, ...]:
        """Every trial code (CPT and HCPCS, sorted), when the table proposes a trial before an implant
        (`trial_first`): an open order of any of them is a trial already ordered, as a draft order of
        any of them is a trial ordered (service/next_steps.py); none otherwise."""
        if not self.trial_first:
            return ()
        return tuple(Code(*key) for key, kind in sorted(self.kinds.items()) if kind == "trial")


def load_order_codes(path: Path, vocabulary: Vocabulary, finder: IngredientFinder) -> OrderCodeTable:
    """The order-code table of `path`; raises OrderCodesError naming the file, line and element of
    the first thing wrong (its shape is policies/schema/order-codes.schema.json). `finder`: the value
    sets' ingredients, one of which each drug an order code names must be."""
    try:
        source = load(path)  # a key given twice is refused, as in every policy file
        check_schema(source, "order-codes.schema.json")
    except SourceError as exc:
        raise OrderCodesError(str(exc)) from None
    raw = source.data
    table: dict[tuple[str, str], str] = {}
    for kind, systems in raw["kinds"].items():
        if vocabulary.unknown([kind], "request_kinds"):
            raise OrderCodesError(
                f"{source.at(('kinds', kind))}: '{kind}' is not a request kind of vocabulary.yaml"
            )
        for system, codes in systems.items():  # `cpt` and `hcpcs`, as service/codes.py names them
            for i, code in enumerate(codes):
                key = (system, code.upper())
                if key in table:
                    where = source.at(("kinds", kind, system, i))
                    raise OrderCodesError(
                        f"{where}: code {code} is listed under two kinds ({table[key]}, {kind})"
                    )
                table[key] = kind
    trials: list[Code] = []
    for i, entry in enumerate(raw.get("trial_first") or []):
        code = Code(CPT, entry["code"].upper(), entry.get("display"))
        if table.get((CPT, code.code)) != "trial":
            where = source.at(("trial_first", i, "code"))
            raise OrderCodesError(f"{where}: trial_first code {code.code} is not a CPT trial code of `kinds`")
        trials.append(code)
    names = _by_order_code(source, raw, table, "names", "a name")
    drugs = _by_order_code(source, raw, table, "drugs", "a drug")
    for written, drug in (raw.get("drugs") or {}).items():
        if not finder.names(drug, ()):
            where = source.at(("drugs", written))
            raise OrderCodesError(f"{where}: {written} names {drug}, no ingredient of the value sets")
    days = raw.get("trial_ordered_days", TRIAL_ORDERED_DAYS)
    return OrderCodeTable(table, tuple(trials), names, drugs, days, _on_a_pump(source, raw, table))


def _on_a_pump(
    source: Located, raw: Mapping[str, Any], table: Mapping[tuple[str, str], str]
) -> frozenset[str]:
    """The codes of the table's `on_a_pump` section: every code of its `kinds`, and its `codes`; each
    kind a kind of `kinds`, each code an order code of it."""
    section = raw.get("on_a_pump") or {}
    found: set[str] = set()
    for i, kind in enumerate(section.get("kinds") or []):
        codes = {code for (_, code), of in table.items() if of == kind}
        if not codes:
            where = source.at(("on_a_pump", "kinds", i))
            raise OrderCodesError(f"{where}: on_a_pump kind '{kind}' is not a kind of `kinds`")
        found |= codes
    for i, written in enumerate(section.get("codes") or []):
        if not any(code == written.upper() for _, code in table):
            where = source.at(("on_a_pump", "codes", i))
            raise OrderCodesError(f"{where}: on_a_pump code {written} is not an order code of `kinds`")
        found.add(written.upper())
    return frozenset(found)


def _by_order_code(
    source: Located, raw: Mapping[str, Any], table: Mapping[tuple[str, str], str], key: str, what: str
) -> dict[str, str]:
    """The table's `key` section (code → text), each code one of `kinds`."""
    for written in raw.get(key) or {}:
        if not any(code[1] == written.upper() for code in table):
            where = source.at((key, written))
            raise OrderCodesError(
                f"{where}: {what} is given for {written}, which is not an order code of `kinds`"
            )
    return {written.upper(): text for written, text in (raw.get(key) or {}).items()}


@dataclass(frozen=True)
class PumpOrder:
    """A draft order recognised as an IDDS order; `kind` is the kind its code implies."""

    reference: str
    resource_type: str
    resource: Mapping[str, Any]
    code: Code
    kind: str
    label: str
    name: str = ""  # the short name a card uses ("62362 programmable pump")
    reasons: tuple[Mapping[str, Any], ...] = ()  # Conditions its reasonReference names within the call
    drug: str = ""  # the drug its code names (a drug order line: J0476 baclofen for the trial)
    on_a_pump: bool = False  # it acts on a pump already implanted (a refill, a pump removal)


@dataclass(frozen=True)
class BilledLine:
    """An order of the call that is no pump order but is billed as a line of one (`joins`): a drug
    order coded with an order code (J2274 morphine beside a 95990 refill, `billed_code`). It shares
    that order's coverage information and the decision card speaking for that order names it."""

    reference: str
    code: str  # its order code ("J2274")
    name: str  # how a card names it ("J2274 morphine")
    joins: str  # the pump order it is billed with


class DraftOrders:
    """Index over the `draftOrders` Bundle: resolves `Type/id`, `fullUrl` and contained references.
    The drafts are the call's, held on the call's FHIR `server` unless an entry's http(s) fullUrl names
    another (service/references.py `on_server`; None: not known, any server's URL may name them)."""

    def __init__(self, bundle: Mapping[str, Any], server: str | None = None) -> None:
        self.server = server
        self.resources: list[dict[str, Any]] = []
        self._by_ref: dict[str, dict[str, Any]] = {}
        self._held_at: dict[str, str] = {}  # `Type/id` -> the server base its http(s) fullUrl names
        for entry in dicts(bundle.get("entry")):
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            self.resources.append(resource)
            self._by_ref[reference_of(resource)] = resource
            if isinstance(full_url := entry.get("fullUrl"), str):
                self._by_ref[full_url] = resource
                if (held := parse_reference(full_url)) is not None and held.base is not None:
                    self._held_at[held.local] = held.base

    def get(self, reference: str) -> dict[str, Any] | None:
        """The resource `reference` names: by `Type/id`, `fullUrl`, or an absolute URL of the server
        the draft is held on, the one its entry's http(s) fullUrl names, else the call's (a `urn:uuid:`
        fullUrl or none); one naming another server's resource of the same id is not it."""
        if reference in self._by_ref:
            return self._by_ref[reference]
        parsed = parse_reference(reference)
        if parsed is None:
            return None
        held_at = self._held_at.get(parsed.local, self.server)
        if parsed.base is not None and held_at is not None and not on_server(parsed, held_at):
            return None
        return self._by_ref.get(parsed.local)

    def in_scope(self, selections: Iterable[str] | None, appointments: bool = False) -> list[dict[str, Any]]:
        """order-select: only the selected orders; order-sign (selections None): all the orders, and
        with `appointments` (appointment-book) the Appointments among them (BOOKED). The other
        resources of the Bundle are no orders (REQUEST_TYPES)."""
        if selections is None:
            kinds = REQUEST_TYPES | {BOOKED} if appointments else REQUEST_TYPES
            return [r for r in self.resources if r.get("resourceType") in kinds]
        chosen: list[dict[str, Any]] = []
        for ref in selections:
            resource = self.get(ref)
            if (
                resource is not None
                and resource.get("resourceType") in REQUEST_TYPES
                and not any(resource is seen for seen in chosen)
            ):
                chosen.append(resource)
        return chosen


def _billing_codes(element: Any) -> Iterator[Code]:
    for ext in dicts(as_dict(element).get("extension")):
        if ext.get("url") == BILLING_OPTIONS_URL:
            yield from codings(ext.get("valueCodeableConcept"))


def named_device(resource: Mapping[str, Any]) -> str | None:
    """The reference of the Device a DeviceRequest is coded by (`codeReference`), when it is."""
    if resource.get("resourceType") != "DeviceRequest" or resource.get("codeCodeableConcept") is not None:
        return None
    return reference_target(resource.get("codeReference"))


def device_lookup(
    resource: Mapping[str, Any], drafts: DraftOrders, fetch_device: DeviceFetcher | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The Device a DeviceRequest is coded by (`named_device`): contained in it, among the call's
    orders, else read by `fetch_device`; and, when the call itself shows it cannot be had, why. (None,
    None) when the order names none, or the fetcher could not give it (the fetcher's to tell why)."""
    ref = named_device(resource)
    if ref is None:
        return None, None
    if ref.startswith("#"):
        found = contained(resource, ref[1:])
        if found is None:
            return None, "the order does not contain it"
    elif (found := drafts.get(ref)) is None:
        parsed = parse_reference(ref)
        if parsed is None or parsed.type != "Device":
            return None, "the call's orders do not hold it"
        found = fetch_device(ref) if fetch_device is not None else None
        if found is None:
            return None, None
    kind = found.get("resourceType")
    if kind != "Device":
        return None, f"it is a {kind if isinstance(kind, str) else 'resource of no type'}, not a Device"
    return found, None


def _coded(concept: Any, *more: Iterable[Code]) -> list[tuple[Any, Code]]:
    """(concept, coding) for the concept's codings, its CRD billing codes, and `more` codes."""
    return [(concept, c) for codes in (codings(concept), _billing_codes(concept), *more) for c in codes]


def order_codings(
    resource: Mapping[str, Any], drafts: DraftOrders, fetch_device: DeviceFetcher | None = None
) -> list[tuple[Any, Code]]:
    """Every (concept, coding) pair the contract says may carry the order's code, in priority order."""
    found: list[tuple[Any, Code]] = []
    rtype = resource.get("resourceType")
    if rtype == "ServiceRequest":
        found += _coded(resource.get("code"))
    elif rtype == "DeviceRequest":
        concept = resource.get("codeCodeableConcept")
        found += _coded(concept)
        device = device_lookup(resource, drafts, fetch_device)[0] if concept is None else None
        if device is not None:
            found += _coded(device.get("type"), _billing_codes(device))
    elif rtype == BOOKED:
        for concept in (*as_list(resource.get("serviceType")), resource.get("appointmentType")):
            found += _coded(concept)
    found += [(resource.get("code"), c) for c in _billing_codes(resource)]
    return found


def recognise(
    resource: Mapping[str, Any],
    drafts: DraftOrders,
    table: OrderCodeTable,
    fetch_device: DeviceFetcher | None = None,
) -> PumpOrder | None:
    """The PumpOrder for a draft order (or an Appointment standing for one, BOOKED) whose code is an
    IDDS code, else None."""
    if resource.get("resourceType") not in (*ORDER_TYPES, BOOKED):
        return None
    for concept, code in order_codings(resource, drafts, fetch_device):
        kind = table.kind_of(code)
        if kind is not None:
            label = f"{code_words(code.system, code.code)} {first_display(concept, [code])}".strip()
            name = table.line_name(code, kind)
            reference = reference_of(resource)
            reasons = tuple(_reason_conditions(resource, drafts))
            drug = table.drugs.get(code.code, "")
            on_a_pump = code.code in table.on_a_pump
            return PumpOrder(
                reference,
                resource["resourceType"],
                resource,
                code,
                kind,
                label,
                name,
                reasons,
                drug,
                on_a_pump,
            )
    return None


def billed_code(resource: Mapping[str, Any], table: OrderCodeTable) -> tuple[Code, str] | None:
    """The order code a drug order (MedicationRequest) is coded with, in `medicationCodeableConcept`
    or the CRD billing options on it, and the kind the table lists it under (J2274: refill-analysis);
    None for any other resource, or a drug order coded otherwise (RxNorm). A drug order is no pump
    order (ORDER_TYPES) and is the pump's drug only as contract §2 says (service/infusates.py): its
    order code tells only which pump order's line it is billed as (service/billed_lines.py)."""
    if resource.get("resourceType") != "MedicationRequest":
        return None
    for _, code in _coded(resource.get("medicationCodeableConcept")):
        if (kind := table.kind_of(code)) is not None:
            return code, kind
    return None


def _reason_conditions(resource: Mapping[str, Any], drafts: DraftOrders) -> Iterator[dict[str, Any]]:
    """The Conditions an order's `reasonReference` names that the call itself carries: contained in
    the order, or among the draft orders (those in the chart are the record's to find)."""
    inside_by_id = contained_by_id(resource)
    for ref in map(reference_target, as_list(resource.get("reasonReference"))):
        found = (inside_by_id.get(ref[1:]) if ref.startswith("#") else drafts.get(ref)) if ref else None
        if isinstance(found, dict) and found.get("resourceType") == "Condition":
            yield found
