"""The PatientRecord: normalised facts read from the EHR's FHIR resources, one per clinical fact.

The engine never sees raw FHIR. This module applies the contract's common filters (section 3:
which statuses count, which date is a resource's date), reduces codings to `Code`s, and keeps
the source reference of every fact so cards and audit records can cite it. Resource types that
could not be fetched are listed in `unavailable`, so that absence of evidence is never mistaken
for evidence of absence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from service.codes import ASSESSMENT, Code, codings, concept_text, first_display
from service.fhirdates import duration_days, parse_datetime

CLINICAL_TYPES = (
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "Observation",
    "Device",
    "AllergyIntolerance",
)
_ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_MED_REQUEST_STATUSES = {"active", "completed", "stopped"}
_MED_STATEMENT_STATUSES = {"active", "completed", "intended", "stopped", "on-hold", "unknown", "not-taken"}
_OBSERVATION_STATUSES = {"final", "amended", "corrected"}
DEFAULT_ORDER_DAYS = 30


def _status_code(concept: Any) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


def _reference(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


@dataclass(frozen=True)
class ConditionFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    onset: datetime | None
    recorded: datetime | None
    explicitly_active: bool

    @property
    def date(self) -> datetime | None:
        return self.onset or self.recorded


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ProcedureFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    performed: datetime | None


@dataclass(frozen=True)
class ObservationFact:
    source: str
    codes: tuple[Code, ...]
    label: str
    effective: datetime | None
    value: float | bool | str | None
    unit: str | None

    def value_text(self) -> str:
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        if isinstance(self.value, float):
            number = f"{self.value:g}"
            return f"{number} {self.unit}" if self.unit and self.unit not in ("{score}", "1") else number
        return str(self.value) if self.value is not None else "no value"


@dataclass(frozen=True)
class DeviceFact:
    source: str
    codes: tuple[Code, ...]
    text: str
    label: str


@dataclass(frozen=True)
class AllergyFact:
    source: str
    codes: tuple[Code, ...]
    text: str
    label: str
    kind: str | None


@dataclass(frozen=True)
class PatientRecord:
    """Everything the engine may read about one patient, as of one request."""

    patient_id: str
    conditions: tuple[ConditionFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    procedures: tuple[ProcedureFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    devices: tuple[DeviceFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def latest_assessment(self, code: str) -> ObservationFact | None:
        """The most recent final Observation carrying a project assessment code (contract §5)."""
        matches = [
            o for o in self.observations if any(c.system == ASSESSMENT and c.code == code for c in o.codes)
        ]
        return max(
            matches, key=lambda o: (o.effective is not None, o.effective or datetime.min), default=None
        )


def _condition(resource: Mapping[str, Any]) -> ConditionFact | None:
    clinical = _status_code(resource.get("clinicalStatus"))
    if clinical is not None and clinical not in _ACTIVE_CONDITION:
        return None
    if _status_code(resource.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
        return None
    codes = tuple(codings(resource.get("code")))
    onset = parse_datetime(resource.get("onsetDateTime")) or parse_datetime(
        (resource.get("onsetPeriod") or {}).get("start")
    )
    return ConditionFact(
        _reference(resource),
        codes,
        first_display(resource.get("code"), codes),
        onset,
        parse_datetime(resource.get("recordedDate")),
        clinical is not None,
    )


def _medication_concept(resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> Any:
    if "medicationCodeableConcept" in resource:
        return resource["medicationCodeableConcept"]
    ref = (resource.get("medicationReference") or {}).get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        medication = next((c for c in resource.get("contained") or [] if c.get("id") == ref[1:]), None)
    else:
        medication = medications.get("/".join(ref.split("/")[-2:]))
    if not medication:
        return None
    coding = list((medication.get("code") or {}).get("coding") or [])
    for ingredient in medication.get("ingredient") or []:
        coding += (ingredient.get("itemCodeableConcept") or {}).get("coding") or []
    return {"coding": coding, "text": (medication.get("code") or {}).get("text")}


def _route_text(resource: Mapping[str, Any]) -> str:
    parts = []
    for dosage in resource.get("dosageInstruction") or resource.get("dosage") or []:
        if isinstance(dosage, dict):
            parts.append(concept_text(dosage.get("route")))
    return " | ".join(p for p in parts if p)


def _medication_fact(
    resource: Mapping[str, Any], concept: Any, start: datetime | None, end: datetime | None, reason: Any
) -> MedicationFact:
    reason_text = (concept_text(reason) or None) if isinstance(reason, dict) else None
    return MedicationFact(
        source=_reference(resource),
        codes=tuple(codings(concept)),
        text=concept_text(concept),
        label=first_display(concept),
        status=resource.get("status", ""),
        start=start,
        end=end,
        status_reason=reason_text,
        route_text=_route_text(resource),
    )


def _medication_request(resource: Mapping[str, Any], medications: Mapping[str, Any]) -> MedicationFact | None:
    status = resource.get("status")
    if status not in _MED_REQUEST_STATUSES:
        return None
    concept = _medication_concept(resource, medications)
    start = parse_datetime(resource.get("authoredOn"))
    dispense = resource.get("dispenseRequest") or {}
    end = parse_datetime((dispense.get("validityPeriod") or {}).get("end"))
    if end is None and start is not None:
        supply = duration_days(dispense.get("expectedSupplyDuration"))
        end = start + timedelta(days=supply if supply is not None else DEFAULT_ORDER_DAYS)
    return _medication_fact(resource, concept, start, end, resource.get("statusReason"))


def _medication_statement(
    resource: Mapping[str, Any], medications: Mapping[str, Any]
) -> MedicationFact | None:
    status = resource.get("status")
    if status not in _MED_STATEMENT_STATUSES or status == "not-taken":
        return None
    concept = _medication_concept(resource, medications)
    period = resource.get("effectivePeriod") or {}
    start = parse_datetime(resource.get("effectiveDateTime")) or parse_datetime(period.get("start"))
    end = parse_datetime(period.get("end")) or start
    return _medication_fact(resource, concept, start, end, (resource.get("statusReason") or [None])[0])


def _procedure(resource: Mapping[str, Any]) -> ProcedureFact | None:
    if resource.get("status") != "completed":
        return None
    codes = tuple(codings(resource.get("code")))
    performed = parse_datetime(resource.get("performedDateTime")) or parse_datetime(
        (resource.get("performedPeriod") or {}).get("start")
    )
    return ProcedureFact(_reference(resource), codes, first_display(resource.get("code"), codes), performed)


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
        concept = resource["valueCodeableConcept"]
        for code in codings(concept):
            if code.system == ASSESSMENT:
                return code.code, None
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"], None
        return (concept.get("text").strip() if isinstance(concept.get("text"), str) else None), None
    if isinstance(resource.get("valueString"), str):
        return resource["valueString"].strip(), None
    return None, None


def _observation(resource: Mapping[str, Any]) -> ObservationFact | None:
    if resource.get("status") not in _OBSERVATION_STATUSES:
        return None
    codes = tuple(codings(resource.get("code")))
    effective = parse_datetime(resource.get("effectiveDateTime")) or parse_datetime(
        (resource.get("effectivePeriod") or {}).get("start")
    )
    value, unit = _observation_value(resource)
    return ObservationFact(
        _reference(resource), codes, first_display(resource.get("code"), codes), effective, value, unit
    )


def _device(resource: Mapping[str, Any]) -> DeviceFact | None:
    if resource.get("status") not in (None, "active"):
        return None
    device_type = resource.get("type")
    names = " | ".join(
        n.get("name") for n in resource.get("deviceName") or [] if isinstance(n, dict) and n.get("name")
    )
    text = " | ".join(p for p in (concept_text(device_type), names) if p)
    codes = tuple(codings(device_type))
    return DeviceFact(_reference(resource), codes, text, text or "device of unspecified type")


def _allergy(resource: Mapping[str, Any]) -> AllergyFact | None:
    clinical = _status_code(resource.get("clinicalStatus"))
    if clinical not in (None, "active"):
        return None
    if _status_code(resource.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
        return None
    codes = tuple(codings(resource.get("code")))
    return AllergyFact(
        _reference(resource),
        codes,
        concept_text(resource.get("code")),
        first_display(resource.get("code"), codes),
        resource.get("type"),
    )


def _dedupe(facts: Iterable[Any], key: Any) -> tuple[Any, ...]:
    seen: set[Any] = set()
    kept = []
    for fact in facts:
        k = key(fact)
        if k not in seen:
            seen.add(k)
            kept.append(fact)
    return tuple(kept)


def build_record(
    patient_id: str,
    resources: Mapping[str, list[Mapping[str, Any]]],
    unavailable: Mapping[str, str] | None = None,
) -> PatientRecord:
    """Normalise raw resources (by type) into a PatientRecord; filters follow contract §3."""

    def facts(resource_type: str, parse: Any) -> list[Any]:
        return [
            f for r in resources.get(resource_type, []) if isinstance(r, dict) and (f := parse(r)) is not None
        ]

    medications = {_reference(m): m for m in resources.get("Medication", []) if isinstance(m, dict)}
    conditions = _dedupe(
        facts("Condition", _condition),
        lambda c: (frozenset((x.system, x.code) for x in c.codes) or c.label, c.date),
    )
    meds = facts("MedicationRequest", lambda r: _medication_request(r, medications))
    meds += facts("MedicationStatement", lambda r: _medication_statement(r, medications))
    return PatientRecord(
        patient_id=patient_id,
        conditions=conditions,
        medications=tuple(meds),
        procedures=tuple(facts("Procedure", _procedure)),
        observations=tuple(facts("Observation", _observation)),
        devices=tuple(facts("Device", _device)),
        allergies=tuple(facts("AllergyIntolerance", _allergy)),
        unavailable=dict(unavailable or {}),
    )
