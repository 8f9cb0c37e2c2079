"""Every configuration key the service reads is documented, with the default the code gives it:
docs/configuration.md (and, for the cache, docs/api.md's "Caching between calls"), which the README
points to."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from service.settings import Settings, TrustedClient

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "configuration.md").read_text("utf-8") + (ROOT / "docs" / "api.md").read_text("utf-8")


def keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted key of every setting under `cls`, sections walked (a client's fields apart)."""
    found = []
    for f in dataclasses.fields(cls):
        kind = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            found += keys(kind, f"{prefix}{f.name}.")
        else:
            found.append(f"{prefix}{f.name}")
    return found


def test_every_setting_is_documented_by_its_dotted_key() -> None:
    listed = keys(Settings)
    assert "fhir.share_wait_seconds" in listed and "sandbox.signing_key_file" in listed
    assert [k for k in listed if f"`{k}`" not in DOCS] == []


def test_every_field_of_a_trusted_client_is_documented() -> None:
    clients = DOCS.split("| `auth.trusted_clients` |", 1)[1].split("\n", 1)[0]
    assert [f.name for f in dataclasses.fields(TrustedClient) if f"`{f.name}`" not in clients] == []


def test_the_readme_points_to_the_full_list() -> None:
    assert "[docs/configuration.md](docs/configuration.md)" in (ROOT / "README.md").read_text("utf-8")


def documented_default(key: str) -> str:
    """The 'type, default' cell of `key`'s row: its last backticked value, else its last word."""
    rows = [line for line in DOCS.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"{key}: {len(rows)} table rows"
    cell = rows[0].split(" | ")[1]
    quoted = re.findall(r"`([^`]*)`", cell.split(" (")[0])
    return quoted[-1] if quoted else cell.rsplit(" ", 1)[-1]


def default_of(key: str) -> Any:
    value: Any = Settings()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def test_every_settings_documented_default_is_the_codes() -> None:
    wrong = {}
    for key in keys(Settings):
        value, written = default_of(key), documented_default(key)
        if value is None or value == ():
            agrees = written in ("none", "empty", "[]")
        elif isinstance(value, bool):
            agrees = written == str(value).lower()
        elif isinstance(value, int | float):
            agrees = re.fullmatch(r"-?[0-9.]+", written) is not None and float(written) == value
        else:
            agrees = written == str(value)
        if not agrees:
            wrong[key] = (written, value)
    assert wrong == {}
