"""A diagnosis whose onset the chart gives with no date (an onsetAge, an onsetRange, an onsetString, an
onsetPeriod with an end only) stays undated for every rule (contract §3 dates a Condition by onsetDateTime,
onsetPeriod.start or recordedDate only), but a card says the onset the chart gives, not "(undated)"
(review31f L1): "(onset at age 60, no date)", "(onset “childhood”, no date)", the chart's string escaped as
its other words are and bounded."""

from __future__ import annotations

from typing import Any

from cards.items import Episode
from cards.render import detail
from service.engine.model import Outcome
from service.record import dates_cannot_tell
from tests.builders import (
    ICD,
    condition,
    determine,
    finding_of,
    meeting_chart,
    procedure,
    statuses,
    without_codes,
)

DEVICE = "geha.excl.programmable-device"
CMM210 = "cmm-210-idds"
AGE_60 = {"value": 60, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}


def pacemaker(**onset: Any) -> dict[str, Any]:
    """A Z95.0 with no onsetDateTime, its onset as `onset` gives it."""
    resource = condition(ICD, "Z95.0", "2019-02-02", "Presence of cardiac pacemaker")
    resource.pop("onsetDateTime")
    return {**resource, **onset}


def test_the_device_line_says_the_onset_the_chart_gives_where_it_gives_no_date() -> None:
    """review31f L1: an onsetAge of 60, an onsetString, an onsetPeriod with an end only beside a 33233 of
    2023 read "diagnosis Z95.0 (undated), but removal …". Still undated for the rule: could not be checked,
    as for a Z95.0 with no onset at all. (An onsetPeriod ending before the removal's day: the next test.)"""
    said = {
        "onset at age 60, no date": pacemaker(onsetAge=AGE_60),
        "onset at age 6 months, no date": pacemaker(onsetAge={"value": 6, "unit": "mo", "code": "mo"}),
        "onset at age 50-60, no date": pacemaker(onsetRange={"low": {"value": 50}, "high": {"value": 60}}),
        "onset “childhood”, no date": pacemaker(onsetString="childhood"),
        "onset by 2 Feb 2024, no start date": pacemaker(onsetPeriod={"end": "2024-02-02"}),
        "undated": pacemaker(),
        # an Age with no number or no time unit says nothing
        "undated ": pacemaker(onsetAge={"value": "60", "unit": "a"}),
        "undated  ": pacemaker(onsetAge={"value": 60, "unit": "mg"}),
    }
    for words, diagnosis in said.items():
        d = determine([*meeting_chart(), diagnosis, procedure("33233", "2023-02-02")])
        assert d.outcome == Outcome.INSUFFICIENT and statuses(d)[DEVICE] == "not-documented", words
        assert finding_of(d, DEVICE) == (
            f"could not be checked: diagnosis Z95.0 ({words.strip()}), but removal CPT 33233 (2 Feb 2023) "
            "may have come later"
        )


def test_a_removal_after_an_onset_periods_end_came_after_the_onset_and_the_diagnosis_stays_undated() -> None:
    """review32b L3: a Z95.0 whose onsetPeriod has an end only, beside a 33233 on a later day, read "(onset by
    February 2019, no start date), but removal CPT 33233 (2 Feb 2023) may have come later", where the period
    shows the removal came after the onset. Contract §3 dates a Condition by onsetDateTime, onsetPeriod.start
    or recordedDate only, so the diagnosis stays undated and the verdict could not be checked, as for an
    onsetAge; the line says why. A removal on the end's day, or in its month or year, or before it, may
    still have come later."""
    after, may = (
        "came after the onset, which has no start date",
        "may have come later",
    )
    cases = [
        ("2019-02-02", "2023-02-02", "onset by 2 Feb 2019, no start date", "2 Feb 2023", after),
        ("2019", "2023-02-02", "onset by 2019, no start date", "2 Feb 2023", after),
        ("2019-02", "2019-03-01", "onset by February 2019, no start date", "1 Mar 2019", after),
        (
            "2019-02-02T23:30:00-05:00",
            "2019-02-03",
            "onset by 2 Feb 2019, no start date",
            "3 Feb 2019",
            after,
        ),
        ("2023-02-02", "2023-02-02", "onset by 2 Feb 2023, no start date", "2 Feb 2023", may),
        ("2023-02", "2023-02-02", "onset by February 2023, no start date", "2 Feb 2023", may),
        ("2023", "2023-12-31", "onset by 2023, no start date", "31 Dec 2023", may),
        ("2024-02-02", "2023-02-02", "onset by 2 Feb 2024, no start date", "2 Feb 2023", may),
    ]
    undated = determine([*meeting_chart(), pacemaker(onsetAge=AGE_60), procedure("33233", "2023-02-02")])
    for end, removed, onset, day, why in cases:
        d = determine([*meeting_chart(), pacemaker(onsetPeriod={"end": end}), procedure("33233", removed)])
        assert d.outcome == undated.outcome == Outcome.INSUFFICIENT and statuses(d) == statuses(undated), end
        line = f"diagnosis Z95.0 ({onset}), but removal CPT 33233 ({day}) {why}"
        assert finding_of(d, DEVICE) == f"could not be checked: {line}", end
        assert line in detail(Episode.of([d])), end


def test_the_pumps_line_says_a_removal_came_after_an_onset_period_end_and_stays_open() -> None:
    """The same for the pump's kind (CMM-210): a Z45.1 whose onsetPeriod ends before a 62365 is open as an
    undated one is (a replacement may or may not be due), its line saying the removal came after the onset,
    and it is still the dates that cannot tell (coverage information's `conditional`, not `technical`)."""
    z451 = condition(ICD, "Z45.1", "2020-02-02", "pump adjustment")
    z451.pop("onsetDateTime")
    removal = procedure("62365", "2021-02-02")
    pump = determine(
        [*meeting_chart(), {**z451, "onsetPeriod": {"end": "2020-02"}}, removal], policy_id=CMM210
    )
    undated = determine([*meeting_chart(), {**z451, "onsetAge": AGE_60}, removal], policy_id=CMM210)
    assert pump.in_place_unsure == (
        "removal CPT 62365 (2 Feb 2021) came after the onset, which has no start date"
    )
    assert dates_cannot_tell(pump.in_place_unsure)
    assert (pump.outcome, pump.request_kind, statuses(pump)) == (
        undated.outcome,
        undated.request_kind,
        statuses(undated),
    )


def test_the_documented_line_and_the_pump_line_say_it_too() -> None:
    """The ❌ line of the same diagnosis with no removal ("documented: Presence of cardiac pacemaker
    (undated)"), and the pump's verdict line of a Z45.1 of onsetAge 60 beside a 62365 of 2021."""
    d = determine([*meeting_chart(), pacemaker(onsetAge=AGE_60)])
    assert finding_of(d, DEVICE) == "documented: Presence of cardiac pacemaker (onset at age 60, no date)"
    z451 = condition(ICD, "Z45.1", "2020-02-02", "pump adjustment")
    z451.pop("onsetDateTime")
    pump = determine(
        [*meeting_chart(), {**z451, "onsetAge": AGE_60}, procedure("62365", "2021-02-02")], policy_id=CMM210
    )
    assert pump.in_place_unsure == "removal CPT 62365 (2 Feb 2021) may have come later"
    assert (
        "(a pump may be in place: diagnosis Z45.1 (onset at age 60, no date); the chart's dates cannot tell "
        "whether a later removal took it out)" in detail(Episode.of([pump]))
    )


def test_the_charts_onset_string_is_escaped_and_bounded_on_the_card() -> None:
    """The onsetString is the chart's words: the card escapes them as it does a diagnosis's display, on one
    line, and quotes at most 30 characters of them."""
    d = determine(
        [*meeting_chart(), pacemaker(onsetString="*early*\nchildhood <b>"), procedure("33233", "2023")]
    )
    assert "diagnosis Z95.0 (onset “\\*early\\* childhood \\<b>”, no date)" in detail(Episode.of([d]))
    long = determine(
        [*meeting_chart(), pacemaker(onsetString="since the first years of primary school, per mother")]
    )
    assert finding_of(long, DEVICE) == (
        "documented: Presence of cardiac pacemaker (onset “since the first years of…”, no date)"
    )


def test_the_duration_line_says_the_onset_the_chart_gives_not_that_there_is_none() -> None:
    """review32b: a chronic pain diagnosis with an onsetAge, an onsetString or an onsetPeriod with an end only
    and no recorded date read "diagnosis has no onset or recorded date", where the chart shows an onset
    ("Onset: age 60"). Still undated for the duration (contract §3: not documented); the card says the onset
    the chart gives, escaped; a diagnosis with no onset at all keeps its words."""
    duration = "geha.chronic-pain.duration-6mo"
    postlaminectomy = condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome")
    postlaminectomy.pop("onsetDateTime")
    said = {
        "diagnosis has no date to count from (onset at age 60, no date)": {"onsetAge": AGE_60},
        "diagnosis has no date to count from (onset “after surgery”, no date)": {
            "onsetString": "after surgery"
        },
        "diagnosis has no date to count from (onset by 2 Feb 2019, no start date)": {
            "onsetPeriod": {"end": "2019-02-02"}
        },
        "diagnosis has no onset or recorded date": {},
    }
    for words, onset in said.items():
        d = determine([*without_codes(meeting_chart(), "M96.1"), {**postlaminectomy, **onset}])
        assert statuses(d)[duration] == "not-documented", words
        assert finding_of(d, duration) == words
    d = determine(
        [*without_codes(meeting_chart(), "M96.1"), {**postlaminectomy, "onsetString": "*since* <b>"}]
    )
    assert "diagnosis has no date to count from (onset “\\*since\\* \\<b>”, no date)" in detail(
        Episode.of([d])
    )


def test_an_onset_range_in_two_units_says_each_with_its_unit() -> None:
    """review32b: an onsetRange from 6 months to 2 years read "onset at age 6 months-2, no date", the
    upper bound with no unit; each is said with its own unit where they differ, a range in years alone
    stays "50-60"."""
    months, years = {"value": 6, "unit": "mo", "code": "mo"}, {"value": 2, "unit": "a", "code": "a"}
    said = {
        "onset at age 6 months-2 years, no date": {"low": months, "high": years},
        "onset at age 1 year-18 months, no date": {
            "low": {"value": 1, "code": "a"},
            "high": {"value": 18, "code": "mo"},
        },
        "onset at age 6 months-9 months, no date": {"low": months, "high": {"value": 9, "code": "mo"}},
        "onset at age 50-60, no date": {"low": {"value": 50, "code": "a"}, "high": {"value": 60}},
    }
    for words, onset_range in said.items():
        d = determine([*meeting_chart(), pacemaker(onsetRange=onset_range), procedure("33233", "2023-02-02")])
        assert finding_of(d, DEVICE) == (
            f"could not be checked: diagnosis Z95.0 ({words}), but removal CPT 33233 (2 Feb 2023) "
            "may have come later"
        )
