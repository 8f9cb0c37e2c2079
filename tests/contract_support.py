"""Black-box reading of the service's answers for the clinical-data-contract audit
(tests/unit/test_contract_audit.py): an order-sign call against a fake FHIR server holding a chart,
and what its coverage card says of each criterion (❌ not met, ❔ not documented, ✅ met), its
verdict and the coverage-information it writes back. The audit checks the contract's clauses from
the answer alone, so these helpers read only what an EHR sees."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.app import create_app
from service.fhir.client import SearchResult
from tests.builders import (
    PATIENT,
    cards_of,
    infusate_request,
    meeting_chart,
    payer_coverage,
    service_request,
    sign_request,
)
from tests.builders import catalog as compiled_catalog
from tests.conformance import COVERAGE_INFO, check_response
from tests.scaling_support import observations_answer
from tests.support import RecordingFactory, RecordingFhirClient, open_settings, post_json, with_fhir

MET = "✅"
NOT_MET = "❌"
NOT_DOCUMENTED = "❔"
_ITEM = re.compile(r"^- (❌|❔) \*\*(.+?)\*\*(.*)$")


def today() -> date:
    """The call's day as the service takes it (UTC, its default time zone)."""
    return datetime.now(UTC).date()


def days_ago(days: int) -> str:
    """The date `days` before the call's day, as a FHIR date."""
    return (today() - timedelta(days=days)).isoformat()


def instant_days_ago(days: float, hour: int = 9) -> str:
    """A FHIR instant `days` before the call's day (at `hour` UTC of that day)."""
    moment = datetime.combine(today(), datetime.min.time(), UTC).replace(hour=hour) - timedelta(days=days)
    return moment.isoformat().replace("+00:00", "Z")


class ChartServer(RecordingFhirClient):
    """The EHR's FHIR server holding a chart: searches answered by type (the pain-score search by
    its parameters, as a server would), reads by `Type/id` (a payer Organization read by reference)."""

    def __init__(self, chart: list[dict[str, Any]]) -> None:
        super().__init__()
        self.chart = chart

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        found = [r for r in self.chart if r["resourceType"] == resource_type]
        if resource_type == "Observation":
            # a server's `date` matches effective[x] whole: a period by its start here
            shadows = [_dated(r) for r in found]
            original = {id(shadow): r for shadow, r in zip(shadows, found, strict=True)}
            found = [original[id(r)] for r in observations_answer(shadows, params, first_page)]
        return SearchResult(found, [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        kind, _, wanted = reference.rpartition("/")
        kind = kind.rsplit("/", 1)[-1]
        return next((r for r in self.chart if r["resourceType"] == kind and r.get("id") == wanted), None)


def _dated(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` as the stand-in server's date search sees it: dated by its period's start when it
    has no effectiveDateTime."""
    period = resource.get("effectivePeriod")
    if "effectiveDateTime" in resource or not isinstance(period, dict) or "start" not in period:
        return resource
    return {**resource, "effectiveDateTime": period["start"]}


def call_with(request: dict[str, Any], chart: list[dict[str, Any]]) -> dict[str, Any]:
    """The service's answer to the order-sign `request` against an EHR whose server holds `chart`
    (the clinical resources made the patient's), checked against CDS Hooks and CRD."""
    patient = {"reference": f"Patient/{PATIENT}"}
    held = [{**r, "subject": patient} if "subject" in r else r for r in chart]
    app = create_app(open_settings(), compiled_catalog(), client_factory=RecordingFactory(ChartServer(held)))
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", with_fhir(request))
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    assert check_response(answer, request) == []
    return answer


def call(
    chart: list[dict[str, Any]], *orders: dict[str, Any], coverage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The service's answer to an order-sign of `orders` for a patient whose EHR holds `chart`,
    covered by `coverage` (GEHA when None)."""
    return call_with(sign_request(*orders, coverage=coverage or payer_coverage("geha")), chart)


def coverage_card(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer's one coverage-information card."""
    [card] = cards_of(answer["cards"])
    return card


def marks(answer: dict[str, Any]) -> dict[str, str]:
    """criterion label → ❌ or ❔, for each criterion the coverage card lists as open."""
    found: dict[str, str] = {}
    for line in coverage_card(answer)["detail"].splitlines():
        if match := _ITEM.match(line):
            found[match.group(2)] = match.group(1)
    return found


def line_of(answer: dict[str, Any], label: str) -> str:
    """The coverage card's line for the criterion `label` ('' when it is not listed)."""
    for line in coverage_card(answer)["detail"].splitlines():
        if (match := _ITEM.match(line)) and match.group(2) == label:
            return line
    return ""


def mark_of(answer: dict[str, Any], label: str) -> str:
    """How the coverage card marks the criterion `label`: ❌, ❔, or ✅ when it does not list it open."""
    return marks(answer).get(label, MET)


def verdict(answer: dict[str, Any]) -> str:
    """The coverage card's verdict, its first bold words ('Meets the criteria', 'Not covered as
    ordered', 'Documentation needed', ...)."""
    detail = coverage_card(answer)["detail"]
    found = re.match(r"\*\*(.+?)\*\*", detail)
    return found.group(1) if found else ""


def payer_label(answer: dict[str, Any]) -> str:
    """The coverage card's source label (the payer or product whose policy judged the order)."""
    return str(coverage_card(answer)["source"]["label"])


def coverage_information(answer: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """The sub-extensions (url → value) the answer writes back on the order of `resource_type`."""
    for action in answer.get("systemActions", []):
        resource = action.get("resource", {})
        if resource.get("resourceType") != resource_type:
            continue
        for extension in resource.get("extension", []):
            if extension["url"] == COVERAGE_INFO:
                return {
                    s["url"]: next((v for k, v in s.items() if k.startswith("value")), s.get("extension"))
                    for s in extension["extension"]
                }
    return {}


def policy_title(answer: dict[str, Any]) -> str:
    """The summary of the answer's guideline card: '<payer> policy: <title of the policy applied>'."""
    [card] = cards_of(answer["cards"], "guideline")
    return str(card["summary"])


def months_ago(months: int, days: int = 0) -> str:
    """The date `months` calendar months before the call's day (the day clamped to the month's
    length), then `days` more days back (negative: forward)."""
    day = today()
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    last = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return (date(year, month + 1, min(day.day, last)) - timedelta(days=days)).isoformat()


def device_request(code: str, system: str, **fields: Any) -> dict[str, Any]:
    """A draft DeviceRequest of pump hardware coded `code` in `system` (or, with `codeReference` in
    `fields`, by reference instead)."""
    resource: dict[str, Any] = {
        "resourceType": "DeviceRequest",
        "id": f"dr-{code.lower()}",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        **fields,
    }
    if "codeReference" not in fields:
        resource["codeCodeableConcept"] = {"coding": [{"system": system, "code": code}]}
    return resource


def status_concept(kind: str, code: str) -> dict[str, Any]:
    """A Condition's or AllergyIntolerance's clinicalStatus / verificationStatus concept: `kind` is
    condition-clinical, condition-ver-status, allergyintolerance-clinical or -verification."""
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{kind}", "code": code}]}


REPLACEMENT = "a pump is already in place"


def read_as_replacement(
    *chart: dict[str, Any], payer: str = "cohere", orders: tuple[dict[str, Any], ...] = ()
) -> bool:
    """Whether `payer` reads a 62362 with its drug (or `orders`) over a chart meeting its criteria and
    `chart` as a pump replacement (contract §2: a pump already in place)."""
    ordered = orders or (service_request("62362"), infusate_request())
    answer = call([*meeting_chart(), *chart], *ordered, coverage=payer_coverage(payer))
    return REPLACEMENT in coverage_card(answer)["detail"]
