"""Helpers shared by the tests of booked appointments and the orders they are based on
(service/appointments.py): the signed pump order as the EHR holds it, an Appointment based on orders,
and the system actions an answer sends for one resource type."""

from __future__ import annotations

import copy
from typing import Any

from tests.support import sign_body

PATIENT_ID = "demo-meets"


def pump_order(
    code: str = "62362", order_id: str = "sr-implant", patient: str = PATIENT_ID
) -> dict[str, Any]:
    """A signed (active) ServiceRequest as the EHR holds it; the sample order-sign's 62362 line."""
    order = copy.deepcopy(sign_body()["context"]["draftOrders"]["entry"][0]["resource"])
    order.update(id=order_id, status="active", subject={"reference": f"Patient/{patient}"})
    order["code"]["coding"][0]["code"] = code
    return order


def appointment(*based_on: str, appointment_id: str = "apt-1", status: str = "proposed") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appointment_id,
        "status": status,
        "start": "2026-12-03T09:00:00Z",
        "end": "2026-12-03T11:00:00Z",
        "participant": [{"actor": {"reference": f"Patient/{PATIENT_ID}"}, "status": "accepted"}],
    }
    if based_on:
        resource["basedOn"] = [{"reference": ref} for ref in based_on]
    return resource


def actions_on(answer: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [a for a in answer.get("systemActions", []) if a["resource"]["resourceType"] == resource_type]
