"""The audit scrubber's JWT detector (security review S-1): it finds and removes whatever the plain
pattern did, and a match starts only where a base64url run starts, which is what keeps a search
linear in the text's length (a run of `eyJ` made the plain pattern quadratic: 961 s for 1 MiB)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from service.audit_entry import JWT_SHAPE, REMOVED, _walked
from tests.audit_support import A_JWT, BASE64URL, PLAIN_JWT_SHAPE

# Short texts made of the pieces a JWT is made of, and of what stops one, so that most hold a
# near-JWT and many a JWT.
_PIECES = ["eyJ", "eyJ", "e", "y", "J", "a", "Z", "9", "-", "_", ".", ".", " ", "/", '"', "\\u", "é", A_JWT]
_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=24).map("".join)


def _removed_by(pattern: re.Pattern[str], text: str) -> set[int]:
    """The positions of `text` that `pattern.sub` replaces."""
    return {i for match in pattern.finditer(text) for i in range(*match.span())}


@settings(max_examples=3000, deadline=None)
@given(text=_TEXTS)
def test_the_detector_finds_a_jwt_wherever_the_plain_pattern_did(text: str) -> None:
    assert bool(JWT_SHAPE.search(text)) == bool(PLAIN_JWT_SHAPE.search(text))


@settings(max_examples=3000, deadline=None)
@given(text=_TEXTS)
def test_the_scrubber_removes_all_the_plain_pattern_did_and_leaves_no_jwt(text: str) -> None:
    assert _removed_by(PLAIN_JWT_SHAPE, text) <= _removed_by(JWT_SHAPE, text)
    scrubbed = _walked(text, [])
    assert PLAIN_JWT_SHAPE.search(scrubbed) is None
    assert JWT_SHAPE.search(scrubbed) is None


@settings(max_examples=3000, deadline=None)
@given(text=_TEXTS)
def test_a_match_starts_only_where_a_base64url_run_starts(text: str) -> None:
    """Each run is then tried once as a JWT's first part, not once per `eyJ` in it, each to its end."""
    for match in JWT_SHAPE.finditer(text):
        assert match.start() == 0 or text[match.start() - 1] not in BASE64URL


def test_the_run_a_jwt_is_in_goes_with_it() -> None:
    assert _walked(f"see xx{A_JWT} and a.b.c", []) == f"see {REMOVED} and a.b.c"
