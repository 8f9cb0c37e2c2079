"""The criterion test types a policy file may use, each a pure function of the context.

A policy criterion names one of these types and gives its parameters; adding a payer or a
criterion is a YAML change as long as it uses these types. Each type is declared once, by
`@test_type` on its function in its family's module (conditions, medications, procedures, trials,
observations, devices, infusates), with a typed parameter schema (`params.py`) that the policy
compiler checks, and the resource types it reads, so the engine can tell "nothing found" from
"could not look" (`common.could_not_check`). `TEST_TYPES` is assembled here from the families.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.engine.checks import (
    conditions,
    devices,
    infusates,
    medications,
    observations,
    procedures,
    trials,
)
from service.engine.checks.testtype import TestType, collect

TEST_TYPES: Mapping[str, TestType] = collect(
    conditions, medications, procedures, trials, observations, devices, infusates
)
