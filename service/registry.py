"""The registry of CDS services this server offers; discovery is generated from it.

Each service has a stable id and exactly one hook, and each id gets its own handler entry
(never keyed by hook), in the manner of HAPI FHIR's CDS Hooks module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CRD_VERSIONS = ["2.2"]
STANDARD_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
}
CONFIGURATION_OPTIONS = [
    {
        "code": "coverage-info",
        "type": "boolean",
        "name": "Coverage Information",
        "description": "Show whether the order meets the payer's coverage criteria, criterion by criterion.",
        "default": True,
    },
    {
        "code": "unsolicited-determ",
        "type": "boolean",
        "name": "Unsolicited determinations",
        "description": "Allow automatic prior authorization approvals (a PA number) for payers that "
        "grant them; false for what-if calls.",
        "default": True,
    },
    {
        "code": "guideline",
        "type": "boolean",
        "name": "Policy reference",
        "description": "Link to the payer policy as this service checks it.",
        "default": True,
    },
    {
        "code": "clinical-reminder",
        "type": "boolean",
        "name": "Documentation instructions",
        "description": "List exactly what to document next for the order to meet the policy.",
        "default": True,
    },
    {
        "code": "max-cards",
        "type": "integer",
        "name": "Maximum cards",
        "description": "The largest number of cards returned for one call.",
        "default": 10,
    },
]


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str] = field(default_factory=lambda: dict(STANDARD_PREFETCH))

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
            "extension": {
                "davinci-crd.version": list(CRD_VERSIONS),
                "davinci-crd.configuration-options": [dict(o) for o in CONFIGURATION_OPTIONS],
            },
        }


SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id="idds-crd-order-select",
        hook="order-select",
        title="Intrathecal pump coverage requirements (order select)",
        description="When an intrathecal drug delivery system order (CPT 62320-62370, HCPCS E0782/E0783 "
        "and related codes) is selected, shows whether it meets the patient's payer coverage criteria, "
        "criterion by criterion, with the evidence from the chart.",
    ),
    ServiceDefinition(
        id="idds-crd-order-sign",
        hook="order-sign",
        title="Intrathecal pump coverage requirements (order sign)",
        description="When intrathecal drug delivery system orders are signed, shows whether they meet the "
        "patient's payer coverage criteria, criterion by criterion, with the evidence from the chart.",
    ),
    ServiceDefinition(
        id="idds-crd-appointment-book",
        hook="appointment-book",
        title="Intrathecal pump coverage requirements (appointment book)",
        description="When a trial or implant of an intrathecal drug delivery system is booked (an "
        "Appointment based on the pump ServiceRequest), shows whether the order meets the patient's payer "
        "coverage criteria and records the coverage information on the ServiceRequest.",
    ),
)


def find_service(service_id: str) -> ServiceDefinition | None:
    return next((s for s in SERVICES if s.id == service_id), None)


def service_for_hook(hook: object) -> ServiceDefinition:
    """The service answering `hook`; order-select when the hook is unknown (validation then names it)."""
    return next((s for s in SERVICES if s.hook == hook), SERVICES[0])


def discovery_document() -> dict[str, Any]:
    return {"services": [s.discovery_entry() for s in SERVICES]}
