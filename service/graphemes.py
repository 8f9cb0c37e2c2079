"""Where text may be cut without splitting what a reader sees as one character (a letter and its accents,
an emoji joined of several, a flag): the one rule for every cut the service makes, the cards' (a summary,
a line, the chart's words: cards/shortening.py) and that of the EHR's words an error quotes back
(service/fhir/gather.py). It lives here, below both, because the cards already read the service's wording
modules and the FHIR gathering must not depend on the cards (review27a L5: gather had a weaker rule of its
own, and split flags and skin tones).
"""

from __future__ import annotations

import re
import unicodedata

ZWJ = "\u200d"
# what extends the character before it into one a reader sees (Unicode's grapheme Extend, conservatively):
# combining marks, the zero-width joiner, variation selectors, emoji skin-tone modifiers, emoji tag letters
_EXTENDING = re.compile(
    "[\u200d\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\U000e0100-\U000e01ef]"
)
_REGIONAL = re.compile("[\U0001f1e6-\U0001f1ff]")  # two of them are one flag


def whole(text: str, end: int) -> int:
    """`end`, or the nearest place before it that splits nothing a reader sees as one character: never
    before a character that extends the one before it, nor after a zero-width joiner, nor between the
    two regional indicators of a flag (0 when one such character spans the whole of `text[:end]`). No new
    dependency: a conservative rule, not all of UAX #29."""
    while 0 < end < len(text) and (_extends(text[end]) or text[end - 1] == ZWJ or _in_flag(text, end)):
        end -= 1
    return end


def _extends(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me", "Mc") or _EXTENDING.match(ch) is not None


def _in_flag(text: str, end: int) -> bool:
    """Whether `end` falls between the two regional indicators of a flag (counted from the run's start)."""
    if not (_REGIONAL.match(text[end]) and _REGIONAL.match(text[end - 1])):
        return False
    start = end
    while start > 0 and _REGIONAL.match(text[start - 1]):
        start -= 1
    return (end - start) % 2 == 1
