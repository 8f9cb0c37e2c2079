"""The fast reading of request bodies (service/strict_json.py) accepts exactly what the careful
reading accepts, decodes it alike, and leaves every refusal (and its wording) to the careful one."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import strict_json
from service.http_input import REQUEST_LIMITS
from service.strict_json import (
    JsonLimits,
    JsonRejected,
    _Doubt,
    _fast,
    document_within,
    loads_exact,
    loads_request,
    loads_request_carefully,
    nested_within,
    written_within,
)
from tests.strict_json_support import typed
from tests.support import sign_body

# tight bounds (strings checked block by block), a string bound longer than any body here (not
# checked), and the service's own
LIMITS = st.sampled_from(
    [
        JsonLimits(max_depth=6, max_string=40),
        JsonLimits(max_depth=4, max_string=10_000),
        JsonLimits(max_depth=3, max_string=3),
        REQUEST_LIMITS,
    ]
)
TIGHT = JsonLimits(max_depth=6, max_string=40)
KEY_TEXTS = ["a", "b", "x:", 'q"', "s\\", "é", "\ud83d\ude00", "a" * 41, "\ud800", " ", '":', "0" * 20]
# Keys and strings as a client might write them: plainly, every character escaped, or with the
# escapes that hide a quote, a backslash or a colon from a search of the raw text.
WRITTEN_AS = ['"s\\u005c"', '"\\u0022:"', '"a\\u003a"', '"\\u003A"', '"x\\\\"', '"\\"\\u003a"', '"\\/"']
KEYS = st.sampled_from(KEY_TEXTS).flatmap(
    lambda key: st.sampled_from([json.dumps(key), json.dumps(key, ensure_ascii=False)])
) | st.sampled_from(WRITTEN_AS)
TEXTS = st.text(alphabet=st.sampled_from('ab":\\ {}[],+\ud800\ud83d\ude00é\n0123456789'), max_size=50)
BIG_INTEGERS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**18 - 1, 10**30]
NUMBERS = (
    st.sampled_from(
        ["0", "-0", "-0.0", "0e0", "-1", "1.5", "1e300", "1e999", "-1e400", "1E+308", "1e-400", "-1e-400"]
        + ["1E+2", "1e16", "1.0e16", "9.223372036854775808e18", "0.30000000000000004441"]
        + ["1.7976931348623157e308", "1.7976931348623159e308", "5e-324", "2.4703282292062328e-324"]
        + [str(n) for n in BIG_INTEGERS]
    )
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
)


def _scalar() -> st.SearchStrategy[str]:
    strings = TEXTS.map(lambda t: json.dumps(t, ensure_ascii=False))
    escaped = TEXTS.map(json.dumps)
    constants = st.sampled_from(["true", "false", "null", "NaN", "Infinity", "-Infinity"])
    return strings | escaped | st.sampled_from(WRITTEN_AS) | NUMBERS | constants


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    before_colon = st.sampled_from(["", "", " ", "\n "])
    pairs = st.lists(st.tuples(KEYS, before_colon, children), max_size=5)
    members = pairs.map(lambda ps: ", ".join(f"{k}{space}:{v}" for k, space, v in ps))
    return members.map(lambda m: "{" + m + "}") | st.lists(children, max_size=4).map(
        lambda vs: "[" + ",".join(vs) + "]"
    )


DOCUMENTS = st.recursive(_scalar(), _containers, max_leaves=30)


def _nested(levels: list[str], inner: str) -> str:
    """`inner` inside one container per level: `[` an array, anything else an object's key."""
    text = inner
    for key in reversed(levels):
        text = f"[{text}]" if key == "[" else f"{{{json.dumps(key)}:{text}}}"
    return text


# Around the service's depth bound (40): containers 38 to 42 deep, arrays and objects mixed.
DEEP = (
    st.integers(min_value=37, max_value=41)
    .flatmap(
        lambda depth: st.tuples(
            st.lists(st.sampled_from(["[", "k", "a"]), min_size=depth, max_size=depth),
            st.sampled_from(["[]", "{}", "1", "[1]", '{"a":1,"a":2}', "[[]]"]),
        )
    )
    .map(lambda levels_inner: _nested(*levels_inner))
)


def outcome(read: Any, raw: bytes, limits: JsonLimits) -> tuple[str, Any]:
    try:
        return "document", read(raw, limits)
    except JsonRejected as exc:
        return "rejected", (exc.path, exc.message)
    except RecursionError:
        return "too deep", None
    except ValueError as exc:
        return "not json", str(exc)


def assert_read_alike(raw: bytes, limits: JsonLimits) -> None:
    fast, careful = outcome(loads_request, raw, limits), outcome(loads_request_carefully, raw, limits)
    assert fast[0] == careful[0], (raw, fast, careful)
    if fast[0] == "document":
        assert typed(fast[1]) == typed(careful[1]), raw
    elif fast[0] == "rejected":
        assert fast == careful


@settings(max_examples=800, deadline=None)
@given(DOCUMENTS, LIMITS)
def test_the_fast_reading_answers_as_the_careful_one(text: str, limits: JsonLimits) -> None:
    assert_read_alike(text.encode("utf-8", "surrogatepass"), limits)


@settings(max_examples=200, deadline=None)
@given(DEEP)
def test_the_fast_reading_answers_as_the_careful_one_around_the_depth_bound(text: str) -> None:
    assert_read_alike(text.encode(), REQUEST_LIMITS)


@pytest.mark.parametrize("depth", [39, 40, 41])
@pytest.mark.parametrize("inner", ["[]", "{}", "1"])
def test_nesting_exactly_at_the_bound_is_read_and_one_more_level_refused(depth: int, inner: str) -> None:
    levels = ["[" if level % 2 else "k" for level in range(depth - (inner != "1"))]
    raw = _nested(levels, inner).encode()
    expected = "document" if depth <= REQUEST_LIMITS.max_depth else "rejected"
    assert outcome(loads_request, raw, REQUEST_LIMITS)[0] == expected
    assert_read_alike(raw, REQUEST_LIMITS)


@pytest.mark.parametrize("depth", [254, 255, 256, 1023, 1024, 1025])
def test_a_document_deeper_than_orjson_writes_or_reads_is_refused_as_too_deep(depth: int) -> None:
    raw = b'{"hook":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    try:
        loads_request(raw, REQUEST_LIMITS)
    except JsonRejected as refused:
        assert "nested" in refused.message
    except RecursionError:
        pass  # read_json_body words it: "the request body ($) is nested too deeply"
    else:
        raise AssertionError(f"a document {depth} levels deep was read")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"context": {"patientId": "a", "note": "x\\": y", "patientId": "b"}}',
        b'{"a": {"b": [{"c": 1, "d": {"e": 1, "e": 2}}]}}',
        b'{"a": 1, "b": "\\u003a", "a": 2}',  # the escaped colon stands in for the dropped key's
        b'{"s\\u005c": 1, "s\\\\": 2}',
        b'{"\\u0022:": 1, "\\":": 2}',
    ],
)
def test_a_repeated_key_is_refused_however_it_is_written(raw: bytes) -> None:
    fast, careful = outcome(loads_request, raw, TIGHT), outcome(loads_request_carefully, raw, TIGHT)
    assert fast[0] == "rejected" and fast == careful


def test_a_repeated_key_names_the_object_and_the_key() -> None:
    raw = b'{"context": {"patientId": "a", "note": "x\\": y", "patientId": "b"}}'
    refusal = ("context", "context names the key 'patientId' more than once")
    assert outcome(loads_request, raw, TIGHT) == ("rejected", refusal)


def test_a_fhir_answer_with_a_repeated_key_is_read_with_its_last_value() -> None:
    """`loads_exact` (FHIR servers' answers) does not look for repeated keys: what the module's
    docstring says, and why (json review F7: it said they were refused)."""
    raw = b'{"resourceType": "ServiceRequest", "modifierExtension": [{"url": "u"}], "modifierExtension": []}'
    assert loads_exact(raw) == {"resourceType": "ServiceRequest", "modifierExtension": []}
    assert "but not a repeated key" in (strict_json.__doc__ or "")


TOO_DEEP_FOR_A_FHIR_ANSWER = "[" * 101 + "1" + "]" * 101  # 101 levels below the answer: 100 are taken


@pytest.mark.parametrize("orjson_nesting", [254, None])
@pytest.mark.parametrize("held", ["1", str(2**64)])
def test_a_value_a_repeated_key_replaced_is_not_counted_however_an_answers_depth_is_told(
    orjson_nesting: int | None, held: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review27f: a FHIR answer's repeated key is read with its last value (`loads_exact`), and
    `document_within` told the depth of that document where orjson's writing tells it, but of the text,
    the value replaced and never read counted, where it cannot (an integer past 64 bits, which orjson
    does not write; an orjson that stops elsewhere): one answer taken, or refused for an integer elsewhere
    in it. It is the document's depth as read, however told; a last value too deep is refused every way."""
    monkeypatch.setattr(strict_json, "ORJSON_NESTING", orjson_nesting)
    kept = '[{"text": "x"}]'
    for first, last, taken in (
        (TOO_DEEP_FOR_A_FHIR_ANSWER, kept, True),
        (kept, TOO_DEEP_FOR_A_FHIR_ANSWER, False),
    ):
        text = (
            f'{{"resourceType": "ServiceRequest", "big": {held}, "note": {first}, "note": {last}}}'.encode()
        )
        assert document_within(loads_exact(text), text, 100) is taken, (first[:3], last[:3])


@pytest.mark.parametrize("first", [TOO_DEEP_FOR_A_FHIR_ANSWER, "1"])
def test_a_request_body_s_repeated_key_is_refused_as_one_whatever_the_value_it_replaced(first: str) -> None:
    """A request body is read strictly: a repeated key is refused, naming it, whatever the value the last
    replaced holds (one nested too deeply too), by the fast reading as by the careful one."""
    raw = f'{{"context": {{"note": {first}, "note": 1}}}}'.encode()
    refusal = ("rejected", ("context", "context names the key 'note' more than once"))
    assert outcome(loads_request, raw, REQUEST_LIMITS) == refusal
    assert outcome(loads_request_carefully, raw, REQUEST_LIMITS) == refusal


@pytest.mark.parametrize("number", BIG_INTEGERS)
def test_integers_past_64_bits_stay_integers(number: int) -> None:
    raw = json.dumps({"value": number, "more": [number, {"n": -number}]}).encode()
    assert typed(loads_request(raw, REQUEST_LIMITS)) == typed(json.loads(raw))


def test_a_body_longer_than_the_string_bound_still_has_its_strings_checked() -> None:
    raw = json.dumps({"a": ["short"] * 20, "b": "y" * 41}).encode()
    assert outcome(loads_request, raw, TIGHT)[0] == "rejected"
    assert outcome(loads_request, json.dumps({"a": ["short"] * 20}).encode(), TIGHT)[0] == "document"
    hidden = b'{"a": ["short", "short", "short", "short"], "b": "' + b'\\"' * 41 + b'"}'
    assert outcome(loads_request, hidden, TIGHT)[0] == "rejected"


@pytest.mark.parametrize("long_run", ["0," * 100 + "0", "[]," * 100 + "[]", "{}," * 100 + "{}"])
def test_a_long_run_outside_strings_is_read_the_fast_way(long_run: str) -> None:
    """A run without a quote longer than the string bound, outside every string (a million empty
    arrays), is no long string: read the careful way, it cost a worker seconds node by node."""
    raw = f'{{"a": "short", "b": [{long_run}], "c": "end"}}'.encode()
    assert _fast(raw, TIGHT) == json.loads(raw)
    inside = f'{{"a": "short", "b": "{long_run}", "c": "end"}}'.encode()
    assert outcome(loads_request, inside, TIGHT)[0] == "rejected"


def test_an_ordinary_hook_body_is_read_the_fast_way() -> None:
    """The speed-up is real only if ordinary bodies need no careful reading."""
    raw = json.dumps(sign_body()).encode()
    assert _fast(raw, REQUEST_LIMITS) == json.loads(raw)
    spaced = json.dumps(sign_body(), indent=1, separators=(",", " : ")).encode()
    assert _fast(spaced, REQUEST_LIMITS) == json.loads(raw)


# What an EHR writes: any keys (unique, as json.dumps writes them), integers of 64 bits, any finite
# floats, strings of any text.
ANY_CHARACTER = st.characters(blacklist_categories=("Cs",))
PLAIN_TEXT = st.text(ANY_CHARACTER | st.sampled_from("<>&:+"), max_size=30)
PLAIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | PLAIN_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(PLAIN_TEXT, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(PLAIN_VALUES, max_size=3) | st.dictionaries(PLAIN_TEXT, PLAIN_VALUES, max_size=3),
    st.sampled_from([{}, {"ensure_ascii": False}, {"indent": 1, "separators": (",", " : ")}]),
    st.booleans(),
)
def test_plain_documents_are_read_the_fast_way(document: Any, style: dict[str, Any], html_safe: bool) -> None:
    text = json.dumps(document, **style)
    if html_safe:  # as Go's encoding/json and .NET write strings: `<`, `>` and `&` escaped
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    raw = text.encode()
    try:
        fast = _fast(raw, REQUEST_LIMITS)
    except _Doubt:
        pytest.fail(f"doubted a plain document: {raw!r}")
    assert typed(fast) == typed(loads_request_carefully(raw, REQUEST_LIMITS))


def test_the_fast_reading_tells_the_depth_without_a_pass_over_the_brackets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The depth is bounded by the writing the key check needs anyway (orjson refuses the document
    inside `_in_arrays`'s arrays when it is too deep): the pass over the brackets outside the strings
    (`nested_within`) cost a fifth of the reading of a chart-sized body."""

    def no_pass(text: bytes, max_depth: int) -> bool:
        raise AssertionError("the brackets were passed over")

    monkeypatch.setattr(strict_json, "nested_within", no_pass)
    raw = json.dumps(sign_body()).encode()
    assert _fast(raw, REQUEST_LIMITS) == json.loads(raw)


def test_orjson_writes_254_containers_nested_and_refuses_255() -> None:
    """What `_in_arrays` counts on, found at import (`ORJSON_NESTING`): an orjson that stops elsewhere
    leaves the depth to the pass over the brackets."""
    assert strict_json.ORJSON_NESTING == 254
    assert strict_json._orjson_writes_nested(254) and not strict_json._orjson_writes_nested(255)


# A container `max_depth` (6) levels down, as the last level of each shape: an empty one, one holding
# a value, an array's item or an object's value.
@pytest.mark.parametrize("inner", ["[]", "{}", "[1]", '{"a": 1}', '[[], "x"]'])
@pytest.mark.parametrize("last", ["[", "k"])
@pytest.mark.parametrize("orjson_nesting", [254, None])
def test_a_container_at_the_depth_bound_is_never_read_the_fast_way(
    inner: str, last: str, orjson_nesting: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strict_json, "ORJSON_NESTING", orjson_nesting)
    limits = JsonLimits(max_depth=6, max_string=10_000)
    raw = _nested(["k", "[", "k", "k", "[", last], inner).encode()
    with pytest.raises(_Doubt):
        _fast(raw, limits)
    assert outcome(loads_request, raw, limits)[0] == "rejected"


@pytest.mark.parametrize("last", ["[", "k"])
@pytest.mark.parametrize("orjson_nesting", [254, None])
def test_values_down_to_the_depth_bound_are_read_the_fast_way(
    last: str, orjson_nesting: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Containers down to the level above the bound, and values of any other kind at it: decimals and
    `-0` kept as written (orjson asks for each, at every depth)."""
    monkeypatch.setattr(strict_json, "ORJSON_NESTING", orjson_nesting)
    limits = JsonLimits(max_depth=6, max_string=10_000)
    for inner in ("[]", "{}", "1", '"x"', '[true, 2.50, "y"]', '{"s": null, "n": -0, "e": 1E+2}'):
        raw = _nested(["k", "[", "k", "k", last], inner).encode()
        assert typed(_fast(raw, limits)) == typed(loads_request_carefully(raw, limits)), raw


@pytest.mark.parametrize("depth", [1, 2, 253, 254, 255, 300])
def test_a_bound_as_deep_as_orjson_writes_or_deeper_is_kept(depth: int) -> None:
    """No arrays when the bound is deeper than orjson writes: a document it writes is within it."""
    limits = JsonLimits(max_depth=depth, max_string=10_000)
    for levels in range(1, min(depth, 254) + 2):
        raw = _nested(["["] * (levels - 1), "[]").encode()  # `levels` containers, the deepest levels - 1 down
        assert_read_alike(raw, limits)


def _reading_peak(raw: bytes, limits: JsonLimits) -> int:
    """The most memory (bytes, traced) a fast reading of `raw` holds at once beyond what it started with."""
    _fast(raw, limits)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        _fast(raw, limits)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_the_arrays_that_bound_the_depth_are_not_built_at_each_reading() -> None:
    """The arrays around the document (214 for the request bound) are built once, at import: built at
    each reading, they cost ~0.1 M instructions, more than writing a small FHIR answer (and ~9 KB
    held at once). So a reading holds no more memory for 213 arrays more than for one: their brackets
    written, 426 bytes."""
    raw = b'{"a": [1, 2.50, -0], "b": {"c": "d"}}'
    one = JsonLimits(max_depth=253, max_string=10_000)
    assert _reading_peak(raw, JsonLimits(max_depth=40, max_string=10_000)) - _reading_peak(raw, one) < 1_000


@pytest.mark.parametrize("max_depth", [1, 2, 6, 40, 100, 103, 253, 254, 255, 300])
def test_written_within_writes_the_document_inside_the_arrays_and_refuses_one_nested_past_the_bound(
    max_depth: int,
) -> None:
    """Containers down to the level above the bound are written, decimals and `-0` by their text,
    inside `254 - max_depth` arrays (none for a bound orjson cannot reach); one at the bound is refused."""
    arrays = max(254 - max_depth, 0)
    for levels in range(1, min(max_depth, 254) + 2):  # `levels` containers, the deepest levels - 1 down
        document = loads_exact(_nested(["["] * (levels - 1), "[2.50, -0, 1E+2]"))
        if levels - 1 >= min(max_depth, 254):
            with pytest.raises(orjson.JSONEncodeError):
                written_within(document, max_depth)
        else:
            expected = "[" * (arrays + levels - 1) + "[2.50,-0,1E+2]" + "]" * (arrays + levels - 1)
            assert written_within(document, max_depth) == expected.encode(), (max_depth, levels)


@pytest.mark.parametrize("orjson_nesting", [254, None])
@pytest.mark.parametrize("held", ["1", str(2**64), "-0", '"x"'])
@pytest.mark.parametrize("max_depth", [1, 6, 100, 103, 254, 300])
def test_a_documents_depth_is_told_as_the_pass_over_its_brackets_tells_it(
    orjson_nesting: int | None, held: str, max_depth: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`document_within` answers as `nested_within` does, around the bound, where orjson's writing tells
    it and where it cannot: an integer past 64 bits (which orjson refuses to write), an orjson that
    stops elsewhere, a bound deeper than orjson writes."""
    monkeypatch.setattr(strict_json, "ORJSON_NESTING", orjson_nesting)
    for levels in {*range(max(max_depth - 2, 1), max_depth + 3), 253, 254, 255, 256}:
        for shape in (["["] * (levels - 1), ["k"] * (levels - 1)):
            text = _nested(shape, f"[{held}]").encode()
            assert document_within(loads_exact(text), text, max_depth) is nested_within(text, max_depth), (
                levels,
                shape[:1],
            )
