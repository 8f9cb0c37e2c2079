"""Rendering of Determinations into CDS Hooks cards: values in, dicts out (pure but for each card's
fresh uuid, see cards/response.py)."""

from cards.render import (
    coverage_notice_card,
    decision_card,
    external_reference_card,
    instructions_card,
    next_steps,
    unread_order_card,
)

__all__ = [
    "coverage_notice_card",
    "decision_card",
    "external_reference_card",
    "instructions_card",
    "next_steps",
    "unread_order_card",
]
