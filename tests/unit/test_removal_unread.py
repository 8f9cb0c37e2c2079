"""A removal left out of the record (it carries a modifier extension, or cannot be read) leaves what it would
undo not established (review29c M2): the device or pump it would have removed reads "could not be checked",
not in place (contract §2 "with no later 62365", §3 "an implant Procedure with no later removal")."""

from __future__ import annotations

from typing import Any

from cards.items import Episode, missing, steps
from cards.render import detail, summary
from service.engine.model import Outcome
from service.record import build_record
from tests.builders import (
    ICD,
    SCT,
    catalog,
    coded_assessment,
    concept,
    condition,
    determine,
    device,
    finding_of,
    meeting_chart,
    modified,
    procedure,
    service_request,
    statuses,
)
from tests.policy_charts import cancer_chart, cohere

DEVICE = "geha.excl.programmable-device"


def record(*resources: dict[str, Any], unavailable: dict[str, str] | None = None) -> Any:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return build_record("p1", by_type, catalog().terminology, unavailable)


def test_which_removals_the_record_could_not_read() -> None:
    """By code for one carrying a modifier; any for a malformed Procedure or procedures not fetched; none
    for a modified Procedure that is no removal."""
    by_code = record(modified(procedure("33233", "2020-02-02")))
    assert by_code.removal_unread(["33233"]) and by_code.removal_unread(["62365"]) is None
    malformed = procedure("62365", "2020-02-02")
    malformed["status"] = ["completed"]
    assert record(malformed).removal_unread(["62365"])
    assert record(unavailable={"Procedure": "timed out"}).removal_unread(["63688"]) == "timed out"
    trial = record(modified(procedure("62324", "2025-10-01")))
    assert "Procedure" in trial.unavailable and "device removals" not in trial.unavailable
    assert trial.removal_unread(["33233", "62365"]) is None


def test_a_device_a_removal_left_out_may_have_undone_is_not_read_as_in_place() -> None:
    """review29c M2: a 2019 pacemaker implant and a 2020 removal carrying a modifier was "Not covered —
    documented: implant CPT 33206"; the removal read, the exclusion is met; a pump removal left out says
    nothing of the pacemaker."""
    implant = procedure("33206", "2019-02-02")
    unsure = determine([*meeting_chart(), implant, modified(procedure("33233", "2020-02-02"))])
    assert statuses(unsure)[DEVICE] == "not-documented"
    assert unsure.outcome == Outcome.INSUFFICIENT
    text = detail(Episode.of([unsure]))
    assert "later removals could not be read" in text and "documented: implant" not in text
    assert statuses(determine([*meeting_chart(), implant, procedure("33233", "2020-02-02")]))[DEVICE] == "met"
    other = determine([*meeting_chart(), implant, modified(procedure("62365", "2020-02-02"))])
    assert statuses(other)[DEVICE] == "not-met" and other.outcome == Outcome.DOES_NOT_MEET


def test_a_pump_a_removal_left_out_may_have_undone_is_said_so_and_never_meets_as_a_replacement() -> None:
    """A modified 62365 after a 62362: the implant is still judged as read (a replacement), but the card
    says the pump may be in place, not that it is; read, the removal makes it a first implant."""
    chart = [*meeting_chart(), procedure("62362", "2020-02-02")]
    unsure = determine([*chart, modified(procedure("62365", "2021-02-02"))])
    assert unsure.request_kind == "replacement" and unsure.in_place_unsure
    assert unsure.outcome != Outcome.MEETS
    text = detail(Episode.of([unsure]))
    assert "a pump may be in place: pump implant 62362" in text and "already in place" not in text
    assert determine([*chart, procedure("62365", "2021-02-02")]).request_kind == "permanent-implant"
    sure = determine([*chart, modified(procedure("33233", "2021-02-02"))])
    assert sure.request_kind == "replacement" and not sure.in_place_unsure


def test_an_answer_that_holds_whatever_the_kind_stands() -> None:
    """Capital Blue Cross judges a replacement by a first implant's criteria: with the pump unsure the
    answer is the same either way, so it stands (`_same_criteria`); CMM-210's differ, so it cannot meet."""
    chart = [*meeting_chart(), procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    assert determine(chart, policy_id="cbc-mp-1-058").outcome == Outcome.MEETS
    assert determine(chart, policy_id="cmm-210-idds").outcome == Outcome.INSUFFICIENT


def test_where_a_first_implants_criteria_differ_the_answer_waits_for_the_removal() -> None:
    """Cohere judges a replacement by its own criteria: a recalled pump meets them, and a replacement for
    the patient's convenience fails one only a replacement has; with the removal left out neither stands
    (the pump may be gone: the order would be a first implant), and the card asks whether it is in place."""
    chart = [*cancer_chart(), procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    recall = cohere([*chart, coded_assessment("replacement-reason", "recall", "2026-11-10")])
    assert cohere([*chart[:-1], coded_assessment("replacement-reason", "recall", "2026-11-10")]).outcome == (
        Outcome.MEETS
    )
    assert recall.outcome == Outcome.INSUFFICIENT
    text = detail(Episode.of([recall]))
    assert "Whether the pump is still in place" in text and "check those records in the chart" in text
    convenience = [*chart, coded_assessment("replacement-reason", "patient-convenience", "2026-11-10")]
    assert cohere(convenience[:-2] + convenience[-1:]).outcome == Outcome.DOES_NOT_MEET
    assert cohere(convenience).outcome == Outcome.INSUFFICIENT


def test_a_failure_of_either_kind_stands() -> None:
    """An active pacemaker fails GEHA's exclusion whether the implant is a replacement or not."""
    chart = [*meeting_chart(), procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    d = determine([*chart, device({"text": "Cardiac pacemaker"})])
    assert d.in_place_unsure and d.outcome == Outcome.DOES_NOT_MEET


def test_an_active_device_stands_whatever_removal_was_left_out_a_diagnosis_is_left_open() -> None:
    """Contract §3's "with no later removal": an active pacemaker Device with the procedures not fetched is
    still another programmable device (GEHA: not covered; review29f). A Z95.0 was too, as was a Z45.1 beside
    a modified 62365 a pump sure in place; a presence diagnosis is now weighed as an implant Procedure is (the
    lead's decision, s31, of review31a M2): a removal left out that may be later leaves it open, "could not
    be checked", and whether the pump is still in place is asked."""
    not_fetched = {"Procedure": "the FHIR server answered 500"}
    pacemaker_device = [device(concept(SCT, "14106009", "Cardiac pacemaker"))]
    d = determine([*meeting_chart(), *pacemaker_device], unavailable=not_fetched)
    assert statuses(d)[DEVICE] == "not-met" and d.outcome == Outcome.DOES_NOT_MEET
    pacemaker = condition(ICD, "Z95.0", "2019-02-02")
    for chart, unavailable in (
        ([pacemaker], not_fetched),
        ([pacemaker, modified(procedure("33233", "2020-02-02"))], None),
    ):
        d = determine([*meeting_chart(), *chart], unavailable=unavailable)
        assert statuses(d)[DEVICE] == "not-documented" and d.outcome == Outcome.INSUFFICIENT
    pump = determine(
        [*meeting_chart(), condition(ICD, "Z45.1", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    )
    assert pump.request_kind == "replacement" and pump.in_place_unsure


def test_the_card_names_the_one_criterion_a_removal_left_out_leaves_unchecked() -> None:
    """review29f A-3: "1 of 14 criteria could not be checked: the EHR's device removals were not available"
    did not name the criterion: a clinician could not tell what to check."""
    d = determine(
        [*meeting_chart(), procedure("33206", "2019-02-02"), modified(procedure("33233", "2020-02-02"))]
    )
    named = next(top.label for top in d.criteria if any(c.id == DEVICE for c in top.walk()))
    text = detail(Episode.of([d]))
    assert f"**“{named}” could not be checked**: implant CPT 33206 (2 Feb 2019), but" in text


def test_whether_the_pump_is_in_place_is_counted_as_no_criterion_and_nothing_to_document() -> None:
    """review29f A-3: the item "Whether the pump is still in place" is held by no criterion ("13 of 14 met
    (the other one holds the 2 items)" where it held one) and is to check in the chart, not to document
    (CMM-210: "2 items to document for 62362 — Whether the pump is still in place")."""
    chart = [*meeting_chart(), procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    geha = detail(Episode.of([determine(chart)]))
    assert "Whether the pump is still in place" in geha
    assert "13 of 14 criteria met, " in geha and "holds the" not in geha
    cmm = Episode.of([determine(chart, policy_id="cmm-210-idds")])
    assert "Whether the pump is still in place" in detail(cmm)
    assert (
        summary(cmm)
        == "CMM-210: 1 item to document and 1 to check for 62362 — Whether the pump is still in place"
    )


def test_only_a_removal_left_out_after_the_implant_makes_it_unsure() -> None:
    """review29f A-2: a modified 33233 dated 2010 made a 2019 pacemaker implant "could not be checked", and
    a modified 62365 dated before a 62362 made the pump "may be in place"; only a later removal undoes
    (contract §2 "with no later 62365", §3 "with no later removal"). Undated, or the procedures not
    fetched, a removal may be of any day."""
    implant = procedure("33206", "2019-02-02")
    earlier = determine([*meeting_chart(), implant, modified(procedure("33233", "2010-02-02"))])
    assert statuses(earlier)[DEVICE] == "not-met" and earlier.outcome == Outcome.DOES_NOT_MEET
    later_too = [modified(procedure("33233", "2010-02-02")), modified(procedure("33233", "2020-02-02"))]
    assert statuses(determine([*meeting_chart(), implant, *later_too]))[DEVICE] == "not-documented"
    undated = modified(procedure("33233", "2020-02-02"))
    del undated["performedDateTime"]
    assert statuses(determine([*meeting_chart(), implant, undated]))[DEVICE] == "not-documented"
    pump = procedure("62362", "2020-02-02")
    assert not determine([*meeting_chart(), pump, modified(procedure("62365", "2019-02-02"))]).in_place_unsure
    assert determine([*meeting_chart(), pump, modified(procedure("62365", "2021-02-02"))]).in_place_unsure
    not_fetched = {"Procedure": "the FHIR server answered 500"}
    assert record(unavailable=not_fetched).removal_unread(["33233"], lambda when, written_to: False)


def test_a_removal_left_out_undoes_what_a_removal_read_would_on_its_own_day() -> None:
    """removal29b open 2: a 62365 read on a refill's own day undoes it (`_removed_later`: a refill, unlike
    an implant, is answered by a removal of its day), but one left out on that day was not counted, so the
    pump read as in place, sure. The rule a removal read is weighed by is the one a removal left out is: a
    62362 and a 62365 of one day are one session's replacement either way."""
    refill = [*meeting_chart(), procedure("62370", "2021-02-02")]
    assert determine([*refill, procedure("62365", "2021-02-02")]).request_kind == "permanent-implant"
    same_day = determine([*refill, modified(procedure("62365", "2021-02-02"))])
    assert same_day.request_kind == "replacement" and same_day.in_place_unsure
    implant = [*meeting_chart(), procedure("62362", "2021-02-02")]
    assert determine([*implant, procedure("62365", "2021-02-02")]).request_kind == "replacement"
    session = determine([*implant, modified(procedure("62365", "2021-02-02"))])
    assert session.request_kind == "replacement" and not session.in_place_unsure


PACEMAKER = (
    "Insertion of new or replacement of permanent pacemaker with transvenous electrode(s); atrial and "
    "ventricular"
)


def test_the_card_names_the_implant_a_removal_left_out_may_have_undone_and_keeps_why_whole() -> None:
    """removal29b open 1: GEHA's line read "No other implanted programmable device could not be checked: the
    EHR's device removals were not available (1 record(s) carry a modifier extension …)": it named neither
    the implant nor that a later removal was in the chart but could not be read, and "not available" is
    what a record never fetched is. The implant is named by its code and day (its chart words may be long),
    before why, and the records left out as records that could not be read."""
    implant = procedure("33206", "2019-02-02", display=PACEMAKER)
    d = determine([*meeting_chart(), implant, modified(procedure("33233", "2020-02-02"))])
    assert (
        detail(Episode.of([d])).count(
            "- ❔ **“No other implanted programmable device” could not be checked**: implant CPT 33206 "
            "(2 Feb 2019), but some of the EHR's later removals could not be read (1 record(s) carry a "
            "modifier extension this service does not understand) — check those records in the chart: "
            "calling again reads the same\n"
        )
        == 1
    )
    two = determine(
        [
            *meeting_chart(),
            implant,
            procedure("33207", "2019-03-03"),
            modified(procedure("33233", "2020-02-02")),
        ]
    )
    assert finding_of(two, DEVICE).startswith(  # the latest named (tests/unit/test_removal_wording.py)
        "could not be checked: implant CPT 33207 (3 Mar 2019) and 1 more"
    )
    # the cause whole on the line, whatever the implants named
    assert "(1 record(s) carry a modifier extension this service does not understand) — check" in detail(
        Episode.of([two])
    )
    partly = determine([*meeting_chart(), implant], unavailable={"Procedure": "HTTP 503 on page 2"})
    assert finding_of(partly, DEVICE) == (
        "could not be checked: implant CPT 33206 (2 Feb 2019), but the EHR's procedure history was not "
        "available (HTTP 503 on page 2)"
    )


def test_records_read_that_could_not_be_read_are_not_said_to_be_not_available() -> None:
    """ "were not available" is said of a part of the chart not fetched; of records read but left out (a
    modifier extension, a malformed record) the card says some of that part could not be read."""
    pump = [*meeting_chart(), procedure("62362", "2020-02-02")]
    modified_chart = determine([*pump, modified(procedure("62370", "2021-02-02"))])
    said = finding_of(modified_chart, DEVICE)
    assert said == (
        "could not be checked: some of the EHR's procedure history could not be read (1 record(s) carry a "
        "modifier extension this service does not understand)"
    )
    fetched_not = determine(pump, unavailable={"Procedure": "HTTP 503"})
    assert "the EHR's procedure history was not available (HTTP 503)" in finding_of(fetched_not, DEVICE)


def test_cmm210_asks_whether_the_pump_is_still_in_place_before_the_state_of_the_existing_pump() -> None:
    """removal29 §5, review29f A-3: CMM-210.5 judges a replacement by "the existing device" (nearing end of
    battery life, failed beyond repair, or an alert of impending failure); a pump an unread 62365 may have
    removed is no existing device, and the order would be a first implant (CMM-210.3). The card asked to
    record "state of the existing pump" and led its summary with it: it now asks whether the pump is still
    in place first, and to record the existing pump's state only if it is."""
    chart = [*meeting_chart(), procedure("62362", "2020-02-02")]
    unsure = Episode.of(
        [determine([*chart, modified(procedure("62365", "2021-02-02"))], policy_id="cmm-210-idds")]
    )
    text = detail(unsure)
    assert summary(unsure).endswith("for 62362 — Whether the pump is still in place")
    check = text.index("**Whether the pump is still in place**")
    battery = text.index("**End of battery life, failed beyond repair, or failure alert**")
    assert check < battery
    assert "if it was removed, CMM-210 judges this order by other criteria" in text
    # the condition said once for every item to document (wording31), each line what to do under it
    assert text.splitlines()[0].endswith(" Items to document are asked only if the pump is still in place.")
    assert "— Record “state of the existing pump”" in text and "If the pump is still in place" not in text
    sure = detail(Episode.of([determine(chart, policy_id="cmm-210-idds")]))
    assert "— Record “state of the existing pump”" in sure and "If the pump is still in place" not in sure


def test_a_removal_read_after_an_active_presence_diagnosis_clears_it() -> None:
    """The lead's decision (review29f A-1's last point, s30): a removal read, dated after an active Z95.0,
    Z95.810 or Z45.1, clears it: contract §3 "Several forms of one fact: when they disagree, the most recent
    documented one decides". One dated before it does not; an unread one leaves the diagnosis standing
    (test_an_active_device_or_diagnosis_stands_whatever_removal_was_left_out)."""
    for code, removal in (("Z95.0", "33233"), ("Z95.810", "33241")):  # a pacemaker's, a defibrillator's
        diagnosis = condition(ICD, code, "2019-02-02")
        after = determine([*meeting_chart(), diagnosis, procedure(removal, "2020-02-02")])
        assert statuses(after)[DEVICE] == "met" and after.outcome == Outcome.MEETS
        before = determine([*meeting_chart(), diagnosis, procedure(removal, "2018-02-02")])
        assert statuses(before)[DEVICE] == "not-met"
    pump = condition(ICD, "Z45.1", "2020-02-02")
    assert (
        determine([*meeting_chart(), pump, procedure("62365", "2021-02-02")]).request_kind
        == "permanent-implant"
    )
    assert determine([*meeting_chart(), pump, procedure("62365", "2019-02-02")]).request_kind == "replacement"


def test_the_pumps_item_says_what_a_removal_makes_of_the_order_and_keeps_why_whole() -> None:
    """review30a M1: the pump's item said "if it was removed, this is a first implant, which CMM-210 judges by
    other criteria" after what to do. (1) The summary and the Instructions card took a chart's records that
    could not be read for data not available ("62362 could not be checked — the EHR's data was not
    available": what to do no longer ended with it); (2) a payer's longer name cut why ("… this service does
    not…"); (3) a catheter ordered beside the pump is no implant. What a removal would make of the order is
    said in fewer words, whatever the order is."""
    pump = [procedure("62362", "2020-02-02"), modified(procedure("62365", "2021-02-02"))]
    battery = coded_assessment("device-status", "end-of-battery")
    checked = Episode.of([determine([*meeting_chart(), *pump, battery], policy_id="cmm-210-idds")])
    assert summary(checked) == "CMM-210: 62362 could not be checked — records in the chart could not be read"
    cohere_card = detail(Episode.of([cohere([*cancer_chart(), *pump])]))
    line = next(x for x in cohere_card.splitlines() if "**Whether the pump is still in place**" in x)
    assert line.endswith(
        ": a removal record could not be read (1 record(s) carry a modifier extension this service does not "
        "understand) — check those records in the chart: calling again reads the same; if it was removed, "
        "Cohere Health judges this order by other criteria"
    )
    catheter = determine([*meeting_chart(), *pump], order=service_request("62350"), policy_id="cmm-210-idds")
    assert catheter.in_place_only
    said = detail(Episode.of([catheter]))
    assert "if it was removed, CMM-210 judges this order by other criteria" in said
    assert "first implant" not in said


def test_a_criterion_left_unchecked_is_named_as_a_name_not_said_as_a_double_negative() -> None:
    """review30a M2: "❔ No other implanted programmable device could not be checked" read as a double
    negative (no device that could not be checked: all could be?). The criterion is named as a name, quoted,
    on the card and the Instructions card alike, for every policy."""
    chart = [*meeting_chart(), procedure("33206", "2019-02-02"), modified(procedure("33233", "2020-02-02"))]
    for d in (determine(chart), determine(chart, policy_id="kpwa-implanted-infusion-pumps")):
        text = detail(Episode.of([d]))
        assert "**No other implanted programmable device could not be checked**" not in text
        line = "- ❔ **“No other implanted programmable device” could not be checked**: implant CPT 33206"
        assert line in text
        assert any(
            s.startswith("“No other implanted programmable device” could not be checked (")
            for _, s in steps(missing(d))
        )


def test_procedures_that_may_hold_a_removal_are_not_said_to_be_removals() -> None:
    """review30a M3: a Procedure that could not be read at all (its codes unknown: here a trial, 62324) or
    procedures not fetched may hold a removal; the card called them "some of the EHR's later removals" (the
    pacemaker's line) and "a removal record" (the pump's). A removal left out by its code, carrying a
    modifier extension, is still said to be one."""
    broken = procedure("62324", "2020-02-02")
    broken["status"] = ["completed"]
    pacemaker = determine([*meeting_chart(), procedure("33206", "2019-02-02"), broken])
    assert finding_of(pacemaker, DEVICE) == (
        "could not be checked: implant CPT 33206 (2 Feb 2019), but some of the EHR's procedure history could "
        "not be read (1 record(s) could not be read)"
    )
    pump = [*meeting_chart(), procedure("62362", "2020-02-02")]
    lines = {
        "may be": detail(Episode.of([determine([*pump, broken], policy_id="cmm-210-idds")])),
        "not fetched": detail(
            Episode.of([determine(pump, unavailable={"Procedure": "HTTP 503"}, policy_id="cmm-210-idds")])
        ),
        "removal": detail(
            Episode.of(
                [determine([*pump, modified(procedure("62365", "2021-02-02"))], policy_id="cmm-210-idds")]
            )
        ),
    }
    head = "**Whether the pump is still in place**: "
    assert (
        f"{head}a procedure record that may be a removal could not be read (1 record(s) could not"
        in lines["may be"]
    )
    assert (
        f"{head}the EHR's procedure history was not available (HTTP 503) — call again" in lines["not fetched"]
    )
    assert f"{head}a removal record could not be read (1 record(s) carry a modifier" in lines["removal"]
    assert all("later removals" not in text for text in lines.values())


def test_a_presence_diagnosis_left_open_among_several_unchecked_criteria_is_named() -> None:
    """review31f M1: since a presence diagnosis is weighed as an implant (s31, review31a M2), every Z95.0
    beside a Procedure search that failed or was cut is left open, and a failed search leaves other criteria
    unchecked too, so the card folded the device criterion into "4 of 14 criteria could not be checked: the
    EHR's procedure history was not available" and never said a pacemaker was documented (before, "not
    covered: … Presence of cardiac pacemaker"). The one criterion whose records not read may undo a
    documented record names it, as a criterion left unchecked alone does."""
    chart = [r for r in meeting_chart() if r["resourceType"] != "Procedure"]
    pacemaker = condition(ICD, "Z95.0", "2019-02-02", "Presence of cardiac pacemaker")
    for failed in ("HTTP 503", "cut at the call's deadline"):
        d = determine([*chart, pacemaker], unavailable={"Procedure": failed})
        assert d.outcome == Outcome.INSUFFICIENT
        [line] = [line for line in detail(Episode.of([d])).splitlines() if "could not be checked**" in line]
        head = "- ❔ **4 of 14 criteria could not be checked**: "
        assert line.startswith(f"{head}diagnosis Z95.0 (2 Feb 2019) documented for ")
        assert "for “No other implanted programmable device”, but the EHR's procedure history" in line
        assert f"was not available ({failed})" in line
    # no documented record that a removal not read may undo: the count and the cause alone, as before
    d = determine(chart, unavailable={"Procedure": "HTTP 503"})
    [line] = [line for line in detail(Episode.of([d])).splitlines() if "could not be checked**" in line]
    assert "could not be checked**: the EHR's procedure history was not available (HTTP 503)" in line
