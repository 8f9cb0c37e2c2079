"""What every answer of the service must be, whatever it was sent: no 5xx, strict JSON (no NaN or
Infinity), an OperationOutcome for every 4xx; and the size of the fuzz runs (small and seeded in
CI, larger through IDDS_CRD_FUZZ_SCALE)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings

FUZZ_SCALE = float(os.environ.get("IDDS_CRD_FUZZ_SCALE", "1"))


def seeded(base_examples: int) -> settings:
    """Hypothesis settings for a fuzz test: derandomized (the same cases on every run), no example
    database, no deadline; `base_examples` in CI, times IDDS_CRD_FUZZ_SCALE for a longer run."""
    return settings(
        max_examples=max(1, round(base_examples * FUZZ_SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} in an answer")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def assert_sound_answer(status: int, media_type: str, text: str) -> Any:
    """No server error; JSON answers strict; every 4xx an OperationOutcome with an error issue."""
    assert status < 500, f"HTTP {status}: {text[:500]}"
    if media_type in ("application/json", "application/fhir+json"):
        body = strict_json(text)
    else:
        assert status == 200 and media_type in ("text/html", "text/plain"), (status, media_type, text[:200])
        return text
    if status >= 400:
        assert body["resourceType"] == "OperationOutcome", text[:500]
        assert body["issue"] and body["issue"][0]["severity"] == "error"
        assert "Traceback" not in text
    return body
