"""Rendering of Determinations into CDS Hooks cards (pure: dicts in, dicts out)."""

from cards.render import decision_card

__all__ = ["decision_card"]
