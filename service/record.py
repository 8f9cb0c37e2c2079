"""The PatientRecord: normalised facts read from the EHR's FHIR resources, one per clinical fact.

The engine never sees raw FHIR. This module applies the contract's common filters (section 3:
which statuses count, which date is a resource's date), reduces codings to `Code`s, and keeps
the source reference of every fact so cards and audit records can cite it. Resource types that
could not be fetched are listed in `unavailable`, so that absence of evidence is never mistaken
for evidence of absence; a kind only some codes of which could not be read (a QuestionnaireResponse
left out answers only its own items) is listed by those codes in `unavailable_codes`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from service.codes import (
    ASSESSMENT,
    DOSAGES,
    Code,
    Routes,
    codings,
    concept_text,
    first_display,
    names_a_dosage,
    neuraxial_order,
    route_texts,
)
from service.facts import (
    AllergyFact,
    ConditionFact,
    DeviceFact,
    MedicationExposure,
    MedicationFact,
    ObservationFact,
    ProcedureFact,
    latest_assessments,
)
from service.fhirdates import (
    SPANS,
    days_later,
    human_date_to,
    human_quantity,
    last_day_written,
    parse_datetime,
    precision,
    supply_end,
    supply_months,
)
from service.modifiers import may_carry, modifies
from service.references import chart_lookup, local_reference
from service.relevance import ReadCodes, read_codes
from service.shapes import as_dict, as_list, dicts, medication_concept, reference_of
from service.terminology import (
    DEVICE_NOT_PUT_IN,
    DEVICE_PUT_IN,
    NEURAXIAL_ROUTES,
    DeviceActions,
    IngredientFinder,
    Terminology,
    ValueSet,
)
from service.trial import TrialResult, trial_result
from service.wording import clipped, number

CLINICAL_TYPES = (
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "Observation",
    "Device",
    "AllergyIntolerance",
    "QuestionnaireResponse",
)
log = logging.getLogger(__name__)
_ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_MED_REQUEST_STATUSES = {"active", "completed", "stopped"}
_MED_STATEMENT_STATUSES = {"active", "completed", "stopped", "on-hold"}  # taken (on hold: paused)
OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})  # contract §3: an Observation counts
_QUESTIONNAIRE_STATUSES = {"completed", "amended"}
_DONE = frozenset({"completed"})  # contract §3: a Procedure counts when completed
# FHIR R4's FHIRDeviceStatus, Device.status's required binding: a Device counts when active (contract §2,
# §3); another code of these is no device in place, as no status is (bbb2ad6)
DEVICE_STATUSES = frozenset({"active", "inactive", "entered-in-error", "unknown"})
# A trial Procedure begun or about to begin, by FHIR R4's EventStatus (Procedure.status): `in-progress`
# "the event is currently occurring", `on-hold` "temporarily stopped but expected to resume",
# `preparation` "the core event has not started yet, but some staging activities have begun". Not
# evidence of anything (contract §3 counts a completed Procedure): read only so that a second trial is
# not proposed beside it, and so that its results read as awaited (review21b M2). `stopped`, `not-done`,
# `entered-in-error` and `unknown` say no trial is coming.
TRIAL_UNDER_WAY = frozenset({"preparation", "in-progress", "on-hold"})
DEFAULT_ORDER_DAYS = 30
# the value sets the record reads by name; of the route value sets, every one is read (what a drug
# order's route says, `Terminology.routes`): without the neuraxial one no route would say the drug is the
# pump's, and without the oral and injectable ones a route typed "Oral" or "IV" would say nothing, and an
# intrathecal-sounding drug given so would be the pump's
RECORD_VALUE_SETS = (
    "steroids",
    "trial-procedures",
    "pain-score",
    NEURAXIAL_ROUTES,
    "route-oral",
    "route-injectable",
    DEVICE_PUT_IN,  # what a Procedure's device action says (`Terminology.device_actions`, `_put_in`)
    DEVICE_NOT_PUT_IN,
)


CodesOf = Callable[[Any], tuple[Code, ...]]  # the recognised codes of a CodeableConcept (`codings`)


def _codes_reader() -> CodesOf:
    """`codings` for one chart, each distinct coding made into a Code once: a chart repeats its
    codings (every visit's diagnosis, every order's drug). A coding's Code depends on its system,
    code and display alone."""
    known: dict[tuple[Any, Any, Any], Code | None] = {}

    def codes_of(concept: Any) -> tuple[Code, ...]:
        if not isinstance(concept, dict):
            return ()
        items = concept.get("coding") if "coding" in concept else [concept]
        found = []
        for coding in items if isinstance(items, list) else ():
            if not isinstance(coding, dict):
                continue
            try:
                key = (coding.get("system"), coding.get("code"), coding.get("display"))
                code = known[key]
            except KeyError:
                code = known[key] = _code(coding)
            except TypeError:  # an element JSON makes a list or object of: unhashable, read as it is
                code = _code(coding)
            if code is not None:
                found.append(code)
        return tuple(found)

    return codes_of


DatesOf = Callable[[Any], datetime | None]  # a FHIR date or dateTime as `parse_datetime` reads it


def _dates_reader() -> DatesOf:
    """`parse_datetime` for one chart, each distinct text read once: a chart repeats its dates (an
    encounter's diagnoses, orders, procedures and observations share its instant). Made by each
    `build_record` call and dropped with it, as `_codes_reader` is: a module-level cache would keep one
    request's dates for the next (tests/integration/test_no_leakage.py)."""
    known: dict[str, datetime | None] = {}

    def dates_of(value: Any) -> datetime | None:
        if type(value) is not str:  # a str subclass, or what is no text, read as `parse_datetime` reads it
            return None if value is None else parse_datetime(value)
        if value in known:
            return known[value]
        moment = known[value] = parse_datetime(value)
        return moment

    return dates_of


def _code(coding: dict[str, Any]) -> Code | None:
    """The Code of one coding, or None when `codings` skips it."""
    return next(codings(coding if "coding" not in coding else {"coding": [coding]}), None)


def _status_code(concept: Any) -> str | None:
    """The first code of a status concept's codings (a Condition's clinicalStatus, verificationStatus).
    Written out, without `dicts`: read two or three times for each of a chart's conditions."""
    if not isinstance(concept, dict) or not isinstance(found := concept.get("coding"), list):
        return None
    for coding in found:
        if isinstance(coding, dict) and isinstance(code := coding.get("code"), str):
            return str(code)
    return None


@dataclass(frozen=True)
class PatientRecord:
    """Everything the engine may read about one patient, as of one request."""

    patient_id: str
    conditions: tuple[ConditionFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    exposures: tuple[MedicationExposure, ...] = ()
    procedures: tuple[ProcedureFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    devices: tuple[DeviceFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    trial: TrialResult = field(default_factory=lambda: TrialResult(None, None, None, reason="no data"))
    # the trial Procedures begun or being prepared and not completed (`TRIAL_UNDER_WAY`): evidence of
    # nothing, only that a trial is coming (service/next_steps.py `trials_under_way`)
    trials_under_way: tuple[ProcedureFact, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    assessments: Mapping[str, ObservationFact] = field(default_factory=dict)
    # kind → code → why: the records of a kind left out that are read only by those codes (`unread`)
    unavailable_codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # removal CPT code → the date (None: none read) and how it is written of each of its removals left out of
    # `REMOVALS` by code, every one kept (`removal_unread` asks whether any may undo; review30a L1)
    removals_left_out: Mapping[str, tuple[tuple[datetime | None, str], ...]] = field(default_factory=dict)

    by_code: Mapping[tuple[str, str], tuple[ObservationFact, ...]] = field(default_factory=dict)
    server: str | None = None  # the FHIR server the facts were read from (None: not known)
    deceased: bool = False  # the Patient is recorded deceased (deceasedBoolean, or a deceasedDateTime)
    deceased_on: str = ""  # when, if the chart says, as written (a day, a month or a year)

    def local(self, reference: Any) -> str | None:
        """`Type/id` of the record's resource a reference names, as its facts' `source`s are written;
        None for one written as another server's URL than the record's (`local_reference`)."""
        return local_reference(reference, self.server)

    def before(self, orders: Collection[str], ordered: Iterable[Any] = ()) -> PatientRecord:
        """The record as it stood before `orders` (`Type/id`) were carried out: without a Procedure
        done for one of them (its `basedOn`), nor the Devices that Procedure put in, nor the Devices
        the orders are coded by (`ordered`: a DeviceRequest's `codeReference`, `orders.named_device`;
        a Device an order cites otherwise, as its reason or supporting information, may be the pump it
        replaces). An
        order still open when judged after it was done (encounter-discharge after the implant) is
        judged on the chart it was placed on: the pump it put in, or the hardware it orders, is not
        one "already in place" (contract §2; contract23 M2)."""
        done = [p for p in self.procedures if not set(orders).isdisjoint(p.based_on)]
        begun = [p for p in self.trials_under_way if not set(orders).isdisjoint(p.based_on)]
        named = {self.local(reference) for reference in ordered} - {None}
        if not done and not begun and not named:
            return self
        placed = named | {device for p in done for device in p.devices}
        return replace(
            self,
            procedures=tuple(p for p in self.procedures if p not in done),
            devices=tuple(d for d in self.devices if d.source not in placed),
            trials_under_way=tuple(p for p in self.trials_under_way if p not in begun),
        )

    def unread(self, kind: str, codes: Iterable[str] | None = None) -> str | None:
        """Why `kind` is not wholly available to a reader of `codes` (the assessment codes it reads;
        None: a reader of any), or None when it is: the whole kind could not be read (`unavailable`),
        or records of it read by one of those codes were left out (`unavailable_codes`)."""
        return next(iter(self.unread_by_reason(kind, codes)), None)

    def unread_by_reason(self, kind: str, codes: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
        """`unread`, each reason with the codes among `codes` (None: any) whose records it left out, so
        that a card can name the assessments whose answers it could not read; () for a reason the
        whole kind could not be read. Empty when the kind is wholly available to that reader."""
        if kind in self.unavailable:
            return {self.unavailable[kind]: ()}
        by_code = self.unavailable_codes.get(kind) or {}
        found: dict[str, tuple[str, ...]] = {}
        for code in dict.fromkeys(by_code if codes is None else codes):
            if code in by_code:
                found[by_code[code]] = (*found.get(by_code[code], ()), code)
        return found

    def removal_unread(
        self, codes: Iterable[str], may_undo: Callable[[str], bool] | None = None
    ) -> str | None:
        """Why a removal of one of `codes` (removal CPT codes) may have been left out of the record, so that
        what it would undo cannot be told to be in place (`REMOVALS`); None when every one was read. With
        `may_undo` (whether a removal of a code left out, as `removals_left_out` dates them, undoes or may
        undo it by the very rule the caller weighs a removal read by, engine/removals.py, contract §2 "with
        no later 62365", §3 "with no later removal"), only a code it says so of counts; a
        Procedure that could not be read at all, or procedures not fetched, may hold one of any day, and so
        may a code no removal left out dates."""
        codes = tuple(codes)
        if codes and may_undo is not None and REMOVALS not in self.unavailable:
            codes = tuple(code for code in codes if code not in self.removals_left_out or may_undo(code))
        return self.unread(REMOVALS, codes) if codes else None

    def latest_assessment(self, code: str) -> ObservationFact | None:
        """The most recent Observation (or questionnaire answer) of a project assessment code."""
        return self.assessments.get(code)

    def observations_with(self, system: str, code: str) -> tuple[ObservationFact, ...]:
        """The observations carrying one code, in record order."""
        return self.by_code.get((system, code), ())


def _onset(resource: Mapping[str, Any], dates_of: DatesOf) -> datetime | None:
    """`onsetDateTime`, else `onsetPeriod.start` (a Condition's or an AllergyIntolerance's); a malformed
    period raises, so the resource is dropped and its type marked unreadable."""
    return dates_of(_onset_written(resource, dates_of))


def _onset_written(resource: Mapping[str, Any], dates_of: DatesOf) -> Any:
    """The date `_onset` reads, as written (its `precision` says whether it is a day, a month or a year)."""
    written = resource.get("onsetDateTime")
    return written if dates_of(written) is not None else (resource.get("onsetPeriod") or {}).get("start")


def condition_counts(resource: Mapping[str, Any]) -> bool:
    """Contract §3's filter for a Condition: its clinicalStatus absent or active, recurrence or
    relapse, and it is not refuted or entered in error."""
    return _counts(_status_code(resource.get("clinicalStatus")), resource)


def medication_request_counts(resource: Mapping[str, Any]) -> bool:
    """Contract §3's filter for a MedicationRequest: its status active, completed or stopped (history);
    not entered in error, cancelled, a draft or on hold."""
    return resource.get("status") in _MED_REQUEST_STATUSES


def _counts(clinical: str | None, resource: Mapping[str, Any]) -> bool:
    """`condition_counts`, its clinicalStatus already read."""
    if clinical is not None and clinical not in _ACTIVE_CONDITION:
        return False
    return _status_code(resource.get("verificationStatus")) not in _EXCLUDED_VERIFICATION


def _condition(resource: Mapping[str, Any], codes_of: CodesOf, dates_of: DatesOf) -> ConditionFact | None:
    clinical = _status_code(resource.get("clinicalStatus"))
    if not _counts(clinical, resource):
        return None
    codes = codes_of(resource.get("code"))
    written = _onset_written(resource, dates_of)
    onset, recorded = dates_of(written), dates_of(resource.get("recordedDate"))
    if onset is None:
        written = resource.get("recordedDate")
    return ConditionFact(
        reference_of(resource),
        codes,
        first_display(resource.get("code"), codes),
        onset,
        recorded,
        clinical is not None,
        precision=precision(written),
        onset_said="" if onset is not None else _onset_said(resource, dates_of),
        **({} if onset is not None else _onset_by(resource, dates_of)),
    )


def _onset_by(resource: Mapping[str, Any], dates_of: DatesOf) -> dict[str, Any]:
    """`ConditionFact.onset_by` and `onset_by_to` of a Condition with no onset date: its onsetPeriod's end,
    if one is read (a date contract §3 does not date it by); none else."""
    end = as_dict(resource.get("onsetPeriod")).get("end")
    ended = dates_of(end)
    return {} if ended is None else {"onset_by": ended, "onset_by_to": precision(end)}


_ONSET_SAID_MOST = 30  # characters of an onsetString a card quotes (the rest "…"): the line's room is short


def _onset_said(resource: Mapping[str, Any], dates_of: DatesOf) -> str:
    """A Condition's onset as its chart gives it where no date is read from it (an onsetAge, an
    onsetRange of ages, an onsetString, an onsetPeriod with an end only), in a card's words: "onset at age
    60, no date", "onset at age 50-60, no date", "onset “childhood”, no date", "onset by 2 Feb 2019, no
    start date"; "" for none, or one malformed. Chart words: a card escapes them as it escapes a
    diagnosis's display (cards/markdown.plain)."""
    if (age := _age(resource.get("onsetAge"))) is not None:
        return f"onset at age {age}, no date"
    onset_range = as_dict(resource.get("onsetRange"))
    low, high = _age(onset_range.get("low")), _age(onset_range.get("high"))
    if low is not None and high is not None:
        if (" " in low) != (" " in high):  # one in years, said bare, the other not: each with its unit
            low, high = _age(onset_range.get("low"), False), _age(onset_range.get("high"), False)
        return f"onset at age {low}-{high}, no date"
    if low is not None or high is not None:
        return f"onset at age {low} or over, no date" if low is not None else f"onset by age {high}, no date"
    if isinstance(said := resource.get("onsetString"), str) and said.strip():
        return f"onset “{clipped(said, _ONSET_SAID_MOST)}”, no date"
    end = as_dict(resource.get("onsetPeriod")).get("end")
    if (ended := dates_of(end)) is not None:
        return f"onset by {human_date_to(ended, precision(end))}, no start date"
    return ""


def _age(value: Any, bare_years: bool = True) -> str | None:
    """An Age (a Quantity of time) as an age is said: "60" in years (`bare_years`; else "60 years"), "6
    months" in another unit (`human_quantity`); None for none, or one with no number or no time unit."""
    age = as_dict(value)
    amount = age.get("value")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount < 1000:
        return None
    unit = age.get("code") or age.get("unit") or "a"
    said = human_quantity(amount, unit if isinstance(unit, str) else None)
    if said is None:
        return None
    return number(amount) if bare_years and said.endswith(("year", "years")) else said


Lookup = Callable[[Any], Any]  # the chart's resource a reference names (`chart_lookup`), else None


def _drug(resource: Mapping[str, Any], medication: Lookup) -> dict[str, Any] | None:
    """The drug of a request or statement; a referenced Medication is the one `medication` finds among
    the chart's (`chart_lookup`: by `Type/id`, none of another FHIR server's)."""
    return medication_concept(resource, medication)


def _routes(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The routes a drug order's or statement's dosages name (those written as an object: a route of
    another JSON type says nothing, no words and no codes)."""
    if not names_a_dosage(resource):
        return []  # most orders of a chart name no dosage at all: nothing to read
    dosages = [dosage for key in DOSAGES for dosage in dicts(resource.get(key))]
    return [route for d in dosages if isinstance(route := d.get("route"), dict)]


Named = Callable[[str, tuple[Code, ...]], frozenset[str]]  # a drug's known ingredients, by text and codes
Neuraxial = Callable[[Mapping[str, Any], str], bool]  # whether it is given so (`_neuraxial_reader`)
# how the record reads a drug: its codes, its known ingredients, its routes' words, and whether it is given
# intrathecally or epidurally (`codes.neuraxial_order`), each the catalog's
DrugReader = tuple["CodesOf", Named, Routes, Neuraxial]


# how an order's or statement's dates are written: the start's precision, the end's, the end's last day when
# later than its first, and whether the end moves with the start (computed from it, or none written)
Dated = tuple[str, str, datetime | None, bool]


def _medication_fact(
    resource: Mapping[str, Any],
    concept: Any,
    start: datetime | None,
    end: datetime | None,
    reason: Any,
    reader: DrugReader,
    end_assumed: bool = False,
    dated: Dated = ("time", "time", None, False),
    supply_months: int | None = None,
) -> MedicationFact:
    """`dated`: how the start and the end are written, the last day the end may be when later than `end`,
    and whether the end moves with the start (MedicationFact.precision, end_precision, end_by, end_tied);
    `supply_months`: a tied end's supply in calendar months."""
    reason_text = None
    if reason is not None:  # most orders give none
        reason_text = concept_text(reason) or next(
            (c["code"] for c in dicts(as_dict(reason).get("coding")) if isinstance(c.get("code"), str)), None
        )
    text = concept_text(concept)
    codes_of, named, routes, neuraxial = reader
    codes = codes_of(concept)
    given = _routes(resource)
    route_text: str = ""
    route_codes: tuple[Code, ...] = ()
    if given:  # most orders of a chart name no route
        route_text = " | ".join(text for route in given for text in route_texts(route, routes) if text)
        route_codes = tuple(c for route in given for c in codes_of(route))
    # by position, in the fields' order: a class called with seventeen keywords matches each against its
    # parameters, ~9,000 instructions a fact more than by position (the chart's hundred drug orders)
    return MedicationFact(
        reference_of(resource),  # source
        codes,
        text,
        first_display(concept, codes),  # label
        resource.get("status", ""),  # status
        start,
        end,
        reason_text,  # status_reason
        route_text,
        named(text, codes),  # ingredients
        route_codes,
        neuraxial(resource, text),  # a pump or trial drug, not a systemic one
        end_assumed,
        dated[0],  # precision
        dated[1],  # end_precision
        dated[2],  # end_by
        dated[3],  # end_tied
        supply_months,
    )


def _medication_request(
    resource: Mapping[str, Any], medication: Lookup, reader: DrugReader, dates_of: DatesOf
) -> MedicationFact | None:
    if not medication_request_counts(resource):
        return None
    concept = _drug(resource, medication)
    written = resource.get("authoredOn")
    start = dates_of(written)
    dispense = resource.get("dispenseRequest") or {}
    written_end = (dispense.get("validityPeriod") or {}).get("end")
    end = dates_of(written_end)
    assumed = False
    months = None  # a tied end's supply in calendar months (MedicationFact.supply_months)
    dated = _dated(start, precision(written), end, precision(written_end))
    if end is None and start is not None:
        supply = dispense.get("expectedSupplyDuration")
        supplied = supply_end(start, supply)
        assumed = supplied is None
        end = supplied or days_later(start, DEFAULT_ORDER_DAYS)
        # an end computed from a start written to a month or a year is as unsure as the start: from its
        # first day's end to its last day's
        by = last_day_written(start, dated[0])
        if by != start:
            dated = (dated[0], dated[0], supply_end(by, supply) or days_later(by, DEFAULT_ORDER_DAYS), True)
            months = supply_months(supply)
    return _medication_fact(
        resource, concept, start, end, resource.get("statusReason"), reader, assumed, dated, months
    )


def _dated(start: datetime | None, start_to: str, end: datetime | None, end_to: str) -> Dated:
    """How a course's start and written end are dated (`_medication_fact`'s `dated`): the end's last day
    when it is written to a month or a year; an absent end is the start's, and moves with it."""
    if end is None:
        by = None if start is None else last_day_written(start, start_to)
        return start_to, start_to, None if by == start else by, by is not None and by != start
    by = last_day_written(end, end_to)
    return start_to, end_to, None if by == end else by, False


def _medication_statement(
    resource: Mapping[str, Any], medication: Lookup, reader: DrugReader, dates_of: DatesOf
) -> MedicationFact | None:
    status = resource.get("status")
    if status not in _MED_STATEMENT_STATUSES:
        return None
    concept = _drug(resource, medication)
    period = resource.get("effectivePeriod") or {}
    written = resource.get("effectiveDateTime")
    start = dates_of(written)
    if start is None:
        written = period.get("start")
        start = dates_of(written)
    written_end = period.get("end")
    end = dates_of(written_end)
    dated = _dated(start, precision(written), end, precision(written_end))
    reason = (resource.get("statusReason") or [None])[0]
    return _medication_fact(resource, concept, start, end or start, reason, reader, dated=dated)


def _procedure(
    resource: Mapping[str, Any],
    steroids: ValueSet,
    put_in: DeviceActions,
    reader: DrugReader,
    dates_of: DatesOf,
    server: str | None = None,
    statuses: frozenset[str] = _DONE,
    read: ReadCodes | None = None,
) -> ProcedureFact | None:
    """A completed Procedure (or one of other `statuses`: `TRIAL_UNDER_WAY`). What it used (`usedCode`)
    is read as a drug order's drug is, by name or RxNorm code (an ingredient's or a product's) through
    the catalog's ingredients: one that holds a corticosteroid makes it an epidural steroid injection,
    which the trial module and every procedure-history test read alike (contract §4, AMB-34). The
    orders it was done for and the devices it put in (`_put_in`, by what `put_in` reads of a device
    action) are the chart's (the FHIR `server`'s) that it names. With `read` (the terminology's
    `ReadCodes`), one that no policy can read is not built (`_read_by_none`)."""
    status = resource.get("status")
    if status not in statuses:
        return None
    codes_of, named, _, _ = reader
    codes = codes_of(resource.get("code"))
    if read is not None and _read_by_none(resource, codes, read):
        return None
    written = resource.get("performedDateTime")
    performed = dates_of(written)
    start_unwritten = False
    if performed is None:
        period = as_dict(resource.get("performedPeriod"))
        written = period.get("start")
        performed = dates_of(written)
        if performed is None and dates_of(period.get("end")) is not None:
            # contract §3 is silent on a period with only its end: it was performed by then, so the end
            # dates it (review25c: read as undated), its start unknown (`ProcedureFact.start_unwritten`)
            written, start_unwritten = period.get("end"), True
            performed = dates_of(written)
    # most Procedures name no drug, order or device: what is not there is not read (a chart's hundreds)
    used, steroid = "", False
    if used_codes := dicts(resource.get("usedCode")):
        used = " | ".join(concept_text(c) for c in used_codes)
        drug_codes = tuple(c for u in used_codes for c in codes_of(u))
        steroid = steroids.holds_drug(named(used, drug_codes), drug_codes)
    label = first_display(resource.get("code"), codes)
    based_on = _local_references(orders, server) if (orders := as_list(resource.get("basedOn"))) else ()
    devices: tuple[str, ...] = ()
    if focal := dicts(resource.get("focalDevice")):
        devices = _local_references((f.get("manipulated") for f in focal if _put_in(f, put_in)), server)
    return ProcedureFact(
        reference_of(resource),
        codes,
        label,
        performed,
        used,
        steroid,
        based_on,
        devices,
        str(status),
        precision(written),
        start_unwritten,
    )


def _read_by_none(resource: Mapping[str, Any], codes: tuple[Code, ...], read: ReadCodes) -> bool:
    """Whether no policy can read a Procedure, whatever else it says: coded, none of its codes one that
    any value set holds or a removal undoes (`ReadCodes`), and naming no drug it used and no device it
    acted on (each read whatever its codes: a steroid, and what `PatientRecord.before` takes out with
    the order it was done for; the orders alone take out only the Procedure itself). Nothing of it read
    after its codes can make it unreadable (a date FHIR does not allow reads as none), so leaving it out
    here leaves the record, and what is counted unreadable, as building its fact and dropping it would."""
    return (
        bool(codes)
        and not read.reads(codes)
        and ("usedCode" not in resource or not dicts(resource["usedCode"]))  # most name neither
        and ("focalDevice" not in resource or not dicts(resource["focalDevice"]))
    )


def _under_way(resource: Any) -> bool:
    """Whether a Procedure's status may be one of `TRIAL_UNDER_WAY`, looked at before it is read again
    for a trial under way: of a chart's hundreds of Procedures, nearly all are completed. One whose status
    is not text gives no such trial (`_procedure` finds none, or raises, which a second reading ignores)."""
    return (
        isinstance(resource, dict)
        and isinstance(status := resource.get("status"), str)
        and status in TRIAL_UNDER_WAY
    )


def _put_in(focal: Mapping[str, Any], put_in: DeviceActions) -> bool:
    """Whether a focalDevice entry is a device the Procedure put in: its action unsaid, or saying so
    (`DeviceActions.puts_in`: a code of `device-put-in` or, an action coded by neither value set, its
    words). A device it revised, replaced, refilled or removed was in place before it (the pump a
    catheter revision names is one already in place)."""
    action = focal.get("action")
    if action is None:
        return True
    return put_in.puts_in(codings(action), concept_text(action))


def _local_references(references: Iterable[Any], server: str | None) -> tuple[str, ...]:
    """`Type/id` of each reference naming a resource of the FHIR `server` (`local_reference`)."""
    return tuple(ref for ref in (local_reference(r, server) for r in references) if ref is not None)


def _observation_value(resource: Mapping[str, Any]) -> tuple[float | bool | str | None, str | None]:
    if isinstance(resource.get("valueQuantity"), dict):
        quantity = resource["valueQuantity"]
        value = quantity.get("value")
        unit = quantity.get("code") or quantity.get("unit")
        return (float(value) if isinstance(value, int | float) else None), unit
    if isinstance(resource.get("valueInteger"), int) and not isinstance(resource.get("valueInteger"), bool):
        return float(resource["valueInteger"]), None
    if isinstance(resource.get("valueBoolean"), bool):
        return resource["valueBoolean"], None
    if isinstance(resource.get("valueCodeableConcept"), dict):
        return _coded_value(resource["valueCodeableConcept"], _is_assessment(resource)), None
    if isinstance(resource.get("valueString"), str):
        return resource["valueString"].strip(), None
    return None, None


_ANSWER_CODE = re.compile(r"[a-z0-9+-]+")  # how the assessment answers are written ("end-of-battery", "1+")


def _coded_value(concept: Mapping[str, Any], assessment: bool) -> str | None:
    """The value a coded value is read as: a coding of the assessment CodeSystem's code; for an
    `assessment`'s value (an Observation coded in that system, or an answer to the service's own
    Questionnaire) `_assessment_answer`, else the first coding's code, else the text. What the value
    is written as besides is `_value_forms`."""
    for code in codings(concept):
        if code.system == ASSESSMENT:
            return code.code
    text = concept.get("text").strip() if isinstance(concept.get("text"), str) else None
    if assessment:
        return _assessment_answer(concept, text)
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return text


def _assessment_answer(concept: Mapping[str, Any], text: str | None) -> str | None:
    """The answer of an assessment's coded value with no coding of the assessment CodeSystem. Contract
    §5: "the coding's system is the same CodeSystem URL; a bare text equal to the code is accepted
    too": the text when it is written as a code, else a coding's code written bare (no system). A
    coding of another system is not the answer ("effective" in SNOMED CT once overruled a documented
    opioid failure: contract review s17 F4): None, unless free text is all there is, kept as words."""
    if text and _ANSWER_CODE.fullmatch(text):
        return text
    written = [
        c for c in dicts(concept.get("coding")) if isinstance(c.get("code"), str) and c["code"].strip()
    ]
    bare = [c["code"].strip() for c in written if not c.get("system")]
    if bare:
        return bare[0]
    return None if written else text


def _is_assessment(resource: Mapping[str, Any]) -> bool:
    """Whether an Observation is coded in the project's assessment code system (contract §5)."""
    return any(code.system == ASSESSMENT for code in codings(resource.get("code")))


def _value_forms(concept: Any) -> tuple[str, ...]:
    """Every way a coded value is written (each coding's code and display, the text): an AJCC M1 stage
    may be coded in SNOMED CT with "cM1" in its display or text; an assessment answer coded in another
    code system is named by them (`ObservationFact.value_text`)."""
    if not isinstance(concept, dict):
        return ()
    forms = [
        part.strip()
        for coding in dicts(concept.get("coding"))
        for part in (coding.get("code"), coding.get("display"))
        if isinstance(part, str) and part.strip()
    ]
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        forms.append(concept["text"].strip())
    return tuple(forms)


def _observation(resource: Mapping[str, Any], codes_of: CodesOf, dates_of: DatesOf) -> ObservationFact | None:
    if resource.get("status") not in OBSERVATION_STATUSES:
        return None
    codes = codes_of(resource.get("code"))
    written = resource.get("effectiveDateTime")
    effective = dates_of(written)
    if effective is None:
        written = (resource.get("effectivePeriod") or {}).get("start")
        effective = dates_of(written)
    value, unit = _observation_value(resource)
    label = first_display(resource.get("code"), codes)
    return ObservationFact(
        reference_of(resource),
        codes,
        label,
        effective,
        value,
        unit,
        _scale_component(resource),
        precision(written),
        _value_forms(resource.get("valueCodeableConcept")),
        _body_site(resource.get("bodySite")),
    )


def _body_site(concept: Any) -> str:
    """The muscle a score is of, as one key: its text in lower case (the words a clinician gave it,
    the same whether or not a coding sits beside them, and which say the side a coding's generic
    display does not), else its codings (system and code); "" for a score of no named muscle (an
    average, contract §5)."""
    if not isinstance(concept, dict):
        return ""  # most scores name none: no text and no codings
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return " ".join(text.lower().split())
    return " ".join(sorted(f"{code.system}|{code.code}" for code in codings(concept)))


def _scale_component(resource: Mapping[str, Any]) -> str | None:
    """The value of a component coded `scale` (e.g. it-trial-scale-reduction's scale)."""
    for component in dicts(resource.get("component")):
        if (
            not any(c.code == "scale" for c in codings(component.get("code")))
            and as_dict(component.get("code")).get("text") != "scale"
        ):
            continue
        value, _ = _observation_value(component)
        if isinstance(value, str):
            return value
    return None


def _device(resource: Mapping[str, Any], codes_of: CodesOf) -> DeviceFact | None:
    """An active Device's fact (contract §2, §3: "an active `Device`"); None for one with another of R4's
    statuses or none. A status that is none of R4's codes ("Active", `["active"]`, null) could not be
    read: it raises, so the Device is counted a record that could not be read (`_read`, UNKNOWN_STATUS: "1
    record(s) with a status none of FHIR R4's codes", review30c L5) and a reader of devices says "could not
    be checked" rather than "none" (review29d L6: it read as no device)."""
    status = resource.get("status")
    if status != "active":
        if "status" in resource and (not isinstance(status, str) or status not in DEVICE_STATUSES):
            raise UnreadableRecord(UNKNOWN_STATUS)
        return None
    device_type = resource.get("type")
    names = " | ".join(
        n.get("name") for n in resource.get("deviceName") or [] if isinstance(n, dict) and n.get("name")
    )
    text = " | ".join(p for p in (concept_text(device_type), names) if p)
    codes = codes_of(device_type)
    label = text or (first_display(device_type, codes) if codes else "device of unspecified type")
    return DeviceFact(reference_of(resource), codes, text, label)


def _allergy(resource: Mapping[str, Any], codes_of: CodesOf, dates_of: DatesOf) -> AllergyFact | None:
    """An allergy-list entry, unless refuted or entered in error. One no longer active is kept as
    history: an allergy to the infusate must be current (contract §3), while a past intolerance still
    records that a drug failed."""
    if _status_code(resource.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
        return None
    codes = codes_of(resource.get("code"))
    written = _onset_written(resource, dates_of)
    if dates_of(written) is None:
        written = resource.get("recordedDate")
    return AllergyFact(
        reference_of(resource),
        codes,
        concept_text(resource.get("code")),
        first_display(resource.get("code"), codes),
        resource.get("type"),
        dates_of(written),
        _status_code(resource.get("clinicalStatus")) in (None, "active"),
        precision(written),
    )


def _answer_value(answer: Mapping[str, Any]) -> tuple[float | bool | str | None, str | None]:
    for key in ("valueBoolean", "valueString"):
        if isinstance(answer.get(key), bool | str):
            return answer[key], None
    for key in ("valueInteger", "valueDecimal"):
        if isinstance(answer.get(key), int | float) and not isinstance(answer.get(key), bool):
            return float(answer[key]), None
    if (concept := _answer_concept(answer)) is not None:  # contract §5, read as an assessment Observation's
        return _coded_value(concept, assessment=True), None
    quantity = answer.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        return float(quantity["value"]), quantity.get("code") or quantity.get("unit")
    return None, None


def _answer_concept(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """An answer's `valueCoding` as the coded value of an Observation (a concept of that one coding),
    so that it is read, and named when not read, as that Observation's value is."""
    coding = answer.get("valueCoding")
    return {"coding": [coding]} if isinstance(coding, dict) else None


def _qualifier(link_id: str, children: list[dict[str, Any]]) -> str | None:
    """The coded answer to an item's qualifying sub-question (`<linkId>.scale`, the service's own
    form): what the Observation's `scale` component says (contract §5)."""
    for child in children:
        if isinstance(child.get("linkId"), str) and child["linkId"].startswith(f"{link_id}."):
            for answer in dicts(child.get("answer")):
                value, _ = _answer_value(answer)
                if isinstance(value, str):
                    return value
    return None


def _questionnaire_answers(resource: Mapping[str, Any], dates_of: DatesOf) -> list[ObservationFact]:
    """Items whose linkId is a project assessment code, read like that assessment's Observation."""
    if resource.get("status") not in _QUESTIONNAIRE_STATUSES:
        return []
    authored = dates_of(resource.get("authored"))
    facts: list[ObservationFact] = []

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            link_id = item.get("linkId")
            answers = [a for a in item.get("answer") or [] if isinstance(a, dict)]
            if isinstance(link_id, str) and answers:
                value, unit = _answer_value(answers[0])
                forms = _value_forms(_answer_concept(answers[0]))
                if value is not None or forms:  # one coded in another system is kept, named by its forms
                    code = Code(ASSESSMENT, link_id)
                    qualifier = _qualifier(
                        link_id, [*dicts(answers[0].get("item")), *dicts(item.get("item"))]
                    )
                    facts.append(
                        ObservationFact(
                            reference_of(resource),
                            (code,),
                            link_id,
                            authored,
                            value,
                            unit,
                            qualifier,
                            value_forms=forms,
                        )
                    )
            walk(item.get("item"))
            for answer in answers:
                walk(answer.get("item"))

    walk(resource.get("item"))
    return facts


PAIN_SCALE = (0.0, 10.0)  # contract §3: a pain severity's value is 0-10


def _on_scale(observations: Iterable[ObservationFact], terminology: Terminology) -> Iterator[ObservationFact]:
    """The Observations every reader reads: a pain score off the 0-10 scale left out (`_off_scale`)."""
    pain_codes = terminology["pain-score"]
    return (o for o in observations if not _off_scale(o, pain_codes))


def _by_source(observation: ObservationFact) -> str:
    """The reference an Observation (or an answer) was read from: `build_record`'s order for them."""
    return observation.source


def _off_scale(observation: ObservationFact, pain_codes: ValueSet) -> bool:
    """A pain score whose number is outside the 0-10 scale: not a pain severity at all (a typo, or
    another scale under a pain code), so no criterion and no trial reads it."""
    value = observation.value
    return (
        isinstance(value, float)
        and not PAIN_SCALE[0] <= value <= PAIN_SCALE[1]
        and pain_codes.matches_any(observation.codes)
    )


def _group_conditions(conditions: Iterable[ConditionFact]) -> tuple[ConditionFact, ...]:
    """One fact per coded concept: the earliest dated occurrence, citing every duplicate. A diagnosis
    dated "2026" is any day of 2026, so the same code's earliest diagnosis dated otherwise (1 March 2026)
    rides along in `also_dated`: the earliest first instant alone (1 January) would hide that the chart
    dates it by 1 March at the latest (condition-duration, review25d), and a fact of its own would cite
    one diagnosis two or three times (review25e). Among dates written alike, the earliest is both the
    first to begin and the first to end."""
    groups: dict[Any, list[ConditionFact]] = {}
    for condition in conditions:
        key = frozenset((c.system, c.code) for c in condition.codes) or (
            condition.label.lower() if condition.label != "unnamed" else condition.source
        )
        groups.setdefault(key, []).append(condition)
    merged = []
    for group in groups.values():
        group.sort(key=lambda c: (c.date is None, c.date or datetime.max.replace(tzinfo=UTC)))
        first = group[0]
        by_precision: dict[str, ConditionFact] = {}
        for c in group:
            if c.date is not None:
                by_precision.setdefault(c.precision if c.precision in SPANS else "day", c)
        merged.append(
            replace(
                first,
                duplicates=tuple(c.source for c in group[1:]),
                explicitly_active=any(c.explicitly_active for c in group),
                also_dated=tuple(c for c in by_precision.values() if c is not first),
            )
        )
    return tuple(merged)


def _ingredient_names(finder: IngredientFinder) -> Named:
    """The known ingredients of a drug (by RxCUI or by name), worked out once per distinct drug of the
    call (a chart repeats its drugs in every order)."""
    seen: dict[tuple[str, tuple[Code, ...]], frozenset[str]] = {}

    def named(text: str, codes: tuple[Code, ...]) -> frozenset[str]:
        names = seen.get((text, codes))
        if names is None:
            names = seen[(text, codes)] = finder.names(text, codes)
        return names

    return named


def _neuraxial_reader(routes: Routes) -> Neuraxial:
    """Whether a drug order or statement gives its drug intrathecally or epidurally (`neuraxial_order` is
    True), worked out once per distinct drug text of the call for those that name no dosage: those
    `neuraxial_order` reads by their drug's words alone (most of a chart's orders; every one whose route
    could tell is read whole)."""
    by_words: dict[str, bool] = {}

    def neuraxial(resource: Mapping[str, Any], text: str) -> bool:
        if names_a_dosage(resource):
            return neuraxial_order(resource, text, routes) is True
        said = by_words.get(text)
        if said is None:
            said = by_words[text] = neuraxial_order(resource, text, routes) is True
        return said

    return neuraxial


def _exposures(medications: Iterable[MedicationFact]) -> tuple[MedicationExposure, ...]:
    """Spans per ingredient: earliest start to latest end over all its orders and statements."""
    spans: dict[str, list[MedicationFact]] = {}
    for medication in medications:
        if medication.start is None:
            continue
        if medication.neuraxial:
            continue  # an intrathecal or epidural drug is not a systemic drug trial
        for name in medication.ingredients:
            spans.setdefault(name, []).append(medication)
    return tuple(
        MedicationExposure(
            ingredient=name,
            start=min(m.start for m in facts if m.start),
            end=max((m.end or m.start) for m in facts if m.start),
            sources=tuple(m.source for m in facts),
        )
        for name, facts in sorted(spans.items())
    )


def _index_by_code(
    observations: Iterable[ObservationFact],
) -> dict[tuple[str, str], tuple[ObservationFact, ...]]:
    index: dict[tuple[str, str], list[ObservationFact]] = {}
    for observation in observations:
        for code in {(c.system, c.code) for c in observation.codes}:
            index.setdefault(code, []).append(observation)
    return {key: tuple(values) for key, values in index.items()}


# what reading a malformed element raises: the resource is counted unreadable, the call goes on
UNREADABLE = (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError)


MALFORMED = "could not be read"
MODIFIED = "carry a modifier extension this service does not understand"
# what was wrong with a record that could not be read, where its reader knows it (`UnreadableRecord`): said in
# its place ("1 record(s) with a status none of FHIR R4's codes"), never MALFORMED's words again after a
# card's "could not be read" (review30c L5)
UNKNOWN_STATUS = "with a status none of FHIR R4's codes"
# every why a record of the chart was read and left out: `unreadable_in_chart` knows them all
LEFT_OUT = (MALFORMED, MODIFIED, UNKNOWN_STATUS)


class UnreadableRecord(ValueError):
    """A record that could not be read, raised by its reader where it knows what was wrong (`why`, one of
    `LEFT_OUT`: a Device's status none of R4's codes); `_read` counts it so, any other error MALFORMED."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


# `PatientRecord.unavailable`'s key (and `unavailable_codes`', by removal CPT code) for the removals that
# could not be read: a Procedure left out that is one (its codes a removal's, `ReadCodes.undoes`) or may be
# one (malformed: its codes unknown; or the procedures not fetched). A device or pump the chart shows in
# place that such a removal would undo (contract §2 "with no later 62365", §3 "no later removal") cannot
# be told to be in place (service/engine/checks/devices.py, service/engine/classify.py)
REMOVALS = "device removals"
# why a removal that was read leaves what it would undo open: the dates cannot tell which came first (one is
# undated: engine/removals.py, "removal CPT 33233 (undated) may have come later"); asking again reads the
# same dates, so it is said as records of the chart are (`unreadable_in_chart`)
MAY_BE_LATER = "may have come later"
# why a removal read after the onset of a diagnosis the chart dates by its onsetPeriod's end alone leaves it
# open all the same: contract §3 dates a Condition by onsetDateTime, onsetPeriod.start or recordedDate only,
# so the diagnosis is undated, as the words say (dates33, s33, of review32b L3: "may have come later" was
# untrue where the period's end shows the removal came after the onset)
AFTER_UNDATED_ONSET = "came after the onset, which has no start date"


def dates_cannot_tell(reason: str) -> bool:
    """Whether why something is open is a removal read that the dates cannot place before or after what it
    would undo (`MAY_BE_LATER`, `AFTER_UNDATED_ONSET`): every record was read, so it is no failure of the
    EHR's data, technical or otherwise (cards/coverage_information.py: not CRD 2.2's `technical`;
    review31a)."""
    return MAY_BE_LATER in reason or AFTER_UNDATED_ONSET in reason


def left_out(count: int, why: str) -> str:
    """How a kind of data reads as not wholly available when `count` of its records were left out
    `why` (one of `LEFT_OUT`: MALFORMED, MODIFIED, UNKNOWN_STATUS): the words `unreadable_in_chart` knows."""
    return f"{count} record(s) {why}"


def unreadable_in_chart(reason: str) -> bool:
    """Whether a reason a kind of data is not wholly available is records of the chart this service
    cannot read (malformed, with a status none of R4's codes, or carrying a modifier extension), or a
    removal it cannot weigh (`dates_cannot_tell`): asking again gives the same records."""
    return any(f"record(s) {why}" in reason for why in LEFT_OUT) or dates_cannot_tell(reason)


def _read(
    resources: Iterable[Any],
    parse: Callable[[Mapping[str, Any]], Any],
    unreadable: Callable[[Mapping[str, Any], str, Any], None] = lambda _, __, ___: None,
    modified: Callable[[Mapping[str, Any]], bool] | None = modifies,
) -> Iterator[Any]:
    """Each resource's fact, one at a time: what is not a resource or not used is left out; a
    malformed one, or a used one that is `modified` (carries a modifier extension, service/modifiers.py:
    it, or what it is read through, such as its drug's Medication; None when none of `resources` can),
    is told to `unreadable` with which it is (and the fact it would have given), and left out."""
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        try:
            fact = parse(resource)
        except UnreadableRecord as error:  # its reader knows what was wrong
            unreadable(resource, error.why, None)
            continue
        except UNREADABLE:
            unreadable(resource, MALFORMED, None)
            continue
        if fact is not None and modified is not None and modified(resource):
            unreadable(resource, MODIFIED, fact)
            continue
        if fact is not None:
            yield fact


def _read_by_no_policy(fact: Any, terminology: Terminology, worded: Collection[str] | None = None) -> bool:
    """Whether no policy reads a record's fact, so that leaving it out changes nothing: its codes are
    none a policy reads (`Terminology.reads`, or a removal's, which undoes a pump in place), and
    nothing else of it is read. A drug is read by the ingredients found in its words too (contract §3: a
    product code the service does not know), a Procedure by the steroid it used and the devices it put
    in (`PatientRecord.before` takes them out with the order it was done for), a diagnosis by its words
    (`worded_conditions`: "Infection of tooth" under a code no value set lists), an allergy or a device by
    their words: those count whatever their codes. No policy reads a questionnaire response none of whose
    answers is an assessment a policy reads (`_read_by_codes`)."""
    if isinstance(fact, list):  # a QuestionnaireResponse's answers (`_questionnaire_answers`)
        return not _read_by_codes(fact, terminology)
    codes = getattr(fact, "codes", None)
    read = read_codes(terminology)  # its codes as value sets read them (exclusions too), or a removal's
    if (
        not codes
        or terminology.reads(codes)
        or read.undoes(codes)
        or isinstance(fact, AllergyFact | DeviceFact)
    ):
        return False
    if isinstance(fact, ProcedureFact) and fact.devices:
        return False
    texts = (fact.label, *(c.display for c in codes if c.display)) if isinstance(fact, ConditionFact) else ()
    if texts and read.names(texts, worded):
        return False
    return not getattr(fact, "ingredients", None) and not getattr(fact, "steroid_injection", False)


def _read_by_codes(fact: Any, terminology: Terminology) -> tuple[str, ...] | None:
    """The codes by which alone policies read a record's fact, so that leaving it out leaves only the
    readers of those codes without it; None for a record read as a whole. A questionnaire's answers
    are read each by its own code (its linkId, an assessment code): those a policy reads."""
    if not isinstance(fact, list):
        return None
    read = (code.code for answer in fact if terminology.reads(answer.codes) for code in answer.codes)
    return tuple(dict.fromkeys(read))


def observation_facts(resources: Iterable[Any], terminology: Terminology) -> Iterator[ObservationFact]:
    """The Observations as `build_record` reads them (the unreadable, the unused and a pain score off
    the scale left out), one at a time: a caller asking whether any of them is usable reads no more
    than it needs."""
    codes_of, dates_of = _codes_reader(), _dates_reader()
    return _on_scale(_read(resources, lambda r: _observation(r, codes_of, dates_of)), terminology)


def build_record(
    patient_id: str,
    resources: Mapping[str, list[Mapping[str, Any]]],
    terminology: Terminology,
    unavailable: Mapping[str, str] | None = None,
    server: str | None = None,
    may_modify: bool | None = None,
    worded: Collection[str] | None = None,
) -> PatientRecord:
    """Normalise raw resources (by type) into a PatientRecord; filters follow contract §3. `server`:
    the call's FHIR server, which `resources` were read from; a reference in them written as another
    server's URL names none of them (service/references.py). `may_modify`: whether any of `resources`
    may carry a modifier extension, where the caller knows (`GatheredData.may_carry_modifiers`);
    None: looked at here (`may_carry`). `worded`: the value sets the policies read a diagnosis's words
    against (`Catalog.worded_diagnoses`), which alone make a diagnosis carrying a modifier counted by its
    words; None: every value set of diagnoses (`ReadCodes.names`)."""

    # (kind, None) → why → count for records read as a whole; (kind, code) for those read by codes alone
    unreadable: dict[tuple[str, str | None], dict[str, int]] = {}
    removals_left_out: dict[str, tuple[tuple[datetime | None, str], ...]] = {}  # `PatientRecord`'s

    def facts(resource_type: str, parse: Callable[[Mapping[str, Any]], Any]) -> list[Any]:
        def counted(resource: Mapping[str, Any], why: str, fact: Any) -> None:
            if why == MODIFIED and _read_by_no_policy(fact, terminology, worded):
                return  # a record no policy reads changes nothing
            log.warning(
                "%s/%s left out of the record: %s", resource_type, resource.get("id"), left_out(1, why)
            )
            by_codes = _read_by_codes(fact, terminology)  # None for a malformed one: read as a whole
            keys = [(resource_type, code) for code in ((None,) if by_codes is None else by_codes)]
            if resource_type == "Procedure":  # a removal left out, by its codes; a malformed one may be any
                removed = _removal_codes(fact, read)
                keys += [(REMOVALS, code) for code in removed]
                _keep_each(removals_left_out, [code for code in removed if code], fact)
            for key in keys:
                counts = unreadable.setdefault(key, {})
                counts[why] = counts.get(why, 0) + 1

        return list(_read(resources.get(resource_type, []), parse, counted, modified))

    read = read_codes(terminology)  # what any policy can read: a Procedure none can is not built
    medication = chart_lookup(resources.get("Medication", []), server)  # a drug record's Medication
    # each record is looked at only in a chart that may hold a modifier anywhere (most hold none)
    may_modify = may_carry(resources) if may_modify is None else may_modify
    modified = (lambda resource: modifies(resource, medication)) if may_modify else None

    codes_of, dates_of = _codes_reader(), _dates_reader()  # this call's own: nothing outlives it
    routes = terminology.routes
    drugs = (codes_of, _ingredient_names(terminology.ingredient_finder), routes, _neuraxial_reader(routes))
    meds = facts("MedicationRequest", lambda r: _medication_request(r, medication, drugs, dates_of))
    meds += facts("MedicationStatement", lambda r: _medication_statement(r, medication, drugs, dates_of))
    steroids = terminology["steroids"]
    put_in = terminology.device_actions
    procedures = tuple(
        facts("Procedure", lambda r: _procedure(r, steroids, put_in, drugs, dates_of, server, read=read))
    )
    trial_codes = terminology["trial-procedures"]
    # a trial under way that cannot be read, or carries a modifier, is left out alone: evidence of nothing
    begun = _read(
        (r for r in resources.get("Procedure", []) if _under_way(r)),
        lambda r: _procedure(r, steroids, put_in, drugs, dates_of, server, TRIAL_UNDER_WAY),
        modified=modified,
    )
    under_way = tuple(p for p in begun if trial_codes.matches_any(p.codes) and not p.steroid_injection)
    # in an order of their own, not the order they came in (a prefetch's, a server's sort): a reader that
    # takes the latest of two scores of one moment takes the same one however the chart was read
    observations = tuple(
        sorted(
            _on_scale(facts("Observation", lambda r: _observation(r, codes_of, dates_of)), terminology),
            key=_by_source,
        )
    ) + tuple(
        sorted(
            (
                answer
                for qr in facts("QuestionnaireResponse", lambda r: _questionnaire_answers(r, dates_of))
                for answer in qr
            ),
            key=_by_source,
        )
    )
    return PatientRecord(
        patient_id=patient_id,
        conditions=_group_conditions(facts("Condition", lambda r: _condition(r, codes_of, dates_of))),
        medications=tuple(meds),
        exposures=_exposures(meds),
        procedures=procedures,
        observations=observations,
        devices=tuple(facts("Device", lambda r: _device(r, codes_of))),
        allergies=tuple(facts("AllergyIntolerance", lambda r: _allergy(r, codes_of, dates_of))),
        assessments=latest_assessments(observations),
        by_code=_index_by_code(observations),
        trial=trial_result(procedures, observations, trial_codes, terminology["pain-score"], bool(under_way)),
        trials_under_way=under_way,
        unavailable={**_wholly(unreadable), **_not_fetched(unavailable or {})},
        unavailable_codes=_by_code(unreadable),
        removals_left_out=removals_left_out,
        server=server,
        **_deceased(resources.get("Patient", []), patient_id),
    )


def _deceased(patients: list[Mapping[str, Any]], patient_id: str) -> dict[str, Any]:
    """Whether the call's Patient is recorded deceased, and when (`PatientRecord.deceased`,
    `deceased_on`): a `deceasedDateTime` (a date that cannot be read is still a death recorded), or a
    `deceasedBoolean` true. Nothing any policy judges: the decision card says it (review s19 L1)."""
    patient = next((p for p in patients if p.get("id") == patient_id), None)
    if patient is None:
        return {}
    if isinstance(when := patient.get("deceasedDateTime"), str):
        return {"deceased": True, "deceased_on": when.strip()}
    return {"deceased": patient.get("deceasedBoolean") is True}


def _removal_codes(fact: Any, read: ReadCodes) -> tuple[str | None, ...]:
    """The removal codes a Procedure left out is counted under (`REMOVALS`): its removal CPT codes; None
    (read as a whole) for a malformed one, whose codes are unknown; none for one no removal is."""
    if fact is None:
        return (None,)
    return tuple(dict.fromkeys(c.code for c in fact.codes if read.undoes((c,))))


def _keep_each(kept: dict[str, tuple[tuple[datetime | None, str], ...]], codes: list[str], fact: Any) -> None:
    """Keeps in `kept` (`PatientRecord.removals_left_out`) the date (None: none read) and precision of a
    removal left out under each of its `codes`, beside those kept before: `removal_unread` weighs each by the
    caller's rule, by the day, so the latest by the instant alone would not do (review30a L1: one at 23:00
    -10:00 and one at 08:00Z the next morning are one day's)."""
    when = (getattr(fact, "performed", None), getattr(fact, "precision", "time"))
    for code in codes:
        if when not in kept.get(code, ()):
            kept[code] = (*kept.get(code, ()), when)


def _not_fetched(unavailable: Mapping[str, str]) -> dict[str, str]:
    """The kinds the call could not fetch, and the removals among their records (`REMOVALS`): procedures
    not fetched may hold one."""
    found = dict(unavailable)
    if "Procedure" in found:
        found.setdefault(REMOVALS, found["Procedure"])
    return found


Unreadable = Mapping[tuple[str, str | None], Mapping[str, int]]  # (kind, code or None) → why → how many


def _left_out(counts: Mapping[str, int]) -> str:
    """Why a kind (or its records of one code) is not wholly available: how many were left out, why."""
    return "; ".join(left_out(n, why) for why, n in counts.items())


def _wholly(unreadable: Unreadable) -> dict[str, str]:
    """The kinds some of whose records read as a whole were left out, each with why
    (`PatientRecord.unavailable`)."""
    return {kind: _left_out(counts) for (kind, code), counts in unreadable.items() if code is None}


def _by_code(unreadable: Unreadable) -> dict[str, dict[str, str]]:
    """kind → code → why, for the records left out that are read by codes alone
    (`PatientRecord.unavailable_codes`)."""
    found: dict[str, dict[str, str]] = {}
    for (kind, code), counts in unreadable.items():
        if code is not None:
            found.setdefault(kind, {})[code] = _left_out(counts)
    return found
