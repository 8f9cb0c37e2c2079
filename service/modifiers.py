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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from service.shapes import dicts
from service.wording import listing

MODIFIER = "modifierExtension"

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
}


def modifies(resource: Mapping[str, Any]) -> bool:
    """Whether a chart record carries a modifier extension (any value but an empty one) at its top or
    in a backbone element of it that is read (`READ_BACKBONES`)."""
    if resource.get(MODIFIER):
        return True
    parts = READ_BACKBONES.get(resource.get("resourceType"), ())
    return any(_carries(value) for part in parts if (value := resource.get(part)) is not None)


def order_modifiers(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """The urls of every modifier extension anywhere in an order (`no url` for one without); empty
    when it carries none."""
    return tuple(sorted(set(_urls(resource))))


def not_understood(urls: tuple[str, ...]) -> str:
    """Why an order carrying the modifier extensions `urls` was not judged, as cards say it."""
    return f"it carries a modifier extension this service does not understand ({listing(list(urls))})"


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
