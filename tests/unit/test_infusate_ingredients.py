"""The call's (drug, ingredient) pairs, looked up through a code set and a word prefilter, are what
checking every ingredient of every pool against every drug, in order, gives."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from service.codes import RXNORM, SNOMED, Code
from service.engine.context import EvaluationContext
from service.infusates import Infusate
from service.terminology import Ingredient
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
