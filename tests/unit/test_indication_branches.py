"""Sub-criteria scoped by `indications`: once the order's indication is evident, the branches of other
indications are dropped before evaluation and a group left with one branch is that branch; while nothing
tells the indication, every branch is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cards.items import Episode, missing
from cards.render import detail, summary
from service.engine.evaluate import evaluate_order, kleene
from service.engine.model import Determination, Outcome, Status
from service.policy import Policy, compile_policy
from service.yamlsource import load
from tests.builders import ICD, assessment, baclofen_request, catalog, condition, context, infusate_request

EITHER_OR = """
id: either-or
payer: Either Or Health
title: Either or
version: "1"
document: "Either or"
source: "seeds/either-or.txt"
effective: "2024-01-01"
next_review: null
dates_as_stated: "Effective 1/1/2024"
scope:
  indications: [non-malignant-pain, spasticity]
  request_kinds: [permanent-implant]
criteria:
  - id: drug
    label: "A drug for the indication"
    section: "1"
    text: "an opioid for pain or baclofen for spasticity"
    role: required
    any:
      - id: drug.pain
        label: "Opioid ordered"
        section: "1.a"
        text: "an opioid for pain"
        indications: [non-malignant-pain]
        test: {type: infusate-in, valuesets: [opioids]}
      - id: drug.spasticity
        label: "Baclofen ordered"
        section: "1.b"
        text: "baclofen for spasticity"
        indications: [spasticity]
        test: {type: infusate-in, valuesets: [antispasmodic-infusates]}
  - id: agreement
    label: "Agreement, and a tone score for spasticity"
    section: "2"
    text: "the patient agrees, and a spastic patient has a tone score"
    role: required
    all:
      - id: agreement.answer
        label: "Patient agrees"
        section: "2.a"
        text: "the patient agrees"
        test: {type: assessment, code: it-trial-patient-acceptance, met: [true], not_met: [false]}
      - id: agreement.tone
        label: "Ashworth at least 3"
        section: "2.b"
        text: "a spastic patient has a tone score"
        indications: [spasticity]
        test: {type: scale-score, code: ashworth-score, comparator: ">=", value: 3}
"""
AGREES = assessment("it-trial-patient-acceptance", valueBoolean=True)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path: Path = tmp_path_factory.mktemp("policies") / "either-or.yaml"
    path.write_text(EITHER_OR, encoding="utf-8")
    return compile_policy(load(path), catalog().terminology, catalog().vocabulary)


def judge(policy: Policy, chart: list[dict[str, Any]], drugs: tuple[dict[str, Any], ...]) -> Determination:
    return evaluate_order(policy, context(chart, drugs=drugs))


def tree(d: Determination) -> dict[str, str]:
    return {r.id: r.status.value for top in d.criteria for r in top.walk()}


def test_an_opioid_pump_is_judged_by_the_pain_branches_only(policy: Policy) -> None:
    d = judge(policy, [AGREES], (infusate_request(),))
    assert (d.indication, d.indication_evident) == ("non-malignant-pain", True)
    # each group is left with one branch, which stands in its place with its own verdict
    assert tree(d) == {"drug.pain": "met", "agreement.answer": "met"}
    assert [r.id for r in d.criteria] == ["drug.pain", "agreement.answer"]


def test_a_baclofen_pump_keeps_its_branches_and_the_groups_logic(policy: Policy) -> None:
    d = judge(policy, [AGREES], (baclofen_request(),))
    assert d.indication == "spasticity"
    assert tree(d) == {
        "drug.spasticity": "met",
        "agreement": "not-documented",  # all(met, not documented)
        "agreement.answer": "met",
        "agreement.tone": "not-documented",
    }


def test_a_dropped_branch_no_longer_decides_the_group(policy: Policy) -> None:
    """Kept, the baclofen branch would be not met and the `any` met by the opioid branch; with the spasticity
    branch of an `all` kept, its missing score would leave the pain pump's group undocumented."""
    d = judge(policy, [AGREES, condition(ICD, "M96.1", "2023-03-01")], (infusate_request(),))
    assert "drug.spasticity" not in tree(d) and "agreement.tone" not in tree(d)
    assert d.outcome.value == "meets"


def test_while_nothing_tells_the_indication_every_branch_is_kept(policy: Policy) -> None:
    d = judge(policy, [AGREES], ())
    assert (d.indication, d.indication_evident) == ("non-malignant-pain", False)
    assert tree(d) == {
        "drug": "not-documented",
        "drug.pain": "not-documented",
        "drug.spasticity": "not-documented",
        "agreement": "not-documented",
        "agreement.answer": "met",
        "agreement.tone": "not-documented",
    }


def test_a_diagnosis_on_the_problem_list_tells_the_indication(policy: Policy) -> None:
    d = judge(policy, [AGREES, condition(ICD, "G80.1", "2019-01-01")], ())
    assert (d.indication, d.indication_evident) == ("spasticity", True)
    assert tree(d)["drug.spasticity"] == "not-documented"
    assert "drug.pain" not in tree(d)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("logic", ["all", "any"])
def test_a_group_of_one_has_its_childs_verdict(logic: str, status: Status) -> None:
    assert kleene(logic, [status]) == status


SPLIT = """
id: split
payer: Split Health
title: Split
version: "1"
document: "Split"
source: "seeds/split.txt"
effective: "2024-01-01"
next_review: null
dates_as_stated: "Effective 1/1/2024"
scope:
  indications: [non-malignant-pain, cancer-pain, spasticity, dystonia]
  request_kinds: [permanent-implant]
criteria:
  - id: agreement
    label: "Patient agrees"
    section: "1"
    text: "a patient in pain agrees"
    role: required
    indications: [non-malignant-pain, cancer-pain]
    test: {type: assessment, code: it-trial-patient-acceptance, met: [true], not_met: [false]}
  - id: tone
    label: "Ashworth at least 3"
    section: "2"
    text: "a patient with non-malignant pain, spasticity or dystonia has a tone score"
    role: required
    indications: [non-malignant-pain, spasticity, dystonia]
    test: {type: scale-score, code: ashworth-score, comparator: ">=", value: 3}
"""


def test_failures_that_together_close_every_indication_decide_without_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Nothing tells what the pump is for; one failure is written for the pain indications, the other
    for the rest (each with the default): whatever the pump is for, one of them fails it. Not covered,
    not a question of what it is for; the cards list no criterion as standing either."""
    path: Path = tmp_path_factory.mktemp("policies") / "split.yaml"
    path.write_text(SPLIT, encoding="utf-8")
    split = compile_policy(load(path), catalog().terminology, catalog().vocabulary)
    refuses = assessment("it-trial-patient-acceptance", valueBoolean=False)
    d = judge(split, [refuses, assessment("ashworth-score", valueInteger=1)], ())
    assert (d.indication_evident, tree(d)) == (False, {"agreement": "not-met", "tone": "not-met"})
    assert d.outcome == Outcome.DOES_NOT_MEET
    assert missing(d) == ()
    card = detail(Episode.of([d]))
    assert card.startswith("**Not covered as ordered** (Split Health)") and "pump is for" not in card
    assert summary(Episode.of([d])).startswith("Split Health: not covered — Patient agrees")
