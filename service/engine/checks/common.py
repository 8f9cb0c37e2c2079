"""What several families of test types share: comparators, value-set matching and evidence lines.

Kept apart from the families so that each family module holds only its own test types, and so
that the parameter kinds (`params.py`) can name the comparators without importing a family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from service.engine.context import EvaluationContext
from service.engine.model import UNCHECKED_PREFIX, Evidence
from service.facts import ConditionFact, MedicationFact, ProcedureFact
from service.fhirdates import (
    days_unit,
    human_date_to,
    human_dates_to,
    human_days_in,
    human_months,
    human_span_range,
    open_ended,
)
from service.infusates import PUMP_DRUG
from service.record import DEFAULT_ORDER_DAYS, REMOVALS, unreadable_in_chart
from service.terminology import ValueSet
from service.wording import listing, number, quantity

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
MEDS = ("MedicationRequest", "MedicationStatement")  # the resource types a drug history is read from
# What a project assessment is read from besides its Observation (contract §3, §5): the answers to the
# service's documentation questionnaire, whose item codes are the assessment codes (a test's
# `also_reads`: they only add a record, so they count for a result not documented)
ANSWERS = ("QuestionnaireResponse",)
# Of each of a diagnosis's texts, the characters the words safety net reads: a diagnosis is named in far
# fewer, and each of the net's hundred-odd patterns costs time in proportion to the text, so a chart's
# megabyte of text cost seconds of a worker's CPU (attack20 L1).
WORDS_READ = 1_000
COMPARATOR_WORDS = {">": "more than", ">=": "at least", "<": "less than", "<=": "at most"}
# The part of the chart each resource type the engine reads is, in the words a clinician uses for it:
# a card says "the problem list was not available", never the resource type.
CHART_PARTS = {
    "Condition": "problem list",
    "MedicationRequest": "medication orders",
    "MedicationStatement": "medication history",
    "AllergyIntolerance": "allergy list",
    "Procedure": "procedure history",
    "Observation": "observations",
    "QuestionnaireResponse": "questionnaire answers",
    "Device": "implanted devices",
    "DocumentReference": "documents",
    PUMP_DRUG: "pump drug orders",  # the call's, else the chart's (service/infusates.py)
    # the removal Procedures left out (service/record.py) of what a device's implant shows in place: said
    # after it ("implant CPT 33206 (2 Feb 2019), but … later removals", `TestOutcome.pending`)
    REMOVALS: "later removals",
}


def day_of(moment: datetime | None, written_to: str = "time") -> str:
    """A date as a card writes it ("20 Apr 2023"; "March 2023" or "2023" when the chart writes it only
    to a month or a year: `written_to`, fhirdates.precision); the machine value stays in `Evidence.date`."""
    return human_date_to(moment, written_to) if moment else "undated"


def needs(comparator: str, amount: float | str, unit: str = "") -> str:
    """What a threshold asks for, in words: `needs(">", 6, "months")` is "needs more than 6 months",
    `needs(">=", 1, "months")` "needs at least 1 month"."""
    said = number(amount) if isinstance(amount, int | float) else amount
    return f"needs {COMPARATOR_WORDS[comparator]} {quantity(said, unit) if unit else said}"


def named_value_sets(
    ctx: EvaluationContext, params: Mapping[str, Any], key: str = "valuesets"
) -> list[ValueSet]:
    """The value sets a test's parameter `key` names."""
    return [ctx.terminology[v] for v in params[key]]


def _codes_match(fact: Any, value_set: ValueSet) -> bool:
    return value_set.matches_any(fact.codes)


def _matching(
    ctx: EvaluationContext,
    kind: str,
    facts: Any,
    value_sets: list[ValueSet],
    belongs: Callable[[Any, ValueSet], bool] = _codes_match,
) -> list[Any]:
    """Facts belonging to any of the value sets, in record order; computed once per value set for
    the whole call."""
    per_set = [
        ctx.memo((kind, vs.id), lambda vs=vs: {id(f) for f in facts if belongs(f, vs)})  # type: ignore[misc]
        for vs in value_sets
    ]
    wanted = set().union(*per_set)
    return [f for f in facts if id(f) in wanted]


def matching_procedures(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ProcedureFact]:
    return _matching(ctx, "procedures", ctx.record.procedures, value_sets)


def matching_conditions(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ConditionFact]:
    return _matching(ctx, "conditions", ctx.record.conditions, value_sets)


def worded_conditions(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[ConditionFact]:
    """The record's conditions that none of the value sets codes but whose own words (text, displays)
    name one of them (`ValueSet.names_in_words`: "Infection of tooth" coded only by a SNOMED CT
    descendant not listed); computed once per value set for the whole call."""
    coded = {id(c) for c in matching_conditions(ctx, value_sets)}
    return [
        c
        for c in _matching(ctx, "worded-conditions", ctx.record.conditions, value_sets, _words_name)
        if id(c) not in coded
    ]


def _words_name(c: ConditionFact, value_set: ValueSet) -> bool:
    texts = [c.label, *(code.display for code in c.codes if code.display)]
    return value_set.names_in_words(" | ".join(text[:WORDS_READ] for text in texts))


def matching_medications(ctx: EvaluationContext, value_sets: list[ValueSet]) -> list[MedicationFact]:
    """The record's medications of the classes (`medication_matches`)."""
    return _matching(
        ctx, "medications", ctx.record.medications, value_sets, lambda m, vs: medication_matches(m, [vs])
    )


def medication_matches(med: MedicationFact, value_sets: list[ValueSet]) -> bool:
    """A drug belongs to a class: by an ingredient found when the record was built, or by a code.
    Intrathecal and epidural drugs never count: the policies' drug trials are systemic ones."""
    if med.neuraxial:
        return False
    return any(vs.holds_drug(med.ingredients, med.codes) for vs in value_sets)


def condition_evidence(c: ConditionFact) -> Evidence:
    """A diagnosis as evidence: its label and date, no finer than the chart writes it (`c.precision` is
    that of `c.date`, its onset else its recorded date: "onset 2021", not "onset 1 Jan 2021"); with no
    date, the onset the chart gives otherwise ("onset at age 60, no date": `ConditionFact.undated_words`)."""
    when = (
        "the order's reason"
        if c.from_order
        else f"onset {day_of(c.onset, c.precision)}"
        if c.onset
        else f"recorded {day_of(c.recorded, c.precision)}"
        if c.recorded
        else c.undated_words
    )
    return Evidence(f"{c.label} ({when})", c.source, c.date, c.precision)


def procedure_evidence(p: ProcedureFact, role: str = "") -> Evidence:
    """A procedure as evidence: its label and day, after what it was (`role`: "implant: ")."""
    return Evidence(
        f"{role}{p.label} ({day_of(p.performed, p.precision)})", p.source, p.performed, p.precision
    )


class Observed(Protocol):
    """What is dated as an observation is: an ObservationFact, or an examination of them (trial.py)."""

    @property
    def source(self) -> str: ...
    @property
    def effective(self) -> datetime | None: ...
    @property
    def precision(self) -> str: ...


def observation_evidence(text: str, o: Observed) -> Evidence:
    """An observation, an answer or an examination as evidence, dated as the chart writes it."""
    return Evidence(text, o.source, o.effective, o.precision)


def medication_evidence(m: MedicationFact) -> Evidence:
    """An order or statement as evidence: its days no finer than the chart dates them ("January 2025 →
    March 2025, 29 days to 12 weeks 5 days": a date written to a month or a year is any day of it)."""
    begun = day_of(m.start, m.precision)
    if m.end and open_ended(m.end):
        return Evidence(f"{m.label} ({m.status}, {begun} → open-ended)", m.source, m.start, m.precision)
    span = from_to(begun, medication_end_words(m)) if m.end and m.end_written else begun
    took = ""
    if m.start and m.end and m.end_written and not m.end_tied:  # a tied end says how long itself
        took = f", {human_span_range((m.start_by or m.start, m.end), (m.start, m.ends_by or m.end))}"
    assumed = f", no supply length: {DEFAULT_ORDER_DAYS} days counted" if m.end_assumed else ""
    return Evidence(f"{m.label} ({m.status}, {span}{took}{assumed})", m.source, m.start, m.precision)


def from_to(first: str, last: str) -> str:
    """A span from its first day to its last in a card's words ("January 2025 → March 2025"), said
    once when both read alike: an order begun and ended in October 2026 is "October 2026", not
    "October 2026 → October 2026" (review26c)."""
    return first if first == last else f"{first} → {last}"


def medication_end_words(m: MedicationFact, unit: str | None = None) -> str:
    """When an order or statement ended (its end, else its start), no finer than the chart dates it; an
    end computed from its start in a threshold's `unit` where it can be (`tied_length`)."""
    end = m.end or m.start
    if m.end_by is None or end is None or m.start is None:
        return day_of(end)
    if m.end_tied:  # computed from a start dated to a month or a year: as unsure as it, by as long
        return f"{tied_length(m, unit)} later" if end != m.start else day_of(m.start, m.precision)
    return human_dates_to(end, m.end_by, m.end_precision)


def tied_length(m: MedicationFact, unit: str | None = None) -> str:
    """How long after its start an end computed from it (`end_tied`) falls, true of every day the start
    may be: its supply in calendar months, whole years as years ("6 months", "1 year", not "12 months":
    review27d), else its days, in the `unit` of the threshold the finding sets it beside ("2 weeks 6
    days" beside "needs at least 6 weeks", not "20 days"; "42 days" beside months: review27d), or as
    `human_days` says them ("26 weeks", "184 days") but for whole years: 365 days are not a year from a
    day a 29 February follows within it ("February 2024 → 1 year later" beside "11 months 28 days
    documented": review28d), "365 days"; never the months its first day gives ("6 months 3 days" from 1
    January is 6 months from 1 July: dates27)."""
    if m.supply_months is not None:
        return human_months(m.supply_months)
    assert m.start is not None and m.end is not None, "a tied end has a start and an end"
    days = (m.end.date() - m.start.date()).days
    said_in = unit or days_unit(days)
    return human_days_in(days, "days" if said_in == "years" else said_in)


def _verb(words: list[str]) -> str:
    return "were" if len(words) > 1 or words[0].endswith("s") else "was"


def all_read(ctx: EvaluationContext) -> bool:
    """Whether every part of the chart was fetched and read: then no result is untrusted for what
    could not be (`could_not_check` is None whatever it is asked), and the engine need not work out
    what each result reads (evaluate.py `_leaf`)."""
    return not ctx.record.unavailable and not ctx.record.unavailable_codes


def could_not_check(
    ctx: EvaluationContext, types: tuple[str, ...], codes: tuple[str, ...] | None = None
) -> str | None:
    """Why a result cannot be trusted: a part of the chart it reads, for the assessment `codes` it
    reads (None: any, `PatientRecord.unread`), could not be fetched or read, named as a clinician
    knows it, and said as what befell it: a part not fetched (a search that failed, timed out or was not
    asked) "was not available" ("the EHR's problem list and medication orders were not available (…)"),
    one whose records were read but left out (malformed, or carrying a modifier extension: `MALFORMED`,
    `MODIFIED`) "could not be read", in part ("some of the EHR's problem list could not be read (1
    record(s) carry a modifier extension …)"). The one place a card's "could not be checked" says why."""
    if all_read(ctx):
        return None
    by_reason: dict[str, list[tuple[str, str]]] = {}  # why → (chart part, the assessments it names)
    for t in dict.fromkeys(types):
        for reason, left in ctx.record.unread_by_reason(t, codes).items():
            named = by_reason.setdefault(reason, [])
            if (said := (_part(t, left), _answers_to(ctx, left))) not in named:
                named.append(said)
    if not by_reason:
        return None
    said = [
        _befell(listing([part + to for part, to in named]), [part for part, _ in named], reason, i == 0)
        for i, (reason, named) in enumerate(by_reason.items())
    ]
    return UNCHECKED_PREFIX + "; ".join(said)


def _part(kind: str, left: tuple[str, ...]) -> str:
    """The part of the chart `kind` is, as a card names it: the removals left out by their codes (`left`)
    are "later removals"; left out whole, they are procedures that may hold one (a malformed Procedure,
    whose codes are unknown; procedures not fetched), not removals known, and are named as what they are:
    "the EHR's procedure history" (review30a: a malformed office visit read "some of the EHR's later
    removals could not be read")."""
    if kind == REMOVALS and not left:
        return CHART_PARTS["Procedure"]
    return CHART_PARTS.get(kind, kind)


def _befell(parts: str, names: list[str], reason: str, first: bool) -> str:
    """What befell the chart's `parts` (`reason`), its first clause naming the EHR."""
    whose = "the EHR's " if first else "the "
    if unreadable_in_chart(reason):  # read, but some records left out: not "not available"
        return f"some of {whose}{parts} could not be read ({reason})"
    return f"{whose if first else ''}{parts} {_verb(names)} not available ({reason})"


def _answers_to(ctx: EvaluationContext, codes: tuple[str, ...]) -> str:
    """The assessments a part of the chart left out only for some codes is named by, as cards name
    them (' to “Modified Ashworth scale”'); nothing for a part left out whole, nor for codes no
    assessment's (the removals left out by their CPT codes, `REMOVALS`: the part's name says them)."""
    assessed = [code for code in codes if code in ctx.terminology.assessment_codes]
    if not assessed:
        return ""
    return " to " + listing([f"“{ctx.terminology.assessment_name(code)}”" for code in assessed])
