"""The intrathecal trial result (clinical-data-contract.md §4)."""

from __future__ import annotations

from typing import Any

import pytest

from service.facts import ObservationFact
from service.record import build_record
from service.trial import scale_points, scale_trials, trial_result
from tests.builders import SCT, assessment, catalog, muscle_ashworth, pain, procedure


def result(chart: list[dict[str, Any]]) -> Any:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in chart:
        by_type.setdefault(r["resourceType"], []).append(r)
    terms = catalog().terminology
    record = build_record("p1", by_type, terms)
    return trial_result(
        record.procedures, record.observations, terms["trial-procedures"], terms["pain-score"]
    )


START = "2025-10-01T09:00:00Z"


def test_relief_uses_last_baseline_and_lowest_post_score() -> None:
    r = result(
        [
            procedure("62326", START),
            pain(9, "2025-09-20T10:00:00Z"),
            pain(8, "2025-09-30T15:00:00Z"),
            pain(4, "2025-10-01T12:00:00Z"),
            pain(2, "2025-10-02T06:00:00Z"),
            pain(1, "2025-10-04T06:00:00Z"),
        ]
    )
    assert r.relief_pct == pytest.approx(75.0)
    assert r.baseline.value == 8
    assert r.lowest_post.value == 2


def test_the_ends_of_the_pain_scale_are_scores() -> None:
    """Contract §3: a pain severity is 0-10, both ends included (10 is the worst pain, 0 none)."""
    r = result([procedure("62326", START), pain(10, "2025-09-30T15:00:00Z"), pain(0, "2025-10-01T12:00:00Z")])
    assert r.baseline is not None and r.baseline.value == 10
    assert r.relief_pct == pytest.approx(100.0)


@pytest.mark.parametrize(("when", "lowest"), [("2025-10-03T09:00:00Z", 2), ("2025-10-03T09:00:01Z", 4)])
def test_the_post_window_is_48_hours_from_the_start_inclusive(when: str, lowest: float) -> None:
    """Contract §4: post scores are those from the trial's start to 48 hours after it."""
    r = result(
        [
            procedure("62326", START),
            pain(8, "2025-09-30T15:00:00Z"),
            pain(4, "2025-10-01T12:00:00Z"),
            pain(2, when),
        ]
    )
    assert r.lowest_post.value == lowest


@pytest.mark.parametrize(("when", "found"), [("2025-09-01T09:00:00Z", True), ("2025-09-01T08:59:59Z", False)])
def test_a_baseline_may_be_30_days_old_and_no_older(when: str, found: bool) -> None:
    """Contract §4: the baseline is the last score at or before the start, no older than 30 days."""
    r = result([procedure("62326", START), pain(8, when), pain(4, "2025-10-01T12:00:00Z")])
    assert (r.relief_pct is not None) is found


def test_a_day_only_score_on_a_day_only_trial_is_not_placed() -> None:
    """A trial dated without a time starts at its day's first instant; a score dated that day without a
    time may be from before or after it, so it is neither the baseline nor a post score."""
    r = result(
        [
            procedure("62326", "2025-10-01"),
            pain(8, "2025-09-30T15:00:00Z"),
            pain(2, "2025-10-01"),
            pain(6, "2025-10-01T12:00:00Z"),
        ]
    )
    assert (r.baseline.value, r.lowest_post.value) == (8, 6)
    assert r.relief_pct == pytest.approx(25.0)


def test_a_score_at_the_trials_start_is_its_baseline_and_not_a_post_score() -> None:
    """Contract §4: the baseline is the last score at or before the start; it is not also a post score,
    so a lone score at the start leaves the result undocumented, not a 0 % relief."""
    r = result([procedure("62326", START), pain(8, START), pain(4, "2025-10-01T12:00:00Z")])
    assert (r.baseline.value, r.relief_pct) == (8, pytest.approx(50.0))
    alone = result([procedure("62326", START), pain(8, START)])
    assert alone.relief_pct is None and alone.baseline.value == 8


@pytest.mark.parametrize(
    ("value", "points"), [(0.0, 0.0), (4.0, 4.0), (4.5, None), (5.0, None), (-1.0, None)]
)
def test_an_ashworth_score_is_0_to_4(value: float, points: float | None) -> None:
    """Contract §5: ashworth-score is 0-4; a number outside it is no score."""
    score = ObservationFact("Observation/a", (), "Ashworth", None, value, None)
    assert scale_points(score) == points


def test_sustained_hours_is_the_longest_run_of_relieved_scores() -> None:
    r = result(
        [
            procedure("62324", START),
            pain(8, "2025-10-01T08:00:00Z"),
            pain(4, "2025-10-01T10:00:00Z"),
            pain(3, "2025-10-01T14:00:00Z"),
            pain(6, "2025-10-01T16:00:00Z"),
            pain(2, "2025-10-01T18:00:00Z"),
            pain(4, "2025-10-01T20:00:00Z"),
        ]
    )
    assert r.sustained_hours == pytest.approx(4.0)


def test_most_recent_trial_is_used() -> None:
    r = result(
        [
            procedure("62324", "2024-01-01T09:00:00Z"),
            procedure("62326", START),
            pain(6, "2025-09-30T09:00:00Z"),
            pain(3, "2025-10-01T10:00:00Z"),
        ]
    )
    assert r.procedure.performed.isoformat().startswith("2025-10-01")
    assert r.relief_pct == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("chart", "reason"),
    [
        ([], "no intrathecal trial"),
        ([procedure("62324", START), pain(2, "2025-10-01T10:00:00Z")], "30 days before"),
        (
            [procedure("62324", START), pain(8, "2025-09-30T10:00:00Z"), pain(2, "2025-10-03T10:00:00Z")],
            "48 hours",
        ),
        (
            [procedure("62324", START), pain(0, "2025-09-30T10:00:00Z"), pain(0, "2025-10-01T10:00:00Z")],
            "baseline",
        ),
    ],
)
def test_missing_pieces_leave_the_result_undocumented(chart: list[dict[str, Any]], reason: str) -> None:
    r = result(chart)
    assert r.relief_pct is None
    assert reason in r.reason


def test_an_undated_trial_is_a_trial_whose_result_cannot_be_read() -> None:
    """Contract §3: a trial is a completed Procedure with CPT 62320-62327, dated or not. Before, an
    undated one read as no trial at all ("no intrathecal trial procedure found")."""
    undated = procedure("62324", START)
    del undated["performedDateTime"]
    r = result([undated, pain(8, "2025-09-30T10:00:00Z"), pain(2, "2025-10-01T10:00:00Z")])
    assert r.relief_pct is None and r.procedure is None
    assert r.undated is not None and "62324" in r.undated.label
    assert "has no date" in r.reason and "no intrathecal trial" not in r.reason
    dated = result(
        [undated, procedure("62326", START), pain(8, "2025-09-30T10:00:00Z"), pain(4, "2025-10-01T12:00:00Z")]
    )
    assert dated.undated is None and dated.relief_pct == pytest.approx(50.0)


def test_explicit_assessment_wins() -> None:
    r = result(
        [
            procedure("62324", START),
            pain(8, "2025-09-30T10:00:00Z"),
            pain(8, "2025-10-01T10:00:00Z"),
            assessment("it-trial-pain-relief-pct", valueQuantity={"value": 55, "unit": "%"}),
            assessment("it-trial-relief-duration-h", valueQuantity={"value": 10, "unit": "h"}),
        ]
    )
    assert r.relief_pct == 55
    assert r.sustained_hours == 10
    assert r.explicit is not None


@pytest.mark.parametrize(("later", "hours", "held_at_last"), [(3, 9.0, True), (6, 0.0, False)])
def test_an_explicit_relief_without_a_recorded_duration_leaves_the_hours_to_the_scores(
    later: int, hours: float, held_at_last: bool
) -> None:
    """Contract §4: it-trial-pain-relief-pct decides the relief and it-trial-relief-duration-h the
    hours, each when present; otherwise the service computes from the pain scores. Before, an
    explicit relief made the hours "not documented" whatever the scores showed (contract review F4)."""
    chart = [
        procedure("62324", START),
        pain(8, "2025-10-01T03:00:00Z"),
        pain(3, "2025-10-01T10:00:00Z"),
        pain(3, "2025-10-01T14:00:00Z"),
        pain(later, "2025-10-01T19:00:00Z"),
        assessment("it-trial-pain-relief-pct", valueQuantity={"value": 62, "unit": "%"}),
    ]
    r = result(chart)
    assert r.relief_pct == 62 and r.explicit is not None and r.explicit_duration is None
    assert r.sustained_hours == pytest.approx(hours if held_at_last else 4.0)
    assert r.relief_at_last_score is held_at_last
    assert r.baseline is not None and r.baseline.source in r.sources


def test_a_recorded_relief_off_its_scale_is_no_relief() -> None:
    """Contract §5: it-trial-pain-relief-pct is 0-100 %. A recorded 150 % read as 150 % relief met
    every bar (contract review F9); the scores decide instead, as they do with no relief recorded."""
    chart = [procedure("62324", START), pain(8, "2025-10-01T08:00:00Z"), pain(6, "2025-10-01T12:00:00Z")]
    recorded = assessment("it-trial-pain-relief-pct", valueQuantity={"value": 150, "unit": "%"})
    r = result([*chart, recorded])
    assert r.explicit is None and r.relief_pct == pytest.approx(25.0)


def three_hours_of_relief() -> list[dict[str, Any]]:
    """A trial whose scores show 75 % relief for three hours (8 → 2 at 12:00 and 15:00, 7 next morning)."""
    return [
        procedure("62324", START),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(2, "2025-10-01T12:00:00Z"),
        pain(2, "2025-10-01T15:00:00Z"),
        pain(7, "2025-10-02T08:00:00Z"),
    ]


def test_an_explicit_duration_wins_over_the_computed_one_when_the_relief_is_computed() -> None:
    """Contract §4: "it-trial-relief-duration-h ... decides when present", whatever gives the relief."""
    chart = three_hours_of_relief()
    assert result(chart).sustained_hours == pytest.approx(3.0)
    r = result([*chart, assessment("it-trial-relief-duration-h", valueQuantity={"value": 10, "unit": "h"})])
    assert r.relief_pct == pytest.approx(75.0) and r.explicit is None
    assert r.sustained_hours == 10
    assert r.explicit_duration is not None and r.explicit_duration.source in r.sources


@pytest.mark.parametrize(
    ("quantity", "hours"),
    [
        ({"value": 300, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"}, 5.0),
        ({"value": 1, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"}, 24.0),
        ({"value": 0.5, "unit": "wk"}, 84.0),
        ({"value": 9, "unit": "hours"}, 9.0),
        ({"value": 9}, 9.0),  # no unit: the code's own (it-trial-relief-duration-h, contract §5 "h")
    ],
)
def test_a_recorded_duration_is_read_in_its_unit(quantity: dict[str, Any], hours: float) -> None:
    """Contract §5: it-trial-relief-duration-h is a `valueQuantity` in h; one written in another time
    unit is converted. The unit was ignored: 300 min read as 300 hours met the 8-hour rule, 1 d read
    as 1 hour failed it (contract review s17 F2)."""
    chart = [procedure("62324", START), pain(8, "2025-10-01T08:00:00Z"), pain(2, "2025-10-01T12:00:00Z")]
    relief = assessment("it-trial-pain-relief-pct", valueQuantity={"value": 70, "unit": "%"})
    duration = assessment("it-trial-relief-duration-h", valueQuantity=quantity)
    for r in (result([*chart, duration]), result([*chart, relief, duration])):
        assert r.sustained_hours == pytest.approx(hours) and r.explicit_duration is not None


def test_a_recorded_duration_that_is_not_a_time_is_not_read_as_hours() -> None:
    """A number in a unit that is not a time ("300 mg") says nothing of how long relief lasted: it is
    no duration (not hours), the scores decide as with none recorded, and the result keeps it so the
    card can say why it was not read."""
    chart = three_hours_of_relief()
    duration = assessment("it-trial-relief-duration-h", valueQuantity={"value": 300, "unit": "mg"})
    r = result([*chart, duration])
    assert r.sustained_hours == pytest.approx(3.0) and r.explicit_duration is None
    assert r.unread_duration is not None and r.unread_duration.value == 300
    relief = assessment("it-trial-pain-relief-pct", valueQuantity={"value": 70, "unit": "%"})
    alone = result([procedure("62324", START), relief, duration])
    assert alone.sustained_hours is None and alone.unread_duration is not None


def test_a_duration_recorded_for_an_older_trial_says_nothing_of_the_latest() -> None:
    chart = [
        procedure("62324", "2022-03-01T09:00:00Z"),
        assessment("it-trial-relief-duration-h", "2022-03-02", valueQuantity={"value": 2, "unit": "h"}),
        procedure("62324", START),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(2, "2025-10-01T12:00:00Z"),
        pain(2, "2025-10-01T15:00:00Z"),
        pain(7, "2025-10-02T08:00:00Z"),
    ]
    r = result(chart)
    assert r.sustained_hours == pytest.approx(3.0) and r.explicit_duration is None


@pytest.mark.parametrize(
    ("recorded", "kept"),
    [
        ("2025-10-01", True),  # dated by the trial's day, without a time
        (None, True),  # undated: present, so it decides
        ("2025-10-01T08:00:00Z", True),  # timed earlier on the trial's day, no trial before it
        ("2025-10-01T00:00:00Z", True),  # a date charted as midnight
        ("2025-10", True),  # dated by the trial's month
        ("2025-09-30", False),  # the day before: another trial's record
        ("2025-10-01T06:00:00-05:00", True),  # 11:00 UTC: after the trial's start, in another offset
    ],
)
def test_a_recorded_duration_of_the_trial_day_decides(recorded: str | None, kept: bool) -> None:
    """Contract §4: "it-trial-relief-duration-h decides when present"; only a record dated before the
    trial's day is another trial's (or one after an earlier trial: the next test)."""
    chart = [
        procedure("62324", START),
        pain(8, "2025-09-30T15:00:00Z"),
        pain(3, "2025-10-01T12:00:00Z"),
        pain(6, "2025-10-01T18:00:00Z"),
    ]
    duration = assessment("it-trial-relief-duration-h", valueQuantity={"value": 12, "unit": "h"})
    duration.pop("effectiveDateTime", None)
    if recorded is not None:
        duration["effectiveDateTime"] = recorded
    r = result([*chart, duration])
    assert (r.sustained_hours, r.explicit_duration is not None) == ((12, True) if kept else (0, False))


def test_a_duration_recorded_after_an_earlier_trial_and_before_the_latest_is_the_earlier_ones() -> None:
    """A 62324 trial on 30 September, its 3 h duration charted at 07:30 the next morning, then the latest
    trial at 09:00: the record is of the first trial, and the latest's scores (18 h) decide."""
    chart = [
        procedure("62324", "2025-09-30T09:00:00Z"),
        assessment(
            "it-trial-relief-duration-h", "2025-10-01T07:30:00Z", valueQuantity={"value": 3, "unit": "h"}
        ),
        procedure("62324", START),
        pain(8, "2025-10-01T08:00:00Z"),
        pain(2, "2025-10-01T12:00:00Z"),
        pain(2, "2025-10-02T06:00:00Z"),
        pain(7, "2025-10-02T08:00:00Z"),
    ]
    r = result(chart)
    assert (r.sustained_hours, r.explicit_duration) == (pytest.approx(18.0), None)


def test_preliminary_and_cancelled_observations_are_ignored() -> None:
    prelim = pain(0, "2025-10-01T10:00:00Z")
    prelim["status"] = "preliminary"
    r = result(
        [procedure("62324", START), pain(8, "2025-09-30T10:00:00Z"), prelim, pain(6, "2025-10-01T11:00:00Z")]
    )
    assert r.relief_pct == pytest.approx(25.0)


def test_a_spasticity_score_at_the_trials_start_is_its_baseline_only() -> None:
    """Contract §4, spasticity trials work the same way: a score at the start is the baseline (at or
    before the start), never a post score, so alone it makes no trial response at all."""
    terms = catalog().terminology
    both = [procedure("62324", START), assessment("ashworth-score", START, valueInteger=3)]
    later = assessment("ashworth-score", "2025-10-01T13:00:00Z", valueInteger=1)
    for chart, reductions in ((both, []), ([*both, later], [2.0])):
        record = build_record("p1", {"Procedure": chart[:1], "Observation": chart[1:]}, terms)
        trials = scale_trials(record.trial.procedure, record.observations)
        assert [t.reduction() for t in trials] == reductions


@pytest.mark.parametrize(
    ("baseline", "post", "reductions"),
    [
        # no muscle changed: hamstrings 2 -> 2, the adductors (4) not scored again (peds review F2 D)
        ([("hamstrings", 2), ("adductors", 4)], [("hamstrings", 2)], [0.0]),
        # hamstrings 3 -> 2 is the only response: 1 point, never adductors 4 -> hamstrings 2 (F2 E)
        ([("hamstrings", 3), ("adductors", 4)], [("hamstrings", 2)], [1.0]),
        # both muscles scored again: the examination's average, 3.5 -> 2
        ([("hamstrings", 3), ("adductors", 4)], [("hamstrings", 2), ("adductors", 2)], [1.5]),
        # no muscle scored both before and after: nothing to compare
        ([("adductors", 4)], [("hamstrings", 1)], []),
    ],
)
def test_per_muscle_scores_are_compared_muscle_by_muscle_whatever_their_order(
    baseline: list[tuple[str, int]], post: list[tuple[str, int]], reductions: list[float]
) -> None:
    """Contract §5, Ashworth "average, or per muscle": an examination (the scores taken at one time)
    is read as its average, and a trial compares two only over the muscles both scored, so no muscle's
    baseline is set against another's post-bolus score and the order of the resources decides nothing
    (peds review F2)."""
    terms = catalog().terminology
    before = [muscle_ashworth(v, "2025-10-01T08:30:00Z", m) for m, v in baseline]
    after = [
        muscle_ashworth(v, t, m) for t in ("2025-10-01T10:00:00Z", "2025-10-01T14:00:00Z") for m, v in post
    ]
    for scores in (before + after, list(reversed(before)) + list(reversed(after))):
        record = build_record("p1", {"Procedure": [procedure("62324", START)], "Observation": scores}, terms)
        trials = scale_trials(record.trial.procedure, record.observations)
        assert [t.reduction() for t in trials] == reductions


HAMSTRING_CODED = {
    "coding": [{"system": SCT, "code": "102292000", "display": "Hamstring muscle"}],
    "text": "hamstrings",
}


@pytest.mark.parametrize(
    ("baseline", "post", "reduction"),
    [
        # an average (no muscle named) before, per-muscle scores after: their averages, 3 -> 1
        ([assessment("ashworth-score", "2025-10-01T08:30:00Z", valueInteger=3)], [("hamstrings", 1)], 2.0),
        # per-muscle before, an average after: 3.5 -> 2
        (
            [
                muscle_ashworth(3, "2025-10-01T08:30:00Z", "hamstrings"),
                muscle_ashworth(4, "2025-10-01T08:30:00Z", "adductors"),
            ],
            [(None, 2)],
            1.5,
        ),
        # one muscle, in words before and coded (with the same words) after
        ([muscle_ashworth(3, "2025-10-01T08:30:00Z", "Hamstrings")], [("coded", 1)], 2.0),
    ],
    ids=["average-then-muscles", "muscles-then-average", "words-then-code"],
)
def test_an_average_and_per_muscle_scores_or_a_muscle_named_two_ways_are_compared(
    baseline: list[dict[str, Any]], post: list[tuple[str | None, int]], reduction: float
) -> None:
    """Contract §5 allows both forms on either side of a trial; a muscle is one muscle whether a score
    names it in words or codes it too. Before, such scores read "no spasticity scores before and after
    a trial" (session review s36, #1)."""

    def after(muscle: str | None, value: int, when: str) -> dict[str, Any]:
        if muscle is None:
            return assessment("ashworth-score", when, valueInteger=value)
        site = HAMSTRING_CODED if muscle == "coded" else {"text": muscle}
        return assessment("ashworth-score", when, valueInteger=value, bodySite=site)

    scores = [
        *baseline,
        *(after(m, v, t) for t in ("2025-10-01T10:00:00Z", "2025-10-01T14:00:00Z") for m, v in post),
    ]
    record = build_record(
        "p1", {"Procedure": [procedure("62324", START)], "Observation": scores}, catalog().terminology
    )
    [trial] = scale_trials(record.trial.procedure, record.observations)
    assert trial.reduction() == reduction


def test_a_recorded_average_is_the_examinations_value_beside_its_muscles() -> None:
    """An examination recording its average beside the muscles' scores is that average, never the
    average counted as one more muscle (late review 36, M1)."""
    at = "2025-10-01T08:30:00Z"
    baseline = [
        assessment("ashworth-score", at, valueInteger=3),
        muscle_ashworth(2, at, "hamstrings"),
        muscle_ashworth(2, at, "adductors"),
    ]
    post = [
        assessment("ashworth-score", t, valueInteger=1)
        for t in ("2025-10-01T10:00:00Z", "2025-10-01T14:00:00Z")
    ]
    record = build_record(
        "p1",
        {"Procedure": [procedure("62324", START)], "Observation": [*baseline, *post]},
        catalog().terminology,
    )
    [trial] = scale_trials(record.trial.procedure, record.observations)
    assert trial.reduction() == 2.0


def test_muscles_of_one_code_but_two_sides_are_two_muscles() -> None:
    """A coding's display names the muscle, not the side: the text does ("left quadriceps"). Before,
    left and right were one muscle by the shared coding, and the left's 2-point drop read as 1
    (late review 36, M2)."""

    def quadriceps(score: int, when: str, side: str) -> dict[str, Any]:
        site = {
            "coding": [{"system": SCT, "code": "22428009", "display": "Quadriceps muscle"}],
            "text": f"{side} quadriceps",
        }
        return assessment("ashworth-score", when, valueInteger=score, bodySite=site)

    at = "2025-10-01T08:30:00Z"
    scores = [
        quadriceps(4, at, "left"),
        quadriceps(2, at, "right"),
        *(quadriceps(2, t, "left") for t in ("2025-10-01T10:00:00Z", "2025-10-01T14:00:00Z")),
    ]
    record = build_record(
        "p1", {"Procedure": [procedure("62324", START)], "Observation": scores}, catalog().terminology
    )
    [trial] = scale_trials(record.trial.procedure, record.observations)
    assert trial.reduction() == 2.0
