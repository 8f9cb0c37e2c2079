"""Modifier extensions, read one way everywhere.

A `modifierExtension` changes what the element holding it means (a Condition "not present", an
order "for a trial of another device"), and FHIR R4 forbids processing a resource as if an unknown
one were not there (extensibility.html#modifierExtension). This service knows none, so a resource
carrying one is not read as if it said what it would say without it: an order is not judged, a
chart record is left out. An order is small and is sent back to the EHR, so every element of it is
looked at. A chart record is looked at where it is read: its top, and the backbone elements of it
that are read (`READ_BACKBONES`: R4 allows a modifier on any backbone element, where it changes that
element and what it holds, BackboneElement.modifierExtension); a modifier on an element not read
(a Condition's `evidence`, a Procedure's `performer`) changes nothing this service reads, and
walking the whole of every record of a large chart costs more than its share of a call's CPU.

What an order or record is read through is part of it (`READ_THROUGH`): a DeviceRequest coded by a
Device is read by that Device's type, a drug order or record naming its drug by a Medication by that
Medication's code and ingredients, an order's reason by the Condition it names within the call. A
modifier there changes what the order or record says as much as one on it, so it is counted as one on
it: an order walks them whole, a chart record where they are read. Each caller finds them where its
reader does (`Resolve`): gather among the call's orders, the EHR's prefetch or FHIR server, the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from service.shapes import contained, dicts, reference_target
from service.wording import listing

MODIFIER = "modifierExtension"

Resolve = Callable[[str], Any]  # the resource a (non-contained) reference names, where it is found; else None

# What each kind of order or record is read through: the element naming another resource, and the kind
# of resource read there (service/orders.py `order_codings` reads a DeviceRequest's code from its
# Device, `_reason_conditions` an order's reason from the Condition the call carries; shapes.py
# `medication_concept` a drug from its Medication). A reference to another kind is not read through.
READ_THROUGH: Mapping[str, tuple[tuple[str, str], ...]] = {
    "ServiceRequest": (("reasonReference", "Condition"),),
    "DeviceRequest": (("codeReference", "Device"), ("reasonReference", "Condition")),
    "Appointment": (("reasonReference", "Condition"),),  # one based on no order is read as one
    "MedicationRequest": (("medicationReference", "Medication"),),
    "MedicationStatement": (("medicationReference", "Medication"),),
}

# The backbone elements of each kind of chart record that are read (service/record.py's readers, and
# service/infusates.py's of the pump's drug), each looked at whole (a Dosage's Timing is one too).
# None of the others of these kinds is read: a Condition's `stage`/`evidence`, an AllergyIntolerance's
# `reaction`, a Procedure's `performer`, a MedicationRequest's `substitution`, an Observation's
# `referenceRange`, a Device's `udiCarrier`/`property`.
READ_BACKBONES: Mapping[str, tuple[str, ...]] = {
    "MedicationRequest": ("dosageInstruction", "dispenseRequest"),  # the route; a course's span
    "MedicationStatement": ("dosage",),  # the route
    "Procedure": ("focalDevice",),  # the Devices it put in
    "Observation": ("component",),  # it-trial-scale-reduction's `scale` (contract §5)
    "Device": ("deviceName",),  # its names, read with its type
    "QuestionnaireResponse": ("item",),  # the answers: items, their answers, the items in those
    "Medication": ("ingredient",),  # read through a drug record (READ_THROUGH): its ingredients' codes
}


def read_through(resource: Mapping[str, Any], resolve: Resolve | None = None) -> list[Mapping[str, Any]]:
    """The resources `resource` is read through (`READ_THROUGH`): contained in it, else as `resolve`
    finds them; one that cannot be found, or is of another kind than is read there, is not."""
    found = []
    for element, kind in READ_THROUGH.get(resource.get("resourceType"), ()):
        value = resource.get(element)  # one Reference (codeReference) or several (reasonReference)
        for target in map(reference_target, value if isinstance(value, list) else [value]):
            if not target:
                continue
            named = (
                contained(resource, target[1:])
                if target.startswith("#")
                else (resolve(target) if resolve else None)
            )
            if isinstance(named, Mapping) and named.get("resourceType") == kind:
                found.append(named)
    return found


def modifies(resource: Mapping[str, Any], resolve: Resolve | None = None) -> bool:
    """Whether a chart record carries a modifier extension (any value but an empty one) at its top or
    in a backbone element of it that is read (`READ_BACKBONES`), or one of the resources it is read
    through does (`read_through`, which finds those not contained by `resolve`)."""
    return _modifies_itself(resource) or any(_modifies_itself(r) for r in read_through(resource, resolve))


def _modifies_itself(resource: Mapping[str, Any]) -> bool:
    if resource.get(MODIFIER):
        return True
    parts = READ_BACKBONES.get(resource.get("resourceType"), ())
    return any(_carries(value) for part in parts if (value := resource.get(part)) is not None)


def order_modifiers(resource: Mapping[str, Any], resolve: Resolve | None = None) -> tuple[str, ...]:
    """The urls of every modifier extension anywhere in an order, or in a resource it is read through
    (`read_through`, those not contained found by `resolve`), walked whole too (`no url` for one
    without); empty when it carries none."""
    urls = set(_urls(resource))
    for named in read_through(resource, resolve):
        urls.update(_urls(named))
    return tuple(sorted(urls))


def not_understood(urls: tuple[str, ...], holder: str = "it") -> str:
    """Why an order was not judged, as cards say it: `holder` (the order, or what books it) carries
    the modifier extensions `urls`."""
    return f"{holder} carries a modifier extension this service does not understand ({listing(list(urls))})"


def _carries(value: Any) -> bool:
    """Whether a modifier extension (any value but an empty one) is anywhere in `value`: `_urls`'s
    answer, without its generators (every read record of a chart is looked at)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if item.get(MODIFIER):
                return True
            stack.extend(v for v in item.values() if isinstance(v, Mapping | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, Mapping | list))
    return False


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        found = value.get(MODIFIER)
        if found:
            extensions = (
                dicts(found) if isinstance(found, list) else [found] if isinstance(found, dict) else []
            )
            urls = [u if isinstance(u := e.get("url"), str) else "no url" for e in extensions]
            yield from urls or ["no url"]
        for key, item in value.items():
            if key != MODIFIER and isinstance(item, Mapping | list):
                yield from _urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _urls(item)
