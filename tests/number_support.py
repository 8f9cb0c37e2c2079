"""JSON whose numbers are spelled as a client spells them, and read back spelling and all.

`json.dumps` writes a float in its shortest form (`2.5` for `2.50`) and `json.loads` forgets how a
number was written, so tests of number fidelity put the literals into the text themselves and read
answers with every number kept as its text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.conformance import COVERAGE_INFO

# Literals a float does not write back as they are (a precision, an exponent, a magnitude below
# 1e-4, 17 digits or more, an integer minus zero), and some it does.
LITERALS = (
    "2.50",
    "0.10",
    "1e2",
    "1E2",
    "0.000001",
    "1.5e-7",
    "3.0000000000000000001",
    "12345678901234567890.5",
    "-0",
    "-0.0",
    "2.5",
    "100",
)


def marker(index: int) -> str:
    return f"<number {index}>"


def with_literals(body: Any, literals: Mapping[str, str]) -> bytes:
    """`body` as JSON text, each string value that is a key of `literals` written as its literal."""
    text = json.dumps(body)
    for stand_in, literal in literals.items():
        quoted = json.dumps(stand_in)
        assert quoted in text, stand_in
        text = text.replace(quoted, literal)
    return text.encode()


def numbered_extensions(literals: tuple[str, ...] = LITERALS) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Extensions with one `valueDecimal` per literal (markers in their place), and the literals by
    marker for `with_literals`."""
    extensions = [
        {"url": f"http://example.org/fhir/StructureDefinition/n{i}", "valueDecimal": marker(i)}
        for i in range(len(literals))
    ]
    return extensions, {marker(i): literal for i, literal in enumerate(literals)}


def as_written(text: bytes | str) -> Any:
    """`text` decoded with every number kept as ("number", the text it was written as)."""
    return json.loads(text, parse_float=_number, parse_int=_number)


def _number(text: str) -> tuple[str, str]:
    return ("number", text)


def without_coverage_information(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource less its coverage-information repetitions (and `extension` if nothing is left)."""
    kept = [e for e in resource.get("extension", []) if e.get("url") != COVERAGE_INFO]
    rest = {k: v for k, v in resource.items() if k != "extension"}
    return {**rest, "extension": kept} if kept else rest


def updated(answer: bytes | str, reference: str) -> dict[str, Any]:
    """The one resource an `update` system action of the answer (read `as_written`) carries for
    `reference` (`Type/id`)."""
    actions = as_written(answer).get("systemActions", [])
    resources: list[dict[str, Any]] = [a["resource"] for a in actions]
    [resource] = [r for r in resources if f"{r['resourceType']}/{r['id']}" == reference]
    return resource
