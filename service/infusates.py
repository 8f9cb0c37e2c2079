"""The drugs the pump is to deliver (contract §2): those the call orders or names, else the pump's
current drug in the chart. Which orders are pump orders is service/orders.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.codes import RXNORM, Code, codings, concept_text, neuraxial_route
from service.orders import DraftOrders, PumpOrder
from service.references import local_reference
from service.shapes import as_list, dicts, medication_concept, reference_of, reference_target
from service.terminology import IngredientFinder


@dataclass(frozen=True)
class Infusate:
    """A drug ordered for the pump: a draft MedicationRequest, or a drug a pump order names."""

    reference: str
    codes: tuple[Code, ...]
    text: str
    intrathecal_route: bool


def _neuraxial(resource: Mapping[str, Any]) -> bool:
    """A drug order given intrathecally or epidurally, by one of its dosages' routes."""
    return any(neuraxial_route(dosage.get("route")) for dosage in dicts(resource.get("dosageInstruction")))


def _infusate(resource: Mapping[str, Any], resolve: Callable[[str], Any]) -> Infusate:
    concept = medication_concept(resource, resolve)
    codes = tuple(c for c in codings(concept) if c.system == RXNORM)
    return Infusate(reference_of(resource), codes, concept_text(concept), _neuraxial(resource))


def _ordered_infusates(
    drafts: DraftOrders, orders: list[PumpOrder], finder: IngredientFinder, resolve: Callable[[str], Any]
) -> list[Infusate]:
    """Draft MedicationRequests given intrathecally or epidurally (by route code, or the route's
    words), those a pump order names in `reasonReference` whatever their route, drugs a pump order
    names in `orderDetail` (an RxNorm code, or a known ingredient in its text: "40 mL reservoir"
    names no drug), and the drug a pump order's code names (J0476, the baclofen of a trial). An oral
    drug drafted beside a pump order is not the pump's."""
    named = [
        ref
        for order in orders
        for ref in map(reference_target, as_list(order.resource.get("reasonReference")))
        if ref
    ]
    result = []
    for resource in drafts.resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        referenced = any(drafts.get(ref) is resource for ref in named)
        if not _neuraxial(resource) and not referenced:
            continue
        result.append(_infusate(resource, resolve))
    for order in orders:
        if order.drug:
            result.append(Infusate(f"{order.reference} code", (), order.drug, True))
        for detail in dicts(order.resource.get("orderDetail")):
            codes = tuple(c for c in codings(detail) if c.system == RXNORM)
            text = concept_text(detail)
            if codes or finder.names(text, ()):
                result.append(Infusate(f"{order.reference} orderDetail", codes, text, False))
    return result


def _chart_infusates(chart: Mapping[str, Iterable[Any]], resolve: Callable[[str], Any]) -> list[Infusate]:
    """The pump's current drug: the chart's active MedicationRequests given intrathecally or
    epidurally (a stopped order or a drug given by another route is not what the pump holds)."""
    return [
        _infusate(resource, resolve)
        for resource in chart.get("MedicationRequest", ())
        if isinstance(resource, dict) and resource.get("status") == "active" and _neuraxial(resource)
    ]


def infusates(
    drafts: DraftOrders,
    finder: IngredientFinder,
    orders: Iterable[PumpOrder] = (),
    chart: Mapping[str, Iterable[Any]] | None = None,
) -> list[Infusate]:
    """The drugs the pump is to deliver (contract §2): those the call orders or names, else, when it
    orders none (a catheter, replacement, refill or removal), the patient's active intrathecal or
    epidural MedicationRequests in `chart` (the gathered resources by type). `finder` tells which
    known ingredients a text names."""
    chart = chart or {}
    medications = {reference_of(m): m for m in chart.get("Medication", ()) if isinstance(m, dict)}

    def resolve(reference: str) -> Any:
        """A drug's Medication: among the draft orders, else the chart's (prefetched or read)."""
        return drafts.get(reference) or medications.get(local_reference(reference) or "")

    return _ordered_infusates(drafts, list(orders), finder, resolve) or _chart_infusates(chart, resolve)
