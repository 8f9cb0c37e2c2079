"""The indications and request kinds, as data (`policies/vocabulary.yaml`) compiled once.

Policies, the order-code table, the engine and the cards all speak of "spasticity" or "a catheter";
keeping the ids and the words a card uses for them in one file means renaming one, or a card's words
for it, is a data change that the loaders check everywhere it is used. Which indication a chart
shows and which kind an episode makes is code (service/engine/classify.py): the ids it names are
checked against this file at start-up too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.yamlsource import SourceError, check_schema, load


class VocabularyError(SourceError):
    """The vocabulary file is invalid, or a file uses a word it does not define."""


@dataclass(frozen=True)
class Vocabulary:
    indications: Mapping[str, str]  # id → the words a card uses
    request_kinds: Mapping[str, str]  # id → the words a card uses, in order of precedence
    # an order's own kind → the words for it when, alone with a pump in place, it is judged as a replacement
    revisions: Mapping[str, str] = field(default_factory=dict)

    def indication_words(self, indication: str) -> str:
        return self.indications.get(indication, indication.replace("-", " "))

    def kind_words(self, kind: str) -> str:
        return self.request_kinds.get(kind, kind.replace("-", " "))

    def revision_words(self, own_kind: str) -> str:
        """What an order of kind `own_kind` is when it is judged by the criteria for a replacement
        without being one (`classify.revision`: a catheter alone beside the pump is "a catheter
        revision"); the criteria stay those of its request kind (`kind_words`), the only ones the policies
        give for it (review27a)."""
        return self.revisions.get(own_kind, "")

    def rank(self, kind: str) -> int:
        """The precedence of a request kind: lower is more significant (the episode's principal)."""
        order = list(self.request_kinds)
        return order.index(kind) if kind in order else len(order)

    def unknown(self, words: Iterable[str], what: str) -> list[str]:
        """The ids among `words` that are not `what` ("indications" or "request_kinds") here."""
        known = self.indications if what == "indications" else self.request_kinds
        return [w for w in words if w not in known]


def load_vocabulary(path: Path) -> Vocabulary:
    try:
        source = load(path)
        check_schema(source, "vocabulary.schema.json")
    except SourceError as exc:
        raise VocabularyError(str(exc)) from None
    raw = source.data
    return Vocabulary(dict(raw["indications"]), dict(raw["request_kinds"]), dict(raw.get("revisions", {})))
