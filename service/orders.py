"""Order recognition: which draft orders are intrathecal pump orders, and of what kind.

Reads `context.draftOrders` as the clinical data contract (section 2) says: CPT/HCPCS under every
system alias in `ServiceRequest.code`, `DeviceRequest.codeCodeableConcept`, a `Device` reached
through `DeviceRequest.codeReference`, and the CRD billing-options extension. The code table
itself is data (`policies/order-codes.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.codes import CPT, HCPCS, RXNORM, Code, codings, concept_text, first_display

BILLING_OPTIONS_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-billing-options"
ORDER_TYPES = ("ServiceRequest", "DeviceRequest")
INTRATHECAL_ROUTES = {"72607000", "404820008"}

DeviceFetcher = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class OrderCodeTable:
    """(system, code) → base request kind, for every code that puts an order in scope."""

    kinds: Mapping[tuple[str, str], str]

    def kind_of(self, code: Code) -> str | None:
        return self.kinds.get((code.system, code.code))


def load_order_codes(path: Path) -> OrderCodeTable:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table: dict[tuple[str, str], str] = {}
    for kind, systems in (raw.get("kinds") or {}).items():
        for system, codes in systems.items():
            if system not in (CPT, HCPCS):
                raise ValueError(f"{path.name}: kind '{kind}' uses unknown system '{system}'")
            for code in codes:
                key = (system, str(code).upper())
                if key in table:
                    raise ValueError(f"{path.name}: code {code} is listed under two kinds")
                table[key] = kind
    return OrderCodeTable(table)


@dataclass(frozen=True)
class PumpOrder:
    """A draft order recognised as an IDDS order; `kind` is the kind its code implies."""

    reference: str
    resource_type: str
    resource: Mapping[str, Any]
    code: Code
    kind: str
    label: str


@dataclass(frozen=True)
class Infusate:
    """A drug ordered for the pump (a MedicationRequest in the same draftOrders Bundle)."""

    reference: str
    codes: tuple[Code, ...]
    text: str
    intrathecal_route: bool


class DraftOrders:
    """Index over the `draftOrders` Bundle: resolves `Type/id`, `fullUrl` and contained references."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.resources: list[dict[str, Any]] = []
        self._by_ref: dict[str, dict[str, Any]] = {}
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            self.resources.append(resource)
            self._by_ref[reference_of(resource)] = resource
            if isinstance(entry.get("fullUrl"), str):
                self._by_ref[entry["fullUrl"]] = resource

    def get(self, reference: str) -> dict[str, Any] | None:
        if reference in self._by_ref:
            return self._by_ref[reference]
        tail = "/".join(reference.rstrip("/").split("/")[-2:])
        return self._by_ref.get(tail)

    def in_scope(self, selections: Iterable[str] | None) -> list[dict[str, Any]]:
        """order-select: only the selected orders; order-sign (selections None): all drafts."""
        if selections is None:
            return list(self.resources)
        chosen: list[dict[str, Any]] = []
        for ref in selections:
            resource = self.get(ref)
            if resource is not None and not any(resource is seen for seen in chosen):
                chosen.append(resource)
        return chosen


def reference_of(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _billing_codes(element: Any) -> Iterator[Code]:
    if not isinstance(element, dict):
        return
    for ext in element.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == BILLING_OPTIONS_URL:
            yield from codings(ext.get("valueCodeableConcept"))


def _contained(resource: Mapping[str, Any], local_id: str) -> dict[str, Any] | None:
    for item in resource.get("contained") or []:
        if isinstance(item, dict) and item.get("id") == local_id:
            return item
    return None


def _device_for(
    resource: Mapping[str, Any], drafts: DraftOrders, fetch_device: DeviceFetcher | None
) -> dict[str, Any] | None:
    ref = (resource.get("codeReference") or {}).get("reference")
    if not isinstance(ref, str) or not ref:
        return None
    if ref.startswith("#"):
        return _contained(resource, ref[1:])
    found = drafts.get(ref)
    if found is None and fetch_device is not None and ref.split("/")[-2:-1] == ["Device"]:
        found = fetch_device(ref)
    return found if isinstance(found, dict) and found.get("resourceType") == "Device" else None


def order_codings(
    resource: Mapping[str, Any], drafts: DraftOrders, fetch_device: DeviceFetcher | None = None
) -> list[tuple[Any, Code]]:
    """Every (concept, coding) pair the contract says may carry the order's code, in priority order."""
    found: list[tuple[Any, Code]] = []
    rtype = resource.get("resourceType")
    if rtype == "ServiceRequest":
        concept = resource.get("code")
        found += [(concept, c) for c in codings(concept)]
        found += [(concept, c) for c in _billing_codes(concept)]
    elif rtype == "DeviceRequest":
        concept = resource.get("codeCodeableConcept")
        found += [(concept, c) for c in codings(concept)]
        found += [(concept, c) for c in _billing_codes(concept)]
        device = _device_for(resource, drafts, fetch_device) if concept is None else None
        if device is not None:
            device_type = device.get("type")
            found += [(device_type, c) for c in codings(device_type)]
            found += [(device_type, c) for c in _billing_codes(device_type)]
            found += [(device_type, c) for c in _billing_codes(device)]
    found += [(resource.get("code"), c) for c in _billing_codes(resource)]
    return found


def recognise(
    resource: Mapping[str, Any],
    drafts: DraftOrders,
    table: OrderCodeTable,
    fetch_device: DeviceFetcher | None = None,
) -> PumpOrder | None:
    """The PumpOrder for a draft order whose code is an IDDS code, else None."""
    if resource.get("resourceType") not in ORDER_TYPES:
        return None
    for concept, code in order_codings(resource, drafts, fetch_device):
        kind = table.kind_of(code)
        if kind is not None:
            label = f"{code.system.upper()} {code.code} {first_display(concept, [code])}".strip()
            return PumpOrder(reference_of(resource), resource["resourceType"], resource, code, kind, label)
    return None


def infusates(drafts: DraftOrders) -> list[Infusate]:
    """MedicationRequests among the drafts: the drugs the pump is to deliver."""
    result = []
    for resource in drafts.resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        concept = resource.get("medicationCodeableConcept")
        if concept is None:
            ref = (resource.get("medicationReference") or {}).get("reference", "")
            medication = (
                _contained(resource, ref[1:]) if ref.startswith("#") else drafts.get(ref) if ref else None
            )
            concept = (medication or {}).get("code")
        codes = tuple(c for c in codings(concept) if c.system == RXNORM)
        text = concept_text(concept)
        routes = {
            c.code
            for dosage in resource.get("dosageInstruction") or []
            if isinstance(dosage, dict)
            for c in codings(dosage.get("route"))
        }
        result.append(Infusate(reference_of(resource), codes, text, bool(routes & INTRATHECAL_ROUTES)))
    return result
