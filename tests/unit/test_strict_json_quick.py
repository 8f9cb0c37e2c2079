"""The quick reading of request bodies (strict_json._quick: orjson's reading, proved by its writing back
being the body but for whitespace) takes a body only when every number in it is written as the service's
writers write its plain value back, and decodes it as the careful reading does but for that; anything
else (a decimal written `2.50`, `1e2`, `-0`, `1e-7`, a string escaped otherwise than orjson escapes it,
a repeated key, a refusal) goes the existing way, with the existing wording."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service import strict_json
from service.http_input import REQUEST_LIMITS
from service.strict_json import (
    QUICK_MISSES_TRIED,
    QUICK_TRIED_ONE_IN,
    DecimalText,
    JsonLimits,
    JsonRejected,
    _Doubt,
    _quick,
    _written_alike,
    loads_request,
    loads_request_carefully,
)
from tests.strict_json_support import decimal_texts, typed
from tests.support import sign_body

# Numbers as orjson and Python's `json` both write their value back: taken the quick way.
AS_WRITTEN_BACK = [
    "2.5",
    "0.1",
    "100",
    "-7",
    "0",
    "0.0",
    "-0.0",
    "1.0",
    "0.0001",
    "-0.00012",
    "0.30000000000000004",
    "1234567890123456.0",
    "1e+16",
    "-1.5e+300",
    "18446744073709551615",
    "-9223372036854775808",
]
# Numbers one of them writes otherwise: each goes the existing way and keeps its text.
WRITTEN_OTHERWISE = [
    "2.50",
    "0.10",
    "0.1000",
    "1e2",
    "1E2",
    "1.0e2",
    "1e16",
    "1E+16",
    "1e-7",
    "1E-7",
    "1.5e-7",
    "1e-07",
    "1.5e-10",
    "0.00001",
    "-0.00001",
    "0.000001",
    "-0",
    "0e0",
    "-0e0",
    "100.00",
    "3.0000000000000000001",
    "12345678901234567890.5",
    "18446744073709551616",
    "-9223372036854775809",
]


def body_with(number: str, spaced: bool = True) -> bytes:
    """The demo order-sign body with `number` written as the value of an extension of its first draft
    order (which the answer writes back) and as an item of an array."""
    body = sign_body()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["extension"] = [{"url": "http://example.org/n", "valueDecimal": "<n>"}]
    body["x-numbers"] = [1, "<n>"]
    text = json.dumps(body) if spaced else json.dumps(body, separators=(",", ":"))
    return text.replace('"<n>"', number).encode()


def read_alike(raw: bytes, limits: JsonLimits = REQUEST_LIMITS, quick_first: bool = True) -> Any:
    """What `loads_request` reads from `raw`, once checked to be what the careful reading reads (by every
    number's kind and writing back), or the same refusal. With `quick_first`, the quick reading is tried
    whatever bodies the tests before read (after a few it doubted, it rests: `QuickTries`)."""
    if quick_first:
        strict_json.QUICK_TRIES.missed = 0
    try:
        careful = loads_request_carefully(raw, limits)
    except (JsonRejected, ValueError) as exc:
        with pytest.raises(type(exc)) as refused:
            loads_request(raw, limits)
        assert str(refused.value) == str(exc) and getattr(refused.value, "path", None) == getattr(
            exc, "path", None
        )
        return exc
    document = loads_request(raw, limits)
    assert typed(document) == typed(careful), raw
    return document


@pytest.mark.parametrize(
    "write",
    [
        lambda body: json.dumps(body).encode(),
        lambda body: json.dumps(body, separators=(",", ":")).encode(),
        lambda body: json.dumps(body, indent=2).encode(),
        lambda body: json.dumps(body, indent="\t", separators=(",\r\n", " :\t")).encode(),
        lambda body: orjson.dumps(body),
        lambda body: json.dumps(body, ensure_ascii=False).encode(),
    ],
)
def test_an_ordinary_hook_body_is_read_the_quick_way(write: Any) -> None:
    """The speed-up is real only if bodies as their writers write them need neither other reading."""
    body = sign_body()
    body["x-prices"] = [12345.5, 0.25, -3.0, 1e16, "caf\u00e9 \u2014 \U0001f600", "urn:uuid:1234567e-4abc"]
    raw = write(body)
    document = _quick(raw, REQUEST_LIMITS)
    assert document == body and typed(document) == typed(loads_request_carefully(raw, REQUEST_LIMITS))
    assert decimal_texts(document) == []  # plain floats: no text was kept for one


@pytest.mark.parametrize("spaced", [True, False])
@pytest.mark.parametrize("number", AS_WRITTEN_BACK)
def test_a_number_written_as_the_writers_write_it_back_is_read_the_quick_way(
    number: str, spaced: bool
) -> None:
    raw = body_with(number, spaced)
    document = _quick(raw, REQUEST_LIMITS)
    assert typed(document) == typed(loads_request_carefully(raw, REQUEST_LIMITS))
    value = document["x-numbers"][1]
    assert orjson.dumps(value).decode() == number == (repr(value) if isinstance(value, float) else str(value))


@pytest.mark.parametrize("spaced", [True, False])
@pytest.mark.parametrize("number", WRITTEN_OTHERWISE)
def test_a_number_a_writer_writes_otherwise_goes_the_existing_way_and_keeps_its_text(
    number: str, spaced: bool
) -> None:
    """Each fails if the proof is weakened (the texts compared by their numbers' values, or a check of
    the forms Python writes otherwise left out): the number would come back as a plain float, written
    as its value."""
    raw = body_with(number, spaced)
    with pytest.raises(_Doubt):
        _quick(raw, REQUEST_LIMITS)
    document = read_alike(raw)
    read = document["x-numbers"][1]
    if isinstance(read, float):
        assert type(read) is DecimalText and read.text == number
        assert decimal_texts(document) == [number, number]
    else:
        assert str(read) == number  # an integer past 64 bits: exact, as the careful reading reads it


@pytest.mark.parametrize(
    "raw",
    [
        b'["a\\/b"]',  # `/` escaped: orjson writes it plain
        b'["\\u0041"]',
        b'["\\u002c1", 2.5]',  # an escaped comma that would put a number-like `,1` in the written text
        b'["12\\u0033", ":5"]',
        b'{"a\\u003a": 1}',
        b'["\\u00e9", "\xc3\xa9"]',  # as `ensure_ascii` escapes it, beside one written plain
        b'["\\u00E9"]',  # `json` writes hex digits lower case
        b'["\\u001F"]',  # orjson writes `\\u001f`
        b'["\\u000a"]',  # orjson writes `\\n`
    ],
)
def test_a_string_escaped_otherwise_than_orjson_writes_it_is_never_proved(raw: bytes) -> None:
    """What `_quick` finds before reading (a `\\u` or `\\/` escape) the proof finds too: the texts differ."""
    assert not _written_alike(raw, orjson.dumps(orjson.loads(raw)), 0)
    with pytest.raises(_Doubt):
        _quick(raw, REQUEST_LIMITS)
    read_alike(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": ":1, 2.50", "b": [2.5, ",7"]}',  # what a search for numbers would find in strings
        b'{"a": "[1e-7", "b": 1}',
        b'{"a": "x:0.00001", "b": 1}',
        b'{"a": "\\"", "b": "\\\\", "c": [0.5]}',
        b'{"a":\t[1 ,\r\n2.5 ] ,"b" : {"c":-0.0}}\n',
        b'[{"a": 1, "a": 1}]',
        b'[{"a": 1, "b": {"a": 2}, "a": 1}]',
        b'{"a": 1, "A": 2}',
        b"[1, 2,]",
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[1]\x0c",
        b"\xef\xbb\xbf[1]",
        b'["\xff"]',
        b'["\xed\xa0\x80"]',
        b'["\\ud800"]',
        b'["a\x01"]',
        b"[NaN]",
        b"[1e999]",
        b'"a bare string"',
        b"7",
        b"[" * 41 + b"]" * 41,
        b"[" * 40 + b"]" * 40,
        b"[" * 300 + b"]" * 300,
        b'{"a": "' + b"x" * 20_000 + b'"}',
    ],
)
def test_bodies_on_the_edge_are_read_or_refused_as_the_careful_reading_reads_them(raw: bytes) -> None:
    read_alike(raw)


@pytest.mark.parametrize("raw", [b'["\\u00e9", "\\ud83d\\ude00", "\\u001f\\n\\u007f"]', b'{"\\u00e9": 2.5}'])
def test_a_body_escaped_as_json_s_ensure_ascii_escapes_it_is_read_the_quick_way(raw: bytes) -> None:
    """Python's `json` writes any character past ASCII (and DEL) escaped: as `ascii_escaped` escapes
    orjson's text, which the body is then compared with."""
    assert typed(_quick(raw, REQUEST_LIMITS)) == typed(loads_request_carefully(raw, REQUEST_LIMITS))


SHORT_STRINGS = JsonLimits(max_depth=40, max_string=8)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "123456789"}',
        b'{"123456789": 1}',
        b'[1.5, {"b": ["12345678", "' + "\u00e9".encode() * 9 + b'"]}]',
        b'["\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"]',
        b'{"a": "\\"\\"\\"\\"\\"\\"\\"\\"\\""}',
    ],
)
def test_a_string_or_key_past_the_bound_is_refused_as_the_careful_reading_refuses_it(raw: bytes) -> None:
    """The quick reading checks the strings' lengths as the fast one does (review33a: leaving its check
    out failed no test, the request bound being a megabyte); each body here is one nine characters long."""
    assert isinstance(read_alike(raw, SHORT_STRINGS), JsonRejected)


@pytest.mark.parametrize(
    "raw", [b'{"a": "12345678"}', b'{"12345678": [2.5]}', b'["\\u00e9\\u00e9\\u00e9\\u00e9", "\\"\\"\\"\\""]']
)
def test_a_string_or_key_within_the_bound_is_read(raw: bytes) -> None:
    """(Read the existing way: `_strings_within` doubts a string past half the bound.)"""
    assert not isinstance(read_alike(raw, SHORT_STRINGS), JsonRejected)


def test_short_strings_within_the_bound_are_read_the_quick_way() -> None:
    raw = b'{"ab": [2.5, "abcd", "\\u00e9"]}'
    assert typed(_quick(raw, SHORT_STRINGS)) == typed(read_alike(raw, SHORT_STRINGS))


def test_a_text_body_goes_the_existing_way() -> None:
    with pytest.raises(_Doubt):
        _quick(json.dumps(sign_body()), REQUEST_LIMITS)
    assert typed(loads_request(json.dumps(sign_body()), REQUEST_LIMITS)) == typed(sign_body())


@pytest.fixture
def tried(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies `loads_request` tries the quick reading on, in a process where it has missed none."""
    bodies: list[bytes] = []
    quick = strict_json._quick

    def counted(raw: bytes | str, limits: JsonLimits) -> Any:
        bodies.append(raw if isinstance(raw, bytes) else raw.encode())
        return quick(raw, limits)

    monkeypatch.setattr(strict_json, "_quick", counted)
    monkeypatch.setattr(strict_json.QUICK_TRIES, "missed", 0)
    return bodies


def test_after_bodies_it_doubts_in_a_row_the_quick_reading_is_tried_seldom(tried: list[bytes]) -> None:
    """An EHR writing a decimal `2.50` (or escaping `/`) writes every body so: each would pay orjson's
    reading and writing before the existing one. After `QUICK_MISSES_TRIED` in a row, the quick reading
    is tried on one body in `QUICK_TRIED_ONE_IN` (not tried, `2.50` is read as before, text kept)."""
    doubted = body_with("2.50")
    for read in range(1, QUICK_TRIED_ONE_IN + 2):
        document = read_alike(doubted, quick_first=False)
        assert document["x-numbers"][1].text == "2.50"
        if read <= QUICK_MISSES_TRIED:
            assert len(tried) == read  # a doubt or a few do not stop it
        elif read <= QUICK_TRIED_ONE_IN:
            assert len(tried) == QUICK_MISSES_TRIED  # resting
        else:
            assert len(tried) == QUICK_MISSES_TRIED + 1  # the body after QUICK_TRIED_ONE_IN misses


def test_a_body_it_reads_sets_the_quick_reading_going_again(tried: list[bytes]) -> None:
    """While it rests, a body it would read goes the existing way, read alike; once it is tried and
    reads one, it is tried on every body again."""
    doubted, plain = body_with("2.50"), body_with("2.5")
    for _ in range(QUICK_MISSES_TRIED):
        read_alike(doubted, quick_first=False)
    assert len(tried) == QUICK_MISSES_TRIED
    read_alike(plain, quick_first=False)
    assert len(tried) == QUICK_MISSES_TRIED  # not tried: read the existing way, as the careful one reads it
    while len(tried) == QUICK_MISSES_TRIED:
        read_alike(plain, quick_first=False)
    assert tried[-1] == plain and strict_json.QUICK_TRIES.missed == 0
    read_alike(doubted, quick_first=False)
    read_alike(plain, quick_first=False)
    assert tried[-2:] == [doubted, plain]


def test_a_body_refused_does_not_count_towards_resting_the_quick_reading(tried: list[bytes]) -> None:
    """A client's malformed bodies say nothing of how its EHR writes the others."""
    doubted = body_with("2.50")
    for _ in range(QUICK_MISSES_TRIED - 1):
        read_alike(doubted, quick_first=False)
    for _ in range(QUICK_TRIED_ONE_IN):
        assert isinstance(read_alike(b'[{"a": 2.50, "a": 2.5}]', quick_first=False), JsonRejected)
    read_alike(doubted, quick_first=False)
    assert tried[-1] == doubted  # the last of the few doubts it takes before resting
    count = len(tried)
    read_alike(doubted, quick_first=False)
    assert len(tried) == count  # resting now


# Numbers as any writer might write them, in documents with strings that hold number-like text.
NUMBER_TEXTS = (
    st.sampled_from(AS_WRITTEN_BACK + WRITTEN_OTHERWISE)
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.floats(allow_nan=False, allow_infinity=False).map(lambda v: orjson.dumps(v).decode())
    | st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
)
STRINGS = st.text(
    alphabet=st.sampled_from('ab":\\ ,[]{}-.eE+0123456789/\t\x00\x7f\u00e9\u2028\U0001f600'), max_size=20
)
SPACE = st.sampled_from(["", "", " ", "\n", "\t ", "\r\n"])
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\t": "\\t", "\n": "\\n"}


@st.composite
def escaped(draw: st.DrawFn) -> str:
    """A string as some writer might escape it (review33a): each character as it is where JSON allows,
    short (`\\/`), or as `\\u` hex in lower or upper case (past the BMP a surrogate pair)."""
    written = ""
    for char in draw(STRINGS):
        ways = ["x", "X"] + (["short"] if char in SHORT_ESCAPES else [])
        ways += [] if char in '"\\' or char < " " else ["plain", "plain"]
        way = draw(st.sampled_from(ways))
        if way == "plain":
            written += char
        elif way == "short":
            written += SHORT_ESCAPES[char]
        else:
            units = char.encode("utf-16-be")
            hexes = [units[i : i + 2].hex() for i in range(0, len(units), 2)]
            written += "".join("\\u" + (h.upper() if way == "X" else h) for h in hexes)
    return f'"{written}"'


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(min_value=0, max_value=3 if depth < 4 else 1))
    if kind == 0:
        return draw(NUMBER_TEXTS)
    if kind == 1:
        if draw(st.booleans()):
            return draw(escaped())
        text = draw(STRINGS)
        return json.dumps(text, ensure_ascii=draw(st.booleans()))
    items = draw(st.lists(documents(depth + 1), max_size=4))
    space = draw(SPACE)
    if kind == 2:
        return "[" + space + f"{space},{space}".join(items) + space + "]"
    keys = draw(st.lists(STRINGS, min_size=len(items), max_size=len(items)))
    pairs = [f"{json.dumps(k)}{space}:{space}{v}" for k, v in zip(keys, items, strict=True)]
    return "{" + f",{space}".join(pairs) + "}"


@settings(max_examples=1500, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"))
@example('[":1", 1e-7, ",2.50"]')
@example('[{"a": 0.00001, "b": "0.0000"}]')
@example('[{"a": 1e-7}]')  # a negative exponent closed by `}` only
def test_loads_request_reads_as_the_careful_reading_with_every_number_written_back_alike(text: str) -> None:
    """The same document, or the same refusal, as `loads_request_carefully`; each number of the same kind
    and written back by every writer here (orjson, `json`'s Python writer, `json`'s C writer) as the
    same text, whichever reading took the body."""
    read_alike(text.encode())


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(1e-4)
@example(0.0001234)
@example(9.999999999999999e-05)
@example(1e-5)
@example(1.5e-10)
@example(1e16)
@example(9999999999999998.0)
@example(5e-324)
@example(1.7976931348623157e308)
@example(-0.0)
def test_orjson_writes_a_float_as_python_but_below_1e_4(value: float) -> None:
    """What `_written_alike` counts on: orjson's text of a float is Python's (`float.__repr__`, as `json`
    writes it) but below 1e-4, where it begins `0.0000` or has a negative exponent, which the proof
    refuses."""
    written = orjson.dumps(value).decode()
    if value == 0 or abs(value) >= 1e-4:
        assert written == repr(value)
    else:
        assert written.lstrip("-").startswith("0.0000") or "e-" in written
    assert float(written) == value and math.copysign(1, float(written)) == math.copysign(1, value)
