"""The audit row writes the criteria results that several determinations share (a pump, its catheter
and its hardware) once, and splices them in: the text is exactly what writing every determination
whole gives, whatever the determinations hold."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from service.audit_entry import (
    CARD_ONLY,
    SHARED_CRITERIA,
    _determinations_text,
    _json,
    _scrubbed_determinations,
)
from service.cli import _without_card_only
from service.engine.model import Determination
from tests.builders import determine, meeting_chart, modified, procedure


def _shared() -> tuple[Determination, ...]:
    pump = determine(meeting_chart())
    catheter = replace(pump, order_reference="ServiceRequest/catheter", order_label="catheter")
    return pump, catheter, replace(pump, criteria=()), pump


def test_shared_criteria_are_written_as_each_determination_whole() -> None:
    determinations = _shared()
    assert determinations[0].criteria is determinations[1].criteria
    assert _determinations_text(determinations) == _json(determinations, allow_nan=False)
    assert json.loads(_determinations_text(determinations))[1]["criteria"]


def test_a_field_holding_the_stand_in_is_written_whole() -> None:
    pump, catheter, *_ = _shared()
    odd = replace(catheter, explanation=SHARED_CRITERIA, order_label=SHARED_CRITERIA)
    determinations = (pump, odd)
    assert _determinations_text(determinations) == _json(determinations, allow_nan=False)
    assert json.loads(_determinations_text(determinations))[1]["explanation"] == SHARED_CRITERIA


def test_no_determinations_and_a_secret_in_the_shared_criteria() -> None:
    assert _determinations_text(()) == "[]"
    pump, catheter, *_ = _shared()
    secret = pump.criteria[0].finding
    scrubbed = json.loads(_scrubbed_determinations((pump, catheter), [secret]))
    assert all(secret not in json.dumps(d) for d in scrubbed)


def test_the_record_keeps_what_each_result_is_written_for_in_one_order() -> None:
    """A group left with one branch is written for the group's indications and the branch's: the
    service works it out, the policy alone does not say it, so the record keeps it; a set is written
    sorted, the same in every process (UM review 36)."""
    kaiser = determine(meeting_chart(), policy_id="kpwa-implanted-infusion-pumps")
    recorded = json.loads(_determinations_text((kaiser,)))[0]["criteria"]
    pain = next(r for r in recorded if r["id"] == "kpwa.pain")
    assert pain["written_for"] == ["cancer-pain", "non-malignant-pain"]
    assert "label" not in pain and "either_or" not in pain


def test_the_record_keeps_no_card_only_parts_of_a_criterion() -> None:
    """A criterion result's `pending` (the parts of an unsure finding, for its card's words) is not kept:
    the finding the record keeps already says it (wording30b added it to every criterion). The chart's
    pacemaker implant may have been undone by a removal that could not be read, so one result holds it."""
    unread_removal = modified(procedure("33233", "2020-02-02"))
    pump = determine([*meeting_chart(), procedure("33206", "2019-02-02"), unread_removal])
    assert any(r.pending is not None for c in pump.criteria for r in c.walk())
    recorded = json.loads(_determinations_text((pump,)))[0]["criteria"]
    assert recorded and all("pending" not in r for r in _recorded_results(recorded))
    assert any("implant CPT 33206" in r["finding"] for r in _recorded_results(recorded))


def test_the_cli_prints_no_card_only_parts_of_a_criterion_either() -> None:
    """review30j: `idds-crd evaluate --determinations` printed each criterion's `pending`, which the record
    leaves out (CARD_ONLY). The CLI follows the same list; all else is printed as `asdict` gives it."""
    unread_removal = modified(procedure("33233", "2020-02-02"))
    pump = determine([*meeting_chart(), procedure("33206", "2019-02-02"), unread_removal])
    assert any(r.pending is not None for c in pump.criteria for r in c.walk())
    printed = _without_card_only(pump)
    results = _recorded_results(printed["criteria"])
    assert results and all(not set(CARD_ONLY) & set(r) for r in results)
    assert any("implant CPT 33206" in r["finding"] for r in results)
    whole = asdict(pump)
    for result in _recorded_results(whole["criteria"]):
        for name in CARD_ONLY:
            del result[name]
    assert printed == whole


def _recorded_results(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recorded result of a criteria tree, its children's too."""
    return [leaf for r in recorded for leaf in (r, *_recorded_results(r.get("children") or []))]
