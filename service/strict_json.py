"""JSON as RFC 8259 defines it, in and out: no NaN or Infinity, no duplicate keys, bounded shapes.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity`, turns `1e999` into infinity, keeps the
last of two equal keys silently, and writes non-finite floats back out as invalid JSON. A body that
uses any of these is ambiguous (two `patientId`s: which one did the EHR mean?), so `loads_request`
refuses it and names the place, as it does for values nested too deeply or strings too long.
(FHIR servers' answers are read by orjson, which refuses non-finite numbers too; `dumps` never
writes one.)

A pump call's body carries the prefetched chart (hundreds of kilobytes), so `loads_request` first
reads it the fast way (the C decoder, no per-object hook) and proves it strict with checks that run
over the raw bytes or over containers only; any doubt sends it the careful way, which alone words
the refusals. Both ways accept the same documents and decode them alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

PathPart = str | int
MAX_KEY_IN_PATH = 80  # characters of an odd key shown in an error's path
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # from an escape UTF-8 cannot encode


@dataclass
class JsonRejected(ValueError):
    """The text is JSON Python could read, but not JSON this service accepts; `path` says where."""

    path: str
    message: str


@dataclass(frozen=True)
class JsonLimits:
    """Bounds on any decoded document: nesting of objects and arrays, and length of one string."""

    max_depth: int
    max_string: int


class _NonFinite:
    """Stands where the text held NaN, ±Infinity or a number too large for a float."""

    def __init__(self, text: str) -> None:
        self.text = text


class _WithDuplicateKey(dict[str, Any]):
    """An object whose text named `duplicate` twice."""

    duplicate: str


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    duplicate = None
    for key, value in pairs:
        if key in obj and duplicate is None:
            duplicate = key
        obj[key] = value
    if duplicate is None:
        return obj
    marked = _WithDuplicateKey(obj)
    marked.duplicate = duplicate
    return marked


def _finite_or_marker(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def render_path(parts: Sequence[PathPart]) -> str:
    """`context.draftOrders.entry[0].resource`, or `$` for the document itself."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if len(part) <= MAX_KEY_IN_PATH else part[:MAX_KEY_IN_PATH] + "…"
            text += f".{key}" if text else key
    return text or "$"


def _children(value: dict[str, Any] | list[Any]) -> Iterator[tuple[PathPart, Any]]:
    return iter(value.items()) if isinstance(value, dict) else enumerate(value)


_PLAIN = (int, float, bool, type(None))  # nothing to check (non-finite floats arrive as _NonFinite)


def _first_problem(document: Any, limits: JsonLimits) -> tuple[str, str] | None:
    """The path and wording of the first value out of bounds or not strict JSON, or None.

    Depth-first without recursion, holding one iterator and one path part per level: memory stays
    proportional to the nesting, however many values the document holds.
    """
    path: list[PathPart] = []
    problem = _problem(document, 0, limits)
    if problem is not None:
        return "$", f"$ {problem}"
    stack = [_children(document)] if isinstance(document, dict | list) else []
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            if path:
                path.pop()
            continue
        key, value = step
        if type(value) in _PLAIN:
            continue
        problem = _problem(value, len(path) + 1, limits)
        if problem is not None:
            where = render_path([*path, key])
            return where, f"{where} {problem}"
        if isinstance(value, dict | list) and value:
            path.append(key)
            stack.append(_children(value))
    return None


def _problem(value: Any, depth: int, limits: JsonLimits) -> str | None:
    """What is wrong with one value (its contents aside), as the end of a sentence naming it."""
    if isinstance(value, str):
        if len(value) > limits.max_string:
            return f"is longer than {limits.max_string} characters"
        if LONE_SURROGATE.search(value):
            return "holds an unpaired UTF-16 surrogate, which is not text"
        return None
    if isinstance(value, _NonFinite):
        return f"is {value.text}, which is not a JSON number (finite numbers only)"
    if isinstance(value, dict | list) and depth >= limits.max_depth:
        return f"is nested more than {limits.max_depth} levels deep"
    if isinstance(value, _WithDuplicateKey):
        return f"names the key '{value.duplicate[:MAX_KEY_IN_PATH]}' more than once"
    if isinstance(value, dict):
        for key in value:
            if len(key) > limits.max_string or LONE_SURROGATE.search(key):
                return "has a key that is too long or not text"
    return None


# What the fast way cannot vouch for, in the raw text (a match only means "ask the careful way"): a
# `\uD800`-`\uDFFF` escape or such a code point written out (json decodes bytes with "surrogatepass"),
# maybe an unpaired surrogate; an escaped quote just before a colon (a key ending in a backslash, which
# the key count below would miss). One pattern each: a literal start keeps every search quick.
_DOUBTFUL = (
    re.compile(rb"\\u[dD][89a-fA-F]"),
    re.compile(rb"\xed[\xa0-\xbf]"),
    re.compile(rb'\\"[ \t\n\r]*:'),
)
# Outside strings a colon follows a key (and only a key); inside, quotes are escaped. Keys are counted
# as `":` (quick) plus those with white space before the colon.
_SPACED_KEY_END = re.compile(rb'"[ \t\n\r]+:')


class _Doubt(Exception):
    """The fast reading cannot vouch for the document: read it the careful way."""


def _constant(text: str) -> float:
    raise _Doubt(text)


def _keys_and_bounds_hold(document: Any, limits: JsonLimits, check_strings: bool) -> int | None:
    """How many keys the document's objects hold, or None when it is no container, one is nested too deeply, a
    number overflowed to infinity, or (with `check_strings`) a string or key is too long. Walks
    containers, never recurses."""
    keys = 0
    longest = limits.max_string
    deepest = limits.max_depth
    if type(document) is not dict and type(document) is not list:
        return None  # a bare value is no hook call: the careful way words the refusal
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        container, depth = stack.pop()
        if type(container) is dict:
            keys += len(container)
            if check_strings and any(len(key) > longest for key in container):
                return None
            values = container.values()
        else:
            values = container
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                if depth >= deepest:
                    return None
                if value:
                    stack.append((value, depth + 1))
            elif kind is float:
                if value - value != 0.0:  # inf - inf is nan
                    return None
            elif check_strings and kind is str and len(value) > longest:
                return None
    return keys


def _fast(raw: bytes | str, limits: JsonLimits) -> Any:
    """The document when the fast reading can prove it strict and within bounds; _Doubt otherwise."""
    text = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if limits.max_depth < 1 or any(pattern.search(text) for pattern in _DOUBTFUL):
        raise _Doubt
    try:
        document = json.loads(raw, parse_constant=_constant)
    except (ValueError, RecursionError):
        raise _Doubt from None
    keys = _keys_and_bounds_hold(document, limits, check_strings=len(text) > limits.max_string)
    written = text.count(b'":') + len(_SPACED_KEY_END.findall(text))
    if keys is None or keys != written:  # fewer keys decoded than written: one was repeated
        raise _Doubt
    return document


def loads_request(raw: bytes | str, limits: JsonLimits) -> Any:
    """Decode a request body strictly; JsonRejected names the first offending place.

    ValueError (not JSON at all) and RecursionError (nested past what the parser can hold) pass
    through for the caller to word.
    """
    text = _utf8_text(raw)
    try:
        return _fast(text, limits)
    except _Doubt:
        return loads_request_carefully(text, limits)


def _utf8_text(raw: bytes | str) -> str:
    """The body as text: UTF-8 only (RFC 8259 §8.1; Python's reader would also take UTF-16 and
    UTF-32, whose bytes the fast reading's checks do not describe), without a byte order mark."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected("$", f"the request body is not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise JsonRejected("$", "the request body starts with a byte order mark, which JSON does not allow")
    return text


def loads_request_carefully(raw: bytes | str, limits: JsonLimits) -> Any:
    """`loads_request` without the fast reading: every object through a hook, every value checked."""
    document = json.loads(
        _utf8_text(raw), object_pairs_hook=_object, parse_constant=_NonFinite, parse_float=_finite_or_marker
    )
    found = _first_problem(document, limits)
    if found is not None:
        raise JsonRejected(*found)
    return document


def dumps(value: Any) -> str:
    """Compact JSON (CRD §found-40); ValueError rather than ever writing NaN or Infinity."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
