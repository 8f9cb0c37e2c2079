"""Words from the chart inside a card's Markdown.

An EHR renders a card's `detail` as GitHub-flavoured Markdown, and some of what a card says comes
from the chart: a payer's name, a drug's or a diagnosis's display, a reference, a FHIR server's
complaint. Escaped where it enters the detail, such text reads as the words it is: it cannot open a
link (GFM's bare `https://…`, `www.…` and `name@host` ones included), show an image, emphasise,
strike through, or become HTML, or name another character by a reference ("&amp;", "&#x202E;"), and it
stays on its line; its Unicode bidirectional controls are dropped, written or referenced, so it cannot turn
the card's own words after it around (attack20 L2). The policies' own words
are written for the cards and enter them as they are.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"([\\`*_\[\]<~])")
# an "&" that begins a character reference ("&amp;", "&#8238;", "&#x202E;"), which Markdown reads as the
# character it names: escaped, it is the "&" the chart wrote (review26f)
_REFERENCE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_BARE_LINK_START = re.compile(r"(?i):(?=//)|(?<=www)\.")  # a scheme's `://`, the dot after `www`
_ADDRESS_AT = re.compile(r"(?<=[A-Za-z0-9.+\-_])@")  # an `@` after what may end an address's name
WORD_JOINER = "\u2060"
# Embeddings, overrides, isolates and their ends, and the directional marks: invisible, and each
# reorders what follows it on the line as the EHR shows it.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """`text` as Markdown that shows exactly its words, on one line."""
    escaped = _MARKUP.sub(r"\\\1", " ".join(_BIDI_CONTROLS.sub("", text).split()))
    return _unlinked(_REFERENCE.sub(r"\\&", escaped))


def _unlinked(markdown: str) -> str:
    """`markdown` in which GFM finds no bare link. It looks for `https://` and `www.` as it reads
    the text, so escaping their `:` or `.` is enough and shows the same characters; it finds an
    e-mail address (`mailto:`, `xmpp:` too) in the text once escapes are read, so nothing but a
    character between the address's name and its `@` stops it: an invisible word joiner."""
    return _ADDRESS_AT.sub(WORD_JOINER + "@", _BARE_LINK_START.sub(r"\\\g<0>", markdown))
