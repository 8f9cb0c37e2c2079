"""A Coverage whose `period` cannot be read is not answered for (review28f L1).

Since eb5dd49 only the date forms R4 allows are dated, and an end that cannot be read bounded nothing
(`routing.not_ended`): a Coverage ended `2025-06-30 00:00:00` read as in force, beside next year's
plan two relevant Coverages, or an ended plan judged. Whether such a Coverage is in force cannot be
told. Prefetched, it is bad input from the EHR: a 400 whose OperationOutcome names the element. Read
from the EHR's FHIR server, the Coverage could not be read as FHIR: a 412 naming `prefetch.coverage`,
saying which element of which Coverage, as one that cannot be had is answered."""

from __future__ import annotations

from typing import Any

import pytest

from service.app import create_app
from tests.builders import catalog
from tests.contract_support import ChartServer
from tests.demo_support import packaged_sample
from tests.support import RecordingFactory, no_client, open_settings, post_json, with_fhir

NAME = "order-sign-implant-demo-meets"
URL = "/cds-services/idds-crd-order-sign"
LAX = {  # forms R4 does not allow, which Python's own parser read (eb5dd49), a minute-precision one (L2)
    "space": "2025-06-30 00:00:00",
    "basic": "20250630",
    "offset-no-colon": "2025-06-30T10:00:00+0000",
    "minutes": "2025-06-30T10:00",
}


def _posted(body: dict[str, Any], server: ChartServer | None = None) -> Any:
    factory = no_client if server is None else RecordingFactory(server)
    app = create_app(open_settings(), catalog(), client_factory=factory)
    return post_json(app.test_client(), URL, body)


@pytest.mark.parametrize("bound", ["end", "start"])
@pytest.mark.parametrize("form", list(LAX))
def test_a_prefetched_coverage_whose_period_cannot_be_read_is_a_400_naming_it(bound: str, form: str) -> None:
    body = packaged_sample(NAME)
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["period"] = {"start": "2020-01-01", bound: LAX[form]} if bound == "end" else {bound: LAX[form]}
    response = _posted(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == [f"prefetch.coverage.entry[0].resource.period.{bound}"]
    assert LAX[form] in issue["diagnostics"] and "in force cannot be told" in issue["diagnostics"]


def test_an_ended_plan_and_next_years_written_laxly_are_not_two_relevant_coverages() -> None:
    """review28f's pair: the plan ended `2025-12-31 23:59:59`, the next begins `2027-01-01 00:00:00`;
    read as bounding nothing, both were relevant (a 400 "2 active Coverages" under CRD 2.2, or the
    ended plan judged under 2.0.1). The first unreadable element is named."""
    body = packaged_sample(NAME)
    entries = body["prefetch"]["coverage"]["entry"]
    old = entries[0]["resource"]
    new = {**old, "id": f"{old['id']}-next", "period": {"start": "2027-01-01 00:00:00"}}
    old["period"] = {"start": "2020-01-01", "end": "2025-12-31 23:59:59"}
    entries.append({"resource": new})
    response = _posted(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.coverage.entry[0].resource.period.end"]


def test_a_prefetched_coverage_whose_period_is_no_object_is_a_400_naming_it() -> None:
    body = packaged_sample(NAME)
    body["prefetch"]["coverage"]["entry"][0]["resource"]["period"] = "2025"
    response = _posted(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.coverage.entry[0].resource.period"]


@pytest.mark.parametrize("form", list(LAX))
def test_a_coverage_read_from_the_server_whose_period_cannot_be_read_is_a_412_saying_so(form: str) -> None:
    body = with_fhir(packaged_sample(NAME))
    coverage = body["prefetch"].pop("coverage")["entry"][0]["resource"]
    coverage["period"] = {"start": "2020-01-01", "end": LAX[form]}
    response = _posted(body, ChartServer([coverage]))
    assert response.status_code == 412, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.coverage"]
    said = issue["diagnostics"]
    assert f"{coverage['resourceType']}/{coverage['id']}.period.end" in said and LAX[form] in said
    assert "as the EHR's FHIR server holds it" in said
    assert said.startswith("coverage was read from the EHR's FHIR server but cannot be answered for (")


@pytest.mark.parametrize("read", ["prefetched", "searched"])
def test_a_coverage_whose_period_reads_is_answered_as_before(read: str) -> None:
    """The control: an end R4 allows, in the past, is the ended plan (not covered, no active coverage)."""
    body = packaged_sample(NAME)
    if read == "searched":
        body = with_fhir(body)
        coverage = body["prefetch"].pop("coverage")["entry"][0]["resource"]
    else:
        coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["period"] = {"start": "2020-01-01", "end": "2025-06-30T10:00:00+00:00"}
    response = _posted(body, ChartServer([coverage]) if read == "searched" else None)
    assert response.status_code == 200, response.get_data(as_text=True)
    summary = response.get_json()["cards"][0]["summary"]
    assert summary.startswith("GEHA: coverage not active (ended 2025-06-30"), summary


def _encounter_alone(hook: str, end: str, read: str) -> Any:
    """The encounter `hook`'s sample with no open order, its Coverage ended at `end`, prefetched or
    `read` from the EHR's FHIR server: the hook's Encounter is all the call has to annotate."""
    body = packaged_sample(f"{hook}-demo-meets")
    for key in ("openServiceRequests", "openDeviceRequests"):
        body["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    if read == "searched":
        body = with_fhir(body)
        coverage = body["prefetch"].pop("coverage")["entry"][0]["resource"]
    else:
        coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["period"] = {"start": "2020-01-01", "end": end}
    factory = no_client if read == "prefetched" else RecordingFactory(ChartServer([coverage]))
    app = create_app(open_settings(), catalog(), client_factory=factory)
    return post_json(app.test_client(), f"/cds-services/idds-crd-{hook}", body)


def _on_encounter(response: Any) -> list[str]:
    """The `covered` of each coverage information the answer puts on the hook's Encounter."""
    return [
        sub["valueCode"]
        for action in response.get_json().get("systemActions", [])
        if action["resource"]["resourceType"] == "Encounter"
        for extension in action["resource"].get("extension", [])
        for sub in extension.get("extension", [])
        if sub.get("url") == "covered"
    ]


@pytest.mark.parametrize("read", ["prefetched", "searched"])
@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge"])
def test_the_encounter_alone_gets_nothing_under_a_coverage_whose_period_cannot_be_read(
    hook: str, read: str
) -> None:
    """A call about no order is not ended by such a Coverage (the Encounter is never needed data), and
    the Encounter is told nothing under it, as under no Coverage known: read as bounding nothing, the
    ended plan's end made the Encounter "conditional" (review29b), where the same end written as R4
    allows makes it "not-covered" (the control)."""
    assert _on_encounter(_encounter_alone(hook, "2025-06-30", read)) == ["not-covered"]
    response = _encounter_alone(hook, LAX["space"], read)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _on_encounter(response) == [] and response.get_json()["cards"] == []


@pytest.mark.parametrize("rid", ["absent", None, 7, "", "a b"])
def test_a_prefetched_active_coverage_without_a_fhir_id_is_a_400_naming_it(rid: object) -> None:
    """review29b: a prefetched Coverage with no id was answered 200, its coverage information (an
    approval among it) naming `Coverage/None`; coverage information must name its Coverage."""
    body = packaged_sample(NAME)
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    if rid == "absent":
        del coverage["id"]
    else:
        coverage["id"] = rid
    response = _posted(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.coverage.entry[0].resource.id"]
    assert "could not name it" in issue["diagnostics"]


def test_the_400_names_the_coverage_that_cannot_be_read_where_another_shares_its_id() -> None:
    """review29b L1: the Coverage was looked for in the request by `Type/id`, so one sharing its id with
    an earlier one (whose period reads) was taken for not prefetched: a 412 "not prefetched" on a call
    with no FHIR server. It is found as the very object the EHR sent."""
    body = packaged_sample(NAME)
    entries = body["prefetch"]["coverage"]["entry"]
    first = entries[0]["resource"]
    second = {**first, "period": {"start": "2020-01-01", "end": LAX["space"]}}
    first["status"] = "cancelled"
    entries.append({"resource": second})
    response = _posted(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.coverage.entry[1].resource.period.end"]


@pytest.mark.parametrize("read", ["prefetched", "searched"])
@pytest.mark.parametrize("status", ["cancelled", "draft"])
def test_a_coverage_not_active_that_the_call_is_answered_for_without_a_fhir_id_is_refused(
    status: str, read: str
) -> None:
    """review29d: a Coverage that is not active, the call's one recorded Coverage, is answered
    `not-covered` by name (no-active-coverage), so with no id its coverage information named
    `Coverage/None`, as review29b's active one did: prefetched, a 400 naming its `.id`; read from the
    EHR's FHIR server, a 412 saying so. One not answered for, beside an active Coverage, is read by its
    status alone (the control: answered 200 for the active one)."""
    body = packaged_sample(NAME)
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    beside = {**coverage, "status": status}
    del beside["id"]
    body["prefetch"]["coverage"]["entry"].append({"resource": beside})
    response = _posted(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Coverage/None" not in response.get_data(as_text=True)
    del coverage["id"]
    coverage["status"] = status
    body["prefetch"]["coverage"]["entry"].pop()
    server = None
    if read == "searched":
        body = with_fhir(body)
        server = ChartServer([body["prefetch"].pop("coverage")["entry"][0]["resource"]])
    response = _posted(body, server)
    assert response.status_code == (400 if read == "prefetched" else 412), response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == [
        "prefetch.coverage.entry[0].resource.id" if read == "prefetched" else "prefetch.coverage"
    ]
    assert "could not name it" in issue["diagnostics"]
