"""The compiled knowledge the service runs on: value sets, order codes, policies and payer routing.

Built once when the application is created (never per request) and shared read-only by all
requests; a broken file raises here, so the service refuses to start on a broken policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import policies
from service.assessments import AssessmentCodesError, AssessmentCodeSystem, load_assessment_codes
from service.codes import ASSESSMENT_SYSTEM
from service.engine.classify import CLASSIFICATION_VALUE_SETS
from service.orders import OrderCodeTable, load_order_codes
from service.policy import Policy, load_policies
from service.record import RECORD_VALUE_SETS
from service.routing import Payer, load_payers
from service.terminology import Terminology, ValueSetError, load_terminology
from service.vocabulary import Vocabulary, load_vocabulary

REQUIRED_VALUE_SETS = (
    *CLASSIFICATION_VALUE_SETS,
    *RECORD_VALUE_SETS,
    "observation-evidence",
)


@dataclass(frozen=True)
class Catalog:
    terminology: Terminology
    order_codes: OrderCodeTable
    policies: dict[str, Policy]
    payers: tuple[Payer, ...]
    assessments: AssessmentCodeSystem
    vocabulary: Vocabulary


def load_catalog(directory: Path | None = None) -> Catalog:
    root = directory or policies.directory()
    assessments = load_assessment_codes(root / "assessment-codes.yaml")
    if assessments.url != ASSESSMENT_SYSTEM:
        raise AssessmentCodesError(f"assessment-codes.yaml: url must be {ASSESSMENT_SYSTEM} (contract §5)")
    terminology = load_terminology(root / "valuesets", assessments.displays)
    missing = [vs for vs in REQUIRED_VALUE_SETS if vs not in terminology]
    if missing:
        raise ValueSetError(f"valuesets: the service needs value set(s) {', '.join(missing)}")
    vocabulary = load_vocabulary(root / "vocabulary.yaml")
    compiled = load_policies(root, terminology, vocabulary)
    payers = load_payers(root / "payers.yaml", compiled)
    order_codes = load_order_codes(root / "order-codes.yaml", vocabulary)
    return Catalog(terminology, order_codes, compiled, payers, assessments, vocabulary)
