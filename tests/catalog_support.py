"""Helpers for tests that compile a policy directory: a private copy of the shipped one to break or edit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import policies


def copy_policies(tmp_path: Path) -> Path:
    """A copy of the shipped policy directory (data only) under `tmp_path`, free to edit."""
    target = tmp_path / "policies"
    shutil.copytree(policies.directory(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def edit_yaml(path: Path, edit: Callable[[Any], object]) -> None:
    """Rewrite the YAML file at `path` with `edit` applied to its parsed data."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


CMM210_SOURCE = "004_5570c996f0b09eba.txt"  # the CMM-210 document cmm210.yaml cites
