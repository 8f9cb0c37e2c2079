"""Helpers for tests that compile a policy directory: a private copy of the shipped one to break or edit."""

from __future__ import annotations

import shutil
from pathlib import Path

import policies


def copy_policies(tmp_path: Path) -> Path:
    """A copy of the shipped policy directory (data only) under `tmp_path`, free to edit."""
    target = tmp_path / "policies"
    shutil.copytree(policies.directory(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target
