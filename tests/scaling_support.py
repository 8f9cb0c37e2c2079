"""Charts with many pain scores, for the tests of the time-bounded pain-score searches.

`pain_chart` writes a patient's chart with an intrathecal trial and its scores around it, plus as
many other pain scores as asked for (spread evenly over the years before the trial window, and a
few recent ones); `ChartClient` answers the service's searches from such a chart in memory (a
FHIR search evaluated on a list: patient, code, status, date bounds, `_sort=-date`, `_count` first
pages), and records what it was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from service.fhir.client import FhirError, SearchResult
from service.fhirdates import parse_datetime
from tests.support import AskingClient

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"


def pain_score(
    patient: str, rid: str, when: datetime, value: float, *, status: str = "final", code: str = "72514-3"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueInteger": value,
    }


def trial_procedure(patient: str, rid: str, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": "62322"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def pain_chart(
    patient: str, trial_at: datetime, now: datetime, filler: int, *, recent: int = 3
) -> list[dict[str, Any]]:
    """The Patient, its trial Procedure, the scores around the trial (baseline 8 a week before, 3
    and 2 and 5 after), `recent` scores in the last weeks (the latest is 6), and `filler` scores of
    7 spread over the 5 years before the trial window."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient},
        trial_procedure(patient, f"{patient}-trial", trial_at),
    ]
    around = [
        (-timedelta(days=7), 8),
        (timedelta(hours=4), 3),
        (timedelta(hours=12), 2),
        (timedelta(hours=30), 5),
    ]
    for n, (offset, value) in enumerate(around):
        resources.append(pain_score(patient, f"{patient}-t{n}", trial_at + offset, value))
    for n in range(recent):
        resources.append(pain_score(patient, f"{patient}-r{n}", now - timedelta(days=3 * (recent - n)), 6))
    start = trial_at - timedelta(days=31 + 5 * 365)
    step = timedelta(days=5 * 365) / max(filler, 1)
    for n in range(filler):
        resources.append(pain_score(patient, f"{patient}-f{n}", start + step * n, 7))
    return resources


def _dates(resource: Mapping[str, Any]) -> datetime | None:
    value = resource.get("effectiveDateTime") or resource.get("performedDateTime")
    return parse_datetime(value) if isinstance(value, str) else None


def _date_matches(when: datetime | None, bound: str) -> bool:
    if when is None:
        return False
    prefix, instant = bound[:2], parse_datetime(bound[2:])
    assert instant is not None, bound
    return {"ge": when >= instant, "le": when <= instant, "lt": when < instant, "gt": when > instant}[prefix]


def _code_matches(resource: Mapping[str, Any], wanted: str) -> bool:
    codings = resource.get("code", {}).get("coding", [])
    for token in wanted.split(","):
        system, _, code = token.partition("|")
        if any(c.get("system") == system and (not code or c.get("code") == code) for c in codings):
            return True
    return False


PAIN_LOINC = frozenset({"72514-3", "38208-5", "38221-8", "56840-2"})  # the pain-score value set


def searched(
    resources: list[dict[str, Any]], params: Mapping[str, Any], first_page: bool
) -> list[dict[str, Any]]:
    """The resources a FHIR server answers a search with: matched by `code`, `status` and `date` bounds,
    newest first under `_sort=-date` (only the first `_count` of them for a first page)."""
    found = list(resources)
    for name, value in params.items():
        if name == "code":
            found = [r for r in found if _code_matches(r, value)]
        elif name == "date":
            for bound in value if isinstance(value, list) else [value]:
                found = [r for r in found if _date_matches(_dates(r), bound)]
        elif name == "status":
            found = [r for r in found if r.get("status") in value.split(",")]
    if params.get("_sort") == "-date":
        found.sort(key=lambda r: _dates(r) or datetime.min.replace(tzinfo=UTC), reverse=True)
        if first_page:
            found = found[: int(params.get("_count", 200))]
    return found


def observations_answer(
    observations: list[dict[str, Any]], params: Mapping[str, Any], first_page: bool
) -> list[dict[str, Any]]:
    """A chart's Observations as the service's two Observation searches see them: the pain-score
    searches get the pain scores they match, the other search every other Observation."""
    if any(f"|{code}" in str(params.get("code", "")) for code in PAIN_LOINC):
        return searched(observations, params, first_page)
    return [o for o in observations if not _code_matches(o, ",".join(f"{LOINC}|{c}" for c in PAIN_LOINC))]


class ChartClient(AskingClient):
    """Answers searches from a chart held in memory, as a FHIR server would; records each search."""

    origin = "https://ehr.example.org"

    def __init__(
        self, resources: list[dict[str, Any]], fails: Callable[[str, Mapping[str, Any]], bool] | None = None
    ) -> None:
        self.resources = resources
        self.fails = fails  # the searches (type, parameters) the server answers with HTTP 503
        self.searches: list[dict[str, Any]] = []

    def search(self, resource_type: str, params: Mapping[str, Any], first_page: bool = False) -> SearchResult:
        self.searches.append({"type": resource_type, **params, "first_page": first_page})
        if self.fails is not None and self.fails(resource_type, params):
            raise FhirError("HTTP 503", 503)
        found = searched(
            [r for r in self.resources if r["resourceType"] == resource_type], params, first_page
        )
        return SearchResult(found, [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        return None


def transactions(resources: list[dict[str, Any]], size: int = 2_500) -> list[dict[str, Any]]:
    """The resources as transaction Bundles of `size` PUTs (their ids kept), to load a server."""
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources
    ]
    return [
        {"resourceType": "Bundle", "type": "transaction", "entry": entries[start : start + size]}
        for start in range(0, len(entries), size)
    ]
