"""The audit record's determinations are written by orjson only where that is proven to be the text
`json` writes (`audit_entry._CheckedWriter`): a number anywhere in them (NaN, which orjson writes as null;
a float orjson spells otherwise) or anything orjson writes its own way, and `json` writes them, as before.
Nothing validates a result's values when it is made: its fields are declared text, flags, dates and
tuples, so the check is the writer's, made on every value it wrote."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import replace
from typing import Any

from service.audit_entry import (
    _CheckedWriter,
    _determinations_text,
    _json_by_json,
    _scrubbed,
    _scrubbed_determinations,
)
from service.engine.model import Determination, Evidence
from service.strict_json import DecimalText
from tests.builders import determine, meeting_chart


def _pump() -> Determination:
    return determine(meeting_chart())


def test_a_pumps_determinations_are_written_by_orjson_as_json_writes_them() -> None:
    pump = _pump()
    catheter = replace(pump, order_reference="ServiceRequest/catheter", order_label="catheter → ü 😀")
    determinations = (pump, catheter, replace(pump, criteria=()))
    written = _CheckedWriter().determinations(determinations)
    assert written is not None
    assert written == _json_by_json(determinations, allow_nan=False)
    assert _determinations_text(determinations) == written


def _with_criterion(pump: Determination, **changes: Any) -> Determination:
    first = replace(pump.criteria[0], **changes)
    return replace(pump, criteria=(first, *pump.criteria[1:]))


def _odd_values(pump: Determination) -> list[Determination]:
    """Determinations holding what no field is declared to: a number, somewhere orjson would write it."""
    leaf = pump.criteria[0]
    evidence = leaf.evidence[0] if leaf.evidence else Evidence("x")
    return [
        _with_criterion(pump, finding=math.nan),
        _with_criterion(pump, finding=math.inf),
        _with_criterion(pump, finding=1e16),  # orjson 1e16, json 1e+16
        _with_criterion(pump, finding=DecimalText("2.50")),
        _with_criterion(pump, evidence=(evidence, math.nan)),
        _with_criterion(pump, evidence=(replace(evidence, reference=math.nan),)),  # type: ignore[arg-type]
        _with_criterion(pump, written_for=frozenset({"a", math.nan})),  # type: ignore[arg-type]
        _with_criterion(pump, children=(replace(leaf, status=math.nan),)),  # type: ignore[arg-type]
        _with_criterion(pump, children=((leaf, math.nan),)),  # type: ignore[arg-type]
        _with_criterion(pump, overruled=[evidence, math.nan]),  # type: ignore[arg-type]
        replace(pump, explanation=math.nan),  # type: ignore[arg-type]
        replace(pump, coverages=(math.nan,)),  # type: ignore[arg-type]
        replace(pump, criteria=(*pump.criteria, math.nan)),  # type: ignore[arg-type]
        replace(pump, criteria=math.nan),  # type: ignore[arg-type]
        replace(pump, payer=uuid.UUID(int=1)),  # type: ignore[arg-type]  (json refuses it, orjson writes it)
        replace(pump, payer={"n": math.nan}),  # type: ignore[arg-type]
    ]


def test_a_number_anywhere_is_left_to_json() -> None:
    """Were the check skipped, orjson would write NaN as null and 1e16 its own way: the row would differ."""
    for odd in _odd_values(_pump()):
        determinations = (odd, odd)
        assert _CheckedWriter().determinations(determinations) is None, odd
        try:
            expected: Any = _scrubbed(determinations, [])
        except TypeError as exc:
            expected = type(exc)
        try:
            got: Any = _scrubbed_determinations(determinations, [])
        except TypeError as exc:
            got = type(exc)
        assert got == expected


def test_nan_in_a_criterion_is_recorded_as_the_text_json_gives_it() -> None:
    odd = _with_criterion(_pump(), finding=math.nan)
    recorded = json.loads(_scrubbed_determinations((odd,), []))
    assert recorded[0]["criteria"][0]["finding"] == "nan"


def test_what_is_not_a_determination_is_left_to_json() -> None:
    pump = _pump()
    assert _CheckedWriter().determinations([pump, pump.criteria[0]]) is None
    assert _CheckedWriter().determinations({"a": 1}) is None
    assert _CheckedWriter().determinations((replace(pump, payer="\ud800"),)) is None  # orjson refuses it


def test_a_result_holding_another_attribute_is_left_to_json() -> None:
    """orjson is given each result's own dict: one holding more than its fields (or them in another
    order) is not, or orjson would write what `_plain` does not."""
    pump = _pump()
    odd = replace(pump.criteria[0])
    object.__setattr__(odd, "extra", 1.5)
    determinations = (replace(pump, criteria=(odd, *pump.criteria[1:])),)
    assert _CheckedWriter().determinations(determinations) is None
    assert _determinations_text(determinations) == _json_by_json(determinations, allow_nan=False)
    assert "extra" not in _determinations_text(determinations)
    reordered = replace(pump.criteria[0])
    fields = dict(vars(reordered))
    vars(reordered).clear()
    vars(reordered).update(reversed(fields.items()))
    determinations = (replace(pump, criteria=(reordered,)),)
    assert _CheckedWriter().determinations(determinations) is None
    assert _determinations_text(determinations) == _json_by_json(determinations, allow_nan=False)
