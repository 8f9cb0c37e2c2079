"""Pain scores searched by time, so a chart with 20,000 of them costs about what one with 200 costs.

Pain scores are the one kind of Observation a chart can hold thousands of (every nursing shift
records one), and the policies read only two things of them (clinical-data-contract.md §3-§4):

- the most recent usable score (`observation-value` criteria), and
- the scores from 30 days before the most recent intrathecal trial to 48 hours after it (§4).

So the service does not page through them all. It asks for the recent ones (`date=ge` now minus
`RECENT_DAYS`) alongside the other searches; then, only when that window does not already answer
both questions, one more round: a date-bounded search for the trial's window, and/or the newest
page of all the scores whose status counts (`_sort=-date`, first page only, used as such only when
the server shows it sorted; not bounded by date, so that a score with no date, which the engine reads
when no dated score is usable, is on it). That page is asked again longer (`OLDER_RUNGS`) only while
it does not settle the newest usable score (`newest_settled`: a page of scores of no use, off the
scale or with no value, holds none); past the longest, the scores could not be checked, which is
said (never read as none). Neither relies on the server's sort for the common case (many servers
do not sort Observations, or sort them slowly), and everything the policies read is still there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from service.codes import CANONICAL_SYSTEM, LOINC
from service.facts import ObservationFact
from service.fhirdates import shifted
from service.record import OBSERVATION_STATUSES, build_record, observation_facts
from service.terminology import Terminology
from service.trial import BASELINE_MAX_AGE, POST_WINDOW

RECENT_DAYS = 60
EDGE = timedelta(days=1)  # windows overlap by a day: a day-precision date at a boundary is never lost
OLDER_PAGE = 50  # the newest older scores asked for when the recent window holds no usable one
OLDER_RUNGS = 3  # that page, then ten times as long, then a hundred: past it, "could not be checked"
COUNTED = ",".join(sorted(OBSERVATION_STATUSES))  # the statuses of the scores that count (contract §3)
PAIN_KEY = "painScores"
INSTANT = "%Y-%m-%dT%H:%M:%SZ"


def fhir_instant(moment: datetime) -> str:
    """A FHIR dateTime search value with seconds and a time zone (UTC when `moment` has none)."""
    return _aware(moment).astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def recent_since(today: date) -> datetime:
    """The start of the recent window: midnight UTC `RECENT_DAYS` before `today` (the call's date:
    service/call_day.py), the same for every call of a day, so that the search (and its cached
    answer) is the same for order-select and order-sign."""
    return datetime.combine(today - timedelta(days=RECENT_DAYS), time(), UTC)


def within(params: Mapping[str, Any], *dates: str) -> dict[str, str | list[str]]:
    """The search parameters with date bounds added (`date` repeated means AND)."""
    bounded: dict[str, str | list[str]] = dict(params)
    bounded["date"] = list(dates) if len(dates) > 1 else dates[0]
    return bounded


def is_pain_score(resource: Mapping[str, Any], pain_codes: frozenset[str]) -> bool:
    """An Observation coded with one of the pain-severity LOINC codes."""
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict)
        and c.get("system") == CANONICAL_SYSTEM[LOINC]
        and isinstance(c.get("code"), str)
        and c["code"] in pain_codes
        for c in codings
    )


def missing_windows(
    patient_id: str,
    resources: Mapping[str, list[dict[str, Any]]],
    recent_pain: Iterable[dict[str, Any]],
    since: datetime,
    terminology: Terminology,
) -> tuple[tuple[datetime, datetime] | None, bool]:
    """What the recent pain scores leave unanswered: the trial window not covered by them (start,
    end), if any, and whether the most recent usable score must be looked for before `since`.

    Uses the record's own reading (build_record) of the Procedures and of the recent scores, so
    "the most recent trial" and "a usable score" mean exactly what the engine will take them for (a
    score off the 0-10 scale is none); the scores are read only until a usable one is found. Only a
    usable score dated at or after `since` answers the second question: the recent search
    (`date=ge`) also finds a score whose period, or written month or year, reaches into the window
    from before it, which contract §3 dates by its start (a partial date by its first instant), and a
    score dated between that start and `since`, which the search does not find, is more recent than
    it."""
    partial = build_record(patient_id, {"Procedure": resources.get("Procedure", [])}, terminology)
    trial = partial.trial.procedure
    window = None
    if trial is not None and trial.performed is not None:
        start = shifted(_aware(trial.performed), -BASELINE_MAX_AGE)
        if start < since:
            end = min(shifted(_aware(trial.performed), POST_WINDOW), since)
            window = (shifted(start, -EDGE), shifted(end, EDGE))
    found = any(
        usable(o) and _at_or_after(o.effective, since) for o in observation_facts(recent_pain, terminology)
    )
    return window, not found


def usable(score: ObservationFact) -> bool:
    """Whether a pain score as the record reads it (`observation_facts`: one off the 0-10 scale is left
    out) is usable: it holds a number (contract §3). The one meaning of "a usable score" for both
    questions the window asks (`missing_windows`, `newest_settled`)."""
    return isinstance(score.value, float) and not isinstance(score.value, bool)


def _at_or_after(moment: datetime | None, since: datetime) -> bool:
    """Whether `moment` (a record's date: aware, service/fhirdates.py) is dated at or after `since`."""
    return moment is not None and _aware(moment) >= _aware(since)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def newest_first(params: Mapping[str, Any], recent: int, rung: int = 0) -> dict[str, str | list[str]]:
    """The newest page of all the scores whose status counts (first page only, when the server sorts),
    with `OLDER_PAGE` (times ten to the `rung`) besides the `recent` ones the recent search found. A
    score of another status is none (contract §3): the server leaves it out, so that a chart's
    preliminary or entered-in-error scores take no room on the page. Not bounded by date: a date search
    never finds a score with no date (none at all, or one the server cannot read), which contract §3
    leaves undated and the engine reads when no dated score is usable (dated beats undated). FHIR
    leaves where it sorts to the server: after the dated ones (sekmet-fhir), on the page when the chart
    holds fewer dated ones than the page; before them, on it anyway. The recent scores sort first
    (they are the newest, or a period or month reaching into their window), so the page is longer by
    as many: it still holds the `OLDER_PAGE` newest of the others."""
    count = OLDER_PAGE * 10**rung + recent
    return {**params, "status": COUNTED, "_sort": "-date", "_count": str(count)}


def newest_settled(page: Sequence[Any], whole: bool, terminology: Terminology) -> bool:
    """Whether the newest page of the scores (`page`, in the server's order: newest first, by the start
    of each score's date, as contract §3 dates it) settles the most recent usable score as reading
    every score would: the server gave all it has (`whole`: fewer than asked), or the page holds a
    usable dated score and, after it, a score dated before it. Every score past the page is then
    older still; one of the same moment may not be (the record takes one of equal moments by its
    reference), nor may a dated one where the page holds only undated ones (the engine reads an
    undated score only when no dated one is usable, a server may sort them first) or none."""
    if whole:
        return True
    best: datetime | None = None
    for fact in observation_facts(page, terminology):
        if fact.effective is None:
            continue
        moment = _aware(fact.effective)
        if best is not None and moment < best:
            return True
        if usable(fact):
            best = moment if best is None else max(best, moment)
    return False


def unsettled(asked: int) -> str:
    """Why the scores could not be checked, when the longest newest page (`asked` long) did not settle
    the most recent usable score: reading on would be reading the chart whole."""
    return (
        f"none of the newest {asked} pain scores is surely the most recent usable one (older ones not read)"
    )


def known_ids(resources: list[dict[str, Any]]) -> set[str]:
    """The ids of resources (a resource whose id is not a string has none to be known by)."""
    return {r["id"] for r in resources if isinstance(r.get("id"), str)}


def without_known(resources: list[dict[str, Any]], known: set[str]) -> list[dict[str, Any]]:
    """The resources whose ids are not in `known` yet, which then holds theirs too (windows overlap
    by a day: each score counts once)."""
    fresh = [r for r in resources if not isinstance(r.get("id"), str) or r["id"] not in known]
    known.update(known_ids(fresh))
    return fresh


def since_of(params: Mapping[str, Any]) -> datetime:
    """The lower bound of the recent scores' search (its `date=ge…`)."""
    return datetime.strptime(str(params["date"]).removeprefix("ge"), INSTANT).replace(tzinfo=UTC)
