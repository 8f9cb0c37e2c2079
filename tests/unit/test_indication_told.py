"""What tells what a pump is for when no drug is ordered with it: the drug an order line's code names
(J0476, the baclofen of a screening trial), and a problem list pointing both ways, which tells nothing."""

from __future__ import annotations

import pytest

from cards.items import missing
from service.engine.model import Outcome
from tests.builders import (
    HCPCS,
    ICD,
    cards_of,
    concept,
    condition,
    determine,
    infusate_request,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.calls import sign_with_chart
from tests.support import assertion_of

KPWA = "kpwa-implanted-infusion-pumps"
CEREBRAL_PALSY_WITH_HIP_PAIN = [
    condition(ICD, "G80.1", "2020-01-01", "Spastic diplegic cerebral palsy"),
    condition(ICD, "G89.29", "2024-01-01", "Other chronic pain"),
]
BACLOFEN_TRIAL_DOSE = service_request("J0476", HCPCS)


def test_a_baclofen_trial_dose_line_tells_spasticity() -> None:
    """J0476 is "injection, baclofen, 50 mcg for intrathecal trial": the trial drug, which tells the
    indication (criteria-and-codes.md §4.3). Before, the child's hip pain made the baclofen trial a
    pain trial, and Kaiser asked to order the opioid and to agree to cut opioids (peds review F3)."""
    trial = service_request("62323")
    d = determine(
        CEREBRAL_PALSY_WITH_HIP_PAIN, order=trial, companions=(BACLOFEN_TRIAL_DOSE,), drugs=(), policy_id=KPWA
    )
    assert (d.indication, d.indication_evident) == ("spasticity", True)
    asked = [item.label for item in missing(d)]
    assert "2.b Spasm frequency >= 2" in asked
    assert not [label for label in asked if label.startswith("3.")]
    geha = determine(CEREBRAL_PALSY_WITH_HIP_PAIN, order=trial, companions=(BACLOFEN_TRIAL_DOSE,), drugs=())
    assert geha.outcome == Outcome.NOT_APPLICABLE


MULTIPLE_SCLEROSIS_WITH_BONE_METASTASES = [
    condition(ICD, "G35", "2015-01-01", "Multiple sclerosis"),
    condition(ICD, "C79.51", "2026-05-01", "Secondary malignant neoplasm of bone"),
]


@pytest.mark.parametrize("payer", ["geha", "kpwa", "cohere", "cmm210"])
@pytest.mark.parametrize(
    "chart", [CEREBRAL_PALSY_WITH_HIP_PAIN, MULTIPLE_SCLEROSIS_WITH_BONE_METASTASES], ids=["pain", "cancer"]
)
def test_a_problem_list_with_spasticity_and_pain_does_not_tell_what_the_pump_is_for(
    payer: str, chart: list[dict[str, object]]
) -> None:
    """No drug and no reason: a child with cerebral palsy and chronic hip pain, or a woman with multiple
    sclerosis and bone metastases, may be given a baclofen pump or a pain pump. Before, the pain
    diagnosis made it a pain pump for certain and the card listed the opioid criteria, and the cancer
    made it a baclofen pump (peds review F3; session review s36, #4)."""
    call = sign_request(service_request("62362"), coverage=payer_coverage(payer))
    _, response = sign_with_chart(chart, body=call)
    [decision] = cards_of(response["cards"])
    assert decision["summary"].endswith("1 item to document for 62362 — What the pump is for"), decision[
        "summary"
    ]
    # no form asks what the pump is for: no DTR launched to ask every branch's questions (UM review 36)
    pump = next(a for a in response["systemActions"] if a["resource"]["resourceType"] == "ServiceRequest")
    assert "doc-needed" not in assertion_of(pump)


@pytest.mark.parametrize(
    ("order", "drugs", "told"),
    [
        (
            service_request("62362", reason=[concept(ICD, "G80.1", "Spastic diplegic cerebral palsy")]),
            (),
            "spasticity",
        ),
        (
            service_request("62362"),
            (infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),),
            "spasticity",
        ),
        (service_request("62362"), (infusate_request(),), "non-malignant-pain"),
    ],
    ids=["reason", "baclofen", "morphine"],
)
def test_the_reason_or_the_drug_tells_it_beside_such_a_problem_list(
    order: dict[str, object], drugs: tuple[dict[str, object], ...], told: str
) -> None:
    d = determine(CEREBRAL_PALSY_WITH_HIP_PAIN, order=order, drugs=drugs, policy_id=KPWA)
    assert (d.indication, d.indication_evident) == (told, True)
