"""Everything one evaluation may read: the record, value sets, the order, its drugs, the date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from service.orders import Infusate, PumpOrder
from service.record import PatientRecord
from service.terminology import Ingredient, Terminology
from service.trial import TrialResult


@dataclass
class EvaluationContext:
    record: PatientRecord
    terminology: Terminology
    today: date
    order: PumpOrder
    infusates: tuple[Infusate, ...] = field(default_factory=tuple)
    request_kind: str = ""
    indication: str = ""

    @property
    def trial(self) -> TrialResult:
        return self.record.trial

    def infusate_ingredients(self, value_set_ids: tuple[str, ...]) -> list[tuple[Infusate, Ingredient]]:
        """(drug order, ingredient) pairs for the ordered infusates, by RxCUI or by name in the text."""
        found: list[tuple[Infusate, Ingredient]] = []
        for infusate in self.infusates:
            for vs_id in value_set_ids:
                vs = self.terminology[vs_id]
                ingredients = [i for c in infusate.codes if (i := vs.ingredient_for_code(c.code))]
                ingredients += vs.ingredients_in_text(infusate.text)
                for ingredient in ingredients:
                    if all(ingredient.name != seen.name for _, seen in found):
                        found.append((infusate, ingredient))
        return found
