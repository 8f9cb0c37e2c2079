"""The record an order is judged on leaves out what carrying out that order put in (PatientRecord.before),
and nothing that was there before it: a device the order's Procedure revised or replaced (focalDevice
with such an action) is a device already in place."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    SCT,
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


def _implanted(authored: str | None, performed: str, pumps: int = 1) -> list[dict[str, Any]]:
    """An open implant order (`authored`: its authoredOn, None: not given) and the implant as an OR
    system records it: a completed 62362 Procedure naming neither the order (`basedOn`) nor the pump
    (`focalDevice`), and `pumps` active pump Devices."""
    order = service_request("62362")
    order["status"] = "active"
    if authored is not None:
        order["authoredOn"] = authored
    done = procedure("62362", performed, display="Implantation of programmable intrathecal pump")
    pump = {
        "coding": [{"system": SCT, "code": "700226009", "display": "Implantable intrathecal infusion pump"}]
    }
    return [order, done, *(device(pump) for _ in range(pumps))]


@pytest.mark.parametrize(
    ("authored", "performed", "pumps"),
    [
        ("2026-12-04", "2026-12-04T08:00:00Z", 1),  # this morning, the OR naming neither order nor pump
        (None, "2026-12-04T08:00:00Z", 1),
        ("2026-12-04", "2026-12-04T08:00:00Z", 0),  # a replacement: the old pump's implant recorded,
    ],  # today's recorded without its Device
)
def test_an_active_pump_or_an_implant_the_order_does_not_name_is_a_pump_in_place(
    authored: str | None, performed: str, pumps: int
) -> None:
    """Contract §2: a replacement "when an intrathecal pump is already in place: an active Device that is
    an implanted infusion pump, or a completed Procedure 62360-62362 with no later 62365". A record that
    names neither the order nor its Device cannot be told from the old pump of a real replacement
    (session review s17 review2 N-1: reading one done on or after the order's day as the order carried
    out made a replacement a first implant), so it is read as the contract says, and the decision card
    says which record makes the order a replacement."""
    chart = [*meeting_chart(), *_implanted(authored, performed, pumps)]
    if not pumps:
        chart.append(procedure("62362", "2019-03-01T08:00:00Z"))
    _, answer = sign_with_chart(chart, body=sample("encounter-discharge-demo-meets"))
    [guideline] = cards_of(answer["cards"], "guideline")
    assert "criteria for a pump replacement" in guideline["detail"], guideline["detail"]


def test_a_decision_read_as_a_replacement_says_which_record_shows_the_pump_in_place() -> None:
    """The policy card named the kind ("criteria for a pump replacement") while the decision card
    beside it said only "meets all 14 coverage criteria" (GEHA judges implant and replacement alike):
    the decision card says it reads the implant code as a replacement, and which record makes it one
    (session review s17/ehr, M-3)."""
    chart = [*meeting_chart(), *_implanted("2026-12-04", "2026-12-01T08:00:00Z")]  # before the order
    _, answer = sign_with_chart(chart, body=sample("encounter-discharge-demo-meets"))
    [decision] = cards_of(answer["cards"])
    assert (
        "read as a pump replacement (a pump is already in place: an active Device “Implantable "
        "intrathecal infusion pump”; Procedure 62362 on 1 Dec 2026)" in decision["detail"]
    ), decision["detail"]

    _, implant = sign_with_chart(meeting_chart(), body=sample("encounter-discharge-demo-meets"))
    assert not any("read as" in c.get("detail", "") for c in implant["cards"])
