"""Normalised clinical facts: the vocabulary shared by the record, the trial and the engine.

Each fact keeps `source`, the `Type/id` of the resource it came from, so every card line and
audit record can cite the chart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import TypeVar

from service.codes import ASSESSMENT, Code
from service.fhirdates import last_day_written, months_later, shifted
from service.wording import quantity, unsigned_zero

Fact = TypeVar("Fact", bound=type)


def quick_init(cls: Fact) -> Fact:
    """A frozen, slotted fact class made by `dataclass` whose `__init__` sets each field through its
    slot's own setter, not `object.__setattr__` (which looks the name up through the class for every
    field): the same signature, defaults and instance, still frozen afterwards, at about half the cost.
    A chart's record makes a fact of each of its hundreds of resources (issue 12)."""
    names = [f.name for f in fields(cls)]
    if any(not f.init or f.kw_only or f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__name__}: quick_init takes fields with plain defaults only")
    scope = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    scope |= {f"_default_{f.name}": f.default for f in fields(cls) if f.default is not MISSING}
    params = ", ".join(
        name if f"_default_{name}" not in scope else f"{name}=_default_{name}" for name in names
    )
    body = "".join(f"\n    _set_{name}(self, {name})" for name in names)
    # our own field names, compiled as `dataclass` compiles its methods: through the start-up's code
    # cache when one is open (service/dataclass_cache.py sets `dataclasses.exec`), else by `exec`
    run = getattr(dataclasses, "exec", exec)
    run(f"def __init__(self, {params}):{body}", scope)
    init = scope["__init__"]
    init.__annotations__ = {f.name: f.type for f in fields(cls)} | {"return": None}
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls


@quick_init
@dataclass(frozen=True, slots=True)
class ConditionFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    onset: datetime | None
    recorded: datetime | None
    explicitly_active: bool
    duplicates: tuple[str, ...] = ()
    from_order: bool = False  # the reason an order gives (classify.reason_diagnosis), not the problem list's
    precision: str = "time"  # how `date` is written: with a time, or only its "day", "month" or "year"
    # the same code's earliest diagnoses written to another precision (a day, a month, a year): one dated
    # 1 March 2026 beside this "2026" dates it by 1 March at the latest (condition-duration's bound)
    also_dated: tuple[ConditionFact, ...] = ()
    # the onset as the chart gives it where it gives no date contract §3 reads (an onsetAge, an onsetRange,
    # an onsetString, an onsetPeriod with an end only): "onset at age 60, no date", "onset “childhood”, no
    # date", "onset by 2 Feb 2019, no start date"; "" for none
    onset_said: str = ""
    # an onsetPeriod's end where it has no start (and there is no onsetDateTime): the onset was by then, and
    # how it is written. No date contract §3 reads (`date` stays None: undated for every rule), only the
    # words a removal weighed against it is said in ("came after the onset": engine/removals.Undone.by)
    onset_by: datetime | None = None
    onset_by_to: str = "time"

    @property
    def date(self) -> datetime | None:
        return self.onset or self.recorded

    @property
    def undated_words(self) -> str:
        """What a card says of this diagnosis when `date` is None: the chart's onset, if it gives one no
        date is read from ("onset at age 60, no date": contract §3 dates a Condition by onsetDateTime,
        onsetPeriod.start or recordedDate only; review31f L1), else "undated"."""
        return self.onset_said or "undated"


@quick_init
@dataclass(frozen=True, slots=True)
class MedicationFact:
    source: str
    codes: tuple[Code, ...]
    text: str
    label: str
    status: str
    start: datetime | None
    end: datetime | None
    status_reason: str | None
    route_text: str
    ingredients: frozenset[str] = frozenset()
    route_codes: tuple[Code, ...] = ()  # the codes of its dosages' routes (a coded route may have no text)
    neuraxial: bool = False
    end_assumed: bool = False  # an order with no supply length: its end is the contract's default
    # how `start` and `end` are written (fhirdates.precision): a date written to a month or a year is any
    # day of it, `start` and `end` its first; `end_by` the last day the end may fall on when that is later
    # (an end written so, or computed from a start written so: `end_tied`, it moves with the start)
    precision: str = "time"
    end_precision: str = "time"
    end_by: datetime | None = None
    end_tied: bool = False
    supply_months: int | None = None  # a tied end computed from a supply in calendar months: how many

    def tied_end(self, start: datetime) -> datetime:
        """The end of a course whose end moves with its start (`end_tied`), had it begun on `start` (a day
        its written start stands for): its supply's calendar months later (`supply_months`: a 6-month
        supply from 31 August ends on 28 February, from 1 August on 1 February), else as many days later
        as its end is from its first possible start."""
        if self.supply_months is not None:
            return months_later(start, self.supply_months)
        assert self.start is not None and self.end is not None, "a tied end has a start and an end"
        return shifted(start, self.end - self.start)

    @property
    def start_by(self) -> datetime | None:
        """The last day the course may have begun on: `start`, or the last day of its month or year."""
        return None if self.start is None else last_day_written(self.start, self.precision)

    @property
    def ends_by(self) -> datetime | None:
        """The last day the course may have ended on (`end_by`, else `end`)."""
        return self.end_by or self.end

    @property
    def end_written(self) -> bool:
        """Whether the chart gives an end apart from the start: on a later day, or written to a month
        or a year that holds the start ("2026-10-01" to "2026-10"; review26c), not one that moves with
        the start (`end_tied`: none written, or computed from it)."""
        return self.end != self.start or (self.end_by is not None and not self.end_tied)

    @property
    def ordered(self) -> bool:
        """A MedicationRequest (an order), not a MedicationStatement (what the patient reports)."""
        return self.source.startswith("MedicationRequest/")

    def running_on(self, moment: datetime) -> bool:
        """The course is still being taken at `moment`: an active order whose computed end (contract
        §3) is later, or an active statement with no end of its period (its end is its date). An end
        written to a month or a year may be its last day (`ends_by`): "2026-11" has not passed on 21
        November (review26c)."""
        if self.status != "active" or self.start is None:
            return False
        if not self.ordered and not self.end_written:
            return True
        return self.end is not None and (self.end_by or self.end) > moment


@quick_init
@dataclass(frozen=True, slots=True)
class ProcedureFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    performed: datetime | None
    used_text: str = ""
    steroid_injection: bool = False
    based_on: tuple[str, ...] = ()  # the orders it carried out (`basedOn`, as `Type/id`)
    devices: tuple[str, ...] = ()  # the Devices it put in (`focalDevice.manipulated`, see record._put_in)
    status: str = "completed"  # one not completed is a trial under way (`PatientRecord.trials_under_way`)
    precision: str = "time"  # how `performed` is written: with a time, or only its "day", "month" or "year"
    start_unwritten: bool = False  # dated by its performedPeriod's end alone: performed by then, begun before


@quick_init
@dataclass(frozen=True, slots=True)
class ObservationFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    effective: datetime | None
    value: float | bool | str | None
    unit: str | None
    qualifier: str | None = None  # the `scale` component of it-trial-scale-reduction (contract §5)
    precision: str = "time"  # how its date is written: with a time, or only its "day", "month" or "year"
    value_forms: tuple[
        str, ...
    ] = ()  # a coded value's every code, display and text: other ways it is written
    body_site: str = ""  # the muscle a per-muscle score is of (`bodySite`, contract §5); "" for an average

    @property
    def timed(self) -> bool:
        return self.precision == "time"

    def value_text(self) -> str:
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        if isinstance(self.value, float):
            number = unsigned_zero(f"{self.value:g}")
            return quantity(number, self.unit) if self.unit and self.unit not in ("{score}", "1") else number
        if isinstance(self.value, str):
            return self.value.replace("-", " ")  # an answer code ("end-of-battery") read as words
        if self.value_forms:  # coded, but not in the system its code reads (an assessment's: contract §5)
            return f"“{self.value_forms[0]}” in another code system"
        return "no value"


@quick_init
@dataclass(frozen=True, slots=True)
class DeviceFact:
    source: str
    codes: tuple[Code, ...]
    text: str
    label: str


@quick_init
@dataclass(frozen=True, slots=True)
class AllergyFact:
    source: str
    codes: tuple[Code, ...]
    text: str
    label: str
    kind: str | None
    date: datetime | None = None  # onset, else recordedDate: when the reaction is documented to date from
    current: bool = True  # clinicalStatus active or absent; an inactive or resolved one is history
    precision: str = "time"  # how `date` is written: with a time, or only its "day", "month" or "year"


@quick_init
@dataclass(frozen=True, slots=True)
class MedicationExposure:
    """All orders and statements of one ingredient, as one span (contract §3, drug-trial duration)."""

    ingredient: str
    start: datetime
    end: datetime
    sources: tuple[str, ...]

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def latest_assessments(observations: Iterable[ObservationFact]) -> dict[str, ObservationFact]:
    """Per project assessment code (contract §5), the most recent Observation or answer carrying it:
    a dated one beats an undated one; between equal dates the later in the record wins."""
    latest: dict[str, ObservationFact] = {}
    for observation in observations:
        for code in observation.codes:
            if code.system != ASSESSMENT:
                continue
            known = latest.get(code.code)
            if known is None or (
                observation.effective is not None
                and (known.effective is None or observation.effective >= known.effective)
            ):
                latest[code.code] = observation
    return latest


def latest_assessment(observations: Iterable[ObservationFact], code: str) -> ObservationFact | None:
    """The most recent Observation or answer carrying one project assessment code."""
    return latest_assessments(observations).get(code)
