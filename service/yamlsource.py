"""YAML files with line numbers, and JSON Schema checks that report them.

Policy authors edit YAML by hand; an error must say `geha.yaml:42: ...`, not just what is wrong.
`load` returns the parsed data with a locator that maps a path inside it (`("criteria", 3,
"test")`) to the line where that element starts.

Parsing is most of start-up, so a file is parsed once, by libyaml's C parser when PyYAML has it
(its nodes carry line marks too); the pure-Python parser is used without libyaml, and to word the
message of a file that does not parse, so an author sees the same message either way. A key given
twice in one mapping is refused, never silently overridden by the later one (an operator who
uncomments `cors_origins: [...]` above a `cors_origins: []` must not get the empty one). jsonschema
is imported only when a file is checked, and PyYAML only when one is parsed: a worker whose catalog
comes from the cache loads neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import policies

if TYPE_CHECKING:
    import yaml
    from jsonschema import Draft202012Validator

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
    if node.id == "mapping":  # yaml.MappingNode (its class attribute), whichever parser made it
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif node.id == "sequence":
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def _refuse_repeated_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> None:
    """A ConstructorError at the second of two keys the document's reader takes for one (`1` and
    `true` too, as Python's dict would); merge keys (`<<`) and keys that are not scalars aside."""
    import yaml

    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if key in first:
            twice = f"'{key_node.value}' is given twice (first on line {first[key]})"
            raise yaml.constructor.ConstructorError(None, None, twice, key_node.start_mark)
        first[key] = key_node.start_mark.line + 1


@cache
def strict_loader(fast: bool = True) -> type[yaml.SafeLoader]:
    """PyYAML's safe loader (libyaml's parser when `fast` and PyYAML has it) refusing a key given
    twice in one mapping, at the line of its second appearance."""
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader

    class Strict(base):  # type: ignore[valid-type, misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            checked: set[int] = self.__dict__.setdefault("checked_mappings", set())
            if id(node) not in checked:  # PyYAML merges `<<` into the node itself: look before, once
                checked.add(id(node))
                _refuse_repeated_keys(self, node)
            return super().construct_mapping(node, deep)  # type: ignore[no-any-return]

    return Strict


def _parse(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree of one YAML document, from a single parse."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _syntax_error(path: Path, text: str, fast_error: yaml.YAMLError) -> SourceError:
    """The `file:line:` message of a file that does not parse, worded by the pure-Python parser."""
    import yaml

    error = fast_error
    try:
        _parse(text, strict_loader(fast=False))
    except yaml.YAMLError as exc:
        error = exc
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    return SourceError(f"{path.name}:{line}: not valid YAML: {getattr(error, 'problem', error)}")


def load(path: Path, loader_class: type[yaml.SafeLoader] | None = None) -> Located:
    """Parse a YAML file, recording the line of every element (libyaml's parser unless told)."""
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data, node = _parse(text, loader_class or strict_loader())
    except yaml.YAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return Located(path.name, data, lines)


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # imported on first use: a cached catalog never needs it

    schema = json.loads((policies.directory() / "schema" / schema_name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check_schema(located: Located, schema_name: str) -> None:
    """Raise SourceError for the first schema violation, naming file, line and element; for missing
    keys, every key the element misses at once (an author starting a file learns them in one run)."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema_name).iter_errors(located.data))
    if error is not None:
        where: Path_ = tuple(error.absolute_path)
        element = ".".join(str(p) for p in where) or "(top level)"
        message = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [repr(k) for k in error.validator_value if k not in error.instance]
            message = f"{', '.join(missing)} are required properties" if len(missing) > 1 else message
        raise SourceError(f"{located.at(where)}: {element}: {message}")
