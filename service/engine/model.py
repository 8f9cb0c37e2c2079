"""The values the engine produces: three-valued criterion results and a Determination.

Cards, coverage-information extensions, audit records and documentation questionnaires are all
renderings of these values, so they carry everything a rendering needs: the policy's own words,
the citation, the status, and the evidence (or what is missing and how to document it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

UNCHECKED_PREFIX = "could not be checked: "  # how a criterion's `unchecked_reason` begins


class Status(StrEnum):
    MET = "met"
    NOT_MET = "not-met"
    NOT_DOCUMENTED = "not-documented"


class Outcome(StrEnum):
    MEETS = "meets"
    DOES_NOT_MEET = "does-not-meet"
    INSUFFICIENT = "insufficient"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class Evidence:
    """One piece of chart evidence: human text, the resource it came from, its date, and how finely the
    chart writes that date (`fhirdates.precision`: a time, or only a day, a month or a year), so that
    whatever dates the evidence says it no finer than written (cards' `_dated`)."""

    text: str
    reference: str | None = None
    date: datetime | None = None
    precision: str = "time"


def and_more(count: int, short: bool = False) -> str:
    """How many others a list counts beside those it names, said after them: " and 2 more", or in fewer
    words " +2 more" (`short`, a card's line with little room: cards/items.py `_pending_forms`); "" for none.
    The one place "and N more" is worded (`Pending.words`, the device check's finding, the card's forms)."""
    if count <= 0:
        return ""
    return f" +{count} more" if short else f" and {count} more"


@dataclass(frozen=True)
class Pending:
    """What the records a result rests on may undo, in parts (review30f): the latest implant a removal not
    read may have taken out (`named`: "implant CPT 33206"), its day (`when`: "2 Feb 2019") and how many
    others (`more`), so that a card composes its shorter forms from them (cards/items.py) rather than by
    cutting the finding's words."""

    named: str
    when: str
    more: int = 0

    @property
    def words(self) -> str:
        """The fullest form: "implant CPT 33207 (3 Mar 2019) and 1 more"."""
        return f"{self.named} ({self.when}){and_more(self.more)}"


@dataclass(frozen=True)
class TestOutcome:
    """What one evaluator concluded. `by_absence` marks a 'met' that rests on nothing being found."""

    __test__ = False  # not a pytest test class, whatever its name

    status: Status
    evidence: tuple[Evidence, ...] = ()
    finding: str = ""
    by_absence: bool = False
    for_reviewer: bool = False  # not documented, though recorded: the policy leaves it to a reviewer
    rests_on: tuple[str, ...] = ()  # resource types beyond its test's reads whose records could change it
    # what the records it rests on may undo, said before why they could not be read ("implant CPT 33206
    # (2 Feb 2019)": evaluate.py), so a clinician knows what to check
    pending: Pending | None = None
    # why what was read cannot decide it, where no part of the chart left out is why (a removal read that the
    # dates cannot place before or after the implant: "removal CPT 33233 (undated) may have come later",
    # engine/removals.py): the result reads "could not be checked" as for `rests_on` (evaluate.py)
    undecided: str = ""

    @property
    def documents(self) -> bool:
        """The outcome rests on a record of the fact: one that decides it, for or against (not on
        absence), or one the policy leaves to the payer's reviewer."""
        return (
            self.status == Status.NOT_MET
            or (self.status == Status.MET and not self.by_absence)
            or self.for_reviewer
        )

    @property
    def dated(self) -> datetime | None:
        """The date of the most recent evidence the outcome rests on (None when none is dated)."""
        return max((e.date for e in self.evidence if e.date is not None), default=None)


@dataclass(frozen=True)
class CriterionResult:
    id: str
    label: str
    text: str
    section: str
    citation: str
    role: str
    status: Status
    finding: str
    evidence: tuple[Evidence, ...] = ()
    how_to_document: str | None = None
    reading: str | None = None
    unchecked_reason: str | None = None
    children: tuple[CriterionResult, ...] = ()
    overruled: tuple[Evidence, ...] = ()  # older forms of the same fact that the evidence overrules
    gate: bool = False  # not met, it rules its group out (the pain block of the other kind of pain)
    for_reviewer: bool = False  # not documented, though recorded: the payer's reviewer judges it
    written_for: frozenset[str] | None = None  # its indications, its groups' included (None: the policy's)
    either_or: bool = False  # met when any one of its sub-criteria is
    by_absence: bool = False  # met because nothing in the data shows the fact (contract §3, Absence)
    pending: Pending | None = None  # left unchecked: what the records not read may undo (`TestOutcome`'s)

    def walk(self) -> list[CriterionResult]:
        """This result and every result below it."""
        return [self, *(r for child in self.children for r in child.walk())]

    def leaves(self) -> list[CriterionResult]:
        """The results that have no sub-criteria, in order."""
        return [r for r in self.walk() if not r.children]


@dataclass(frozen=True)
class Determination:
    """The answer for one (order, policy): outcome, the reasons, and every criterion's result."""

    policy_id: str
    policy_version: str
    payer: str
    policy_title: str
    order_reference: str
    order_label: str
    billing_code: str
    request_kind: str
    indication: str
    outcome: Outcome
    explanation: str
    criteria: tuple[CriterionResult, ...] = field(default_factory=tuple)
    coverages: tuple[str, ...] = ()
    indication_evident: bool = True  # False: nothing told the indication, `indication` is the default
    indication_unread: bool = False  # not evident, and chart data that could tell it could not be read
    kind_unread: str = ""  # the drug tells the family, the unread problem list would tell which: the question
    review_overdue_since: date | None = None  # the policy's own next-review date, when it has passed
    order_name: str = ""  # the order line's short name ("62362 programmable pump")
    indication_words: str = ""  # the indication as a card says it ("chronic non-malignant pain")
    kind_words: str = ""  # the request kind as a card says it ("a pump replacement"): whose criteria judge it
    revision_words: str = ""  # an order judged as a replacement without being one: what it is ("a catheter
    # revision", vocabulary.yaml `revisions`); its criteria are still those of `kind_words`
    in_place: str = ""  # an implant or catheter code read as a replacement: the records of the pump in place
    # why that pump may not be in place still (a removal that would undo it could not be read), "" when it is:
    # the order is judged as read (a replacement), but its kind is not known (engine/evaluate.py)
    in_place_unsure: str = ""
    # while `in_place_unsure`, the top-level criteria judged only because the pump reads as in place, which a
    # first implant has not (CMM-210.5's "the existing device"): to document only once it is found in place
    in_place_only: tuple[str, ...] = ()
    possible_indications: tuple[str, ...] = ()  # what the order may be for: its indication, when evident
    policy_indications: tuple[str, ...] = ()  # the indications its policy addresses
    deceased: bool = False  # the chart records the patient as deceased (no policy judges it: a card says it)
    deceased_on: str = ""  # when, if the chart says, as written (service/record.py)

    def by_status(self, status: Status) -> list[CriterionResult]:
        return [c for c in self.criteria if c.status == status]


def indications_left(failed: Iterable[CriterionResult], possible: frozenset[str]) -> frozenset[str]:
    """Of the indications an order may be for, those no failed criterion closes: a failure closes every
    indication its criterion is written for (None: all). An order none is left for is not covered
    whatever it turns out to be for; one with some left rests on what it is for."""
    return possible - {i for r in failed for i in (r.written_for or possible)}
