"""Several forms of one fact (contract §3): which of a criterion's evidence forms decides it.

A fact such as "life expectancy at least 3 months" can be documented as a LOINC value or as an
assessment; a policy lists both as the `forms` of one criterion. A form that documents the fact,
for or against, decides over one that is absent, and the most recent documented form decides over
older ones. "Met because nothing was found" (`by_absence`) documents nothing; a recorded value the
policy leaves to the payer's reviewer documents the fact, and when it is the most recent, leaves it
to the reviewer. The tie rule is in
`policies/README.md`: dated beats undated; on the same date (or both undated) "not met" beats a value
left to the reviewer, which beats "met"; after that the form listed first in the policy decides. Forms
whose bars differ (two scales of one severity, each with its own threshold) do not contradict each
other on one date: for them (`either_on_one_date`) "met" comes first there (the policy's "or").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.engine.chart_days import ranking_days
from service.engine.model import Evidence, Status, TestOutcome


@dataclass(frozen=True)
class Decision:
    """The outcome that decides the criterion, which form gave it (None: no form documents the
    fact), and the evidence of the documented forms it overrules."""

    outcome: TestOutcome
    form: int | None
    overruled: tuple[Evidence, ...] = ()


def _recency(
    indexed: tuple[int, TestOutcome], either_on_one_date: bool, day: date | None
) -> tuple[bool, date, int, datetime, int]:
    """Newest date first; on one date "not met", then "for the reviewer", before "met" (the chart that
    contradicts itself that day claims nothing), or "met" first where the forms' bars differ, whatever
    the hours of one day's records; then the later record; then the policy's order. `day` is the
    record's day as chart_days.ranking_days gives it: its own, but never older than the own day of an
    older record, so that a record three hours newer is never on the older day for having been written in
    another offset (pump25 LOW 5), while records whose own days agree with their instants keep them
    (review25b: one offset for all moved records across midnight, across a daylight-saving change or
    between UTC and local times)."""
    index, outcome = indexed
    dated = outcome.dated
    first = Status.MET if either_on_one_date else Status.NOT_MET
    claims = 2 if outcome.status == first else 1 if outcome.for_reviewer else 0
    return (dated is not None, day or date.min, claims, dated or datetime.min, -index)


def _undocumented(outcomes: list[TestOutcome]) -> TestOutcome:
    """No form documents the fact: something on record that no form could read comes first, then a
    "none documented" of an absence rule, else every form's account of what is missing."""
    unreadable = next((o for o in outcomes if o.status == Status.NOT_DOCUMENTED and o.evidence), None)
    if unreadable is not None:
        return unreadable
    absent = next((o for o in outcomes if o.status == Status.MET), None)
    if absent is not None:
        return absent
    findings = dict.fromkeys(o.finding for o in outcomes if o.finding)
    return TestOutcome(Status.NOT_DOCUMENTED, finding="; ".join(findings))


def decide(outcomes: list[TestOutcome], either_on_one_date: bool = False) -> Decision:
    """The deciding outcome among the outcomes of one fact's forms, in the policy's order."""
    documented = [(i, o) for i, o in enumerate(outcomes) if o.documents]
    if not documented:
        return Decision(_undocumented(outcomes), None)
    if len(documented) == 1:  # the one form documenting the fact decides it, and overrules nothing
        form, deciding = documented[0]
        return Decision(deciding, form)
    days = dict(zip((i for i, _ in documented), ranking_days([o.dated for _, o in documented]), strict=True))
    form, deciding = max(
        documented, key=lambda indexed: _recency(indexed, either_on_one_date, days[indexed[0]])
    )
    overruled = tuple(
        e for i, o in documented if i != form and o.status != deciding.status for e in o.evidence
    )
    return Decision(deciding, form, overruled)
