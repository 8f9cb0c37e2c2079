"""A trial under way (its Procedure in progress, on hold or in preparation): no evidence that any
criterion is met (clinical-data-contract.md §3 counts a completed Procedure), but a trial coming, so
no second trial is proposed beside it and what it is to show reads as awaited (review21b M2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.engine.model import Status
from service.fhirdates import human_date
from service.record import build_record
from tests.builders import (
    PATIENT,
    SCT,
    cards_of,
    catalog,
    codes_of,
    determine,
    meeting_chart,
    procedure,
    without_codes,
)
from tests.calls import sample, sign_with_chart

# the chart meeting every GEHA criterion without its trial and the trial's results
NO_TRIAL = without_codes(meeting_chart(), "62324", "it-trial-side-effects", "it-trial-patient-acceptance")
SELECT = "order-select-62362-demo-meets"


def _day(days: int) -> datetime:
    """Nine in the morning (UTC), `days` after the call's day; before it when negative."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


def _trial(status: str, days: int = -1, code: str = "62324") -> dict[str, Any]:
    return procedure(code, _day(days).isoformat().replace("+00:00", "Z"), status=status)


def _text(answer: dict[str, Any]) -> str:
    return "\n".join(c.get("detail") or "" for c in answer["cards"])


def _proposed(answer: dict[str, Any]) -> bool:
    return any("suggestions" in c for c in answer["cards"])


@pytest.mark.parametrize(
    ("status", "lead"),
    [
        ("in-progress", "Trial under way (CPT 62324, since {day})"),
        ("on-hold", "Trial under way (CPT 62324, since {day}, on hold)"),
        ("preparation", "Trial in preparation (CPT 62324, {day})"),
    ],
)
@pytest.mark.parametrize("hook", [SELECT, "order-sign-implant-demo-meets"])
def test_a_trial_under_way_is_not_proposed_again_and_its_results_are_awaited(
    status: str, lead: str, hook: str
) -> None:
    """review21b M2: with the trial's Procedure in progress (a days-long catheter trial), the implant's
    order-select and order-sign proposed "Order the trial first (CPT 62322 or 62326)", a second trial
    beside the one running: the record read completed Procedures only."""
    days = 2 if status == "preparation" else -1
    _, answer = sign_with_chart([*NO_TRIAL, _trial(status, days)], body=sample(hook))
    text = _text(answer)
    assert not _proposed(answer) and "Order the trial first" not in text, text
    words = lead.format(day=human_date(_day(days)))
    [decision] = cards_of(answer["cards"])
    lines = [line for line in decision["detail"].splitlines() if "**D. " in line]
    assert len(lines) == 3 and f"— {words}: once done, document the trial" in lines[0], lines
    assert all("— after the trial, " in line for line in lines[1:]), lines
    [listing] = [c for c in cards_of(answer["cards"], "clinical-reminder") if "suggestions" not in c]
    said = f"{words}; once the trial is done:\n   - D. Trial relief >= 50 %: Document the trial"
    assert "**Order**" not in listing["detail"] and said in listing["detail"], listing["detail"]


def test_a_trial_under_way_is_no_evidence_that_a_criterion_is_met() -> None:
    """Contract §3: a Procedure counts when completed. The meeting chart's trial, with its scores
    showing 62 % relief around it, read in progress: the trial criterion is not documented, as with no
    trial at all, and the finding says no completed trial is on the chart."""
    chart = [
        {**r, "status": "in-progress"}
        if r.get("resourceType") == "Procedure" and "62324" in codes_of(r)
        else r
        for r in meeting_chart()
    ]
    d = determine(chart)
    [relief] = [r for top in d.criteria for r in top.walk() if r.id == "geha.trial.relief-ge50"]
    assert relief.status == Status.NOT_DOCUMENTED, relief
    record = build_record(PATIENT, _by_type(chart), catalog().terminology)
    assert record.trial.procedure is None and [p.status for p in record.trials_under_way] == ["in-progress"]
    assert all("62324" not in {c.code for c in p.codes} for p in record.procedures)
    assert record.trial.reason == "no completed intrathecal trial (CPT 62320-62327)"


@pytest.mark.parametrize("status", ["stopped", "not-done", "entered-in-error", "unknown"])
def test_a_trial_stopped_or_not_done_is_no_trial_coming(status: str) -> None:
    """FHIR R4 EventStatus: `stopped` was terminated, `not-done` never began; neither is a trial coming,
    so the trial is proposed as with none on the chart."""
    _, answer = sign_with_chart([*NO_TRIAL, _trial(status)], body=sample(SELECT))
    assert _proposed(answer) and "Order the trial first (CPT 62322 or 62326): once done" in _text(answer)


def test_a_trial_left_in_progress_for_months_is_no_trial_coming() -> None:
    """As an open trial order (`trial_ordered_days`, 90): a trial "in progress" since long before is a
    record never closed, not a trial coming."""
    _, answer = sign_with_chart([*NO_TRIAL, _trial("in-progress", -120)], body=sample(SELECT))
    assert _proposed(answer)
    assert "yet" not in _text(answer)  # review22b L3: "no completed trial yet" beside ordering one anew
    _, answer = sign_with_chart([*NO_TRIAL, _trial("in-progress", -80)], body=sample(SELECT))
    assert not _proposed(answer)


def test_a_trial_under_way_is_named_by_its_cpt_code_whatever_its_first_coding() -> None:
    """A Procedure its EHR codes in SNOMED first and CPT 62326 second is named by the trial code, as an
    order is (session review s18 R-3)."""
    trial = _trial("in-progress", code="62326")
    trial["code"]["coding"].insert(0, {"system": SCT, "code": "425774008", "display": "Intrathecal infusion"})
    _, answer = sign_with_chart([*NO_TRIAL, trial], body=sample(SELECT))
    assert not _proposed(answer)
    assert f"Trial under way (CPT 62326, since {human_date(_day(-1))}): once done" in _text(answer)


def test_a_trial_under_way_is_named_before_the_order_it_may_carry_out() -> None:
    """With the trial ordered and its Procedure begun, the items name the trial under way (further on
    than the order)."""
    order = {
        "resourceType": "ServiceRequest",
        "id": "trial-order",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62324"}]},
        "authoredOn": _day(-3).date().isoformat(),
    }
    _, answer = sign_with_chart([*NO_TRIAL, order, _trial("in-progress")], body=sample(SELECT))
    text = _text(answer)
    assert "Trial under way (CPT 62324, since" in text and "Trial already ordered" not in text, text


def test_a_trial_under_way_that_cannot_be_read_leaves_the_procedures_readable() -> None:
    """A trial under way is evidence of nothing: one carrying a modifier extension this service does not
    understand (it may say the trial is not one) is left out alone, not counted among Procedures that
    could not be read (which would leave every procedure criterion unchecked)."""
    broken = {
        **_trial("in-progress"),
        "modifierExtension": [{"url": "http://example.org/x", "valueBoolean": True}],
    }
    record = build_record(PATIENT, _by_type([*meeting_chart(), broken]), catalog().terminology)
    assert "Procedure" not in record.unavailable and record.trials_under_way == ()


def _by_type(chart: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in chart:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


@pytest.mark.parametrize("policy", ["kpwa-implanted-infusion-pumps", "cms-ncd-280-14"])
@pytest.mark.parametrize(("status", "said"), [("in-progress", "in progress"), ("on-hold", "on hold")])
def test_a_catheter_trial_under_way_is_named_not_completed_where_a_criterion_asks_for_one(
    policy: str, status: str, said: str
) -> None:
    """review22b M1: KPWA 3.g and NCD 280.14 ask for a catheter trial (`procedure-history`, `trials`);
    with the 62324 trial in progress their finding read "no catheter trial (CPT 62324-62327) found" on
    the very line naming "Trial under way (CPT 62324, since …)". Still no evidence (contract §3)."""
    d = determine([*NO_TRIAL, procedure("62324", "2026-12-05T09:00:00Z", status=status)], policy_id=policy)
    [catheter] = [
        r for top in d.criteria for r in top.walk() if not r.children and "catheter trial (CPT" in r.finding
    ]
    assert catheter.status == Status.NOT_DOCUMENTED and not catheter.evidence, catheter
    assert catheter.finding.endswith(f"; CPT 62324 (5 Dec 2026) is {said}, not completed"), catheter.finding
