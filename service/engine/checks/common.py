"""What several families of test types share: comparators, value-set matching and evidence lines.

Kept apart from the families so that each family module holds only its own test types, and so
that the parameter kinds (`params.py`) can name the comparators without importing a family.
"""

from __future__ import annotations

from collections.abc import Callable

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
