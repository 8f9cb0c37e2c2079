"""The one place card text is cut to a length: summaries, the lines of a decision card, the titles
and lists a card names.

A clinician reads a card in ten seconds, so what a cut leaves must still say something true. Cut
inside a number, a date or a code, it says something else or nothing ("…if the last ran 30…",
"since 6 Dec…", "CPT 62320-6232…": synthea review s19, M2). So a cut goes where a clause ends near
the limit (a comma, a colon, a parenthesis, a dash, an "if …" hedge), else at a word boundary that is
not inside such a group (it goes before the whole group), and only when neither is near, anywhere;
where it can, not inside an aside ("(since…": its words are gone, its parenthesis left open).
Markdown escapes are never split: a lone backslash would show. Nor are the characters a reader sees as
one (a letter and its accents, an emoji joined of several, a flag): a cut inside one shows a stray accent,
a half family or a lone letter box (review26f).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from service.graphemes import whole

ELLIPSIS = "…"
_WORD = re.compile(r"\S+")
_EN_DASH = "\u2013"
_MONTHS = frozenset(
    {
        *("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
        *("january", "february", "march", "april", "june", "july", "august", "september", "october"),
        *("november", "december"),
    }
)
_UNITS = frozenset(
    {
        *("%", "d", "day", "days", "wk", "week", "weeks", "mo", "month", "months", "yr", "year", "years"),
        *("h", "hr", "hour", "hours", "min", "minute", "minutes", "mg", "ml", "mcg", "point", "points"),
    }
)
_JOINERS = frozenset({">=", "<=", ">", "<", "≥", "≤", "=", "→", "-", _EN_DASH, "/"})
_CODE_SYSTEMS = frozenset({"cpt", "loinc", "hcpcs", "snomed", "icd-10-cm", "icd-10", "rxnorm"})
_CLAUSE_WORDS = frozenset({"if", "unless", "because", "while", "when", "where", "whereas", "but", "so"})
_CLAUSE_END = tuple(",;:")
_EDGE = "([“\"'"
_TAIL = ",;:.)]”\"'"
_GROUP_END = (",", ";", ":", ")", ".")
_STRIPPED = " ,;:—(“" + _EN_DASH


def _core(word: str) -> str:
    return word.lstrip(_EDGE).rstrip(_TAIL).lower()


def _numeric(core: str) -> bool:
    """A part of a number, a date or a code: digits, a comparator or range mark, a month's name."""
    return any(ch.isdigit() for ch in core) or core in _JOINERS or core.rstrip(".") in _MONTHS


def _joined(before: str, after: str) -> bool:
    """Whether two neighbouring words are one group ("30 days", ">= 3", "6 Dec 2025", "CPT 62320",
    "3 months 29 days"), which a cut between them would split. Punctuation that ends a clause, or a
    parenthesis that opens one, ends a group."""
    if before.endswith(_GROUP_END) or after.startswith("("):
        return False
    first, second = _core(before), _core(after)
    return (_numeric(first) or first in _CODE_SYSTEMS or first in _UNITS) and (
        _numeric(second) or second in _UNITS
    )


def _ends_clause(before: str, after: str) -> bool:
    """Whether a cut between two words ends a clause: after a comma, semicolon or colon, before a
    parenthesis, a dash or a word that opens a hedge ("if the last ran 30 days")."""
    return (
        before.endswith(_CLAUSE_END)
        or after.startswith("(")
        or after in ("—", _EN_DASH)
        or _core(after) in _CLAUSE_WORDS
    )


def _open(kept: str) -> bool:
    """Whether `kept` leaves an aside open: "none in the last 12 months (since…" says less than
    "none in the last 12 months…" and reads as cut (cardfix20, Bradly on Cohere)."""
    return kept.count("(") > kept.count(")")


def shortened(text: str, limit: int) -> str:
    """`text` within `limit` characters, ending in an ellipsis when cut: at the last clause end near
    the limit, else at the last word boundary outside a number, date or code group (from half the room
    on), each first where no aside is left open (`_open`), else at the last word boundary near the
    limit, else anywhere; never between a backslash and the character it escapes, nor inside what a reader
    sees as one character (`service.graphemes.whole`)."""
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    # how far back from the limit a clause end or any word boundary is "near"
    near = max(12, min(30, limit // 5))
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    # each place a cut may go: after words[i - 1], before words[i]; (end of the kept text, i)
    places = [(words[i - 1][1], i) for i in range(1, len(words)) if words[i - 1][1] <= room]

    def last(ok: Callable[[str, str], bool], since: int, closed: bool = False) -> int | None:
        found = [
            end
            for end, i in places
            if end >= since and ok(words[i - 1][2], words[i][2]) and not (closed and _open(text[:end]))
        ]
        return max(found, default=None)

    end = (
        last(_ends_clause, room - near, closed=True)
        or last(lambda a, b: not _joined(a, b), room // 2, closed=True)
        or last(_ends_clause, room - near)
        or last(lambda a, b: not _joined(a, b), room // 2)
        or last(lambda a, b: True, room - near)
    )
    kept = text[: whole(text, end or room)].rstrip(_STRIPPED) or text[: whole(text, room) or room]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + ELLIPSIS
