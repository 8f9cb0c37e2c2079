"""Words from the chart inside a card's Markdown.

An EHR renders a card's `detail` as GitHub-flavoured Markdown, and some of what a card says comes
from the chart: a payer's name, a drug's or a diagnosis's display, a reference, a FHIR server's
complaint. Escaped where it enters the detail, such text reads as the words it is: it cannot open a
link, show an image, emphasise, or become HTML, and it stays on its line. The policies' own words
are written for the cards and enter them as they are.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"([\\`*_\[\]<])")


def plain(text: str) -> str:
    """`text` as Markdown that shows exactly its words, on one line."""
    return _MARKUP.sub(r"\\\1", " ".join(text.split()))


def shortened(markdown: str, limit: int) -> str:
    """`markdown` cut to `limit` characters with an ellipsis, never between a backslash and the
    character it escapes (a lone backslash would show)."""
    if len(markdown) <= limit:
        return markdown
    cut = markdown[: limit - 1].rstrip()
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + "…"
