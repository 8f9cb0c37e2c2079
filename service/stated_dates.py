"""The dates a policy document states in words, read only where its words say which date they are.

A policy file gives `effective` and `next_review` as ISO dates and quotes the document's own words for
them (`dates_as_stated`); the card shows the `version` label. Those words are checked against the
source document, so an ISO date that contradicts them would put two different dates before a reader
(the card's "effective August 1, 2019", the policy page's "Effective 2031-05-05"). The compiler
compares the ISO dates with what the words state.

Read are dates after a label that names them: "effective" ("Effective Date:", "became effective")
for `effective`, "next review" ("Next Review Date:") for `next_review`; written "August 1, 2019",
"Aug 1 2019", "Jan 2021" (a month, which a policy file writes as its first day) or "7/1/2025"
(month/day/year, as the US payers these policies come from write it). Other wordings are not read:
"Origination Date", "last updated", a bare list of revision dates say when a text was written or
revised, not for certain when it took effect, and a check would have to guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_NUMBERS = {**{m: i for i, m in enumerate(_MONTHS, 1)}, **{m[:3]: i for i, m in enumerate(_MONTHS, 1)}}
_MONTH_NUMBERS["sept"] = 9
_LABELS = {"effective": r"effective(?:\s+date)?", "next_review": r"next\s+review(?:\s+date)?"}
_STATED = re.compile(
    rf"\b(?P<label>{'|'.join(f'(?P<{key}>{label})' for key, label in _LABELS.items())})\s*:?\s*"
    r"(?:(?P<month>[a-z]+)\.?\s+(?:(?P<day>\d{1,2}),?\s+)?(?P<year>\d{4})"
    r"|(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StatedDate:
    """A date the words state for `key` (`effective` or `next_review`); None when they name no real day."""

    key: str
    words: str
    day: date | None


def stated_dates(words: str) -> list[StatedDate]:
    """Every labelled date of `words`, in order (a month name that is no month is no date statement)."""
    found = []
    for match in _STATED.finditer(words):
        key = next(k for k in _LABELS if match.group(k))
        if match.group("m"):
            parts = (match.group("y"), match.group("m"), match.group("d"))
        elif match.group("month").lower() in _MONTH_NUMBERS:
            month = _MONTH_NUMBERS[match.group("month").lower()]
            parts = (match.group("year"), str(month), match.group("day") or "1")
        else:
            continue
        try:
            day: date | None = date(*(int(p) for p in parts))
        except ValueError:
            day = None
        found.append(StatedDate(key, match.group(0), day))
    return found
