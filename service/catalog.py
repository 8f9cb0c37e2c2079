"""The compiled knowledge the service runs on: value sets, the order-code table and the policies.

Built once when the application is created (never per request) and shared read-only by all
requests; a broken file raises here, so the service refuses to start on a broken policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import policies
from service.orders import OrderCodeTable, load_order_codes
from service.policy import Policy, load_policies
from service.terminology import Terminology, load_terminology

DEFAULT_POLICY_ID = "geha-idds-chronic-pain"


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
    return Catalog(terminology, load_order_codes(root / "order-codes.yaml"), load_policies(root, terminology))
