"""Whether an intrathecal pump is already in place (contract §2), read from the chart's words and
from the order of its records: an implant code is a replacement over a pump in place, a first implant
otherwise. Black-box: order-sign calls, read from the coverage card's words ("a pump is already in
place", classify.in_place_words)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import device, infusate_request, meeting_chart, payer_coverage, service_request
from tests.contract_support import call, coverage_card

REPLACEMENT = "a pump is already in place"


def read_as_replacement(*chart: dict[str, Any], orders: tuple[dict[str, Any], ...] = ()) -> bool:
    """Whether Cohere reads a 62362 (or `orders`) over `chart` as a pump replacement."""
    ordered = orders or (service_request("62362"), infusate_request())
    answer = call([*meeting_chart(), *chart], *ordered, coverage=payer_coverage("cohere"))
    return REPLACEMENT in coverage_card(answer)["detail"]


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
