"""JSON as RFC 8259 defines it, in and out: no NaN or Infinity, no duplicate keys, bounded shapes.

Python's `json` accepts `NaN`, `Infinity` and `-Infinity`, turns `1e999` into infinity, keeps the
last of two equal keys silently, and writes non-finite floats back out as invalid JSON. A body that
uses any of these is ambiguous (two `patientId`s: which one did the EHR mean?), so `loads_request`
refuses it and names the place, as it does for values nested too deeply or strings too long.
(FHIR servers' answers are read by `loads_exact`, which refuses NaN, ±Infinity and a decimal beyond a
float too, but not a repeated key: it keeps the last of two equal keys, as `json` does. Finding one
costs what `loads_request`'s proof does for a body, the whole decoded answer written back by orjson
(or a hook on every object), on every FHIR answer of every call, for what FHIR JSON already forbids a
server to send; it is not paid, so such an answer is read with its last value: a repeated
`modifierExtension` whose last value is `[]` reads as none, and an order read from the server goes
back without the first. `dumps` never writes one, and writes with orjson whatever it can prove orjson
writes as `json` does.)

Numbers keep the text they were written as. The service sends the EHR's own orders back with its
coverage information added (CDS Hooks `update`), where CRD §resp-37 forbids changing any other
element and FHIR makes a decimal's precision significant (`2.50` is not `2.5`, `1e2` not `100.0`).
So every number with a fraction or an exponent (and an integer `-0`) is decoded as a `DecimalText`:
a float, so all arithmetic and comparison is unchanged, that also holds its text, which every
writer here puts back verbatim. Integers stay Python ints, exact however long.

A pump call's body carries the prefetched chart (hundreds of kilobytes), so `loads_request` first
reads it the fast way (`loads_exact`: `json` with no hook on objects) and proves it strict with
checks that run over bytes only (the raw text and the decoded document written back by orjson,
inside as many arrays as make orjson refuse a document nested too deeply), never visiting a Python
object; any doubt sends it the careful way (`json` with a hook on every object), which alone words
the refusals.
Both ways accept the same documents and decode them alike. (No one reading does it all: only `json`
hands each number's text to a hook, orjson has none; a hook on every object costs the reading half
as much again, a walk of the decoded document in Python about as much as the reading itself.)

Before both, a quicker reading (`_quick`) takes a body whose every number is written as the service's
writers write its plain value back, as a body written by orjson or by Python's `json` (the bench's) is:
orjson reads it (plain ints and floats, without a hook: 15 M instructions against `json`'s 26 M on
the Synthea-sized body), writes it back inside the depth-bounding arrays (`written_within`), and the two
texts, JSON's whitespace taken out, must be the same bytes, no number written as Python writes a float
otherwise (`_written_alike`, whose docstring gives the proof). Then no number needs its text kept: its
plain value is written back as its text by every writer here (orjson, `json`, `_TextKeepingEncoder`).
A number written otherwise (`2.50`, `1E2`, `-0`, `1e-7`, `0.00001`, an integer past 64 bits), a string
escaped otherwise, a repeated key or any refusal sends the body the fast way, then the careful way, as
before (at the cost of the quick reading's orjson read and write: about 22 M instructions on that body).
After a few bodies in a row it did not read, the quick reading is tried on one body in sixteen until it
reads one again (`QuickTries`: an EHR that writes one body otherwise writes them all so); which way
reads a body changes only what its reading costs.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

PathPart = str | int
MAX_SHOWN = 80  # characters of an odd key or number shown in an error
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


class DecimalText(float):
    """A JSON number as read: its value (a float) and the text it was written as (`text`).

    A number no float can hold (`1e999`) is a ValueError, as orjson refuses it: JSON has no infinity.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> DecimalText:
        number = super().__new__(cls, text)
        if not math.isfinite(number):
            raise ValueError(f"{text} is beyond what a JSON number may be here")
        number.text = text
        return number

    def __reduce__(self) -> tuple[type[DecimalText], tuple[str]]:
        return DecimalText, (self.text,)  # a copy keeps the text


# An integer written `-0` (which `json` reads as 0) keeps its text: every integer is read through
# `_int_or_negative_zero`. The hook costs about 1,300 instructions an integer, far less than the regular
# expression over the whole text that chose `int` for a text holding no `-0` token (`-0[\s,\]}]`: 2.5 M
# instructions on a 440 KB chart, whose dates hold `-0` seven hundred times, against ~25 integers).
# A document of integers alone reads no slower than one of decimals, each of which has its hook already.


def _int_or_negative_zero(text: str) -> int | DecimalText:
    return DecimalText(text) if text == "-0" else int(text)


def whole_number(value: Any) -> int | None:
    """`value` as a check wanting a JSON integer takes it: an int (never a bool), or the integer `-0`
    (a `DecimalText`, to be written back as it was) as 0; None for anything else. orjson writes an
    int subclass by its value, never asking `default`, so `-0` cannot be an int that keeps its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if type(value) is DecimalText and value.text == "-0":
        return 0
    return None


def _not_a_number(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# An escaped UTF-16 surrogate: `json` reads a lone one as it is, orjson refuses it.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def loads_exact(raw: bytes | str, non_finite: bool = False) -> Any:
    """JSON as this service reads what it may write back: numbers as `DecimalText` or int, as written.

    ValueError for what orjson (which read these before) refuses: bytes that are not UTF-8, a byte
    order mark, NaN and ±Infinity, a number beyond a float, an unpaired surrogate (checked by orjson
    itself, where the text escapes any surrogate at all: seldom). A repeated key is not refused: the
    last is kept (the module's docstring says why). With `non_finite` (a text this
    service wrote itself with `json`'s `allow_nan`), NaN and ±Infinity are floats and an unpaired
    surrogate is kept, as `json` reads them.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    document = json.loads(
        text,
        parse_float=DecimalText,
        parse_int=_int_or_negative_zero,
        parse_constant=float if non_finite else _not_a_number,
    )
    if not non_finite and _may_escape_surrogate(text):
        orjson.loads(text)
    return document


def _may_escape_surrogate(text: str) -> bool:
    """Whether `text` holds an escaped UTF-16 surrogate. A backslash is looked for first: a search
    for one character runs at memory speed, where one for `\\u` steps through the text (about 1 ms
    on a 440 KB body, whose JSON, written ASCII-only or not, seldom escapes anything)."""
    return "\\" in text and "\\u" in text and _ESCAPED_SURROGATE.search(text) is not None


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


class _TooManyDigits:
    """Stands where the text held an integer longer than Python reads (`sys.get_int_max_str_digits`)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _int_or_marker(
    read: Callable[[str], int | DecimalText],
) -> Callable[[str], int | DecimalText | _TooManyDigits]:
    def reader(text: str) -> int | DecimalText | _TooManyDigits:
        try:
            return read(text)
        except ValueError:  # the only one an integer's text can raise: too many digits
            return _TooManyDigits(text)

    return reader


def _finite_or_marker(text: str) -> DecimalText | _NonFinite:
    try:
        return DecimalText(text)
    except ValueError:
        return _NonFinite(text)


def render_path(parts: Sequence[PathPart]) -> str:
    """`context.draftOrders.entry[0].resource`, or `$` for the document itself."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if len(part) <= MAX_SHOWN else part[:MAX_SHOWN] + "…"
            text += f".{key}" if text else key
    return text or "$"


def _children(value: dict[str, Any] | list[Any]) -> Iterator[tuple[PathPart, Any]]:
    return iter(value.items()) if isinstance(value, dict) else enumerate(value)


_PLAIN = (int, DecimalText, float, bool, type(None))  # nothing to check (_NonFinite, _TooManyDigits)


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
        kind = type(value)
        if kind in _PLAIN:
            continue
        if (kind is list or kind is dict) and not value and len(path) + 1 < limits.max_depth:
            continue  # an empty array or object within the depth has nothing else to be wrong
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
        shown = value.text if len(value.text) <= MAX_SHOWN else value.text[:MAX_SHOWN] + "…"
        return f"is {shown}, which is not a JSON number (finite numbers only)"
    if isinstance(value, _TooManyDigits):
        most = sys.get_int_max_str_digits()
        return f"is an integer of {value.digits} digits, longer than this service reads ({most})"
    if isinstance(value, dict | list) and depth >= limits.max_depth:
        return f"is nested more than {limits.max_depth} levels deep"
    if isinstance(value, dict):  # keys first: a refusal that names a key must be able to write it
        for key in value:
            if len(key) > limits.max_string or LONE_SURROGATE.search(key):
                return "has a key that is too long or not text"
    if isinstance(value, _WithDuplicateKey):
        return f"names the key '{value.duplicate[:MAX_SHOWN]}' more than once"
    return None


class _Doubt(Exception):
    """The fast reading cannot vouch for the document: read it the careful way."""


# Brackets (`{` and `[` alike) and quotes; all else goes.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET_OR_QUOTE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
# A colon written as an escape. (Go and .NET write `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`.)
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


def _without_escaped_quotes(text: bytes) -> bytes:
    """`text` with every escaped backslash and escaped quote overwritten by two `_`: each `"` left
    opens or closes a string, and no string gets shorter."""
    if b"\\" not in text:
        return text
    return text.replace(b"\\\\", b"__").replace(b'\\"', b"__")


def _brackets(text: bytes) -> bytes:
    """The brackets of valid JSON `text` that lie outside its strings, all as `[` and `]`.

    Once escaped quotes are gone, quotes open and close strings in turn. Removing two adjacent
    quotes keeps that so, and what they enclose (an empty string, or nothing between two strings)
    held no bracket outside a string; most strings hold no bracket, so few are left for the pattern.
    """
    kept = _without_escaped_quotes(text).translate(_AS_SQUARE, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")
    return _STRING.sub(b"", kept) if b'"' in kept else kept


def nested_within(text: bytes, max_depth: int) -> bool:
    """Whether valid JSON `text` nests its objects and arrays no more than `max_depth` levels: each
    pass over its brackets takes away every pair with nothing inside, one level of the deepest."""
    brackets = _brackets(text)
    for _ in range(max_depth):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
    return not brackets


def _strings_within(text: bytes, max_string: int) -> bool:
    """Whether no string or key of valid JSON `text` can be longer than `max_string` characters.

    A character takes at least one byte, and a run of more than `max_string` bytes without a quote
    covers a whole block of `max_string // 2 + 1` bytes: true when every block without a quote lies
    outside the strings (an even number of quotes before it), as in a long array of numbers or of
    empty arrays, which the careful reading would walk node by node.
    """
    if len(text) <= max_string:
        return True
    unescaped, block = _without_escaped_quotes(text), max_string // 2 + 1
    quotes_before = counted_to = 0
    for start in range(0, len(unescaped) - block + 1, block):
        if unescaped.find(b'"', start, start + block) >= 0:
            continue
        quotes_before += unescaped.count(b'"', counted_to, start)
        counted_to = start
        if quotes_before % 2:
            return False
    return True


def _same_keys(raw: bytes, written: bytes) -> bool:
    """Whether the document `json` decoded from `raw` and orjson wrote as `written` kept every key the
    text wrote (`json` keeps the last of two equal keys).

    Outside strings a colon follows a key and nothing else, so each text holds as many colons as keys
    plus the colons in its strings. Without a `\\u003a` escape every colon in a decoded string was
    written as one, and the decoded strings are the text's, less those of a dropped key and value:
    `written` holds as many colons as `raw` exactly when nothing was dropped.
    """
    if b"\\" in raw and _ESCAPED_COLON.search(raw):
        return False
    return raw.count(b":") == written.count(b":")


def _orjson_writes_nested(levels: int) -> bool:
    """Whether orjson writes `levels` arrays nested in one another."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


# The most containers orjson writes nested in one another, empty ones counted (254: its recursion
# limit), found at import; None if it does not stop there, and then the fast reading passes over the
# brackets (`nested_within`) instead.
ORJSON_NESTING: int | None = 254 if _orjson_writes_nested(254) and not _orjson_writes_nested(255) else None


# What the arrays hold, which orjson asks `default` for: the document being written.
_INSIDE = object()


def _arrays_around(levels: int) -> list[Any]:
    """`[_INSIDE, [_INSIDE], [[_INSIDE]], ...]`: item n is n arrays around `_INSIDE`. Built once, at
    import, and never changed (so shared by every thread): building the arrays for each writing cost
    about 0.1 M instructions, more than writing a small FHIR answer."""
    around: list[Any] = [_INSIDE]
    for _ in range(levels):
        around.append([around[-1]])
    return around


_AROUND = _arrays_around(ORJSON_NESTING or 0)


def written_within(document: Any, max_depth: int) -> bytes:
    """`document` (as `loads_exact` reads it: decimals written as read) written by orjson inside as
    many arrays as make it refuse (`orjson.JSONEncodeError`) exactly when the document holds a
    container `max_depth` levels down (the document itself is level 0): its recursion limit,
    `ORJSON_NESTING`, counts the arrays and the document's containers alike. So the writing tells the
    depth, where a pass over the brackets outside the strings (`nested_within`) cost a fifth of the
    reading of a chart-sized body. The arrays add brackets to the text written, and no colon or
    quote. orjson refuses too what it does not write (an integer past 64 bits): a refusal alone does
    not say the document is too deep. A bound as deep as orjson writes or deeper needs no arrays: a
    document it writes is within it; where orjson stops elsewhere (`ORJSON_NESTING` None), the
    writing bounds nothing."""

    def inside(value: Any) -> Any:
        if value is _INSIDE:
            return document
        raise TypeError

    return orjson.dumps(_AROUND[_arrays_for(max_depth)], default=_written_as_read(inside))


def _arrays_for(max_depth: int) -> int:
    """How many arrays `written_within` writes around a document to bound it by `max_depth`."""
    return min(max((ORJSON_NESTING or 0) - max_depth, 0), len(_AROUND) - 1)


def document_within(document: Any, text: bytes, max_depth: int) -> bool:
    """Whether `document`, which `loads_exact` read from `text`, nests no more than `max_depth` levels,
    as `nested_within(text, max_depth)` answers of a text holding no repeated key: told by orjson's
    writing (`written_within`), at about half the cost of that pass over the brackets, which is made only
    where the writing cannot tell (orjson refused: too deep, or an integer past 64 bits; or
    `ORJSON_NESTING` unknown). For what reads an untrusted text with `loads_exact` and needs its depth
    bounded (a FHIR server's answer). It is the document's depth, as read: `loads_exact` keeps the last
    of a repeated key's values (not refused: the module's docstring says why), so a value the key's
    last replaced, never read, is not counted, however the depth is told; the pass over the text counts
    it, so where the pass finds the text too deep, the document is written again by `json` (which
    writes an integer of any size) and that is passed over (review27f: an answer whose replaced value
    was too deep was taken, or refused for an integer past 64 bits elsewhere in it)."""
    if ORJSON_NESTING is not None:
        try:
            written_within(document, max_depth)
        except orjson.JSONEncodeError:
            pass
        else:
            return True
    if nested_within(text, max_depth):
        return True
    try:  # seldom: the text is too deep (a hostile server's), the document most often too
        return nested_within(json.dumps(document).encode(), max_depth)
    except RecursionError:
        return False


def _fast(raw: bytes | str, limits: JsonLimits) -> Any:
    """The document when the fast reading can prove it strict and within bounds; _Doubt otherwise.

    `loads_exact` refuses what strict JSON refuses (NaN, ±Infinity, numbers beyond a float, bytes
    that are not UTF-8, a byte order mark) and reads numbers as the careful reading does. What it
    reads differently (a repeated key) and the bounds are checked over the raw bytes and the decoded
    document written back by orjson (quick: no Python object is visited) inside arrays enough that it
    refuses nesting past the bound (`written_within`), as it refuses an unpaired surrogate and an integer
    past 64 bits.
    """
    text = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if limits.max_depth < 1:
        raise _Doubt
    try:
        document = loads_exact(raw)
    except (ValueError, RecursionError):
        raise _Doubt from None
    if type(document) is not dict and type(document) is not list:
        raise _Doubt  # a bare value is no hook call: the careful way words the refusal
    try:
        written = written_within(document, limits.max_depth)
    except orjson.JSONEncodeError:  # too deep; the careful way keeps big integers and words the rest
        raise _Doubt from None
    if not _same_keys(text, written):
        raise _Doubt
    if ORJSON_NESTING is None and not nested_within(written, limits.max_depth):
        raise _Doubt
    if not _strings_within(written, limits.max_string):
        raise _Doubt
    return document


# What JSON allows between its tokens (RFC 8259 §2). orjson writes none of it but the spaces in strings.
_JSON_WHITESPACE = b" \t\n\r"
# A number written with a negative exponent, as orjson writes one (`1e-7`, `1.5e-10`): `e`, `-`, digits,
# then what closes a value (a number of a document written without whitespace is never its last byte).
_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9]+[,\]}]")
_OPENS_A_NUMBER = (b":", b",", b"[")
_SMALL = b"0.0000"  # how orjson begins a float below 1e-4 it writes without an exponent


def _unspaced(raw: bytes) -> bytes:
    """`raw` without JSON's whitespace: spaces alone (the most a body written on one line holds) taken
    out by `replace`, quicker than `translate`."""
    if b"\n" in raw or b"\r" in raw or b"\t" in raw:
        return raw.translate(None, _JSON_WHITESPACE)
    return raw.replace(b" ", b"") if b" " in raw else raw


def _written_alike(raw: bytes, written: bytes, arrays: int) -> bool:
    """Whether `written`, the document orjson read from `raw` written back by orjson inside `arrays`
    arrays (`written_within`), is `raw` but for JSON's whitespace, with no number written as Python's
    `json` writes it otherwise. True says the plain ints and floats orjson read are what the careful
    reading reads, and every writer here writes each of them back as the text `raw` wrote it.

    Why the same bytes prove it. `raw` is valid JSON (orjson read it), so its whitespace bytes are
    whitespace between tokens and spaces inside strings (a raw tab or line break is refused there);
    `written` holds no whitespace but the spaces of strings. Taking the whitespace out changes no quote
    and no escape (a space never follows a backslash in valid JSON), so each text's strings open and
    close at the same quotes as before, and outside them lie the same tokens, only closer: a number is
    still a maximal run of `-+.eE0-9` opened by `:`, `,` or `[` and closed by `,`, `]` or `}`, as JSON
    never puts two values side by side without a comma. Two identical texts split alike: the same
    strings (spaces aside) and, outside them, the same tokens in the same order, so the two documents
    have the same shape (a key repeated in `raw`, whose value orjson replaced, would leave `written` a
    member short) and the n-th number of `raw` is the same text as the n-th of `written`. orjson keeps
    an object's keys in order and writes what it read, so the n-th number of `written` is orjson's
    writing of the value it read from the n-th of `raw`, which the careful reading reads from that
    same text (`json`, correctly rounded: orjson writes a float so that it reads back as itself, so the
    value orjson read is the value of the text it wrote). The document is then the careful reading's
    but for each decimal a plain float of the same value where that reading has a `DecimalText`, and
    orjson writes it as its text. Whatever orjson writes otherwise makes the bytes differ: an integer
    `-0` (written `0`), `1E2` (`100.0`), `2.50`, `0.1000`, `1.0e2`, `1e-07`, an integer past 64 bits
    (read as a float), a repeated key, a string escaped otherwise than `written` escapes it (`\\/`,
    `\\u0041`, `\\u003a`, `\\u001F`, `\\u00e9` beside a character past ASCII written plain).
    (`written` may be orjson's text escaped as `json`'s `ensure_ascii` escapes it, `ascii_escaped`:
    the same strings written otherwise, the same numbers, valid JSON of the same document.)

    Python's `json` (`float.__repr__`: `dumps` where orjson cannot write, `_finite_as_written`, the
    audit row's `json` writing) writes a float as orjson does but below 1e-4: orjson writes `0.00001`
    and `1e-7` where Python writes `1e-05` and `1e-07`. Both write the shortest digits that read back
    as the value, the closest of them (the same digits), with no exponent from 1e-4 to below 1e16 and
    the same one (`1e+16`) beyond; `test_orjson_writes_a_float_as_python_but_below_1e_4` asks it of
    floats of every size. So no number of `written` may have a negative exponent (each `e-` is looked
    at: `_no_negative_exponent`) or begin `0.0000` or `-0.0000` (`_nothing_small`); a string holding
    either after a `:`, `,` or `[` costs only a doubt.
    """
    unspaced_written = written.replace(b" ", b"") if b" " in written else written
    unspaced_raw = _unspaced(raw)
    if len(unspaced_written) != len(unspaced_raw) + 2 * arrays:
        return False
    if not unspaced_written.startswith(unspaced_raw, arrays):
        return False
    return _no_negative_exponent(unspaced_raw) and _nothing_small(unspaced_raw)


def _no_negative_exponent(text: bytes) -> bool:
    """Whether no number of `text` (orjson's writing, without whitespace) has a negative exponent: one
    search (`e-` is its literal start), quicker than a loop of `find` over a chart's `e-`s (`re-`, a
    UUID's `9e-4`: 800 in the Synthea-sized body), which a string holding `e-` then digits and `,`,
    `]` or `}` only sends the fast way."""
    return _NEGATIVE_EXPONENT.search(text) is None


def _nothing_small(text: bytes) -> bool:
    """Whether no number of `text` (orjson's writing, without whitespace) begins `0.0000` or `-0.0000`."""
    at = text.find(_SMALL)
    while at >= 0:
        before = text[at - 1 : at] if at else b""
        if before in _OPENS_A_NUMBER or (before == b"-" and text[at - 2 : at - 1] in _OPENS_A_NUMBER):
            return False
        at = text.find(_SMALL, at + 1)
    return True


def _quick(raw: bytes | str, limits: JsonLimits) -> Any:
    """The document, read by orjson, when every number in `raw` is written as the writers here write
    its plain value (`_written_alike`) and the fast reading's checks hold; _Doubt otherwise.

    orjson refuses what `loads_exact` refuses (bytes that are not UTF-8, a byte order mark, NaN and
    ±Infinity, a number beyond a float, an unpaired surrogate) and reads strings as `json` does.
    Its writing back bounds the depth and refuses an integer past 64 bits, as in `_fast`; a repeated
    key makes the two texts differ. A body written in ASCII alone (`json`'s `ensure_ascii`, Python's
    default) is compared with orjson's text escaped as `json` escapes it (`ascii_escaped`: the same
    strings written otherwise, the same numbers; the proof holds of it as of orjson's own text). A text
    (not bytes), a body escaping `/` (found before reading: orjson writes it plain) and a bound
    orjson's writing cannot tell go the fast way.
    """
    if not isinstance(raw, bytes) or limits.max_depth < 1 or ORJSON_NESTING is None:
        raise _Doubt
    escaped = b"\\" in raw
    if escaped and b"\\/" in raw:
        raise _Doubt
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Doubt from None
    if type(document) is not dict and type(document) is not list:
        raise _Doubt
    try:
        written = written_within(document, limits.max_depth)
    except orjson.JSONEncodeError:
        raise _Doubt from None
    # (a body without a backslash and past ASCII is compared as orjson wrote it: its strings as written)
    shown = ascii_escaped(written) if escaped and not written.isascii() and raw.isascii() else written
    if not _written_alike(raw, shown, _arrays_for(limits.max_depth)):
        raise _Doubt
    if not _strings_within(written, limits.max_string):
        raise _Doubt
    return document


# After this many bodies in a row the quick reading did not take, it is tried on one in `QUICK_TRIED_ONE_IN`.
QUICK_MISSES_TRIED = 4
QUICK_TRIED_ONE_IN = 16


@dataclass
class QuickTries:
    """Whether the quick reading is worth trying on the next body, from how many bodies in a row it has
    not read (`missed`: doubted, or not tried, and read the existing way; a body refused counts for
    nothing, a client's mistake rather than its writer's way). A body it doubts costs its orjson read
    and write on top of the existing reading (about 22 M instructions on the Synthea-sized body: 58 M
    against 36 M), and an EHR that writes one number otherwise (`2.50`: FHIR keeps a decimal's
    precision) or escapes `/` or `<` (`\\u003C`) most likely writes every body so. So after
    `QUICK_MISSES_TRIED` bodies in a row it did not read, it is tried on one body in
    `QUICK_TRIED_ONE_IN` until it reads one again. What a body decodes to is the same whichever way
    reads it (`_written_alike`), so this changes only the cost. One per process (`QUICK_TRIES`);
    threads sharing it may miscount a body, which changes only which way a body is read. (A search of
    each body, before orjson reads it, for the commonest forms written otherwise would be paid by every
    body: a regular expression finding a decimal's trailing zero walks the Synthea-sized body in 3.0 M
    instructions, bench/NOTES.md; this costs a counter.)"""

    missed: int = 0

    def worth_trying(self) -> bool:
        return self.missed < QUICK_MISSES_TRIED or self.missed % QUICK_TRIED_ONE_IN == 0


QUICK_TRIES = QuickTries()


def loads_request(raw: bytes | str, limits: JsonLimits) -> Any:
    """Decode a request body strictly; JsonRejected names the first offending place.

    ValueError (not JSON at all) and RecursionError (nested past what the parser can hold) pass
    through for the caller to word.
    """
    if QUICK_TRIES.worth_trying():
        try:
            document = _quick(raw, limits)
        except _Doubt:
            pass
        else:
            QUICK_TRIES.missed = 0
            return document
    try:
        document = _fast(raw, limits)
    except _Doubt:
        document = loads_request_carefully(raw, limits)
    QUICK_TRIES.missed += 1  # (after the reading: a body refused counts for nothing)
    return document


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
    text = _utf8_text(raw)
    document = json.loads(
        text,
        object_pairs_hook=_object,
        parse_constant=_NonFinite,
        parse_float=_finite_or_marker,
        parse_int=_int_or_marker(_int_or_negative_zero),
    )
    found = _first_problem(document, limits)
    if found is not None:
        raise JsonRejected(*found)
    return document


# Dataclasses and dates are left to `json` and the caller's own `default` (orjson would write them its way).
_LEFT_TO_JSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
Default = Callable[[Any], Any]


def _json_escapes(error: UnicodeError) -> tuple[str, int]:
    """The error handler `JSON_ESCAPES` of the `ascii` codec: the run of characters past ASCII it could
    not encode, as `json` escapes them with `ensure_ascii` (`\\u00e9`, past the BMP a surrogate pair)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return encode_basestring_ascii(error.object[error.start : error.end])[1:-1], error.end


JSON_ESCAPES = "idds-crd-json-escapes"
codecs.register_error(JSON_ESCAPES, _json_escapes)


def ascii_escaped(written: bytes) -> bytes:
    """orjson's UTF-8 text with what is past ASCII, and DEL, escaped as `json`'s `ensure_ascii` escapes
    them. The text's only bytes past ASCII, and its only DEL (0x7F is never part of a longer UTF-8
    character), are characters inside its strings (JSON's own characters are ASCII). The codec copies
    ASCII runs in C and calls the handler once per run of other characters; a regular expression
    over the bytes (`rb"[\\x7f-\\xff]+"`) stepped through every byte of the text: 0.2 ms of the audit
    record of a pump call whose answer holds two dashes."""
    return written.replace(b"\x7f", b"\\u007f").decode().encode("ascii", JSON_ESCAPES)


def _written_as_read(default: Default | None) -> Default:
    """orjson's `default`: a `DecimalText` as its text (orjson takes no float subclass, so it asks),
    anything else as the caller's `default` writes it (TypeError without one)."""

    def written(value: Any) -> Any:
        if type(value) is DecimalText:
            return orjson.Fragment(value.text)
        if default is None:
            raise TypeError
        return default(value)

    return written


as_written = _written_as_read(None)  # for `orjson.dumps(..., default=as_written)`


def _json_takes(value: Any, default: Default | None) -> bool:
    """Whether `json` writes `value` (which orjson wrote) without refusing it: it holds no NaN or
    infinity (orjson writes them as null), nor an Enum or a UUID."""
    try:
        json.dumps(value, default=default, allow_nan=False, check_circular=False)
    except (TypeError, ValueError):
        return False
    return True


def written_fast(
    value: Any, ensure_ascii: bool = False, indent: bool = False, default: Default | None = None
) -> bytes | None:
    """`value` written by orjson, when that is the text `json.dumps` writes (compact, or indented by
    two) but for numbers: a float's negative exponent (`1.5e-7` for `1.5e-07`), and a `DecimalText`
    as its own text (`json` writes its value: `2.5` for `2.50`). None when the value holds what the
    two write differently: orjson refuses a dataclass, a date or a set `default` does not write, a
    key that is not a string, an integer past 64 bits and a lone surrogate (and writes an Enum or a
    UUID, which `json` refuses); it writes NaN and Infinity as null, so a text holding null is taken
    once `json` has found none in the value. With `ensure_ascii`, what is beyond ASCII and DEL is
    escaped as `json` escapes it. Several times quicker than `json` on a chart-sized document."""
    option = _LEFT_TO_JSON | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        written = orjson.dumps(value, default=_written_as_read(default), option=option)
    except orjson.JSONEncodeError:
        return None
    return taken_as_written(value, written, ensure_ascii, default)


def orjson_compact(value: Any) -> bytes | None:
    """`value` written compact by orjson as `written_fast` writes it before its checks (None where orjson
    refuses it): for what reads that text itself first, then has `taken_as_written` finish the checks."""
    try:
        return orjson.dumps(value, default=as_written, option=_LEFT_TO_JSON)
    except orjson.JSONEncodeError:
        return None


def taken_as_written(
    value: Any, written: bytes, ensure_ascii: bool = False, default: Default | None = None
) -> bytes | None:
    """`written_fast(value, ensure_ascii, default=default)` from orjson's writing of `value` with its
    options (`written`: compact, `orjson_compact`'s where `default` is None)."""
    if b"null" in written and not _json_takes(value, default):
        return None
    if ensure_ascii and (not written.isascii() or b"\x7f" in written):
        return ascii_escaped(written)
    return written


def _finite_as_written(number: float) -> str:
    """A float as `json` writes it, but a `DecimalText` as its own text; ValueError for NaN or ±Infinity."""
    if type(number) is DecimalText:
        return number.text
    if not math.isfinite(number):
        raise ValueError(f"{float.__repr__(number)} is not a JSON number")
    return float.__repr__(number)


class _TextKeepingEncoder(json.JSONEncoder):
    """`json`'s writer for what orjson will not write (an integer past 64 bits, a key that is not a
    string): the C writer takes every float by its value, so this one runs `json`'s own Python
    writer, which asks `_finite_as_written` for each float."""

    def iterencode(self, o: Any, _one_shot: bool = False) -> Iterator[str]:
        encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]
        make_iterencode = json.encoder._make_iterencode  # type: ignore[attr-defined]
        markers: dict[int, Any] | None = {} if self.check_circular else None
        write = make_iterencode(
            markers,
            self.default,
            encode_text,
            self.indent,
            _finite_as_written,
            self.key_separator,
            self.item_separator,
            self.sort_keys,
            self.skipkeys,
            _one_shot,
        )
        return write(o, 0)  # type: ignore[no-any-return]


def dumps(value: Any, indent: bool = False, default: Default | None = None) -> str:
    """Compact JSON (CRD §found-40), or indented by two; ValueError rather than ever writing NaN or
    Infinity. Numbers as they were read: by orjson where it writes the value (`written_fast`), else
    by `json`'s Python writer told to keep a `DecimalText`'s text (`_TextKeepingEncoder`)."""
    written = written_fast(value, indent=indent, default=default)
    if written is not None:
        return written.decode()
    return _written_by_json(value, indent, default)


def dumps_utf8(value: Any) -> bytes:
    """`dumps(value).encode()`, the compact text as an answer carries it (UTF-8): orjson's own bytes where
    it writes the text (`written_fast`), not decoded into a text that the answer then encodes again
    (demo-meets's pump answer: 0.22 M instructions a call, perf31); else `json`'s text encoded as a
    response encodes a text (strict UTF-8: a lone surrogate raises UnicodeEncodeError, as it did there)."""
    written = written_fast(value)
    return written if written is not None else _written_by_json(value, False, None).encode()


def _written_by_json(value: Any, indent: bool, default: Default | None) -> str:
    """`dumps`' text where orjson does not write it: `json`'s Python writer, a `DecimalText` as its text."""
    layout: dict[str, Any] = {"indent": 2} if indent else {"separators": (",", ":")}
    return json.dumps(
        value, cls=_TextKeepingEncoder, default=default, ensure_ascii=False, allow_nan=False, **layout
    )
