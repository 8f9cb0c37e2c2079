"""What a drug order's route says of the pump's drug (contract §2: route SNOMED 72607000 intrathecal or
404820008 epidural): a route that names another way (oral, intravenous) says it is not, one that tells
nothing either way ("IT", SNOMED 418418000 with no words) leaves the drug's own words to decide."""

from __future__ import annotations

from typing import Any

import pytest

from service.codes import neuraxial_order, neuraxial_route
from tests.builders import SCT, concept, med_request, statuses
from tests.policy_charts import BACLOFEN_IT, kaiser, kpwa_spasticity_chart

IT_BACLOFEN = "Baclofen 2000 MCG/ML Intrathecal Solution"


@pytest.mark.parametrize(
    ("route", "said"),
    [
        (concept(SCT, "72607000", "Intrathecal route"), True),
        ({"text": "epidural"}, True),
        (concept(SCT, "26643006", "Oral route"), False),
        ({"text": "PO"}, False),
        ({"text": "intravenous"}, False),
        ({"text": "IT"}, None),
        (concept(SCT, "418418000", "Intraspinal route"), True),  # "intraspinal" is a neuraxial word
        ({"coding": [{"system": SCT, "code": "418418000"}]}, None),
        ({}, None),
    ],
)
def test_what_a_route_says(route: dict[str, Any], said: bool | None) -> None:
    assert neuraxial_route(route) is said


@pytest.mark.parametrize("route", [{"text": "IT"}, concept(SCT, "418418000", "Intraspinal route")])
def test_a_route_that_tells_nothing_leaves_the_drugs_words_to_decide(route: dict[str, Any]) -> None:
    """review19 H2: an intrathecal baclofen given "IT" is the pump's drug, not an oral antispasmodic
    course; an oral route still says the drug is another."""
    order = {"dosageInstruction": [{"route": route}]}
    assert neuraxial_order(order, IT_BACLOFEN) is True
    assert neuraxial_order({"dosageInstruction": [{"route": {"text": "oral"}}]}, IT_BACLOFEN) is False


@pytest.mark.parametrize("route", [{"text": "IT"}, concept(SCT, "418418000", "Intraspinal route")])
def test_an_intrathecal_baclofen_order_is_no_oral_antispasmodic_course(route: dict[str, Any]) -> None:
    it_baclofen = med_request(IT_BACLOFEN, "2025-01-01", "2025-06-01", "stopped", "somnolence")
    it_baclofen["dosageInstruction"] = [{"route": route}]
    oral = [r for r in kpwa_spasticity_chart() if "Oral" not in str(r.get("medicationCodeableConcept"))]
    found = statuses(kaiser([*oral, it_baclofen], drugs=(BACLOFEN_IT,)))
    assert found["kpwa.spasticity.oral-6wk-failed.duration"] != "met"
