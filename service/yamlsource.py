"""YAML files with line numbers, and JSON Schema checks that report them.

Policy authors edit YAML by hand; an error must say `geha.yaml:42: ...`, not just what is wrong.
`load` returns the parsed data with a locator that maps a path inside it (`("criteria", 3,
"test")`) to the line where that element starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

import policies

Path_ = tuple[str | int, ...]


class SourceError(ValueError):
    """A data file is invalid; the message starts with `file:line:`."""


@dataclass(frozen=True)
class Located:
    """Parsed data plus where each element starts in the file."""

    name: str
    data: Any
    lines: dict[Path_, int]

    def line(self, path: Path_) -> int:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def at(self, path: Path_) -> str:
        """`file:line` of an element, for error messages."""
        return f"{self.name}:{self.line(path)}"


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def load(path: Path) -> Located:
    """Parse a YAML file, recording the line of every element."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise SourceError(f"{path.name}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return Located(path.name, data, lines)


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    schema = json.loads((policies.directory() / "schema" / schema_name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_schema(located: Located, schema_name: str) -> None:
    """Raise SourceError for the first schema violation, naming file, line and element."""
    error = best_match(_validator(schema_name).iter_errors(located.data))
    if error is not None:
        where: Path_ = tuple(error.absolute_path)
        element = ".".join(str(p) for p in where) or "(top level)"
        raise SourceError(f"{located.at(where)}: {element}: {error.message}")
