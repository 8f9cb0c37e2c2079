"""Cohere Health "Intrathecal Pain Pumps - Single Service" (Version 2), evaluated by the pure engine.

Each scenario is one patient; the assertions name the criteria the scenario is about, so a change of
reading shows up as a status change, not only as a different outcome. Readings: policies/cohere.yaml and
policies/notes/cohere.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cards import items
from cards.items import Episode
from cards.render import summary
from service.catalog import load_catalog
from service.engine.model import Determination, Outcome
from service.record import CLINICAL_TYPES
from tests.builders import (
    BACLOFEN_TABLET,
    ICD,
    LOINC,
    OXYCODONE_TABLET,
    RX,
    SCT,
    allergy,
    assessment,
    card_line,
    cards_of,
    coded_assessment,
    concept,
    condition,
    device,
    documentation_steps,
    drug_failure_forms,
    finding_of,
    infusate_request,
    life_expectancy,
    med_request,
    med_statement,
    metastasis_stage,
    muscle_ashworth,
    observation,
    oxycodone,
    pain,
    payer_coverage,
    problem_list_unread,
    procedure,
    service_request,
    sign_request,
    statuses,
    without_codes,
)
from tests.calls import sign_with_chart
from tests.policy_charts import TRIAL_ORDER, cancer_chart, cohere

COHERE = "cohere-intrathecal-pain-pumps"
TRIAL = "2026-10-01T09:00:00Z"
MORPHINE = infusate_request()
BACLOFEN_IT = infusate_request("baclofen 2 MG/ML Injectable Solution", "1292")
IMPLANT = service_request("62362")

NON_MALIGNANT = [
    "cohere.pain.applies",
    "cohere.pain.known-etiology",
    "cohere.pain.targeted-tx-failed",
    "cohere.pain.adl-6mo",
    "cohere.pain.conservative-6mo-in-12mo",
    "cohere.pain.conservative.pharm",
    "cohere.pain.conservative.pt-hep",
    "cohere.pain.conservative.injections-if-indicated",
    "cohere.pain.conservative.cbt-if-suggested",
    "cohere.pain.opioid-failure",
    "cohere.pain.no-further-tx",
    "cohere.pain.psych-clearance",
]
CANCER = [
    "cohere.cancer.applies",
    "cohere.cancer.metastatic",
    "cohere.cancer.le-3mo",
    "cohere.cancer.opioid-failure",
]
SPASTICITY = [
    "cohere.spasticity.oral-6wk",
    "cohere.spasticity.impact-any",
    "cohere.spasticity.noninvasive-fail",
]
NON_INDICATIONS = [
    "cohere.nonind.stenosis-obstruction",
    "cohere.nonind.psychogenic-pain",
    "cohere.nonind.opioid-addiction",
    "cohere.nonind.heparin-antibiotic",
    "cohere.nonind.generalized-pain",
    "cohere.nonind.unstable-mental",
    "cohere.nonind.sud",
    "cohere.nonind.allergy-analgesic",
    "cohere.nonind.thecal-sac-tumor",
    "cohere.nonind.body-size",
]
REPLACEMENT_NON_INDICATIONS = ["cohere.nonind.replace-convenience", "cohere.nonind.replace-functional"]


def found(d: Determination) -> dict[str, str]:
    return statuses(d)


def status_of(d: Determination, criterion: str) -> str:
    return found(d)[criterion]


# --------------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------------


def non_malignant_chart() -> list[dict[str, Any]]:
    """Failed back surgery syndrome meeting every Cohere non-malignant criterion for a trial."""
    return [
        condition(ICD, "M96.1", "2022-03-01", "Postlaminectomy syndrome"),
        procedure("64483", "2025-05-02", display="Transforaminal epidural injection, lumbar"),
        assessment("adl-difficulty-months", "2026-10-20", valueInteger=14),
        med_request("Ibuprofen 800 MG Oral Tablet", "2026-01-01", "2026-09-30", code="197807"),
        procedure("97110", "2026-02-01", display="Therapeutic exercise"),
        assessment("home-exercise-program", "2026-03-01", valueBoolean=True),
        procedure("90834", "2026-04-01", display="Psychotherapy, 45 minutes"),
        oxycodone("2025-06-01", "2025-09-01"),
        coded_assessment("further-treatment-status", "not-indicated", "2026-09-01"),
        procedure("90791", "2026-08-01", display="Psychiatric diagnostic evaluation"),
        assessment("psych-clearance", "2026-08-02", valueBoolean=True),
    ]


def pain_trial(post: float = 4, baseline: float = 8) -> list[dict[str, Any]]:
    return [
        procedure("62324", TRIAL, display="Intrathecal catheter trial"),
        pain(baseline, "2026-09-30T15:00:00Z"),
        pain(post, "2026-10-01T15:00:00Z"),
        coded_assessment("it-trial-side-effects", "minimal", "2026-10-02"),
        assessment("it-trial-patient-acceptance", "2026-10-02", valueBoolean=True),
    ]


def spasticity_chart() -> list[dict[str, Any]]:
    """Spastic diplegic cerebral palsy meeting every Cohere spasticity criterion for a trial."""
    return [
        condition(ICD, "G80.1", "2010-01-01", "Spastic diplegic cerebral palsy"),
        condition(ICD, "L89.154", "2026-06-01", "Pressure ulcer of sacral region, stage 4"),
        med_request(
            "Tizanidine 4 MG Oral Tablet", "2026-01-01", "2026-03-15", "stopped", reason="ineffective"
        ),
    ]


def ashworth(score: int, when: str) -> dict[str, Any]:
    return assessment("ashworth-score", when, valueInteger=score)


def baclofen_trial(before: int = 3, after: int = 2) -> list[dict[str, Any]]:
    return [
        procedure("62323", TRIAL, display="Intrathecal baclofen bolus"),
        ashworth(before, "2026-09-30T15:00:00Z"),
        ashworth(after, "2026-10-01T13:00:00Z"),
    ]


def pump_in_place() -> dict[str, Any]:
    return device({"text": "SynchroMed II intrathecal pump"})


# --------------------------------------------------------------------------------------------------
# Chronic non-malignant pain
# --------------------------------------------------------------------------------------------------


def test_non_malignant_trial_meets_every_criterion() -> None:
    d = cohere(non_malignant_chart(), order=TRIAL_ORDER)
    assert (d.request_kind, d.indication, d.outcome) == ("trial", "non-malignant-pain", Outcome.MEETS)
    s = found(d)
    assert [s[c] for c in NON_MALIGNANT] == ["met"] * len(NON_MALIGNANT)
    assert [s[c] for c in NON_INDICATIONS] == ["met"] * len(NON_INDICATIONS)
    # the cancer block does not apply (not met, not merely undocumented); spasticity is another indication
    assert s["cohere.cancer.applies"] == "not-met"
    assert s["cohere.cancer"] == "not-met"
    assert not [c for c in s if c.startswith("cohere.spasticity")]
    # a trial needs no trial result and is no replacement
    assert "cohere.pain.permanent-trial-ge50" not in s and "cohere.pain.replace" not in s
    assert not set(REPLACEMENT_NON_INDICATIONS) & s.keys()
    assert all(r.citation.startswith("Cohere Health, Intrathecal Pain Pumps") for r in d.criteria)


@pytest.mark.parametrize(
    ("post", "relief", "outcome"),
    [(4, "met", Outcome.MEETS), (5, "not-met", Outcome.DOES_NOT_MEET), (2, "met", Outcome.MEETS)],
)
def test_non_malignant_permanent_pump_needs_at_least_50_percent(
    post: int, relief: str, outcome: Outcome
) -> None:
    d = cohere([*non_malignant_chart(), *pain_trial(post=post)])
    assert d.request_kind == "permanent-implant"
    s = found(d)
    assert s["cohere.pain.permanent-trial-ge50.relief"] == relief  # 8 -> 4 is exactly 50 %
    assert s["cohere.pain.permanent-trial-ge50.side-effects"] == "met"
    assert s["cohere.pain.permanent-trial-ge50.tolerance"] == "met"
    assert s["cohere.pain.permanent-trial-ge50"] == relief
    # only the request's own indication: no cancer or baclofen trial criteria
    assert "cohere.cancer.permanent-trial-ge50" not in s
    assert "cohere.spasticity.permanent-ashworth-1" not in s
    assert d.outcome == outcome


@pytest.mark.parametrize(("pct", "expected"), [(50, "met"), (49.9, "not-met"), (100, "met")])
def test_explicit_relief_boundary(pct: float, expected: str) -> None:
    chart = [
        *non_malignant_chart(),
        assessment("it-trial-pain-relief-pct", "2026-10-02", valueQuantity={"value": pct, "unit": "%"}),
        coded_assessment("it-trial-side-effects", "none", "2026-10-02"),
        assessment("it-trial-patient-acceptance", "2026-10-02", valueBoolean=True),
    ]
    assert status_of(cohere(chart), "cohere.pain.permanent-trial-ge50.relief") == expected


@pytest.mark.parametrize(
    ("side_effects", "expected"),
    [("none", "met"), ("minimal", "met"), ("acceptable", "not-met"), ("unacceptable", "not-met")],
)
def test_trial_side_effects_must_be_minimal(side_effects: str, expected: str) -> None:
    chart = [
        *non_malignant_chart(),
        *without_codes(pain_trial(), "it-trial-side-effects"),
        coded_assessment("it-trial-side-effects", side_effects, "2026-10-03"),
    ]
    d = cohere(chart)
    assert status_of(d, "cohere.pain.permanent-trial-ge50.side-effects") == expected
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


def test_patient_not_tolerating_the_trial_is_not_met() -> None:
    chart = [
        *non_malignant_chart(),
        *without_codes(pain_trial(), "it-trial-patient-acceptance"),
        assessment("it-trial-patient-acceptance", "2026-10-03", valueBoolean=False),
    ]
    d = cohere(chart)
    assert status_of(d, "cohere.pain.permanent-trial-ge50.tolerance") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_permanent_pump_without_a_trial_result_is_insufficient() -> None:
    d = cohere(non_malignant_chart())
    s = found(d)
    assert s["cohere.pain-indication"] == "met"
    assert s["cohere.pain.permanent-trial-ge50.relief"] == "not-documented"
    assert s["cohere.pain.permanent-trial-ge50"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_catheter_alone_is_judged_as_part_of_a_permanent_pump() -> None:
    d = cohere([*non_malignant_chart(), *pain_trial()], order=service_request("62350"))
    assert d.request_kind == "catheter"
    assert status_of(d, "cohere.pain.permanent-trial-ge50") == "met"
    assert d.outcome == Outcome.MEETS


@pytest.mark.parametrize(
    ("months", "expected"),
    [(6, "met"), (5, "not-met"), (0, "not-met"), (600, "met")],
)
def test_adl_difficulty_at_least_six_months(months: int, expected: str) -> None:
    chart = [
        *without_codes(non_malignant_chart(), "adl-difficulty-months"),
        assessment("adl-difficulty-months", "2026-11-01", valueInteger=months),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.adl-6mo") == expected
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


def test_adl_difficulty_is_compared_as_a_number() -> None:
    chart = [
        *without_codes(non_malignant_chart(), "adl-difficulty-months"),
        assessment("adl-difficulty-months", "2026-11-01", valueQuantity={"value": 6.5, "unit": "mo"}),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.adl-6mo") == "met"
    assert "needs at least 6" in finding_of(d, "cohere.pain.adl-6mo")
    short = [
        *without_codes(non_malignant_chart(), "adl-difficulty-months"),
        assessment("adl-difficulty-months", "2026-11-01", valueInteger=5),
    ]
    assert status_of(cohere(short, order=TRIAL_ORDER), "cohere.pain.adl-6mo") == "not-met"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-01-01", "2026-07-01", "met"),  # six calendar months (181 days)
        ("2026-01-01", "2026-06-30", "not-met"),  # a day short: the course ended short (contract §3)
        ("2025-03-01", "2026-04-01", "not-met"),  # 13 months, but only 131 days in the last year
        ("2025-05-01", "2026-06-01", "met"),  # 192 days inside the last year
        ("2024-01-01", "2025-11-01", "not-documented"),  # all of it before the last year: none in it
    ],
)
def test_conservative_care_six_months_within_the_last_year(start: str, end: str, expected: str) -> None:
    chart = [
        *without_codes(without_codes(non_malignant_chart(), "197807"), "1049683"),
        med_request("Ibuprofen 800 MG Oral Tablet", start, end, code="197807"),
        coded_assessment("opioid-trial-outcome", "intolerable", "2026-09-01"),
    ]
    s = found(cohere(chart, order=TRIAL_ORDER))
    assert s["cohere.pain.conservative.pharm"] == expected
    assert s["cohere.pain.conservative-6mo-in-12mo"] == expected


def ibuprofen(start: str, end: str) -> dict[str, Any]:
    return med_request("Ibuprofen 800 MG Oral Tablet", start, end, code="197807")


@pytest.mark.parametrize(
    ("courses", "expected", "from_day"),
    [
        ([("2020-01-01", "2020-02-01"), ("2026-10-01", "2026-11-01")], "not-met", "1 Oct 2026"),
        (
            [("2019-05-01", "2019-06-01"), ("2026-01-05", "2026-02-05"), ("2026-06-10", "2026-07-10")],
            "met",
            "5 Jan 2026",
        ),
        ([("2025-10-01", "2026-06-01")], "met", "21 Nov 2025"),  # cut at the window's start
    ],
    ids=["old-order-of-the-same-drug", "window-course-from-its-first-order", "order-into-the-window"],
)
def test_the_course_within_the_last_year_spans_the_orders_inside_it(
    courses: list[tuple[str, str]], expected: str, from_day: str
) -> None:
    """Synthea charts repeat one drug for decades. Before, an order of the same drug years before the
    window stretched the window's course back to the window's start: one 30-day order in the last
    year read "6 months 9 days documented" (Synthea review, F1)."""
    chart = [*without_codes(non_malignant_chart(), "197807"), *(ibuprofen(*c) for c in courses)]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.conservative.pharm") == expected
    assert from_day in finding_of(d, "cohere.pain.conservative.pharm")


def test_a_course_that_ended_before_the_year_is_named() -> None:
    """Courses on record that all ended before the last 12 months: none is in the year, so it is not
    documented as a chart with no analgesic is (contract §3: absent; more history never reads worse
    than none: session review s36, #3), but the card names the last course. Before, it said no
    prescription was found (xpayer finding 5)."""
    chart = [*without_codes(non_malignant_chart(), "197807"), ibuprofen("2024-01-01", "2025-10-15")]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.conservative.pharm") == "not-documented"
    assert finding_of(d, "cohere.pain.conservative.pharm") == (
        "none in the last 12 months (since 21 Nov 2025): the last course, Ibuprofen 800 MG Oral Tablet, "
        "ended 15 Oct 2025, needs at least 6 months"
    )


def test_a_statement_still_open_from_before_the_year_and_nothing_else_is_not_read_as_none() -> None:
    """An open statement begun before the window is the only record: how long the drug was taken in
    the year is unknown, not absent. Before, it read 'no ... prescription found'."""
    statement = med_statement(concept(RX, "197807", "Ibuprofen 800 MG Oral Tablet"), "active", "2020-01-01")
    chart = [*without_codes(non_malignant_chart(), "197807"), statement]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.conservative.pharm") == "not-documented"
    assert "since 1 Jan 2020 with no end" in finding_of(d, "cohere.pain.conservative.pharm")


def test_a_statement_still_open_from_before_the_year_keeps_the_course_in_it_from_reading_as_ended() -> None:
    """An active MedicationStatement with no end, begun before the window, says the drug is still
    taken: how long it was taken in the year is not documented, as for an open statement anywhere
    (late review). Before, it fell outside the window and the one order in it read 'the course ended
    after 4 weeks 3 days': not met."""
    statement = med_statement(concept(RX, "197807", "Ibuprofen 800 MG Oral Tablet"), "active", "2020-01-01")
    chart = [
        *without_codes(non_malignant_chart(), "197807"),
        statement,
        ibuprofen("2026-10-01", "2026-11-01"),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.conservative.pharm") == "not-documented"
    assert "since 1 Jan 2020 with no end" in finding_of(d, "cohere.pain.conservative.pharm")


def test_conservative_care_needs_pt_home_exercise_injections_and_cbt() -> None:
    chart = non_malignant_chart()
    for code in ("97110", "home-exercise-program", "64483", "90834"):
        chart = without_codes(chart, code)
    d = cohere(chart, order=TRIAL_ORDER)
    s = found(d)
    assert s["cohere.pain.conservative.pt-hep.pt"] == "not-documented"
    assert s["cohere.pain.conservative.pt-hep.hep"] == "not-documented"
    # "if indicated" / "if suggested" have no code: never "not met", the card asks
    assert s["cohere.pain.conservative.injections-if-indicated"] == "not-documented"
    assert s["cohere.pain.conservative.cbt-if-suggested"] == "not-documented"
    assert "not indicated" in finding_of(d, "cohere.pain.conservative.injections-if-indicated")
    assert "did not suggest CBT" in finding_of(d, "cohere.pain.conservative.cbt-if-suggested")
    assert s["cohere.pain.targeted-tx-failed"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    refused = [*chart, assessment("home-exercise-program", "2026-10-01", valueBoolean=False)]
    assert status_of(cohere(refused, order=TRIAL_ORDER), "cohere.pain.conservative.pt-hep") == "not-met"


@pytest.mark.parametrize(
    ("code", "what"),
    [("63047", "Laminectomy"), ("22612", "Lumbar fusion"), ("63685", "Stimulator generator")],
)
def test_spine_surgery_or_a_stimulator_is_not_an_interventional_pain_injection(code: str, what: str) -> None:
    chart = [*without_codes(non_malignant_chart(), "64483"), procedure(code, "2025-04-01", display=what)]
    s = found(cohere(chart, order=TRIAL_ORDER))
    assert s["cohere.pain.conservative.injections-if-indicated"] == "not-documented"
    assert s["cohere.pain.targeted-tx-failed"] == "met"


def test_epidural_steroid_injection_coded_62322_counts_as_an_injection() -> None:
    esi = procedure("62322", "2025-04-01", display="Lumbar epidural steroid injection")
    esi["usedCode"] = [{"text": "triamcinolone acetonide 40 MG/ML"}]
    chart = [*without_codes(non_malignant_chart(), "64483"), esi]
    s = found(cohere(chart, order=TRIAL_ORDER))
    assert s["cohere.pain.conservative.injections-if-indicated"] == "met"
    assert s["cohere.pain.targeted-tx-failed"] == "met"


@pytest.mark.parametrize(
    ("status", "expected"), [("not-indicated", "met"), ("refused", "met"), ("planned", "not-met")]
)
def test_further_treatment_not_indicated_or_refused(status: str, expected: str) -> None:
    chart = [
        *without_codes(non_malignant_chart(), "further-treatment-status"),
        coded_assessment("further-treatment-status", status, "2026-10-01"),
    ]
    assert status_of(cohere(chart, order=TRIAL_ORDER), "cohere.pain.no-further-tx") == expected


def test_psychological_evaluation_and_clearance_are_both_needed() -> None:
    not_cleared = [
        *without_codes(non_malignant_chart(), "psych-clearance"),
        assessment("psych-clearance", "2026-08-03", valueBoolean=False),
    ]
    d = cohere(not_cleared, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.psych-clearance") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET
    evaluation_only = without_codes(non_malignant_chart(), "psych-clearance")
    s = found(cohere(evaluation_only, order=TRIAL_ORDER))
    assert s["cohere.pain.psych-clearance.evaluation"] == "met"
    assert s["cohere.pain.psych-clearance.cleared"] == "not-documented"


def test_a_not_cleared_before_a_later_evaluation_answers_for_the_earlier_one_only() -> None:
    """As GEHA's: the later evaluation's result is not documented; a stale "no" is not "not covered"
    (session review s36, #5)."""
    chart = [
        *without_codes(non_malignant_chart(), "psych-clearance", "90791"),
        assessment("psych-clearance", "2025-03-01", valueBoolean=False),
        procedure("90791", "2026-08-01", display="Psychiatric diagnostic evaluation"),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.psych-clearance.cleared") == "not-documented"
    assert d.outcome != Outcome.DOES_NOT_MEET


def test_a_clearance_coded_yes_is_not_the_yes_no_answer_read_and_the_card_says_so_plainly() -> None:
    """Contract §5 reads `psych-clearance` as a valueBoolean. Before, a coded "yes" read "recorded
    yes, not one of yes" (clinical review 3, M5)."""
    coded = [
        *without_codes(non_malignant_chart(), "psych-clearance"),
        coded_assessment("psych-clearance", "yes", "2026-08-03"),
    ]
    d = cohere(coded, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.psych-clearance.cleared") == "not-documented"
    assert finding_of(d, "cohere.pain.psych-clearance.cleared") == (
        "recorded yes as a code, where a yes/no answer is read"
    )


@pytest.mark.parametrize(
    ("opioid", "expected_routes"),
    [
        (("fentanyl 25 MCG/HR Transdermal System", "245134"), "met"),
        (("morphine sulfate 10 MG/ML Injectable Solution", "892531"), "met"),
        (("Oxycodone Hydrochloride 10 MG Oral Tablet", "1049683"), "met"),
    ],
)
def test_any_one_of_the_three_opioid_routes(opioid: tuple[str, str], expected_routes: str) -> None:
    display, code = opioid
    chart = [
        *without_codes(non_malignant_chart(), "1049683"),
        med_request(display, "2025-06-01", "2025-09-01", "stopped", reason="nausea", code=code),
    ]
    s = found(cohere(chart, order=TRIAL_ORDER))
    assert s["cohere.pain.opioid-failure.routes"] == expected_routes
    assert s["cohere.pain.opioid-failure.failure"] == "met"


@pytest.mark.parametrize("route", ["SC", "SQ", "s.c.", "SubQ", "subcut"])
def test_an_opioid_routed_sc_or_sq_is_the_subcutaneous_opioid(route: str) -> None:
    """s29 F1: Cohere's "subcutaneous opioids" read route-injectable, whose words lacked "SC" and "SQ": a
    morphine order whose route was typed so was no opioid of the three routes; so too "SubQ" and "subcut"
    (review29d: ISMP's forms in their place)."""
    morphine = med_request("morphine sulfate 10 MG", "2025-06-01", "2025-09-01", "stopped", reason="nausea")
    morphine["dosageInstruction"] = [{"route": {"text": route}}]
    s = found(cohere([*without_codes(non_malignant_chart(), "1049683"), morphine], order=TRIAL_ORDER))
    assert s["cohere.pain.opioid-failure.routes.subcutaneous"] == "met"
    assert s["cohere.pain.opioid-failure.routes"] == "met"


def test_opioids_documented_as_effective_are_not_a_failure() -> None:
    chart = [*non_malignant_chart(), coded_assessment("opioid-trial-outcome", "effective", "2026-10-15")]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.pain.opioid-failure.failure") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_no_known_etiology_leaves_the_block_undocumented() -> None:
    chart = [*without_codes(non_malignant_chart(), "M96.1"), condition(ICD, "G89.29", "2022-01-01")]
    d = cohere(chart, order=TRIAL_ORDER)
    s = found(d)
    assert s["cohere.pain.applies"] == "met"  # no malignancy: the block applies
    assert s["cohere.pain.known-etiology"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


# --------------------------------------------------------------------------------------------------
# Malignant cancer-related pain
# --------------------------------------------------------------------------------------------------


def test_cancer_trial_meets_every_criterion() -> None:
    d = cohere(cancer_chart(), order=TRIAL_ORDER)
    assert (d.request_kind, d.indication, d.outcome) == ("trial", "cancer-pain", Outcome.MEETS)
    s = found(d)
    assert [s[c] for c in CANCER] == ["met"] * len(CANCER)
    assert s["cohere.cancer.opioid-failure.routes.transdermal"] == "met"
    assert s["cohere.pain.applies"] == "not-met"  # only a malignancy: the non-malignant block does not apply
    assert s["cohere.pain"] == "not-met"
    assert [s[c] for c in NON_INDICATIONS] == ["met"] * len(NON_INDICATIONS)
    # the audit's reading of the met check: not "Cancer-related pain: none documented" (UM review UM-9)
    assert finding_of(d, "cohere.cancer.applies") == "no non-malignant pain diagnosis to rule it out"


def test_cancer_permanent_pump_needs_the_trial_result() -> None:
    d = cohere([*cancer_chart(), *pain_trial(post=3)])
    s = found(d)
    assert d.outcome == Outcome.MEETS
    assert s["cohere.cancer.permanent-trial-ge50"] == "met"
    assert "cohere.pain.permanent-trial-ge50" not in s
    failed = cohere([*cancer_chart(), *pain_trial(post=6)])
    assert status_of(failed, "cohere.cancer.permanent-trial-ge50.relief") == "not-met"
    assert failed.outcome == Outcome.DOES_NOT_MEET


def test_cancer_without_metastasis_is_not_documented() -> None:
    chart = without_codes(cancer_chart(), "C78.7")
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.cancer.metastatic") == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    snomed = [*chart, condition(SCT, "128462008", "2026-05-01", "Secondary malignant neoplastic disease")]
    assert status_of(cohere(snomed, order=TRIAL_ORDER), "cohere.cancer.metastatic") == "met"
    lymph = [*chart, condition(ICD, "C77.3", "2026-05-01")]  # "secondary and unspecified" (AMB-11)
    assert status_of(cohere(lymph, order=TRIAL_ORDER), "cohere.cancer.metastatic") == "met"


@pytest.mark.parametrize(
    ("quantity", "loinc_status"),
    [
        ({"value": 3, "unit": "mo"}, "met"),  # exactly three months
        ({"value": 0.25, "unit": "a"}, "met"),
        ({"value": 2.9, "unit": "mo"}, "not-met"),
        ({"value": 12, "unit": "wk"}, "not-met"),
        ({"value": 3}, "not-documented"),  # no unit (AMB-48)
    ],
)
def test_life_expectancy_three_months_or_more(quantity: dict[str, Any], loinc_status: str) -> None:
    chart = [
        *without_codes(cancer_chart(), "life-expectancy-ge-3mo"),
        observation(LOINC, "75327-7", "2026-11-01", valueQuantity=quantity),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    s = found(d)
    # the estimate alone decides: a short one is a documented failure (contract §3), not a missing fact
    assert s["cohere.cancer.le-3mo.recorded"] == loinc_status
    assert s["cohere.cancer.le-3mo"] == loinc_status


def test_the_most_recent_form_of_life_expectancy_decides() -> None:
    older_yes = [
        *without_codes(cancer_chart(), "life-expectancy-ge-3mo"),
        assessment("life-expectancy-ge-3mo", "2025-10-01", valueBoolean=True),
    ]
    d = cohere([*older_yes, life_expectancy(2, "mo", "2026-11-20")], order=TRIAL_ORDER)
    assert status_of(d, "cohere.cancer.le-3mo") == "not-met"
    line = card_line(d, "cohere.cancer.le-3mo.recorded")
    assert "(20 Nov 2026" in line and "overrules life expectancy at least 3 months: yes (1 Oct 2025" in line
    newer_yes = [
        *without_codes(cancer_chart(), "life-expectancy-ge-3mo"),
        life_expectancy(2, "mo", "2025-10-01"),
        assessment("life-expectancy-ge-3mo", "2026-11-20", valueBoolean=True),
    ]
    assert status_of(cohere(newer_yes, order=TRIAL_ORDER), "cohere.cancer.le-3mo") == "met"


def test_metastasis_as_a_condition_or_an_m1_stage_the_most_recent_deciding() -> None:
    staged = [*without_codes(cancer_chart(), "C78.7"), metastasis_stage("pM1b", "2026-05-01", "21901-4")]
    assert status_of(cohere(staged, order=TRIAL_ORDER), "cohere.cancer.metastatic") == "met"
    restaged = [*cancer_chart(), metastasis_stage("M0", "2026-10-01")]  # C78.7 is of 2026-05-01
    d = cohere(restaged, order=TRIAL_ORDER)
    assert status_of(d, "cohere.cancer.metastatic") == "not-met"
    assert "overrules Secondary malignant neoplasm of liver" in card_line(d, "cohere.cancer.metastatic")
    older_stage = [*cancer_chart(), metastasis_stage("M0", "2025-01-01")]
    assert status_of(cohere(older_stage, order=TRIAL_ORDER), "cohere.cancer.metastatic") == "met"


def test_a_clearance_answer_records_that_the_evaluation_was_done() -> None:
    refused = [
        *without_codes(non_malignant_chart(), "psych-clearance", "90791"),
        assessment("psych-clearance", "2026-08-03", valueBoolean=False),
    ]
    s = found(cohere(refused, order=TRIAL_ORDER))
    assert s["cohere.pain.psych-clearance.evaluation"] == "met"
    assert s["cohere.pain.psych-clearance.cleared"] == "not-met"


def test_life_expectancy_answer_no_does_not_meet() -> None:
    chart = [
        *without_codes(cancer_chart(), "life-expectancy-ge-3mo"),
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=False),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.cancer.le-3mo") == "not-met"
    assert status_of(d, "cohere.cancer") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET  # the other blocks do not apply to this patient


def test_hospice_asks_to_confirm_life_expectancy() -> None:
    hospice = condition(SCT, "385763009", "2026-11-10", "Hospice care")
    d = cohere([*cancer_chart(), hospice], order=TRIAL_ORDER)
    assert status_of(d, "cohere.cancer.le-3mo.no-terminal-conflict") == "not-documented"
    confirmed = [
        *without_codes(cancer_chart(), "life-expectancy-ge-3mo"),
        hospice,
        assessment("life-expectancy-ge-3mo", "2026-11-15", valueBoolean=True),
    ]
    assert status_of(cohere(confirmed, order=TRIAL_ORDER), "cohere.cancer.le-3mo") == "met"


def test_a_newer_loinc_life_expectancy_confirms_hospice() -> None:
    """Cross-payer review 1: LOINC 75327-7 is a form of the life expectancy (contract §3) and clears too."""
    hospice = condition(SCT, "385763009", "2026-11-10", "Hospice care")
    chart = [*without_codes(cancer_chart(), "life-expectancy-ge-3mo"), hospice]
    confirmed = cohere([*chart, life_expectancy(5, "a", "2026-11-15")], order=TRIAL_ORDER)
    assert status_of(confirmed, "cohere.cancer.le-3mo.no-terminal-conflict") == "met"
    older = cohere([*chart, life_expectancy(5, "a", "2026-11-01")], order=TRIAL_ORDER)
    assert status_of(older, "cohere.cancer.le-3mo.no-terminal-conflict") == "not-documented"


def test_cancer_and_a_non_malignant_cause_may_meet_either_block() -> None:
    chart = [*cancer_chart(), condition(ICD, "M96.1", "2022-01-01")]
    d = cohere(chart, order=TRIAL_ORDER)
    s = found(d)
    assert d.indication == "non-malignant-pain"
    assert s["cohere.cancer.applies"] == "met"
    assert s["cohere.pain.applies"] == "met"
    assert s["cohere.cancer"] == "met"
    assert s["cohere.pain"] == "not-met"  # its drug course ended after 61 days, short of 6 months
    assert d.outcome == Outcome.MEETS  # AMB-11: the cancer block is enough


def test_cancer_with_a_chronic_pain_code_is_cancer_pain_and_meets_the_cancer_block() -> None:
    """Cancer patients often carry G89.29 or G89.4; only a coded non-malignant cause outweighs the cancer."""
    d = cohere([*cancer_chart(), condition(ICD, "G89.4", "2026-06-01")], order=TRIAL_ORDER)
    s = found(d)
    assert d.indication == "cancer-pain"
    assert s["cohere.cancer"] == "met"
    assert s["cohere.pain.known-etiology"] == "not-documented"
    assert d.outcome == Outcome.MEETS


def test_a_pump_ordered_for_chronic_pain_with_no_malignancy_is_not_asked_for_the_cancer_block() -> None:
    """The pain diagnosis only on the order (the usual EHR shape), none on the problem list: the order's
    reason is a form of the indication (contract §2), so the cancer block does not apply."""
    chart = without_codes(non_malignant_chart(), "M96.1")
    order = service_request("62324", reason=[concept(ICD, "G89.4", "Chronic pain syndrome")])
    d = cohere(chart, order=order)
    s = found(d)
    assert d.indication == "non-malignant-pain"
    assert s["cohere.cancer.applies"] == "not-met"
    assert card_line(d, "cohere.cancer.applies").endswith("Chronic pain syndrome (the order's reason)")
    assert s["cohere.pain.applies"] == "met"
    steps = " ".join(documentation_steps(d)).lower()
    assert "metastatic" not in steps and "life expectancy" not in steps
    assert "cause of the pain" in steps  # what the non-malignant block still needs


def test_a_pump_ordered_for_metastatic_cancer_pain_is_not_asked_for_the_non_malignant_block() -> None:
    order = service_request("62324", reason=[concept(ICD, "C79.51", "Secondary malignant neoplasm of bone")])
    d = cohere([], order=order)
    s = found(d)
    assert d.indication == "cancer-pain"
    assert s["cohere.pain.applies"] == "not-met"
    assert s["cohere.cancer.applies"] == "met"
    assert "psychological" not in " ".join(documentation_steps(d)).lower()


def test_a_chronic_pain_reason_beside_a_malignancy_leaves_both_pain_blocks_open() -> None:
    """G89.29 given as the order's reason reads as it does on the problem list (AMB-11)."""
    malignancy = [r for r in cancer_chart() if r["resourceType"] == "Condition"]
    order = service_request("62324", reason=[concept(ICD, "G89.29", "Other chronic pain")])
    d = cohere(malignancy, order=order)
    s = found(d)
    assert (s["cohere.cancer.applies"], s["cohere.pain.applies"]) == ("met", "met")
    # the finding names what it found (Synthea A/B review, U4)
    assert finding_of(d, "cohere.cancer.applies").startswith("Other chronic pain documented, but alongside ")


def test_a_replacement_for_chronic_pain_is_not_asked_for_the_cancer_recall() -> None:
    chart = [*without_codes(non_malignant_chart(), "M96.1"), pump_in_place()]
    chart.append(coded_assessment("replacement-reason", "recall", "2026-11-20"))
    order = service_request("62362", reason=[concept(ICD, "G89.4", "Chronic pain syndrome")])
    s = found(cohere(chart, order=order))
    assert s["cohere.pain.replace.cancer-recall.applies"] == "not-met"


# --------------------------------------------------------------------------------------------------
# Spasticity
# --------------------------------------------------------------------------------------------------


def test_spasticity_trial_meets_every_criterion() -> None:
    d = cohere(spasticity_chart(), order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    assert (d.request_kind, d.indication, d.outcome) == ("trial", "spasticity", Outcome.MEETS)
    s = found(d)
    assert [s[c] for c in SPASTICITY] == ["met"] * len(SPASTICITY)
    assert s["cohere.spasticity.impact.complication-risk"] == "met"
    assert "cohere.pain-indication" not in s  # the pain blocks are other indications
    # the non-indications apply to baclofen pumps too (AMB-39)
    assert [s[c] for c in NON_INDICATIONS] == ["met"] * len(NON_INDICATIONS)


@pytest.mark.parametrize(
    ("end", "duration", "either"),
    [("2026-02-12", "met", "met"), ("2026-02-11", "not-met", "not-documented")],  # 42 vs 41 days
)
def test_oral_trial_at_least_six_weeks(end: str, duration: str, either: str) -> None:
    chart = [
        *without_codes(spasticity_chart(), "999999"),
        med_request("Tizanidine 4 MG Oral Tablet", "2026-01-01", end, "stopped", reason="ineffective"),
    ]
    s = found(cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,)))
    assert s["cohere.spasticity.oral-6wk.trial.duration"] == duration  # a stopped course ended short
    assert s["cohere.spasticity.oral-6wk"] == either  # intolerance could still meet it


def test_a_running_oral_course_is_not_documented_yet() -> None:
    chart = [
        *without_codes(spasticity_chart(), "999999"),
        med_request("Tizanidine 4 MG Oral Tablet", "2026-10-20", "2026-12-31", "active"),
    ]
    d = cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    assert found(d)["cohere.spasticity.oral-6wk.trial.duration"] == "not-documented"
    line = card_line(d, "cohere.spasticity.oral-6wk.trial.duration")
    assert "4 weeks 4 days so far (since 20 Oct 2026), needs at least 6 weeks" in line


def test_intolerance_needs_no_six_weeks() -> None:
    chart = [
        *without_codes(spasticity_chart(), "999999"),
        med_request("Baclofen 10 MG Oral Tablet", "2026-01-01", "2026-01-10", "stopped", reason="drowsiness"),
        coded_assessment("oral-antispasmodic-outcome", "intolerable", "2026-01-10"),
    ]
    s = found(cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,)))
    assert s["cohere.spasticity.oral-6wk.trial.duration"] == "not-met"  # 9 days, stopped
    assert s["cohere.spasticity.oral-6wk.intolerant"] == "met"
    assert s["cohere.spasticity.oral-6wk"] == "met"
    assert s["cohere.spasticity.noninvasive-fail"] == "met"


def test_an_intolerance_on_the_allergy_list_is_not_tolerating_the_medication() -> None:
    """Cohere's "(or patient cannot tolerate prescribed medication)": the allergy list's intolerance is
    one form of it; a stopped order's reason alone is not (it may say the drug failed)."""
    short_course = [
        *without_codes(spasticity_chart(), "999999"),
        med_request("Baclofen 10 MG Oral Tablet", "2026-01-01", "2026-01-14", "stopped", reason="drowsiness"),
    ]
    intolerant = [*short_course, allergy("Baclofen", "1292", kind="intolerance", recorded="2026-01-14")]
    s = found(cohere(intolerant, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,)))
    assert s["cohere.spasticity.oral-6wk.intolerant"] == "met"
    assert s["cohere.spasticity.oral-6wk"] == "met"
    assert (
        found(cohere(short_course, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,)))[
            "cohere.spasticity.oral-6wk.intolerant"
        ]
        == "not-documented"
    )


def test_oral_medication_controlling_symptoms_does_not_meet() -> None:
    chart = [*spasticity_chart(), coded_assessment("oral-antispasmodic-outcome", "effective", "2026-04-01")]
    d = cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    s = found(d)
    assert s["cohere.spasticity.oral-6wk"] == "not-met"
    assert s["cohere.spasticity.noninvasive-fail"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("impact", "branch"),
    [
        (pain(4, "2026-11-01T10:00:00Z"), "cohere.spasticity.impact.painful"),
        (
            condition(ICD, "M62.451", "2026-01-01", "Contracture of muscle, right thigh"),
            "cohere.spasticity.impact.complication-risk",
        ),
        (
            assessment("adl-difficulty-months", "2026-11-01", valueInteger=1),
            "cohere.spasticity.impact.mobility-adl",
        ),
    ],
)
def test_each_spasticity_impact_is_enough(impact: dict[str, Any], branch: str) -> None:
    chart = [*without_codes(spasticity_chart(), "L89.154"), impact]
    s = found(cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,)))
    assert s[branch] == "met"
    assert s["cohere.spasticity.impact-any"] == "met"


def test_no_spasticity_impact_documented() -> None:
    chart = [*without_codes(spasticity_chart(), "L89.154"), pain(0, "2026-11-01T10:00:00Z")]
    d = cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    s = found(d)
    assert s["cohere.spasticity.impact.painful"] == "not-met"
    assert s["cohere.spasticity.impact.complication-risk"] == "not-documented"
    assert s["cohere.spasticity.impact-any"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_the_ways_to_show_a_spasticity_impact_are_one_item_to_document() -> None:
    """Any one of the three impacts is enough: the card lists one item with each way's finding, and
    its headline counts one. Before, it said "3 items to document" (peds review L4)."""
    chart = without_codes(spasticity_chart(), "L89.154")
    call = sign_request(service_request("62323"), BACLOFEN_IT, coverage=payer_coverage("cohere"))
    _, response = sign_with_chart(chart, body=call)
    [decision] = cards_of(response["cards"])
    assert decision["summary"] == (
        "Cohere Health: 1 item to document for 62323 — Painful, complication risk, or impact on mobility "
        "and ADLs (ANY)"
    )
    [line] = [line for line in decision["detail"].splitlines() if line.startswith("- ")]
    # what to do is kept whole; the ways' findings, which do not fit beside it, are said in few words (each
    # way's lack is what to do records), not cut inside the first way ("Painful spasticity: no pain score…",
    # wording31, as review30j's "recorded…")
    assert line == (
        "- ❔ **Painful, complication risk, or impact on mobility and ADLs (ANY)**: any one is enough — "
        "Record a pain score, the contracture or pressure injury on the problem list, or “months of "
        "difficulty with activities of daily living”."
    )


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((3, 2), "met"),  # one point
        ((4, 2), "met"),
        ((3, 3), "not-met"),
    ],
)
def test_baclofen_trial_drop_of_one_ashworth_point(scores: tuple[int, int], expected: str) -> None:
    d = cohere([*spasticity_chart(), *baclofen_trial(*scores)], drugs=(BACLOFEN_IT,))
    assert d.request_kind == "permanent-implant"
    s = found(d)
    assert s["cohere.spasticity.permanent-ashworth-1"] == expected
    assert "cohere.cancer.permanent-trial-ge50" not in s and "cohere.pain.permanent-trial-ge50" not in s
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


def test_no_drop_in_any_muscle_is_no_drop_whatever_the_order_of_the_scores() -> None:
    """Hamstrings 2 and adductors 4 before the bolus, hamstrings 2 after: no muscle dropped a point, so
    "a drop of one point or more on the Ashworth Scale" is not shown, listed in either order (peds
    review F2 D: adductors 4 before was read against hamstrings 2 after as a 2-point drop)."""
    before = [
        muscle_ashworth(2, "2026-09-30T15:00:00Z", "hamstrings"),
        muscle_ashworth(4, "2026-09-30T15:00:00Z", "adductors"),
    ]
    after = [muscle_ashworth(2, "2026-10-01T13:00:00Z", "hamstrings")]
    for listed in (before, before[::-1]):
        trial = [procedure("62323", TRIAL, display="Intrathecal baclofen bolus"), *listed, *after]
        d = cohere([*spasticity_chart(), *trial], drugs=(BACLOFEN_IT,))
        assert status_of(d, "cohere.spasticity.permanent-ashworth-1") == "not-met"


def test_modified_ashworth_2_to_1_plus_is_for_the_reviewer() -> None:
    """Half a point with 1+ as 1.5, one grade on the six-grade scale (AMB-14 d): Cohere's "drop of
    one point" is neither met nor failed by it, and the order is not denied for it."""
    trial = [
        procedure("62323", TRIAL, display="Intrathecal baclofen bolus"),
        coded_assessment("modified-ashworth-score", "2", "2026-09-30T15:00:00Z"),
        coded_assessment("modified-ashworth-score", "1+", "2026-10-01T13:00:00Z"),
    ]
    d = cohere([*spasticity_chart(), *trial], drugs=(BACLOFEN_IT,))
    assert status_of(d, "cohere.spasticity.permanent-ashworth-1") == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    explicit = [*spasticity_chart(), scale_reduction(1, "ashworth")]
    assert (
        status_of(cohere(explicit, drugs=(BACLOFEN_IT,)), "cohere.spasticity.permanent-ashworth-1") == "met"
    )


def scale_reduction(points: float, scale: str | None) -> dict[str, Any]:
    reduction = assessment("it-trial-scale-reduction", valueQuantity={"value": points, "unit": "points"})
    if scale:
        reduction["component"] = [{"code": {"text": "scale"}, "valueString": scale}]
    return reduction


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ("ashworth", "met"),
        ("modified-ashworth", "met"),
        ("spasm-frequency", "not-documented"),
        (None, "not-documented"),
    ],
)
def test_only_an_ashworth_reduction_counts(scale: str | None, expected: str) -> None:
    chart = [*spasticity_chart(), scale_reduction(2, scale)]
    assert (
        status_of(cohere(chart, drugs=(BACLOFEN_IT,)), "cohere.spasticity.permanent-ashworth-1") == expected
    )


def test_spasticity_without_the_drug_named_is_judged_from_the_diagnoses() -> None:
    d = cohere(spasticity_chart(), order=TRIAL_ORDER, drugs=())
    s = found(d)
    assert d.indication == "spasticity"
    assert s["cohere.spasticity"] == "met"
    assert s["cohere.nonind.allergy-analgesic"] == "met"  # no drug named, no allergy to any intrathecal agent
    assert d.outcome == Outcome.MEETS


def test_morphine_pump_for_a_spasticity_patient_is_judged_as_pain() -> None:
    chart = [*spasticity_chart(), condition(ICD, "G89.29", "2024-01-01")]
    d = cohere(chart, order=TRIAL_ORDER)
    s = found(d)
    assert d.indication == "non-malignant-pain"
    assert "cohere.spasticity" not in s
    assert s["cohere.pain.applies"] == "met"
    assert s["cohere.pain.known-etiology"] == "not-documented"


# --------------------------------------------------------------------------------------------------
# Replacement
# --------------------------------------------------------------------------------------------------


def replacement(
    chart: list[dict[str, Any]], *answers: tuple[str, str], drug: dict[str, Any] = MORPHINE
) -> Determination:
    coded = [coded_assessment(code, value, "2026-11-10") for code, value in answers]
    return cohere([*chart, pump_in_place(), *coded], drugs=(drug,))


def test_cancer_pump_recalled_by_the_manufacturer() -> None:
    d = replacement(cancer_chart(), ("replacement-reason", "recall"))
    assert d.request_kind == "replacement"
    s = found(d)
    assert s["cohere.cancer.replace.recall"] == "met"
    assert s["cohere.cancer.replace"] == "met"
    assert "cohere.pain-indication" not in s and "cohere.cancer.permanent-trial-ge50" not in s
    assert s["cohere.nonind.replace-convenience"] == s["cohere.nonind.replace-functional"] == "met"
    assert d.outcome == Outcome.MEETS


def test_recall_is_not_listed_for_non_malignant_pain() -> None:
    d = replacement(non_malignant_chart(), ("replacement-reason", "recall"))
    s = found(d)
    assert "cohere.cancer.replace" not in s
    assert s["cohere.pain.replace.cancer-recall.recall"] == "met"
    assert s["cohere.pain.replace.cancer-recall.applies"] == "not-met"  # only non-malignant pain diagnoses
    assert s["cohere.pain.replace.cancer-recall"] == "not-met"
    assert s["cohere.pain.replace"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    steps = " ".join(documentation_steps(d))
    assert "Malignancy documented" not in steps and "recall" not in steps.lower()


def test_recall_for_a_non_malignant_pump_of_a_patient_who_also_has_cancer() -> None:
    d = replacement([*non_malignant_chart(), *cancer_chart()], ("replacement-reason", "recall"))
    s = found(d)
    assert d.indication == "non-malignant-pain"
    assert s["cohere.pain.replace.cancer-recall"] == "met"  # AMB-11
    assert d.outcome == Outcome.MEETS


def test_technology_upgrade_for_non_malignant_pain_only() -> None:
    d = replacement(non_malignant_chart(), ("replacement-reason", "technology-upgrade"))
    assert status_of(d, "cohere.pain.replace.upgrade") == "met"
    assert d.outcome == Outcome.MEETS
    cancer = replacement(cancer_chart(), ("replacement-reason", "technology-upgrade"))
    assert status_of(cancer, "cohere.cancer.replace") == "not-documented"
    assert "cohere.pain.replace" not in found(cancer)
    assert cancer.outcome == Outcome.INSUFFICIENT


def test_a_replacement_reason_met_under_an_assumed_indication_is_not_a_meets() -> None:
    """Nothing tells what the pump is for: the technology upgrade is a reason only for non-malignant
    pain, the indication assumed, so the request waits for the indication, never "meets"."""
    d = cohere(
        [pump_in_place(), coded_assessment("replacement-reason", "technology-upgrade", "2026-11-10")],
        drugs=(),
    )
    assert not d.indication_evident
    assert status_of(d, "cohere.pain.replace.upgrade") == "met"
    assert d.outcome == Outcome.INSUFFICIENT
    assert [i.label for i in items.missing(d)] == ["What the pump is for"]


def test_upgrading_a_functional_device_is_a_non_indication() -> None:
    d = replacement(
        non_malignant_chart(), ("replacement-reason", "technology-upgrade"), ("device-status", "functional")
    )
    s = found(d)
    assert s["cohere.nonind.replace-functional"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET
    recalled = replacement(cancer_chart(), ("replacement-reason", "recall"), ("device-status", "functional"))
    assert status_of(recalled, "cohere.nonind.replace-functional") == "met"


def test_replacement_for_convenience_is_a_non_indication() -> None:
    d = replacement(non_malignant_chart(), ("replacement-reason", "patient-convenience"))
    assert status_of(d, "cohere.nonind.replace-convenience") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("answer", "branch"),
    [
        (("device-status", "end-of-battery"), "cohere.spasticity.replace.nonfunctioning"),
        (("device-status", "failed"), "cohere.spasticity.replace.nonfunctioning"),
        (("replacement-reason", "malfunction"), "cohere.spasticity.replace.nonfunctioning"),
        (("device-status", "impending-failure-alert"), "cohere.spasticity.replace.impending-failure"),
        (("device-status", "recalled"), "cohere.spasticity.replace.recall"),
    ],
)
def test_baclofen_pump_replacement_reasons(answer: tuple[str, str], branch: str) -> None:
    d = replacement(spasticity_chart(), answer, drug=BACLOFEN_IT)
    assert (d.request_kind, d.indication) == ("replacement", "spasticity")
    assert status_of(d, branch) == "met"
    assert d.outcome == Outcome.MEETS


def test_functional_device_without_a_reason_is_insufficient() -> None:
    d = replacement(spasticity_chart(), ("device-status", "functional"), drug=BACLOFEN_IT)
    s = found(d)
    assert s["cohere.spasticity.replace.nonfunctioning"] == "not-met"  # one fact, device-status its form
    assert s["cohere.spasticity.replace"] == "not-documented"
    assert s["cohere.nonind.replace-functional"] == "met"  # no newer technology named
    assert d.outcome == Outcome.INSUFFICIENT


# --------------------------------------------------------------------------------------------------
# Non-indications
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "criterion", "expected"),
    [
        ([condition(ICD, "F45.41", "2025-01-01")], "cohere.nonind.psychogenic-pain", "not-met"),
        ([condition(ICD, "F45.42", "2025-01-01")], "cohere.nonind.psychogenic-pain", "met"),
        ([condition(ICD, "F11.20", "2025-01-01")], "cohere.nonind.opioid-addiction", "not-met"),
        ([condition(ICD, "F11.21", "2020-01-01")], "cohere.nonind.opioid-addiction", "not-met"),
        ([condition(ICD, "Z79.891", "2025-01-01")], "cohere.nonind.opioid-addiction", "met"),
        ([condition(ICD, "F10.20", "2025-01-01")], "cohere.nonind.sud", "not-met"),
        ([condition(ICD, "F17.210", "2025-01-01")], "cohere.nonind.sud", "met"),
        (
            [
                condition(ICD, "F11.20", "2025-01-01"),
                med_request(
                    "Buprenorphine 8 MG Sublingual Tablet", "2026-10-01", status="active", code="1819"
                ),
            ],
            "cohere.nonind.sud",
            "not-met",
        ),
        ([condition(ICD, "R52", "2025-01-01")], "cohere.nonind.generalized-pain", "met"),
        ([condition(ICD, "R45.851", "2026-10-20")], "cohere.nonind.unstable-mental", "not-met"),
        (
            [
                condition(ICD, "R45.851", "2026-10-20"),
                assessment("psych-clearance", "2026-11-01", valueBoolean=True),
            ],
            "cohere.nonind.unstable-mental",
            "met",
        ),
        ([condition(ICD, "F20.0", "2018-01-01")], "cohere.nonind.unstable-mental", "met"),
        ([allergy("Morphine", "7052")], "cohere.nonind.allergy-analgesic", "not-met"),
        ([allergy("Penicillin V", "7984")], "cohere.nonind.allergy-analgesic", "met"),
    ],
)
def test_non_indications(extra: list[dict[str, Any]], criterion: str, expected: str) -> None:
    d = cohere([*non_malignant_chart(), *extra], order=TRIAL_ORDER)
    assert status_of(d, criterion) == expected
    if expected == "not-met":
        assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ([condition(ICD, "R52", "2025-01-01")], "not-met"),
        ([condition(ICD, "M79.7", "2025-01-01")], "not-met"),
        ([condition(ICD, "M79.7", "2025-01-01"), condition(ICD, "G89.4", "2025-01-01")], "not-met"),
        ([condition(ICD, "R52", "2025-01-01"), condition(ICD, "M96.1", "2022-01-01")], "met"),
        ([condition(ICD, "R52", "2025-01-01"), condition(ICD, "G80.1", "2010-01-01")], "met"),
        ([condition(ICD, "G89.4", "2025-01-01")], "met"),
    ],
)
def test_generalized_body_pain_only_when_nothing_specific(chart: list[dict[str, Any]], expected: str) -> None:
    d = cohere(chart, order=TRIAL_ORDER)
    assert status_of(d, "cohere.nonind.generalized-pain") == expected
    if expected == "not-met":
        assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("display", "code"),
    [("Heparin sodium 1000 UNT/ML Injectable Solution", "5224"), ("vancomycin 500 MG Injection", "0")],
)
def test_heparin_or_vancomycin_pump_is_a_non_indication(display: str, code: str) -> None:
    d = cohere(non_malignant_chart(), order=TRIAL_ORDER, drugs=(infusate_request(display, code),))
    assert status_of(d, "cohere.nonind.heparin-antibiotic") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET
    insulin = infusate_request("Insulin Regular, Human 100 UNT/ML Injectable Solution", "253182")
    # GEHA's insulin exclusion is not Cohere's
    assert (
        status_of(cohere(non_malignant_chart(), drugs=(insulin,)), "cohere.nonind.heparin-antibiotic")
        == "met"
    )


def test_allergy_to_baclofen_applies_to_a_baclofen_pump() -> None:
    chart = [*spasticity_chart(), allergy("Baclofen", "1292")]
    d = cohere(chart, order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    assert status_of(d, "cohere.nonind.allergy-analgesic") == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([condition(ICD, "M48.062", "2024-01-01")], "met"),  # stenosis alone: also a qualifying cause
        ([condition(ICD, "M48.062", "2024-01-01"), condition(ICD, "G95.20", "2025-01-01")], "not-documented"),
        (
            [condition(ICD, "M99.53", "2024-01-01")],
            "met",
        ),  # an obstruction proxy alone: no stenosis diagnosis
        ([condition(ICD, "G83.4", "2025-01-01")], "met"),  # cauda equina syndrome without stenosis
        (
            [
                condition(ICD, "M48.062", "2024-01-01"),
                condition(ICD, "G83.4", "2025-01-01"),
                assessment("spinal-obstruction-on-imaging", "2026-10-01", valueBoolean=False),
            ],
            "met",
        ),
        ([assessment("spinal-obstruction-on-imaging", "2026-10-01", valueBoolean=True)], "not-met"),
    ],
)
def test_stenosis_with_intraspinal_obstruction(extra: list[dict[str, Any]], expected: str) -> None:
    d = cohere([*non_malignant_chart(), *extra], order=TRIAL_ORDER)
    assert status_of(d, "cohere.nonind.stenosis-obstruction") == expected
    outcome = {"met": Outcome.MEETS, "not-documented": Outcome.INSUFFICIENT, "not-met": Outcome.DOES_NOT_MEET}
    assert d.outcome == outcome[expected]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([condition(ICD, "C79.51", "2026-05-01", "Secondary malignant neoplasm of bone")], "not-documented"),
        (
            [
                condition(ICD, "C79.51", "2026-05-01"),
                assessment("thecal-sac-tumor-encroachment", "2026-10-01", valueBoolean=False),
            ],
            "met",
        ),
        ([assessment("thecal-sac-tumor-encroachment", "2026-10-01", valueBoolean=True)], "not-met"),
    ],
)
def test_tumor_encroaching_the_thecal_sac(extra: list[dict[str, Any]], expected: str) -> None:
    d = cohere([*cancer_chart(), *extra], order=TRIAL_ORDER)
    assert status_of(d, "cohere.nonind.thecal-sac-tumor") == expected
    if expected == "not-documented":
        assert "thecal sac" in finding_of(d, "cohere.nonind.thecal-sac-tumor.proxies.none")
        assert d.outcome == Outcome.INSUFFICIENT


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([condition(ICD, "Z68.51", "2026-09-01")], "not-documented"),
        ([condition(ICD, "R62.51", "2026-09-01")], "not-documented"),  # failure to thrive (child): peds L2
        (
            [
                condition(ICD, "Z68.51", "2026-09-01"),
                assessment("body-size-adequate", "2026-10-01", valueBoolean=True),
            ],
            "met",
        ),
        ([assessment("body-size-adequate", "2026-10-01", valueBoolean=False)], "not-met"),
    ],
)
def test_body_size_for_a_child_with_a_baclofen_pump(extra: list[dict[str, Any]], expected: str) -> None:
    d = cohere([*spasticity_chart(), *extra], order=TRIAL_ORDER, drugs=(BACLOFEN_IT,))
    assert status_of(d, "cohere.nonind.body-size") == expected


# --------------------------------------------------------------------------------------------------
# Scope, absence and the policy's own words
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "order", "drugs", "word"),
    [
        ([condition(ICD, "G24.1", "2019-01-01")], TRIAL_ORDER, (BACLOFEN_IT,), "dystonia"),
        (non_malignant_chart(), service_request("95990"), (MORPHINE,), "refill"),
        (non_malignant_chart(), service_request("62365"), (MORPHINE,), "removed"),
    ],
)
def test_what_cohere_does_not_address(
    chart: list[dict[str, Any]], order: dict[str, Any], drugs: tuple[dict[str, Any], ...], word: str
) -> None:
    d = cohere(chart, order=order, drugs=drugs)
    assert d.outcome == Outcome.NOT_APPLICABLE
    assert d.criteria == ()
    assert word in d.explanation


def test_empty_chart_is_insufficient() -> None:
    d = cohere([], order=TRIAL_ORDER)
    s = found(d)
    assert d.outcome == Outcome.INSUFFICIENT
    assert s["cohere.pain-indication"] == "not-documented"
    assert [s[c] for c in NON_INDICATIONS] == ["met"] * len(NON_INDICATIONS)  # absence rule
    assert finding_of(d, "cohere.nonind.sud") == "none documented"


def test_unavailable_data_never_counts_as_absence() -> None:
    down = {t: "HTTP 503" for t in CLINICAL_TYPES}
    d = cohere(non_malignant_chart(), order=TRIAL_ORDER, unavailable=down)
    s = found(d)
    assert s["cohere.nonind.sud"] == "not-documented"
    assert s["cohere.nonind.psychogenic-pain"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_every_reference_criterion_is_encoded_or_noted() -> None:
    ids = {spec.id for spec in load_catalog().policies[COHERE].all_criteria()}
    for expected in [*NON_MALIGNANT, *CANCER, *SPASTICITY, *NON_INDICATIONS, *REPLACEMENT_NON_INDICATIONS]:
        assert expected in ids
    notes = Path(__file__).resolve().parents[2] / "policies" / "notes" / "cohere.md"
    text = notes.read_text(encoding="utf-8")
    for not_encoded in ("cohere.general.one-unit", "cohere.doc.replacement-rationale", "AMB-39"):
        assert not_encoded in text


@pytest.mark.parametrize(("score", "expected"), [(2, "not-met"), (4, "met"), (7, "met")])
def test_painful_spasticity_needs_at_least_moderate_pain(score: int, expected: str) -> None:
    chart = [condition(ICD, "G35.A", "2019-05-01"), pain(score, "2026-10-01T10:00:00Z")]
    assert status_of(cohere(chart, drugs=(BACLOFEN_IT,)), "cohere.spasticity.impact.painful") == expected


def test_a_pain_score_off_the_0_10_scale_is_no_pain_score() -> None:
    """Contract §3: a pain severity's value is 0-10; a later 30 (a typo, another scale) decides nothing."""
    chart = [
        condition(ICD, "G35.A", "2019-05-01"),
        pain(2, "2026-10-01T10:00:00Z"),
        pain(30, "2026-11-01T10:00:00Z"),
    ]
    assert status_of(cohere(chart, drugs=(BACLOFEN_IT,)), "cohere.spasticity.impact.painful") == "not-met"


@pytest.mark.parametrize(("chart", "expected"), drug_failure_forms(OXYCODONE_TABLET, "opioid-trial-outcome"))
@pytest.mark.parametrize(
    "criterion", ["cohere.pain.opioid-failure.failure", "cohere.cancer.opioid-failure.failure"]
)
def test_the_most_recent_form_of_opioid_failure_decides(
    chart: list[dict[str, Any]], expected: str, criterion: str
) -> None:
    assert status_of(cohere(chart), criterion) == expected


@pytest.mark.parametrize(
    ("chart", "expected"), drug_failure_forms(BACLOFEN_TABLET, "oral-antispasmodic-outcome")
)
@pytest.mark.parametrize(
    "criterion", ["cohere.spasticity.oral-6wk.trial.uncontrolled", "cohere.spasticity.noninvasive-fail"]
)
def test_the_most_recent_form_of_antispasmodic_failure_decides(
    chart: list[dict[str, Any]], expected: str, criterion: str
) -> None:
    assert status_of(cohere(chart, drugs=(BACLOFEN_IT,)), criterion) == expected


def test_a_non_malignant_request_that_fails_gives_its_own_reason_not_the_cancer_blocks() -> None:
    """The cancer block does not apply to a patient whose pain is only non-malignant: the card gives the
    non-malignant block's failure, never the cancer block's gate, as the reason."""
    chart = [
        *without_codes(without_codes(non_malignant_chart(), "197807"), "1049683"),
        med_request("Ibuprofen 800 MG Oral Tablet", "2026-01-01", "2026-03-01", code="197807"),
        coded_assessment("opioid-trial-outcome", "intolerable", "2026-09-01"),
    ]
    d = cohere(chart, order=TRIAL_ORDER)
    assert d.outcome == Outcome.DOES_NOT_MEET
    assert found(d)["cohere.cancer.applies"] == "not-met"
    assert [i.criteria for i in items.failing(d)] == [("cohere.pain.conservative.pharm",)]
    assert summary(Episode.of([d])).startswith("Cohere Health: not covered — Pharmacological modalities")


def test_a_failure_under_the_default_kind_of_pain_lists_what_the_other_kind_would_need() -> None:
    """A morphine pump whose non-malignant trial relief falls short, its problem list unread: if the
    re-read shows a cancer, the cancer block decides, and its undocumented life expectancy is a gap
    to close now; before, the card listed only the question and the recheck (late review 3, #5)."""
    chart = [*non_malignant_chart(), *pain_trial(post=6)]
    d = cohere(problem_list_unread(chart), unavailable={"Condition": "HTTP 503"})
    assert d.outcome == Outcome.INSUFFICIENT
    assert [i.label for i in items.failing(d)] == ["Trial improvement >= 50 %"]
    listed = [i.label for i in items.missing(d)]
    assert listed[0] == "Whether the pain is cancer-related"
    assert "Life expectancy recorded >= 3 months" in listed
    assert cohere(chart).outcome == Outcome.DOES_NOT_MEET


def test_the_order_reason_does_not_close_a_pain_block_while_the_problem_list_is_unread() -> None:
    """The reason (G89.4) is found, but the malignancy that would open the cancer block beside it
    (AMB-11) may be on the problem list, which could not be read: not documented, never not met
    (s35 review R2)."""
    chart = [r for r in cancer_chart() if r["resourceType"] != "Condition"]
    chart.append(assessment("psych-clearance", "2026-08-02", valueBoolean=False))
    order = service_request("62324", reason=[concept(ICD, "G89.4", "Chronic pain syndrome")])
    d = cohere(chart, order=order, unavailable={"Condition": "HTTP 503"})
    assert status_of(d, "cohere.cancer.applies") == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


def test_the_headline_of_a_not_covered_order_names_what_decides_it() -> None:
    """A pain score under Cohere's bar is one way of showing a spasticity impact that fell short, beside
    two ways still open: it decides nothing. The order is not covered for the opioid addiction, and
    the headline says so. Before, it named the pain score (Synthea A/B review 36, F4)."""
    chart = [
        *without_codes(spasticity_chart(), "L89.154"),
        pain(2, "2026-11-01T10:00:00Z"),
        condition(ICD, "F11.20", "2024-01-01", "Opioid dependence, uncomplicated"),
    ]
    call = sign_request(service_request("62323"), BACLOFEN_IT, coverage=payer_coverage("cohere"))
    _, response = sign_with_chart(chart, body=call)
    [decision] = cards_of(response["cards"])
    assert decision["summary"].startswith("Cohere Health: not covered — No opioid addiction"), decision[
        "summary"
    ]
    failed = [line for line in decision["detail"].splitlines() if line.startswith("- ❌")]
    assert "Painful spasticity" in failed[-1]  # still stated, after what decides


def test_an_either_or_of_either_ors_is_one_item_to_document() -> None:
    """Cohere's replacement reasons are three, each shown by the device's status or the replacement's
    reason: any one of the six records is enough, so the card lists one item. Before, three ('3 items
    to document') (late review 36, LOW)."""
    d = cohere([*spasticity_chart(), pump_in_place()], drugs=(BACLOFEN_IT,))
    assert d.request_kind == "replacement"
    assert [i.label for i in items.missing(d)] == [
        "Replacement: not functioning, recalled, or impending failure"
    ]
