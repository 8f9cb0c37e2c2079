"""Modifier extensions, read one way everywhere.

A `modifierExtension` changes what the element holding it means (a Condition "not present", an
order "for a trial of another device"), and FHIR R4 forbids processing a resource as if an unknown
one were not there (extensibility.html#modifierExtension). This service knows none, so a resource
carrying one is not read as if it said what it would say without it: an order is not judged, a
chart record is left out. An order is small and is sent back to the EHR, so every element of it is
looked at; a chart record only at its top, where the facts the policies read are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from service.shapes import dicts
from service.wording import listing

MODIFIER = "modifierExtension"


def modifies(resource: Mapping[str, Any]) -> bool:
    """Whether a chart record carries a modifier extension at its top (any value but an empty one)."""
    return bool(resource.get(MODIFIER))


def order_modifiers(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """The urls of every modifier extension anywhere in an order (`no url` for one without); empty
    when it carries none."""
    return tuple(sorted(set(_urls(resource))))


def not_understood(urls: tuple[str, ...]) -> str:
    """Why an order carrying the modifier extensions `urls` was not judged, as cards say it."""
    return f"it carries a modifier extension this service does not understand ({listing(list(urls))})"


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
