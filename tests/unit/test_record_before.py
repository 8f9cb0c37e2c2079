"""The record an order is judged on leaves out what carrying out that order put in (PatientRecord.before),
and nothing that was there before it: a device the order's Procedure revised or replaced (focalDevice
with such an action) is a device already in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.catalog import load_catalog
from service.record import build_record
from service.terminology import Terminology, ValueSetError
from tests.builders import (
    PATIENT,
    SCT,
    cards_of,
    catalog,
    concept,
    device,
    meeting_chart,
    procedure,
    service_request,
)
from tests.calls import sample, sign_with_chart
from tests.catalog_support import copy_policies, edit_yaml

NO_DEVICE = {"text": "(no focalDevice)"}
FIRST, REPLACE = "a permanent pump implant", "a pump replacement"


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
        ("62350", {"text": "revised"}, True, REPLACE),  # a catheter revision: a replacement's criteria
        ("62362", {"text": "replaced"}, True, "a pump replacement"),
        # review21 L2: the pump in place before, coded as removed but worded "Implant removal", was read as
        # put in, so a replacement with no older record of the pump became a first implant
        ("62362", concept(SCT, "129303008", "Removal - action") | {"text": "Implant removal"}, True, REPLACE),
        ("62362", concept(SCT, "282089006", "Replacement - action") | {"text": "Implant"}, True, REPLACE),
        # review21b L1: a new implant coded by a SNOMED CT action that says neither is read by its words
        ("62362", concept(SCT, "129325002", "Introduction - action") | {"text": "Implantation"}, True, FIRST),
        ("62362", concept(SCT, "129424004", "Fitting - action") | {"text": "Pump implanted"}, True, FIRST),
        # review22a: the action an implant profile fixes (MII cardiology), sent by its code alone
        ("62362", concept(SCT, "129338005"), True, FIRST),
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
        "read as a pump replacement (a pump is already in place: implanted pump “Implantable "
        "intrathecal infusion pump”; pump implant 62362 on 1 Dec 2026)" in decision["detail"]
    ), decision["detail"]

    _, implant = sign_with_chart(meeting_chart(), body=sample("encounter-discharge-demo-meets"))
    assert not any("read as" in c.get("detail", "") for c in implant["cards"])


def _devices_put_in(action: dict[str, Any], terminology: Terminology) -> tuple[str, ...]:
    """The devices the record says a completed implant Procedure put in, its focal device's `action`."""
    done = procedure("62362", "2025-01-01")
    done["focalDevice"] = [{"manipulated": {"reference": "Device/pump1"}, "action": action}]
    [fact] = build_record(PATIENT, {"Procedure": [done]}, terminology).procedures
    return fact.devices


@pytest.mark.parametrize(
    ("action", "put_in"),
    [
        ({"text": "Implantation"}, True),  # `implant*`: any ending
        ({"text": "inserted"}, True),
        ({"text": "Placed"}, True),
        ({"text": "replaced"}, False),  # "placed" is a whole word
        ({"text": "Replacement"}, False),
        ({"text": "reinsertion"}, False),  # a word's start
        (concept(SCT, "71861002"), True),
        (concept(SCT, "129303008", "Removal - action"), False),
        # a code of either value set decides, whatever the words (review21 L2)
        (concept(SCT, "129303008", "Removal - action") | {"text": "Implant removal"}, False),
        (concept(SCT, "360325005") | {"text": "implanted catheter"}, False),  # Simple removal - action
        (concept(SCT, "713295009") | {"text": "Pump implant"}, False),  # Surgical replacement - action
        (concept(SCT, "129426002") | {"text": "Implant adjustment"}, False),  # Adjustment - action
        (concept(SCT, "360146007") | {"text": "Catheter re-insertion"}, False),  # Repositioning - action
        (concept(SCT, "386746003") | {"text": "Implanted pump refill"}, False),  # Maintenance - action
        (concept(SCT, "129336009"), True),  # Implantation - action, by its code alone
        (concept(SCT, "129338005"), True),  # Surgical implantation - action (review22a), code alone
        (concept(SCT, "425362007") | {"text": "Pump exchange"}, True),  # Surgical insertion - action
        # a code in neither: the words decide, as before (review21b L1)
        (concept(SCT, "129325002", "Introduction - action") | {"text": "Implantation"}, True),
        (concept(SCT, "129325002", "Introduction - action") | {"text": "Pump refill"}, False),
        (concept(SCT, "129424004", "Fitting - action") | {"text": "Pump implanted"}, True),
    ],
)
def test_what_an_action_says_of_a_device_put_in(action: dict[str, Any], put_in: bool) -> None:
    assert _devices_put_in(action, catalog().terminology) == (("Device/pump1",) if put_in else ())


def test_the_codes_that_say_a_device_was_not_put_in_are_the_value_sets_data(tmp_path: Path) -> None:
    """review21 L2: which SNOMED CT actions say the device was in place before is `device-not-put-in`'s
    data: a code taken out of it is read by the words again, one added is read as not put in."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "device-not-put-in.yaml", lambda raw: raw.update(snomed=["129424004"]))
    terminology = load_catalog(root).terminology
    removal = concept(SCT, "129303008", "Removal - action") | {"text": "Implant removal"}
    assert _devices_put_in(removal, terminology) == ("Device/pump1",)
    fitted = concept(SCT, "129424004", "Fitting - action") | {"text": "Pump implanted"}
    assert _devices_put_in(fitted, terminology) == ()


@pytest.mark.parametrize(
    ("edit", "refused"),
    [
        (lambda raw: raw["snomed"].append("257867005"), r"not-put-in: 257867005 also in device-put-in"),
        (lambda raw: raw.update(text=["removal"]), r"not-put-in: only SNOMED CT action codes are read"),
        (lambda raw: raw.update(cpt=["62365"]), r"only SNOMED CT action codes are read .*: not cpt"),
    ],
)
def test_a_device_action_code_read_both_ways_or_words_never_read_are_refused(
    tmp_path: Path, edit: Callable[[Any], object], refused: str
) -> None:
    """A code in both value sets would say put in and not put in; `device-not-put-in`'s words or other
    systems' codes would never be read (an action's words are `device-put-in`'s)."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "device-not-put-in.yaml", edit)
    with pytest.raises(ValueSetError, match=refused):
        load_catalog(root)


def test_the_words_and_codes_that_say_a_device_was_put_in_are_the_value_sets_data(tmp_path: Path) -> None:
    """words21 (debt 4.2): the codes and words were constants in service/record.py; they are the
    `device-put-in` value set's, so a word or code taken out of the data is read no more, and one added
    (with the `*` ending `not_this` has) is read."""
    root = copy_policies(tmp_path)
    edit_yaml(
        root / "valuesets" / "device-put-in.yaml",
        lambda raw: raw.update(snomed=["257867005"], text=["implant*", "insert*", "placement", "position*"]),
    )
    terminology = load_catalog(root).terminology
    assert _devices_put_in({"text": "Placed"}, terminology) == ()
    assert _devices_put_in(concept(SCT, "71861002"), terminology) == ()
    assert _devices_put_in({"text": "Positioned"}, terminology) == ("Device/pump1",)


def test_a_star_only_ends_a_value_sets_word(tmp_path: Path) -> None:
    """A `*` stands for a word's ending; anywhere else it would be read as a literal star, matching
    nothing a chart says."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "device-put-in.yaml", lambda raw: raw.update(text=["im*plant", "insert*"]))
    with pytest.raises(ValueSetError, match=r"text: im\*plant: a `\*` stands only at a word's end"):
        load_catalog(root)


@pytest.mark.parametrize("required", ["device-put-in", "device-not-put-in"])
def test_a_policies_folder_without_the_device_action_words_is_refused(tmp_path: Path, required: str) -> None:
    root = copy_policies(tmp_path)
    (root / "valuesets" / f"{required}.yaml").unlink()
    with pytest.raises(ValueSetError, match=rf"the service needs value set\(s\) {required}"):
        load_catalog(root)
