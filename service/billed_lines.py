"""Order lines billed with a pump order without being one: a drug order coded with an order code.

A MedicationRequest coded HCPCS J2274 (morphine, preservative-free, "for epidural or intrathecal use")
beside a 95990 refill is, by its code, a line of that refill: policies/order-codes.yaml lists J2274
under refill-analysis. It is no pump order (service/orders.py `ORDER_TYPES`) and, without an
intrathecal or epidural route, not the pump's drug either (contract §2): nothing about it is read as
evidence. But it is billed with the refill, and the clinician is to see one answer for the refill,
not the refill's "manual review" beside the drug's "no rules here" (ehr review s17, L-4).

So a drug order coded with an order code joins the call's pump order of that code's kind when every
payer here leaves that order to a manual review (its policy has no criteria for it: a refill, under
each of the five policies): its coverage information is that order's manual-review assertion
(cards/response.py, by `Decisions.episode_orders`), and the decision card for that order names it.
A pump order a payer judges is not joined: its assertion (covered, not covered, documentation
needed) speaks for criteria read with the pump's drug, which this order was not read as. A drug
order read as the pump's drug joins the episode already (pipeline `decide`); the card names it too
when its order code is of the kind of the order it joins (J0476 beside a trial).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.engine.model import Determination, Outcome
from service.orders import BilledLine, OrderCodeTable, PumpOrder, billed_code
from service.shapes import reference_of


def billed_lines(
    in_scope: Iterable[Mapping[str, Any]],
    pump_orders: Sequence[PumpOrder],
    joined: Mapping[str, str],
    table: OrderCodeTable,
    determinations: Iterable[Determination],
) -> tuple[dict[str, str], tuple[BilledLine, ...]]:
    """(`joined`, the other orders each pump order's coverage information is shared with, with the
    drug orders among `in_scope` billed with a pump order left to a manual review; the orders billed
    with a pump order of their code's kind, which its decision card names)."""
    kinds = {o.reference: o.kind for o in pump_orders}
    reviewed = left_to_review(determinations)
    episode = dict(joined)
    lines = []
    for resource in in_scope:
        billed = billed_code(resource, table)
        if billed is None:
            continue
        code, kind = billed
        reference = reference_of(resource)
        target = joined.get(reference) or next(
            (o.reference for o in pump_orders if o.kind == kind and o.reference in reviewed), None
        )
        if target is None or kinds.get(target) != kind:
            continue
        episode[reference] = target
        lines.append(BilledLine(reference, code.code, table.line_name(code, kind), target))
    return episode, tuple(lines)


def left_to_review(determinations: Iterable[Determination]) -> frozenset[str]:
    """The pump orders every policy that judged them has no criteria for (a manual review)."""
    outcomes: dict[str, set[Outcome]] = {}
    for d in determinations:
        outcomes.setdefault(d.order_reference, set()).add(d.outcome)
    return frozenset(ref for ref, found in outcomes.items() if found == {Outcome.NOT_APPLICABLE})


def may_be_billed(
    in_scope: Iterable[Mapping[str, Any]], pump_orders: Sequence[PumpOrder], table: OrderCodeTable
) -> bool:
    """Whether a drug order among `in_scope` is coded with an order code of a pump order's kind: one
    that may be billed with it (`billed_lines`), once the pump orders are judged."""
    kinds = {o.kind for o in pump_orders}
    return any((billed := billed_code(r, table)) is not None and billed[1] in kinds for r in in_scope)
