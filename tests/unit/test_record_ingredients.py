"""The record's ingredient lookup (compiled once per set of ingredients, searched by word only where
a name occurs) names exactly the ingredients each `Ingredient` would match on its own."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.codes import RXNORM, SNOMED, Code
from service.facts import MedicationFact
from service.terminology import Ingredient, IngredientFinder
from tests.builders import catalog

INGREDIENTS = catalog().terminology.all_ingredients()
NAMES = [i.name for i in INGREDIENTS]
RXCUIS = [*sorted({c for i in INGREDIENTS for c in (i.code, *i.products) if c}), "0", "999999"]
# long s, Kelvin sign, dotted capital I: case-insensitive matching treats them unlike str.lower
WORDS = st.sampled_from(
    NAMES + [n.upper() for n in NAMES] + ["mg", "oral", "\u017f", "\u212a", "\u0130", "-", " ", "/"]
)
TEXTS = st.lists(WORDS | st.text(max_size=6), max_size=6).map(" ".join) | st.sampled_from(NAMES).map(
    lambda name: f"x{name}y"
)
CODES = st.lists(st.builds(Code, st.sampled_from([RXNORM, SNOMED]), st.sampled_from(RXCUIS)), max_size=3).map(
    tuple
)


def one_by_one(medication: MedicationFact, ingredients: tuple[Ingredient, ...]) -> frozenset[str]:
    return frozenset(
        i.name
        for i in ingredients
        if any(c.system == RXNORM and i.matches_code(c.code) for c in medication.codes)
        or i.matches_text(medication.text)
    )


def medication(text: str, codes: tuple[Code, ...]) -> MedicationFact:
    return MedicationFact("MedicationRequest/m", codes, text, text, "active", None, None, None, "")


@settings(max_examples=400, deadline=None)
@given(TEXTS, CODES)
def test_the_finder_names_what_each_ingredient_matches(text: str, codes: tuple[Code, ...]) -> None:
    drug = medication(text, codes)
    assert IngredientFinder(INGREDIENTS).names(drug.text, drug.codes) == one_by_one(drug, INGREDIENTS)


def test_names_are_found_by_code_and_by_word_and_not_inside_other_words() -> None:
    morphine = next(i for i in INGREDIENTS if i.name == "morphine")
    finder = IngredientFinder(INGREDIENTS)
    assert "morphine" in finder.names("", (Code(RXNORM, morphine.code or ""),))
    assert "morphine" in finder.names("Morphine Sulfate 15 MG", ())
    assert "morphine" not in finder.names("hydromorphinex", ())


@pytest.mark.parametrize(
    "text", ["Sufentanil 50 MCG/ML", "SUFENTANIL", "\u017fufentanil", "Morphine \u017fulfate", "x"]
)
def test_a_name_past_ascii_is_found_by_its_pattern_in_any_text(text: str) -> None:
    """A name past ASCII is matched case-insensitively by its pattern, which `str.lower` does not model
    (long s matches "s"): the finder, which looks an ASCII name up in the lowered text first, searches
    for such a name by its pattern in an ASCII text too, as the ingredient alone does."""
    odd = (*INGREDIENTS, Ingredient("\u017fufentanil", None))
    drug = medication(text, ())
    assert IngredientFinder(odd).names(drug.text, ()) == one_by_one(drug, odd)


def test_a_value_set_holds_an_rxnorm_code_exactly_when_one_of_its_ingredients_is_found_by_it() -> None:
    """`ValueSet.matches_any` looks an RxNorm code up among every code its ingredients are found by
    (`ingredient_codes`, perf30), as `ingredient_for_code` finds one: every value set, every RxCUI the
    catalog knows (ingredients' and products'), and codes none is; `holds_drug` by ingredient too."""
    terminology = catalog().terminology
    for value_set in (terminology[i] for i in terminology.ids()):
        for rxcui in RXCUIS:
            found = value_set.ingredient_for_code(rxcui) is not None
            assert value_set.matches(Code(RXNORM, rxcui, None)) is found, (value_set.id, rxcui)
        for name in NAMES:
            named = name in {i.name for i in value_set.ingredients}
            assert value_set.holds_drug(frozenset({name, "not-a-drug"}), ()) is named, (value_set.id, name)
        assert not value_set.holds_drug(frozenset(), ())
