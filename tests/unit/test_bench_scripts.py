"""The in-process benchmarks follow the pipeline's and the store's own signatures: run once each, they
finish. Each broke unnoticed when a signature changed (`decide`'s call instant, `infusates`' ingredient
finder; the audit inserts' connection when the SQLite store left SQLAlchemy), and `python -m bench` then
wrote "not measured yet" into bench/RESULTS.md. The benchmarks'
figures are never asserted here (bench/NOTES.md): only that each script still runs to its end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "briefly"),
    [
        ("pipeline_split.py", ["--runs", "1"]),
        ("engine_speed.py", ["--runs", "1"]),
        ("audit_commit.py", ["--seconds", "0.3", "--rounds", "1"]),
    ],
)
def test_an_in_process_benchmark_runs_to_its_end(script: str, briefly: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *briefly],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "figure " in done.stdout
