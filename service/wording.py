"""How the service's sentences list things ("a, b and c"), set words apart and say a number with its unit:
the engine's findings, the cards and the 412 answer say a list the same way."""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.graphemes import whole

_NEGATIVE_ZERO = re.compile(r"-0(?:\.0*)?")  # a zero written with a minus sign, as Python writes -0.0


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
    number = unsigned_zero(number)
    if number == "1" and len(unit) > 2 and unit.endswith("s") and not unit.endswith("ss"):
        unit = unit[:-1]
    return f"{number} {unit}"


def number(value: float, spec: str = "g") -> str:
    """A number as a sentence shows it, written by `spec` ("g": 2.5, 50; ".0f": 62), a zero never signed
    (`unsigned_zero`): the one place a card's or a finding's number is formatted, so a trial's recorded
    relief of -0.0 or -0.3 % is "0 % relief", never "-0 % relief" (review30c L3)."""
    return unsigned_zero(format(value, spec))


def unsigned_zero(number: str) -> str:
    """`number` as a sentence shows it, a zero never signed: "-0" ("-0.0"), as Python writes -0.0 or a
    small negative value shown to none of its digits (-0.01 months against 3: `_deciding_digits`), is
    "0" (review29d: "-0 months recorded"); any other number as written."""
    return number[1:] if _NEGATIVE_ZERO.fullmatch(number) else number


def clipped(words: str, most: int) -> str:
    """Chart words a finding quotes, on one line and at most `most` characters, the rest "…": cut after a
    word where one ends in the second half of the room, else where no character a reader sees as one is
    split (`graphemes.whole`). An onset the chart writes as a string, a diagnosis's display: either may run
    to a hundred characters where a card's line has room for a few."""
    said = " ".join(words.split())
    if len(said) <= most:
        return said
    room = whole(said, most - 1)
    if (space := said.rfind(" ", 0, room + 1)) > most // 2:
        room = space
    return said[:room].rstrip() + "…"
