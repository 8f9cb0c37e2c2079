"""How the service's sentences list things ("a, b and c"), set words apart and say a number with its unit:
the engine's findings, the cards and the 412 answer say a list the same way."""

from __future__ import annotations

from collections.abc import Sequence


def listing(words: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def aside(words: str) -> str:
    """`words` set apart in a sentence: in parentheses, or in square brackets when they hold parentheses
    of their own, so that none is nested in another ("(Version 2, last updated 3/29/2024 (original
    9/14/2023))" read as one aside closing twice: cards26). The words inside are left as written: a
    policy's own words stay word for word; only the card's punctuation around them changes."""
    return f"[{words}]" if "(" in words or ")" in words else f"({words})"


def quantity(number: str, unit: str) -> str:
    """A number, as the sentence shows it, with its unit written in the plural ("points", "months": a
    chart's unit as written, or a threshold's): "2 points", "0.5 points", and "1 point" after a one,
    never "1 points". A unit of two letters or fewer ("s", "mo"), or ending in "ss", is no plural."""
    if number == "1" and len(unit) > 2 and unit.endswith("s") and not unit.endswith("ss"):
        unit = unit[:-1]
    return f"{number} {unit}"
