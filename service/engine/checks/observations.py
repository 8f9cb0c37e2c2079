"""Test types that read one Observation: a project assessment (contract §5), a LOINC value or
category (life expectancy, TNM stage), or a spasticity scale's baseline score (one examination)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from service.codes import ASSESSMENT
from service.engine.chart_days import day_order, one_day
from service.engine.checks.common import (
    ANSWERS,
    COMPARATORS,
    day_of,
    matching_procedures,
    named_value_sets,
    needs,
    observation_evidence,
    procedure_evidence,
)
from service.engine.checks.params import (
    MISSING_WORDS,
    AssessmentCode,
    Codes,
    Comparator,
    Exactly,
    Number,
    Param,
    ScaleCode,
    Values,
    ValueSets,
    optional,
)
from service.engine.checks.testtype import test_type
from service.engine.classify import ALWAYS, intrathecal_since
from service.engine.context import EvaluationContext
from service.engine.model import Status, TestOutcome
from service.facts import ObservationFact, ProcedureFact
from service.fhirdates import (
    duration_days,
    human_date,
    human_quantity,
    in_calendar_months,
    months_before,
    quantity_against_months,
)
from service.trial import Examination, examinations
from service.wording import number, quantity, unsigned_zero


def _one_of(value: Any, expected: Iterable[Any]) -> bool:
    """Value equality that keeps booleans apart from numbers (True is not 1) and codes from numbers."""
    for item in expected:
        if isinstance(item, bool) or isinstance(value, bool):
            if isinstance(item, bool) and isinstance(value, bool) and item is value:
                return True
        elif isinstance(item, int | float) and isinstance(value, int | float):
            if float(item) == float(value):
                return True
        elif isinstance(item, str) and isinstance(value, str) and item == value:
            return True
    return False


def _later_procedure(
    ctx: EvaluationContext, params: Mapping[str, Any], answer: ObservationFact
) -> ProcedureFact | None:
    """The latest procedure of the `superseded_by` value sets done on a later day than `answer` (an
    answer given the day of the procedure is its result), or None. Days are weighed as
    chart_days.day_order weighs them (a visit three hours before the answer, written in another offset,
    is not on a later day); a visit the chart dates only to a month or a year that holds the answer's
    day, or the reverse, may have come after it, and so supersedes it."""
    answered = answer.effective
    later = [
        p
        for p in matching_procedures(ctx, named_value_sets(ctx, params, "superseded_by"))
        if p.performed is not None
        and (answered is None or _may_follow(p.performed, p.precision, answered, answer.precision))
    ]
    return max(later, key=lambda p: p.performed, default=None)


def _may_follow(visited: datetime, visited_to: str, answered: datetime, answered_to: str) -> bool:
    """Whether a visit was on a later day than an answer, or may have been (one of them dated to a month
    or a year holding the other); `*_to`: how each is written (fhirdates.precision)."""
    order = day_order(visited, answered, visited_to, answered_to)
    return order > 0 or (order == 0 and not (one_day(visited_to) and one_day(answered_to)))


def _check_assessment(params: Mapping[str, Any]) -> str | None:
    if ("met" in params or "not_met" in params) == ("comparator" in params):
        return "'assessment' takes either met/not_met (listed values) or comparator and value"
    if ("comparator" in params) != ("value" in params):
        return "'assessment' needs comparator and value together"
    return None


@test_type(
    "assessment",
    params={
        "code": Param(AssessmentCode()),
        "met": optional(Values()),
        "not_met": optional(Values()),
        "for_reviewer": optional(Values()),
        "comparator": optional(Comparator()),
        "value": optional(Number()),
        "when_absent": optional(Exactly("met", " (the absence rule)")),
        "superseded_by": optional(ValueSets()),
    },
    reads=("Observation",),
    also_reads=ANSWERS,
    check=_check_assessment,
)
def assessment(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest project assessment Observation (contract §5) with a value that meets or fails:
    listed values (`met` / `not_met`; `for_reviewer`: recorded values the policy leaves to the
    payer's reviewer), or a number against `comparator` `value`. With `superseded_by`, an answer
    about a procedure of those value sets (an evaluation's result) that a later one of them follows
    answers for the earlier only: the later one's result is not documented; while the procedures
    cannot be read, whether one followed cannot be checked (`rests_on`)."""
    outcome = _assessed(params, ctx)
    if params.get("superseded_by") and outcome.evidence:  # an answer on record, which a later one supersedes
        return replace(outcome, rests_on=("Procedure",))
    return outcome


def _assessed(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    name = ctx.terminology.assessment_name(params["code"])
    found = ctx.record.latest_assessment(params["code"])
    if found is None:
        if params.get("when_absent") == "met":
            return TestOutcome(Status.MET, finding=f"none documented (no “{name}” recorded)", by_absence=True)
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no “{name}” recorded")
    evidence = (observation_evidence(f"{name}: {found.value_text()}", found),)
    if params.get("superseded_by") and (later := _later_procedure(ctx, params, found)) is not None:
        since = procedure_evidence(later)
        assert later.performed is not None  # `_later_procedure` keeps only dated ones
        answered, written_to = found.effective, found.precision
        surely = answered is None or day_order(later.performed, answered, later.precision, written_to) == 1
        recorded = f"recorded {found.value_text()} ({day_of(answered, written_to)})"
        after = (  # a visit the chart dates to a span holding the answer may be before it or after
            f", before the later {since.text}, whose result is not recorded"
            if surely
            else f"; {since.text} may have followed it, and its result is not recorded"
        )
        return TestOutcome(Status.NOT_DOCUMENTED, (*evidence, since), recorded + after)
    if found.value is None and found.value_forms:  # coded, not in the assessment CodeSystem (§5)
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, f"recorded {found.value_text()}: not read as an answer"
        )
    if "comparator" in params:
        if isinstance(found.value, bool) or not isinstance(found.value, float):
            return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"not a number: {found.value_text()}")
        ok = COMPARATORS[params["comparator"]](found.value, float(params["value"]))
        finding = f"recorded {found.value_text()} ({needs(params['comparator'], params['value'])})"
        return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)
    if _one_of(found.value, params.get("met", ())):
        return TestOutcome(Status.MET, evidence, f"recorded {found.value_text()}")
    if _one_of(found.value, params.get("not_met", ())):
        return TestOutcome(Status.NOT_MET, evidence, f"recorded {found.value_text()}")
    if _one_of(found.value, params.get("for_reviewer", ())):
        finding = f"recorded {found.value_text()}, which the policy does not address: for the reviewer"
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, finding, for_reviewer=True)
    listed = params.get("met", ())
    yes_no = bool(listed) and all(isinstance(v, bool) for v in listed)
    if yes_no and not isinstance(found.value, bool):  # contract §5: a valueBoolean answer
        form = " as a code" if isinstance(found.value, str) else ""
        finding = f"recorded {found.value_text()}{form}, where a yes/no answer is read"
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, finding)
    taken = " / ".join(_words(v) for v in listed)
    decides = f"not one of {taken}" if taken else "which decides nothing here"
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"recorded {found.value_text()}, {decides}")


def _words(value: Any) -> str:
    """A listed value as a card writes a recorded one (`ObservationFact.value_text`)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("-", " ")


def _latest_loinc(ctx: EvaluationContext, codes: list[str], kind: type) -> ObservationFact | None:
    """The most recent Observation with one of the LOINC codes and a value of `kind` (number or code)."""
    found = [
        o
        for code in codes
        for o in ctx.record.observations_with("loinc", code)
        if isinstance(o.value, kind) and not isinstance(o.value, bool)
    ]
    return max(found, key=lambda o: (o.effective is not None, o.effective or datetime.min), default=None)


def _whole_months(params: Mapping[str, Any]) -> str | None:
    if params.get("unit") == "months" and not float(params["value"]).is_integer():
        return "a threshold in months is whole calendar months (AMB-44)"
    return None


@test_type(
    "observation-value",
    params={
        "loinc": Param(Codes()),
        "comparator": Param(Comparator()),
        "value": Param(Number()),
        "unit": optional(Exactly("months")),
        "otherwise": optional(Exactly("for-reviewer")),
        "missing": MISSING_WORDS,
    },
    reads=("Observation",),
    check=_whole_months,
)
def observation_value(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest Observation with one of the LOINC codes, compared with `value` (in `unit`: months are
    calendar months from the request date, AMB-44, a quantity in a, mo, wk, d or h read by its unit; a
    value without a usable unit is not documented, AMB-48). With `otherwise: for-reviewer`, a value the
    comparison does not meet is not against the fact: the policy draws no line there, and leaves it to
    the payer's reviewer."""
    latest = _latest_loinc(ctx, params["loinc"], float)
    if latest is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=params["missing"])
    evidence = (observation_evidence(f"{latest.label}: {latest.value_text()}", latest),)
    threshold = float(params["value"])
    if params.get("unit") == "months":
        judged = _against_months(latest, int(threshold), ctx)
        if judged is None:
            return TestOutcome(Status.NOT_DOCUMENTED, evidence, "the value has no time unit")
        against, said, detail = judged
        ok = COMPARATORS[params["comparator"]](against, 0)
    else:
        compared = round(float(latest.value), 6)  # type: ignore[arg-type]
        said, detail = _deciding_digits(compared, threshold), ""
        ok = COMPARATORS[params["comparator"]](compared, threshold)
    if not ok and params.get("otherwise") == "for-reviewer":  # the policy draws no line: none is said
        aside = f" ({detail})" if detail else ""
        return TestOutcome(
            Status.NOT_DOCUMENTED, evidence, f"{said} recorded{aside}: for the reviewer", for_reviewer=True
        )
    needed = needs(params["comparator"], params["value"], params.get("unit", ""))
    finding = f"{said} recorded ({f'{detail}; ' if detail else ''}{needed})"
    return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)


def _against_months(
    latest: ObservationFact, months: int, ctx: EvaluationContext
) -> tuple[int, str, str] | None:
    """The recorded time quantity against `months` calendar months from the request date
    (fhirdates.quantity_against_months), with the value as the card says it and how it was compared:
    a quantity in months or years as months ("12 months", "1 a"), one in days or weeks as recorded,
    with the days the months are from the call's day ("90 days", "3 months from 6 Dec 2026 are 90
    days"), never as a fraction of an average month. None when the unit is not a time unit."""
    value = float(latest.value)  # type: ignore[arg-type]
    against = quantity_against_months(value, latest.unit, months, ctx.today)
    if against is None:
        return None
    as_months = in_calendar_months(value, latest.unit)
    if as_months is not None:
        said = quantity(_deciding_digits(round(as_months, 6), months), "months")
        return against, said, "" if as_months == value else latest.value_text()
    days = duration_days({"value": value, "code": (latest.unit or "").strip()}) or 0.0
    limit = (months_before(ctx.today, -months) - ctx.today).days
    in_days = f"{number(days)} days; " if days != value else ""  # 13 weeks are 91 days
    detail = f"{in_days}{months} months from {human_date(ctx.today)} are {limit} days"
    return against, str(human_quantity(value, latest.unit)), detail


def _deciding_digits(value: float, threshold: float) -> str:
    """`value` with one decimal, or as many more as it takes not to look equal to `threshold` when it
    is not (0.2499 years are 2.9988 months: "2.999", not "3.0", against 3 months); a whole number as the
    cards say one, with none ("2", not "2.0": s29 F2), as is one rounded to it; a zero never signed
    (`unsigned_zero`: -0.01 months against 3 are "0", not "-0")."""
    if value.is_integer():
        return number(value, ".0f")
    for places in range(1, 7):
        shown = f"{value:.{places}f}"
        if (float(shown) == threshold) == (value == threshold):
            # 0.17 years are "2" months, not "2.0" (review29d)
            return unsigned_zero(shown.rstrip("0").removesuffix("."))
    return number(value)


_TNM_CATEGORY = re.compile(r"^(?:y?[cpra])?([TNM](?:\d|x|is)).*$", re.IGNORECASE)
_TNM_WORD = re.compile(r"\b(?:y?[cpra])?([TNM](?:\d|x|is))[a-d]?\d?\b", re.IGNORECASE)


def _category(value: str) -> str:
    """A coded stage as its category: the c/p/yp prefix dropped and M1a read as M1 (AJCC TNM)."""
    match = _TNM_CATEGORY.match(value.strip())
    return match.group(1).upper() if match else value.strip().upper()


def _categories(observation: ObservationFact) -> list[tuple[str, str]]:
    """The categories a coded stage is written as, each with the words that say it: its value, then
    each code, display and text, a stage named inside words ("American Joint Committee on Cancer cM1")
    read as well."""
    found = [(_category(str(observation.value)), observation.value_text())]
    for form in observation.value_forms:
        found.append((_category(form), form))
        found += [(word.upper(), form) for word in _TNM_WORD.findall(form)]
    return found


@test_type(
    "observation-category",
    params={
        "loinc": Param(Codes()),
        "met": Param(Values()),
        "not_met": optional(Values()),
        "missing": MISSING_WORDS,
    },
    reads=("Observation",),
)
def observation_category(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The latest Observation with one of the LOINC codes whose coded value is in `met` or `not_met`,
    compared by category (a distant-metastasis stage pM1b is M1, contract §3)."""
    latest = _latest_loinc(ctx, params["loinc"], str)
    if latest is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=params["missing"])
    evidence = (observation_evidence(f"{latest.label}: {latest.value_text()}", latest),)
    met = {_category(v) for v in params.get("met", ())}
    not_met = {_category(v) for v in params.get("not_met", ())}
    category, written = next(
        ((c, words) for c, words in _categories(latest) if c in met or c in not_met), (None, "")
    )
    if category in met:
        return TestOutcome(Status.MET, evidence, f"recorded {written}")
    if category in not_met:
        return TestOutcome(Status.NOT_MET, evidence, f"recorded {written}")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unrecognised value {latest.value_text()}")


def _baseline_exam(ctx: EvaluationContext, code: str) -> tuple[Examination | None, str]:
    """The latest examination of a scale (`examinations`: one value per time, a muscle's scores never
    set against another's) from before intrathecal therapy, and what a finding says of the scores
    left out: a score after the latest trial procedure measures the trial, and one from when a pump
    was in place (`intrathecal_since`) measures the therapy, not the patient's baseline severity."""
    recorded = ctx.record.observations_with(ASSESSMENT, code)
    trial = ctx.record.trial.procedure  # the latest trial procedure, found once per record
    since = ctx.memo(("intrathecal-since",), lambda: intrathecal_since(ctx.record, ctx.terminology))
    ends = [end for end in (trial.performed if trial else None, since) if end is not None]
    scores = [o for o in recorded if not ends or (o.effective is not None and o.effective <= min(ends))]
    exams = examinations(scores)
    if len(scores) == len(recorded):
        left_out = ""
    elif since == ALWAYS:  # no score can be placed before a pump nothing dates: say what would date it
        left_out = " from before the pump, which no record dates (record the implant procedure with its date)"
    else:
        left_out = " from before the intrathecal trial or therapy"
    return (exams[-1] if exams else None), left_out


@test_type(
    "scale-score",
    params={"code": Param(ScaleCode()), "comparator": Param(Comparator()), "value": Param(Number())},
    reads=("Observation",),
    also_reads=ANSWERS,
)
def scale_score(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The baseline spasticity score of one scale against a threshold (Modified Ashworth 1+ = 1.5);
    per-muscle scores of one examination are averaged (`Examination`)."""
    name = ctx.terminology.assessment_name(params["code"])
    found, left_out = _baseline_exam(ctx, params["code"])
    if found is None:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no “{name}” recorded{left_out}")
    points = found.points()
    evidence = (observation_evidence(f"{name}: {found.value_text()}", found),)
    if points is None:
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"unreadable score {found.value_text()}")
    ok = COMPARATORS[params["comparator"]](points, float(params["value"]))
    finding = f"{found.value_text()} ({needs(params['comparator'], params['value'])})"
    return TestOutcome(Status.MET if ok else Status.NOT_MET, evidence, finding)
