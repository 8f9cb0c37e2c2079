"""A removal and the implant it would undo whose dates cannot tell which came first (either one undated):
the removal neither clears the implant nor is passed over; whether the device or pump is in place is left
open, as it is for a removal that could not be read, and the card says why (the lead's decision, s31, of
review30a L2). One rule for the pump's kind and the device check (service/engine/removals.py). Also
review30a L1: every removal left out is weighed, not only the latest by the instant."""

from __future__ import annotations

from typing import Any

from cards.items import Episode
from cards.render import detail, summary
from service.engine.model import Outcome
from service.record import build_record
from tests.builders import (
    ICD,
    catalog,
    condition,
    determine,
    finding_of,
    meeting_chart,
    modified,
    procedure,
    statuses,
)
from tests.calls import sign_with_chart
from tests.conformance import COVERAGE_INFO
from tests.support import sign_body

DEVICE = "geha.excl.programmable-device"
CMM210 = "cmm-210-idds"
CHECK = "check those records in the chart: calling again reads the same"


def undated(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` with no date: a Procedure without `performedDateTime`, a Condition without onset."""
    return {k: v for k, v in resource.items() if k not in ("performedDateTime", "onsetDateTime")}


def test_a_removal_read_with_no_date_leaves_the_device_open_and_the_card_says_why() -> None:
    """review30a L2: GEHA, a 2019 pacemaker implant and a 33233 removal read with no date was "Not covered —
    documented: implant CPT 33206", the removal never mentioned, where the same removal left out read "could
    not be checked". Now the same: the dates cannot tell whether the removal came after, so the criterion
    could not be checked, and the line says the removal is undated. A dated one after the implant still
    clears it, beside the undated one too; one before it still leaves the implant documented."""
    implant = procedure("33206", "2019-02-02")
    d = determine([*meeting_chart(), implant, undated(procedure("33233", "2020-02-02"))])
    assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE) == (
        "could not be checked: implant CPT 33206 (2 Feb 2019), but removal CPT 33233 (undated) may have come "
        "later"
    )
    episode = Episode.of([d])
    assert (
        "- ❔ **“No other implanted programmable device” could not be checked**: implant CPT 33206 (2 Feb "
        f"2019), but removal CPT 33233 (undated) may have come later — {CHECK}\n" in detail(episode)
    )
    assert summary(episode) == (
        "GEHA: 62362 could not be checked — the chart's dates cannot tell whether a removal came later"
    )
    later = procedure("33233", "2020-02-02")
    assert statuses(determine([*meeting_chart(), implant, later]))[DEVICE] == "met"
    both = determine([*meeting_chart(), implant, later, undated(procedure("33233", "2020-02-02"))])
    assert statuses(both)[DEVICE] == "met" and both.outcome == Outcome.MEETS
    before = determine([*meeting_chart(), implant, procedure("33233", "2010-02-02")])
    assert statuses(before)[DEVICE] == "not-met"


def test_an_undated_device_implant_is_not_undone_by_a_dated_removal_nor_stands_beside_one() -> None:
    """review30a L2: an undated implant was undone by any dated removal read in the device check (met,
    covered), where the pump's undated implant was undone by none. Neither date tells which came first:
    could not be checked, the implant named undated and the removal by its day. Alone, it is documented."""
    implant = undated(procedure("33206", "2019-02-02"))
    d = determine([*meeting_chart(), implant, procedure("33233", "2021-02-02")])
    assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE) == (
        "could not be checked: implant CPT 33206 (undated), but removal CPT 33233 (2 Feb 2021) may have come "
        "later"
    )
    assert statuses(determine([*meeting_chart(), implant]))[DEVICE] == "not-met"


def test_an_undated_pump_implant_is_left_open_by_a_dated_removal() -> None:
    """review30a L2: an undated 62362 with a 62365 read in 2021 stayed a sure replacement (classify
    `_removed_later` passed an undated implant over). It is read as a replacement still, but the card says
    the pump may be in place, and CMM-210 asks first whether it is, saying why. Alone, it is in place."""
    chart = [*meeting_chart(), undated(procedure("62362", "2019-02-02"))]
    d = determine([*chart, procedure("62365", "2021-02-02")], policy_id=CMM210)
    assert d.request_kind == "replacement"
    assert d.in_place_unsure == "removal CPT 62365 (2 Feb 2021) may have come later"
    assert d.outcome == Outcome.INSUFFICIENT
    text = detail(Episode.of([d]))
    assert (
        "**Whether the pump is still in place**: removal CPT 62365 (2 Feb 2021) may have come later — "
        f"{CHECK}; if it was removed, CMM-210 judges this order by other criteria"
    ) in text
    sure = determine(chart, policy_id=CMM210)
    assert sure.request_kind == "replacement" and not sure.in_place_unsure


def test_a_pump_removal_read_with_no_date_leaves_the_pump_open() -> None:
    """A 62362 of 2020 and a 62365 read with no date: the 62365 was passed over (a sure replacement), where
    one left out left the kind open. A dated 62365 after it still makes the order a first implant, beside
    the undated one too; a refill is left open by an undated removal as an implant is."""
    pump = [*meeting_chart(), procedure("62362", "2020-02-02")]
    d = determine([*pump, undated(procedure("62365", "2021-02-02"))], policy_id=CMM210)
    assert d.request_kind == "replacement" and d.in_place_unsure == (
        "removal CPT 62365 (undated) may have come later"
    )
    assert "a pump may be in place: pump implant 62362 on 2 Feb 2020" in detail(Episode.of([d]))
    gone = [*pump, procedure("62365", "2021-02-02"), undated(procedure("62365", "2021-02-02"))]
    assert determine(gone).request_kind == "permanent-implant"
    refill = [*meeting_chart(), procedure("62370", "2021-02-02"), undated(procedure("62365", "2021-02-02"))]
    assert determine(refill).in_place_unsure == "removal CPT 62365 (undated) may have come later"


def test_the_pump_and_the_device_weigh_a_removal_by_one_rule() -> None:
    """The same dates give the same answer to both: a removal on a later day clears the implant (the device
    criterion met, the order a first implant), one on an earlier day leaves it in place, and either date
    missing leaves it open (could not be checked, a pump that may be in place)."""
    cases = {
        ("2019-02-02", "2020-02-02"): "cleared",
        ("2019-02-02", "2018-02-02"): "in place",
        (None, "2020-02-02"): "open",
        ("2019-02-02", None): "open",
        (None, None): "open",
    }
    for (put_in, removed), expected in cases.items():

        def dated(code: str, when: str | None) -> dict[str, Any]:
            return procedure(code, when) if when else undated(procedure(code, "2000-01-01"))

        device = determine([*meeting_chart(), dated("33206", put_in), dated("33233", removed)])
        pump = determine([*meeting_chart(), dated("62362", put_in), dated("62365", removed)])
        device_said = {"met": "cleared", "not-met": "in place", "not-documented": "open"}[
            statuses(device)[DEVICE]
        ]
        pump_said = (
            "cleared"
            if pump.request_kind == "permanent-implant"
            else "open"
            if pump.in_place_unsure
            else "in place"
        )
        assert (device_said, pump_said) == (expected, expected), (put_in, removed)


PACEMAKER = "Presence of cardiac pacemaker"


def test_an_undated_presence_diagnosis_beside_a_dated_removal_is_left_open_and_names_the_removal() -> None:
    """review31a M2 (the lead's decision, option a): GEHA with an undated Z95.0 and a 33233 read in 2023 was
    met before s31 (dated beat undated), then "not covered" with the removal never named. The dates cannot
    tell which came first: could not be checked, as for an implant Procedure, and the card names the
    removal. A removal read on a later day than a dated Z95.0 still clears it; one on an earlier day does
    not."""
    pacemaker = undated(condition(ICD, "Z95.0", "2019-02-02", PACEMAKER))
    d = determine([*meeting_chart(), pacemaker, procedure("33233", "2023-02-02")])
    assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE) == (
        "could not be checked: diagnosis Z95.0 (undated), but removal CPT 33233 (2 Feb 2023) may have come "
        "later"
    )
    episode = Episode.of([d])
    assert (
        "- ❔ **“No other implanted programmable device” could not be checked**: diagnosis Z95.0 (undated), "
        f"but removal CPT 33233 (2 Feb 2023) may have come later — {CHECK}\n" in detail(episode)
    )
    assert summary(episode) == (
        "GEHA: 62362 could not be checked — the chart's dates cannot tell whether a removal came later"
    )
    kpwa_chart = [*meeting_chart(), pacemaker, procedure("33233", "2023-02-02")]
    kpwa = determine(kpwa_chart, policy_id="kpwa-implanted-infusion-pumps")
    assert statuses(kpwa)["kpwa.ci.programmable-device"] == "not-documented"
    dated = condition(ICD, "Z95.0", "2019-02-02", PACEMAKER)
    later = determine([*meeting_chart(), dated, procedure("33233", "2023-02-02")])
    earlier = determine([*meeting_chart(), dated, procedure("33233", "2010-02-02")])
    assert (statuses(later)[DEVICE], statuses(earlier)[DEVICE]) == ("met", "not-met")


def test_a_dated_presence_diagnosis_beside_an_undated_removal_is_left_open() -> None:
    """review31a M2: a Z95.0 of 2019 beside a 33233 read with no date stood as written (not covered); the
    removal may have come later, so it is left open, as an implant of 2019 is."""
    dated = condition(ICD, "Z95.0", "2019-02-02", PACEMAKER)
    d = determine([*meeting_chart(), dated, undated(procedure("33233", "2023-02-02"))])
    assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE) == (
        "could not be checked: diagnosis Z95.0 (2 Feb 2019), but removal CPT 33233 (undated) may have come "
        "later"
    )


def test_a_presence_diagnosis_beside_a_later_removal_that_could_not_be_read_is_left_open() -> None:
    """review31a M2: a removal left out of the record (a modifier extension) that may be later leaves a
    Z95.0 open as it leaves an implant (it stood as written: not covered); one dated before it does not."""
    dated = condition(ICD, "Z95.0", "2019-02-02", PACEMAKER)
    d = determine([*meeting_chart(), dated, modified(procedure("33233", "2023-02-02"))])
    assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    assert finding_of(d, DEVICE).startswith(
        "could not be checked: diagnosis Z95.0 (2 Feb 2019), but some of the EHR's later removals could not "
        "be read"
    )
    earlier = determine([*meeting_chart(), dated, modified(procedure("33233", "2010-02-02"))])
    assert statuses(earlier)[DEVICE] == "not-met"


def test_an_undated_pump_diagnosis_beside_a_dated_removal_leaves_the_pump_open() -> None:
    """review31a M2: an undated Z45.1 with a 62365 read in 2021 was a sure replacement, where an undated
    62362 beside it is left open: now the same, the card asking first whether the pump is in place. A
    Z45.1 dated after the 62365 still shows the pump (a sure replacement); one dated before it does not."""
    pump = undated(condition(ICD, "Z45.1", "2019-02-02"))
    d = determine([*meeting_chart(), pump, procedure("62365", "2021-02-02")], policy_id=CMM210)
    assert d.request_kind == "replacement"
    assert d.in_place_unsure == "removal CPT 62365 (2 Feb 2021) may have come later"
    assert "a pump may be in place: diagnosis Z45.1" in detail(Episode.of([d]))
    later = condition(ICD, "Z45.1", "2022-02-02")
    sure = determine([*meeting_chart(), later, procedure("62365", "2021-02-02")], policy_id=CMM210)
    assert sure.request_kind == "replacement" and not sure.in_place_unsure
    earlier = condition(ICD, "Z45.1", "2020-02-02")
    gone = determine([*meeting_chart(), earlier, procedure("62365", "2021-02-02")], policy_id=CMM210)
    assert gone.request_kind == "permanent-implant"


def test_every_removal_left_out_is_weighed_not_only_the_latest_by_the_instant() -> None:
    """review30a L1: the record kept one removal left out per code, the latest by the instant, and the rule
    weighed it by the day: a 62362 of 10 May with a modified 62365 at 08:00Z on 11 May was left open, but
    adding a second one at 23:00-10:00 on 10 May (09:00Z on 11 May, later by the instant, its own day the
    implant's) made the pump sure. Each is kept and weighed."""
    first = modified(procedure("62365", "2021-05-11T08:00:00Z"))
    second = modified(procedure("62365", "2021-05-10T23:00:00-10:00"))
    chart = [*meeting_chart(), procedure("62362", "2021-05-10")]
    assert determine([*chart, first]).in_place_unsure
    assert determine([*chart, first, second]).in_place_unsure
    by_type: dict[str, list[dict[str, Any]]] = {"Procedure": [first, second]}
    kept = build_record("p1", by_type, catalog().terminology).removals_left_out["62365"]
    assert sorted(str(when) for when, _ in kept) == ["2021-05-10 23:00:00-10:00", "2021-05-11 08:00:00+00:00"]


def coverage_codes(response: dict[str, Any]) -> set[str]:
    """Every `covered` code the response's coverage-information extensions carry."""
    return {
        part.get("valueCode", "")
        for action in response.get("systemActions", [])
        for ext in action["resource"].get("extension", [])
        if ext.get("url") == COVERAGE_INFO
        for part in ext.get("extension", [])
        if part.get("url") == "covered"
    }


def test_through_the_api_a_removal_read_with_no_date_is_could_not_be_checked_not_not_covered() -> None:
    """The same through an order-sign against a FHIR server holding the chart: the card says why, and the
    orders' coverage information is conditional, not "not-covered"."""
    chart = [*meeting_chart(), procedure("33206", "2019-02-02"), undated(procedure("33233", "x"))]
    _, response = sign_with_chart(chart)
    card = response["cards"][0]
    assert card["summary"] == (
        "GEHA: 62362, 62350, E0783 could not be checked — the chart's dates cannot tell whether a removal "
        "came later"
    )
    assert (
        "implant CPT 33206 (2 Feb 2019), but removal CPT 33233 (undated) may have come later"
        in card["detail"]
    )
    assert coverage_codes(response) == {"conditional"}
    _, dated = sign_with_chart([*chart[:-1], procedure("33233", "2020-02-02")])
    assert coverage_codes(dated) == {"covered"}


def coverage_reasons(response: dict[str, Any]) -> list[Any]:
    """Every `reason` value the response's coverage-information extensions carry."""
    return [
        part.get("valueCodeableConcept", part.get("valueString"))
        for action in response.get("systemActions", [])
        for ext in action["resource"].get("extension", [])
        if ext.get("url") == COVERAGE_INFO
        for part in ext.get("extension", [])
        if part.get("url") == "reason"
    ]


def test_the_coverage_information_says_the_dates_cannot_tell_not_that_the_data_could_not_be_read() -> None:
    """review31a: a chart read whole whose dates cannot place a removal read was "not checked, the EHR's
    data could not be read" in the coverage information (CRD 2.0.1) and, to a 2.2 call, `indeterminate` with
    reason `technical`, which CRD keeps for a technical failure (§resp-43), where nothing failed and the card
    says "the chart's dates cannot tell whether a removal came later". It says that too, `conditional` in
    both versions; a removal that could not be read (a modifier extension) keeps 2.2's `technical`."""
    chart = [*meeting_chart(), procedure("33206", "2019-02-02"), undated(procedure("33233", "x"))]
    for version in ("2.0", "2.2"):
        body = sign_body()
        body["extension"] = {"davinci-crd.requestedVersion": version}
        _, response = sign_with_chart(chart, body=body)
        assert coverage_codes(response) == {"conditional"}
        reasons = coverage_reasons(response)
        assert reasons
        for reason in reasons:
            assert "coding" not in reason  # no `technical`
            assert reason["text"].startswith(
                "GEHA: not checked, the chart's dates cannot tell whether a removal came later, under "
            )
    body = sign_body()
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    _, unread = sign_with_chart([*chart[:-1], modified(procedure("33233", "2020-02-02"))], body=body)
    assert coverage_codes(unread) == {"indeterminate"}
    assert all(r["coding"][0]["code"] == "technical" for r in coverage_reasons(unread))


def test_the_instructions_card_does_not_say_records_could_not_be_read_where_only_dates_leave_it_open() -> (
    None
):
    """review31a: with coverage information switched off the Instructions card stands alone; for a chart
    read whole whose dates cannot place a removal its title read "check the chart's records this service
    could not read", where every record was read. It says what to check."""
    chart = [*meeting_chart(), procedure("33206", "2019-02-02"), undated(procedure("33233", "x"))]
    _, response = sign_with_chart(chart, **{"coverage-info": False})
    titles = [card["summary"] for card in response["cards"]]
    assert "GEHA: check in the chart whether a removal came later for 62362, 62350, E0783" in titles
    assert not any("could not read" in title for title in titles)
    _, unread = sign_with_chart(
        [*chart[:-1], modified(procedure("33233", "2020-02-02"))], **{"coverage-info": False}
    )
    assert "GEHA: check the chart's records this service could not read for 62362, 62350, E0783" in [
        card["summary"] for card in unread["cards"]
    ]


def test_the_verdict_line_of_a_pump_the_dates_cannot_place_says_it_is_undated_and_the_dates_are_why() -> None:
    """review31a L3: an undated 62362 (or refill) beside a 62365 of 2021 read "(a pump may be in place: pump
    implant 62362; whether a later removal took it out could not be checked)": neither that the implant is
    undated nor that the dates, not a record unread, are why. A removal that could not be read keeps its
    words."""
    removal = procedure("62365", "2021-02-02")
    implant = determine([*meeting_chart(), undated(procedure("62362", "x")), removal], policy_id=CMM210)
    assert (
        "read as a pump replacement (a pump may be in place: pump implant 62362 (undated); the chart's dates "
        "cannot tell whether a later removal took it out)"
    ) in detail(Episode.of([implant]))
    refill = [procedure("62362", "2020-02-02"), removal, undated(procedure("62370", "x"))]
    text = detail(Episode.of([determine([*meeting_chart(), *refill], policy_id=CMM210)]))
    assert "(a pump may be in place: pump refill 62370 (undated); the chart's dates cannot tell" in text
    unread = [procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    text = detail(Episode.of([determine([*meeting_chart(), *unread], policy_id=CMM210)]))
    assert (
        "(a pump may be in place: pump implant 62362 on 2 Feb 2020; whether a later removal took it out "
        "could not be checked)"
    ) in text


def test_two_implants_left_open_for_two_causes_name_the_implant_whose_cause_is_said() -> None:
    """review31a L4: a 33206 of 2019 beside a modified 33233 of 2020, and a 33249 of 2021 beside an undated
    33241: the line named the latest implant, 33249, with the record's cause (a removal that could not be
    read), which is 33206's. The implant named is the one whose cause is said, the other counted."""
    chart = [
        procedure("33206", "2019-02-02"),
        modified(procedure("33233", "2020-02-02")),
        procedure("33249", "2021-02-02"),
        undated(procedure("33241", "x")),
    ]
    d = determine([*meeting_chart(), *chart])
    assert statuses(d)[DEVICE] == "not-documented"
    assert finding_of(d, DEVICE).startswith(
        "could not be checked: implant CPT 33206 (2 Feb 2019) and 1 more, but some of the EHR's later "
        "removals could not be read"
    )


def test_the_removal_that_leaves_the_device_open_is_recorded_as_evidence() -> None:
    """review31a L5: the device criterion a removal the dates cannot place leaves open recorded the implant
    alone as evidence, so an auditor (or a clinician told to check those records) had no reference to the
    removal; a removal that clears the implant is recorded. Now the removal is evidence beside the
    implant, a diagnosis's too."""
    removal = undated(procedure("33233", "x"))
    d = determine([*meeting_chart(), procedure("33206", "2019-02-02"), removal])
    [criterion] = [r for top in d.criteria for r in top.walk() if r.id == DEVICE]
    assert [e.text for e in criterion.evidence] == [
        "implant: CPT 33206 (2 Feb 2019)",
        "removal: CPT 33233 (undated)",
    ]
    assert criterion.evidence[1].reference == f"Procedure/{removal['id']}"
    later = procedure("33233", "2023-02-02")
    d = determine([*meeting_chart(), undated(condition(ICD, "Z95.0", "x", PACEMAKER)), later])
    [criterion] = [r for top in d.criteria for r in top.walk() if r.id == DEVICE]
    assert [e.reference for e in criterion.evidence][1:] == [f"Procedure/{later['id']}"]
