"""The compiled knowledge the service runs on: value sets, the order-code table and the policies.

Built once when the application is created (never per request) and shared read-only by all
requests; a broken file raises here, so the service refuses to start on a broken policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import policies
from service.engine.classify import CLASSIFICATION_VALUE_SETS
from service.orders import OrderCodeTable, load_order_codes
from service.policy import Policy, PolicyError, load_policies
from service.record import RECORD_VALUE_SETS
from service.terminology import Terminology, ValueSetError, load_terminology

DEFAULT_POLICY_ID = "geha-idds-chronic-pain"
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

    def policies_for_order(self) -> list[Policy]:
        """The policies to evaluate. Until payer routing lands, every pump order is judged by GEHA."""
        return [self.policies[DEFAULT_POLICY_ID]]


def load_catalog(directory: Path | None = None) -> Catalog:
    root = directory or policies.directory()
    terminology = load_terminology(root / "valuesets")
    missing = [vs for vs in REQUIRED_VALUE_SETS if vs not in terminology]
    if missing:
        raise ValueSetError(f"valuesets: the service needs value set(s) {', '.join(missing)}")
    compiled = load_policies(root, terminology)
    if DEFAULT_POLICY_ID not in compiled:
        raise PolicyError(f"no policy with id '{DEFAULT_POLICY_ID}', which the service evaluates")
    return Catalog(terminology, load_order_codes(root / "order-codes.yaml"), compiled)
