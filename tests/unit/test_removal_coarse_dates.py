"""A record dated only to a month or a year beside a removal dated within it (review31f L4): the dates cannot
tell which came first, the same uncertainty as an undated record, so whether the device or the pump is in
place is left open ("could not be checked"), and the card names both records with their dates as written
(the lead's decision, s32). Before, overlapping days counted as one day's: a Z95.0 of "2023-02" stood beside
a 33233 of 15 February 2023 ("not covered"), and a 62362 of "2021-02" was undone by a 62365 of 15 February
(a first implant). Two records each dated to the day, on one day, keep review24c's rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cards.items import Episode
from cards.render import detail, summary
from service.engine.model import Outcome
from tests.builders import ICD, condition, determine, finding_of, meeting_chart, procedure, statuses
from tests.calls import sign_with_chart
from tests.conformance import COVERAGE_INFO
from tests.support import sign_body

DEVICE = "geha.excl.programmable-device"
CMM210 = "cmm-210-idds"
CHECK = "check those records in the chart: calling again reads the same"


def pacemaker(when: str) -> dict[str, Any]:
    return condition(ICD, "Z95.0", when, "Presence of cardiac pacemaker")


def pump_adjustment(when: str) -> dict[str, Any]:
    return condition(ICD, "Z45.1", when, "pump adjustment")


def device_said(put_in: dict[str, Any], removed: str) -> str:
    """What GEHA's device criterion makes of `put_in` beside a 33233 dated `removed`."""
    d = determine([*meeting_chart(), put_in, procedure("33233", removed)])
    return {"met": "cleared", "not-met": "in place", "not-documented": "open"}[statuses(d)[DEVICE]]


def pump_said(put_in: dict[str, Any], removed: str) -> str:
    """What CMM-210's pump kind makes of `put_in` beside a 62365 dated `removed`."""
    d = determine([*meeting_chart(), put_in, procedure("62365", removed)], policy_id=CMM210)
    if d.request_kind == "permanent-implant":
        return "cleared"
    return "open" if d.in_place_unsure else "in place"


def read_as(
    cases: list[tuple[str, str, str, str]],
    said: Callable[[dict[str, Any], str], str],
    diagnosis_code: str,
    diagnosis: Callable[[str], dict[str, Any]],
) -> list[tuple[str, str, str, str]]:
    """Each case (code, put in, removed, expected) with what `said` makes of its record (`diagnosis` of
    the day put in for `diagnosis_code`, else a Procedure of its code) beside its removal, in place of
    expected."""
    read = []
    for code, put_in, removed, _ in cases:
        record = diagnosis(put_in) if code == diagnosis_code else procedure(code, put_in)
        read.append((code, put_in, removed, said(record, removed)))
    return read


def test_a_removal_within_the_month_or_year_an_implant_or_diagnosis_is_dated_to_leaves_it_open() -> None:
    """review31f L4's charts, the device check and the pump's kind alike: open where the removal's day may
    fall on either side of the record's, cleared or in place where every day of the two dates says so, and
    one day written to the day still the presence's (review24c)."""
    device_cases = [
        ("Z95.0", "2023-02", "2023-02-15", "open"),
        ("33206", "2023-02", "2023-02-15", "open"),
        ("Z95.0", "2023", "2023-06-15", "open"),
        ("33206", "2023", "2023-06-15", "open"),
        ("Z95.0", "2023-02-15", "2023-02", "open"),
        ("33206", "2023-02-15", "2023-02", "open"),
        ("Z95.0", "2023-02", "2023", "open"),
        # one day each: the presence stands, whatever the hours (review24c)
        ("Z95.0", "2023-02-02", "2023-02-02", "in place"),
        ("33206", "2023-02-02", "2023-02-02T10:00:00Z", "in place"),
        # every day of the removal's month is after the record's, or none is
        ("Z95.0", "2023-01", "2023-02-15", "cleared"),
        ("Z95.0", "2022", "2023-02", "cleared"),
        ("Z95.0", "2023-02-28", "2023-02", "in place"),
    ]
    assert read_as(device_cases, device_said, "Z95.0", pacemaker) == device_cases
    pump_cases = [
        ("Z45.1", "2021-02", "2021-02-15", "open"),
        ("62362", "2021-02", "2021-02-15", "open"),
        ("62362", "2021-02-15", "2021-02", "open"),
        ("62370", "2022-03", "2022", "open"),
        # one day each: an implant and a removal of one day are a replacement, a refill is answered
        ("62362", "2021-02-15", "2021-02-15", "in place"),
        ("62370", "2022-03-15", "2022-03-15", "cleared"),
        # a refill of March answered by a removal on its last day, an implant of February by one in March
        ("62370", "2022-03", "2022-03-31", "cleared"),
        ("62362", "2021-02", "2021-03-01", "cleared"),
    ]
    assert read_as(pump_cases, pump_said, "Z45.1", pump_adjustment) == pump_cases


def test_the_card_names_both_records_with_their_dates_as_written_and_the_dates_as_why() -> None:
    """GEHA, a Z95.0 of "2023-02" and a 33233 of 15 February 2023: was "not covered — documented: Presence
    of cardiac pacemaker (onset February 2023)"; now could not be checked, the line naming the diagnosis by
    its month and the removal by its day, the summary saying the dates are why. CMM-210's 62362 of "2021-02"
    and 62365 of 15 February 2021 was a first implant; now a pump that may be in place, said so."""
    d = determine([*meeting_chart(), pacemaker("2023-02"), procedure("33233", "2023-02-15")])
    assert d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE) == (
        "could not be checked: diagnosis Z95.0 (February 2023), but removal CPT 33233 (15 Feb 2023) may have "
        "come later"
    )
    episode = Episode.of([d])
    assert (
        "- ❔ **“No other implanted programmable device” could not be checked**: diagnosis Z95.0 (February "
        f"2023), but removal CPT 33233 (15 Feb 2023) may have come later — {CHECK}\n" in detail(episode)
    )
    assert summary(episode) == (
        "GEHA: 62362 could not be checked — the chart's dates cannot tell whether a removal came later"
    )
    pump = determine(
        [*meeting_chart(), procedure("62362", "2021-02"), procedure("62365", "2021-02-15")], policy_id=CMM210
    )
    assert pump.request_kind == "replacement"
    assert pump.in_place_unsure == "removal CPT 62365 (15 Feb 2021) may have come later"
    assert (
        "(a pump may be in place: pump implant 62362 in February 2021; the chart's dates cannot tell whether "
        "a later removal took it out)" in detail(Episode.of([pump]))
    )


def coverage_parts(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Every part of the response's coverage-information extensions."""
    return [
        part
        for action in response.get("systemActions", [])
        for ext in action["resource"].get("extension", [])
        if ext.get("url") == COVERAGE_INFO
        for part in ext.get("extension", [])
    ]


def test_the_coverage_information_is_conditional_with_information_needed_not_technical() -> None:
    """Through an order-sign, CRD 2.0.1 and 2.2: as for an undated record, `conditional`, info-needed OTH,
    the reason saying the dates cannot tell, no `technical`; the removal on a later month clears it."""
    chart = [*meeting_chart(), pacemaker("2023-02"), procedure("33233", "2023-02-15")]
    for version in ("2.0", "2.2"):
        body = sign_body()
        body["extension"] = {"davinci-crd.requestedVersion": version}
        _, response = sign_with_chart(chart, body=body)
        parts = coverage_parts(response)
        assert {p["valueCode"] for p in parts if p["url"] == "covered"} == {"conditional"}
        assert {p["valueCode"] for p in parts if p["url"] == "info-needed"} == {"OTH"}
        reasons = [p["valueCodeableConcept"] for p in parts if p["url"] == "reason"]
        assert reasons
        for reason in reasons:
            assert "coding" not in reason  # no `technical`
            assert reason["text"].startswith(
                "GEHA: not checked, the chart's dates cannot tell whether a removal came later, under "
            )
    _, later = sign_with_chart([*chart[:-1], procedure("33233", "2023-03-01")])
    assert {p["valueCode"] for p in coverage_parts(later) if p["url"] == "covered"} == {"covered"}
