"""Properties of every policy's determination, checked on generated charts (hypothesis).

1. Adding evidence of an exclusion or contraindication never improves a determination.
2. Removing a piece of evidence never turns a criterion that needs positive evidence from
   "not documented" into "met". Criteria met by the absence rule ("no infection: none
   documented") are excluded by construction: removing evidence of X is exactly what makes them
   met. Supersession is excluded too: the contract makes the most recent trial and an explicit
   assessment win over older or computed data, and a trial turns the scores after it into trial
   results (no longer the baseline), so the generated charts hold one trial, which is never the
   piece removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.model import CriterionResult, Outcome
from tests.builders import (
    ICD,
    SCT,
    allergy,
    assessment,
    catalog,
    coded_assessment,
    condition,
    determine,
    device,
    infusate_request,
    med_request,
    oxycodone,
    pain,
    procedure,
)

RANK = {Outcome.DOES_NOT_MEET: 0, Outcome.INSUFFICIENT: 1, Outcome.MEETS: 2}
ABSENCE_TYPES = {"no-condition", "no-device", "no-infusate-allergy", "infusate-not-in"}

EVIDENCE: list[Callable[[], dict[str, Any]]] = [
    lambda: condition(ICD, "M96.1", "2023-03-01"),
    lambda: condition(ICD, "G89.29", "2024-01-01"),
    lambda: condition(SCT, "82423001", "2026-10-01"),
    lambda: condition(ICD, "M47.816", onset=None, recorded="2026-09-01"),
    lambda: oxycodone(reason="ineffective"),
    lambda: med_request(
        "morphine sulfate 10 MG/ML Injectable Solution",
        "2025-04-15",
        "2025-06-15",
        "stopped",
        reason="nausea",
        code="892531",
    ),
    lambda: med_request("Gabapentin 300 MG Oral Capsule", "2025-01-01", "2025-09-01", code="310431"),
    lambda: med_request(
        "baclofen 10 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped", reason="ineffective"
    ),
    lambda: procedure("64483", "2024-05-02"),
    lambda: procedure("97110", "2025-02-01"),
    lambda: procedure("90791", "2025-08-01"),
    lambda: procedure("62324", "2025-10-01T09:00:00Z"),
    lambda: pain(8, "2025-09-30T15:00:00Z"),
    lambda: pain(3, "2025-10-01T18:00:00Z"),
    lambda: pain(5, "2025-10-02T06:00:00Z"),
    lambda: coded_assessment("it-trial-side-effects", "none"),
    lambda: assessment("it-trial-patient-acceptance", valueBoolean=True),
    lambda: assessment("it-trial-function-improved", valueBoolean=True),
    lambda: assessment("psych-clearance", valueBoolean=True),
    lambda: assessment("opioid-reduction-agreement", valueBoolean=True),
    lambda: assessment("mental-health-attestation", valueBoolean=True),
    lambda: assessment("adl-difficulty-months", valueInteger=8),
    lambda: coded_assessment("further-treatment-status", "not-indicated"),
    lambda: coded_assessment("opioid-trial-outcome", "ineffective"),
    lambda: assessment("home-exercise-program", valueBoolean=True),
    lambda: coded_assessment("modified-ashworth-score", "3"),
    lambda: assessment("spasm-frequency-score", valueInteger=2),
]
EXCLUSIONS: list[Callable[[], dict[str, Any]]] = [
    lambda: condition(ICD, "Z95.0", "2020-01-01"),
    lambda: device(
        {"coding": [{"system": SCT, "code": "706004007", "display": "Implantable cardiac pacemaker"}]}
    ),
    lambda: condition(ICD, "L03.115", "2026-11-10"),
    lambda: condition(ICD, "R45.851", "2026-11-01"),
    lambda: condition(ICD, "F11.20", "2025-01-01"),
    lambda: allergy("Morphine", "7052"),
]

charts = st.lists(st.sampled_from(range(len(EVIDENCE))), unique=True, max_size=len(EVIDENCE))
# Derandomized: CI runs the same examples every time (a shared, noisy machine must not flake).
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
TRIAL_INDEX = next(
    i
    for i, make in enumerate(EVIDENCE)
    if make().get("code", {}).get("coding", [{}])[0].get("code") == "62324"
)


def build(indices: list[int]) -> list[dict[str, Any]]:
    return [EVIDENCE[i]() for i in indices]


def leaves(results: tuple[CriterionResult, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for result in results:
        found[result.id] = result.status.value
        found.update(leaves(result.children))
    return found


@PROPERTY_SETTINGS
@given(chart=charts, exclusion=st.sampled_from(range(len(EXCLUSIONS))))
def test_an_exclusion_never_improves_a_determination(chart: list[int], exclusion: int) -> None:
    for policy_id in catalog().policies:
        before = determine(build(chart), policy_id=policy_id)
        after = determine([*build(chart), EXCLUSIONS[exclusion]()], policy_id=policy_id)
        if before.outcome in RANK and after.outcome in RANK:
            assert RANK[after.outcome] <= RANK[before.outcome], (policy_id, before.outcome, after.outcome)


@PROPERTY_SETTINGS
@given(chart=charts.filter(bool), data=st.data())
def test_removing_evidence_never_documents_a_criterion(chart: list[int], data: st.DataObject) -> None:
    removable = [i for i in chart if i != TRIAL_INDEX]  # a trial reinterprets the scores around it
    if not removable:
        return
    removed = data.draw(st.sampled_from(removable))
    kept = [i for i in chart if i != removed]
    for policy_id, policy in catalog().policies.items():
        positive = {
            c.id
            for c in policy.all_criteria()
            if c.test_type and c.test_type not in ABSENCE_TYPES and not c.params.get("when_absent")
        }
        before = leaves(determine(build(chart), policy_id=policy_id).criteria)
        after = leaves(determine(build(kept), policy_id=policy_id).criteria)
        for cid in positive & before.keys() & after.keys():
            assert not (before[cid] == "not-documented" and after[cid] == "met"), (policy_id, cid, removed)


@PROPERTY_SETTINGS
@given(chart=charts)
def test_the_drug_order_only_matters_through_its_ingredients(chart: list[int]) -> None:
    """Naming the same infusate twice changes nothing (determinations are per drug, not per line)."""
    for policy_id in catalog().policies:
        once = determine(build(chart), policy_id=policy_id)
        twice = determine(build(chart), drugs=(infusate_request(), infusate_request()), policy_id=policy_id)
        assert leaves(once.criteria) == leaves(twice.criteria)
