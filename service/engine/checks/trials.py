"""Test types about the intrathecal trial: pain relief (contract §4) and a spasticity scale response.

They read what `service.trial` worked out once per record; here is only how a policy's threshold
is judged against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from service.engine.checks.common import ANSWERS, COMPARATORS, needs, observation_evidence, procedure_evidence
from service.engine.checks.params import Comparator, Flag, Number, Param, ScaleCodes, optional
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.facts import ObservationFact
from service.trial import (
    MODIFIED_ASHWORTH,
    SCALE_CODES,
    SCALE_REDUCTION,
    ScaleTrial,
    TrialResult,
    may_yet_last,
    recorded_for_trial,
    recorded_hours,
    scale_trials,
)
from service.wording import number


@test_type(
    "trial-relief",
    params={
        "comparator": Param(Comparator()),
        "percent": Param(Number()),
        "min_hours": optional(Number()),
        "reviewer_below": optional(Number()),
    },
    reads=("Procedure", "Observation"),
    also_reads=ANSWERS,
    asks=("it-trial-pain-relief-pct", "it-trial-relief-duration-h"),
)
def trial_relief(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Pain relief of the intrathecal trial (contract §4) against `comparator` `percent`."""
    trial = ctx.trial
    if trial.relief_pct is None:
        evidence = (procedure_evidence(trial.procedure, "trial "),) if trial.procedure else ()
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"trial result not documented: {trial.reason}")
    evidence: list[Evidence] = []
    if trial.explicit is not None:
        evidence.append(observation_evidence(f"recorded relief {number(trial.relief_pct)} %", trial.explicit))
        if trial.baseline is not None and params.get("min_hours") is not None:  # the hours, by the scores
            evidence.append(
                observation_evidence(
                    f"pain {trial.baseline.value_text()} before the trial; hours from the scores after it",
                    trial.baseline,
                )
            )
    else:
        assert trial.baseline is not None and trial.lowest_post is not None and trial.procedure is not None
        evidence.append(procedure_evidence(trial.procedure, "trial "))
        evidence.append(
            observation_evidence(
                f"pain {trial.baseline.value_text()} before → {trial.lowest_post.value_text()} after",
                trial.lowest_post,
            )
        )
    if trial.explicit_duration is not None and params.get("min_hours") is not None:
        recorded = trial.explicit_duration
        evidence.append(observation_evidence(f"recorded relief duration {recorded.value_text()}", recorded))
    ok = COMPARATORS[params["comparator"]](round(trial.relief_pct, 6), float(params["percent"]))
    relief = number(trial.relief_pct, ".0f")
    finding = f"{relief} % relief ({needs(params['comparator'], params['percent'], '%')})"
    if ok and params.get("reviewer_below") is not None:  # the service's bar, not the policy's
        finding = (
            f"{relief} % relief (at least {number(params['reviewer_below'])} %, read as acceptable: "
            "the policy sets no number)"
        )
    if ok and params.get("reviewer_below") is not None and trial.relief_pct < float(params["reviewer_below"]):
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            tuple(evidence),
            f"{relief} % relief, below {number(params['reviewer_below'])} %: for the reviewer",
            for_reviewer=True,
        )
    if trial.unread_duration is not None and params.get("min_hours") is not None:
        unread = trial.unread_duration
        evidence.append(
            observation_evidence(
                f"recorded relief duration {unread.value_text()}: not a time, not read", unread
            )
        )
    if ok and params.get("min_hours") is not None:
        hours = trial.sustained_hours
        if hours is None:
            unread_note = (
                f" (the recorded {trial.unread_duration.value_text()} is not a time)"
                if trial.unread_duration is not None
                else ""
            )
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                tuple(evidence),
                f"{finding}; how long it lasted is not documented{unread_note}",
            )
        finding += f", lasting {number(hours)} h (needs {number(params['min_hours'])} h)"
        if hours < float(params["min_hours"]):
            return _short_relief(trial, float(params["min_hours"]), ctx, tuple(evidence), finding)
    return TestOutcome(Status.MET if ok else Status.NOT_MET, tuple(evidence), finding)


def _short_relief(
    trial: TrialResult, min_hours: float, ctx: EvaluationContext, evidence: tuple[Evidence, ...], finding: str
) -> TestOutcome:
    """Relief that lasted fewer than `min_hours`: a documented run that falls short fails (contract §3,
    Falling short), unless it still held at the last score of a post window still open on the call's
    day, a course still running that may yet reach the bar (`may_yet_last`)."""
    start = trial.procedure.performed if trial.procedure else None
    if may_yet_last(start, trial.held_since, min_hours, ctx.today):
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            evidence,
            f"{finding} so far; relief still held at the last score, within the 48 hours after the trial: "
            "how long it lasts is not yet documented",
        )
    if trial.held_since is not None:
        finding += " by the scores (relief still held at the last one; a recorded duration would decide)"
    return TestOutcome(Status.NOT_MET, evidence, finding)


@test_type(
    "scale-trial-response",
    params={
        "points": Param(Number()),
        "hours": optional(Number()),
        "scales": optional(ScaleCodes()),
        "example": optional(Flag()),
    },
    reads=("Procedure", "Observation"),
    also_reads=ANSWERS,
    asks=(SCALE_REDUCTION, "it-trial-response-duration-h"),
)
def scale_trial_response(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """A spasticity trial response of at least `points` on a scale (lasting `hours`, if given):
    the it-trial-scale-reduction assessment decides (its `scale` component must be one of
    `scales`), else scores around the trial (contract §4). With `example`, the policy gives the
    threshold only as an example ("e.g."), so a smaller response is for the reviewer (not
    documented), and only no response at all is "not met" (AMB-16). On the Modified Ashworth scale
    a response that meets the bar only with 1+ counted as a grade of its own, not as 1.5, is for the
    reviewer too (AMB-14 d)."""
    judge = _ScaleJudge(params, ctx)
    explicit = ctx.record.latest_assessment(SCALE_REDUCTION)
    if explicit is not None and isinstance(explicit.value, float):
        return judge.recorded(explicit)
    trials = [
        t
        for t in scale_trials(ctx.record.trial.procedure, ctx.record.observations)
        if t.scale in judge.scales
    ]
    if not trials:
        return TestOutcome(Status.NOT_DOCUMENTED, finding="no spasticity scores before and after a trial")
    return judge.scored(trials)


_ONE_PLUS_OPEN = "the policy does not say how 1+ counts; for the reviewer"


class _ScaleJudge:
    """One policy's bar for a spasticity trial response, applied to what the chart records."""

    def __init__(self, params: Mapping[str, Any], ctx: EvaluationContext) -> None:
        self.points = float(params["points"])
        self.hours = float(params["hours"]) if params.get("hours") is not None else None
        self.example = bool(params.get("example"))
        self.scales = set(params.get("scales", SCALE_CODES))
        self.ctx = ctx
        self.name = ctx.terminology.assessment_name

    def short(self, evidence: tuple[Evidence, ...], finding: str, reduction: float) -> TestOutcome:
        """Below the bar: for the reviewer under an example threshold (some response), else not met."""
        if self.example and reduction > 0:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                evidence,
                f"{finding}; below the policy's example, for the reviewer",
                for_reviewer=True,
            )
        return TestOutcome(Status.NOT_MET, evidence, finding)

    def assessed(self, code: str, fact: ObservationFact) -> Evidence:
        """A recorded assessment as evidence: its name and value."""
        return observation_evidence(f"{self.name(code)}: {fact.value_text()}", fact)

    def needs(self, unit: str) -> str:
        lasting = f" for {number(self.hours)} h" if self.hours is not None else ""
        return f"needs {amount(self.points, unit)}{lasting}"

    def recorded(self, explicit: ObservationFact) -> TestOutcome:
        """The it-trial-scale-reduction assessment (and it-trial-response-duration-h) decides."""
        name = self.name
        evidence: tuple[Evidence, ...] = (self.assessed(SCALE_REDUCTION, explicit),)
        scale = self.ctx.terminology.qualified_by(SCALE_REDUCTION, explicit.qualifier)
        recorded_on = f"the {name(scale)}" if scale else (explicit.qualifier or "an unnamed scale")
        if scale not in self.scales and set(SCALE_CODES) - self.scales:
            return TestOutcome(
                Status.NOT_DOCUMENTED,
                evidence,
                f"the recorded reduction is on {recorded_on}, not the "
                f"{' or '.join(name(s) for s in sorted(self.scales))}",
            )
        value = float(explicit.value)  # type: ignore[arg-type]
        # a half point on the Modified Ashworth scale comes from counting 1+ as 1.5: one grade more
        in_grades_only = value < self.points and scale == MODIFIED_ASHWORTH and value % 1 == 0.5
        in_grades_only = in_grades_only and value + 0.5 >= self.points
        if value < self.points and not in_grades_only:
            return self.short(evidence, f"{amount(value, 'point')} ({self.needs('point')})", value)
        finding = amount(value, "point")
        if self.hours is not None:
            lasted = self.ctx.record.latest_assessment("it-trial-response-duration-h")
            hours = recorded_hours(lasted)
            if lasted is None or hours is None:
                return self.recorded_without_duration(explicit, scale, evidence, finding, value)
            evidence += (self.assessed("it-trial-response-duration-h", lasted),)
            finding += f" for {number(hours)} h"
            if hours < self.hours:
                return self.short(evidence, f"{finding} ({self.needs('point')})", value)
        if not in_grades_only:
            return TestOutcome(Status.MET, evidence, f"{finding} ({self.needs('point')})")
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            evidence,
            f"{finding} recorded on the Modified Ashworth scale ({self.needs('point')}), "
            f"{amount(value + 0.5, 'grade')} with 1+ as a grade of its own: {_ONE_PLUS_OPEN}",
            for_reviewer=True,
        )

    def recorded_without_duration(
        self,
        explicit: ObservationFact,
        scale: str | None,
        evidence: tuple[Evidence, ...],
        finding: str,
        value: float,
    ) -> TestOutcome:
        """A recorded reduction with no recorded duration: how long the response held is read from the
        scores around the trial on the recorded scale (contract §4: each explicit assessment decides
        only its own quantity)."""
        trials = [
            t
            for t in scale_trials(self.ctx.record.trial.procedure, self.ctx.record.observations)
            if t.scale == scale or (scale is None and t.scale in self.scales)
        ]
        if not trials:
            return TestOutcome(
                Status.NOT_DOCUMENTED, evidence, "how long the response lasted is not documented"
            )
        best = max(trials, key=lambda t: t.sustained_hours(self.points))
        hours = best.sustained_hours(self.points)
        evidence += (self.before_the_trial(best),)
        finding += f", for {number(hours)} h by the scores"
        if hours >= self.hours:  # type: ignore[operator]
            return TestOutcome(Status.MET, evidence, f"{finding} ({self.needs('point')})")
        if self.may_yet_last(best):
            return self.still_running(evidence, f"{finding} ({self.needs('point')})")
        return self.short(evidence, f"{finding} ({self.needs('point')})", value)

    def may_yet_last(self, trial: ScaleTrial) -> bool:
        """Whether the response, held at the last score, may yet last the hours asked (`may_yet_last`)."""
        since = trial.held_since(self.points)
        return may_yet_last(trial.procedure.performed, since, self.hours or 0.0, self.ctx.today)

    @staticmethod
    def still_running(evidence: tuple[Evidence, ...], finding: str) -> TestOutcome:
        """A response still held at the last score of a post window still open: not yet documented."""
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            evidence,
            f"{finding}; the response held at the last score, within the 48 hours after the trial: how "
            "long it lasts is not yet documented",
        )

    def before_the_trial(self, trial: ScaleTrial) -> Evidence:
        """The score before the trial, as evidence of the response read from the scores after it."""
        baseline = trial.baseline
        return observation_evidence(
            f"{self.name(trial.scale)}: {baseline.value_text()} before the trial", baseline
        )

    def judged(self, trials: list[ScaleTrial], unit: str) -> tuple[TestOutcome, ScaleTrial]:
        """The outcome on the scale that shows the best response, counted in `unit`s, and that scale."""
        points, hours = self.points, self.hours

        def standing(trial: ScaleTrial) -> tuple[bool, bool, float, float]:
            """Ranks the scales: one whose response meets the bar and lasts, else the one closest to
            it (any of the scales may show the response: "Ashworth or Spasm Frequency")."""
            reached = trial.reduction() >= points
            lasted = trial.sustained_hours(points)
            return reached and (hours is None or lasted >= hours), reached, lasted, trial.reduction()

        best = max(trials, key=standing)
        evidence = (self.before_the_trial(best),)
        finding = f"{amount(best.reduction(), unit)} on the {self.name(best.scale)}"
        if best.reduction() < points:
            return self.short(evidence, f"{finding} ({self.needs(unit)})", best.reduction()), best
        if hours is not None:
            lasted, recorded = self.lasted(best)
            finding += _for_hours(lasted, recorded)
            if recorded is not None:
                evidence += (self.assessed("it-trial-response-duration-h", recorded),)
            if lasted < hours:
                if recorded is None and self.may_yet_last(best):
                    return self.still_running(evidence, f"{finding} ({self.needs(unit)})"), best
                return self.short(evidence, f"{finding} ({self.needs(unit)})", best.reduction()), best
        return TestOutcome(Status.MET, evidence, f"{finding} ({self.needs(unit)})"), best

    def lasted(self, trial: ScaleTrial) -> tuple[float, ObservationFact | None]:
        """How long `trial`'s response held at the bar, and the record that says so: the
        it-trial-response-duration-h recorded for this trial (`recorded_for_trial`) decides, as the
        relief's duration does (contract §4); else the scores' span."""
        found = self.ctx.record.latest_assessment("it-trial-response-duration-h")
        usable = recorded_hours(found) is not None
        previous = self.ctx.record.trial.previous_start
        recorded = recorded_for_trial(found, trial.procedure.performed, previous) if usable else None
        hours = recorded_hours(recorded)
        if recorded is None or hours is None:
            return trial.sustained_hours(self.points), None
        return hours, recorded

    def scored(self, trials: list[ScaleTrial]) -> TestOutcome:
        """Scores around the trial; a Modified Ashworth response is counted both ways when the
        points reading fails or is left to the reviewer (not when it waits on documentation)."""
        outcome, _ = self.judged(trials, "point")
        if outcome.status is Status.MET or not (outcome.status is Status.NOT_MET or outcome.for_reviewer):
            return outcome
        graded = [t.counting_grades() for t in trials if t.scale == MODIFIED_ASHWORTH]
        if not graded:
            return outcome
        in_grades, best = self.judged(graded, "grade")
        if in_grades.status is not Status.MET:
            return outcome
        as_points = replace(best, graded=False)
        lasting = _for_hours(*self.lasted(best)) if self.hours is not None else ""
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            in_grades.evidence,
            f"{amount(best.reduction(), 'grade')} with 1+ as a grade of its own, "
            f"{amount(as_points.reduction(), 'point')} with 1+ as 1.5, "
            f"on the {self.name(best.scale)}{lasting} ({self.needs('point')}): {_ONE_PLUS_OPEN}",
            for_reviewer=True,
        )


def _for_hours(hours: float, recorded: ObservationFact | None) -> str:
    """How long a response held, as a finding says it: ", for 6 h as recorded"."""
    return f", for {number(hours)} h" + (" as recorded" if recorded is not None else "")


def amount(value: float, unit: str) -> str:
    """`value` of `unit`: "1 point", "0.5 points", "2 grades"."""
    return f"{number(value)} {unit}" if value == 1 else f"{number(value)} {unit}s"
