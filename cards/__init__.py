"""Rendering of Determinations into CDS Hooks cards (pure: dicts in, dicts out)."""

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
