"""The test types other payers' criteria need, exercised directly on built charts."""

from __future__ import annotations

import types
from datetime import date
from typing import Any

import pytest

from service.engine.checks import TEST_TYPES
from service.engine.checks.params import Comparator, Count, Flag, ValueSets
from service.engine.checks.testtype import collect
from service.engine.checks.testtype import test_type as declared_as
from service.engine.model import Status, TestOutcome
from tests.builders import (
    ASSESS,
    ICD,
    LOINC,
    RX,
    SCT,
    allergy,
    assessment,
    catalog,
    coded_assessment,
    concept,
    condition,
    context,
    device,
    infusate_request,
    med_request,
    metastasis_stage,
    observation,
    pain,
    procedure,
)


def run(test_type: str, params: dict[str, Any], chart: list[dict[str, Any]], **kwargs: Any) -> Any:
    return TEST_TYPES[test_type].function(params, context(chart, **kwargs))


@pytest.mark.parametrize(
    ("drugs", "status"),
    [
        ((infusate_request(),), Status.MET),
        ((infusate_request("baclofen 2 MG/ML Injectable Solution", "1292"),), Status.NOT_MET),
        ((), Status.NOT_DOCUMENTED),
        ((infusate_request("mystery intrathecal compound", "0"),), Status.NOT_DOCUMENTED),
    ],
)
def test_infusate_in(drugs: tuple[dict[str, Any], ...], status: Status) -> None:
    assert run("infusate-in", {"valuesets": ["opioids"]}, [], drugs=drugs).status == status


def test_infusate_in_refuses_mixtures_when_asked() -> None:
    mixture = (infusate_request(), infusate_request("bupivacaine 7.5 MG/ML Injectable Solution", "1815"))
    assert run("infusate-in", {"valuesets": ["it-infusates"]}, [], drugs=mixture).status == Status.MET
    single = {"valuesets": ["it-infusates"], "single_ingredient": True}
    assert run("infusate-in", single, [], drugs=mixture).status == Status.NOT_MET


@pytest.mark.parametrize(
    ("value", "unit", "status"),
    [
        (4, "mo", Status.MET),
        (3, "mo", Status.MET),
        (2, "mo", Status.NOT_MET),
        (1, "a", Status.MET),
        (10, "wk", Status.NOT_MET),
        (120, "d", Status.MET),
        (48, "h", Status.NOT_MET),
        (2, "yr", Status.MET),
        (5, None, Status.NOT_DOCUMENTED),
        (5, "mg", Status.NOT_DOCUMENTED),
    ],
)
def test_life_expectancy_in_months(value: float, unit: str | None, status: Status) -> None:
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["code"] = unit
    chart = [observation(LOINC, "75327-7", "2026-11-01", valueQuantity=quantity)]
    params = {"loinc": ["75327-7"], "comparator": ">=", "value": 3, "unit": "months"}
    assert run("observation-value", params, chart).status == status


@pytest.mark.parametrize(
    ("today", "value", "unit", "status"),
    [
        (date(2026, 12, 6), 90, "d", Status.MET),  # 6 March 2027 is 90 days on: 3 months (contract s17 F9)
        (date(2026, 12, 6), 89, "d", Status.NOT_MET),
        (date(2026, 12, 6), 13, "wk", Status.MET),  # 91 days
        (date(2026, 11, 30), 90, "d", Status.MET),  # to 28 February 2027: the month has no 30th
        (date(2026, 5, 31), 92, "d", Status.MET),  # to 31 August
        (date(2026, 5, 31), 91, "d", Status.NOT_MET),
        (date(2026, 5, 31), 2184, "h", Status.NOT_MET),  # 91 days in hours
        (date(2026, 5, 31), 2208, "h", Status.MET),  # 92 days
    ],
)
def test_a_life_expectancy_in_days_weeks_or_hours_counts_calendar_months_from_the_call(
    today: date, value: float, unit: str, status: Status
) -> None:
    """AMB-44, "month = calendar months from the request date": 3 months from the call's day reach the
    same day 3 months on, so 90 days are 3 months from 6 December and not from 31 May (contract review
    s17 F9: 90 d and 13 wk were read as 2.96 and 2.99 months by the average month)."""
    chart = [observation(LOINC, "75327-7", "2026-05-01", valueQuantity={"value": value, "code": unit})]
    params = {"loinc": ["75327-7"], "comparator": ">=", "value": 3, "unit": "months"}
    assert run("observation-value", params, chart, today=today).status == status
    below = {**params, "comparator": "<"}  # CMM-210's terminal line, the other side of the same count
    flipped = {Status.MET: Status.NOT_MET, Status.NOT_MET: Status.MET}[status]
    assert run("observation-value", below, chart, today=today).status == flipped


def test_a_threshold_in_months_is_whole_calendar_months() -> None:
    """Calendar months from the request date (AMB-44) are whole: a policy cannot ask for 2.5 of them."""
    problem = TEST_TYPES["observation-value"].problem(
        {"loinc": ["75327-7"], "comparator": ">=", "value": 2.5, "unit": "months", "missing": "none"},
        catalog().terminology,
    )
    assert problem == ": a threshold in months is whole calendar months (AMB-44)"


@pytest.mark.parametrize(("score", "status"), [("2", Status.MET), ("1+", Status.NOT_MET), ("3", Status.MET)])
def test_modified_ashworth_threshold(score: str, status: Status) -> None:
    chart = [coded_assessment("modified-ashworth-score", score)]
    params = {"code": "modified-ashworth-score", "comparator": ">=", "value": 2}
    assert run("scale-score", params, chart).status == status


def ashworth(score: int, when: str) -> dict[str, Any]:
    return assessment("ashworth-score", when, valueInteger=score)


TRIAL = "2025-10-01T09:00:00Z"


def test_scale_trial_response_computed_with_duration() -> None:
    chart = [
        procedure("62324", TRIAL),
        ashworth(4, "2025-10-01T08:00:00Z"),
        ashworth(2, "2025-10-01T10:00:00Z"),
        ashworth(2, "2025-10-01T13:00:00Z"),
        ashworth(1, "2025-10-01T15:00:00Z"),
        ashworth(4, "2025-10-01T20:00:00Z"),
    ]
    assert run("scale-trial-response", {"points": 2, "hours": 4}, chart).status == Status.MET
    assert run("scale-trial-response", {"points": 2, "hours": 6}, chart).status == Status.NOT_MET
    assert run("scale-trial-response", {"points": 4}, chart).status == Status.NOT_MET


def test_an_undated_scale_score_beside_a_dated_trial_is_no_baseline() -> None:
    """The baseline severity is the latest score taken before the trial; a score with no date
    cannot be placed before it and is left out (never compared with the trial's date)."""
    undated = ashworth(1, TRIAL)
    del undated["effectiveDateTime"]
    chart = [procedure("62324", TRIAL), ashworth(3, "2025-09-20T08:00:00Z"), undated]
    outcome = run("scale-score", {"code": "ashworth-score", "comparator": ">=", "value": 2}, chart)
    assert outcome.status == Status.MET


def test_scale_trial_response_explicit_and_missing() -> None:
    explicit = [
        assessment("it-trial-scale-reduction", valueQuantity={"value": 2, "unit": "points"}),
        assessment("it-trial-response-duration-h", valueQuantity={"value": 5, "unit": "h"}),
    ]
    assert run("scale-trial-response", {"points": 2, "hours": 4}, explicit).status == Status.MET
    assert run("scale-trial-response", {"points": 1}, []).status == Status.NOT_DOCUMENTED


def test_trial_relief_for_eight_hours() -> None:
    chart = [
        procedure("62324", TRIAL),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(3, "2025-10-01T10:00:00Z"),
        pain(4, "2025-10-01T16:00:00Z"),
        pain(7, "2025-10-01T22:00:00Z"),
    ]
    params = {"comparator": ">=", "percent": 50, "min_hours": 8}
    assert run("trial-relief", params, chart).status == Status.NOT_MET  # 6 hours of >= 50 %
    longer = [*chart[:-1], pain(3, "2025-10-01T19:00:00Z")]
    assert run("trial-relief", params, longer).status == Status.MET


@pytest.mark.parametrize(
    ("scores", "status", "finding"),
    [
        # dated the trial's day without a time: before or after the 09:00 start, nobody can tell
        (
            [pain(8, "2025-10-01"), pain(2, "2025-10-01T12:00:00Z")],
            Status.NOT_DOCUMENTED,
            "in the 30 days before",
        ),
        (
            [pain(8, "2025-09-30T20:00:00Z"), pain(2, "2025-10-01")],
            Status.NOT_DOCUMENTED,
            "in the 48 hours after",
        ),
        # a day before or after the trial's day is placed by its date
        ([pain(8, "2025-09-30"), pain(2, "2025-10-01T12:00:00Z")], Status.MET, "75 % relief"),
        ([pain(8, "2025-09-30T20:00:00Z"), pain(3, "2025-10-02")], Status.MET, "62 % relief"),
        # dated only by the trial's month: before or after, nobody can tell either
        (
            [pain(8, "2025-10"), pain(2, "2025-10-01T12:00:00Z")],
            Status.NOT_DOCUMENTED,
            "in the 30 days before",
        ),
        # the day the 48 hours end (3 Oct, 09:00) may be in them or not: left out
        (
            [pain(8, "2025-09-30T20:00:00Z"), pain(2, "2025-10-03"), pain(6, "2025-10-01T12:00:00Z")],
            Status.NOT_MET,
            "25 % relief",
        ),
    ],
)
def test_a_score_dated_the_trial_day_without_a_time_is_not_placed(
    scores: list[dict[str, Any]], status: Status, finding: str
) -> None:
    outcome = run("trial-relief", {"comparator": ">=", "percent": 50}, [procedure("62324", TRIAL), *scores])
    assert outcome.status == status, outcome.finding
    assert finding in outcome.finding
    if status == Status.NOT_DOCUMENTED:
        assert (
            "(a score dated without a time, on the trial's day (or month), could be from before or after it)"
            in outcome.finding
        )


def test_medication_duration_within_the_last_year() -> None:
    old = [med_request("Oxycodone 5 MG Oral Tablet", "2024-01-01", "2025-06-01")]
    params = {"valuesets": ["opioids"], "comparator": ">=", "days": 180, "within_months": 12}
    ended_before = run("medication-duration", params, old)  # none in the window: absent there (contract §3)
    assert ended_before.status == Status.NOT_DOCUMENTED
    assert "the last course, Oxycodone 5 MG Oral Tablet, ended 1 Jun 2025" in ended_before.finding
    assert run("medication-duration", params, []).status == Status.NOT_DOCUMENTED
    recent = [med_request("Oxycodone 5 MG Oral Tablet", "2025-12-01", "2026-11-01")]
    assert run("medication-duration", params, recent).status == Status.MET


OPIOIDS_6WK = {"valuesets": ["opioids"], "comparator": ">", "days": 42}


@pytest.mark.parametrize(
    ("status", "end", "expected", "finding"),
    [
        ("completed", "2026-11-10", Status.NOT_MET, "the course ended after 3 weeks 3 days"),  # as the need
        ("stopped", "2027-01-01", Status.NOT_MET, "the course ended after 5 weeks"),  # stopped: ended today
        (
            "active",
            "2027-01-01",
            Status.NOT_DOCUMENTED,
            "5 weeks so far (since 17 Oct 2026), needs more than 6 weeks",
        ),
        ("active", "2026-11-10", Status.NOT_MET, "the orders cover 3 weeks 3 days"),  # its end passed, active
        ("active", "2027-03-01", Status.MET, "days documented"),
    ],
)
def test_a_course_short_of_the_threshold_fails_once_it_has_ended(
    status: str, end: str, expected: Status, finding: str
) -> None:
    start = "2026-10-17" if expected != Status.MET else "2026-08-01"
    chart = [med_request("Oxycodone 5 MG Oral Tablet", start, end, status)]
    result = run("medication-duration", OPIOIDS_6WK, chart)
    assert result.status == expected
    assert finding in result.finding


@pytest.mark.parametrize(
    ("authored", "end"),
    [("2025-03-01T15:00:00Z", "2025-04-12"), ("2025-03-01T15:00:00-05:00", "2025-04-12T09:00:00-05:00")],
)
def test_a_course_is_counted_in_the_calendar_days_its_words_give(authored: str, end: str) -> None:
    """review25e: the span in days was judged to the second, its words by the calendar: an order written
    at 15:00 whose validity ends 42 days later read "the course ended after 6 weeks (...), needs at least
    6 weeks" and was not met for KPWA 2.c's ">= 42 days"."""
    six_weeks = {"valuesets": ["oral-antispasmodics"], "comparator": ">=", "days": 42}
    chart = [med_request("Baclofen 10 MG Oral Tablet", authored, end, "completed")]
    result = run("medication-duration", six_weeks, chart)
    assert (result.status, result.finding) == (Status.MET, "6 weeks documented, 1 Mar 2025 → 12 Apr 2025")


def test_a_met_course_names_its_longest_time_without_an_order() -> None:
    """Contract §3 spans a course from its first start to its last end, so two one-month orders five
    months apart meet "at least 6 months" (synthea19 H3): the finding says the span holds no order from
    the first's end to the second's start, for the reviewer; orders a few days apart say nothing more."""
    six_months = {"valuesets": ["opioids"], "comparator": ">=", "months": 6}
    apart = [
        med_request("Oxycodone 5 MG Oral Tablet", "2025-07-07", "2025-08-06"),
        med_request("Oxycodone 5 MG Oral Tablet", "2025-12-19", "2026-01-18"),
    ]
    result = run("medication-duration", six_months, apart)
    assert result.status == Status.MET
    assert result.finding.endswith("7 Jul 2025 → 18 Jan 2026; no order 6 Aug 2025 → 19 Dec 2025")
    close = [
        med_request("Oxycodone 5 MG Oral Tablet", "2025-07-07", "2025-10-06"),
        med_request("Oxycodone 5 MG Oral Tablet", "2025-10-20", "2026-01-18"),
    ]
    assert run("medication-duration", six_months, close).finding.endswith("7 Jul 2025 → 18 Jan 2026")
    open_statement = {  # still taken (no end to its period): it covers the time up to the order (review19 L4)
        "resourceType": "MedicationStatement",
        "id": "ms-open",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept(RX, "7804", "oxycodone"),
        "effectivePeriod": {"start": "2024-01-01"},
    }
    beside = run("medication-duration", six_months, [open_statement, apart[1]])
    assert beside.status == Status.MET and "no order" not in beside.finding, beside.finding


def test_a_statement_with_an_ended_period_is_ended_and_an_open_one_is_running() -> None:
    def statement(period: dict[str, str]) -> dict[str, Any]:
        return {
            "resourceType": "MedicationStatement",
            "id": f"ms-{len(period)}",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": concept(RX, "999999", "Oxycodone 5 MG Oral Tablet"),
            "effectivePeriod": period,
        }

    ended = statement({"start": "2026-09-01", "end": "2026-10-01"})
    assert run("medication-duration", OPIOIDS_6WK, [ended]).status == Status.NOT_MET
    running = run("medication-duration", OPIOIDS_6WK, [statement({"start": "2026-10-17"})])
    assert running.status == Status.NOT_DOCUMENTED
    assert running.finding == (
        "a medication statement records it since 17 Oct 2026 with no end, so how long it was taken is not "
        "documented (needs more than 6 weeks): record the orders or when it ended"
    )
    older_order = med_request("Oxycodone 5 MG Oral Tablet", "2026-10-01", "2026-10-05", "completed")
    beside = run("medication-duration", OPIOIDS_6WK, [older_order, statement({"start": "2026-10-17"})])
    assert "statement records it since 17 Oct 2026" in beside.finding  # its own start, not the order's


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("M1", Status.MET),
        ("pM1b", Status.MET),
        ("cM1a", Status.MET),
        ("M0", Status.NOT_MET),
        ("MX", Status.NOT_DOCUMENTED),
    ],
)
def test_observation_category_reads_a_coded_stage(value: str, status: Status) -> None:
    params = {"loinc": ["21907-1", "21901-4"], "met": ["M1"], "not_met": ["M0"]}
    assert run("observation-category", params, [metastasis_stage(value, "2026-09-01")]).status == status


@pytest.mark.parametrize(
    ("valueset", "code", "display"),
    [
        ("physical-therapy", "91251008", "Physical therapy procedure"),
        ("underlying-treatment", "387731002", "Laminectomy"),
        ("underlying-treatment", "50172003", "Lumbar spinal fusion"),
        ("psych-evaluation", "10197000", "Psychiatric interview and evaluation"),
    ],
)
def test_a_therapy_coded_in_snomed_is_read(valueset: str, code: str, display: str) -> None:
    """Contract §3: therapies tried are `Procedure.code` in CPT or SNOMED CT."""
    done = procedure(code, "2025-06-01", system=SCT, display=display)
    assert run("procedure-history", {"valuesets": [valueset]}, [done]).status == Status.MET


MCODE_CM1 = {"system": SCT, "code": "1229903009", "display": "American Joint Committee on Cancer cM1"}


@pytest.mark.parametrize(
    ("stage", "status"),
    [
        ({"coding": [MCODE_CM1]}, Status.MET),  # mCODE's SNOMED CT coding: the stage in its display
        ({"coding": [{**MCODE_CM1, "display": None}], "text": "cM1"}, Status.MET),
        ({"coding": [MCODE_CM1, {"system": "http://cancerstaging.org", "code": "cM1"}]}, Status.MET),
        ({"coding": [{"system": SCT, "code": "1229901006", "display": "AJCC cM0"}]}, Status.NOT_MET),
        ({"coding": [{"system": SCT, "code": "1229903009"}]}, Status.NOT_DOCUMENTED),  # no words to read
    ],
)
def test_a_stage_coded_in_snomed_is_read_from_its_words(stage: dict[str, Any], status: Status) -> None:
    """Contract §3: LOINC 21907-1 / 21901-4 "with an M1 value", in whichever coding or text says it."""
    params = {"loinc": ["21907-1", "21901-4"], "met": ["M1"], "not_met": ["M0"]}
    observation_ = observation(LOINC, "21907-1", "2026-09-01", valueCodeableConcept=stage)
    outcome = run("observation-category", params, [observation_])
    assert outcome.status == status
    if status == Status.MET:
        assert "cM1" in outcome.finding


def test_an_assessment_answered_in_text_beside_a_foreign_coding_is_read_by_its_text() -> None:
    """Contract §5: "a bare `text` equal to the code is accepted too", whatever other coding the EHR adds."""
    params = {"code": "it-trial-side-effects", "met": ["none", "minimal"], "not_met": ["unacceptable"]}
    local = {"coding": [{"system": "urn:oid:1.2.3.4", "code": "SE-0", "display": "None"}], "text": "none"}
    answered = assessment("it-trial-side-effects", valueCodeableConcept=local)
    assert run("assessment", params, [answered]).status == Status.MET
    prose = {
        "coding": [{"system": "urn:oid:1.2.3.4", "code": "minimal"}],
        "text": "Mild nausea, settled in a day",
    }
    by_its_code = assessment("it-trial-side-effects", valueCodeableConcept=prose)
    # prose is no answer code, and a code of another system is no answer (contract review s17 F4)
    assert run("assessment", params, [by_its_code]).status == Status.NOT_DOCUMENTED


@pytest.mark.parametrize(
    ("coding", "status"),
    [
        ({"system": ASSESS, "code": "none"}, Status.MET),
        ({"code": "none"}, Status.MET),  # the code written bare, as a bare text may be
        ({"system": "http://example.org/other", "code": "none"}, Status.NOT_DOCUMENTED),
        ({"system": SCT, "code": "none", "display": "None"}, Status.NOT_DOCUMENTED),
    ],
)
def test_an_assessment_answer_coded_in_another_code_system_is_no_answer(
    coding: dict[str, Any], status: Status
) -> None:
    """Contract §5: "For a CodeableConcept value the coding's system is the same CodeSystem URL; a bare
    `text` equal to the code is accepted too." A coding of any system was read as the answer
    (contract review s17 F4)."""
    params = {"code": "it-trial-side-effects", "met": ["none", "minimal"], "not_met": ["unacceptable"]}
    answered = assessment("it-trial-side-effects", valueCodeableConcept={"coding": [coding]})
    outcome = run("assessment", params, [answered])
    assert outcome.status == status, outcome.finding
    if status == Status.NOT_DOCUMENTED:
        assert outcome.finding == "recorded “none” in another code system: not read as an answer"


def test_assessment_absence_rule_when_asked() -> None:
    params: dict[str, Any] = {
        "code": "body-size-adequate",
        "met": [True],
        "not_met": [False],
        "when_absent": "met",
    }
    assert run("assessment", params, []).status == Status.MET
    assert run("assessment", params, [assessment("body-size-adequate", valueBoolean=False)]).status == (
        Status.NOT_MET
    )


def test_no_condition_unless_a_specific_diagnosis_is_present() -> None:
    params = {"valuesets": ["chronic-pain"], "unless_present": ["pain-cause"]}
    only_generic = [condition(ICD, "G89.4", "2020-01-01")]
    assert run("no-condition", params, only_generic).status == Status.NOT_MET
    assert (
        run("no-condition", params, [*only_generic, condition(ICD, "M96.1", "2020-01-01")]).status
        == Status.MET
    )


def test_no_condition_can_ask_instead_of_refusing() -> None:
    params = {
        "valuesets": ["infection"],
        "when_found": "not-documented",
        "found_finding": "confirm it is cleared",
    }
    outcome = run("no-condition", params, [condition(ICD, "L03.115", "2026-11-01")])
    assert (outcome.status, outcome.finding) == (Status.NOT_DOCUMENTED, "confirm it is cleared")


def test_assessment_codes_in_questionnaire_answers_are_read() -> None:
    assert concept(ASSESS, "x")["coding"][0]["system"] == ASSESS  # builders speak the contract's system


@pytest.mark.parametrize(
    ("today", "later", "status"),
    [
        (date(2025, 10, 2), (), Status.NOT_DOCUMENTED),  # within the 48 hours: a later score may come
        (date(2025, 10, 4), (), Status.NOT_MET),  # they are over: 0 h is the documented run
        (
            date(2025, 10, 2),
            (("2025-10-01T12:00:00Z", 6), ("2025-10-02T20:00:00Z", 2)),
            Status.NOT_DOCUMENTED,
        ),
        (date(2025, 10, 2), (("2025-10-01T12:00:00Z", 6), ("2025-10-03T05:00:00Z", 2)), Status.NOT_MET),
    ],
)
def test_relief_still_present_at_the_last_score_is_not_documented_while_it_may_yet_last(
    today: date, later: tuple[tuple[str, float], ...], status: Status
) -> None:
    """Contract §3: "Not documented" is "for a course still running that may yet reach the threshold";
    evidence that falls short fails. The post scores end 48 hours after the trial's start (§4), so
    relief held at the last score may yet last 8 hours only while a later score can still count and
    the run began at least 8 hours before they end (relief lost at +3 h, back at +35 h: it may; back at
    +44 h: it cannot)."""
    chart = [
        procedure("62324", TRIAL),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(3, "2025-10-01T10:00:00Z"),
        *(pain(score, when) for when, score in later),
    ]
    params = {"comparator": ">=", "percent": 50, "min_hours": 8}
    outcome = run("trial-relief", params, chart, today=today)
    assert outcome.status == status, outcome.finding


def test_a_test_type_declared_twice_stops_start_up() -> None:
    """The registry is assembled from the family modules; one name in two of them is refused."""

    def family(module_name: str) -> types.ModuleType:
        module = types.ModuleType(module_name)

        def check(params: Any, ctx: Any) -> TestOutcome:
            return TestOutcome(Status.MET)

        check.__module__ = module_name
        module.declared = declared_as("same-name", params={}, reads=())(check)  # type: ignore[attr-defined]
        return module

    assert set(collect(family("first"))) == {"same-name"}
    with pytest.raises(ValueError, match="test type 'same-name' is declared twice"):
        collect(family("first"), family("second"))


def test_every_declared_parameter_kind_checks_its_values() -> None:
    """A kind refuses what is not its kind and accepts what is (the compiler adds where)."""
    terminology = catalog().terminology
    assert Count().check(3, terminology) is None and Count().check(0, terminology)
    assert Flag().check(True, terminology) is None and Flag().check("yes", terminology)
    assert Comparator((">", ">=")).check("<", terminology)
    assert ValueSets().check(["opioids"], terminology) is None
    assert "unknown value set 'nope'" in (ValueSets().check(["nope"], terminology) or "")


def test_medication_failure_reads_the_records_and_dates_each_line() -> None:
    """Stopped-with-reason orders and intolerances, newest first, each dated (a stopped order by its
    authoredOn, as contract §3 dates a MedicationRequest; an intolerance by its onset, else its
    recordedDate); the outcome assessment is a form of its own."""
    older = med_request("Oxycodone 5 MG Oral Tablet", "2024-01-01", "2024-02-01", "stopped", reason="nausea")
    newer = med_request(
        "Oxycodone 10 MG Oral Tablet", "2025-05-01", "2025-06-01", "stopped", reason="no relief"
    )
    onset = allergy("Morphine", "7052", "intolerance", recorded="2025-08-01")
    onset["onsetDateTime"] = "2025-07-01"
    chart = [older, newer, onset, coded_assessment("opioid-trial-outcome", "effective", "2026-01-01")]
    outcome = run("medication-failure", {"valuesets": ["opioids"]}, chart)
    assert outcome.status == Status.MET
    assert [(e.text, e.date and e.date.date().isoformat()) for e in outcome.evidence] == [
        ("Oxycodone 10 MG Oral Tablet stopped: no relief", "2025-05-01"),
        ("Oxycodone 5 MG Oral Tablet stopped: nausea", "2024-01-01"),
        ("intolerance: Morphine", "2025-07-01"),
    ]
    recorded = run(
        "medication-failure",
        {"valuesets": ["opioids"]},
        [allergy("Morphine", "7052", "intolerance", "2025-08-01")],
    )
    assert recorded.dated is not None and recorded.dated.date().isoformat() == "2025-08-01"
    only_outcome = run("medication-failure", {"valuesets": ["opioids"]}, chart[3:])
    assert only_outcome.status == Status.NOT_DOCUMENTED


@pytest.mark.parametrize("status", ["inactive", "resolved"])
def test_an_intolerance_no_longer_active_still_records_the_drug_failed(status: str) -> None:
    """Contract §3's drug-failure row has no clinicalStatus filter (the allergy row has): an intolerance
    set inactive once the drug was stopped still documents the failure, and is no allergy now."""
    past = allergy("Oxycodone", "7804", "intolerance", recorded="2025-04-10")
    past["clinicalStatus"] = {"coding": [{"code": status}]}
    assert run("medication-failure", {"valuesets": ["opioids"]}, [past]).status == Status.MET
    morphine_allergy = allergy("Morphine", "7052", "allergy", recorded="2025-04-10")
    past_allergy = {**morphine_allergy, "clinicalStatus": past["clinicalStatus"]}
    params = {"valuesets": ["it-infusates"]}
    for entry, status_now in ((morphine_allergy, Status.NOT_MET), (past_allergy, Status.MET)):
        assert run("no-infusate-allergy", params, [entry], drugs=(infusate_request(),)).status == status_now


def test_an_intolerance_coded_as_a_snomed_substance_is_a_drug_failure() -> None:
    """Contract §3 names the drug of an AllergyIntolerance by RxNorm ingredient or SNOMED substance, or
    text: morphine (SNOMED 373529000) with no display is an intolerance to an opioid."""
    intolerance = allergy("", kind="intolerance", recorded="2025-06-01")
    intolerance["code"] = concept(SCT, "373529000")
    outcome = run("medication-failure", {"valuesets": ["opioids"]}, [intolerance])
    assert outcome.status == Status.MET, outcome.finding


def test_a_stopped_statement_is_not_a_drug_failure() -> None:
    """Contract §3: a stopped MedicationRequest with a reason is a failure; a MedicationStatement,
    what the patient reports taking, is not one of the forms."""
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-oxy",
        "status": "stopped",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept(RX, "7804", "oxycodone 5 MG Oral Tablet"),
        "effectivePeriod": {"start": "2025-01-01", "end": "2025-03-01"},
        "statusReason": [{"text": "ineffective"}],
    }
    outcome = run("medication-failure", {"valuesets": ["opioids"]}, [statement])
    assert outcome.status == Status.NOT_DOCUMENTED, outcome.finding


PACEMAKER_DEVICE = {"valueset": "programmable-device"}


@pytest.mark.parametrize(
    ("implant", "removal"),
    [("33249", "33241"), ("33270", "33241"), ("61885", "61888"), ("64568", "64570"), ("64590", "64595")],
)
def test_a_later_removal_of_the_generator_undoes_the_implant(implant: str, removal: str) -> None:
    """Contract §3: "a completed implant Procedure with no later removal". Only the pacemaker's and
    the spinal stimulator's removals undid an implant before: a defibrillator taken out still read as
    in place, and the order as not covered (contract review F2)."""
    implanted = procedure(implant, "2019-01-01")
    removed = run("no-device", PACEMAKER_DEVICE, [implanted, procedure(removal, "2024-03-01")])
    assert (removed.status, removed.finding) == (Status.MET, "none in place: the device was removed")
    put_back = [implanted, procedure(removal, "2024-03-01"), procedure(implant, "2025-06-01")]
    assert run("no-device", PACEMAKER_DEVICE, put_back).status == Status.NOT_MET


@pytest.mark.parametrize("removal", ["63688", "61888", "64570", "64595"])
def test_one_neurostimulators_removal_leaves_the_presence_of_any_neurostimulator_in_place(
    removal: str,
) -> None:
    """Z96.82 is the presence code of every neurostimulator: the removal of one says nothing of another
    (session review s35, R5), so an active Z96.82 stays until the problem list resolves it."""
    chart = [condition(ICD, "Z96.82", "2019-01-01"), procedure(removal, "2024-03-01")]
    outcome = run("no-device", PACEMAKER_DEVICE, chart)
    assert outcome.status == Status.NOT_MET, outcome.finding


@pytest.mark.parametrize(
    ("chart", "status", "undecided"),
    [
        ([condition(ICD, "Z95.0", "2020-01-01"), procedure("33233", "2023-05-01")], Status.MET, ""),
        (
            [condition(ICD, "Z95.0", "2023-05-01"), procedure("33233", "2023-05-01")],
            Status.NOT_MET,
            "",
        ),  # same day
        # undated: the dates cannot tell which came first, so it is left open, a presence as an implant (the
        # lead's decision, s31, of review31a M2; test_removal_undated.py): evaluate.py says it "could not be
        # checked" for why
        (
            [condition(ICD, "Z95.0", onset=None), procedure("33233", "2023-05-01")],
            Status.NOT_MET,
            "removal CPT 33233 (1 May 2023) may have come later",
        ),
        ([procedure("33207", "2020-01-01"), procedure("33233", "2023-05-01")], Status.MET, ""),
        ([device({"text": "Cardiac pacemaker"}), procedure("33233", "2023-05-01")], Status.NOT_MET, ""),
    ],
)
def test_no_device_lets_the_most_recent_of_a_device_and_its_removal_decide(
    chart: list[dict[str, Any]], status: Status, undecided: str
) -> None:
    """A removal undoes an earlier implant or presence code of its device (an undated presence is left open,
    `undecided`: the dates cannot tell which came first); an active Device is the current state, with no
    date for a removal to be after."""
    outcome = run("no-device", PACEMAKER_DEVICE, chart)
    assert (outcome.status, outcome.undecided) == (status, undecided)


def test_a_device_cleared_by_its_removal_shows_the_removal_but_rests_on_absence() -> None:
    """The removal documents that one device is gone, not that no other is: still "met by absence", so
    an unreadable resource type keeps the exclusion unchecked."""
    outcome = run(
        "no-device",
        PACEMAKER_DEVICE,
        [condition(ICD, "Z95.0", "2020-01-01"), procedure("33233", "2023-05-01")],
    )
    assert (outcome.status, outcome.by_absence) == (Status.MET, True)
    assert [e.text for e in outcome.evidence] == ["removal: CPT 33233 (1 May 2023)"]
    assert run("no-device", PACEMAKER_DEVICE, []).finding == "none documented"


def mas(score: str, when: str) -> dict[str, Any]:
    return coded_assessment("modified-ashworth-score", score, when)


@pytest.mark.parametrize(
    ("before", "after", "points", "status", "finding"),
    [
        # 1+ as 1.5 and 1+ as a grade of its own agree: the reading does not matter
        ("3", "1", 2, Status.MET, "2 points on the Modified Ashworth scale (needs 2 points)"),
        ("2", "1+", 0.5, Status.MET, "0.5 points"),
        ("2", "2", 1, Status.NOT_MET, "0 points on the Modified Ashworth scale (needs 1 point)"),
        # they disagree: never a denial on one reading nor an approval on the other
        (
            "2",
            "1+",
            1,
            Status.NOT_DOCUMENTED,
            "1 grade with 1+ as a grade of its own, 0.5 points with 1+ as 1.5, on the Modified Ashworth",
        ),
        (
            "3",
            "1+",
            2,
            Status.NOT_DOCUMENTED,
            "2 grades with 1+ as a grade of its own, 1.5 points with 1+ as 1.5",
        ),
        ("1+", "1", 1, Status.NOT_DOCUMENTED, "for the reviewer"),
        ("3", "1+", 3, Status.NOT_MET, "1.5 points on the Modified Ashworth scale (needs 3 points)"),
    ],
)
def test_modified_ashworth_1_plus_in_a_trial_response(
    before: str, after: str, points: float, status: Status, finding: str
) -> None:
    """AMB-14 d: 1+ stored as 1.5 or as one of six grades. A reduction that meets the bar only when
    1+ counts as a grade is for the reviewer, not a denial (2 -> 1+ under Cohere's one point)."""
    chart = [
        procedure("62324", TRIAL),
        mas(before, "2025-10-01T08:00:00Z"),
        mas(after, "2025-10-01T12:00:00Z"),
    ]
    outcome = run("scale-trial-response", {"points": points}, chart)
    assert outcome.status == status, outcome.finding
    assert finding in outcome.finding


def test_a_response_left_to_the_reviewer_in_grades_states_the_recorded_duration() -> None:
    """3 -> 1+ at one score, and 6 h recorded: the recorded duration decides how long it lasted (contract
    §4), so the finding the reviewer reads gives the 6 h, not the scores' 0 h."""
    chart = [
        procedure("62324", TRIAL),
        mas("3", "2025-10-01T08:00:00Z"),
        mas("1+", "2025-10-01T12:00:00Z"),
        assessment("it-trial-response-duration-h", valueQuantity={"value": 6, "unit": "h"}),
    ]
    outcome = run("scale-trial-response", {"points": 2, "hours": 4}, chart)
    assert (outcome.status, outcome.for_reviewer) == (Status.NOT_DOCUMENTED, True), outcome.finding
    assert "on the Modified Ashworth scale, for 6 h as recorded (needs 2 points for 4 h)" in outcome.finding


def test_a_response_waiting_on_a_later_score_is_asked_for_not_left_to_the_reviewer() -> None:
    """3 -> 1+, 1+, then 1 at the last score, the day after the trial: 2 points only at the last
    score, and the trial's 48 hours not over, so how long it lasts is open (a later score decides,
    contract §3 "a course still running"), whatever the grades say. Once they are over, the 0 h the
    scores show is the response (below the policy's example: for the reviewer)."""
    chart = [
        procedure("62324", TRIAL),
        mas("3", "2025-10-01T08:00:00Z"),
        mas("1+", "2025-10-01T10:00:00Z"),
        mas("1+", "2025-10-01T14:00:00Z"),
        mas("1", "2025-10-01T15:00:00Z"),
    ]
    params = {"points": 2, "hours": 4, "example": True}
    outcome = run("scale-trial-response", params, chart, today=date(2025, 10, 2))
    assert outcome.status == Status.NOT_DOCUMENTED and not outcome.for_reviewer, outcome.finding
    assert "the response held at the last score, within the 48 hours after the trial" in outcome.finding
    over = run("scale-trial-response", params, chart, today=date(2025, 10, 4))
    assert over.status == Status.NOT_DOCUMENTED and over.for_reviewer, over.finding
    lasting = run(
        "scale-trial-response", {"points": 2, "hours": 4}, [*chart, mas("1", "2025-10-01T19:00:00Z")]
    )
    assert lasting.status == Status.MET


@pytest.mark.parametrize(
    ("value", "points", "status"),
    [
        (0.5, 1, Status.NOT_DOCUMENTED),
        (1.5, 2, Status.NOT_DOCUMENTED),
        (0.5, 2, Status.NOT_MET),
        (1, 2, Status.NOT_MET),
    ],
)
def test_a_recorded_half_point_on_the_modified_ashworth_scale_is_for_the_reviewer(
    value: float, points: float, status: Status
) -> None:
    """A half point comes from counting 1+ as 1.5; as a grade of its own it is one more (AMB-14 d)."""
    reduction = assessment("it-trial-scale-reduction", valueQuantity={"value": value, "unit": "points"})
    reduction["component"] = [{"code": {"text": "scale"}, "valueString": "modified-ashworth"}]
    outcome = run("scale-trial-response", {"points": points}, [reduction])
    assert outcome.status == status, outcome.finding
    assert outcome.for_reviewer == (status == Status.NOT_DOCUMENTED)


@pytest.mark.parametrize(
    ("recorded_at", "status"), [("2025-10-01T16:00:00Z", Status.MET), ("2025-09-20", Status.NOT_MET)]
)
def test_a_recorded_response_duration_decides_how_long_a_computed_response_lasted(
    recorded_at: str, status: Status
) -> None:
    """As for pain relief (contract §4, "work the same way"): it-trial-response-duration-h decides
    beside a reduction computed from scores, when it was recorded for this trial. One of an earlier
    trial does not, and the 0 h the scores show, the trial's 48 hours long over, falls short."""
    chart = [
        procedure("62324", TRIAL),
        mas("3", "2025-10-01T08:00:00Z"),
        mas("1", "2025-10-01T10:00:00Z"),
        assessment("it-trial-response-duration-h", recorded_at, valueQuantity={"value": 6, "unit": "h"}),
    ]
    outcome = run("scale-trial-response", {"points": 2, "hours": 4}, chart)
    assert outcome.status == status, outcome.finding
    if status == Status.MET:
        assert "for 6 h as recorded" in outcome.finding


def test_the_devices_in_place_are_named_by_their_first_name_and_the_rest_counted() -> None:
    """cardfix20 F4e: "documented: device: Implantable cardiac pacemaker | Dual-chamber implantable
    pacemaker and 1 more": the Device's pipe-joined label shown raw, and the one more never named. Two
    are named, each Device by the first of its type and names, the rest counted."""
    pacemaker = device({"text": "Implantable cardiac pacemaker", "coding": [{"display": "Dual-chamber"}]})
    chart = [pacemaker, condition(ICD, "Z95.0", "2023-06-01"), condition(ICD, "Z96.82", "2022-01-01")]
    outcome = run("no-device", PACEMAKER_DEVICE, chart)
    assert outcome.status == Status.NOT_MET
    assert " | " not in outcome.finding
    assert outcome.finding.startswith("documented: Implantable cardiac pacemaker; ")
    assert outcome.finding.endswith(" and 1 more")
    one = run("no-device", PACEMAKER_DEVICE, [pacemaker])
    assert one.finding == "documented: Implantable cardiac pacemaker"


def test_a_device_in_place_is_named_in_the_finding_without_its_evidence_role() -> None:
    """cards24 LOW 3: "documented: device: Implantable cardiac pacemaker" (and "documented: implant: CPT
    33208 …"), two colons in a row: the finding names a Device by the first of its names, as
    classify.in_place_words does, and an implant as one (implant CPT 33208); the evidence lines keep their
    role. No resource type on a card (test_card_words)."""
    pacemaker = device({"text": "Implantable cardiac pacemaker"})
    outcome = run("no-device", PACEMAKER_DEVICE, [pacemaker, procedure("33208", "2024-01-01")])
    assert outcome.status == Status.NOT_MET
    assert outcome.finding.count(":") == 1, outcome.finding
    assert outcome.finding.startswith("documented: Implantable cardiac pacemaker; implant CPT 33208")
    assert [e.text.split(":")[0] for e in outcome.evidence] == ["device", "implant"]


@pytest.mark.parametrize(
    ("implant", "removal", "status"),
    [
        # the removal at 01:00 UTC on 2 May was three hours before the implant at 23:00-05:00 on 1 May
        ("2023-05-01T23:00:00-05:00", "2023-05-02T01:00:00Z", Status.NOT_MET),
        ("2023-05-01T20:00:00-05:00", "2023-05-02T04:00:00+03:00", Status.NOT_MET),
        # the removal a day after the implant, in whatever offset
        ("2023-05-01T10:00:00-05:00", "2023-05-02T16:00:00Z", Status.MET),
        ("2023-05-01T20:00:00-05:00", "2023-05-02", Status.MET),  # a date is the chart's own day
    ],
)
def test_no_device_weighs_a_removal_in_another_offset_by_the_order_of_the_instants(
    implant: str, removal: str, status: Status
) -> None:
    """review24c LOW 3, in the device rule: each moment's day was read in its own offset, so a removal three
    hours before the implant, written in another offset, read as a later day's and undid it (the device
    in place read as none: met). Days that contradict the instants' order are one day's, and on one day the
    device stands (engine/chart_days.py)."""
    chart = [procedure("33207", implant), procedure("33233", removal)]
    assert run("no-device", PACEMAKER_DEVICE, chart).status == status


@pytest.mark.parametrize(
    ("implant", "removal", "status"),
    [
        ("2023", "2023-06-01", Status.NOT_MET),  # the implant may have been after June
        ("2023-06", "2023-06-20", Status.NOT_MET),
        ("2023-05-10", "2023", Status.NOT_MET),
        ("2023-05", "2023-06-01", Status.MET),
        ("2022", "2023-01", Status.MET),
    ],
)
def test_no_device_reads_an_implant_or_removal_dated_to_a_month_or_a_year_as_each_of_its_days(
    implant: str, removal: str, status: Status
) -> None:
    """review24c LOW 4, in the device rule: an implant dated "2023" read as 1 January, so a removal in June
    undid it, though it may have been put in after; a removal undoes an implant only on a day known to be
    later (engine/chart_days.py), and on one day the device stands."""
    chart = [procedure("33207", implant), procedure("33233", removal)]
    assert run("no-device", PACEMAKER_DEVICE, chart).status == status


def test_no_device_reads_a_presence_diagnosis_dated_to_a_year_as_each_of_its_days() -> None:
    """review24c LOW 4: a pacemaker's presence code dated "2023" is not undone by a removal in June 2023 (it
    may have been recorded of the device put in after), and is by one in 2024."""
    presence = condition(ICD, "Z95.0", "2023")
    assert (
        run("no-device", PACEMAKER_DEVICE, [presence, procedure("33233", "2023-06-01")]).status
        == Status.NOT_MET
    )
    assert (
        run("no-device", PACEMAKER_DEVICE, [presence, procedure("33233", "2024-01-02")]).status == Status.MET
    )


def test_a_procedure_dated_to_a_month_or_a_year_is_named_no_finer_on_the_card() -> None:
    """pump25 LOW 4b: a removal dated "2022" was shown "(1 Jan 2022)", a day the chart does not give."""
    for removed, said in (("2022", "(2022)"), ("2022-03", "(March 2022)"), ("2022-03-05", "(5 Mar 2022)")):
        chart = [procedure("33207", "2021"), procedure("33233", removed)]
        outcome = run("no-device", PACEMAKER_DEVICE, chart)
        assert [e.text for e in outcome.evidence] == [f"removal: CPT 33233 {said}"]
