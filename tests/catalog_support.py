"""Helpers for tests that compile a policy directory: a private copy of the shipped one to break or edit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
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
CMM210_WORDS = ("Version 2.0.2019", "August 1, 2019")  # its version and effective date, as it words them


def republish_cmm210(
    root: Path, policy_id: str, effective: date, supersedes: str | None = None, number: int = 3
) -> Path:
    """CMM-210 as its publisher would reissue it: `cmm210.yaml` copied to `<policy_id>.yaml` under a
    new id, version `number` and `effective` date (and `supersedes`), citing a copy of its source
    document whose version and date lines say so. Every criterion and its quote is the shipped one,
    word for word: only the version and the dates change."""
    version, day = f"Version {number}.0.{effective.year}", f"{effective:%B} {effective.day}, {effective.year}"
    document = (root / "sources" / CMM210_SOURCE).read_text(encoding="utf-8")
    source = f"{policy_id}.txt"
    reworded = document.replace(CMM210_WORDS[0], version).replace(CMM210_WORDS[1], day)
    (root / "sources" / source).write_text(reworded, encoding="utf-8")
    raw = yaml.safe_load((root / "cmm210.yaml").read_text(encoding="utf-8"))
    raw.update(
        id=policy_id,
        version=f"{version}, effective {day}",
        source=f"seeds/{source}",
        effective=effective.isoformat(),
        dates_as_stated=f"Effective {day}",
    )
    if supersedes is not None:
        raw["supersedes"] = supersedes
    path = root / f"{policy_id}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def name_policy(root: Path, payer_key: str, policy_id: str, key: str = "policy") -> None:
    """Point the payer `payer_key` of `root/payers.yaml` at `policy_id` (`key`: its `policy` or
    `medicare_policy`)."""
    edit_yaml(
        root / "payers.yaml",
        lambda raw: next(p for p in raw["payers"] if p["key"] == payer_key).update({key: policy_id}),
    )


def replace_once(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in the file at `path` with `new`; the line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def line_of(path: Path, words: str) -> int:
    """The line of the file at `path` where `words` first occur."""
    text = path.read_text(encoding="utf-8")
    assert words in text, f"{words!r} is not in {path.name}"
    return text[: text.index(words)].count("\n") + 1
