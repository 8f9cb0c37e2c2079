"""A prefetched read (`patient`: `Patient/{{context.patientId}}`) that holds another resource than the
one read: another patient's record (an EHR's merged or linked id), a searchset of someone else, another
type. CDS Hooks: prefetched data MUST be what the service would get by running the query itself, and
the read cannot return another id. Such a value is not the key's answer: it is taken as failed, as an
OperationOutcome is (service/fhir/gather.py, `_read_answered`), so the Patient is read from the EHR's
FHIR server, and with none the call is the 412 naming `prefetch.patient`. Before, it was dropped and
the key counted as sent: the call was judged as if the patient had no record (a deceased patient sent
under another id had its orders judged and prior authorization asked for: review24 L4)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from service.app import create_app
from service.fhir.gather import DataGatherer
from service.hooks.models import parse_hook_request
from service.registry import STANDARD_PREFETCH, service_for_hook
from tests.builders import searchset
from tests.demo_support import packaged_sample
from tests.support import RecordingFhirClient, open_settings, post_json, with_fhir

TODAY = datetime.now(UTC).date()
SIGN = "order-sign-implant-demo-meets"


def _body(patient: Any) -> dict[str, Any]:
    """The packaged order-sign (self-contained, no fhirServer) with `patient` prefetched as the
    demo patient's record, recorded deceased, passed through `patient` (the record → what is sent)."""
    body = packaged_sample(SIGN)
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    record = {**body["prefetch"]["patient"], "deceasedDateTime": "2026-01-01"}
    body["prefetch"]["patient"] = patient(record)
    return body


NOT_THE_READ = {
    "another id": lambda p: {**p, "id": "demo-meets-old"},
    "no id": lambda p: {k: v for k, v in p.items() if k != "id"},
    "a searchset of another id": lambda p: searchset([{**p, "id": "x"}]),
    "another type": lambda p: {"resourceType": "Organization", "id": p["id"]},
}


@pytest.mark.parametrize("sent", list(NOT_THE_READ.values()), ids=list(NOT_THE_READ))
def test_a_patient_prefetch_holding_another_record_is_a_412_without_a_server(sent: Any) -> None:
    """No server to read the Patient from: the 412 naming prefetch.patient, with what was sent instead;
    nothing judged."""
    client = create_app(open_settings()).test_client()
    answer = post_json(client, "/cds-services/idds-crd-order-sign", _body(sent))
    assert answer.status_code == 412, answer.get_json()
    [issue] = answer.get_json()["issue"]
    assert issue["expression"] == ["prefetch.patient"]
    assert "not Patient/demo-meets" in issue["diagnostics"]


@pytest.mark.parametrize(
    "sent",
    [lambda p: p, lambda p: searchset([p]), lambda p: None, lambda p: searchset([])],
    ids=["the record", "a searchset of it", "null", "an empty searchset"],
)
def test_a_patient_prefetch_of_the_patient_or_of_nothing_is_taken_as_sent(sent: Any) -> None:
    """The Patient read (bare or in a searchset), or nothing (null, no match: the EHR has no record,
    never read again), is the key's answer: judged, no 412."""
    client = create_app(open_settings()).test_client()
    answer = post_json(client, "/cds-services/idds-crd-order-sign", _body(sent))
    assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize("sent", list(NOT_THE_READ.values()), ids=list(NOT_THE_READ))
def test_a_patient_prefetch_holding_another_record_is_read_from_the_server(sent: Any) -> None:
    """With a server, the Patient is read from it, as for a key not prefetched."""
    body = with_fhir(_body(sent))
    request = parse_hook_request(body, service_for_hook(body["hook"]))
    client = RecordingFhirClient()
    data = DataGatherer(None, []).gather(
        request,
        STANDARD_PREFETCH,
        client,  # type: ignore[arg-type]
        time.monotonic() + 5,
        today=TODAY,
        clinical=False,
    )
    assert ("read", "Patient/demo-meets") in client.calls
    assert not data.resources.get("Patient")


def test_the_412_quotes_the_record_sent_instead_briefly() -> None:
    """review24d LOW: a 5,000-character id sent instead was quoted whole; each is quoted on one line, at
    most 80 characters."""
    client = create_app(open_settings()).test_client()
    answer = post_json(client, "/cds-services/idds-crd-order-sign", _body(lambda p: {**p, "id": "x" * 5000}))
    assert answer.status_code == 412, answer.get_json()
    [issue] = answer.get_json()["issue"]
    assert "Patient/xxx" in issue["diagnostics"] and len(issue["diagnostics"]) < 400, issue["diagnostics"]


@pytest.mark.parametrize(
    "sent",
    [None, *NOT_THE_READ.values()],
    ids=["not sent", *NOT_THE_READ],
)
def test_a_call_of_no_pump_order_is_answered_without_the_patient(sent: Any) -> None:
    """No answer to an order this service holds no rules for reads anything of the Patient (only a pump
    order's judgement does: whether it is recorded deceased), so a call of such orders, the Patient not
    prefetched (or not as read) and no server to read it from, is answered, not refused 412 naming
    prefetch.patient (conform33 LOW 4: the Inferno kit's order-select body prefetching the Coverage alone,
    its reference server unreachable). The Coverage, which each order's coverage information names, is
    still needed; a pump order's call still needs the Patient."""
    client = create_app(open_settings()).test_client()
    body = packaged_sample("order-select-non-pump")
    body.pop("fhirServer", None)
    body.pop("fhirAuthorization", None)
    if sent is None:
        del body["prefetch"]["patient"]
    else:
        body["prefetch"]["patient"] = sent(body["prefetch"]["patient"])
    answer = post_json(client, "/cds-services/idds-crd-order-select", body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["systemActions"]  # each order's coverage information, naming the Coverage
    del body["prefetch"]["coverage"]
    answer = post_json(client, "/cds-services/idds-crd-order-select", body)
    assert answer.status_code == 412, answer.get_json()
    assert answer.get_json()["issue"][0]["expression"] == ["prefetch.coverage"]
    pump = _body(lambda p: p)
    del pump["prefetch"]["patient"]
    answer = post_json(client, "/cds-services/idds-crd-order-sign", pump)
    assert answer.status_code == 412, answer.get_json()
    assert answer.get_json()["issue"][0]["expression"] == ["prefetch.patient"]
