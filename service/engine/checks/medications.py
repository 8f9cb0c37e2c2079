"""Test types about drug trials: how long a drug class was taken, in which forms, and whether it failed.

The routes a drug was given by are value sets (`route-oral`: its codes and its dose-form words); their
parameter kind (`Routes`) lives here, the only family that reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from service.engine.checks.common import (
    COMPARATORS,
    MEDS,
    day_of,
    from_to,
    matching_medications,
    medication_end_words,
    medication_evidence,
    named_value_sets,
    needs,
)
from service.engine.checks.params import (
    MISSING_TEXT,
    VALUE_SETS,
    Comparator,
    Count,
    Flag,
    Number,
    Param,
    ParamKind,
    expected,
    optional,
)
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.facts import MedicationFact
from service.fhirdates import (
    against_months,
    days_unit,
    human_days,
    human_days_in,
    human_span,
    human_span_in,
    months_before,
    start_of_day,
)
from service.record import DEFAULT_ORDER_DAYS
from service.terminology import ROUTE_PREFIX, Terminology, ValueSet

ROUTE_VALUE_SET = ROUTE_PREFIX + "{}"  # the value set of a route: its codes, and the words of its dose forms
# A course is the span from its first start to its last end (contract §3), however far apart its orders:
# a met course names its longest time with no order of the class once that reaches a month, so a reviewer
# sees "2 orders five months apart" or "one in 1928, then 1992-95" for what it is.
GAP_SHOWN_DAYS = 30


def _route_value_set(terminology: Terminology, route: str) -> ValueSet:
    return terminology[ROUTE_VALUE_SET.format(route)]


def _has_route(med: MedicationFact, routes: ValueSet, every_route: Sequence[ValueSet]) -> bool:
    """The drug was given by the route: its dosage's route is one of the route's codes, or the
    route's words are in the route's text; where the dosage names no route of `every_route`, the
    route's words in the drug's name but those a route's text only says (its dose form: "Oral Tablet",
    not the "IV" of a schedule, "C-IV": `ValueSet.names_dose_form`). A dosage's route says how the drug
    was given, whatever its name's dose form: "Buprenorphine 8 MG Tablet" given by the sublingual route
    is no oral course (review23b)."""
    if routes.matches_any(med.route_codes) or routes.matches_text(med.route_text):
        return True
    return not _route_named(med, every_route) and routes.names_dose_form(med.text)


def _route_named(med: MedicationFact, every_route: Sequence[ValueSet]) -> bool:
    """Whether the drug's dosage names a route of `every_route`, coded or in words."""
    if not med.route_codes and not med.route_text:
        return False
    return any(vs.matches_any(med.route_codes) or vs.matches_text(med.route_text) for vs in every_route)


@dataclass(frozen=True)
class Routes(ParamKind):
    """A non-empty list of routes, each with its value set (`ROUTE_VALUE_SET`: `oral` is `route-oral`)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, list) or not value:
            return expected("a non-empty list of routes", value)
        unknown = [r for r in value if ROUTE_VALUE_SET.format(r) not in terminology]
        return f"no value set for the route(s) {', '.join(map(str, unknown))}" if unknown else None


@test_type(
    "medication-duration",
    params={
        "valuesets": VALUE_SETS,
        "comparator": Param(Comparator()),
        "days": optional(Number()),
        "months": optional(Count()),
        "missing": MISSING_TEXT,
        "within_months": optional(Count()),
    },
    reads=MEDS,
    check=lambda params: None if ("days" in params) != ("months" in params) else "give either days or months",
)
def medication_duration(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Span from the earliest start to the latest end of the class's exposures (contract §3), against
    `days`, or `months` counted as calendar months (AMB-44: 1 Jan to 1 Jul is six months).

    A course that ended short of the threshold is not met (contract §3, falling short); one still
    running (an active order whose computed end is after today) may yet reach it: not documented,
    with how far it has come."""
    value_sets = named_value_sets(ctx, params)
    names = {i.name for vs in value_sets for i in vs.ingredients}
    exposures = [e for e in ctx.record.exposures if e.ingredient in names]
    today = start_of_day(ctx.today)
    sources = {s for e in exposures for s in e.sources}
    if params.get("within_months"):
        # the window holds the orders and statements that reach into it, each on its own: an
        # ingredient's exposure spans all its orders, decades apart in a real chart, and would
        # otherwise stretch the course in the window back to the window's start. An active statement
        # with no end begun before the window says the drug is still taken: it adds no span (its end is
        # its date, contract §3) but is kept, so the course is not read as ended (the `running` case). An
        # end written to a month or a year, or moving with such a start, reaches into the window when its
        # last possible day does (`ends_by`: "2025" with a 120-day supply, begun 31 December, runs into
        # 2026): `_bounds` counts it in the course's longest, and in its shortest only when it surely does
        window_start = start_of_day(months_before(ctx.today, int(params["within_months"])))
        inside = [
            m
            for m in ctx.record.medications
            if m.source in sources
            and m.start is not None
            and (_reaches(m, window_start) or m.running_on(today))
        ]
        spans = [
            (m.start, m.end or m.start) for m in inside if m.start is not None and _reaches(m, window_start)
        ]
        if not spans and sources:
            return _none_in_window(params, ctx, sources, window_start, inside)
        course = [m for m in inside if m.start is not None and _reaches(m, window_start)]
        sources = {m.source for m in inside}
    else:
        window_start = None
        spans = [(e.start, e.end) for e in exposures]
        course = [m for m in ctx.record.medications if m.source in sources and m.start is not None]
    if not spans:
        missing = params.get("missing", "no qualifying medication found")
        within = f" within the last {params['within_months']} months" if window_start else ""
        return TestOutcome(Status.NOT_DOCUMENTED, finding=f"{missing}{within}")
    start = min(s for s, _ in spans)
    if window_start is not None:
        start = max(start, window_start)
    latest = max(e for _, e in spans)
    end = min(latest, today)
    meds = sorted((m for m in ctx.record.medications if m.source in sources), key=lambda m: m.start or start)
    # a finding that says the need says every length in the need's unit (review27d: one unit scheme in one
    # finding, not "20 days after the order of 2025: lasted 0 days to 2 weeks 6 days (needs at least 6
    # weeks)"); one met, which does not say it, in `human_span`'s
    unit = _unit(params)
    span = _course_words(meds, start, end, latest, unit)
    # a date written to a month or a year is any day of it (MedicationFact.precision): the course is met
    # only when its shortest possible length is, not met when even its longest falls short
    exact = all(_one_day(m) for m in course)
    shortest, longest = (
        ((start, end), (start, end)) if exact else _bounds(course, window_start, today, _length(params))
    )
    reached, needed = _lasted(params, *shortest)
    # a length known to the day however its dates are written (one order dated to a month with its supply
    # length) is said as it is, not "at most" (review26c), where both bounds judge alike (calendar months
    # may not: 1 Aug to 30 Jan and 31 Aug to 1 Mar are both 182 days)
    exact = exact or (_days(shortest) == _days(longest) and _lasted(params, *longest)[0] == reached)
    at_least = "" if exact else "at least "
    evidence = tuple(medication_evidence(m) for m in meds[:4])
    last = [m for m in meds if (m.end or m.start) == latest]
    # the course's end is the contract's default, not charted: said outside the dates, which a summary
    # drops first (cards/render.py)
    assumed = end == latest and bool(last) and all(m.end_assumed for m in last)
    if_assumed = f" if the last ran {DEFAULT_ORDER_DAYS} days" if assumed else ""
    if reached:
        covered = [
            (m.start, end if m.running_on(today) else m.end or m.start) for m in meds if m.start is not None
        ]
        # a gap's ends would be days the chart may not give: shown only when every date names a day
        gap = _longest_gap(covered, start, end) if all(_one_day(m) for m in meds) else None
        no_order = f"; no order {day_of(gap[0])} → {day_of(gap[1])}" if gap else ""
        met = f"{at_least}{human_span(*shortest)} documented{if_assumed}"
        return TestOutcome(
            Status.MET, evidence, f"{met}, {_course_words(meds, start, end, latest)}{no_order}"
        )
    running = [m for m in meds if m.running_on(today)]
    if start.date() > today.date():  # no time has passed since a first day still to come: not a length
        dated = _course_words(meds, start, latest, latest, unit)
        return TestOutcome(
            Status.NOT_DOCUMENTED if running else Status.NOT_MET,
            evidence,
            f"dated {dated}, after today: the course has not lasted any time ({needed}); check the dates "
            f"of {_records(meds)[0]}",
        )
    if any(m.ordered or m.end_written for m in running):  # an end still to come: how far it has come
        lengths, since = _range_words(shortest, longest, unit, course), _start_words(meds, start)
        if _lasted(params, *longest)[0]:  # its longest reading meets: not short, undated (review27d)
            # said first: a card cuts a long finding to keep the policy's what-to-do whole, and "0 days to 6
            # months so far (since 2026), needs at least…" above "Record the prescriptions covering six
            # months" read as a course short of it (review28d)
            lasted = f"{lengths} so far since {since}, {needed}"
            so_far = f"may already be met: record {_to_record(course, today)} ({lasted})"
        else:
            so_far = f"{lengths} so far (since {since}), {needed}"
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, so_far)
    if running:
        return _open_statement(running, evidence, needed)
    # its longest reaches what its shortest does not, or in some reading no course reaches into the window
    # at all: absent there, never short (contract §3, `_none_in_window`)
    if (not exact and _lasted(params, *longest)[0]) or not _surely_inside(course, window_start):
        unsure = _unsure(span, course, shortest, longest, needed, unit, today)
        return TestOutcome(Status.NOT_DOCUMENTED, evidence, unsure)
    lasted = _length_words(shortest if exact else longest, unit, course)
    lasted = lasted if exact else f"at most {lasted}"
    records, cover = _records(meds)
    if assumed:  # never as the course's end
        ended = f"{records} {cover} {lasted}{if_assumed} ({span}; it gives no supply length), {needed}"
    elif any(m.status == "active" for m in meds):  # still active, its computed end passed (contract §3)
        ended = f"{records} {cover} {lasted} ({span}), {needed}"
    else:
        ended = f"the course ended after {lasted} ({span}), {needed}"
    return TestOutcome(Status.NOT_MET, evidence, ended)


Span = tuple[datetime, datetime]


def _days(span: Span) -> int:
    """The calendar days from a span's first day to its last, as `_lasted` counts them."""
    return max((span[1].date() - span[0].date()).days, 0)


def _records(meds: Sequence[MedicationFact]) -> tuple[str, str]:
    """What a course is read from, as a clinician knows it, and the verb it takes: "the orders" cover,
    "the medication history" (statements) covers, "the orders and the medication history" cover; an
    active statement whose end has passed is no order (review26c)."""
    ordered = any(m.ordered for m in meds)
    stated = any(not m.ordered for m in meds)
    if ordered and stated:
        return "the orders and the medication history", "cover"
    return ("the orders", "cover") if ordered else ("the medication history", "covers")


def _one_day(m: MedicationFact) -> bool:
    """Whether the order's or statement's start and end each name a day (not a month or a year)."""
    return m.start == m.start_by and m.end_by is None


# An order whose end moves with a start dated to a month or a year is placed on each day its start may be
# (`_bounds`): at most this many placements a course (ten orders dated to a year), orders placed alike
# placed once. Past it an order is bounded by what every placement holds (its last possible start to its
# first possible end) and lies within (its first start to its last end): a verdict never contradicted by
# a reading, if less often sure, for a cost that does not grow by 366 an order (review27d: 1,000 distinct
# orders dated to a year took 0.9 s of CPU a test, 5,000 from the EHR's FHIR server 4.4 s)
MOST_PLACEMENTS = 3_660


def _bounds(
    course: Sequence[MedicationFact], window_start: datetime | None, today: datetime, length: Length
) -> tuple[Span, Span]:
    """The course's shortest and longest possible first and last days, its orders and statements dated
    to a month or a year being any day of it (contract §3: from the earliest start to the latest end),
    within the window (`window_start`) and to `today`, as the threshold measures them (`length`).
    Shortest: at least from the latest day the first start may be to the earliest the last end may be,
    and at least any one order's own shortest. Longest: from one's earliest start to another's latest end,
    or one's own longest. An end computed from its start moves with it (`end_tied`): such an order is
    placed on every day its start may be, for equal days need not be equal calendar months (a 182-day
    supply dated "2025-08" is 1 Aug to 30 Jan, short of 6 months, or 31 Aug to 1 Mar, 6 months)."""

    def clamped(first: datetime, last: datetime) -> Span:
        return (first if window_start is None else max(first, window_start)), min(last, today)

    facts = [(m.start, m.start_by, m.end or m.start, m.ends_by or m.start_by, m.end_tied) for m in course]
    # the orders in the window however they are placed: one that may end before it may be no part of the
    # course, so it bounds only the longest
    surely = [i for i, m in enumerate(course) if window_start is None or _surely_inside([m], window_start)]
    # the others' span: from the latest first day to the earliest last day of the orders other than one
    # that surely reach into the window, which every reading holds besides that order's own placement
    latest_first = sorted(surely, key=lambda i: facts[i][1])[:2]  # type: ignore[arg-type, return-value]
    earliest_last = sorted(surely, key=lambda i: facts[i][2], reverse=True)[:2]  # type: ignore[arg-type, return-value]

    def others(i: int) -> tuple[datetime, datetime] | None:
        first = next((facts[k][1] for k in latest_first if k != i), None)
        last = next((facts[k][2] for k in earliest_last if k != i), None)
        return None if first is None or last is None else (first, last)  # type: ignore[return-value]

    def placed_with(day: datetime, day_end: datetime, rest: tuple[datetime, datetime] | None) -> Span:
        """The least a reading holds with the order placed from `day` to `day_end`: its own span with the
        others' (none in the window when it ends before it and no other surely reaches into it)."""
        if rest is None:
            return clamped(day, day_end)
        if window_start is not None and day_end <= window_start:
            return clamped(*rest)
        return clamped(min(day, rest[0]), max(day_end, rest[1]))

    own_short, own_long = [], []
    placements: dict[tuple[Any, ...], tuple[Span, Span]] = {}  # orders placed alike, placed once
    budget = MOST_PLACEMENTS
    for i, (m, (start, start_by, end, end_by, tied)) in enumerate(zip(course, facts, strict=True)):  # type: ignore[misc]
        if tied:
            rest = others(i)
            alike = (start, start_by, m.supply_months, end - start, rest)
            if alike not in placements:
                days = (start_by.date() - start.date()).days + 1
                if days > budget:  # every placement holds the first, and lies within the second
                    placements[alike] = (clamped(start_by, end), clamped(start, end_by))
                else:
                    budget -= days
                    ends = [(day, m.tied_end(day)) for day in _days_from(start, start_by)]
                    least = min((placed_with(day, day_end, rest) for day, day_end in ends), key=length)
                    placements[alike] = (least, max((clamped(*e) for e in ends), key=length))
            own_short.append(placements[alike][0])
            own_long.append(placements[alike][1])
        else:
            own_short.append(clamped(start_by, end))
            own_long.append(clamped(start, end_by))
    spanned = [clamped(min(facts[i][1] for i in surely), max(facts[i][2] for i in surely))] if surely else []  # type: ignore[type-var]
    shortest = max([*spanned, *own_short], key=length)
    firsts = sorted(range(len(facts)), key=lambda i: facts[i][0])[:2]  # type: ignore[arg-type, return-value]
    lasts = sorted(range(len(facts)), key=lambda i: facts[i][3], reverse=True)[:2]  # type: ignore[arg-type, return-value]
    across = [clamped(facts[i][0], facts[j][3]) for i in firsts for j in lasts if i != j]  # type: ignore[arg-type]
    return shortest, max([*own_long, *across], key=length)


def _reaches(m: MedicationFact, window_start: datetime) -> bool:
    """Whether the order or statement may reach into the window: its last possible end is after its
    start."""
    return (m.ends_by or m.start) > window_start  # type: ignore[operator]


def _surely_inside(course: Sequence[MedicationFact], window_start: datetime | None) -> bool:
    """Whether some order or statement of the course reaches into the window however its dates are read:
    its first possible end is after the window's start."""
    return window_start is None or any((m.end or m.start) > window_start for m in course)  # type: ignore[operator]


def _days_from(first: datetime, last: datetime) -> list[datetime]:
    """Every day from `first` to `last`, at `first`'s time of day."""
    return [first + timedelta(days=n) for n in range((last.date() - first.date()).days + 1)]


Length = Callable[[Span], tuple[int, ...]]  # a span's length as a threshold orders spans (`_length`)


def _length(params: Mapping[str, Any]) -> Length:
    """How the test's threshold orders spans (`_bounds`): by their calendar days from the first day to the
    last, and for `months` first by how they compare with it (`against_months`): the days do not order
    calendar months (1 Aug to 30 Jan and 31 Aug to 1 Mar are both 182 days, short of 6 months and 6
    months). A span that ends before it begins (a placement after today, cut at today) is 0 days, as
    `_days` and `_lasted` count it: one count of days."""
    if "months" not in params:
        return lambda span: (_days(span),)
    months = int(params["months"])
    return lambda span: (against_months(span[0].date(), span[1].date(), months), _days(span))


def _length_words(span: Span, unit: str, course: Sequence[MedicationFact]) -> str:
    """A known length, or the most a course may have lasted, in the need's `unit`: where the course holds
    an order whose end moves with a start dated to a month or a year by a number of days (its supply, or
    the default), in days beside months, for it lasts as many days whichever day it began, not as many
    calendar months (1 July + 42 days is 1 month 11 days, 31 January + 42 days 1 month 14 days), and the
    months of the one day `_bounds` placed it on are not true of the others ("at most 1 month 11 days",
    false begun 31 January: review28d). Otherwise in the unit: every reading lies within the longest (the
    earliest start to the latest end), so its months hold of each."""
    if unit in ("months", "years") and any(m.end_tied and m.supply_months is None for m in course):
        return human_days_in(_days(span), unit)
    return human_span_in(*span, unit)


def _range_words(shortest: Span, longest: Span, unit: str, course: Sequence[MedicationFact]) -> str:
    """From the course's shortest possible length to its longest, each end as `_length_words` says it
    (in days beside months where an end moves with a start dated to a month or a year by a number of
    days: "0 days to 1 month 11 days so far (since 2026)" was false begun 31 January, 1 month 14 days:
    review28d); said once when both read alike."""
    low, high = _length_words(shortest, unit, course), _length_words(longest, unit, course)
    return low if low == high else f"{low} to {high}"


def _start_words(meds: Sequence[MedicationFact], start: datetime) -> str:
    """The course's first day in words, no finer than the order or statement that gives it dates it."""
    first = next((m for m in meds if m.start == start), None)
    return day_of(start, first.precision if first else "time")


def _course_words(
    meds: Sequence[MedicationFact], start: datetime, end: datetime, latest: datetime, unit: str | None = None
) -> str:
    """The course's first and last days ("January 2025 → March 2025"), each no finer than the chart
    dates it; its end is today when it runs on past today. An end computed from a start written to a
    month or a year is said by how long after that start, in the threshold's `unit` where it can be
    (`tied_length`), named when it is not the course's first ("5 Jan 2025 → 4 weeks 2 days after the
    order of March 2025", not "… later": review26c), or when the course's first is said otherwise: an
    order of January 2025 and one dated only 2025 both begin on 1 January as read, and "January 2025 → 1
    year later" was false of the year's order begun in December (review28d)."""
    ending = next((m for m in meds if (m.end or m.start) == latest), None)
    last = day_of(end) if end < latest or ending is None else medication_end_words(ending, unit)
    first = _start_words(meds, start)
    if ending is not None and last.endswith(" later") and ending.start is not None:
        began = day_of(ending.start, ending.precision)
        if ending.start != start or began != first:
            last = f"{last.removesuffix(' later')} after the order of {began}"
    return from_to(first, last)


def _unsure(
    span: str,
    course: Sequence[MedicationFact],
    shortest: Span,
    longest: Span,
    needed: str,
    unit: str,
    today: datetime,
) -> str:
    """A course dated to a month or a year whose shortest possible length falls short and whose longest
    reaches the threshold: the chart does not tell, and the finding says which day to record; the
    lengths in the threshold's `unit`."""
    lasted = _range_words(shortest, longest, unit, course)
    return f"dated only to {span}: lasted {lasted} ({needed}); record {_to_record(course, today)}"


def _to_record(course: Sequence[MedicationFact], today: datetime) -> str:
    """The days a course dated to a month or a year needs recorded to tell its length: "the day the course
    began", "… ended", "the days the course began and ended"; not an end that cannot fall before today,
    where the course is cut (an active order's end written to next month), unless no other is named."""
    days = ["began"] if any(m.start != m.start_by for m in course) else []
    ends = [m.end or m.start for m in course if m.end_by is not None and not m.end_tied]
    days += ["ended"] if any(e is not None and e < today for e in ends) or (ends and not days) else []
    return f"the day{'s' if len(days) > 1 else ''} the course {' and '.join(days)}"


def _longest_gap(
    spans: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """The longest time between `start` and `end` that no span covers, when it is `GAP_SHOWN_DAYS` or
    more."""
    longest: tuple[datetime, datetime] | None = None
    covered = start
    for first, last in sorted(spans):
        first, last = max(first, start), min(last, end)
        if first > covered and (longest is None or first - covered > longest[1] - longest[0]):
            longest = (covered, first)
        covered = max(covered, last)
    if longest is None or (longest[1] - longest[0]).days < GAP_SHOWN_DAYS:
        return None
    return longest


def _open_statement(
    running: list[MedicationFact], evidence: tuple[Evidence, ...], needed: str
) -> TestOutcome:
    """Open statements and no order: a statement's end is its date (contract §3), so how long the drug
    was taken is unknown, not short."""
    first = min((m for m in running if m.start), key=lambda m: m.start)  # type: ignore[arg-type, return-value]
    since = day_of(first.start, first.precision)
    return TestOutcome(
        Status.NOT_DOCUMENTED,
        evidence,
        f"a medication statement records it since {since} with no end, so how long it was "
        f"taken is not documented ({needed}): record the orders or when it ended",
    )


def _none_in_window(
    params: Mapping[str, Any],
    ctx: EvaluationContext,
    sources: set[str],
    window_start: datetime,
    running: list[MedicationFact],
) -> TestOutcome:
    """The class is on record (`sources`) but no course reaches into the window: in it the drug is
    absent, so the criterion is not documented (contract §3: "not documented" is for what is absent;
    a class with no record at all is not worse off), and the finding names the last course and its
    end, never "none found". Open statements begun before the window (`running`) leave how long the
    drug was taken in it unknown."""
    needed = _threshold(params)
    if running:
        return _open_statement(running, tuple(medication_evidence(m) for m in running[:4]), needed)
    meds = [m for m in ctx.record.medications if m.source in sources and m.start is not None]
    last = max(meds, key=lambda m: (m.end or m.start, m.start))  # type: ignore[operator, return-value]
    if_assumed = f" if it ran {DEFAULT_ORDER_DAYS} days" if last.end_assumed else ""
    return TestOutcome(
        Status.NOT_DOCUMENTED,
        (medication_evidence(last),),
        f"none in the last {params['within_months']} months (since {day_of(window_start)}): the last course, "
        f"{last.label}, ended {medication_end_words(last, _unit(params))}{if_assumed}, {needed}",
    )


def _threshold(params: Mapping[str, Any]) -> str:
    """The test's threshold in words ("needs at least 6 months")."""
    if "months" in params:
        return needs(params["comparator"], int(params["months"]), "months")
    return needs(params["comparator"], human_days(float(params["days"])))


def _unit(params: Mapping[str, Any]) -> str:
    """The unit the test's threshold is said in (`_threshold`): "months", else `days_unit`'s."""
    return "months" if "months" in params else days_unit(float(params["days"]))


def _lasted(params: Mapping[str, Any], start: datetime, end: datetime) -> tuple[bool, str]:
    """Whether the span from `start` to `end` reaches the test's threshold, and the threshold in words."""
    comparator = params["comparator"]
    if "months" in params:  # calendar months, by the days (AMB-44), as condition-duration counts
        against = against_months(start.date(), end.date(), int(params["months"]))
        return COMPARATORS[comparator](against, 0), _threshold(params)
    # calendar days, as the card words the span (human_span) and as months are judged: an order written
    # at 15:00 whose validity ends on a date 42 days later is 6 weeks, not 41.4 days (review25e)
    return COMPARATORS[comparator](_days((start, end)), float(params["days"])), _threshold(params)


@test_type("medication-routes", params={"valuesets": VALUE_SETS, "routes": Param(Routes())}, reads=MEDS)
def medication_routes(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Every route in `routes` is documented among matching drugs (from the route, coded or in words, or
    the dose form)."""
    meds = matching_medications(ctx, named_value_sets(ctx, params))
    wanted = list(params["routes"])
    found = {
        route: next(
            (
                m
                for m in meds
                if _has_route(m, _route_value_set(ctx.terminology, route), ctx.terminology.route_value_sets)
            ),
            None,
        )
        for route in wanted
    }
    evidence = tuple(medication_evidence(m) for m in found.values() if m is not None)
    missing = [route for route, m in found.items() if m is None]
    if not missing:
        return TestOutcome(Status.MET, evidence, f"{' and '.join(wanted)} forms documented")
    return TestOutcome(Status.NOT_DOCUMENTED, evidence, f"no {' or '.join(missing)} form documented")


@test_type(
    "medication-failure",
    params={"valuesets": VALUE_SETS, "intolerance_only": optional(Flag())},
    reads=(*MEDS, "AllergyIntolerance"),
)
def medication_failure(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """Failure or intolerance on record: a stopped order (MedicationRequest) of the class with a reason,
    or an intolerance to it (contract §3); with `intolerance_only`, the intolerance alone (a stopped
    order's reason may be that the drug failed). The outcome assessment is another form of the same
    fact: a policy lists it beside this test under `forms:`, so the most recent of them decides; each
    line carries its date."""
    value_sets = named_value_sets(ctx, params)
    intolerance_only = bool(params.get("intolerance_only"))
    meds = [] if intolerance_only else matching_medications(ctx, value_sets)
    stopped = [m for m in meds if m.ordered and m.status == "stopped" and m.status_reason]
    intolerant = [
        a
        for a in ctx.record.allergies
        if a.kind == "intolerance"
        and any(
            vs.matches_any(a.codes) or any(i.names_substance(a.codes, a.text) for i in vs.ingredients)
            for vs in value_sets
        )
    ]
    evidence = [_stopped_evidence(m) for m in _latest_first(stopped, lambda m: m.start)[:3]]
    evidence += [
        Evidence(f"intolerance: {a.label}", a.source, a.date, a.precision)
        for a in _latest_first(intolerant, lambda a: a.date)[:2]
    ]
    what = "intolerance" if intolerance_only else "failure or intolerance"
    if evidence:
        return TestOutcome(Status.MET, tuple(evidence), f"{what} documented")
    return TestOutcome(Status.NOT_DOCUMENTED, finding=f"no {what} documented")


def _latest_first(facts: list[Any], date: Callable[[Any], datetime | None]) -> list[Any]:
    """The facts newest first (undated last), so the evidence kept shows the date that decides."""
    return sorted(facts, key=lambda f: (date(f) is not None, date(f) or datetime.min), reverse=True)


def _stopped_evidence(m: MedicationFact) -> Evidence:
    """A stopped order, dated as contract §3 dates a MedicationRequest: by its authoredOn. Its end is
    when its supply was due to run out, not when it was stopped, and must not outrank a later
    assessment."""
    return Evidence(f"{m.label} stopped: {m.status_reason}", m.source, m.start, m.precision)
