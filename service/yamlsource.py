"""YAML files with line numbers, and JSON Schema checks that report them.

Policy authors edit YAML by hand; an error must say `geha.yaml:42: ...`, not just what is wrong.
`load` returns the parsed data with a locator that maps a path inside it (`("criteria", 3,
"test")`) to the line where that element starts. Whatever is wrong with a file (it cannot be read,
a byte is not UTF-8, it does not parse, YAML cannot read a value of it, such as the unquoted date
`2019-02-30`, it breaks its schema) is a SourceError with that location, the one error `policies
check` and start-up report in a line: never a traceback.

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
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import policies

if TYPE_CHECKING:
    import yaml
    from jsonschema import Draft202012Validator
    from referencing import Registry

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

    def on_line(self, line: int) -> Path_:
        """The innermost element that starts on `line` (else the last one before it)."""
        before = [(at, len(path), path) for path, at in self.lines.items() if at <= line]
        return max(before, key=lambda found: found[:2])[2] if before else ()


def element(path: Path_) -> str:
    """An element as messages name it: `criteria.0.test`, or `(top level)`."""
    return ".".join(str(p) for p in path) or "(top level)"


def _no_element(text: str, line: int) -> str:
    return "(text)"


def read_bytes(path: Path, name: str | None = None) -> bytes:
    """The bytes of a file of the policy folder; a SourceError naming it (`name`, default its own)
    if it cannot be read (missing, a folder, a dangling link, no permission)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{name or path.name}: cannot be read: {exc.strerror or exc}") from None


def read_text(
    path: Path, name: str | None = None, element_on: Callable[[str, int], str] = _no_element
) -> str:
    """The text of a UTF-8 file (`read_bytes`); a SourceError naming the line and the element
    (`element_on(text, line)`) of a byte that is not UTF-8, as a Windows editor saving Latin-1 writes it."""
    name = name or path.name
    raw = read_bytes(path, name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        where = element_on(raw.decode("utf-8", errors="replace"), line)
        raise SourceError(
            f"{name}:{line}: {where}: byte 0x{raw[exc.start]:02x} is not UTF-8 (save the file as UTF-8)"
        ) from None


def _yaml_element_on(text: str, line: int) -> str:
    """The element of a YAML text that starts on `line`, for a message (`(file)` if it does not parse).
    Read from the node tree alone: no value is constructed (one may be what the message is about)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return "(file)"
    return element(Located("", None, _lines(node)).on_line(line))


def _lines(node: yaml.Node | None) -> dict[Path_, int]:
    """The line of every element of a document's node tree (none for an empty document)."""
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return lines


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


def _unreadable(node: yaml.Node, exc: ValueError) -> yaml.YAMLError:
    """The ConstructorError, at `node`, for a scalar YAML's own reading refuses with a bare ValueError
    (an unquoted date that is no date: `2019-02-30`, `2019-13-01`)."""
    import yaml

    what = "is not a date" if node.tag == "tag:yaml.org,2002:timestamp" else "cannot be read"
    error = yaml.constructor.ConstructorError(None, None, f"'{node.value}' {what}: {exc}", node.start_mark)
    error.unreadable_value = True  # type: ignore[attr-defined]
    return error


@cache
def strict_loader(fast: bool = True) -> type[yaml.SafeLoader]:
    """PyYAML's safe loader (libyaml's parser when `fast` and PyYAML has it) refusing a key given
    twice in one mapping, at the line of its second appearance, and a value its reading refuses
    (`_unreadable`) at that value's line."""
    import yaml

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader

    class Strict(base):  # type: ignore[valid-type, misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            checked: set[int] = self.__dict__.setdefault("checked_mappings", set())
            if id(node) not in checked:  # PyYAML merges `<<` into the node itself: look before, once
                checked.add(id(node))
                _refuse_repeated_keys(self, node)
            return super().construct_mapping(node, deep)  # type: ignore[no-any-return]

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except ValueError as exc:  # the innermost node: its parents see a YAMLError
                raise _unreadable(node, exc) from None

    return Strict


def _parse(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree of one YAML document, from a single parse."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _syntax_error(name: str, text: str, fast_error: yaml.YAMLError) -> SourceError:
    """The `file:line:` message of a file that does not parse, worded by the pure-Python parser."""
    import yaml

    error = fast_error
    try:
        _parse(text, strict_loader(fast=False))
    except yaml.YAMLError as exc:
        error = exc
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    return SourceError(f"{name}:{line}: not valid YAML: {getattr(error, 'problem', error)}")


def load(path: Path, loader_class: type[yaml.SafeLoader] | None = None, name: str | None = None) -> Located:
    """Parse a YAML file, recording the line of every element (libyaml's parser unless told); `name`
    is how messages name the file (default: its name; a file in a subfolder of the policies folder is
    named from there, `valuesets/pain-cause.yaml`)."""
    import yaml

    name = name or path.name
    text = read_text(path, name, element_on=_yaml_element_on)
    try:
        return _located(name, text, loader_class or strict_loader())
    except yaml.YAMLError as exc:
        if getattr(exc, "unreadable_value", False):
            line = exc.problem_mark.line + 1  # type: ignore[attr-defined]
            where = _yaml_element_on(text, line)
            raise SourceError(f"{name}:{line}: {where}: {exc.problem}") from None  # type: ignore[attr-defined]
        raise _syntax_error(name, text, exc) from None


def _located(name: str, text: str, loader_class: type[yaml.SafeLoader]) -> Located:
    data, node = _parse(text, loader_class)
    return Located(name, data, _lines(node))


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # imported on first use: a cached catalog never needs it

    schema = json.loads((policies.directory() / "schema" / schema_name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def _registry() -> Registry:
    """Every shipped schema under its `$id`, so that one schema refers to another's definitions
    instead of copying them (the order codes take the value sets' CPT and HCPCS patterns)."""
    from referencing import Registry, Resource

    schemas = [
        json.loads(p.read_text(encoding="utf-8")) for p in (policies.directory() / "schema").glob("*.json")
    ]
    return Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas if "$id" in s)


def check_schema(located: Located, schema_name: str) -> None:
    """Raise SourceError for the first schema violation, naming file, line and element; for missing
    keys, every key the element misses at once (an author starting a file learns them in one run)."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema_name).iter_errors(located.data))
    if error is not None:
        where: Path_ = tuple(error.absolute_path)
        message = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [repr(k) for k in error.validator_value if k not in error.instance]
            message = f"{', '.join(missing)} are required properties" if len(missing) > 1 else message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            where = (*where, *_unexpected_keys(error.instance, error.schema)[:1])  # at the key's own line
        raise SourceError(f"{located.at(where)}: {element(where)}: {message}")


def _unexpected_keys(instance: dict[Any, Any], schema: dict[str, Any]) -> list[Any]:
    """The keys of `instance` that an `additionalProperties: false` of `schema` refuses."""
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    known = schema.get("properties", {})
    return [k for k in instance if k not in known and not any(p.search(str(k)) for p in patterns)]
