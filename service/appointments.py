"""appointment-book: the orders behind the Appointments being booked.

An appointment-book call carries Appointments, not orders. CRD puts coverage information for an
Appointment that is `basedOn` a ServiceRequest on that ServiceRequest, so this module finds those
ServiceRequests (in the call's Bundle, or read from the EHR's FHIR server) and hands the rest of
the pipeline the same kind of order Bundle order-sign would send. An order that cannot be had is
reported, with the reason, so the answer can say what it could not check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.fhir.client import FhirError
from service.orders import DraftOrders
from service.shapes import dicts, reference_of, reference_target

Reader = Callable[[str], dict[str, Any] | None]
CANCELLED = ("cancelled", "noshow", "entered-in-error")


@dataclass(frozen=True)
class UnreadOrder:
    """An order an Appointment is based on that this call could not read."""

    appointment: str
    order: str
    reason: str


def _order_reference(reference: str) -> str | None:
    """`ServiceRequest/id` of a relative or absolute reference to a ServiceRequest, else None."""
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "ServiceRequest" and parts[-1]:
        return f"ServiceRequest/{parts[-1]}"
    return None


def _belongs_to(order: Mapping[str, Any], patient_id: str) -> bool:
    subject = reference_target(order.get("subject"))
    return subject is None or subject.rstrip("/").split("/")[-2:] == ["Patient", patient_id]


def appointment_orders(
    appointments: Mapping[str, Any], patient_id: str, read: Reader | None
) -> tuple[dict[str, Any], list[UnreadOrder]]:
    """(a collection Bundle of the ServiceRequests the booked Appointments are based on, the ones
    that could not be read). Cancelled appointments are skipped; each order appears once."""
    in_call = DraftOrders(appointments)
    found: dict[str, dict[str, Any]] = {}
    unread: list[UnreadOrder] = []
    for appointment in in_call.resources:
        if appointment.get("resourceType") != "Appointment" or appointment.get("status") in CANCELLED:
            continue
        for target in filter(None, (reference_target(b) for b in dicts(appointment.get("basedOn")))):
            reference = _order_reference(target)
            if reference is None or reference in found:
                continue
            order, reason = in_call.get(target), ""
            if order is None or order.get("resourceType") != "ServiceRequest":
                order, reason = _read(read, reference)
            if order is not None and not _belongs_to(order, patient_id):
                order, reason = None, "it is an order for another patient"
            if order is None:
                unread.append(UnreadOrder(reference_of(appointment), reference, reason))
            else:
                found[reference] = order
    entries = [{"resource": order} for order in found.values()]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, unread


def _read(read: Reader | None, reference: str) -> tuple[dict[str, Any] | None, str]:
    if read is None:
        return None, "the call gave no FHIR server to read it from"
    try:
        order = read(reference)
    except FhirError as exc:
        return None, f"the EHR's FHIR server did not return it ({exc.reason})"
    if order is None or order.get("resourceType") != "ServiceRequest":
        return None, "the EHR's FHIR server does not have it"
    return order, ""
