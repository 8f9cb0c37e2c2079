"""How a card's summary left out its asides before it was made linear (cards/render.py `_fitted`):
the reference its one-pass form is checked against. Quadratic in the reason: short texts only."""

from __future__ import annotations

import re

from cards.render import SUMMARY_LIMIT

PLAIN_ASIDE = re.compile(r"\s*\([^()]*\)")


def fitted_plainly(lead: str, reason: str) -> str:
    while len(lead + reason) > SUMMARY_LIMIT and (asides := list(PLAIN_ASIDE.finditer(reason))):
        last = asides[-1]
        reason = reason[: last.start()] + reason[last.end() :]
    return lead + reason
