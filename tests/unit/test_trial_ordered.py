"""A trial already ordered in the EHR (signed and dispatched, not yet done) is a trial ordered: the
implant's order-select/-sign proposes no other one (session review s17/ehr, M-2).

An open trial ServiceRequest is no trial done (contract §3: the trial is "a completed Procedure with
CPT 62320-62327 ... plus its result"), so the trial criteria stay undocumented; only the proposal of a
second trial order, and its sentence "No intrathecal trial is on the chart or among the draft orders",
go. The open trial orders are read from the order hooks' own prefetch key `openTrialOrders` (declared
in discovery, narrowed by the trial codes), else one search, made only when the call orders an implant
without a trial; a DeviceRequest of a trial code (C2626's temporary pump) the same way, under
`openTrialDeviceOrders`. An open order written and planned more than `trial_ordered_days` (90, in
policies/order-codes.yaml) ago is left behind, no trial ordered (review s17 review2 N-4).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.catalog import load_catalog
from service.fhirdates import human_date
from service.next_steps import last_day
from service.registry import SERVICES
from tests.builders import cards_of, meeting_chart, service_request, without_codes
from tests.builders import catalog as compiled_catalog
from tests.calls import sample, sign_with_chart
from tests.catalog_support import copy_policies, edit_yaml
from tests.support import (
    FHIR_SERVER,
    RecordingFactory,
    RecordingFhirClient,
    numbered_steps,
    open_settings,
    post_json,
    select_body,
    sign_body,
    with_fhir,
)

OPEN_TRIAL_ORDERS = "openTrialOrders"  # the prefetch keys (service/fhir/queries.py), as an EHR writes them
OPEN_TRIAL_DEVICE_ORDERS = "openTrialDeviceOrders"
NO_TRIAL = without_codes(meeting_chart(), "62324")
HCPCS_SYSTEMS = (
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "https://bluebutton.cms.gov/resources/codesystem/hcpcs",
    "urn:oid:2.16.840.1.113883.6.285",
)


def _days_from_today(days: int) -> str:
    """A date `days` after the call's day (UTC, the test deployment's time zone); before it when negative."""
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _trial_order(status: str, code: str = "62323") -> dict[str, Any]:
    order = service_request(code)
    order["status"] = status
    order["authoredOn"] = _days_from_today(-6)
    return order


def _trial_device_order(status: str = "active", code: str = "C2626") -> dict[str, Any]:
    """A trial ordered as a device (contract §2: HCPCS in `DeviceRequest.codeCodeableConcept`)."""
    return {
        "resourceType": "DeviceRequest",
        "id": f"dr-{code}-{status}",
        "status": status,
        "intent": "order",
        "codeCodeableConcept": {"coding": [{"system": HCPCS_SYSTEMS[0], "code": code}]},
        "authoredOn": _days_from_today(-6),
    }


def _trial_pump(device_id: str = "trial-pump") -> dict[str, Any]:
    """The temporary trial pump a DeviceRequest may be coded by (contract §2: a `Device` whose `type`
    carries the code), not yet in use (inactive: no device in place for the record)."""
    return {
        "resourceType": "Device",
        "id": device_id,
        "status": "inactive",
        "type": {"coding": [{"system": HCPCS_SYSTEMS[2], "code": "C2626"}]},
    }


def _trial_device_order_by_reference(reference: str, contained: bool = False) -> dict[str, Any]:
    """A trial ordered as a device coded only by `codeReference` (contract §2; FHIR R4
    `DeviceRequest.code[x]`: Reference(Device)), to the Device the reference names."""
    order = {
        "resourceType": "DeviceRequest",
        "id": "dr-by-reference",
        "status": "active",
        "intent": "order",
        "codeReference": {"reference": reference},
        "authoredOn": _days_from_today(-6),
    }
    if contained:
        order["contained"] = [_trial_pump(reference.removeprefix("#"))]
    return order


def _snomed_first() -> dict[str, Any]:
    """A trial order its EHR codes in SNOMED first (here a code of no trial), CPT 62323 second: a trial
    by 62323 (session review s18 R-3: the step named it by its first coding, "232717009, …")."""
    order = _trial_order("active")
    snomed = {"system": "http://snomed.info/sct", "code": "232717009", "display": "Coronary artery bypass"}
    order["code"]["coding"].insert(0, snomed)
    return order


def _proposals(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cards_of(cards, "clinical-reminder") if "suggestions" in c]


@pytest.mark.parametrize("body", [sign_body, select_body], ids=["order-sign", "order-select"])
@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_an_open_trial_order_in_the_ehr_is_a_trial_ordered(body: Any, status: str) -> None:
    _, without = sign_with_chart(NO_TRIAL, body=body())
    assert len(_proposals(without["cards"])) == 1  # the same call with no trial ordered: proposed

    _, response = sign_with_chart([*NO_TRIAL, _trial_order(status)], body=body())
    assert _proposals(response["cards"]) == []
    assert not any("order the trial" in c["summary"] for c in response["cards"])
    # the trial is ordered, not done: its result is still what the implant's criteria lack
    [decision] = cards_of(response["cards"])
    assert "Trial relief" in decision["detail"]


@pytest.mark.parametrize(
    ("order", "named"),
    [
        (_trial_order("active"), "62323, {written}"),
        (_trial_order("on-hold"), "62323, {written}, on hold"),
        (_trial_device_order(), "C2626, {written}"),
        (_snomed_first(), "62323, {written}"),
    ],
    ids=["active", "on-hold", "device", "by-its-trial-code"],
)
def test_the_step_to_document_the_trial_names_the_trial_already_ordered(
    order: dict[str, Any], named: str
) -> None:
    """Review2 N-9: with the trial ordered, the "order the trial" card is gone, and the decision and
    Instructions cards still said "Document the trial: …" as if nothing was ordered. The step names
    the open order (its code, the day it was written, its status when not active), a DeviceRequest's
    by its `codeCodeableConcept`."""
    named = named.format(written=human_date(date.fromisoformat(order["authoredOn"])))
    _, response = sign_with_chart([*NO_TRIAL, order])
    step = f"Trial already ordered ({named}): once done, document the trial: pain score"
    [decision] = cards_of(response["cards"])
    [trial] = [line for line in decision["detail"].splitlines() if "**D. Trial relief >= 50 %**" in line]
    assert f"— {step}" in trial, trial
    # its one item, its own step, said whole there: no Instructions card says it again (cards23 LOW)
    assert cards_of(response["cards"], "clinical-reminder") == []


def test_with_no_trial_ordered_the_step_is_as_before() -> None:
    _, response = sign_with_chart([*NO_TRIAL, _trial_order("completed")])
    assert "already ordered" not in str(response["cards"])


@pytest.mark.parametrize("status", ["completed", "revoked", "entered-in-error", "draft"])
def test_a_trial_order_done_withdrawn_or_unsigned_is_no_trial_ordered(status: str) -> None:
    """A completed order is a trial done only when its Procedure is on the chart (contract §3); a
    revoked or mistaken one orders nothing; a draft in the EHR (not among the call's) is not signed."""
    _, response = sign_with_chart([*NO_TRIAL, _trial_order(status)])
    assert len(_proposals(response["cards"])) == 1


@pytest.mark.parametrize("change", [{"doNotPerform": True}, {"intent": "proposal"}, {"intent": "plan"}])
def test_an_open_trial_order_that_orders_no_trial_is_no_trial_ordered(change: dict[str, Any]) -> None:
    """Review s17 review2 N-4: an open trial ServiceRequest saying not to do it, or only proposing or
    planning it, was taken as the trial ordered and the proposal withheld."""
    _, response = sign_with_chart([*NO_TRIAL, {**_trial_order("active"), **change}])
    assert len(_proposals(response["cards"])) == 1


def test_an_open_order_of_another_code_is_no_trial_ordered() -> None:
    _, response = sign_with_chart([*NO_TRIAL, _trial_order("active", code="62350")])
    assert len(_proposals(response["cards"])) == 1


def _searches(
    body: dict[str, Any], resource_type: str = "ServiceRequest"
) -> list[tuple[str, dict[str, Any]]]:
    """The `resource_type` searches the service made for `body`, against a server holding nothing."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(), compiled_catalog(), client_factory=factory)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200
    return [args for kind, args in factory.client.calls if kind == "search" and args[0] == resource_type]


def test_one_search_only_when_the_call_orders_an_implant_without_a_trial() -> None:
    [(_, params)] = _searches(sign_body())
    assert params["status"] == "active,on-hold"
    codes = params["code"].split(",")
    assert "http://www.ama-assn.org/go/cpt|62323" in codes
    assert "urn:oid:2.16.840.1.113883.6.12|62323" in codes  # the contract's other CPT system (§1)
    assert not any(c.endswith(("|62362", "|62350")) for c in codes)  # trial codes only

    trial = sign_body()
    for entry in trial["context"]["draftOrders"]["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"]["code"]["coding"][0]["code"] = "62324"
    assert _searches(trial) == []  # a trial order: nothing to propose
    assert _searches(sample("order-select-95990-demo-refill")) == []
    assert _searches(sample("order-dispatch-62362-demo-meets")) == []  # proposes no order


def test_prefetched_open_trial_orders_are_not_searched() -> None:
    body = sign_body()
    for key in (OPEN_TRIAL_ORDERS, OPEN_TRIAL_DEVICE_ORDERS):
        body["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    assert _searches(body) == [] and _searches(body, "DeviceRequest") == []


def test_discovery_declares_the_open_trial_orders_for_the_hooks_that_place_orders() -> None:
    app = create_app(open_settings(), compiled_catalog())
    services = app.test_client().get("/cds-services").get_json()["services"]
    declaring = {s["hook"] for s in services if OPEN_TRIAL_ORDERS in s["prefetch"]}
    assert declaring == {s.hook for s in SERVICES if s.behaviour.places_order}
    template = next(s for s in services if s["hook"] == "order-sign")["prefetch"][OPEN_TRIAL_ORDERS]
    assert template.startswith("ServiceRequest?patient={{context.patientId}}&status=active,on-hold&code=")
    devices = {s["hook"] for s in services if OPEN_TRIAL_DEVICE_ORDERS in s["prefetch"]}
    assert devices == declaring
    template = next(s for s in services if s["hook"] == "order-sign")["prefetch"][OPEN_TRIAL_DEVICE_ORDERS]
    assert template == "DeviceRequest?patient={{context.patientId}}&status=active,on-hold"  # of any code


# --------------------------------------------------------------------------- review s17 review2 N-4


@pytest.mark.parametrize(
    ("dates", "ordered"),
    [
        ({"authoredOn": "2019-02-01"}, False),  # the review's: open for years, never done
        ({"authoredOn": _days_from_today(-100)}, False),
        ({"authoredOn": _days_from_today(-80)}, True),
        ({"authoredOn": "2019-02-01", "occurrenceDateTime": _days_from_today(7)}, True),  # planned
        ({"authoredOn": "2019-02-01", "occurrencePeriod": {"start": _days_from_today(-100)}}, False),
        ({"authoredOn": "2019-02-01", "occurrenceTiming": {"event": [_days_from_today(-10)]}}, True),
        ({"authoredOn": _days_from_today(0)[:7]}, True),  # a month written alone stands for its last day
        ({"authoredOn": str(int(_days_from_today(0)[:4]) - 2)}, False),  # a year: its 31 December
        ({}, True),  # no date at all: nothing says it is left behind
    ],
    ids=[
        "2019",
        "100-days",
        "80-days",
        "planned-next-week",
        "planned-100-days-ago",
        "timing",
        "month",
        "year",
        "undated",
    ],
)
def test_an_open_trial_order_left_behind_is_no_trial_ordered(dates: dict[str, Any], ordered: bool) -> None:
    order = {k: v for k, v in _trial_order("active").items() if k != "authoredOn"} | dates
    _, response = sign_with_chart([*NO_TRIAL, order])
    assert len(_proposals(response["cards"])) == (0 if ordered else 1)


@pytest.mark.parametrize(
    ("order", "day"),
    [
        ({"authoredOn": "2019"}, date(2019, 12, 31)),
        ({"authoredOn": "2019-02"}, date(2019, 2, 28)),
        ({"authoredOn": "2019-02-01T23:30:00-05:00"}, date(2019, 2, 1)),  # its own calendar day
        (
            {"authoredOn": "2019-02-01", "occurrencePeriod": {"start": "2019-03-01", "end": "2019-04-01"}},
            date(2019, 4, 1),
        ),
        ({"occurrenceTiming": {"repeat": {"boundsPeriod": {"end": "2020-01-05"}}}}, date(2020, 1, 5)),
        ({"authoredOn": "not a date"}, None),
    ],
)
def test_the_last_day_an_order_names(order: dict[str, Any], day: date | None) -> None:
    assert last_day(order) == day


def test_how_long_an_open_trial_order_counts_is_the_order_code_tables(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    edit_yaml(root / "order-codes.yaml", lambda raw: raw.update(trial_ordered_days=7))
    assert load_catalog(root).order_codes.trial_ordered_days == 7
    assert compiled_catalog().order_codes.trial_ordered_days == 90  # the shipped default
    old = {**_trial_order("active"), "authoredOn": "2019-02-01"}
    catalog = compiled_catalog()
    lenient = replace(catalog, order_codes=replace(catalog.order_codes, trial_ordered_days=365 * 20))
    _, response = sign_with_chart([*NO_TRIAL, old], catalog=lenient)
    assert _proposals(response["cards"]) == []


@pytest.mark.parametrize("body", [sign_body, select_body], ids=["order-sign", "order-select"])
def test_a_trial_ordered_as_a_device_is_a_trial_ordered(body: Any) -> None:
    """Contract §2 and criteria-and-codes §4.2/§4.4: C2626 (a temporary trial pump) is ordered as a
    DeviceRequest; an open one was not searched, and the proposal of a second trial was made."""
    _, response = sign_with_chart([*NO_TRIAL, _trial_device_order()], body=body())
    assert _proposals(response["cards"]) == []
    assert not any("order the trial" in c["summary"] for c in response["cards"])


@pytest.mark.parametrize("status", ["completed", "draft", "revoked"])
def test_a_device_trial_order_done_withdrawn_or_unsigned_is_no_trial_ordered(status: str) -> None:
    _, response = sign_with_chart([*NO_TRIAL, _trial_device_order(status)])
    assert len(_proposals(response["cards"])) == 1


def test_a_device_order_of_another_code_is_no_trial_ordered() -> None:
    _, response = sign_with_chart([*NO_TRIAL, _trial_device_order(code="E0783")])
    assert len(_proposals(response["cards"])) == 1


def test_the_procedure_search_asks_for_every_trial_code_of_the_table() -> None:
    """The HCPCS trial codes (C2626, J0476) in the four HCPCS systems of contract §1, as the draft
    orders are recognised (policies/order-codes.yaml `kinds: trial`). The device orders are searched of
    any code (`test_the_device_orders_are_searched_whatever_they_are_coded_by`)."""
    [(_, services)] = _searches(sign_body())
    codes = services["code"].split(",")
    assert {f"{system}|{code}" for system in HCPCS_SYSTEMS for code in ("C2626", "J0476")} <= set(codes)
    assert "http://www.ama-assn.org/go/cpt|62323" in codes


@pytest.mark.parametrize(
    "chart",
    [
        [_trial_device_order_by_reference("#pump", contained=True)],
        [_trial_device_order_by_reference("Device/trial-pump"), _trial_pump()],
        [_trial_device_order_by_reference(f"{FHIR_SERVER}/Device/trial-pump"), _trial_pump()],
    ],
    ids=["contained", "in-the-chart", "the-call-server-url"],
)
def test_a_trial_device_order_coded_by_its_device_is_a_trial_ordered(chart: list[dict[str, Any]]) -> None:
    """Contract §2: a device order's code is in `codeCodeableConcept`, or in the `type` of the Device
    its `codeReference` names. An open C2626 order coded by its Device (contained in the order, or among
    the patient's Devices, named however the call's server writes it) was not found, and a second trial
    was proposed. The step names the order by the code its Device carries."""
    _, response = sign_with_chart([*NO_TRIAL, *chart])
    assert _proposals(response["cards"]) == []
    written = human_date(date.fromisoformat(chart[0]["authoredOn"]))
    [decision] = cards_of(response["cards"])
    assert f"Trial already ordered (C2626, {written}): once done" in decision["detail"]


@pytest.mark.parametrize(
    "chart",
    [
        [_trial_device_order_by_reference("https://other.example/fhir/Device/trial-pump"), _trial_pump()],
        [_trial_device_order_by_reference("Device/elsewhere"), _trial_pump()],
        [
            _trial_device_order_by_reference("DeviceDefinition/trial-pump"),
            {**_trial_pump(), "resourceType": "DeviceDefinition"},
        ],
    ],
    ids=["another-server", "not-in-the-chart", "device-definition"],
)
def test_a_device_order_whose_device_the_chart_does_not_hold_is_no_trial_ordered(
    chart: list[dict[str, Any]],
) -> None:
    """The Device is read only where the chart holds it: one named by another server's URL is that
    server's (never followed), one the chart lacks is not read from anywhere, and a DeviceDefinition is
    no Device (contract §2 and R4 `DeviceRequest.codeReference`: Reference(Device)). The proposal
    stands."""
    _, response = sign_with_chart([*NO_TRIAL, *chart])
    assert len(_proposals(response["cards"])) == 1


def test_the_device_orders_are_searched_whatever_they_are_coded_by() -> None:
    """FHIR R4's DeviceRequest `code` search parameter reads `codeCodeableConcept` only: a search
    narrowed by it never returns an order coded by its Device (`codeReference`, contract §2). The
    device orders are searched open, of any code, and their trial code is checked here (next_steps.py
    `trials_ordered`); the procedure orders stay narrowed by the trial codes."""
    [(_, devices)] = _searches(sign_body(), "DeviceRequest")
    assert devices == {"patient": devices["patient"], "status": "active,on-hold"}


def test_every_result_the_trial_ordered_is_to_show_waits_for_it() -> None:
    """review21: with the trial ordered and not yet done, GEHA D's relief said "Trial already ordered
    (…): once done, document the trial", but its lack of side effects, which the policy marks as what
    the trial shows too (`trial_result`), still said "Record “side effects of the trial”"."""
    order = _trial_order("active")
    chart = without_codes([*NO_TRIAL, order], "it-trial-side-effects")
    _, response = sign_with_chart(chart)
    [listing] = cards_of(response["cards"], "clinical-reminder")
    [step] = [s for s in numbered_steps(listing["detail"]) if "D. Trial without side effects" in s]
    assert step.startswith("1. Trial already ordered (62323, "), step
    assert "; once the trial is done:\n" in step, step
    assert "\n   - D. Trial without side effects: Record “side effects of the trial”." in step, step
    [decision] = cards_of(response["cards"])
    [line] = [line for line in decision["detail"].splitlines() if "**D. Trial without side effects**" in line]
    assert line.endswith("— after the trial, record “side effects of the trial”."), line
