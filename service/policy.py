"""Policy files (`policies/*.yaml`) compiled once at start-up into immutable Policy values.

A policy is data: its identity and citation, the indications and request kinds it addresses,
and a tree of criteria whose leaves name a test type from `service.engine.evaluators`. The
compiler checks every key, every test parameter and every value-set reference, so a broken
policy stops start-up with the file and the reason instead of misjudging a patient later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.codes import ASSESSMENT_CODES
from service.engine.evaluators import COMPARATORS, ROUTE_WORDS, TEST_TYPES
from service.terminology import Terminology

INDICATIONS = ("non-malignant-pain", "cancer-pain", "spasticity", "dystonia")
REQUEST_KINDS = ("trial", "permanent-implant", "catheter", "replacement", "refill-analysis", "removal")
ROLES = ("required", "exclusion", "documentation")
_POLICY_KEYS = {"id", "payer", "title", "version", "document", "source", "url", "scope", "criteria"}
_SCOPE_KEYS = {"indications", "request_kinds", "not_addressed"}
_CRITERION_KEYS = {
    "id",
    "label",
    "section",
    "text",
    "role",
    "kinds",
    "test",
    "all",
    "any",
    "reading",
    "how_to_document",
}


class PolicyError(ValueError):
    """A policy file is invalid; the message names the file, the criterion and the reason."""


@dataclass(frozen=True)
class CriterionSpec:
    id: str
    label: str
    text: str
    section: str
    role: str
    kinds: frozenset[str] | None
    test_type: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    logic: str | None = None
    children: tuple[CriterionSpec, ...] = ()
    reading: str | None = None
    how_to_document: str | None = None


@dataclass(frozen=True)
class Policy:
    id: str
    payer: str
    title: str
    version: str
    document: str
    source: str
    url: str | None
    indications: frozenset[str]
    request_kinds: frozenset[str]
    not_addressed: Mapping[str, str]
    criteria: tuple[CriterionSpec, ...]

    def citation(self, section: str) -> str:
        return f"{self.payer}, {self.title} ({self.version}), {section}"


def _text(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}: '{key}' must be a non-empty string")
    return " ".join(value.split())


def _names(raw: Any, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{where}: expected a non-empty list")
    unknown = [x for x in raw if x not in allowed]
    if unknown:
        raise PolicyError(f"{where}: unknown value(s) {unknown}; allowed: {', '.join(allowed)}")
    return frozenset(raw)


def _check_param(kind: str, value: Any, where: str, terminology: Terminology) -> None:
    """Check one test parameter against its declared kind (see `Param` in the evaluators)."""

    def fail(expected: str) -> PolicyError:
        return PolicyError(f"{where}: expected {expected}, got {value!r}")

    if kind == "valuesets":
        if not isinstance(value, list) or not value:
            raise fail("a non-empty list of value set ids")
        for ref in value:
            if ref not in terminology:
                raise PolicyError(f"{where}: unknown value set '{ref}'")
    elif kind == "valueset":
        if value not in terminology:
            raise PolicyError(f"{where}: unknown value set '{value}'")
    elif kind in ("comparator", "since-comparator"):
        allowed = (">", ">=") if kind == "since-comparator" else tuple(COMPARATORS)
        if value not in allowed:
            raise PolicyError(f"{where}: comparator must be one of {', '.join(allowed)}")
    elif kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise fail("a positive whole number")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise fail("a number")
    elif kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise fail("text")
    elif kind == "flag":
        if not isinstance(value, bool):
            raise fail("true or false")
    elif kind == "values":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str | bool | int | float) for v in value)
        ):
            raise fail("a non-empty list of codes, numbers or booleans")
    elif kind == "routes":
        if not isinstance(value, list) or not value or any(r not in ROUTE_WORDS for r in value):
            raise fail(f"a list of routes from {', '.join(ROUTE_WORDS)}")
    elif kind == "assessment-code":
        if value not in ASSESSMENT_CODES:
            raise PolicyError(f"{where}: '{value}' is not an assessment code of clinical-data-contract.md §5")
    elif kind == "code-map":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in value.items()
        ):
            raise fail("a mapping of code to a list of codes")
    else:  # pragma: no cover - a programming error in the test-type registry
        raise PolicyError(f"{where}: unknown parameter kind '{kind}'")


def _check_test(test: Any, where: str, terminology: Terminology) -> tuple[str, dict[str, Any]]:
    if not isinstance(test, Mapping) or "type" not in test:
        raise PolicyError(f"{where}.test: needs a 'type'")
    test_type = TEST_TYPES.get(test["type"])
    if test_type is None:
        raise PolicyError(
            f"{where}.test: unknown type '{test['type']}'; known: {', '.join(sorted(TEST_TYPES))}"
        )
    params = {k: v for k, v in test.items() if k != "type"}
    missing = sorted(name for name, spec in test_type.params.items() if spec.required and name not in params)
    unknown = sorted(set(params) - set(test_type.params))
    if missing:
        raise PolicyError(f"{where}.test: '{test['type']}' needs {', '.join(missing)}")
    if unknown:
        raise PolicyError(f"{where}.test: '{test['type']}' does not take {', '.join(unknown)}")
    for name, value in params.items():
        _check_param(test_type.params[name].kind, value, f"{where}.test.{name}", terminology)
    return test["type"], params


def _criterion(
    raw: Any, where: str, terminology: Terminology, seen: set[str], inherited_role: str | None = None
) -> CriterionSpec:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: a criterion must be a mapping")
    unknown = sorted(set(raw) - _CRITERION_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    cid = _text(raw, "id", where)
    assert cid is not None
    where = f"{where} ({cid})"
    if cid in seen:
        raise PolicyError(f"{where}: criterion id used twice")
    seen.add(cid)
    role = raw.get("role", inherited_role)
    if role not in ROLES:
        raise PolicyError(f"{where}: role must be one of {', '.join(ROLES)}")
    shapes = [k for k in ("test", "all", "any") if k in raw]
    if len(shapes) != 1:
        raise PolicyError(f"{where}: give exactly one of 'test', 'all', 'any'")
    if "kinds" in raw and inherited_role is not None:
        raise PolicyError(f"{where}: 'kinds' belongs on the top-level criterion, not inside all/any")
    kinds = _names(raw["kinds"], REQUEST_KINDS, f"{where}.kinds") if "kinds" in raw else None
    common = {
        "id": cid,
        "label": _text(raw, "label", where, required=False) or cid,
        "text": _text(raw, "text", where),
        "section": _text(raw, "section", where),
        "role": role,
        "kinds": kinds,
        "reading": _text(raw, "reading", where, required=False),
        "how_to_document": _text(raw, "how_to_document", where, required=False),
    }
    if "test" in raw:
        test_type, params = _check_test(raw["test"], where, terminology)
        return CriterionSpec(**common, test_type=test_type, params=params)  # type: ignore[arg-type]
    logic = shapes[0]
    children_raw = raw[logic]
    if not isinstance(children_raw, list) or len(children_raw) < 2:
        raise PolicyError(f"{where}.{logic}: needs at least two criteria")
    children = tuple(
        _criterion(c, f"{where}.{logic}[{i}]", terminology, seen, role) for i, c in enumerate(children_raw)
    )
    return CriterionSpec(**common, logic=logic, children=children)  # type: ignore[arg-type]


def compile_policy(raw: Any, where: str, terminology: Terminology) -> Policy:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: top level must be a mapping")
    unknown = sorted(set(raw) - _POLICY_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    scope = raw.get("scope")
    if not isinstance(scope, Mapping) or set(scope) - _SCOPE_KEYS:
        raise PolicyError(f"{where}.scope: needs indications and request_kinds (and optional not_addressed)")
    not_addressed = scope.get("not_addressed") or {}
    for key in not_addressed:
        if key not in INDICATIONS + REQUEST_KINDS:
            raise PolicyError(
                f"{where}.scope.not_addressed: '{key}' is neither an indication nor a request kind"
            )
    criteria_raw = raw.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise PolicyError(f"{where}: 'criteria' must be a non-empty list")
    seen: set[str] = set()
    criteria = tuple(
        _criterion(c, f"{where}: criteria[{i}]", terminology, seen) for i, c in enumerate(criteria_raw)
    )
    return Policy(
        id=_text(raw, "id", where),  # type: ignore[arg-type]
        payer=_text(raw, "payer", where),  # type: ignore[arg-type]
        title=_text(raw, "title", where),  # type: ignore[arg-type]
        version=_text(raw, "version", where),  # type: ignore[arg-type]
        document=_text(raw, "document", where),  # type: ignore[arg-type]
        source=_text(raw, "source", where),  # type: ignore[arg-type]
        url=_text(raw, "url", where, required=False),
        indications=_names(scope.get("indications"), INDICATIONS, f"{where}.scope.indications"),
        request_kinds=_names(scope.get("request_kinds"), REQUEST_KINDS, f"{where}.scope.request_kinds"),
        not_addressed={k: " ".join(str(v).split()) for k, v in not_addressed.items()},
        criteria=criteria,
    )


def load_policies(directory: Path, terminology: Terminology) -> dict[str, Policy]:
    """Compile every `*.yaml` policy in `directory` (value sets and the order-code table excluded)."""
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "order-codes.yaml":
            continue
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path.name}: not valid YAML: {exc}") from exc
        policy = compile_policy(raw, path.name, terminology)
        if policy.id in policies:
            raise PolicyError(f"{path.name}: policy id '{policy.id}' is already used")
        policies[policy.id] = policy
    return policies
