"""Contract §2: an implant code is a replacement "when an intrathecal pump is already in place: an active
Device that is an implanted infusion pump, or a completed Procedure 62360-62362 with no later 62365, or
ICD-10-CM Z45.1 / a refill procedure (62369, 62370, 95990, 95991)". Each is a form of one fact, which a
later removal answers (contract §3, the most recent form decides; idds-in-place.yaml `removals`; session 23,
contract23 Q4): a removal undoes the implant, a refill and a Z45.1 before it, and none after it; an analysis
(62367/62368), in none of the contract's forms, shows none."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from service.catalog import load_catalog
from service.engine.classify import idds_in_place, in_place_unsure, in_place_words
from service.record import build_record
from service.terminology import ValueSetError
from tests.builders import (
    HCPCS,
    ICD,
    SCT,
    catalog,
    condition,
    determine,
    device,
    infusate_request,
    meeting_chart,
    payer_coverage,
    procedure,
    service_request,
)
from tests.catalog_support import copy_policies, edit_yaml
from tests.contract_support import call, coverage_card

EARLIER, REMOVED, LATER = "2025-01-10T09:00:00Z", "2025-06-10T09:00:00Z", "2025-09-10T09:00:00Z"


def in_place(*resources: dict[str, Any]) -> bool:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return bool(idds_in_place(build_record("p1", by_type, catalog().terminology), catalog().terminology))


@pytest.mark.parametrize("code", ["62360", "62361", "62362"])
def test_a_later_removal_undoes_the_implant_and_an_earlier_one_does_not(code: str) -> None:
    assert in_place(procedure(code, EARLIER))
    assert not in_place(procedure(code, EARLIER), procedure("62365", REMOVED))
    assert in_place(procedure(code, LATER), procedure("62365", REMOVED))


@pytest.mark.parametrize("code", ["62369", "62370", "95990", "95991"])
def test_a_later_removal_undoes_a_refill_and_an_earlier_one_does_not(code: str) -> None:
    """Contract review s17 F6 made a refill and a Z45.1 alike (a 62365 after a refill made the next
    62362 a first implant, after a Z45.1 a replacement); session 23 keeps them alike the other way: the
    removal after either answers it (contract23 Q4)."""
    assert in_place(procedure(code, EARLIER))
    assert not in_place(procedure(code, EARLIER), procedure("62365", REMOVED))
    assert in_place(procedure(code, LATER), procedure("62365", REMOVED))


@pytest.mark.parametrize("code", ["62367", "62368"])
def test_an_analysis_is_not_a_pump_in_place(code: str) -> None:
    """Session review s18 R-2: contract §2 lists as "in place" an active pump Device, an implant with no
    later removal, Z45.1 and the refills 62369, 62370, 95990, 95991; an electronic analysis is none of
    them, so an analysis done before a removal does not make the next 62362 a replacement."""
    assert not in_place(procedure(code, EARLIER))
    history = [procedure("62362", EARLIER), procedure(code, REMOVED), procedure("62365", LATER)]
    assert not in_place(*history)
    chart = [*meeting_chart(), *history]
    assert determine(chart, service_request("62362")).request_kind == "permanent-implant"


def test_a_later_removal_undoes_an_adjustment_diagnosis_and_an_earlier_one_does_not() -> None:
    assert not in_place(condition(ICD, "Z45.1", "2025-01-10"), procedure("62365", REMOVED))
    assert in_place(condition(ICD, "Z45.1", "2025-09-10"), procedure("62365", REMOVED))


def test_a_procedure_coded_as_an_implant_and_a_refill_is_undone_by_a_later_removal() -> None:
    both = procedure("62362", EARLIER)
    both["code"]["coding"].append({"system": both["code"]["coding"][0]["system"], "code": "95990"})
    assert in_place(both)
    assert not in_place(both, procedure("62365", REMOVED))


@pytest.mark.parametrize(
    ("earlier", "kind"), [("62362", "permanent-implant"), ("62370", "permanent-implant")]
)
def test_an_implant_ordered_after_a_removal_is_read_by_what_the_removal_followed(
    earlier: str, kind: str
) -> None:
    chart = [*meeting_chart(), procedure(earlier, EARLIER), procedure("62365", REMOVED)]
    assert determine(chart, service_request("62362")).request_kind == kind


def test_a_removal_answers_what_was_recorded_on_an_earlier_day_only() -> None:
    """A pump replaced in one session (62362 and 62365 on one day, whatever hours they were documented
    at) leaves a pump in place: with refills before it and nothing after, today's 62362 is a
    replacement (review23c: c56d325 let the removal answer the refills, and the new pump documented
    half an hour before the old one's removal was read as undone, the order as a first implant). A
    removal on a later day still answers them."""
    refills = [procedure("95990", f"20{year}-06-10") for year in range(16, 22)]
    session = [procedure("62362", "2022-03-01T10:00:00Z"), procedure("62365", "2022-03-01T10:30:00Z")]
    assert in_place(*refills, *session)
    day_before = procedure("62362", "2022-02-28T10:00:00Z")
    assert not in_place(*refills, day_before, procedure("62365", "2022-03-01"))


REMOVAL_DAY = "2022-03-01"


@pytest.mark.parametrize(
    "record",
    [
        procedure("95990", f"{REMOVAL_DAY}T09:00:00Z"),
        procedure("62370", REMOVAL_DAY),
        procedure("95991", f"{REMOVAL_DAY}T14:00:00Z"),
        condition(ICD, "Z45.1", REMOVAL_DAY),
        condition(ICD, "T85.610A", REMOVAL_DAY),
    ],
)
def test_a_removal_answers_a_refill_or_diagnosis_of_its_own_day(record: dict[str, Any]) -> None:
    """review23c: 915794b weighed a removal by its day so that a pump replaced in one session stays in place,
    and so a refill at 09:00 and the pump's removal at 10:30 that day left a pump in place (today's 62362 a
    replacement, without the trial a first implant needs). Contract §3: of the forms of one fact the most
    recent decides, and on one day, whatever the hours (engine/forms), a chart contradicting itself claims
    nothing. Only an implant and a removal of one day are one fact, a replacement (CPT 62360-62362:
    "Implantation or replacement"; idds-in-place's `replacing`): a refill, a Z45.1 or a T85 complication of
    the removal's day is answered by it, as one of an earlier day is."""
    removal = procedure("62365", f"{REMOVAL_DAY}T10:30:00Z")
    assert in_place(record)
    assert not in_place(record, removal)
    refills = [procedure("95990", f"20{year}-06-10") for year in range(16, 22)]
    chart = [*meeting_chart(), *refills, record, removal]
    assert determine(chart, service_request("62362")).request_kind == "permanent-implant"
    for implant in (procedure("62362", f"{REMOVAL_DAY}T11:00:00Z"), procedure("E0786", REMOVAL_DAY, HCPCS)):
        assert in_place(record, removal, implant)  # the new pump of that day's replacement


def test_the_implants_a_same_day_removal_leaves_are_the_value_sets_data(tmp_path: Path) -> None:
    """`replacing` is data: without it a 62362 and a 62365 of one day read as a pump taken out; a code it
    lists that no removal undoes is refused (it would never be read)."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "idds-in-place.yaml", lambda raw: raw.pop("replacing"))
    terminology = load_catalog(root).terminology
    session = {
        "Procedure": [procedure("62362", "2022-03-01T10:00:00Z"), procedure("62365", "2022-03-01T10:30:00Z")]
    }
    assert not idds_in_place(build_record("p1", session, terminology), terminology)
    edit_yaml(root / "valuesets" / "idds-in-place.yaml", lambda raw: raw.update(replacing=["62367"]))
    with pytest.raises(ValueSetError, match="replacing: 62367 not among the codes a removal undoes"):
        load_catalog(root)


@pytest.mark.parametrize(
    ("removed", "shown_by", "shown"),
    [
        # the removal at 04:00 UTC on 2 March came after the refill at 01:00 UTC, its own day 1 March though
        ("2022-03-01T23:00:00-05:00", ("95990", "2022-03-02T01:00:00Z"), False),
        # the old pump out at 01:00 UTC, the new one in at 04:00 UTC: one session's replacement
        ("2022-03-02T01:00:00Z", ("62362", "2022-03-01T23:00:00-05:00"), True),
        # one offset: the days decide, as before
        ("2022-03-01T23:00:00-05:00", ("95990", "2022-03-02T01:00:00-05:00"), True),
        ("2022-03-02T01:00:00-05:00", ("62362", "2022-03-01T22:00:00-05:00"), False),
        # a date without a time is the chart's own day, not midnight UTC: removed the day after the implant
        ("2022-03-02", ("62362", "2022-03-01T20:00:00-05:00"), False),
        ("2022-03-01", ("95990", "2022-03-02T02:00:00+09:00"), True),
    ],
)
def test_a_removal_and_a_record_in_different_offsets_keep_the_order_of_their_instants(
    removed: str, shown_by: tuple[str, str], shown: bool
) -> None:
    """review24c LOW 3: each moment's day was read in its own offset, so a removal at 23:00-05:00 on 1 March
    (04:00 UTC on 2 March) read as a day before a refill at 01:00 UTC on 2 March that it followed: the pump
    read as in place (today's 62362 a replacement, without a first implant's trial); and a replacement's
    removal at 01:00 UTC, three hours before the new pump's implant at 23:00-05:00, read as a later day's,
    the new pump as taken out. Days that contradict the instants' order are one day's
    (engine/chart_days.py): contract §2 "no later 62365"."""
    assert in_place(procedure("62365", removed), procedure(*shown_by)) is shown


def pump_state(*resources: dict[str, Any]) -> str:
    """What the chart says of the pump: "in place", "open" (found, but whether a removal took it out the
    dates cannot tell: classify.in_place_unsure) or "cleared" (none found)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    terminology = catalog().terminology
    record = build_record("p1", by_type, terminology)
    if not idds_in_place(record, terminology):
        return "cleared"
    return "open" if in_place_unsure(record, terminology) else "in place"


@pytest.mark.parametrize(
    ("removed", "shown_by", "state"),
    [
        # the removal may have come before the refill in that year or month, or after it (s32, review31f L4)
        ("2022", ("95990", "2022-03-15T09:00:00Z"), "open"),
        ("2022-03", ("95990", "2022-03-15T09:00:00Z"), "open"),
        ("2022-03", ("62370", "2022-03-31T23:00:00-05:00"), "open"),
        # nor is an implant of that month one session's replacement: the removal may have been after it
        ("2022", ("62362", "2022-03-15"), "open"),
        ("2022-03", ("62362", "2022-03-15T09:00:00Z"), "open"),
        ("2022-03-15", ("62362", "2022-03"), "open"),
        # a month or a year wholly before or after the record still tells the order
        ("2022-02", ("95990", "2022-03-01T09:00:00Z"), "in place"),
        ("2021", ("62362", "2022-01-01"), "in place"),
        ("2022", ("95990", "2021-12-31T20:00:00-05:00"), "cleared"),
        # and so does a day at the edge of the other's month: on or after its last day a refill is answered,
        # on or before its first an implant is not undone (one day's: a replacement)
        ("2022-03-31", ("62370", "2022-03"), "cleared"),
        ("2022-03-01", ("62362", "2022-03"), "in place"),
    ],
)
def test_a_removal_dated_to_a_month_or_a_year_answers_only_what_its_days_tell(
    removed: str, shown_by: tuple[str, str], state: str
) -> None:
    """review24c LOW 4: a removal dated "2022" read as 1 January 2022, so a refill (or an implant) later that
    year read as after it, the pump as in place: today's 62362 a replacement, without a first implant's
    trial. A date written to a month or a year is each of its days (engine/chart_days.py). review24c then
    read a removal in the same month or year as the record as one of its day, which answered a refill and
    undid an implant known only to the month; but the removal may as well have come before (review31f L4):
    where its days fall on both sides of the record's, the dates cannot tell, and whether the pump is in
    place is left open, as for an undated record (the lead's decision, s32). An implant stands beside a
    removal of its day only when both are known to the day, one session's replacement."""
    assert pump_state(procedure("62365", removed), procedure(*shown_by)) == state


def test_refills_and_a_removal_dated_to_the_year_of_the_last_leave_the_pump_open() -> None:
    """review24c LOW 4, through a call: refills up to March 2022 and a removal dated "2022" read as a first
    implant; the removal may have come before March's refill, so the pump is left open (s32, review31f
    L4). Refills up to 2021 and the same removal leave no pump in place: today's 62362 is a first implant."""
    refills = [procedure("95990", f"20{year}-03-15") for year in range(18, 23)]
    d = determine([*meeting_chart(), *refills, procedure("62365", "2022")], service_request("62362"))
    assert d.request_kind == "replacement"
    assert d.in_place_unsure == "removal CPT 62365 (2022) may have come later"
    before = [*meeting_chart(), *refills[:-1], procedure("62365", "2022")]
    assert determine(before, service_request("62362")).request_kind == "permanent-implant"


def test_a_record_dated_to_a_month_or_a_year_is_named_no_finer_than_written() -> None:
    """review24c LOW 4: an implant dated "2022" was named "Procedure 62362 on 1 Jan 2022" on the card, a day
    the chart does not give (classify.in_place_words)."""
    terminology = catalog().terminology
    chart = {
        "Procedure": [procedure("62362", "2022")],
        "Condition": [condition(ICD, "Z45.1", "2021-03"), condition(ICD, "T85.610A", "2020-05-04")],
    }
    assert in_place_words(build_record("p1", chart, terminology), terminology, most=3) == (
        "diagnosis Z45.1 since March 2021; diagnosis T85.610A since 4 May 2020; pump implant 62362 in 2022"
    )


@pytest.mark.parametrize(
    ("record", "words"),
    [
        pytest.param(
            device({"text": "SynchroMed II intrathecal pump"}),
            "implanted pump “SynchroMed II intrathecal pump”",
            id="device",
        ),
        pytest.param(procedure("62362", "2019-08-20"), "pump implant 62362 on 20 Aug 2019", id="implant"),
        pytest.param(
            procedure("E0783", "2019-08-20", HCPCS), "pump implant E0783 on 20 Aug 2019", id="e0783"
        ),
        pytest.param(procedure("95990", "2024-03"), "pump refill 95990 in March 2024", id="refill"),
        pytest.param(procedure("62370", "2024-03-05"), "pump refill 62370 on 5 Mar 2024", id="62370"),
        pytest.param(condition(ICD, "Z45.1", "2021-03"), "diagnosis Z45.1 since March 2021", id="diagnosis"),
    ],
)
def test_the_records_of_a_pump_in_place_are_named_in_a_clinicians_words(
    record: dict[str, Any], words: str
) -> None:
    """cards26 item 1: a replacement's card named them "an active Device “…”" and "Procedure 62362 on …",
    FHIR resource names; each is now named for what it is, a pump, its implant, its refill, a diagnosis,
    as a clinician says it, and the card says it so."""
    terminology = catalog().terminology
    record_of = build_record("p1", {record["resourceType"]: [record]}, terminology)
    assert in_place_words(record_of, terminology) == words
    detail = coverage_card(call([*meeting_chart(), record], service_request("62362"), infusate_request()))[
        "detail"
    ]
    assert f"(a pump is already in place: {words})" in detail, detail
    assert not re.search(r"\b(Device|Procedure)\b", detail), detail


def test_a_diagnosis_is_named_by_the_code_that_shows_the_pump_in_place() -> None:
    """review26a MEDIUM: a diagnosis was named by its first coding, whatever it was: an EHR's Condition
    coded in SNOMED CT and ICD-10-CM (the SNOMED coding first, as many send it) read "diagnosis 1234567
    since March 2021", a concept id no clinician reads, where Z45.1 is what shows the pump in place (the
    value set's code, as a procedure is named by its own since cards26)."""
    pump_care = condition(ICD, "Z45.1", "2021-03")
    pump_care["code"]["coding"].insert(0, {"system": SCT, "code": "1234567", "display": "Pump management"})
    terminology = catalog().terminology
    record = build_record("p1", {"Condition": [pump_care]}, terminology)
    assert in_place_words(record, terminology) == "diagnosis Z45.1 since March 2021"


REVISION = "read as a catheter revision (a pump is already in place"


@pytest.mark.parametrize(
    ("orders", "said", "not_said"),
    [
        pytest.param(("62350",), f"62350 catheter, {REVISION}", "read as a pump replacement", id="alone"),
        pytest.param(("62351",), REVISION, "read as a pump replacement", id="with-laminectomy"),
        pytest.param(("62362", "62350"), "read as a pump replacement", "catheter revision", id="with-a-pump"),
    ],
)
def test_a_catheter_alone_beside_the_pump_in_place_is_said_to_be_its_revision(
    orders: tuple[str, ...], said: str, not_said: str
) -> None:
    """cards26: a catheter (62350, 62351) ordered alone with a pump in place is a catheter revision, judged
    by the criteria for a replacement (criteria-and-codes.md §4.2), but its card said "read as a pump
    replacement", which no clinician revising a catheter ordered; ordered with a pump it is part of that
    replacement, and said so."""
    pump = device({"text": "SynchroMed II intrathecal pump"})
    answer = call([*meeting_chart(), pump], *(service_request(code) for code in orders), infusate_request())
    detail = coverage_card(answer)["detail"]
    assert said in detail and not_said not in detail, detail


@pytest.mark.parametrize("payer", ["geha", "kpwa", "cbc", "cohere", "cmm210"])
def test_the_criteria_judging_a_catheter_revision_are_named_as_the_policy_names_them(payer: str) -> None:
    """review27a: a catheter alone beside the pump is judged by the criteria for a pump replacement
    (criteria-and-codes.md §4.2), and no policy gives criteria for a catheter revision: Cohere's are for
    "Replacement of an intrathecal pain pump", CMM-210's for "Replacement of an implanted intrathecal or
    epidural drug infusion system". The explanation ("Every GEHA criterion for a catheter revision is met")
    and the policy-link card ("The Cohere Health criteria for a catheter revision") named criteria the
    policies do not have; they name those judged, and the verdict line alone says the order is a revision."""
    pump = device({"text": "SynchroMed II intrathecal pump"})
    answer = call(
        [*meeting_chart(), pump], service_request("62350"), infusate_request(), coverage=payer_coverage(payer)
    )
    said = [c["summary"] + "\n" + c.get("detail", "") for c in answer["cards"]]
    [link] = [c["detail"] for c in answer["cards"] if c["indicator"] == "info" and c.get("links")]
    assert " criteria for a pump replacement " in link, link
    assert not any(re.search(r"criteri(a|on) for a catheter revision", text) for text in said), said
    assert REVISION in coverage_card(answer)["detail"], coverage_card(answer)["detail"]
