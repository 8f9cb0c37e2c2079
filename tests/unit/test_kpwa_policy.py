"""Kaiser Permanente Washington (non-Medicare) criteria, evaluated by the pure engine on built charts.

Each scenario is one patient; the assertions name every criterion the scenario is about, so a change of
reading shows up as a status change, not only as a different outcome.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cards import items
from service.catalog import compile_catalog, load_catalog
from service.engine.evaluate import evaluate_order
from service.engine.model import Determination, Outcome, Status
from service.record import CLINICAL_TYPES
from tests.builders import (
    BACLOFEN_TABLET,
    CPT,
    ICD,
    LOINC,
    OXYCODONE_TABLET,
    SCT,
    allergy,
    assessment,
    card_line,
    coded_assessment,
    concept,
    condition,
    context,
    device,
    device_removal_charts,
    drug_failure_forms,
    finding_of,
    infusate_request,
    life_expectancy,
    med_request,
    muscle_ashworth,
    observation,
    problem_list_unread,
    procedure,
    result_of,
    service_request,
    statuses,
    steroid_injection,
    without_codes,
)
from tests.builders import (
    pain_trial as lumbar_or_cervical_trial,
)
from tests.catalog_support import copy_policies, edit_yaml
from tests.policy_charts import BACLOFEN_IT, ashworth, kaiser
from tests.policy_charts import kpwa_spasticity_chart as spasticity_chart

KPWA = "kpwa-implanted-infusion-pumps"
TRIAL = "2025-10-01T09:00:00Z"
MORPHINE = infusate_request()

PAIN_CRITERIA = [
    "kpwa.pain.it-epidural-opioid",
    "kpwa.pain.severe-intractable",
    "kpwa.pain.le-3mo",
    "kpwa.pain.agree-opioid-reduction-50",
    "kpwa.pain.less-invasive-any",
    "kpwa.pain.no-acute-psych",
    "kpwa.pain.no-sud-except-nicotine",
]
SPASTICITY_CRITERIA = [
    "kpwa.spasticity.it-antispasmodic",
    "kpwa.spasticity.ashworth-ge3-or-mas2",
    "kpwa.spasticity.spasm-freq-ge2",
    "kpwa.spasticity.oral-6wk-failed",
]
CONTRAINDICATIONS = [
    "kpwa.ci.allergy",
    "kpwa.ci.infection",
    "kpwa.ci.body-size",
    "kpwa.ci.programmable-device",
]
PAIN_TRIAL_PARTS = [
    "kpwa.pain.trial-gt50-function.catheter",
    "kpwa.pain.trial-gt50-function.relief-gt50",
    "kpwa.pain.trial-gt50-function.function",
    "kpwa.pain.trial-gt50-function.side-effects",
    "kpwa.pain.trial-gt50-function.acceptance",
]


def kstatus(chart: list[dict[str, Any]], criterion: str, **kwargs: Any) -> str:
    return statuses(kaiser(chart, **kwargs))[criterion]


pain_trial = partial(lumbar_or_cervical_trial, code="62326", when=TRIAL)


def pain_chart() -> list[dict[str, Any]]:
    """Non-malignant pain meeting every Kaiser criterion for an intrathecal morphine pump."""
    return [
        condition(ICD, "M96.1", "2023-03-01", "Postlaminectomy syndrome"),
        med_request(
            "Gabapentin 300 MG Oral Capsule", "2025-01-10", "2025-04-10", "stopped", "dizziness", "310431"
        ),
        assessment("life-expectancy-ge-3mo", "2026-10-01", valueBoolean=True),
        assessment("opioid-reduction-agreement", "2025-09-01", valueBoolean=True),
        *pain_trial(),
        assessment("it-trial-function-improved", valueBoolean=True),
        coded_assessment("it-trial-side-effects", "minimal"),
        assessment("it-trial-patient-acceptance", valueBoolean=True),
    ]


def scores_around_the_trial(*post: int) -> list[dict[str, Any]]:
    """Ashworth 3 before the 09:00 bolus, then the given scores every two hours from 10:00."""
    times = ["2025-10-01T10:00:00Z", "2025-10-01T12:00:00Z", "2025-10-01T14:00:00Z", "2025-10-01T16:00:00Z"]
    return [ashworth(3, "2025-10-01T08:30:00Z"), *(ashworth(s, t) for s, t in zip(post, times, strict=False))]


def spasticity_chart_with_scores(*post: int) -> list[dict[str, Any]]:
    explicit = ("it-trial-scale-reduction", "it-trial-response-duration-h")
    return [*without_codes(spasticity_chart(), *explicit), *scores_around_the_trial(*post)]


@pytest.mark.parametrize(
    ("post", "expected", "finding"),
    [
        ((1, 1, 1), "met", "2.5 points, for 4 h by the scores"),
        (
            (1, 3, 3),
            "not-documented",
            "for 0 h by the scores (needs 2 points for 4 h); below the policy's example",
        ),
    ],
)
def test_a_recorded_reduction_with_no_recorded_duration_takes_the_hours_from_the_scores(
    post: tuple[int, ...], expected: str, finding: str
) -> None:
    """Contract §4: it-trial-scale-reduction decides the reduction; with no recorded duration the
    Ashworth scores around the trial give how long it held (contract review F4). Before, both read
    "how long the response lasted is not documented"."""
    chart = [
        *without_codes(spasticity_chart(), "it-trial-response-duration-h"),
        *scores_around_the_trial(*post),
    ]
    d = kaiser(chart, drugs=(BACLOFEN_IT,))
    assert statuses(d)["kpwa.spasticity.trial-2pt-4h"] == expected
    assert finding in card_line(d, "kpwa.spasticity.trial-2pt-4h")


def test_a_morphine_pump_with_the_problem_list_unread_is_judged_on_the_pain_branches_only() -> None:
    """The drug says pain, not which; Kaiser's spasticity branches are no kind of pain: before, with
    the problem list unread every branch was judged, and the card asked for a baclofen trial for a
    morphine pump (Synthea A/B review, D6)."""
    d = kaiser(problem_list_unread(pain_chart()), unavailable={"Condition": "HTTP 503"})
    assert d.kind_unread == "Whether the pain is cancer-related"
    judged = [r.id for top in d.criteria for r in top.walk()]
    assert judged and not [i for i in judged if "spasticity" in i]


def test_a_trial_for_an_unknown_indication_lists_no_criterion_of_one_kind_of_treatment() -> None:
    """With no drug, no reason and the problem list unread, the trial may be for spasticity, which
    Kaiser also covers: its pain criteria (3.b, 3.c) may not apply, and only the recheck is listed."""
    chart = without_codes(pain_chart(), "life-expectancy-ge-3mo", "opioid-reduction-agreement")
    read = kaiser(chart, drugs=(), order=service_request("62324"))
    assert "3.b Life expectancy recorded >= 3 months" in [i.label for i in items.missing(read)]
    d = kaiser(
        problem_list_unread(chart), drugs=(), order=service_request("62324"), unavailable={"Condition": "503"}
    )
    assert not d.indication_evident
    assert {i.step for i in items.missing(d)} == {items.Step.RECHECK}


def test_a_failed_branch_written_for_one_kind_of_pain_is_not_final_while_the_kind_is_unread(
    tmp_path: Path,
) -> None:
    """A group left with one branch stands for that branch, which keeps its indications: with the
    pain branch written for non-malignant pain only, its failure under the default is no answer for a
    morphine pump whose pain may be cancer pain. Before, the branch's scope was looked up among the
    top-level criteria, missed, and taken as every indication's (late review 3, #7)."""
    root = copy_policies(tmp_path)

    def narrow(raw: Any) -> None:
        treatment = raw["criteria"][0]
        treatment["indications"] = ["spasticity", "non-malignant-pain"]
        [pain_branch] = [c for c in treatment["any"] if c["id"] == "kpwa.pain"]
        pain_branch["indications"] = ["non-malignant-pain"]

    edit_yaml(root / "kpwa.yaml", narrow)
    narrowed = compile_catalog(root).policies[KPWA]
    chart = [
        *without_codes(pain_chart(), "opioid-reduction-agreement"),
        assessment("opioid-reduction-agreement", "2025-09-01", valueBoolean=False),
    ]
    unread = context(problem_list_unread(chart), drugs=(MORPHINE,), unavailable={"Condition": "HTTP 503"})
    d = evaluate_order(narrowed, unread)
    assert statuses(d)["kpwa.pain.agree-opioid-reduction-50"] == "not-met"
    assert (d.outcome, d.kind_unread) == (Outcome.INSUFFICIENT, "Whether the pain is cancer-related")
    assert evaluate_order(narrowed, context(chart, drugs=(MORPHINE,))).outcome == Outcome.DOES_NOT_MEET
    # as shipped, the branch is written for both kinds of pain: its failure is final either way
    assert kaiser(problem_list_unread(chart), unavailable={"Condition": "HTTP 503"}).outcome == (
        Outcome.DOES_NOT_MEET
    )


# --------------------------------------------------------------------------- patient 1: pain, meets


def test_pain_patient_meets_every_pain_criterion_and_every_contraindication() -> None:
    d = kaiser(pain_chart())
    assert (d.outcome, d.request_kind, d.indication) == (
        Outcome.MEETS,
        "permanent-implant",
        "non-malignant-pain",
    )
    found = statuses(d)
    for criterion in [*PAIN_CRITERIA, *PAIN_TRIAL_PARTS, *CONTRAINDICATIONS, "kpwa.pain.trial-gt50-function"]:
        assert found[criterion] == "met", criterion
    assert found["kpwa.pain"] == "met"
    # only the opioid type of treatment is judged: each either/or stands for its pain branch
    assert [r.id for r in d.criteria[:2]] == ["kpwa.pain", "kpwa.pain.trial-gt50-function"]
    other = ("kpwa.spasticity", "kpwa.treatment-type", "kpwa.implant-trial")
    assert not any(c.startswith(other) for c in found)
    assert found["kpwa.pain.less-invasive.neuropathic"] == "met"
    assert all(
        r.citation.startswith("Kaiser Permanente Washington, Clinical Review Criteria") for r in d.criteria
    )


# --------------------------------------------------------------------------- patient 2: spasticity, meets


def test_spasticity_patient_meets_every_spasticity_criterion() -> None:
    d = kaiser(spasticity_chart(), drugs=(BACLOFEN_IT,))
    assert (d.outcome, d.indication) == (Outcome.MEETS, "spasticity")
    found = statuses(d)
    for criterion in [*SPASTICITY_CRITERIA, *CONTRAINDICATIONS, "kpwa.spasticity.trial-2pt-4h"]:
        assert found[criterion] == "met", criterion
    assert not any(c.startswith(("kpwa.pain", "kpwa.treatment-type", "kpwa.implant-trial")) for c in found)


def test_spasticity_trial_response_computed_from_scores() -> None:
    lasting = statuses(kaiser(spasticity_chart_with_scores(1, 1, 1), drugs=(BACLOFEN_IT,)))
    assert lasting["kpwa.spasticity.trial-2pt-4h"] == "met"  # 10:00 to 14:00 = 4 h
    # Kaiser gives "2 points for 4 hours" as an example ("e.g."): less is for the reviewer (AMB-16)
    fading = kaiser(spasticity_chart_with_scores(1, 1, 3), drugs=(BACLOFEN_IT,))
    assert statuses(fading)["kpwa.spasticity.trial-2pt-4h"] == "not-documented"  # 2 h only
    assert fading.outcome != Outcome.DOES_NOT_MEET
    one_point = statuses(kaiser(spasticity_chart_with_scores(2, 2, 2, 2), drugs=(BACLOFEN_IT,)))
    assert one_point["kpwa.spasticity.trial-2pt-4h"] == "not-documented"
    no_response = statuses(kaiser(spasticity_chart_with_scores(3, 3, 3), drugs=(BACLOFEN_IT,)))
    assert no_response["kpwa.spasticity.trial-2pt-4h"] == "not-met"


def test_a_lasting_spasm_frequency_response_counts_beside_a_brief_larger_ashworth_one() -> None:
    """ "a 2-point reduction in the Ashworth Scale or Spasm Frequency score for 4 hours": a scale whose
    response meets the bar and lasts decides, not the scale with the largest drop."""
    explicit = ("it-trial-scale-reduction", "it-trial-response-duration-h", "spasm-frequency-score")
    times = ["2025-10-01T08:30:00Z", *(f"2025-10-01T{h}:00:00Z" for h in ("10", "12", "14", "16"))]
    spasms = [
        assessment("spasm-frequency-score", t, valueInteger=v)
        for v, t in zip((3, 1, 1, 1, 1), times, strict=True)
    ]
    ashworth_brief = [
        ashworth(v, t) for v, t in zip((4, 1, 4), times[:3], strict=True)
    ]  # 3 points, for no time at all
    d = kaiser(
        [*without_codes(spasticity_chart(), *explicit), *spasms, *ashworth_brief], drugs=(BACLOFEN_IT,)
    )
    assert statuses(d)["kpwa.spasticity.trial-2pt-4h"] == "met"
    line = card_line(d, "kpwa.spasticity.trial-2pt-4h")
    assert line.endswith("2 points on the Penn spasm frequency score, for 6 h (needs 2 points for 4 h)")


def test_trial_scores_do_not_replace_the_baseline_severity() -> None:
    found = statuses(kaiser(spasticity_chart_with_scores(1, 1, 1), drugs=(BACLOFEN_IT,)))
    assert found["kpwa.spasticity.ashworth-ge3-or-mas2"] == "met"


@pytest.mark.parametrize(
    ("points", "hours", "expected"),
    [
        (2, 4, "met"),
        (1.5, 8, "not-documented"),
        (2, 3, "not-documented"),
        (0, 6, "not-met"),
        (3, None, "not-documented"),
    ],
)
def test_explicit_baclofen_trial_response(points: float, hours: float | None, expected: str) -> None:
    chart = [assessment("it-trial-scale-reduction", valueQuantity={"value": points, "unit": "points"})]
    if hours is not None:
        chart.append(assessment("it-trial-response-duration-h", valueQuantity={"value": hours, "unit": "h"}))
    assert kstatus(chart, "kpwa.spasticity.trial-2pt-4h", drugs=(BACLOFEN_IT,)) == expected


# --------------------------------------------------------------------------- patient 3: severity boundaries


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([ashworth(3, "2025-09-01")], "met"),
        ([ashworth(4, "2025-09-01")], "met"),
        ([coded_assessment("modified-ashworth-score", "2", "2025-09-01")], "met"),
        # one baseline severity on two scales (contract §3): a score recorded below the bar fails 2.b,
        # the scale never recorded leaves nothing open (contract audit C19-F2)
        ([coded_assessment("modified-ashworth-score", "1+", "2025-09-01")], "not-met"),
        (
            [ashworth(2, "2025-09-01"), coded_assessment("modified-ashworth-score", "1+", "2025-09-01")],
            "not-met",
        ),
        ([ashworth(2, "2025-09-01")], "not-met"),
        # on one date either scale meeting its own bar meets 2.b (the policy's "or"; AMB-14 (b))
        ([ashworth(2, "2025-09-01"), coded_assessment("modified-ashworth-score", "2", "2025-09-01")], "met"),
        # on different dates the most recent baseline decides
        (
            [ashworth(3, "2025-06-01"), coded_assessment("modified-ashworth-score", "1+", "2025-09-01")],
            "not-met",
        ),
        ([coded_assessment("modified-ashworth-score", "1+", "2025-06-01"), ashworth(3, "2025-09-01")], "met"),
        ([], "not-documented"),
    ],
)
def test_ashworth_3_or_modified_ashworth_2(scores: list[dict[str, Any]], expected: str) -> None:
    assert kstatus(scores, "kpwa.spasticity.ashworth-ge3-or-mas2", drugs=(BACLOFEN_IT,)) == expected


@pytest.mark.parametrize(
    "scores",
    [
        [
            coded_assessment("modified-ashworth-score", "2", "2025-09-01T09:00:00Z"),
            ashworth(2, "2025-09-01T09:01:00Z"),
        ],
        [
            ashworth(3, "2025-09-01T09:00:00Z"),
            coded_assessment("modified-ashworth-score", "1+", "2025-09-01T09:01:00Z"),
        ],
        [coded_assessment("modified-ashworth-score", "2", "2025-09-01"), ashworth(2, "2025-09-01T10:00:00Z")],
    ],
    ids=["A2-after-MAS2", "MAS1+-after-A3", "dated-MAS2-timed-A2"],
)
def test_one_days_scores_meet_2b_by_either_scale_whatever_their_hours(scores: list[dict[str, Any]]) -> None:
    """One examination charted minutes apart is one date: either scale meeting its bar meets 2.b, not
    the later record alone (review19 H1)."""
    assert kstatus(scores, "kpwa.spasticity.ashworth-ge3-or-mas2", drugs=(BACLOFEN_IT,)) == "met"


def test_a_severity_below_the_bar_is_not_asked_for_on_the_other_scale() -> None:
    """Ashworth 2 falls short of 2.b: the card says so with the score and asks for no Modified Ashworth
    score in its place (a recorded shortfall is not undocumented, contract §3)."""
    d = kaiser([ashworth(2, "2025-09-01")], drugs=(BACLOFEN_IT,))
    assert card_line(d, "kpwa.spasticity.ashworth-ge3-or-mas2").endswith("2 (needs at least 3)")
    assert not [i for i in items.missing(d) if "Ashworth" in i.label]


def test_the_severity_not_recorded_says_how_to_document_either_scale() -> None:
    """With no score on either scale, 2.b's Instructions step names both."""
    d = kaiser([], drugs=(BACLOFEN_IT,))
    open_item = next(i for i in items.missing(d) if i.label == "2.b Ashworth >= 3 or Modified Ashworth >= 2")
    assert (
        open_item.todo is not None
        and "Modified Ashworth" in open_item.todo
        and "Ashworth scale" in open_item.todo
    )


@pytest.mark.parametrize("order", [1, -1])
def test_the_baseline_average_ashworth_of_per_muscle_scores_is_their_average(order: int) -> None:
    """2.b "a baseline average Ashworth Scale score of at least 3": the scores of one examination (one
    time, one per muscle, contract §5) are averaged, whatever the order of the resources (peds review
    F2 C: elbow flexors 2 and hamstrings 3 were judged on whichever came first)."""
    exam = [muscle_ashworth(2, "2025-09-01", "elbow flexors"), muscle_ashworth(3, "2025-09-01", "hamstrings")]
    d = kaiser(exam[::order], drugs=(BACLOFEN_IT,))
    assert statuses(d)["kpwa.spasticity.ashworth-ge3-or-mas2"] == "not-met"
    assert card_line(d, "kpwa.spasticity.ashworth-ge3-or-mas2").endswith(
        "2.5 (average of 2, 3) (needs at least 3)"
    )


def test_a_trial_response_is_not_read_across_muscles() -> None:
    """2.c "a 2-point reduction in the Ashworth Scale ... score": hamstrings 3 -> 2 with the adductors
    (4) not scored again is a 1-point response, not adductors 4 -> hamstrings 2 (peds review F2 E)."""
    explicit = ("it-trial-scale-reduction", "it-trial-response-duration-h", "ashworth-score")
    before = [
        muscle_ashworth(3, "2025-10-01T08:30:00Z", "hamstrings"),
        muscle_ashworth(4, "2025-10-01T08:30:00Z", "adductors"),
    ]
    after = [muscle_ashworth(2, f"2025-10-01T{h}:00:00Z", "hamstrings") for h in ("10", "12", "14")]
    d = kaiser([*without_codes(spasticity_chart(), *explicit), *before, *after], drugs=(BACLOFEN_IT,))
    assert statuses(d)["kpwa.spasticity.trial-2pt-4h"] == "not-documented"  # below the example: reviewer
    assert "1 point on the Ashworth" in card_line(d, "kpwa.spasticity.trial-2pt-4h")
    assert d.outcome != Outcome.MEETS


def on_the_pump(pump: dict[str, Any], *baseline: dict[str, Any]) -> Determination:
    """An end-of-battery replacement of a baclofen pump put in elsewhere, no trial in the chart: the
    chart's intrathecal baclofen (authored 2026-06-01) and today's scores on it, Ashworth 1 and spasm
    frequency 0, with `baseline` scores."""
    itb = infusate_request("baclofen 2 MG/ML Injectable Solution", "1292", status="active")
    itb["authoredOn"] = "2026-06-01"
    chart = [
        condition(ICD, "G80.1", "2012-03-01", "Spastic diplegic cerebral palsy"),
        pump,
        itb,
        ashworth(1, "2026-10-01"),
        assessment("spasm-frequency-score", "2026-10-01", valueInteger=0),
        coded_assessment("device-status", "end-of-battery", "2026-11-01"),
        coded_assessment("replacement-reason", "end-of-battery", "2026-11-01"),
        *baseline,
    ]
    return kaiser(chart, order=service_request("62362"), drugs=())


SEVERITY = ("kpwa.spasticity.ashworth-ge3-or-mas2", "kpwa.spasticity.spasm-freq-ge2")
PUMPS = {
    "device": device({"text": "SynchroMed II implantable infusion pump"}),
    "implant": procedure("62362", "2019-06-15T09:00:00Z"),
}


@pytest.mark.parametrize("pump", sorted(PUMPS))
def test_scores_on_the_pump_are_not_the_baseline(pump: str) -> None:
    """2.b asks for a *baseline* score: one taken while the pump works measures the therapy. With
    only such scores the baseline is not documented, never "not met" (peds review F1)."""
    d = on_the_pump(PUMPS[pump])
    assert d.request_kind == "replacement"
    assert [statuses(d)[c] for c in SEVERITY] == ["not-documented", "not-documented"]
    assert d.outcome != Outcome.DOES_NOT_MEET
    assert finding_of(d, "kpwa.spasticity.spasm-freq-ge2").endswith(
        "from before the intrathecal trial or therapy"
    )


def test_the_baseline_from_before_the_pump_decides() -> None:
    """The pre-pump baseline (2019: Ashworth 4, spasm frequency 3) is 2.b's, not today's scores on
    intrathecal baclofen (peds review F1)."""
    before = (ashworth(4, "2019-04-01"), assessment("spasm-frequency-score", "2019-04-01", valueInteger=3))
    d = on_the_pump(PUMPS["device"], *before)
    assert [statuses(d)[c] for c in SEVERITY] == ["met", "met"]
    assert card_line(d, "kpwa.spasticity.ashworth-ge3-or-mas2").endswith("4 (needs at least 3)")


def test_a_pump_no_record_dates_leaves_no_score_as_baseline() -> None:
    """A pump in place that nothing dates (a Device, no pump drug in the chart): no score can be shown
    to be from before it, so 2.b's baseline is not documented (peds review F1)."""
    chart = [
        condition(ICD, "G80.1", "2012-03-01", "Spastic diplegic cerebral palsy"),
        PUMPS["device"],
        ashworth(1, "2019-04-01"),
        assessment("spasm-frequency-score", "2019-04-01", valueInteger=0),
    ]
    d = kaiser(chart, order=service_request("62362"), drugs=(BACLOFEN_IT,))
    assert d.request_kind == "replacement"
    assert [statuses(d)[c] for c in SEVERITY] == ["not-documented", "not-documented"]
    # what would let a score count: the card asks for the implant's date (Synthea A/B review 36, F2),
    # in the Ashworth either/or's item too (late review 36, H1)
    assert finding_of(d, "kpwa.spasticity.spasm-freq-ge2") == (
        "no “Penn spasm frequency score” recorded from before the pump, which no record dates (record the "
        "implant procedure with its date)"
    )
    [ashworth_item] = [i for i in items.missing(d) if i.label.startswith("2.b Ashworth")]
    assert "recorded from before the pump, which no record dates" in ashworth_item.finding


def test_a_missing_spasm_frequency_score_is_named_once() -> None:
    """The card reads "no “Penn spasm frequency score” recorded", not "... score score" (peds review L3)."""
    d = kaiser([ashworth(3, "2025-09-01")], drugs=(BACLOFEN_IT,))
    assert finding_of(d, "kpwa.spasticity.spasm-freq-ge2") == "no “Penn spasm frequency score” recorded"


@pytest.mark.parametrize(("score", "expected"), [(1, "not-met"), (2, "met"), (4, "met")])
def test_spasm_frequency_at_least_2(score: int, expected: str) -> None:
    chart = [assessment("spasm-frequency-score", "2025-09-01", valueInteger=score)]
    assert kstatus(chart, "kpwa.spasticity.spasm-freq-ge2", drugs=(BACLOFEN_IT,)) == expected


# --------------------------------------------------------------------------- patient 4: the 6-week oral trial


@pytest.mark.parametrize(("end", "expected"), [("2025-02-11", "not-met"), ("2025-02-12", "met")])
def test_oral_antispasmodic_trial_is_42_days_or_more(end: str, expected: str) -> None:
    chart = [med_request("Tizanidine 4 MG Oral Tablet", "2025-01-01", end, "stopped", "drowsiness", "0")]
    found = statuses(kaiser(chart, drugs=(BACLOFEN_IT,)))
    assert found["kpwa.spasticity.oral-6wk-failed.duration"] == expected  # stopped at 41 days: short
    assert found["kpwa.spasticity.oral-6wk-failed.failure"] == "met"


def test_a_running_oral_antispasmodic_course_is_not_documented_yet() -> None:
    chart = [med_request("Tizanidine 4 MG Oral Tablet", "2026-10-20", "2026-12-20", "active", code="0")]
    d = kaiser(chart, drugs=(BACLOFEN_IT,))
    assert statuses(d)["kpwa.spasticity.oral-6wk-failed.duration"] == "not-documented"
    line = card_line(d, "kpwa.spasticity.oral-6wk-failed.duration")
    assert "4 weeks 4 days so far (since 20 Oct 2026), needs at least 6 weeks" in line


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("ineffective", "met"),
        ("intolerable", "met"),
        ("effective", "not-met"),
        ("contraindicated", "not-documented"),
    ],
)
def test_oral_antispasmodic_outcome(outcome: str, expected: str) -> None:
    chart = [coded_assessment("oral-antispasmodic-outcome", outcome)]
    assert kstatus(chart, "kpwa.spasticity.oral-6wk-failed.failure", drugs=(BACLOFEN_IT,)) == expected


def test_cyclobenzaprine_is_not_an_antispasmodic_trial() -> None:
    chart = [
        med_request("Cyclobenzaprine 10 MG Oral Tablet", "2025-01-01", "2025-06-01", "stopped", "no effect")
    ]
    found = statuses(kaiser(chart, drugs=(BACLOFEN_IT,)))
    assert found["kpwa.spasticity.oral-6wk-failed.duration"] == "not-documented"
    assert found["kpwa.spasticity.oral-6wk-failed.failure"] == "not-documented"


# --------------------------------------------------------------------------- patient 5: pain trial boundaries


@pytest.mark.parametrize(("after", "expected"), [(4, "not-met"), (3, "met"), (5, "not-met")])
def test_trial_relief_must_be_more_than_50_percent(after: int, expected: str) -> None:
    chart = [*without_codes(pain_chart(), "62326", "72514-3"), *pain_trial(8, after)]
    d = kaiser(chart)
    assert statuses(d)["kpwa.pain.trial-gt50-function.relief-gt50"] == expected
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


@pytest.mark.parametrize(("percent", "expected"), [(50, "not-met"), (50.5, "met"), (80, "met")])
def test_explicit_relief_percent_against_greater_than_50(percent: float, expected: str) -> None:
    chart = [assessment("it-trial-pain-relief-pct", valueQuantity={"value": percent, "unit": "%"})]
    assert kstatus(chart, "kpwa.pain.trial-gt50-function.relief-gt50") == expected


def test_a_single_shot_trial_is_not_a_catheter_trial() -> None:
    chart = [*without_codes(pain_chart(), "62326", "72514-3"), *pain_trial(8, 2, code="62322")]
    d = kaiser(chart)
    found = statuses(d)
    assert found["kpwa.pain.trial-gt50-function.relief-gt50"] == "met"
    assert found["kpwa.pain.trial-gt50-function.catheter"] == "not-documented"
    assert found["kpwa.pain.trial-gt50-function"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


@pytest.mark.parametrize(
    "used",
    [{"steroid": "methylprednisolone"}, {"rxcui": "6902"}, {"rxcui": "1743779"}, {"rxcui": "3264"}],
    ids=["named", "ingredient-code", "product-code", "dexamethasone-code"],
)
def test_a_steroid_infusion_through_a_catheter_is_not_a_catheter_trial(used: dict[str, str]) -> None:
    """62326 that infused methylprednisolone is an epidural steroid injection (AMB-34): the trial
    result has no trial, and neither has the catheter item (xpayer finding 3); so when its usedCode is
    only the RxNorm code of the steroid, of an injectable product of it, or of dexamethasone (s36 #6)."""
    _, *scores = pain_trial()
    esi = steroid_injection("62326", TRIAL, **used)
    d = kaiser([*without_codes(pain_chart(), "62326", "72514-3"), esi, *scores])
    found = statuses(d)
    assert found["kpwa.pain.trial-gt50-function.relief-gt50"] == "not-documented"
    assert found["kpwa.pain.trial-gt50-function.catheter"] == "not-documented"
    assert "was an epidural steroid injection, not a drug trial" in finding_of(
        d, "kpwa.pain.trial-gt50-function.catheter"
    )


@pytest.mark.parametrize(
    ("item", "value", "expected"),
    [
        ("it-trial-side-effects", "none", "met"),
        ("it-trial-side-effects", "acceptable", "met"),
        ("it-trial-side-effects", "unacceptable", "not-met"),
        ("it-trial-function-improved", False, "not-met"),
        ("it-trial-patient-acceptance", False, "not-met"),
    ],
)
def test_function_side_effects_and_acceptance(item: str, value: str | bool, expected: str) -> None:
    part = {
        "it-trial-side-effects": "kpwa.pain.trial-gt50-function.side-effects",
        "it-trial-function-improved": "kpwa.pain.trial-gt50-function.function",
        "it-trial-patient-acceptance": "kpwa.pain.trial-gt50-function.acceptance",
    }[item]
    recorded = (
        coded_assessment(item, value, "2025-10-03")
        if isinstance(value, str)
        else assessment(item, "2025-10-03", valueBoolean=value)
    )
    d = kaiser([*pain_chart(), recorded])  # the later answer wins
    assert statuses(d)[part] == expected
    if expected == "not-met":
        assert d.outcome == Outcome.DOES_NOT_MEET


# --------------------------------------------------------------------------- patient 6: request kinds


def test_a_trial_request_is_judged_without_the_trial_results() -> None:
    before_the_trial = pain_chart()[:4]  # diagnosis, gabapentin, life expectancy, agreement
    d = kaiser(before_the_trial, order=service_request("62324"))
    assert d.request_kind == "trial"
    found = statuses(d)
    assert "kpwa.pain.trial-gt50-function" not in found
    assert "kpwa.spasticity.trial-2pt-4h" not in found
    assert d.outcome == Outcome.MEETS
    assert kaiser(before_the_trial).outcome == Outcome.INSUFFICIENT  # the implant needs the trial


def test_replacement_still_needs_the_trial_and_an_existing_pump_is_no_contraindication() -> None:
    chart = [*pain_chart(), device({"text": "SynchroMed II intrathecal pump"})]
    d = kaiser(chart)
    assert d.request_kind == "replacement"
    found = statuses(d)
    assert found["kpwa.pain.trial-gt50-function"] == "met"
    assert found["kpwa.ci.programmable-device"] == "met"
    assert d.outcome == Outcome.MEETS


@pytest.mark.parametrize(
    ("code", "kind", "words"), [("95990", "refill-analysis", "refill"), ("62365", "removal", "removing")]
)
def test_refill_and_removal_are_not_addressed(code: str, kind: str, words: str) -> None:
    d = kaiser(pain_chart(), order=service_request(code))
    assert (d.request_kind, d.outcome) == (kind, Outcome.NOT_APPLICABLE)
    assert words in d.explanation and d.criteria == ()


# --------------------------------------------------------------------------- patient 7: indications


def test_cancer_pain_is_in_scope_and_the_malignancy_is_the_pain_origin() -> None:
    cancer = [condition(ICD, "C61", "2024-01-01"), condition(ICD, "C79.51", "2025-01-01")]
    chart = [*cancer, *[r for r in pain_chart() if r["resourceType"] != "Condition"]]
    d = kaiser(chart)
    assert d.indication == "cancer-pain"
    found = statuses(d)
    assert found["kpwa.pain.severe-intractable"] == "met"
    assert found["kpwa.pain.agree-opioid-reduction-50"] == "met"  # applies to malignant pain too (AMB-05)
    assert d.outcome == Outcome.MEETS
    no_agreement = without_codes(chart, "opioid-reduction-agreement")
    assert kstatus(no_agreement, "kpwa.pain.agree-opioid-reduction-50") == "not-documented"


def test_dystonia_is_not_addressed() -> None:
    d = kaiser([condition(ICD, "G24.1", "2019-01-01")], drugs=(BACLOFEN_IT,))
    assert (d.indication, d.outcome) == ("dystonia", Outcome.NOT_APPLICABLE)
    assert "dystonia is not addressed" in d.explanation and "AMB-" not in d.explanation


def test_the_drug_decides_the_type_of_treatment() -> None:
    mixture = (MORPHINE, infusate_request("bupivacaine 7.5 MG/ML Injectable Solution", "1815"))
    assert kstatus(pain_chart(), "kpwa.pain.it-epidural-opioid", drugs=mixture) == "met"
    hydromorphone = (infusate_request("hydromorphone 10 MG/ML Injectable Solution", "3423"),)
    assert kaiser(pain_chart(), drugs=hydromorphone).outcome == Outcome.MEETS
    nothing_named = kaiser(pain_chart(), drugs=())
    found = statuses(nothing_named)
    assert found["kpwa.pain.it-epidural-opioid"] == "not-documented"
    assert "kpwa.spasticity.it-antispasmodic" not in found  # the pain diagnosis tells the indication
    assert nothing_named.outcome == Outcome.INSUFFICIENT
    unknown = statuses(kaiser([r for r in pain_chart() if r["resourceType"] != "Condition"], drugs=()))
    assert unknown["kpwa.spasticity.it-antispasmodic"] == "not-documented"  # nothing tells it: both kept
    assert unknown["kpwa.treatment-type"] == "not-documented"
    both = (MORPHINE, BACLOFEN_IT)
    assert kstatus(pain_chart(), "kpwa.spasticity.it-antispasmodic", drugs=both) == "not-met"
    assert kaiser(pain_chart(), drugs=both).outcome == Outcome.DOES_NOT_MEET


def test_baclofen_for_a_pain_patient_is_judged_by_the_spasticity_criteria() -> None:
    d = kaiser(pain_chart(), drugs=(BACLOFEN_IT,))
    found = statuses(d)
    assert not any(c.startswith("kpwa.pain") for c in found)
    assert found["kpwa.spasticity.ashworth-ge3-or-mas2"] == "not-documented"
    assert found["kpwa.spasticity.trial-2pt-4h"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT


# --------------------------------------------------------------------------- patient 8: life expectancy


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ({"value": 3, "code": "mo"}, "met"),
        ({"value": 2.9, "code": "mo"}, "not-met"),
        ({"value": 1, "code": "a"}, "met"),
        ({"value": 10, "code": "wk"}, "not-met"),
        ({"value": 5}, "not-documented"),
    ],
)
def test_life_expectancy_of_at_least_3_months(quantity: dict[str, Any], expected: str) -> None:
    chart = [observation(LOINC, "75327-7", "2026-11-01", valueQuantity=quantity)]
    # the estimate alone decides: a short one is a documented failure (contract §3), not a missing fact
    assert kstatus(chart, "kpwa.pain.le-3mo.recorded") == expected
    assert kstatus(chart, "kpwa.pain.le-3mo") == expected
    answered_no = [*chart, assessment("life-expectancy-ge-3mo", "2026-11-02", valueBoolean=False)]
    assert kstatus(answered_no, "kpwa.pain.le-3mo") == "not-met"


def test_the_most_recent_form_of_life_expectancy_decides() -> None:
    older_yes = [
        *without_codes(pain_chart(), "life-expectancy-ge-3mo"),
        assessment("life-expectancy-ge-3mo", "2025-10-01", valueBoolean=True),
    ]
    recent_short = [*older_yes, life_expectancy(2, "mo", "2026-11-20")]
    d = kaiser(recent_short)
    assert statuses(d)["kpwa.pain.le-3mo.recorded"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET
    line = card_line(d, "kpwa.pain.le-3mo.recorded")
    assert "LOINC 75327-7: 2 mo (20 Nov 2026" in line
    assert "; overrules life expectancy at least 3 months: yes (1 Oct 2025" in line
    newer_yes = [
        *without_codes(pain_chart(), "life-expectancy-ge-3mo"),
        life_expectancy(2, "mo", "2025-10-01"),
        assessment("life-expectancy-ge-3mo", "2026-11-20", valueBoolean=True),
    ]
    assert kstatus(newer_yes, "kpwa.pain.le-3mo.recorded") == "met"
    assert kaiser(newer_yes).outcome == Outcome.MEETS


FROM_CALL = "3 months from 21 Nov 2026 are 92 days"  # to 21 February 2027


@pytest.mark.parametrize(
    ("value", "unit", "status", "finding"),
    [
        (92, "d", "met", f"92 days recorded ({FROM_CALL}; needs at least 3 months)"),
        (91, "d", "not-met", f"91 days recorded ({FROM_CALL}; needs at least 3 months)"),
        (13, "wk", "not-met", f"13 weeks recorded (91 days; {FROM_CALL}; needs at least 3 months)"),
        (14, "wk", "met", f"14 weeks recorded (98 days; {FROM_CALL}; needs at least 3 months)"),
        (3, "mo", "met", "3 months recorded (needs at least 3 months)"),
        (2, "mo", "not-met", "2 months recorded (needs at least 3 months)"),
        (1, "mo", "not-met", "1 month recorded (needs at least 3 months)"),
        (2.5, "mo", "not-met", "2.5 months recorded (needs at least 3 months)"),
        (1, "a", "met", "12 months recorded (1 a; needs at least 3 months)"),
        (0.2499, "a", "not-met", "2.999 months recorded (0.2499 a; needs at least 3 months)"),
        (0.17, "a", "not-met", "2 months recorded (0.17 a; needs at least 3 months)"),  # 2.04: review29d
        (0.08, "a", "not-met", "1 month recorded (0.08 a; needs at least 3 months)"),  # 0.96
    ],
)
def test_a_life_expectancy_in_days_or_weeks_is_stated_as_recorded_and_compared_by_the_calendar(
    value: float, unit: str, status: str, finding: str
) -> None:
    """AMB-44: "month = calendar months from the request date" (contract review s17 F9). Days and weeks
    are compared with the days the months run from the call's day (92 from 21 November), not with an
    average month, and the card says them as recorded with that count, never as "2.96 months"; a value
    in years is months (1 a is 12 mo), never shown as "3.0" when it is short of 3. A whole number of
    months is said as the cards say numbers, "2 months", "1 month" (s29 F2: "2.0 months", "1.0 months")."""
    chart = [
        *without_codes(pain_chart(), "life-expectancy-ge-3mo"),
        life_expectancy(value, unit, "2026-11-20"),
    ]
    d = kaiser(chart)
    assert statuses(d)["kpwa.pain.le-3mo.recorded"] == status
    assert result_of(d, "kpwa.pain.le-3mo.recorded").finding == finding


@pytest.mark.parametrize(
    ("value", "unit", "finding", "evidence"),
    [
        (-0.01, "mo", "0 months recorded (needs at least 3 months)", "-0.01 mo"),
        (-0.001, "a", "0 months recorded (-0.001 a; needs at least 3 months)", "-0.001 a"),
        (-0.0, "mo", "0 months recorded (needs at least 3 months)", "0 mo"),
        (-0.0, "d", f"0 days recorded ({FROM_CALL}; needs at least 3 months)", "0 d"),
        (
            -1,
            "mo",
            "-1 months recorded (needs at least 3 months)",
            "-1 mo",
        ),  # the control: a sign that counts
    ],
)
def test_a_zero_is_never_said_with_a_minus_sign(value: float, unit: str, finding: str, evidence: str) -> None:
    """review29d L5: a negative life expectancy shown to none of its digits was said "-0 months recorded"
    (and -0.0 as "-0 mo"): a zero is written unsigned wherever a number is said (`wording.unsigned_zero`);
    a value that is not zero keeps its sign."""
    chart = [
        *without_codes(pain_chart(), "life-expectancy-ge-3mo"),
        life_expectancy(value, unit, "2026-11-20"),
    ]
    result = result_of(kaiser(chart), "kpwa.pain.le-3mo.recorded")
    assert result.finding == finding
    assert [e.text for e in result.evidence] == [f"LOINC 75327-7: {evidence}"]


@pytest.mark.parametrize(("points", "said"), [(1, "1 point"), (2.5, "2.5 points"), (3, "3 points")])
def test_a_recorded_trial_response_is_said_with_its_unit_in_the_singular_after_a_one(
    points: float, said: str
) -> None:
    """s29 F2 (contract29): a chart's unit is written in the plural ("points"), and the evidence line said
    it after any number: "spasticity trial response: 1 points". The number and its unit are said as the
    findings say them (service/wording.py `quantity`): "1 point"."""
    reduction = assessment(
        "it-trial-scale-reduction", "2025-10-01", valueQuantity={"value": points, "unit": "points"}
    )
    chart = [*without_codes(spasticity_chart(), "it-trial-scale-reduction"), reduction]
    evidence = [
        e.text
        for e in result_of(kaiser(chart, drugs=(BACLOFEN_IT,)), "kpwa.spasticity.trial-2pt-4h").evidence
    ]
    assert f"spasticity trial response: {said}" in evidence


def test_life_expectancy_assessment_and_terminal_codes() -> None:
    assert kstatus([], "kpwa.pain.le-3mo") == "not-documented"
    no = [assessment("life-expectancy-ge-3mo", "2026-10-01", valueBoolean=False)]
    assert kstatus(no, "kpwa.pain.le-3mo") == "not-met"
    hospice = condition(SCT, "385763009", "2026-10-15", "Hospice care", status=None)
    d = kaiser([*pain_chart(), hospice])
    found = statuses(d)
    assert found["kpwa.pain.le-3mo.recorded"] == "met"
    # the answer predates the hospice code, so it does not confirm it
    assert found["kpwa.pain.le-3mo.no-terminal-conflict"] == "not-documented"
    assert d.outcome == Outcome.INSUFFICIENT
    confirmed = [
        *pain_chart(),
        hospice,
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=True),
    ]
    assert kstatus(confirmed, "kpwa.pain.le-3mo") == "met"
    palliative = [condition(ICD, "Z51.5", "2026-11-01")]
    assert kstatus(palliative, "kpwa.pain.le-3mo.no-terminal-conflict") == "not-documented"


@pytest.mark.parametrize(
    ("estimate", "expected"),
    [
        (life_expectancy(5, "a", "2026-11-10"), "met"),  # a newer estimate of 3 months or more confirms
        (life_expectancy(3, "mo", "2026-11-10"), "met"),
        (life_expectancy(2, "mo", "2026-11-10"), "not-documented"),  # too short: no clearance
        (life_expectancy(5, "a", "2025-11-10"), "not-documented"),  # older than the code
    ],
)
def test_a_newer_loinc_life_expectancy_confirms_a_terminal_code(
    estimate: dict[str, Any], expected: str
) -> None:
    """Cross-payer review 1: the card asked for "(or LOINC 75327-7 with a unit)", which never cleared."""
    palliative = condition(ICD, "Z51.5", "2026-01-01", "Encounter for palliative care")
    assert kstatus([palliative, estimate], "kpwa.pain.le-3mo.no-terminal-conflict") == expected
    # the most recent form of the clearance decides: a newer "no" undoes an older long estimate
    newer_no = assessment("life-expectancy-ge-3mo", "2026-11-15", valueBoolean=False)
    assert (
        kstatus([palliative, estimate, newer_no], "kpwa.pain.le-3mo.no-terminal-conflict") == "not-documented"
    )


# --------------------------------------------------------------------------- patient 9: less invasive therapy


@pytest.mark.parametrize(
    "evidence",
    [
        med_request("Naproxen 500 MG Oral Tablet", "2025-01-01", "2025-03-01", "stopped", "GI upset", "0"),
        allergy("Pregabalin", "187832", kind="intolerance"),
        coded_assessment("opioid-trial-outcome", "ineffective"),
        med_request("Oxycodone 5 MG Oral Tablet", "2025-01-01", "2025-02-01", "stopped", "nausea"),
    ],
)
def test_any_one_less_invasive_therapy_is_enough(evidence: dict[str, Any]) -> None:
    assert kstatus([evidence], "kpwa.pain.less-invasive-any") == "met"


@pytest.mark.parametrize(
    "therapy",
    [
        procedure("97110", "2025-03-01"),
        procedure("90837", "2025-04-01"),
        procedure("228557008", "2025-04-01", SCT, "Cognitive and behavioral therapy"),
    ],
)
def test_a_therapy_on_record_is_not_proof_that_it_failed(therapy: dict[str, Any]) -> None:
    """ "Proven unresponsive": PT and behavioral therapy visits show the trial, not its failure (AMB-40)."""
    assert kstatus([therapy], "kpwa.pain.less-invasive-any") == "not-documented"


def test_whether_a_therapy_on_record_failed_is_left_to_the_reviewer() -> None:
    """No code records that physical therapy failed, so nothing the clinician could record would close
    the item: the visits go to Kaiser's reviewer. Before, the card asked to "record ... the physical
    therapy or psychotherapy visits" already on the chart (cross-payer review 2)."""
    chart = [c for c in pain_chart() if "Gabapentin" not in str(c)]  # no drug failure: 3.d is open
    d = kaiser([*chart, procedure("97110", "2025-03-01")])
    [pt] = [i for i in items.missing(d) if i.label == "3.d Physical therapy failed"]
    assert (pt.step, pt.finding) == (items.Step.REVIEW, "tried; no code records whether it failed")
    assert pt.todo == items.FOR_REVIEWER


def test_unproven_therapies_are_not_documented_never_not_met() -> None:
    chart = [
        med_request("Ibuprofen 800 MG Oral Tablet", "2025-01-01", "2025-06-01", "completed", code="0"),
        coded_assessment("opioid-trial-outcome", "effective"),
        procedure("97161", "2025-01-01", display="PT evaluation"),
        procedure("90791", "2025-01-01"),
    ]
    found = statuses(kaiser(chart))
    assert found["kpwa.pain.less-invasive.nsaid"] == "not-documented"  # taken, failure not recorded
    assert found["kpwa.pain.less-invasive.history"] == "not-met"
    assert found["kpwa.pain.less-invasive.pt"] == "not-documented"  # an evaluation is not a trial of PT
    # a psychiatric evaluation is not therapy
    assert found["kpwa.pain.less-invasive.behavioral"] == "not-documented"
    assert found["kpwa.pain.less-invasive-any"] == "not-documented"


# --------------------------------------------------------------------------- patient 10: psych and SUD


def test_acute_psychiatric_instability_and_clearance() -> None:
    recent = condition(ICD, "R45.851", "2026-10-01")
    assert kstatus([*pain_chart(), recent], "kpwa.pain.no-acute-psych") == "not-met"
    assert kaiser([*pain_chart(), recent]).outcome == Outcome.DOES_NOT_MEET
    cleared = [*pain_chart(), recent, assessment("psych-clearance", "2026-10-20", valueBoolean=True)]
    assert kstatus(cleared, "kpwa.pain.no-acute-psych") == "met"
    # an active diagnosis older than the window cannot be placed: asked, not assumed stable
    assert kstatus([condition(ICD, "F20.9", "2018-01-01")], "kpwa.pain.no-acute-psych") == "not-documented"


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ([condition(ICD, "F17.210", "2020-01-01", "Nicotine dependence, cigarettes")], "met"),
        ([condition(ICD, "F10.20", "2024-01-01")], "not-documented"),
        ([condition(ICD, "F11.21", "2020-01-01", "Opioid dependence, in remission")], "not-documented"),
        ([condition(SCT, "66214007", "2024-01-01")], "not-documented"),
        (
            [
                condition(ICD, "F11.20", "2024-01-01"),
                med_request(
                    "Buprenorphine 8 MG Sublingual Tablet", "2026-10-01", status="active", code="1819"
                ),
            ],
            "met",
        ),
        (
            [
                condition(ICD, "F10.20", "2024-01-01"),
                med_request(
                    "Buprenorphine 8 MG Sublingual Tablet", "2026-10-01", status="active", code="1819"
                ),
            ],
            "not-documented",
        ),
    ],
)
def test_substance_related_disorder_other_than_nicotine(chart: list[dict[str, Any]], expected: str) -> None:
    """A disorder found is "not documented" until its active treatment is: being in treatment is the
    exception's own fact, absent from the chart rather than disproved (contract §3)."""
    assert kstatus(chart, "kpwa.pain.no-sud-except-nicotine") == expected


def test_psych_and_sud_are_pain_criteria_only() -> None:
    chart = [
        *spasticity_chart(),
        condition(ICD, "F10.20", "2024-01-01"),
        condition(ICD, "R45.851", "2026-10-01"),
    ]
    d = kaiser(chart, drugs=(BACLOFEN_IT,))
    # inside the pain block, which is not judged for a baclofen pump
    assert "kpwa.pain.no-sud-except-nicotine" not in statuses(d)
    assert d.outcome == Outcome.MEETS


# --------------------------------------------------------------------------- patient 11: contraindications


@pytest.mark.parametrize(
    ("evidence", "drugs"),
    [
        (allergy("Baclofen 10 MG Oral Tablet", "0"), (BACLOFEN_IT,)),
        (allergy("Morphine", "7052"), (MORPHINE,)),
        (allergy("morphine sulfate 15 MG Oral Tablet", "0", kind="allergy"), (MORPHINE,)),
    ],
)
def test_allergy_to_the_drug_in_any_formulation(
    evidence: dict[str, Any], drugs: tuple[dict[str, Any], ...]
) -> None:
    base = spasticity_chart() if drugs == (BACLOFEN_IT,) else pain_chart()
    d = kaiser([*base, evidence], drugs=drugs)
    assert statuses(d)["kpwa.ci.allergy"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


def test_allergy_to_another_drug_is_no_contraindication() -> None:
    assert kstatus([allergy("Penicillin V", "7984")], "kpwa.ci.allergy") == "met"


def test_infection() -> None:
    assert kstatus([condition(ICD, "L03.115", "2026-11-01")], "kpwa.ci.infection") == "not-met"
    assert kstatus([condition(ICD, "N39.0", "2024-01-01", status=None)], "kpwa.ci.infection") == "met"
    assert kstatus([], "kpwa.ci.infection") == "met"


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ([], "met"),
        ([assessment("body-size-adequate", "2026-10-01", valueBoolean=False)], "not-met"),
        ([assessment("body-size-adequate", "2026-10-01", valueBoolean=True)], "met"),
        ([condition(ICD, "R64", "2026-09-01", "Cachexia")], "not-documented"),
        ([condition(ICD, "R62.51", "2026-09-01", "Failure to thrive (child)")], "not-documented"),  # peds L2
        ([condition(ICD, "R63.6", "2026-09-01", "Underweight")], "not-documented"),
        (
            [
                condition(ICD, "Z68.1", "2026-09-01", status=None),
                assessment("body-size-adequate", "2026-10-01", valueBoolean=True),
            ],
            "met",
        ),
        (
            [
                condition(ICD, "E43", "2026-09-01"),
                assessment("body-size-adequate", "2026-08-01", valueBoolean=True),
            ],
            "not-documented",
        ),
    ],
)
def test_body_size_is_an_answer_and_proxies_only_ask(chart: list[dict[str, Any]], expected: str) -> None:
    assert kstatus(chart, "kpwa.ci.body-size") == expected


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        ([condition(ICD, "Z95.0", "2020-01-01")], "not-met"),
        ([device({"text": "Spinal cord stimulator"})], "not-met"),
        ([procedure("63685", "2021-01-01", CPT)], "not-met"),
        ([procedure("63685", "2021-01-01"), procedure("63688", "2022-01-01")], "met"),
        ([device({"text": "Cardiac pacemaker"}, status="inactive")], "met"),
    ],
)
def test_other_implanted_programmable_devices(evidence: list[dict[str, Any]], expected: str) -> None:
    d = kaiser([*pain_chart(), *evidence])
    assert statuses(d)["kpwa.ci.programmable-device"] == expected
    assert d.outcome == (Outcome.MEETS if expected == "met" else Outcome.DOES_NOT_MEET)


def test_contraindications_apply_to_spasticity_pumps_too() -> None:
    d = kaiser([*spasticity_chart(), condition(ICD, "Z95.0", "2020-01-01")], drugs=(BACLOFEN_IT,))
    assert statuses(d)["kpwa.ci.programmable-device"] == "not-met"
    assert d.outcome == Outcome.DOES_NOT_MEET


# --------------------------------------------------------------------------- patient 12: nothing recorded


def test_empty_chart_is_insufficient_never_not_met() -> None:
    d = kaiser([])
    found = statuses(d)
    assert d.outcome == Outcome.INSUFFICIENT
    assert found["kpwa.pain"] == "not-documented"
    assert [found[c] for c in CONTRAINDICATIONS] == ["met"] * 4  # absence rule
    assert found["kpwa.pain.no-acute-psych"] == "met"
    assert found["kpwa.pain.no-sud-except-nicotine"] == "met"


def test_unavailable_data_never_counts_as_absence() -> None:
    d = kaiser([], unavailable={t: "HTTP 503" for t in CLINICAL_TYPES})
    found = statuses(d)
    for criterion in ("kpwa.ci.infection", "kpwa.ci.programmable-device", "kpwa.ci.allergy"):
        assert found[criterion] == "not-documented", criterion
    body = next(r for r in d.criteria if r.id == "kpwa.ci.body-size")
    assert body.status == Status.NOT_DOCUMENTED
    assert d.outcome == Outcome.INSUFFICIENT


# --------------------------------------------------------------------------- the policy file itself


def test_every_criterion_of_the_matrix_is_encoded_or_explained() -> None:
    policy = load_catalog().policies[KPWA]
    ids = {c.id for c in policy.all_criteria()}
    for criterion in [*PAIN_CRITERIA, *SPASTICITY_CRITERIA, *CONTRAINDICATIONS]:
        assert criterion in ids
    assert {"kpwa.spasticity.trial-2pt-4h", "kpwa.pain.trial-gt50-function"} <= ids
    notes = Path(__file__).resolve().parents[2] / "policies" / "notes" / "kpwa.md"
    text = notes.read_text(encoding="utf-8")
    for missing in ("kpwa.product.medicare-ncd", "kpwa.chemo.5fudr-liver", "kpwa.doc.notes-3mo"):
        assert missing in text


def test_an_intolerance_is_not_an_allergy_to_the_drug() -> None:
    """A side effect (AllergyIntolerance.type = intolerance) is how a failed trial is recorded."""
    chart = [allergy("morphine sulfate 15 MG Oral Tablet", "0", kind="intolerance")]
    assert statuses(kaiser(chart, drugs=(MORPHINE,)))["kpwa.ci.allergy"] == "met"


@pytest.mark.parametrize(("chart", "expected"), drug_failure_forms(OXYCODONE_TABLET, "opioid-trial-outcome"))
def test_the_most_recent_form_of_opioid_failure_decides(chart: list[dict[str, Any]], expected: str) -> None:
    assert kstatus(chart, "kpwa.pain.less-invasive.history") == expected


@pytest.mark.parametrize(
    ("chart", "expected"), drug_failure_forms(BACLOFEN_TABLET, "oral-antispasmodic-outcome")
)
def test_the_most_recent_form_of_antispasmodic_failure_decides(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert kstatus(chart, "kpwa.spasticity.oral-6wk-failed.failure", drugs=(BACLOFEN_IT,)) == expected


@pytest.mark.parametrize(("chart", "expected"), device_removal_charts())
def test_the_most_recent_of_a_device_and_its_removal_decides(
    chart: list[dict[str, Any]], expected: str
) -> None:
    assert kstatus(chart, "kpwa.ci.programmable-device") == expected


def test_a_baclofen_pump_with_the_problem_list_unread_may_be_for_dystonia_kaiser_does_not_address() -> None:
    """The drug says spasticity or dystonia; only the unread problem list (or a reason) says which, and
    Kaiser addresses dystonia nowhere: a failed contraindication judged under the default spasticity
    was a final "not covered" (late review 2, F2); read as spasticity, it is."""
    chart = [*spasticity_chart(), condition(ICD, "Z95.0", "2020-01-01", "Presence of cardiac pacemaker")]
    unread = kaiser(problem_list_unread(chart), drugs=(BACLOFEN_IT,), unavailable={"Condition": "HTTP 503"})
    assert unread.kind_unread == "Whether it is spasticity or dystonia"
    assert unread.indication_words == "spasticity or dystonia (the problem list could not be read)"
    assert unread.outcome == Outcome.INSUFFICIENT
    device_chart = [*spasticity_chart(), device({"text": "Cardiac pacemaker"})]
    assert kaiser(device_chart, drugs=(BACLOFEN_IT,)).outcome == Outcome.DOES_NOT_MEET
    device_unread = kaiser(
        problem_list_unread(device_chart), drugs=(BACLOFEN_IT,), unavailable={"Condition": "HTTP 503"}
    )
    assert statuses(device_unread)["kpwa.ci.programmable-device"] == "not-met"
    assert device_unread.outcome == Outcome.INSUFFICIENT


@pytest.mark.parametrize(
    ("drug", "reason", "question"),
    [
        (BACLOFEN_IT, ("G89.4", "Chronic pain syndrome"), "Whether it is spasticity or dystonia"),
        (MORPHINE, ("G35", "Multiple sclerosis"), "Whether the pain is cancer-related"),
    ],
)
def test_a_reason_of_another_family_does_not_tell_which_of_the_drugs_family(
    drug: dict[str, Any], reason: tuple[str, str], question: str
) -> None:
    """A baclofen pump ordered for chronic pain, or a morphine pump for multiple sclerosis: the reason
    tells nothing the drug's family is about, so with the problem list unread which of it stays unknown."""
    order = service_request("62362", reason=[concept(ICD, *reason)])
    chart = problem_list_unread(spasticity_chart())
    d = kaiser(chart, order=order, drugs=(drug,), unavailable={"Condition": "HTTP 503"})
    assert d.kind_unread == question


def test_a_problem_list_read_in_part_that_already_tells_spasticity_decides() -> None:
    """The first page of the problem list read (multiple sclerosis), the next page failed: no missing
    page could make it dystonia, so the default is no default and a failed contraindication is final
    (late review 3, #1)."""
    chart = [*spasticity_chart(), device({"text": "Cardiac pacemaker"})]  # G35.A among what was read
    d = kaiser(chart, drugs=(BACLOFEN_IT,), unavailable={"Condition": "HTTP 503"})
    assert (d.kind_unread, d.outcome) == ("", Outcome.DOES_NOT_MEET)


def test_a_baclofen_pump_ordered_for_dystonia_is_not_judged_as_spasticity() -> None:
    """The order's reason is the indication (contract §2): G24.1 with a baclofen drug and nothing on the
    problem list is dystonia, which Kaiser does not address (late2 review F1); it was judged as
    spasticity and a contraindication made it "not covered"."""
    order = service_request("62362", reason=[concept(ICD, "G24.1", "Genetic torsion dystonia")])
    d = kaiser([], order=order, drugs=(BACLOFEN_IT,))
    assert (d.indication, d.outcome) == ("dystonia", Outcome.NOT_APPLICABLE)
