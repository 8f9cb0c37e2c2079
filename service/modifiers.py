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
reader does (`Resolve`): gather among the call's orders, the EHR's prefetch or FHIR server, the chart;
only a reference to the kind read there is resolved. A card names the record holding one (`Carried`):
the order, or its device record, drug record or reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from service.references import parse_reference
from service.shapes import contained_by_id, reference_target
from service.strict_json import as_written
from service.wording import listing

MODIFIER = "modifierExtension"
_MODIFIER_KEY = b'"modifierExtension"'  # as orjson writes the key (nothing in it is escaped)
_MODIFIER_TEXT = MODIFIER.encode()  # the key's letters as written plainly
# A `\u` escape of a character from U+0040 to U+007F: the only escape that can write a letter
_ESCAPED_LETTER = re.compile(rb"\\u00[4-7]")
_CONTAINERS = (dict, list)

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
    finds them; one that cannot be found, or is of another kind than is read there, is not. A reference
    that names another kind (`Device/1` as a reason) is never resolved: `resolve` may read the EHR's
    FHIR server, and an order's reasons may name hundreds (review2 F-4), none of them read."""
    return [named for _, named in _named_through(resource, resolve)]


def _named_through(
    resource: Mapping[str, Any], resolve: Resolve | None
) -> list[tuple[str, Mapping[str, Any]]]:
    """`read_through`'s resources, each with the reference naming it (as written)."""
    found = []
    inside: dict[str, dict[str, Any]] | None = None  # its contained resources by id, indexed once
    for element, kind in READ_THROUGH.get(resource.get("resourceType"), ()):
        value = resource.get(element)  # one Reference (codeReference) or several (reasonReference)
        for target in map(reference_target, value if isinstance(value, list) else [value]):
            if not target:
                continue
            if target.startswith("#"):
                inside = contained_by_id(resource) if inside is None else inside
                named = inside.get(target[1:])
            elif _names_other_kind(target, kind):
                continue
            else:
                named = resolve(target) if resolve else None
            if isinstance(named, Mapping) and named.get("resourceType") == kind:
                found.append((target, named))
    return found


def _names_other_kind(target: str, kind: str) -> bool:
    """Whether a reference names its resource's type, and that is not `kind` (a `urn:uuid:` one names
    none: only what it resolves to tells)."""
    parsed = parse_reference(target)
    return parsed is not None and parsed.type != kind


def modifies(resource: Mapping[str, Any], resolve: Resolve | None = None) -> bool:
    """Whether a chart record carries a modifier extension (`present`) at its top or
    in a backbone element of it that is read (`READ_BACKBONES`), or one of the resources it is read
    through does (`read_through`, which finds those not contained by `resolve`)."""
    return _modifies_itself(resource) or any(_modifies_itself(r) for r in read_through(resource, resolve))


def _modifies_itself(resource: Mapping[str, Any]) -> bool:
    if present(resource.get(MODIFIER)):
        return True
    parts = READ_BACKBONES.get(resource.get("resourceType"), ())
    return any(_carries(value) for part in parts if (value := resource.get(part)) is not None)


# What each kind of resource an order is read through is to it, as a card names it (`not_understood`).
THROUGH_WORDS = {"Device": "device record", "Medication": "drug record", "Condition": "reason"}


@dataclass(frozen=True)
class Carried:
    """The modifier extensions of an order (or Appointment), by what holds them (`order_modifiers`):
    the urls on itself (`own`), and on each resource it is read through (`through`: its kind, the
    reference naming it, the urls); false when none holds any. A card names the one holding them."""

    own: tuple[str, ...] = ()
    through: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.own or self.through)

    def holder(self, whose: str) -> str:
        """What holds them, after `whose` ("the order's"): "the order" itself when it holds any, else
        the first record it is read through by its kind ("the order's device record")."""
        if self.own or not self.through:
            return whose.removesuffix("'s")
        return f"{whose} {THROUGH_WORDS.get(self.through[0][0], 'record')}"


def order_modifiers(resource: Mapping[str, Any], resolve: Resolve | None = None) -> Carried:
    """The modifier extensions anywhere in an order, and in each resource it is read through
    (`read_through`, those not contained found by `resolve`), walked whole too: their urls (`no url`
    for one without) by what holds them."""
    through: dict[tuple[str, str], set[str]] = {}
    named_through = _named_through(resource, resolve)
    for target, named in named_through:
        if urls := _urls(named):
            through.setdefault((str(named["resourceType"]), target), set()).update(urls)
    itself = dict(resource)  # less what it contains and is read through: those hold their own
    if isinstance(contained := resource.get("contained"), list):
        read = {id(named) for _, named in named_through}
        itself["contained"] = [r for r in contained if id(r) not in read]
    return Carried(
        tuple(sorted(_urls(itself))),
        tuple((kind, target, tuple(sorted(urls))) for (kind, target), urls in through.items()),
    )


def not_understood(carried: Carried, holder: str = "it", whose: str = "its") -> str:
    """Why an order was not judged, as cards say it: `holder` (the order, or what books it) carries
    the modifier extensions of `carried`, or a record it is read through does (`whose` device record,
    drug record or reason, with its reference)."""
    said = [(holder, carried.own)] if carried.own else []
    said += [
        (f"{whose} {THROUGH_WORDS.get(kind, 'record')} ({target})", urls)
        for kind, target, urls in carried.through
    ]
    return "; ".join(
        f"{who} carries a modifier extension this service does not understand ({listing(list(urls))})"
        for who, urls in said
    )


def present(value: Any) -> bool:
    """Whether a `modifierExtension` slot holds anything: any value but none (absent, or null, as an
    absent `extension` is read) and an empty array. A value that is not an array of extensions
    (`false`, `0`, `""`, `{}`) is not nothing: it is a modifier this service does not understand
    (`no url`) where the request does not refuse it (service/hooks/models.py)."""
    return value is not None and value != []


def may_carry(value: Any) -> bool:
    """Whether a modifier extension may be anywhere in `value`: not when `value` written by orjson (a
    pass in C) holds no `modifierExtension` key, which says so at once for what holds none, 16 times
    quicker than a walk on a chart of large questionnaires (review s16 R-8); yes when it does, or when
    it cannot be written so (an integer past 64 bits, a key that is not text), for a walk to decide."""
    text = written(value)
    return text is None or _MODIFIER_KEY in text


def written(value: Any) -> bytes | None:
    """`value` as orjson writes it (`may_carry`'s look), for a caller that looks at it for more than a
    modifier (service/hooks/models.py); None when it cannot be written so."""
    try:
        return orjson.dumps(value, default=as_written)
    except orjson.JSONEncodeError:
        return None


def text_may_carry(text: bytes) -> bool:
    """Whether JSON `text` (a request body as it came) may hold a `modifierExtension` key anywhere:
    not when its bytes hold neither the key's letters as they are nor a `\\u` escape of a letter (a
    key may write any of its letters so, and no other escape writes one), which says so for every
    resource the EHR sent (its prefetch, its orders) in one pass over bytes, before any is written."""
    if _MODIFIER_TEXT in text:
        return True
    return b"\\" in text and _ESCAPED_LETTER.search(text) is not None  # (no backslash: a quick look)


def _carries(value: Any) -> bool:
    """Whether a modifier extension (`present`) is anywhere in `value`: `_urls`'s answer, stopping at
    the first, walked only where `may_carry`."""
    return may_carry(value) and _holder(value, present) is not None


def _holder(value: Any, holds: Callable[[Any], bool]) -> dict[str, Any] | None:
    """The first object anywhere in `value` whose `modifierExtension` `holds`, else None. One walk
    without recursion that pushes only non-empty objects and arrays: a resource parsed from JSON is
    dicts and lists, and the request's arrays may hold hundreds of thousands of items."""
    stack = [value] if isinstance(value, _CONTAINERS) else []  # (a malformed record's part: a scalar)
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, dict):
            if MODIFIER in item and holds(item[MODIFIER]):
                return item
            item = item.values()
        for child in item:
            if child and isinstance(child, _CONTAINERS):
                push(child)
    return None


def _urls(value: Any) -> set[str]:
    """The urls of the modifier extensions (`present`) anywhere in `value`, as `_holder` walks it,
    walked only where `may_carry` (an order and what it is read through, each call)."""
    urls: set[str] = set()
    if not may_carry(value):
        return urls
    stack = [value] if isinstance(value, _CONTAINERS) else []  # (a malformed record's part: a scalar)
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, dict):
            if MODIFIER in item and present(found := item[MODIFIER]):
                urls.update(_named(found))
            item = [child for key, child in item.items() if key != MODIFIER]
        for child in item:
            if child and isinstance(child, _CONTAINERS):
                push(child)
    return urls


def _named(found: Any) -> list[str]:
    """The urls a present `modifierExtension` value names: each extension's, `no url` for one without,
    for an item that is no extension, and for a value that is not an array (one object: its url)."""
    extensions = found if isinstance(found, list) else [found]
    return [u if isinstance(e, dict) and isinstance(u := e.get("url"), str) else "no url" for e in extensions]


def malformed(resource: Mapping[str, Any], text: bytes | None = None) -> tuple[str, str] | None:
    """Where in `resource` a `modifierExtension` is present (`present`) but not an array of
    extensions (JSON objects), as a path from the resource (`.dosageInstruction[0].modifierExtension`,
    `[1]` after it for an item that is no object), with what it must be; None when every one is well
    formed. For the request's own resources, refused as their `extension` is (service/hooks/models.py).
    Looked for as `_holder` walks, only where `may_carry` (`text`: the resource as `written` writes it,
    when the caller has it); the path worked out only for a resource that has one."""
    carries = may_carry(resource) if text is None else _MODIFIER_KEY in text
    if not carries or _holder(resource, _ill_formed) is None:
        return None
    return _where_ill_formed(resource)


def _ill_formed(value: Any) -> bool:
    return present(value) and (not isinstance(value, list) or not all(isinstance(e, dict) for e in value))


def _where_ill_formed(resource: Mapping[str, Any]) -> tuple[str, str] | None:
    stack: list[tuple[Any, Any]] = [(resource, None)]  # (value, (where its holder is, its key) or None)
    while stack:
        item, at = stack.pop()
        for key, value in item.items() if isinstance(item, dict) else enumerate(item):
            if key == MODIFIER and isinstance(item, dict) and _ill_formed(value):
                if not isinstance(value, list):
                    return path_to((at, key)), "must be an array of extensions"
                i = next(i for i, e in enumerate(value) if not isinstance(e, dict))
                return path_to(((at, key), i)), "must be an extension (a JSON object)"
            if isinstance(value, _CONTAINERS):
                stack.append((value, (at, key)))
    return None


def path_to(at: Any) -> str:
    """`.key` and `[index]` from the resource down to `at` ((holder's place, key) links; None: the
    resource). A walk keeps such links, and writes a path only for what it finds: written as it goes,
    every element's path costs its depth in text (service/hooks/models.py `_empty_value`, review27c)."""
    steps = []
    while at is not None:
        at, key = at
        steps.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(steps))
