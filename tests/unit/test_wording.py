"""service/wording.py's `number`, the one place a card's or a finding's number is formatted."""

from __future__ import annotations

import pytest

from service.wording import number


@pytest.mark.parametrize(
    ("value", "spec", "said"),
    [
        (-0.0, "g", "0"),
        (-0.0, ".0f", "0"),
        (-0.3, ".0f", "0"),
        (-0.04, ".1f", "0.0"),
        (-1.0, "g", "-1"),  # a sign that counts is kept
        (-0.6, ".0f", "-1"),
        (2.5, "g", "2.5"),
        (62.4, ".0f", "62"),
    ],
)
def test_a_number_is_said_with_no_sign_on_a_zero(value: float, spec: str, said: str) -> None:
    """review30c L3: "-0 % relief" (a relief of -0.3 % shown to none of its digits)."""
    assert number(value, spec) == said
