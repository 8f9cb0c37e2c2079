"""Everything one evaluation may read: the record, value sets, the order, its drugs, the date."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from service.infusates import Infusate
from service.orders import PumpOrder
from service.record import PatientRecord
from service.terminology import Ingredient, Terminology
from service.trial import TrialResult

T = TypeVar("T")


@dataclass(frozen=True)
class EvaluationContext:
    """`episode_kinds` are the base kinds of every pump order in the call (a catheter ordered with a
    pump is part of the implant), `episode_orders` the pump orders the call judges, principal first;
    `request_kind` and `indication` are set once classified."""

    record: PatientRecord
    terminology: Terminology
    today: date
    order: PumpOrder
    infusates: tuple[Infusate, ...] = field(default_factory=tuple)
    episode_kinds: frozenset[str] = frozenset()
    episode_orders: tuple[PumpOrder, ...] = ()
    request_kind: str = ""
    indication: str = ""
    _memo: dict[tuple[str, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def memo(self, key: tuple[str, ...], compute: Callable[[], T]) -> T:
        """A value computed once per call and shared by every criterion of every policy and order that
        asks for it by the same `key` (keys that name an order are that order's)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]

    @property
    def trial(self) -> TrialResult:
        return self.record.trial

    def infusate_ingredients(
        self, value_set_ids: tuple[str, ...] | None = None
    ) -> list[tuple[Infusate, Ingredient]]:
        """(drug order, ingredient) pairs for the ordered infusates, by RxCUI or by name in the text,
        among the ingredients of the given value sets (all known ingredients when None)."""
        return self.memo(
            ("infusates", *(value_set_ids or ("*",))), lambda: self._infusate_ingredients(value_set_ids)
        )

    def _infusate_ingredients(
        self, value_set_ids: tuple[str, ...] | None
    ) -> list[tuple[Infusate, Ingredient]]:
        if value_set_ids is None:
            pools = [self.terminology.all_ingredients()]
        else:
            pools = [self.terminology[vs_id].ingredients for vs_id in value_set_ids]
        found: list[tuple[Infusate, Ingredient]] = []
        named: set[str] = set()
        for infusate in self.infusates:
            codes = {c.code for c in infusate.codes}
            # by name, as the record names a drug's ingredients: the terminology's finder, the one place the
            # matching rule is written (a name's text match is the name's alone, whichever value set holds it)
            in_text = self.terminology.ingredient_finder.names(infusate.text, ())
            for pool in pools:
                for ingredient in pool:
                    if ingredient.name in named:
                        continue  # the first drug to name an ingredient is the one kept
                    if (
                        ingredient.code in codes
                        or not codes.isdisjoint(ingredient.products)
                        or ingredient.name in in_text
                    ):
                        found.append((infusate, ingredient))
                        named.add(ingredient.name)
        return found
