"""The policy scenarios shared by tests beyond their policy's own test module: Kaiser's and Cohere's
engine calls, and the charts that meet every criterion of a Kaiser baclofen pump and of a Cohere
cancer-pain trial (tests/unit/test_kpwa_policy.py and test_cohere_policy.py hold the rest)."""

from __future__ import annotations

from typing import Any

from service.engine.model import Determination
from tests.builders import (
    ICD,
    assessment,
    condition,
    determine,
    fentanyl_patch_stopped,
    infusate_request,
    med_request,
    procedure,
    service_request,
)

KPWA = "kpwa-implanted-infusion-pumps"
COHERE = "cohere-intrathecal-pain-pumps"
KPWA_TRIAL = "2025-10-01T09:00:00Z"  # the baclofen bolus of Kaiser's spasticity patient
MORPHINE = infusate_request()
BACLOFEN_IT = infusate_request("baclofen 2 MG/ML Injectable Solution", "1292")
IMPLANT = service_request("62362")
TRIAL_ORDER = service_request("62324")


def kaiser(
    chart: list[dict[str, Any]],
    drugs: tuple[dict[str, Any], ...] = (MORPHINE,),
    order: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Determination:
    return determine(chart, order=order, drugs=drugs, policy_id=KPWA, **kwargs)


def ashworth(score: int, when: str) -> dict[str, Any]:
    return assessment("ashworth-score", when, valueInteger=score)


def kpwa_spasticity_chart() -> list[dict[str, Any]]:
    """Multiple sclerosis spasticity meeting every Kaiser criterion for an intrathecal baclofen pump."""
    return [
        condition(ICD, "G35.A", "2015-01-01", "Relapsing-remitting multiple sclerosis"),
        ashworth(3, "2025-09-01"),
        assessment("spasm-frequency-score", "2025-09-01", valueInteger=2),
        med_request(
            "Baclofen 10 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped", "inadequate control"
        ),
        procedure("62323", KPWA_TRIAL),
        assessment("it-trial-scale-reduction", "2025-10-01", valueQuantity={"value": 2.5, "unit": "points"}),
        assessment("it-trial-response-duration-h", "2025-10-01", valueQuantity={"value": 6, "unit": "h"}),
    ]


def cohere(
    chart: list[dict[str, Any]],
    order: dict[str, Any] | None = None,
    drugs: tuple[dict[str, Any], ...] | None = (MORPHINE,),
    **kwargs: Any,
) -> Determination:
    return determine(chart, order=order or IMPLANT, drugs=drugs, policy_id=COHERE, **kwargs)


def cancer_chart() -> list[dict[str, Any]]:
    """Breast cancer with liver metastases meeting every Cohere cancer-pain criterion for a trial."""
    return [
        condition(ICD, "C50.911", "2024-02-01", "Malignant neoplasm of right female breast"),
        condition(ICD, "C78.7", "2026-05-01", "Secondary malignant neoplasm of liver"),
        condition(ICD, "G89.3", "2026-05-01", "Neoplasm related pain"),
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=True),
        fentanyl_patch_stopped(),
    ]
