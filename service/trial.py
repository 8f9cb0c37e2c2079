"""The intrathecal trial result, exactly as clinical-data-contract.md section 4 defines it.

Explicit wins over computed: an `it-trial-pain-relief-pct` assessment decides when present.
Otherwise relief is computed from pain scores around the most recent trial procedure:
baseline = last score at or before the trial start (no older than 30 days); post scores = scores
from the start to 48 hours after; relief = (baseline - lowest post) / baseline; sustained hours =
the longest run of consecutive post scores that each show at least 50 % relief. A score dated the
trial's day without a time of day is neither: it may be from before or after the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol, TypeVar

from service.facts import ObservationFact, ProcedureFact, latest_assessment
from service.fhirdates import in_hours, period_after, shifted, start_of_day
from service.terminology import ValueSet

BASELINE_MAX_AGE = timedelta(days=30)
POST_WINDOW = timedelta(hours=48)
SUSTAINED_THRESHOLD_PCT = 50.0
NO_TRIAL = "no intrathecal trial procedure (CPT 62320-62327) found"
# one is begun, not completed: not "yet", which would say one is coming where it was left months ago
NO_COMPLETED_TRIAL = "no completed intrathecal trial (CPT 62320-62327)"


@dataclass(frozen=True)
class TrialResult:
    """What the record says about the most recent trial; `relief_pct` None means undocumented."""

    procedure: ProcedureFact | None
    relief_pct: float | None
    sustained_hours: float | None
    explicit: ObservationFact | None = None
    held_since: datetime | None = None  # relief still held at the last post score: since when (`held_since`)
    baseline: ObservationFact | None = None
    lowest_post: ObservationFact | None = None
    reason: str | None = None
    explicit_duration: ObservationFact | None = None  # it-trial-relief-duration-h, which decides the hours
    previous_start: datetime | None = None  # the trial before this one: records after it may be of it
    undated: ProcedureFact | None = None  # with no dated trial, one the chart records without a date
    unread_duration: ObservationFact | None = None  # a duration of this trial in a unit that is not a time

    @property
    def relief_at_last_score(self) -> bool:
        return self.held_since is not None

    @property
    def sources(self) -> list[str]:
        facts = [self.procedure, self.explicit, self.baseline, self.lowest_post, self.explicit_duration]
        return [f.source for f in facts if f is not None]


# a trial dated by its performedPeriod's end alone (`ProcedureFact.start_unwritten`): contract §4 places the
# pain scores around its start
_UNSTARTED = (
    "the trial procedure {} records only when it ended (its performedPeriod has no start), so its result "
    "cannot be read from the pain scores"
)


def _trials(
    procedures: Sequence[ProcedureFact], trial_codes: ValueSet, dated: bool = True
) -> list[ProcedureFact]:
    """The trial procedures, dated (or not: `dated` False); an epidural steroid injection coded as
    one is not a trial."""
    return [
        p
        for p in procedures
        if (p.performed is not None) == dated and trial_codes.matches_any(p.codes) and not p.steroid_injection
    ]


def latest_trial_procedure(
    procedures: Sequence[ProcedureFact], trial_codes: ValueSet
) -> ProcedureFact | None:
    """The most recent trial. One dated only by its end (`ProcedureFact.start_unwritten`) that ended
    within the 48 hours after a dated trial's start may be that trial's own record (its period, or its
    catheter's removal) as well as a later trial: the trial whose start is written is read (review26c)."""
    trials = _trials(procedures, trial_codes)
    latest = max(trials, key=lambda p: p.performed, default=None)  # type: ignore[arg-type, return-value]
    if latest is None or not latest.start_unwritten:
        return latest
    ended = latest.performed
    assert ended is not None
    begun = [
        p
        for p in trials
        if not p.start_unwritten and shifted(ended, -POST_WINDOW) <= p.performed <= ended  # type: ignore[operator]
    ]
    return max(begun, key=lambda p: p.performed, default=latest)  # type: ignore[arg-type, return-value]


def _pain_scores(observations: Sequence[ObservationFact], pain_codes: ValueSet) -> list[ObservationFact]:
    scores = [
        o
        for o in observations
        if o.effective is not None and isinstance(o.value, float) and pain_codes.matches_any(o.codes)
    ]
    return sorted(scores, key=lambda o: o.effective)  # type: ignore[arg-type, return-value]


def recorded_for_trial(
    fact: ObservationFact | None, start: datetime | None, previous: datetime | None = None
) -> ObservationFact | None:
    """`fact` unless it is another trial's record. A present record decides (contract §4), so one is
    kept when undated, timed at or after the trial's start, dated without a time by a day (month,
    year) of the trial's calendar that reaches the start, or timed earlier on the trial's own day
    (a clock or a charting time off by minutes or hours) unless it came after a `previous` trial,
    which it may describe."""
    if fact is None or fact.effective is None or start is None:
        return fact
    if not fact.timed:
        return fact if _period(fact, start.tzinfo)[1] > start else None
    if fact.effective >= start:
        return fact
    same_day = fact.effective.astimezone(start.tzinfo).date() == start.date()
    after_previous = previous is not None and fact.effective >= previous
    return fact if same_day and not after_previous else None


def previous_trial_start(
    procedures: Sequence[ProcedureFact], trial_codes: ValueSet, latest: ProcedureFact | None
) -> datetime | None:
    """When the trial before `latest` (the most recent) was performed, if there was one. A trial dated only
    by its end (`ProcedureFact.start_unwritten`) written to a day, a month or a year that reaches past
    `latest`'s start may have ended after it began: that trial's own record, as `latest_trial_procedure`
    reads one ended within its 48 hours, not the trial before it (review26f: "2025-10" dated by its first
    day dropped a relief duration recorded the morning of a trial of 2 October as another trial's)."""
    if latest is None or latest.performed is None:
        return None
    begun = latest.performed
    earlier = [
        p.performed
        for p in _trials(procedures, trial_codes)
        if p.performed < begun and not (p.start_unwritten and _period_end(p) > begun)  # type: ignore[operator]
    ]
    return max(earlier, default=None)  # type: ignore[type-var]


def _period_end(p: ProcedureFact) -> datetime:
    """The first instant after the day, month or year `p`'s date is written to (its instant when timed),
    in its own offset."""
    assert p.performed is not None
    if p.precision == "time":
        return p.performed
    after = period_after(p.performed.date(), p.precision)
    return datetime.combine(after, time(), p.performed.tzinfo)


def _placeable(
    scores: Sequence[ObservationFact], start: datetime
) -> tuple[list[ObservationFact], list[ObservationFact]]:
    """(the scores that can be placed before or after the trial's start, in time order; those that
    cannot). A score dated without a time of day stands for its whole day (or month, or year) in the
    trial's own calendar (its start's offset): one whose period holds the trial's start may be from
    before or after it (contract §4 orders them by time), so it is not placed; one whose period holds
    the end of the 30-day baseline window or of the 48-hour window may be in it or not, so it is left
    out; any other is placed at its period's start."""
    placed: list[ObservationFact] = []
    unplaced: list[ObservationFact] = []
    window_edges = (shifted(start, -BASELINE_MAX_AGE), shifted(start, POST_WINDOW))
    for score in scores:
        assert score.effective is not None
        if score.timed:
            placed.append(score)
            continue
        begins, ends = _period(score, start.tzinfo)
        if begins <= start < ends:
            unplaced.append(score)
        elif not any(begins <= edge < ends for edge in window_edges):
            placed.append(replace(score, effective=begins))
    placed.sort(key=lambda score: score.effective)  # type: ignore[arg-type, return-value]
    return placed, unplaced


def _period(score: ObservationFact, zone: tzinfo | None) -> tuple[datetime, datetime]:
    """The day, month or year a score dated without a time stands for, in the time zone `zone`."""
    first = score.effective.date()  # type: ignore[union-attr]
    after = period_after(first, score.precision)
    return datetime.combine(first, time(), zone), datetime.combine(after, time(), zone)


def _not_placed(unplaced: Sequence[ObservationFact]) -> str:
    if not unplaced:
        return ""
    what = "a score" if len(unplaced) == 1 else f"{len(unplaced)} scores"
    return f" ({what} dated without a time, on the trial's day (or month), could be from before or after it)"


class _Timed(Protocol):
    @property
    def effective(self) -> datetime | None: ...


_T = TypeVar("_T", bound=_Timed)


def _longest_run_hours(scores: Sequence[_T], relieved: Callable[[_T], bool]) -> float:
    """Hours spanned by the longest run of consecutive scores that are all `relieved`."""
    best, run_start = 0.0, None
    for score in scores:
        if relieved(score):
            run_start = run_start or score
            best = max(best, (score.effective - run_start.effective).total_seconds() / 3600)  # type: ignore[operator]
        else:
            run_start = None
    return best


def held_since(scores: Sequence[_T], relieved: Callable[[_T], bool]) -> datetime | None:
    """When the run of `relieved` scores that reaches the last score began; None when the last score
    shows no relief."""
    since = None
    for score in reversed(scores):
        if not relieved(score):
            break
        since = score.effective
    return since


def may_yet_last(trial_start: datetime | None, since: datetime | None, hours: float, today: date) -> bool:
    """Whether a response still held at its last score, `since` then, is "a course still running that
    may yet reach the threshold" (contract §3, Falling short) of `hours`. Only the scores of the 48
    hours after the trial's start count (§4): once that window has closed before the call's day, the
    run the scores show is the documented one, and shorter than `hours` it falls short; while it is
    open (or closes on the call's day: the call may come before), a later score may still lengthen
    the run, up to the window's end."""
    if trial_start is None or since is None:
        return False
    window_end = shifted(trial_start, POST_WINDOW)
    return window_end > start_of_day(today) and shifted(since, timedelta(hours=hours)) <= window_end


def _relieved(baseline: float) -> Callable[[ObservationFact], bool]:
    """Whether a post score shows at least 50 % relief from `baseline` (contract §4)."""
    return lambda s: (baseline - float(s.value)) / baseline * 100 >= SUSTAINED_THRESHOLD_PCT  # type: ignore[arg-type]


def _sustained_hours(baseline: float, post: list[ObservationFact]) -> float:
    return _longest_run_hours(post, _relieved(baseline))


def recorded_hours(duration: ObservationFact | None) -> float | None:
    """The hours a recorded duration (`it-trial-relief-duration-h`, `it-trial-response-duration-h`:
    contract §5, `valueQuantity` h) states: its value converted from the time unit it is written in
    (300 min are 5 hours, 1 d is 24), a number without a unit in the code's own hours. None when it
    is no number, or its unit is not a time ("300 mg" says nothing of how long): not a duration."""
    if duration is None or not isinstance(duration.value, float):
        return None
    return duration.value if not duration.unit else in_hours(duration.value, duration.unit)


def trial_result(
    procedures: Sequence[ProcedureFact],
    observations: Sequence[ObservationFact],
    trial_codes: ValueSet,
    pain_codes: ValueSet,
    under_way: bool = False,
) -> TrialResult:
    """The trial result per contract §4: each explicit assessment (the relief, its duration) first,
    else computed from the scores. `under_way`: a trial Procedure is begun and not completed
    (`record.TRIAL_UNDER_WAY`), which is no trial done (§3) but is one on the chart: with none done, the
    reason says none is completed rather than none found."""
    procedure = latest_trial_procedure(procedures, trial_codes)
    previous = previous_trial_start(procedures, trial_codes, procedure)
    result = replace(
        _trial_result(procedure, previous, observations, pain_codes),
        previous_start=previous,
        unread_duration=_unread_duration(observations, procedure, previous),
    )
    if procedure is None and under_way and result.reason == NO_TRIAL:
        result = replace(result, reason=NO_COMPLETED_TRIAL)
    if procedure is not None or result.relief_pct is not None:
        return result
    undated = next(iter(_trials(procedures, trial_codes, dated=False)), None)
    if undated is None:
        return result
    reason = (
        f"the trial procedure {undated.label} has no date, so its result cannot be read from the pain scores"
    )
    return replace(result, undated=undated, reason=reason)


def _unread_duration(
    observations: Sequence[ObservationFact], procedure: ProcedureFact | None, previous: datetime | None
) -> ObservationFact | None:
    """The latest it-trial-relief-duration-h when it is a number of a unit that is not a time and was
    recorded for this trial: documented, but no duration (`recorded_hours`), so the card says why."""
    found = latest_assessment(observations, "it-trial-relief-duration-h")
    if found is None or not isinstance(found.value, float) or recorded_hours(found) is not None:
        return None
    return recorded_for_trial(found, procedure.performed if procedure else None, previous)


def _trial_result(
    procedure: ProcedureFact | None,
    previous: datetime | None,
    observations: Sequence[ObservationFact],
    pain_codes: ValueSet,
) -> TrialResult:
    """`trial_result` of the most recent trial `procedure`, `previous` the one before it. Each explicit
    assessment decides its own quantity (contract §4): a recorded relief with no recorded duration
    still has the hours the scores around the trial show. A relief off its 0-100 % scale (§5) is no
    relief, as a pain score off its scale is no pain score."""
    explicit = latest_assessment(observations, "it-trial-pain-relief-pct")
    duration = latest_assessment(observations, "it-trial-relief-duration-h")
    if recorded_hours(duration) is None:
        duration = None
    if explicit is not None and isinstance(explicit.value, float) and 0 <= explicit.value <= 100:
        relief: float = explicit.value
        if duration is not None or procedure is None:
            hours = recorded_hours(duration)
            return TrialResult(procedure, relief, hours, explicit=explicit, explicit_duration=duration)
        scored = _scored(procedure, previous, observations, pain_codes, None)
        return TrialResult(
            procedure,
            relief,
            scored.sustained_hours,
            explicit=explicit,
            baseline=scored.baseline if scored.sustained_hours is not None else None,
            held_since=scored.held_since,
        )
    if procedure is None:
        return TrialResult(None, None, None, reason=NO_TRIAL)
    return _scored(procedure, previous, observations, pain_codes, duration)


def _scored(
    procedure: ProcedureFact,
    previous: datetime | None,
    observations: Sequence[ObservationFact],
    pain_codes: ValueSet,
    duration: ObservationFact | None,
) -> TrialResult:
    """The trial result computed from the pain scores around `procedure` (contract §4), the hours
    from `duration` when it was recorded for this trial."""
    hours = recorded_hours(duration)
    start = procedure.performed
    assert start is not None
    if procedure.start_unwritten:  # scores before its end may be the trial's own: no baseline to tell
        return TrialResult(procedure, None, None, reason=_UNSTARTED.format(procedure.label))
    scores, unplaced = _placeable(_pain_scores(observations, pain_codes), start)
    before = [s for s in scores if shifted(start, -BASELINE_MAX_AGE) <= s.effective <= start]  # type: ignore[operator]
    post = [s for s in scores if start <= s.effective <= shifted(start, POST_WINDOW)]  # type: ignore[operator]
    if not before:
        reason = "no pain score in the 30 days before the trial" + _not_placed(unplaced)
        return TrialResult(procedure, None, None, reason=reason)
    baseline = before[-1]
    post = [s for s in post if s is not baseline]
    if not post:
        return TrialResult(
            procedure,
            None,
            None,
            baseline=baseline,
            reason="no pain score in the 48 hours after the trial started" + _not_placed(unplaced),
        )
    base_value = float(baseline.value)  # type: ignore[arg-type]
    if base_value <= 0:
        return TrialResult(
            procedure,
            None,
            None,
            baseline=baseline,
            reason="baseline pain score is 0: relief cannot be computed",
        )
    lowest = min(post, key=lambda s: float(s.value))  # type: ignore[arg-type]
    relief = (base_value - float(lowest.value)) / base_value * 100  # type: ignore[arg-type]
    if recorded_for_trial(duration, start, previous) is not None:
        return TrialResult(
            procedure,
            relief,
            hours,
            baseline=baseline,
            lowest_post=lowest,
            explicit_duration=duration,  # type: ignore[arg-type]
        )
    return TrialResult(
        procedure,
        relief,
        _sustained_hours(base_value, post),
        baseline=baseline,
        lowest_post=lowest,
        held_since=held_since(post, _relieved(base_value)),
    )


SCALE_CODES = ("ashworth-score", "modified-ashworth-score", "spasm-frequency-score")
# the spasticity trial's recorded response (contract §5): its `scale` component names the scale, each
# option the score it is counted in (policies/assessment-codes.yaml, `Terminology.qualified_by`)
SCALE_REDUCTION = "it-trial-scale-reduction"
MODIFIED_ASHWORTH = "modified-ashworth-score"
_MAS_POINTS = {"0": 0.0, "1": 1.0, "1+": 1.5, "2": 2.0, "3": 3.0, "4": 4.0}
_MAS_GRADES = {"0": 0.0, "1": 1.0, "1+": 2.0, "2": 3.0, "3": 4.0, "4": 5.0}  # the 0-5 ordinal


def scale_points(observation: ObservationFact, graded: bool = False) -> float | None:
    """A spasticity score as a number: Ashworth and spasm frequency as given, Modified Ashworth's
    `1+` as 1.5 (contract §5; AMB-14), or with `graded` each of its six grades one step (0-5)."""
    value = observation.value
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value if 0 <= value <= 4 else None
    if isinstance(value, str):
        return (_MAS_GRADES if graded else _MAS_POINTS).get(value.strip())
    return None


AVERAGE = ""  # the muscle key of a score of no named muscle: an average (`record._body_site`)


@dataclass(frozen=True)
class Examination:
    """The scores of one spasticity scale taken at one time: one examination.

    Contract §5 lets a chart record a scale as an average or one score per muscle (`bodySite`); so
    an examination is read as one value, the average of its muscles (Kaiser's and CMM-210's
    "baseline average Ashworth"), each muscle's scores at that time averaged first. Averaging is
    why no order of the resources can change the value, and a trial (`_drop`) compares two
    examinations over the muscles both scored, or as averages where either is one. `scores` are in
    source order."""

    effective: datetime | None
    scores: tuple[ObservationFact, ...]

    @property
    def source(self) -> str:
        return self.scores[0].source

    @property
    def precision(self) -> str:
        """How its time is written (its scores share it: `ObservationFact.precision`)."""
        return self.scores[0].precision

    def muscles(self, graded: bool = False) -> dict[str, float] | None:
        """Per muscle (its key; "": no named muscle, a recorded average) the average of its points; None
        when a score is unreadable."""
        points: dict[str, list[float]] = {}
        for score in self.scores:
            value = scale_points(score, graded)
            if value is None:
                return None
            points.setdefault(score.body_site, []).append(value)
        return {muscle: sum(values) / len(values) for muscle, values in points.items()}

    def points(self, graded: bool = False) -> float | None:
        """The examination's value: the average it records, else the average over its muscles (None: a
        score is unreadable); a recorded average is never averaged in as one more muscle."""
        muscles = self.muscles(graded)
        if muscles is None:
            return None
        if AVERAGE in muscles:
            return muscles[AVERAGE]
        return sum(muscles.values()) / len(muscles)

    def value_text(self) -> str:
        """Its score, or the average of its scores and what they were (contract §5, per muscle)."""
        if len(self.scores) == 1:
            return self.scores[0].value_text()
        values = ", ".join(s.value_text() for s in self.scores)
        points = self.points()
        return values if points is None else f"{round(points, 2):g} (average of {values})"


def examinations(scores: Iterable[ObservationFact]) -> list[Examination]:
    """The scores of one scale as examinations (one per time, `Examination`), in time order, the
    undated ones first as one examination of their own."""
    by_time: dict[datetime | None, list[ObservationFact]] = {}
    for score in scores:
        by_time.setdefault(score.effective, []).append(score)
    times = sorted(by_time, key=lambda when: (when is not None, when or datetime.min))
    return [Examination(when, tuple(sorted(by_time[when], key=lambda s: s.source))) for when in times]


@dataclass(frozen=True)
class ScaleTrial:
    """The examinations of one spasticity scale around the most recent trial (contract §4, in points):
    the last before it, and those after it that scored a muscle it scored."""

    scale: str
    procedure: ProcedureFact
    baseline: Examination
    post: tuple[Examination, ...]
    graded: bool = False  # Modified Ashworth counted in grades, 1+ one of them (AMB-14 d)

    def counting_grades(self) -> ScaleTrial:
        """The same scores counted in grades (on the Modified Ashworth scale 1+ is one of six)."""
        return replace(self, graded=True)

    def _drop(self, exam: Examination) -> float:
        """How far `exam` is below the baseline: the average drop over the muscles both scored."""
        return _drop(self.baseline, exam, self.graded) or 0.0

    def reduction(self) -> float:
        return max(self._drop(p) for p in self.post)

    def held_since(self, points: float) -> datetime | None:
        """When the response of at least `points` still held at the last score began (`held_since`)."""
        return held_since(self.post, lambda s: self._drop(s) >= points)

    def sustained_hours(self, points: float) -> float:
        """The longest run of consecutive post examinations each at least `points` below the baseline."""
        return _longest_run_hours(self.post, lambda s: self._drop(s) >= points)


def _drop(baseline: Examination, exam: Examination, graded: bool = False) -> float | None:
    """How far `exam` is below `baseline`: the average drop over the muscles both scored (named alike:
    `record._body_site`), or, where either examination records an average (contract §5 allows both
    forms), the drop of their values (`Examination.points`). None: a score is unreadable, or each
    scored only muscles the other did not, so they cannot be compared."""
    before, after = baseline.muscles(graded), exam.muscles(graded)
    if before is None or after is None:
        return None
    if AVERAGE in before or AVERAGE in after:
        return baseline.points(graded) - exam.points(graded)  # type: ignore[operator]
    shared = [muscle for muscle in before if muscle in after]
    if not shared:
        return None
    return sum(before[m] - after[m] for m in shared) / len(shared)


def scale_trials(
    procedure: ProcedureFact | None, observations: Sequence[ObservationFact]
) -> list[ScaleTrial]:
    """Per scale, the baseline and post-trial examinations around `procedure`, the most recent trial."""
    if procedure is None or procedure.performed is None or procedure.start_unwritten:
        return []
    start = procedure.performed
    trials = []
    for scale in SCALE_CODES:
        scores, _ = _placeable(
            sorted(
                (
                    o
                    for o in observations
                    if o.effective is not None
                    and scale_points(o) is not None
                    and any(c.code == scale for c in o.codes)
                ),
                key=lambda o: o.effective,  # type: ignore[arg-type, return-value]
            ),
            start,
        )
        exams = examinations(scores)
        before = [e for e in exams if shifted(start, -BASELINE_MAX_AGE) <= e.effective <= start]  # type: ignore[operator]
        if not before:
            continue
        post = [
            e
            for e in exams
            if start < e.effective <= shifted(start, POST_WINDOW)  # type: ignore[operator]
            and _drop(before[-1], e) is not None
        ]
        if post:
            trials.append(ScaleTrial(scale, procedure, before[-1], tuple(post)))
    return trials
