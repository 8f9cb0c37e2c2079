"""Every Synthea patient evaluates without error under every policy for a 62362 order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.demo.synthea import SYNTHEA_DIRS, synthea_files
from service.engine.model import Outcome
from tests.builders import catalog, determine, service_request

FILES = synthea_files()


def chart_of(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle["entry"] if isinstance(e.get("resource"), dict)]


@pytest.mark.skipif(
    not FILES, reason=f"the Synthea fixtures are not beside the repository ({SYNTHEA_DIRS[0]})"
)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem[:24])
def test_every_policy_judges_every_synthea_patient(path: Path) -> None:
    chart = chart_of(path)
    for policy_id in catalog().policies:
        d = determine(chart, order=service_request("62362"), policy_id=policy_id)
        assert d.outcome in set(Outcome)
        assert d.explanation
        for criterion in d.criteria:
            assert criterion.finding, (policy_id, criterion.id)
