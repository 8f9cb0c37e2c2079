"""Golden files: a hook answer rendered as the Markdown a reviewer reads in a diff.

The cards as a clinician sees them (indicator, source, summary, detail, links, suggestions, override
reasons) and each order's coverage information, without what changes from run to run (card uuids).
`IDDS_UPDATE_GOLDEN=1` rewrites the files; otherwise a difference fails the test, so every change
to what a clinician reads shows in the diff and is reviewed like code.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_VARIABLE = "IDDS_UPDATE_GOLDEN"
COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
SHOWN_SUBS = ("covered", "pa-needed", "doc-needed", "info-needed", "satisfied-pa-id", "reason")


def _card(number: int, card: dict[str, Any]) -> list[str]:
    source = card["source"]
    lines = [
        f"## {number}. {card['indicator']} · {source['label']} · {source['topic']['code']}",
        "",
        f"**{card['summary']}**",
    ]
    if card.get("detail"):
        lines += ["", card["detail"]]
    for link in card.get("links", []):
        lines += ["", f"Link: [{link['label']}]({link['url']}) ({link['type']})"]
    for suggestion in card.get("suggestions", []):
        actions = ", ".join(
            f"{a['type']} {a.get('resource', {}).get('resourceType', a.get('resourceId', ''))}"
            for a in suggestion.get("actions", [])
        )
        lines += ["", f"Suggestion: {suggestion['label']} ({actions})"]
    if card.get("overrideReasons"):
        reasons = "; ".join(r["display"] for r in card["overrideReasons"])
        lines += ["", f"Override reasons: {reasons}"]
    orders = [r["reference"] for r in card.get("extension", {}).get("davinci-crd.associated-resource", [])]
    if orders:
        lines += ["", f"About: {', '.join(orders)}"]
    return lines


def _sub_value(sub: dict[str, Any]) -> str:
    for key, value in sub.items():
        if key.startswith("value"):
            if isinstance(value, dict):
                return str(value.get("text") or value.get("reference") or value.get("code") or value)
            return str(value)
    return ""


def _coverage_rows(response: dict[str, Any]) -> list[str]:
    rows = []
    for action in response.get("systemActions", []):
        resource = action.get("resource", {})
        target = f"{resource.get('resourceType')}/{resource.get('id')}"
        for extension in resource.get("extension", []):
            if extension.get("url") != COVERAGE_INFO:
                continue
            subs = {s["url"]: _sub_value(s) for s in extension.get("extension", [])}
            shown = "; ".join(f"{name}: {subs[name]}" for name in SHOWN_SUBS if name in subs)
            rows.append(f"- {target} · {subs.get('coverage', '')} · {shown}")
    return rows


def markdown(title: str, response: dict[str, Any]) -> str:
    lines = [f"# {title}", ""]
    for number, card in enumerate(response.get("cards", []), 1):
        lines += [*_card(number, card), ""]
    if not response.get("cards"):
        lines += ["(no cards)", ""]
    rows = _coverage_rows(response)
    if rows:
        lines += ["## Coverage information", "", *rows, ""]
    return "\n".join(lines)


def matches_golden(name: str, text: str) -> str | None:
    """None when `text` is the golden file `name`.md (or was just written); else a unified diff."""
    path = GOLDEN_DIR / f"{name}.md"
    if os.environ.get(UPDATE_VARIABLE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return None
    if not path.is_file():
        return f"{path} is missing: run the tests with {UPDATE_VARIABLE}=1 and review the new file"
    golden = path.read_text(encoding="utf-8")
    if golden == text:
        return None
    diff = difflib.unified_diff(golden.splitlines(), text.splitlines(), str(path), "rendered", lineterm="")
    return "\n".join(diff) + f"\n(if the change is intended: {UPDATE_VARIABLE}=1, then review the diff)"
