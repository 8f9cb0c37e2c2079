"""A record's facts read field by field as their resources say, whatever the chart's other records of the
same drug say, and what a resource leaves out read as before (perf32: the record builds a drug's fact by
position, reads the words of a drug named with no dosage once per distinct drug of the call, and looks for
no route, no muscle, no drug used and no device acted on where a resource names none)."""

from __future__ import annotations

from typing import Any

import pytest

from service.codes import Code
from service.record import build_record
from tests.builders import (
    RX,
    SCT,
    catalog,
    concept,
    med_request,
    med_statement,
    muscle_ashworth,
    procedure,
)

INTRATHECAL = {"coding": [{"system": SCT, "code": "72607000", "display": "Intrathecal route"}], "text": "IT"}


def _facts(*resources: dict[str, Any]) -> list[Any]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return list(build_record("p1", by_type, catalog().terminology).medications)


def test_each_field_of_a_drug_orders_fact_is_the_one_its_order_says() -> None:
    """Every field distinct from its neighbours: a fact built with two fields swapped fails here."""
    order = med_request(
        "Morphine Sulfate 25 MG/ML Injection", "2025-01", "2025-06-10", "stopped", "no relief"
    )
    order["dosageInstruction"] = [{"route": INTRATHECAL}]
    [fact] = _facts(order)
    assert fact.source == f"MedicationRequest/{order['id']}"
    assert fact.codes == (Code("rxnorm", "999999", "Morphine Sulfate 25 MG/ML Injection"),)
    assert fact.text == fact.label == "Morphine Sulfate 25 MG/ML Injection"
    assert fact.status == "stopped"
    assert fact.status_reason == "no relief"
    assert fact.start is not None and fact.start.date().isoformat() == "2025-01-01"
    assert fact.end is not None and fact.end.date().isoformat() == "2025-06-10"
    assert fact.route_text == "IT | Intrathecal route"
    assert fact.route_codes == (Code("snomed", "72607000", "Intrathecal route"),)
    assert fact.ingredients == frozenset({"morphine"})
    assert fact.neuraxial is True
    assert fact.end_assumed is False
    assert (fact.precision, fact.end_precision, fact.end_by, fact.end_tied) == ("month", "day", None, False)
    assert fact.supply_months is None


def test_a_tied_end_and_its_supply_in_months_are_the_facts_last_fields() -> None:
    order = med_request("Baclofen 10 MG Oral Tablet", "2025-01")
    order["dispenseRequest"] = {
        "expectedSupplyDuration": {"value": 3, "unit": "mo", "system": "x", "code": "mo"}
    }
    [fact] = _facts(order)
    assert (fact.precision, fact.end_precision, fact.end_tied, fact.supply_months) == (
        "month",
        "month",
        True,
        3,
    )
    assert fact.end_by is not None and fact.end is not None and fact.end_by > fact.end
    assert fact.end_assumed is False and fact.neuraxial is False and fact.route_text == ""


NAMES = [
    ("Morphine Sulfate 25 MG/ML Injection", {"text": "intrathecal"}, True, False),
    ("Baclofen 0.05 MG/ML Intrathecal Solution", {"text": "oral"}, False, True),
    ("Baclofen 0.05 MG/ML Intrathecal Solution", INTRATHECAL, True, True),
]


@pytest.mark.parametrize(("name", "route", "routed", "unrouted"), NAMES)
@pytest.mark.parametrize("routed_first", [True, False])
def test_an_order_named_with_no_dosage_is_read_by_its_drugs_words_whatever_another_order_of_it_says(
    name: str, route: dict[str, Any], routed: bool, unrouted: bool, routed_first: bool
) -> None:
    """The same drug ordered twice, once with a dosage whose route tells and once with none: each is read
    as it alone says, in either order, and a statement of it as well (its `dosage`)."""
    with_route = med_request(name, "2025-01-01", "2025-03-01")
    with_route["dosageInstruction"] = [{"route": route}]
    without = med_request(name, "2025-02-01", "2025-03-01")
    statement = med_statement(concept(RX, "999999", name), "active", "2025-01-01") | {
        "dosage": [{"route": route}]
    }
    chart = [with_route, without, statement] if routed_first else [without, statement, with_route]
    by_source = {fact.source.split("/")[1]: fact.neuraxial for fact in _facts(*chart)}
    assert by_source == {with_route["id"]: routed, without["id"]: unrouted, statement["id"]: routed}


def test_an_empty_dosage_list_is_read_as_no_dosage() -> None:
    """A `dosageInstruction` written as [] names no route: its drug's words tell, as with none."""
    order = med_request("Baclofen 0.05 MG/ML Intrathecal Solution", "2025-01-01", "2025-03-01")
    order["dosageInstruction"] = []
    other = med_request("Baclofen 0.05 MG/ML Intrathecal Solution", "2025-02-01", "2025-03-01")
    assert [fact.neuraxial for fact in _facts(order, other)] == [True, True]


@pytest.mark.parametrize("key", ["dosageInstruction", "dosage"])
def test_a_route_is_read_from_an_orders_or_a_statements_dosages_under_either_key(key: str) -> None:
    """An order names its dosages `dosageInstruction`, a statement `dosage`; the record reads a route
    under either key of either (the record's quick look for a drug naming no dosage looks for both)."""
    drug = concept(RX, "999999", "Baclofen 0.05 MG/ML Intrathecal Solution")
    order = med_request("Baclofen 0.05 MG/ML Intrathecal Solution", "2025-01-01", "2025-03-01")
    statement = med_statement(drug, "active", "2025-01-01")
    for resource in (order, statement):
        resource[key] = [{"route": {"text": "oral"}}]
    assert [(fact.route_text, fact.neuraxial) for fact in _facts(order, statement)] == [("oral", False)] * 2


@pytest.mark.parametrize(
    ("site", "muscle"),
    [
        (None, ""),
        ("left biceps", ""),
        (["left biceps"], ""),
        ({"text": " Left  Biceps "}, "left biceps"),
        ({"coding": [{"system": SCT, "code": "b"}, {"system": SCT, "code": "a"}]}, "snomed|a snomed|b"),
    ],
)
def test_a_scores_muscle_is_its_body_sites_words_or_codes_and_none_for_a_site_written_as_no_object(
    site: Any, muscle: str
) -> None:
    """`bodySite` is a CodeableConcept: written as anything else (absent, text, a list) it names no
    muscle, and the score is still read (an average), as before the record's quick look for none."""
    score = muscle_ashworth(2, "2025-10-02", "x")
    if site is None:
        del score["bodySite"]
    else:
        score["bodySite"] = site
    [fact] = build_record("p1", {"Observation": [score]}, catalog().terminology).observations
    assert fact.body_site == muscle


@pytest.mark.parametrize(
    ("key", "value", "built"),
    [
        (None, None, False),
        ("usedCode", [], False),
        ("usedCode", ["not an object"], False),
        ("usedCode", [{"text": "lidocaine"}], True),
        ("focalDevice", [], False),
        ("focalDevice", [{"manipulated": {"reference": "Device/d1"}}], True),
    ],
)
def test_a_procedure_no_policy_reads_by_its_code_is_built_only_where_it_names_a_drug_used_or_a_device(
    key: str | None, value: Any, built: bool
) -> None:
    """A Procedure none of whose codes a policy reads is left out unless it names a drug it used or a device
    it acted on (as objects: an empty list, or one of no object, names none), which are read whatever its
    codes."""
    done = procedure("0000000", "2025-01-01", system=SCT, display="Unread procedure")
    if key is not None:
        done[key] = value
    facts = build_record("p1", {"Procedure": [done]}, catalog().terminology).procedures
    assert [fact.source for fact in facts] == ([f"Procedure/{done['id']}"] if built else [])
