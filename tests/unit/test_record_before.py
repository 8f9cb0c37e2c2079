"""The record an order is judged on leaves out what carrying out that order put in (PatientRecord.before),
and nothing that was there before it: a device the order's Procedure revised or replaced (focalDevice
with such an action) is a device already in place."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    cards_of,
    device,
    meeting_chart,
    procedure,
    service_request,
)
from tests.calls import sample, sign_with_chart

NO_DEVICE = {"text": "(no focalDevice)"}


def _carried_out(code: str, action: dict[str, Any] | None, for_this_order: bool) -> list[dict[str, Any]]:
    """An open order `code` and the completed Procedure that carried it out (or another order)
    naming the pump Device as its focal device with `action` (NO_DEVICE: no Device at all)."""
    order = service_request(code)
    order["status"] = "active"
    done = procedure(code, "2026-12-04T10:00:00Z")
    done["basedOn"] = [{"reference": f"ServiceRequest/{order['id'] if for_this_order else 'an-earlier-one'}"}]
    if action is NO_DEVICE:
        return [order, done]
    pump = device({"text": "SynchroMed II intrathecal pump"})
    focal: dict[str, Any] = {"manipulated": {"reference": f"Device/{pump['id']}"}}
    if action is not None:
        focal["action"] = action
    done["focalDevice"] = [focal]
    return [order, pump, done]


@pytest.mark.parametrize(
    ("code", "action", "for_this_order", "kind"),
    [
        ("62362", NO_DEVICE, True, "a permanent pump implant"),  # the implant it was (review 3, H2)
        ("62362", None, True, "a permanent pump implant"),  # and the pump it put in
        ("62362", {"text": "implanted"}, True, "a permanent pump implant"),
        ("62362", NO_DEVICE, False, "a pump replacement"),  # an implant done for another order
        ("62350", {"text": "revised"}, True, "a pump replacement"),  # a catheter revision beside the pump
        ("62362", {"text": "replaced"}, True, "a pump replacement"),
    ],
)
def test_what_carrying_out_the_order_put_in_is_not_a_pump_already_in_place_but_what_it_revised_is(
    code: str, action: dict[str, Any] | None, for_this_order: bool, kind: str
) -> None:
    """encounter-discharge after the procedure, its order still active in the EHR. Before the record
    left out what the order's own Procedure did, the order was judged a replacement of the pump it put
    in; then, for a while, every Device that Procedure named was left out, so the pump a catheter
    revision or a replacement named made the order a first implant (session review s34)."""
    chart = [*meeting_chart(), *_carried_out(code, action, for_this_order)]
    _, answer = sign_with_chart(chart, body=sample("encounter-discharge-demo-meets"))
    [guideline] = cards_of(answer["cards"], "guideline")
    assert f"criteria for {kind}" in guideline["detail"], guideline["detail"]
