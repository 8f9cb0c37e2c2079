"""The existing pump's state in two forms (contract §3 "Several forms of one fact", §5; contract23 Q2): the
`device-status` assessment (functional, end-of-battery, failed, impending-failure-alert, ...) and the
`replacement-reason` assessment (end-of-battery, malfunction, impending-failure-alert, ...) both say
whether the pump being replaced still works. When they disagree, the most recent documented one
decides: a "functional" interrogation a year old does not exclude a replacement ordered today for the
end of the battery (CMM-210's "remain functional" exclusion), and a pump recorded as functional
yesterday is not "not functioning" because an older replacement reason said it was (Cohere's three
replacement blocks). Black-box: order-sign calls, read from the coverage card."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ASSESS,
    HCPCS,
    PUMP_IN_PLACE,
    assessment,
    baclofen_request,
    concept,
    infusate_request,
    meeting_chart,
    payer_coverage,
)
from tests.contract_support import MET, NOT_MET, call, days_ago, device_request, mark_of, marks, verdict
from tests.policy_charts import cancer_chart, kpwa_spasticity_chart

MEETS = "Meets the criteria"
NOT_IF_FUNCTIONAL = "Not a replacement of a functional pump"
NOT_FUNCTIONING = "Device not functioning"


def answer(code: str, value: str, days: int) -> dict[str, Any]:
    """A `device-status` or `replacement-reason` assessment recorded `days` ago."""
    return assessment(code, days_ago(days), valueCodeableConcept=concept(ASSESS, value))


def replacement(payer: str, chart: list[dict[str, Any]], *state: dict[str, Any], drug: Any = None) -> Any:
    """`payer`'s answer to a replacement pump (HCPCS E0786) over the pump in place, on `chart`."""
    evidence = [PUMP_IN_PLACE, assessment("device-abuse-neglect", valueBoolean=False), *state]
    orders = [device_request("E0786", HCPCS), drug or infusate_request()]
    return call([*chart, *evidence], *orders, coverage=payer_coverage(payer))


@pytest.mark.parametrize("reason", ["end-of-battery", "malfunction", "impending-failure-alert"])
def test_cmm210_a_newer_failing_reason_outweighs_an_older_functional_status(reason: str) -> None:
    """CMM-210.5 "not medically necessary when the existing infusion pump ... remain functional":
    the pump recorded functional 400 days ago, the replacement ordered today for `reason`."""
    found = replacement(
        "cmm210",
        meeting_chart(),
        answer("device-status", "functional", 400),
        answer("replacement-reason", reason, 2),
    )
    assert mark_of(found, NOT_IF_FUNCTIONAL) == MET, marks(found)
    assert verdict(found) == MEETS


def test_cmm210_end_of_battery_and_functional_on_one_day_meet() -> None:
    """CMM-210.5 covers a replacement for a pump "documented nearing end of battery life", which still
    runs: an interrogation recording it "functional" on the day the replacement is ordered for the end of
    its battery does not make it a replacement of a functional pump (review23c L3: "Not covered as
    ordered")."""
    found = replacement(
        "cmm210",
        meeting_chart(),
        answer("device-status", "functional", 2),
        answer("replacement-reason", "end-of-battery", 2),
    )
    assert mark_of(found, NOT_IF_FUNCTIONAL) == MET, marks(found)
    assert verdict(found) == MEETS


def test_cmm210_a_newer_functional_status_still_excludes() -> None:
    """The other way round: recorded functional after the reason was given, the exclusion holds."""
    found = replacement(
        "cmm210",
        meeting_chart(),
        answer("replacement-reason", "end-of-battery", 60),
        answer("device-status", "functional", 2),
    )
    assert mark_of(found, NOT_IF_FUNCTIONAL) == NOT_MET


def test_cmm210_a_functional_status_alone_excludes_and_none_recorded_is_met() -> None:
    """The single forms unchanged: "functional" alone excludes; nothing recorded is met (absence)."""
    alone = replacement("cmm210", meeting_chart(), answer("device-status", "functional", 2))
    assert mark_of(alone, NOT_IF_FUNCTIONAL) == NOT_MET
    nothing = replacement("cmm210", meeting_chart(), answer("replacement-reason", "end-of-battery", 2))
    assert mark_of(nothing, NOT_IF_FUNCTIONAL) == MET


COHERE_BLOCKS = [
    pytest.param(meeting_chart, None, id="non-malignant-pain"),
    pytest.param(cancer_chart, None, id="cancer-pain"),
    pytest.param(kpwa_spasticity_chart, baclofen_request(), id="spasticity"),
]


@pytest.mark.parametrize(("chart", "drug"), COHERE_BLOCKS)
def test_cohere_a_newer_functional_status_outweighs_an_older_malfunction(chart: Any, drug: Any) -> None:
    """Cohere "The device is not functioning": a malfunction given as the reason 60 days ago, the
    pump recorded functional two days ago: the most recent form says it works."""
    found = replacement(
        "cohere",
        chart(),
        answer("replacement-reason", "malfunction", 60),
        answer("device-status", "functional", 2),
        drug=drug,
    )
    assert mark_of(found, NOT_FUNCTIONING) == NOT_MET, marks(found)
    assert verdict(found) != MEETS


@pytest.mark.parametrize(("chart", "drug"), COHERE_BLOCKS)
def test_cohere_a_newer_malfunction_outweighs_an_older_functional_status(chart: Any, drug: Any) -> None:
    found = replacement(
        "cohere",
        chart(),
        answer("device-status", "functional", 400),
        answer("replacement-reason", "end-of-battery", 2),
        drug=drug,
    )
    assert mark_of(found, NOT_FUNCTIONING) == MET, marks(found)
    assert verdict(found) == MEETS


@pytest.mark.parametrize(("chart", "drug"), COHERE_BLOCKS)
def test_cohere_end_of_battery_and_functional_on_one_day_meet(chart: Any, drug: Any) -> None:
    """Cohere names end of battery life among the rationales of "the device is not functioning"
    (seed: "e.g., pump interrogation report, ..., end of battery life"): an interrogation recording
    the pump still running ("functional") on the day the replacement is ordered for the end of its
    battery does not contradict it (review23c: since eefa10d, the same-day tie's "not met first" made
    the criterion not met, where the two `any:` branches met it before)."""
    found = replacement(
        "cohere",
        chart(),
        answer("device-status", "functional", 2),
        answer("replacement-reason", "end-of-battery", 2),
        drug=drug,
    )
    assert mark_of(found, NOT_FUNCTIONING) == MET, marks(found)
    assert verdict(found) == MEETS
