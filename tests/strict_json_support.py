"""A decoded JSON document as the service's writers see it, for tests comparing two readings of a body.

The quick reading (`strict_json._quick`) returns a plain float where the careful reading returns a
`DecimalText` of the same value, exactly when every writer here writes the two alike; so two readings
are compared by each number's kind (an integer or not: 1 and 1.0 differ) and the texts every writer
writes it as (-0.0 and 0.0, 2.5 and 2.50 differ), not by the Python type that carries it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from service import strict_json
from service.strict_json import DecimalText, as_written


def written_number(value: float) -> tuple[str, ...]:
    """How each writer writes a number: orjson (`dumps`, the answer, the audit row's columns), `json`'s
    Python writer keeping a decimal's text (`dumps` where orjson cannot write), and `json`'s C writer
    (the audit row's checks): a `DecimalText` by its text in the first two, by its value in the last."""
    return (
        orjson.dumps(value, default=as_written).decode(),
        strict_json._written_by_json(value, False, None),
        json.dumps(value),
    )


def typed(value: Any) -> Any:
    """`value` with each scalar's kind beside it, and each number not an int as `written_number` gives
    it (an integer `-0` is a `DecimalText`, written `-0`)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, float):
        return ("number", *written_number(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return ("int", repr(value))
    return (type(value).__name__, repr(value))


def decimal_texts(value: Any) -> list[str]:
    """Every `DecimalText`'s text in `value`, in order: what the careful reading kept."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in decimal_texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in decimal_texts(item)]
    return [value.text] if type(value) is DecimalText else []
