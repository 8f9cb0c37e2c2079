"""A pump already in place recorded as a Device coded by the pump hardware's HCPCS code (contract
§2). The contract names the pump hardware by its HCPCS codes (E0782, E0783, E0786, C1772, C1891) and
accepts them on "a Device whose type carries the code"; an implant code is a replacement when "an
active Device that is an implanted infusion pump" is on the chart. So an active Device typed E0783 is
the pump in place, whatever words it carries or lacks, and a 62362 over it is a replacement: judged by
the replacement rules, not as a first implant that needs a trial. Black-box: order-sign calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    HCPCS,
    device,
    procedure,
)
from tests.contract_support import read_as_replacement

HCPCS_ALIASES = (
    HCPCS,
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
    "urn:oid:2.16.840.1.113883.6.285",
)


def coded_pump(code: str, system: str = HCPCS, status: str = "active") -> dict[str, Any]:
    """A charted Device whose type is the HCPCS `code` alone (no words to read)."""
    return device({"coding": [{"system": system, "code": code}]}, status)


@pytest.mark.parametrize("code", ["E0782", "E0783", "E0786", "C1772", "C1891"])
def test_an_active_device_typed_by_a_pump_hcpcs_code_is_a_pump_in_place(code: str) -> None:
    assert read_as_replacement(coded_pump(code))


@pytest.mark.parametrize("system", HCPCS_ALIASES)
def test_every_hcpcs_alias_and_lower_case(system: str) -> None:
    """Contract §1: every HCPCS alias, compared case-insensitively."""
    assert read_as_replacement(coded_pump("e0783", system))


@pytest.mark.parametrize("status", ["inactive", "entered-in-error"])
def test_an_inactive_coded_pump_is_not_in_place(status: str) -> None:
    assert not read_as_replacement(coded_pump("E0783", status=status))


def test_the_coded_pump_is_the_pump_in_place_for_each_payer() -> None:
    for payer in ("geha", "kpwa", "cbc", "cmm210"):
        assert read_as_replacement(coded_pump("E0783"), payer=payer), payer


def test_a_catheter_or_a_temporary_trial_pump_is_not_a_pump_in_place() -> None:
    """E0785 is a catheter, C2626 the temporary pump of a trial: neither is an implanted pump."""
    assert not read_as_replacement(coded_pump("E0785"))
    assert not read_as_replacement(coded_pump("C2626"))


def test_a_pump_procedure_coded_by_hcpcs_is_undone_by_a_later_removal() -> None:
    """A completed Procedure billed with the pump's HCPCS code shows it in place, as 62360-62362 do,
    until a later removal (62365) takes it out."""
    implanted = procedure("E0783", "2022-01-10", system=HCPCS)
    assert read_as_replacement(implanted)
    assert not read_as_replacement(implanted, procedure("62365", "2023-01-10"))
