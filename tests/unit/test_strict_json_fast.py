"""The fast reading of request bodies (service/strict_json.py) accepts exactly what the careful
reading accepts, decodes it alike, and leaves every refusal (and its wording) to the careful one."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.http_input import REQUEST_LIMITS
from service.strict_json import JsonLimits, JsonRejected, _fast, loads_request, loads_request_carefully
from tests.support import sign_body

# tight bounds (strings checked one by one) and a string bound longer than any body here (not checked)
LIMITS = st.sampled_from([JsonLimits(max_depth=6, max_string=40), JsonLimits(max_depth=4, max_string=10_000)])
TIGHT = JsonLimits(max_depth=6, max_string=40)
KEYS = st.sampled_from(["a", "b", "x:", 'q"', "s\\", "é", "\ud83d\ude00", "a" * 41, "\ud800", " "])
TEXTS = st.text(alphabet=st.sampled_from('ab":\\ {}[],\ud800\ud83d\ude00é\n'), max_size=50)
NUMBERS = st.sampled_from(["0", "-1", "1.5", "1e300", "1e999", "-1e400", "12345678901234567890123", "1E+308"])


def _scalar() -> st.SearchStrategy[str]:
    strings = TEXTS.map(lambda t: json.dumps(t, ensure_ascii=False))
    escaped = TEXTS.map(json.dumps)
    constants = st.sampled_from(["true", "false", "null", "NaN", "Infinity", "-Infinity"])
    return strings | escaped | NUMBERS | constants


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    before_colon = st.sampled_from(["", "", " ", "\n "])
    pairs = st.lists(st.tuples(KEYS, before_colon, children), max_size=4)
    members = pairs.map(lambda ps: ", ".join(f"{json.dumps(k)}{space}:{v}" for k, space, v in ps))
    return members.map(lambda m: "{" + m + "}") | st.lists(children, max_size=4).map(
        lambda vs: "[" + ",".join(vs) + "]"
    )


DOCUMENTS = st.recursive(_scalar(), _containers, max_leaves=30)


def outcome(read: Any, raw: bytes, limits: JsonLimits) -> tuple[str, Any]:
    try:
        return "document", read(raw, limits)
    except JsonRejected as exc:
        return "rejected", (exc.path, exc.message)
    except RecursionError:
        return "too deep", None
    except ValueError as exc:
        return "not json", str(exc)


@settings(max_examples=600, deadline=None)
@given(DOCUMENTS, LIMITS)
def test_the_fast_reading_answers_as_the_careful_one(text: str, limits: JsonLimits) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    fast, careful = outcome(loads_request, raw, limits), outcome(loads_request_carefully, raw, limits)
    assert fast[0] == careful[0], (repr(text), fast, careful)
    if fast[0] == "document":
        assert json.dumps(fast[1]) == json.dumps(careful[1])
    elif fast[0] == "rejected":
        assert fast == careful


def test_a_repeated_key_is_refused_even_when_the_text_is_otherwise_plain() -> None:
    raw = b'{"context": {"patientId": "a", "note": "x\\": y", "patientId": "b"}}'
    refusal = ("context", "context names the key 'patientId' more than once")
    assert outcome(loads_request, raw, TIGHT) == ("rejected", refusal)


def test_a_body_longer_than_the_string_bound_still_has_its_strings_checked() -> None:
    raw = json.dumps({"a": ["short"] * 20, "b": "y" * 41}).encode()
    assert outcome(loads_request, raw, TIGHT)[0] == "rejected"
    assert outcome(loads_request, json.dumps({"a": ["short"] * 20}).encode(), TIGHT)[0] == "document"


def test_an_ordinary_hook_body_is_read_the_fast_way() -> None:
    """The speed-up is real only if ordinary bodies need no careful reading."""
    raw = json.dumps(sign_body()).encode()
    assert _fast(raw, REQUEST_LIMITS) == json.loads(raw)
    spaced = json.dumps(sign_body(), indent=1, separators=(",", " : ")).encode()
    assert _fast(spaced, REQUEST_LIMITS) == json.loads(raw)
