"""A pump not found in place while records that could show one could not be read (review30c): whether an
implant is a first implant or a replacement is not known (contract §2: "a replacement when an intrathecal
pump is already in place: an active `Device` …"), so an answer holds only if it holds for both, as it does
for a pump found that a removal not read may have taken out (test_removal_unread.py). A pump Device whose
status is none of R4's codes ("Active", null) could not be read (review29d L6); CMM-210 judged such a
replacement a first implant and answered "not covered" on a first implant's criterion."""

from __future__ import annotations

from typing import Any

import pytest

from cards.items import Episode
from cards.render import detail
from service.engine.model import Outcome
from tests.builders import (
    coded_assessment,
    determine,
    device,
    infusate_request,
    meeting_chart,
    modified,
    payer_coverage,
    procedure,
    service_request,
)
from tests.contract_support import call, coverage_card

PUMP_TEXT = {"text": "SynchroMed II implanted infusion pump"}
# what a replacement asks that the meeting chart (a first implant's) lacks: the existing pump's state
REPLACEMENT_EVIDENCE = [
    coded_assessment("device-status", "end-of-battery"),
    coded_assessment("replacement-reason", "end-of-battery"),
]
CMM210 = "cmm-210-idds"


def pump(status: Any) -> dict[str, Any]:
    return {**device(PUMP_TEXT), "status": status}


@pytest.mark.parametrize("status", ["Active", None, ["active"]])
@pytest.mark.parametrize("payer", ["cmm210", "cohere"])
def test_a_pump_device_that_could_not_be_read_leaves_the_kind_open(payer: str, status: Any) -> None:
    """A replacement's chart whose pump Device has a status none of R4's codes: never "not covered" on a
    first implant's criterion (CMM-210's 6 months of opioids), never a first implant's list alone (Cohere);
    the card asks first whether a pump is already in place. Read ("active"), it meets as a replacement."""
    chart = [*meeting_chart(), *REPLACEMENT_EVIDENCE]
    orders = (service_request("62362"), infusate_request())
    read = coverage_card(call([*chart, pump("active")], *orders, coverage=payer_coverage(payer)))
    assert " meets all " in read["summary"]
    card = coverage_card(call([*chart, pump(status)], *orders, coverage=payer_coverage(payer)))
    assert "not covered" not in card["summary"] and " meets " not in card["summary"]
    assert card["summary"].endswith("— Whether a pump is already in place")
    assert "records that could show one could not be read (implanted devices: 1 record(s)" in card["detail"]
    assert "if one is, " in card["detail"] and "judges this order by other criteria" in card["detail"]


def test_a_procedure_not_read_leaves_the_kind_open_and_a_failure_of_either_kind_stands() -> None:
    """A 62362 implant carrying a modifier extension: a CMM-210 first implant failing a first implant's
    criterion is not "not covered" (the implant may show a pump in place); GEHA, whose criteria are the
    same for either kind, answers as before (an active pacemaker: not covered)."""
    chart = [*meeting_chart(), modified(procedure("62362", "2020-02-02"))]
    d = determine(chart, policy_id=CMM210)
    assert d.request_kind == "permanent-implant" and d.outcome == Outcome.INSUFFICIENT
    assert d.in_place_unsure.startswith("procedure history: 1 record(s)") and not d.in_place
    assert "whether a pump is already in place could not be checked" in d.explanation
    assert "Whether a pump is already in place" in detail(Episode.of([d]))
    # GEHA judges either kind by the same criteria: its answer stands, and its card does not ask
    pacemaker = determine([*chart, device({"text": "Cardiac pacemaker"})])
    assert not pacemaker.in_place_unsure and pacemaker.outcome == Outcome.DOES_NOT_MEET


def test_with_every_record_read_no_pump_found_is_a_first_implant() -> None:
    """The controls: a pump Device inactive, or of unknown status, is no pump in place (contract §2: an
    active Device); every record was read, so the implant is a first implant and CMM-210's answer stands, as
    it does with the devices not fetched (left as before); a pump found (a 62362 Procedure) beside an
    unreadable Device is a replacement as before."""
    for status in ("inactive", "unknown"):
        d = determine([*meeting_chart(), pump(status)], policy_id=CMM210)
        assert d.request_kind == "permanent-implant" and not d.in_place_unsure
        assert d.outcome == Outcome.DOES_NOT_MEET
    # a kind not fetched (no FHIR server, a failed search) is left as it was: no pump found, none in place
    not_fetched = determine(meeting_chart(), unavailable={"Device": "the search timed out"}, policy_id=CMM210)
    assert not not_fetched.in_place_unsure and not_fetched.outcome == Outcome.DOES_NOT_MEET
    found = determine([*meeting_chart(), procedure("62362", "2020-02-02"), pump("Active")], policy_id=CMM210)
    assert found.request_kind == "replacement" and not found.in_place_unsure
