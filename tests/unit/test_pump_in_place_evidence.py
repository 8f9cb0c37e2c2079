"""Whether an intrathecal pump is already in place (contract §2), read from the chart's words and
from the order of its records: an implant code is a replacement over a pump in place, a first implant
otherwise. Black-box: order-sign calls, read from the coverage card's words ("a pump is already in
place", classify.in_place_words)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    HCPCS,
    ICD,
    condition,
    device,
    infusate_request,
    procedure,
    service_request,
)
from tests.contract_support import device_request, read_as_replacement


@pytest.mark.parametrize(
    "words",
    [
        "Implantable programmable infusion pump",  # E0783's descriptor, in its own order (contract23 L1)
        "Implanted programmable infusion pump",
        "implantable programmable infusion pumps",
    ],
)
def test_a_device_named_an_implantable_programmable_infusion_pump_is_in_place(words: str) -> None:
    assert read_as_replacement(device({"text": words}))


def test_a_programmable_device_that_is_no_infusion_pump_is_not_in_place() -> None:
    assert not read_as_replacement(device({"text": "Implantable programmable pulse generator"}))


REMOVAL = procedure("62365", "2022-03-01T10:00:00Z")  # the reservoir or pump taken out


@pytest.mark.parametrize(
    "shown",
    [
        pytest.param(procedure("62370", "2021-01-10"), id="refill-62370"),
        pytest.param(procedure("95990", "2021-06-10"), id="refill-95990"),
        pytest.param(condition(ICD, "Z45.1", "2021-06-10"), id="Z45.1"),
        pytest.param(procedure("62362", "2020-05-01"), id="implant"),
        # a pump or catheter complication, with its 7th character, often why the pump came out (forms23)
        pytest.param(condition(ICD, "T85.610A", "2022-02-20"), id="T85.610A"),
        pytest.param(condition(ICD, "T85.738D", "2022-02-20"), id="T85.738D"),
    ],
)
def test_a_later_pump_removal_answers_the_evidence_of_a_pump(shown: dict[str, Any]) -> None:
    """Contract §2 lists a refill procedure and Z45.1 as a pump in place; a completed removal (62365)
    after them means none is in place now (§3: the most recent documented form of one fact decides),
    as after an implant: a new 62362 is a first implant (contract23 Q4)."""
    assert read_as_replacement(shown)
    assert not read_as_replacement(procedure("62362", "2020-05-01"), shown, REMOVAL)


@pytest.mark.parametrize(
    "again",
    [
        pytest.param(procedure("62370", "2023-01-10"), id="refill"),
        pytest.param(condition(ICD, "Z45.1", "2023-01-10"), id="Z45.1"),
        pytest.param(procedure("62362", "2022-09-01"), id="implant"),
        pytest.param(condition(ICD, "T85.615A", "2023-01-10"), id="T85.615A"),
    ],
)
def test_evidence_after_the_removal_shows_a_pump_again(again: dict[str, Any]) -> None:
    assert read_as_replacement(
        procedure("62362", "2020-05-01"), procedure("62370", "2021-01-10"), REMOVAL, again
    )


def test_an_active_pump_device_stays_in_place_whatever_was_removed() -> None:
    """A Device has no date to weigh: an active one typed as the pump is in place, as before."""
    assert read_as_replacement(
        procedure("62370", "2021-01-10"), REMOVAL, device({"text": "SynchroMed II pump"})
    )


def ordered_device(words: dict[str, Any], device_id: str = "dev-new") -> dict[str, Any]:
    """The hardware a draft order names: an active Device of the patient, typed E0783, on the EHR's server."""
    typed = {"coding": [{"system": HCPCS, "code": "E0783"}], **words}
    return {**device(typed), "id": device_id}


@pytest.mark.parametrize(
    "words", [{"text": "SynchroMed II intrathecal pump"}, {}], ids=["with-words", "code-only"]
)
@pytest.mark.parametrize("written", ["Device/dev-new", "Device/dev-new/_history/2"])
def test_the_device_a_draft_order_names_is_not_the_pump_in_place(words: dict[str, Any], written: str) -> None:
    """contract23 M2: the Device a draft DeviceRequest is coded by (`codeReference`, contract §2) is the
    hardware ordered, not yet implanted: a first implant is not read as a replacement of itself."""
    order = device_request("E0783", HCPCS, codeReference={"reference": written})
    assert not read_as_replacement(ordered_device(words), orders=(order, infusate_request()))


@pytest.mark.parametrize("element", ["supportingInfo", "reasonReference"])
def test_a_device_an_order_cites_but_is_not_coded_by_stays_in_place(element: str) -> None:
    """A Device a draft order cites otherwise than as the hardware it orders (a 62362 ServiceRequest's
    supporting information or reason) may be the pump it replaces: still in place."""
    order = service_request("62362")
    order[element] = [{"reference": "Device/dev-old"}]
    old = ordered_device({"text": "SynchroMed II intrathecal pump"}, "dev-old")
    assert read_as_replacement(old, orders=(order, infusate_request()))


def test_a_pump_device_the_orders_do_not_name_is_still_in_place() -> None:
    order = device_request("E0783", HCPCS, codeReference={"reference": "Device/dev-new"})
    old = ordered_device({"text": "SynchroMed II intrathecal pump"}, "dev-old")
    assert read_as_replacement(ordered_device({}), old, orders=(order, infusate_request()))
