"""The call's (drug, ingredient) pairs, looked up through a code set and a word prefilter, are what
checking every ingredient of every pool against every drug, in order, gives."""

from __future__ import annotations

import copy
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from service.codes import RXNORM, SNOMED, Code
from service.engine.context import EvaluationContext
from service.infusates import Infusate
from service.terminology import Ingredient, IngredientFinder
from tests.builders import catalog, context, meeting_chart

TERMINOLOGY = catalog().terminology
INGREDIENTS = TERMINOLOGY.all_ingredients()
NAMES = [i.name for i in INGREDIENTS]
RXCUIS = [*sorted({c for i in INGREDIENTS for c in (i.code, *i.products) if c}), "0"]
WORDS = st.sampled_from(NAMES + [n.upper() for n in NAMES] + ["mg", "\u017f", "\u212a", "\u0130", "-", " "])
TEXTS = st.lists(WORDS | st.text(max_size=5), max_size=5).map(" ".join)
CODES = st.lists(st.builds(Code, st.sampled_from([RXNORM, SNOMED]), st.sampled_from(RXCUIS)), max_size=3)
DRUGS = st.lists(
    st.builds(lambda text, codes: Infusate("MedicationRequest/d", tuple(codes), text, True), TEXTS, CODES),
    max_size=3,
)
POOLS = st.sampled_from([None, ("antispasmodic-infusates",), tuple(TERMINOLOGY.ids())])
BASE = context(meeting_chart())


def one_by_one(
    ctx: EvaluationContext, value_set_ids: tuple[str, ...] | None
) -> list[tuple[Infusate, Ingredient]]:
    pools = [INGREDIENTS] if value_set_ids is None else [TERMINOLOGY[v].ingredients for v in value_set_ids]
    found: list[tuple[Infusate, Ingredient]] = []
    for drug in ctx.infusates:
        for pool in pools:
            for ingredient in pool:
                by_code = any(c.code == ingredient.code or c.code in ingredient.products for c in drug.codes)
                if (by_code or ingredient.matches_text(drug.text)) and all(
                    ingredient.name != seen.name for _, seen in found
                ):
                    found.append((drug, ingredient))
    return found


@settings(max_examples=300, deadline=None)
@given(DRUGS, POOLS)
def test_the_pairs_are_those_of_checking_one_by_one(
    drugs: list[Infusate], pools: tuple[str, ...] | None
) -> None:
    ctx = replace(BASE, infusates=tuple(drugs), _memo={})
    assert ctx.infusate_ingredients(pools) == one_by_one(ctx, pools)


class _BrandFinder(IngredientFinder):
    """A finder whose rule differs from each ingredient's own pattern: it names baclofen in "Lioresal" (a
    brand) and finds nothing else by name."""

    def names(self, text: str, codes: tuple[Code, ...]) -> frozenset[str]:
        by_code = super().names("", codes)
        return by_code | ({"baclofen"} if "lioresal" in text.lower() else frozenset())


def test_a_drug_is_paired_by_name_as_the_terminologys_finder_names_it() -> None:
    """The engine pairs an ordered drug with a value set's ingredient by name as the terminology's
    `ingredient_finder` names the drug's ingredients, the rule the record's drugs are read by too
    (review30d LOW 1: the rule was written out again in `Ingredient.named_in`); a finder with another
    rule changes the pairing with it. The real finder is the control: it finds no ingredient in a brand."""
    brand = Infusate("MedicationRequest/d", (), "Lioresal Intrathecal 2000 MCG/ML", True)
    generic = Infusate("MedicationRequest/e", (), "Baclofen 2000 MCG/ML", True)
    pools = ("antispasmodic-infusates",)
    ctx = replace(BASE, infusates=(brand, generic), _memo={})
    assert [(d.reference, i.name) for d, i in ctx.infusate_ingredients(pools)] == [
        ("MedicationRequest/e", "baclofen")
    ]
    other = copy.copy(TERMINOLOGY)
    other.ingredient_finder = _BrandFinder(INGREDIENTS)
    ctx = replace(BASE, terminology=other, infusates=(brand, generic), _memo={})
    assert [(d.reference, i.name) for d, i in ctx.infusate_ingredients(pools)] == [
        ("MedicationRequest/d", "baclofen")
    ]
