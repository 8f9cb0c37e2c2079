"""The draft orders the sandbox page can place: a few order kits (pump implant, trial, catheter,
refill, replacement, a non-pump visit) built as FHIR draft orders for the chosen patient and coverage,
and the kits and infusate each demo patient's own sample requests draft (what the page preselects for
it: Remy Refill a refill, Morgan Battery a replacement, not every patient an implant).

Every pump code comes from the service's own order table (`policies/order-codes.yaml`), so the page
never orders a code the service does not know; the infusates come from the `it-infusates` value set
and the non-pump order from the packaged non-pump sample request. A kit naming a code the table
lacks stops start-up rather than showing a page that orders nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import policies
from service.codes import CANONICAL_SYSTEM, SYSTEM_ALIASES, code_words
from service.orders import OrderCodeTable
from service.yamlsource import load

RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED_URI = "http://snomed.info/sct"
INTRATHECAL_ROUTE = {"system": SNOMED_URI, "code": "72607000", "display": "Intrathecal route"}
SAMPLE_REQUESTS = Path(__file__).resolve().parents[1] / "demo" / "data" / "requests"
NON_PUMP_SAMPLE = SAMPLE_REQUESTS / "order-select-non-pump.json"
MAX_KITS = 10
DEFAULT_KITS = ("implant",)  # preselected for a patient without a sample request: the service's main order


class OrderChoiceInvalid(ValueError):
    """The page asked for a kit or infusate the sandbox does not offer; `field` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OrderLine:
    system: str  # "cpt" or "hcpcs"
    code: str
    display: str


@dataclass(frozen=True)
class OrderKit:
    """One choice on the page: the order lines placed together, and whether a pump infusate goes with them."""

    id: str
    label: str
    lines: tuple[OrderLine, ...]
    with_infusate: bool


@dataclass(frozen=True)
class Infusate:
    ingredient: str
    code: str


KIT_CODES: tuple[tuple[str, str, tuple[tuple[str, str], ...], bool], ...] = (
    ("implant", "Permanent pump implant", (("cpt", "62362"),), True),
    ("trial", "Intrathecal trial injection", (("cpt", "62323"),), True),
    ("catheter", "Catheter implant", (("cpt", "62350"),), False),
    ("refill", "Pump refill", (("cpt", "95990"),), True),
    (
        "replacement",
        "Pump replacement",
        (("cpt", "62362"), ("hcpcs", "E0786")),
        True,
    ),
)


def _table_lines(table: OrderCodeTable, codes: Sequence[tuple[str, str]]) -> tuple[OrderLine, ...]:
    lines = []
    for system, code in codes:
        if (system, code) not in table.kinds:
            raise ValueError(f"sandbox order kit: {system} {code} is not in policies/order-codes.yaml")
        lines.append(OrderLine(system, code, table.names.get(code, code)))
    return tuple(lines)


def _non_pump_kit(table: OrderCodeTable) -> OrderKit:
    sample = json.loads(NON_PUMP_SAMPLE.read_text(encoding="utf-8"))
    order = sample["context"]["draftOrders"]["entry"][0]["resource"]
    coding = order["code"]["coding"][0]
    if ("cpt", coding["code"]) in table.kinds:
        raise ValueError(f"sandbox order kit: the non-pump sample's {coding['code']} is a pump code")
    return OrderKit(
        "non-pump",
        "Office visit (not a pump order)",
        (OrderLine("cpt", coding["code"], coding["display"]),),
        False,
    )


def order_kits(table: OrderCodeTable) -> tuple[OrderKit, ...]:
    pump = tuple(
        OrderKit(id, label, _table_lines(table, codes), infusate) for id, label, codes, infusate in KIT_CODES
    )
    return (*pump, _non_pump_kit(table))


def infusates(policy_directory: Path | None = None) -> tuple[Infusate, ...]:
    """The intrathecal infusates with an RxNorm ingredient code (the value set's coded rows)."""
    path = (policy_directory or policies.directory()) / "valuesets" / "it-infusates.yaml"
    rows = load(path).data["rxnorm"]
    return tuple(Infusate(str(row["ingredient"]), str(row["code"])) for row in rows if row.get("code"))


def _drafted_infusates(request: dict[str, Any], offered: set[str]) -> list[str]:
    """The offered RxNorm codes of the MedicationRequests a sample request drafts (or books)."""
    context = request.get("context") or {}
    found = []
    for key in ("draftOrders", "appointments"):
        for entry in (context.get(key) or {}).get("entry", []):
            resource = entry.get("resource") or {}
            if resource.get("resourceType") != "MedicationRequest":
                continue
            codings = (resource.get("medicationCodeableConcept") or {}).get("coding", [])
            found += [
                c["code"] for c in codings if c.get("system") == RXNORM_URI and c.get("code") in offered
            ]
    return found


def _drafted_codes(request: dict[str, Any]) -> set[tuple[str, str]]:
    """The (system, code) of the orders a sample request drafts (or books), in the kits' systems."""
    context = request.get("context") or {}
    found = set()
    for key in ("draftOrders", "appointments"):
        for entry in (context.get(key) or {}).get("entry", []):
            resource = entry.get("resource") or {}
            concept = resource.get("code") or resource.get("codeCodeableConcept") or {}
            for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
                system = SYSTEM_ALIASES.get(coding.get("system", ""))
                if system in CANONICAL_SYSTEM and isinstance(coding.get("code"), str):
                    found.add((system, coding["code"]))
    return found


def _kits_drafting(kits: Sequence[OrderKit], codes: set[tuple[str, str]]) -> list[str]:
    """The kits that place `codes`: the larger kits first (62362 with E0786 is a replacement, not an
    implant beside a pump device), each of whose lines are all among the codes not yet placed."""
    left, chosen = set(codes), []
    for kit in sorted(kits, key=lambda k: -len(k.lines)):
        lines = {(line.system, line.code) for line in kit.lines}
        if lines <= left:
            chosen.append(kit.id)
            left -= lines
    return chosen


def sample_kits(kits: Sequence[OrderKit], folder: Path = SAMPLE_REQUESTS) -> dict[str, list[str]]:
    """Per patient of the packaged sample requests, the kits its first sample (in file order) that
    drafts any places: the page preselects them, as `sample_infusates` the infusate, so that a demo
    patient is tried on the order its story is about (a refill for the refill patient)."""
    chosen: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        patient_id = (request.get("context") or {}).get("patientId")
        if isinstance(patient_id, str) and not chosen.get(patient_id):
            chosen[patient_id] = _kits_drafting(kits, _drafted_codes(request))
    return {patient: found for patient, found in chosen.items() if found}


def sample_infusates(available: Sequence[Infusate], folder: Path = SAMPLE_REQUESTS) -> dict[str, str | None]:
    """Per patient of the packaged sample requests, the infusate they draft (the first, in file order),
    or None where they draft none: the page preselects it, so that a demo patient tried there is judged
    on the orders the demo data README and `idds-crd demo` judge it on."""
    offered = {i.code for i in available}
    chosen: dict[str, str | None] = {}
    for path in sorted(folder.glob("*.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        patient_id = (request.get("context") or {}).get("patientId")
        if not isinstance(patient_id, str):
            continue
        drafted = _drafted_infusates(request, offered)
        if chosen.get(patient_id) is None:
            chosen[patient_id] = drafted[0] if drafted else None
    return chosen


def _insured(resource: dict[str, Any], coverage_id: str | None) -> dict[str, Any]:
    if coverage_id:
        resource["insurance"] = [{"reference": f"Coverage/{coverage_id}"}]
    return resource


def _order(line: OrderLine, order_id: str, patient_id: str, coverage_id: str | None) -> dict[str, Any]:
    coding = {
        "system": CANONICAL_SYSTEM[line.system],
        "code": line.code,
        "display": line.display,
    }
    resource: dict[str, Any] = {
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if line.system == "cpt":
        resource = {
            "resourceType": "ServiceRequest",
            "id": order_id,
            **resource,
            "code": {"coding": [coding]},
        }
    else:
        resource = {
            "resourceType": "DeviceRequest",
            "id": order_id,
            **resource,
            "codeCodeableConcept": {"coding": [coding]},
        }
    return _insured(resource, coverage_id)


def _infusate_order(
    infusate: Infusate, order_id: str, patient_id: str, coverage_id: str | None
) -> dict[str, Any]:
    order = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM_URI, "code": infusate.code, "display": infusate.ingredient}],
            "text": f"{infusate.ingredient} intrathecal infusion",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": [
            {
                "text": f"{infusate.ingredient} intrathecal by implanted pump",
                "route": {"coding": [INTRATHECAL_ROUTE]},
            }
        ],
    }
    return _insured(order, coverage_id)


def _placed_twice(kits: Mapping[str, OrderKit], chosen: Sequence[str]) -> str | None:
    """Which two chosen kits place one code (an implant beside a replacement both order CPT 62362),
    said as the page's refusal: the same order twice is not a request any EHR would send."""
    placed_by: dict[tuple[str, str], str] = {}
    for kit_id in chosen:
        for line in kits[kit_id].lines:
            other = placed_by.setdefault((line.system, line.code), kit_id)
            if other != kit_id:
                return (
                    f"kits: {kits[other].label} and {kits[kit_id].label} both order "
                    f"{code_words(line.system, line.code)}; choose one of them"
                )
    return None


def draft_orders(
    kits: Mapping[str, OrderKit],
    available: Sequence[Infusate],
    chosen: Any,
    infusate_code: Any,
    patient_id: str,
    coverage_id: str | None,
) -> list[dict[str, Any]]:
    """The draft orders of the chosen kits (one infusate order when any kit takes one);
    OrderChoiceInvalid names the field that asks for something not offered."""
    if not isinstance(chosen, list) or not chosen or len(chosen) > MAX_KITS:
        raise OrderChoiceInvalid("kits", f"kits must be a list of 1 to {MAX_KITS} kit ids")
    unknown = [k for k in chosen if not isinstance(k, str) or k not in kits]
    if unknown:
        raise OrderChoiceInvalid("kits", f"kits: not offered: {', '.join(map(str, unknown))}")
    by_code = {i.code: i for i in available}
    if infusate_code is not None and (not isinstance(infusate_code, str) or infusate_code not in by_code):
        raise OrderChoiceInvalid("infusate", "infusate: not an intrathecal infusate the sandbox offers")
    chosen = list(dict.fromkeys(chosen))
    twice = _placed_twice(kits, chosen)
    if twice:
        raise OrderChoiceInvalid("kits", twice)
    orders: list[dict[str, Any]] = []
    for kit_id in chosen:
        for n, line in enumerate(kits[kit_id].lines):
            order_id = f"sandbox-{kit_id}-{line.code.lower()}-{n}"
            orders.append(_order(line, order_id, patient_id, coverage_id))
    if infusate_code is not None and any(kits[k].with_infusate for k in chosen):
        orders.append(_infusate_order(by_code[infusate_code], "sandbox-infusate", patient_id, coverage_id))
    return orders
