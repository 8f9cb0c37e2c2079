"""Defensive access to JSON that claims to be FHIR.

EHRs and FHIR servers send resources whose elements have the wrong JSON type often enough that
reading them must never raise: a list that is an object, a reference that is a bare string, a
number where a code should be. These helpers return an empty value of the expected type instead,
so an odd element is ignored rather than failing the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON array (anything else in it, or a non-array, is skipped)."""
    if not isinstance(value, list):
        return []  # `as_list`'s test written out: the record reads several arrays of every resource
    return [item for item in value if isinstance(item, dict)]


def reference_of(resource: Mapping[str, Any]) -> str:
    """`Type/id` of a resource."""
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def reference_target(value: Any) -> str | None:
    """The `reference` string of a Reference element, if it has one."""
    return as_str(as_dict(value).get("reference"))


def contained_by_id(resource: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources `resource` contains by id, the first of an id where several share it: what each
    `#id` reference points at. Built once for a resource whose references are resolved in a loop, so a
    body with thousands of both costs one pass, not one per reference (security review S-2)."""
    index: dict[str, dict[str, Any]] = {}
    for item in dicts(resource.get("contained")):
        local_id = item.get("id")
        if isinstance(local_id, str):  # a reference's id is text: no other id is ever pointed at
            index.setdefault(local_id, item)
    return index


def contained(resource: Mapping[str, Any], local_id: str) -> dict[str, Any] | None:
    """The contained resource a `#id` reference points at (one reference: `contained_by_id` for many)."""
    return contained_by_id(resource).get(local_id)


def medication_concept(resource: Mapping[str, Any], resolve: Callable[[str], Any]) -> dict[str, Any] | None:
    """The drug of a MedicationRequest/Statement as one CodeableConcept: `medicationCodeableConcept`,
    or the referenced Medication's code and its ingredients' concepts (contained, or found by
    `resolve`), their codings together and their texts joined ("Percocet 10/325 | Oxycodone ...")."""
    concept = resource.get("medicationCodeableConcept")
    if concept is not None:
        return as_dict(concept)
    ref = reference_target(resource.get("medicationReference"))
    if ref is None:
        return None
    medication = as_dict(contained(resource, ref[1:]) if ref.startswith("#") else resolve(ref))
    if not medication:
        return None
    concepts = [as_dict(medication.get("code"))]
    concepts += [as_dict(i.get("itemCodeableConcept")) for i in dicts(medication.get("ingredient"))]
    coding = [c for concept in concepts for c in dicts(concept.get("coding"))]
    text = " | ".join(t for t in (c.get("text") for c in concepts) if isinstance(t, str) and t.strip())
    return {"coding": coding, **({"text": text} if text else {})}
