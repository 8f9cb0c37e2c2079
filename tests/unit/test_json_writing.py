"""Writing JSON the quick way (orjson, `strict_json.written_fast`) changes nothing: the answers
(`strict_json.dumps`) and the audit record's columns (`audit_entry._json`) are the text `json` writes,
or, where a float's exponent is spelled differently, the same JSON; and they fail where `json` fails."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import audit_entry, routes
from service.strict_json import dumps, dumps_utf8, written_fast
from tests.support import sign_body

# any text, lone surrogates included (orjson refuses those; `json` writes them escaped)
TEXT = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
    ["null", "→ é", "a\x00b", "del\x7f"]
)
KEYS = TEXT | st.integers(-5, 5)  # `json` writes a number key as text; orjson refuses it
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf, 1.5e-7, 1e16])
    | TEXT,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=25,
)


def holds_a_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(holds_a_float(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(holds_a_float(v) for v in value)
    return False


def outcome(write: Any, value: Any) -> tuple[str, Any]:
    try:
        return "text", write(value)
    except (TypeError, ValueError) as exc:
        return "refused", type(exc)


def assert_written_alike(quick: tuple[str, Any], reference: tuple[str, Any], value: Any) -> None:
    assert quick[0] == reference[0], (quick, reference)
    if quick[0] == "refused" or quick[1] == reference[1]:
        assert quick == reference
        return
    assert holds_a_float(value), (quick[1], reference[1])
    assert json.loads(quick[1]) == json.loads(reference[1])


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_an_answer_is_written_as_json_writes_it(value: Any) -> None:
    reference = outcome(
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False), value
    )
    assert_written_alike(outcome(dumps, value), reference, value)


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_an_answers_bytes_are_its_text_as_a_response_encodes_it(value: Any) -> None:
    """`dumps_utf8`, what an answer carries: `dumps`' text encoded as UTF-8 (strictly, as a response
    encodes a text: a lone surrogate `json` wrote is refused), or refused as `dumps` refuses."""
    assert outcome(dumps_utf8, value) == outcome(lambda v: dumps(v).encode(), value)


def test_a_hook_answer_goes_as_the_bytes_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The response is handed orjson's bytes, not a text decoded from them that it then encodes again
    (perf31: demo-meets's pump answer, 0.22 M instructions a call)."""
    handed: list[Any] = []

    def response(body: Any, **_: Any) -> None:
        handed.append(body)

    monkeypatch.setattr(routes, "Response", response)
    answer = {"cards": [{"summary": "Coverage criteria met \u2014 \u2705", "indicator": "info"}]}
    routes.json_response(answer)
    assert handed == [dumps(answer).encode()]


@settings(max_examples=500, deadline=None)
@given(VALUES, st.booleans())
def test_an_audit_column_is_written_as_json_writes_it(value: Any, allow_nan: bool) -> None:
    reference = outcome(
        lambda v: json.dumps(v, default=audit_entry._plain, allow_nan=allow_nan, separators=(",", ":")), value
    )
    assert_written_alike(outcome(lambda v: audit_entry._json(v, allow_nan), value), reference, value)


@given(st.sampled_from([math.nan, math.inf, -math.inf]), VALUES)
def test_orjson_never_writes_a_number_json_cannot_hold(number: float, around: Any) -> None:
    """orjson writes NaN and Infinity as null; such a text is never taken."""
    assert written_fast([around, {"n": number}]) is None


def test_an_ordinary_hook_body_is_written_the_quick_way() -> None:
    """The audit record's request column: a pump order-sign's body is ASCII and holds no null."""
    body = sign_body()
    written = written_fast(body)
    assert written is not None and written.isascii()
    assert audit_entry._json(body, allow_nan=False) == json.dumps(body, separators=(",", ":"))


def test_a_secret_holding_del_is_scrubbed_from_a_column() -> None:
    """`json` writes DEL escaped and orjson as it is; the scrubber looks for the escaped form."""
    secret = "tok\x7fen-0123456789abcdef"
    for value in ({"access_token": secret}, [secret], {"note": f"Bearer {secret}"}):
        text = audit_entry._scrubbed(value, [secret])
        assert secret not in json.loads(text) and secret not in text and "\\u007f" not in text
