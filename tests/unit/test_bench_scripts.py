"""The in-process benchmarks follow the pipeline's own signatures: run once each, they finish. Both
broke unnoticed when a stage's signature changed (`decide`'s call instant, `infusates`' ingredient
finder), and `python -m bench` then wrote "not measured yet" into bench/RESULTS.md. The benchmarks'
figures are never asserted here (bench/NOTES.md): only that each script still runs to its end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["pipeline_split.py", "engine_speed.py"])
def test_an_in_process_benchmark_runs_to_its_end(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--runs", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "figure " in done.stdout
