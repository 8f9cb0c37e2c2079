"""FHIR OperationOutcome bodies for every error the service returns (never a stack trace)."""

from __future__ import annotations

import math
from typing import Any

RETRY_AFTER = "Retry-After"


def retry_after(seconds: float) -> str:
    """A `Retry-After` value for a 503: `seconds` in whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def operation_outcome(
    code: str, diagnostics: str, expression: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
