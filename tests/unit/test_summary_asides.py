"""A summary leaves out its reason's asides as it did, found once: the reason may hold the chart's
words (a condition's name), and searching it again after each aside left out, from every space of a
long run, was quadratic (a reason of 80,000 characters of "()" took 452 s)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cards.render import SUMMARY_LIMIT, _asides, _fitted
from tests.render_support import fitted_plainly

_PIECES = ["(", "(", ")", ")", " ", "  ", "\t", "\u2003", "a", "word", "17 Oct 2026", "é"]
_REASONS = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)
_LEADS = st.sampled_from(["", "GEHA: not covered — ", "x" * (SUMMARY_LIMIT - 10), "y" * (SUMMARY_LIMIT + 5)])


@settings(max_examples=3000, deadline=None)
@given(lead=_LEADS, reason=_REASONS)
def test_a_reason_loses_the_asides_it_lost_when_searched_again_each_time(lead: str, reason: str) -> None:
    assert _fitted(lead, reason) == fitted_plainly(lead, reason)


def test_the_asides_are_found_once_whatever_their_number() -> None:
    """Each pair of parentheses once, the last opened first: the order they are left out in."""
    reason = "a (b (c) d) (e)" + " ()" * 5000
    asides = _asides(reason)
    assert len(asides) == 5003
    assert asides[:1] + asides[-3:] == [(len(reason) - 3, len(reason)), (11, 15), (4, 8), (1, 11)]


def test_a_long_reason_loses_its_last_asides_until_it_fits() -> None:
    assert _fitted("lead: ", "kept (first)" + " (x)" * 5_000) == "lead: kept (first)" + " (x)" * 30
