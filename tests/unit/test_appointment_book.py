"""appointment-book: a booked trial or implant gets the determination of the order it is based on,
with the coverage information on that ServiceRequest."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from cards.coverage_information import HookCall, assertion_ids
from service.app import create_app
from service.appointments import appointment_orders
from service.catalog import Catalog
from service.fhir.client import FhirError, SearchResult
from service.metrics import metric_data
from service.settings import StoreSettings
from tests.audit_support import approving
from tests.booking_support import PATIENT_ID, actions_on, appointment, pump_order
from tests.builders import cards_of, catalog, meeting_chart, without_codes
from tests.calls import sign_with_chart
from tests.conformance import COVERAGE_INFO, check_response
from tests.demo_support import packaged_sample
from tests.markdown_support import shown_lines
from tests.support import (
    CountedItems,
    RecordingFactory,
    RecordingFhirClient,
    assert_outcome,
    assertion_of,
    open_settings,
    post_json,
    sign_body,
    with_fhir,
)

BOOK_URL = "/cds-services/idds-crd-appointment-book"


def book_body(*resources: dict[str, Any]) -> dict[str, Any]:
    """An appointment-book call for the sample patient (Patient and Coverage prefetched)."""
    return {
        "hook": "appointment-book",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "PractitionerRole/scheduler-1",
            "patientId": PATIENT_ID,
            "appointments": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in resources],
            },
        },
        "prefetch": sign_body()["prefetch"],
    }


class EhrClient(RecordingFhirClient):
    """A fake EHR server: searches return `chart`, reads return `held` (or fail with `read_error`)."""

    def __init__(
        self,
        chart: list[dict[str, Any]],
        held: list[dict[str, Any]],
        read_error: FhirError | None = None,
    ) -> None:
        super().__init__()
        self.by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in chart:
            resource = {**resource, "subject": {"reference": f"Patient/{PATIENT_ID}"}}
            self.by_type.setdefault(resource["resourceType"], []).append(resource)
        self.held = {f"{r['resourceType']}/{r['id']}": r for r in held}
        self.read_error = read_error

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        return SearchResult(self.by_type.get(resource_type, []), [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        if self.read_error is not None:
            raise self.read_error
        return copy.deepcopy(self.held.get(reference))


def book(
    body: dict[str, Any],
    chart: list[dict[str, Any]],
    held: list[dict[str, Any]],
    *,
    policies: Catalog | None = None,
    **client: Any,
) -> tuple[dict[str, Any], EhrClient]:
    ehr = EhrClient(chart, held, **client)
    app = create_app(open_settings(), policies or catalog(), client_factory=RecordingFactory(ehr))
    response = post_json(app.test_client(), BOOK_URL, with_fhir(body))
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    assert check_response(answer, body, held) == []
    return answer, ehr


# --------------------------------------------------------------------------- the determination


def test_a_booked_implant_gets_the_determination_of_its_order() -> None:
    order = pump_order()
    answer, ehr = book(book_body(appointment("ServiceRequest/sr-implant")), meeting_chart(), [order])
    assert ("read", "ServiceRequest/sr-implant") in ehr.calls
    decisions = cards_of(answer["cards"])
    assert [c["summary"] for c in decisions] == ["GEHA: 62362 meets all 14 coverage criteria"]
    assert decisions[0]["extension"]["davinci-crd.associated-resource"] == [
        {"reference": "ServiceRequest/sr-implant"}
    ]
    [action] = actions_on(answer, "ServiceRequest")
    [booked] = actions_on(answer, "Appointment")  # what Inferno checks: the Appointment carries it too
    told = assertion_of(booked)
    assert told["covered"] == "covered" and told["billingCode"]["code"] == "62362"
    assert action["type"] == "update"
    updated = action["resource"]
    assert {**updated, "extension": []} == {**order, "extension": []}
    [info] = [e for e in updated["extension"] if e["url"] == COVERAGE_INFO]
    subs = {s["url"]: s for s in info["extension"]}
    assert subs["covered"]["valueCode"] == "covered"
    assert subs["billingCode"]["valueCoding"]["code"] == "62362"


def test_the_same_order_booked_or_signed_gets_the_same_cards() -> None:
    """The same determination, word for word; but for the booking's line saying the prior
    authorization is still needed, which at order-sign the Instructions card beside it says (its
    first step), so the decision card there does not say it twice."""
    order, chart = pump_order(), meeting_chart()
    booked, _ = book(book_body(appointment("ServiceRequest/sr-implant")), chart, [order])
    signed_body = sign_body()
    signed_body["context"]["draftOrders"]["entry"] = [{"resource": copy.deepcopy(order)}]
    _, signed = sign_with_chart(chart, body=signed_body)
    [booked_card] = cards_of(booked["cards"])
    [signed_card] = cards_of(signed["cards"])
    paragraphs = booked_card["detail"].split("\n\n")
    assert paragraphs[1] == PA_STILL_NEEDED
    assert "\n\n".join(paragraphs[:1] + paragraphs[2:]) == signed_card["detail"]
    assert "prior authorization" not in signed_card["detail"].lower()
    [listing] = cards_of(signed["cards"], "clinical-reminder")
    assert "Request prior authorization from GEHA" in listing["detail"]


PA_STILL_NEEDED = "**Prior authorization still needed** from GEHA: meeting the criteria is not an approval."


def test_a_booked_order_that_meets_says_its_prior_authorization_is_still_needed() -> None:
    """A scheduler gets no Instructions card (the order was placed before): the decision card says, in
    one line, that the order still needs a prior authorization, as its coverage information does
    (pa-needed auth-needed); before, "meets all 14 coverage criteria" alone read as approved
    (cards24 MEDIUM)."""
    answer, _ = book(book_body(appointment("ServiceRequest/sr-implant")), meeting_chart(), [pump_order()])
    [decision] = cards_of(answer["cards"])
    assert assertion_of(actions_on(answer, "ServiceRequest")[0])["pa-needed"] == "auth-needed"
    assert shown_lines(decision["detail"])[1] == PA_STILL_NEEDED


def test_a_booked_order_holding_an_approval_says_so_and_asks_no_request() -> None:
    """The order holds an approval once the answer is applied (this call's, or one it comes carrying):
    the decision card says it is approved, under its number, and that no request is needed."""
    policies, first = first_approving_booking()
    [signed] = actions_on(first, "ServiceRequest")
    line = f"**Prior authorization approved** ({approved(signed)[1]}): no new request is needed."
    assert shown_lines(cards_of(first["cards"])[0]["detail"])[1] == line  # issued by this call
    again, _ = book(
        book_body(appointment("ServiceRequest/sr-implant", appointment_id="apt-again"), signed["resource"]),
        meeting_chart(),
        [],
        policies=policies,
    )
    assert shown_lines(cards_of(again["cards"])[0]["detail"])[1] == line  # carried by the order


def test_a_booking_needing_documentation_asks_for_it() -> None:
    chart = without_codes(meeting_chart(), "it-trial-side-effects")
    answer, _ = book(book_body(appointment("ServiceRequest/sr-implant")), chart, [pump_order()])
    [info] = [e for e in answer["systemActions"][0]["resource"]["extension"] if e["url"] == COVERAGE_INFO]
    subs = {s["url"]: s for s in info["extension"]}
    assert subs["doc-needed"]["valueCode"] == "clinical"
    assert subs["questionnaire"]["valueCanonical"].startswith("http://idds-crd.org/fhir/Questionnaire/")
    [decision] = cards_of(answer["cards"])
    assert "- ❔ " in decision["detail"]  # what is missing, on the decision card
    assert not cards_of(answer["cards"], "clinical-reminder")  # the order was placed: no what-to-order-next


def test_two_appointments_for_one_order_give_one_action() -> None:
    body = book_body(
        appointment("ServiceRequest/sr-implant", appointment_id="apt-1"),
        appointment("https://ehr.example.org/fhir/ServiceRequest/sr-implant", appointment_id="apt-2"),
    )
    answer, ehr = book(body, meeting_chart(), [pump_order()])
    assert len(actions_on(answer, "ServiceRequest")) == 1
    assert sorted(a["resource"]["id"] for a in actions_on(answer, "Appointment")) == ["apt-1", "apt-2"]
    reads = [c for c in ehr.calls if c[0] == "read" and "ServiceRequest" in c[1]]
    assert reads == [("read", "ServiceRequest/sr-implant")]


# --------------------------------------------------------------------------- nothing to judge

PAYER_READ = ("read", "Organization/demo-meets-org-geha")  # the prefetched Coverage names it, lacks it


def beyond_the_payer(calls: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The EHR queries of a call besides reading the payer Organization the Coverage names."""
    return [c for c in calls if c != PAYER_READ]


@pytest.mark.parametrize(
    "booked",
    [
        appointment(),  # no order behind it
        appointment("ServiceRequest/sr-implant", status="cancelled"),
        appointment("CarePlan/plan-1"),
    ],
    ids=["no-basedOn", "cancelled", "not-a-ServiceRequest"],
)
def test_appointments_without_a_pump_order_get_no_cards_and_no_queries(booked: dict[str, Any]) -> None:
    """No card and no clinical query; a booked Appointment still gets honest coverage information."""
    answer, ehr = book(book_body(booked), meeting_chart(), [pump_order()])
    assert answer["cards"] == []
    assert beyond_the_payer(ehr.calls) == []
    for action in answer.get("systemActions", []):
        assert action["resource"]["resourceType"] == "Appointment"
        assert assertion_of(action)["covered"] == "conditional"
        assert "holds no coverage rules" in assertion_of(action)["reason"]["text"]
    assert bool(answer.get("systemActions")) == (booked["status"] != "cancelled")


def test_an_appointment_for_another_procedure_gets_no_cards() -> None:
    other = pump_order(code="99213", order_id="sr-visit")
    answer, ehr = book(book_body(appointment("ServiceRequest/sr-visit")), meeting_chart(), [other])
    assert answer["cards"] == []
    assert not [c for c in ehr.calls if c[0] == "search"]
    [order] = actions_on(answer, "ServiceRequest")
    told = assertion_of(order)
    assert told["covered"] == "conditional" and "code 99213" in told["reason"]["text"]
    assert "billingCode" not in assertion_of(order)  # no rules here: no billing code is asserted
    assert len(actions_on(answer, "Appointment")) == 1


# --------------------------------------------------------------------------- could not check


UNREAD = "the order this appointment is for could not be read"


@pytest.mark.parametrize(
    ("held", "error", "reason", "said"),
    [
        ([], None, "does not have it", UNREAD),
        ([pump_order()], FhirError("HTTP 503", 503), "did not return it (HTTP 503)", UNREAD),
        (
            [pump_order(patient="someone-else")],
            None,
            "an order for another patient",
            "the order this appointment is for is an order for another patient",
        ),
        (
            [{**pump_order(), "status": "revoked"}],
            None,
            "it was revoked",
            "the order this appointment is for was revoked",
        ),
        (
            [{**pump_order(), "status": "entered-in-error"}],
            None,
            "it was entered in error",
            "the order this appointment is for was entered in error",
        ),
    ],
    ids=["missing", "server-error", "other-patient", "revoked", "entered-in-error"],
)
def test_an_order_that_cannot_be_read_is_reported_not_guessed(
    held: list[dict[str, Any]], error: FhirError | None, reason: str, said: str
) -> None:
    """An order read but not to be judged (revoked, entered in error, another patient's) is said so in
    the summary, and the card does not advise booking again "once the order is available" (ehr20 C1)."""
    answer, _ = book(
        book_body(appointment("ServiceRequest/sr-implant")), meeting_chart(), held, read_error=error
    )
    [card] = answer["cards"]
    assert card["summary"] == f"Coverage not checked: {said}"
    assert card["detail"].startswith(
        "The appointment (Appointment/apt-1) is based on ServiceRequest/sr-implant"
    )
    assert card["source"]["label"] == "GEHA"  # the patient's insurer, from the Coverage
    assert "ServiceRequest/sr-implant" in card["detail"] and reason in card["detail"]
    assert ("once the order is available" in card["detail"]) == (said == UNREAD)
    assert card["extension"]["davinci-crd.associated-resource"] == [{"reference": "Appointment/apt-1"}]
    [booked] = answer["systemActions"]
    assert booked["resource"]["id"] == "apt-1" and assertion_of(booked)["covered"] == "conditional"
    told = assertion_of(booked)["reason"]["text"]
    assert ("could not be read" if said == UNREAD else "was not judged") in told


def test_without_a_fhir_server_the_order_in_the_call_is_used_or_reported() -> None:
    app = create_app(open_settings(), catalog())
    unreadable = post_json(app.test_client(), BOOK_URL, book_body(appointment("ServiceRequest/sr-implant")))
    assert unreadable.status_code == 200
    assert "no FHIR server" in unreadable.get_json()["cards"][0]["detail"]
    order = pump_order()
    body = book_body(appointment("ServiceRequest/sr-implant"), order)  # some EHRs send the order too
    response = post_json(app.test_client(), BOOK_URL, body)
    answer = response.get_json()
    assert check_response(answer, body, [order]) == []
    assert answer["systemActions"][0]["resource"]["id"] == "sr-implant"


def test_an_appointment_based_on_the_full_url_of_the_order_in_the_call_carries_its_determination() -> None:
    """Before, the order was judged but its Appointment said "no coverage rules": the link from the
    Appointment to its order was made from `Type/id` references only."""
    body, full_url = packaged_sample("appointment-book-62362-demo-meets"), f"urn:uuid:{uuid.uuid4()}"
    booked_appointment, order = (e["resource"] for e in body["context"]["appointments"]["entry"])
    body["context"]["appointments"]["entry"][1]["fullUrl"] = full_url
    booked_appointment["basedOn"] = [{"reference": full_url}]
    answer = post_json(create_app(open_settings(), catalog()).test_client(), BOOK_URL, body).get_json()
    assert check_response(answer, body, [order]) == []
    [booked] = actions_on(answer, "Appointment")
    [ordered] = actions_on(answer, "ServiceRequest")
    assert assertion_of(booked)["covered"] == assertion_of(ordered)["covered"] == "covered"


@pytest.mark.parametrize(
    ("base", "judged"),
    [
        ("http://ehr.example.org/fhir", True),  # the server the order's entry names
        ("HTTP://EHR.example.org:80/fhir/", True),
        ("https://other.example.org/fhir", False),  # another server's order of the same id
    ],
)
def test_an_appointment_based_on_an_absolute_url_is_based_on_the_order_held_there(
    base: str, judged: bool
) -> None:
    """The booking's ServiceRequest is held at http://ehr.example.org/fhir (its entry's fullUrl): an
    Appointment naming another server's ServiceRequest of the same id is not based on it (review s16
    R-7: it repeated that order's assertion)."""
    body = packaged_sample("appointment-book-62362-demo-meets")
    booked_appointment, order = (e["resource"] for e in body["context"]["appointments"]["entry"])
    booked_appointment["basedOn"] = [{"reference": f"{base}/ServiceRequest/{order['id']}"}]
    answer = post_json(create_app(open_settings(), catalog()).test_client(), BOOK_URL, body).get_json()
    [booked] = actions_on(answer, "Appointment")
    assert (assertion_of(booked)["covered"] == "covered") is judged
    assert bool(actions_on(answer, "ServiceRequest")) is judged


def test_orders_come_from_the_call_before_the_server() -> None:
    order = pump_order()
    reads: list[str] = []

    def read(reference: str) -> dict[str, Any] | None:
        reads.append(reference)
        return None

    bundle, unread = appointment_orders(
        book_body(appointment("ServiceRequest/sr-implant"), order)["context"]["appointments"],
        PATIENT_ID,
        read,
    )
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["sr-implant"]
    assert (reads, unread) == ([], [])


@pytest.mark.parametrize(
    ("based_on", "subject", "server", "read_as", "reason"),
    [
        ("http://ehr.example/fhir/ServiceRequest/sr-implant", None, "https://ehr.example/fhir", True, None),
        (
            "https://other.example/fhir/ServiceRequest/sr-implant",
            None,
            "https://ehr.example/fhir",
            False,
            "it is held on another FHIR server than the one this call names",
        ),
        (
            "https://ehr.example/fhir/ServiceRequest/sr-implant",
            None,
            None,
            False,
            "the call gave no FHIR server to read it from",
        ),
        (
            "ServiceRequest/sr-implant",
            f"https://other.example/fhir/Patient/{PATIENT_ID}",
            "https://ehr.example/fhir",
            True,
            "it is an order for another patient",
        ),
    ],
    ids=["own-server-written-with-http", "other-server", "no-server", "order-of-another-servers-patient"],
)
def test_an_order_an_appointment_is_based_on_is_the_calls_servers_by_the_one_rule_for_links(
    based_on: str, subject: str | None, server: str | None, read_as: bool, reason: str | None
) -> None:
    """The rule every other link follows (service/references.py `on_server`): the call's server
    however its scheme is written (an EHR behind a TLS proxy may write http), never another's.
    Before, a booking's link written with http was refused as another server's, and an order read
    back naming another server's patient of the same id was taken as the call's patient's."""
    order = pump_order()
    if subject is not None:
        order["subject"] = {"reference": subject}
    reads: list[str] = []

    def read(reference: str) -> dict[str, Any] | None:
        reads.append(reference)
        return order

    bundle, unread = appointment_orders(
        book_body(appointment(based_on))["context"]["appointments"],
        PATIENT_ID,
        read if server else None,
        server,
    )
    assert reads == (["ServiceRequest/sr-implant"] if read_as else [])
    if reason is None:
        assert ([e["resource"]["id"] for e in bundle["entry"]], unread) == (["sr-implant"], [])
    else:
        assert (bundle["entry"], [u.reason for u in unread]) == ([], [reason])


@pytest.mark.parametrize(
    ("patient_base", "for_the_patient"),
    [("http://ehr.example/fhir/", True), ("https://other.example/fhir/", False), ("", True)],
)
def test_an_appointment_is_the_calls_patients_only_if_its_patient_is_on_the_calls_server(
    patient_base: str, for_the_patient: bool
) -> None:
    """Another server's Patient of the same id is another person, as everywhere else; before, only
    the id was compared."""
    booked = appointment("ServiceRequest/sr-implant")
    booked["participant"][0]["actor"]["reference"] = f"{patient_base}Patient/{PATIENT_ID}"
    bundle, unread = appointment_orders(
        book_body(booked, pump_order())["context"]["appointments"],
        PATIENT_ID,
        None,
        "https://ehr.example/fhir",
    )
    if for_the_patient:
        assert ([e["resource"]["id"] for e in bundle["entry"]], unread) == (["sr-implant"], [])
    else:
        assert (bundle["entry"], [u.reason for u in unread]) == (
            [],
            ["the appointment is for another patient"],
        )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda b: b["context"].pop("appointments"), "context.appointments"),
        (lambda b: b["context"].update(appointments=[]), "context.appointments"),
        (
            lambda b: b["context"]["appointments"].update(resourceType="List"),
            "context.appointments.resourceType",
        ),
        (lambda b: b["context"]["appointments"].update(entry=[]), "context.appointments.entry"),
        (
            lambda b: b["context"]["appointments"]["entry"][0]["resource"].pop("id"),
            "context.appointments.entry[0].resource.id",
        ),
        (
            lambda b: b["context"]["appointments"]["entry"][0]["resource"].update(resourceType="Encounter"),
            "context.appointments.entry",
        ),
    ],
    ids=["missing", "array", "not-a-bundle", "empty", "no-id", "no-appointment"],
)
def test_a_malformed_booking_is_400_naming_the_field(change: Any, expression: str) -> None:
    body = book_body(appointment("ServiceRequest/sr-implant"))
    change(body)
    response = post_json(create_app(open_settings(), catalog()).test_client(), BOOK_URL, body)
    assert_outcome(response, 400, expression, mention="context.appointments")


def test_a_booking_needs_no_draft_orders_or_selections() -> None:
    body = book_body(appointment())
    assert "draftOrders" not in body["context"]
    response = post_json(create_app(open_settings(), catalog()).test_client(), BOOK_URL, body)
    assert response.status_code == 200


# --------------------------------------------------------------------------- references and patients


def test_a_versioned_reference_reads_the_order() -> None:
    body = book_body(appointment("ServiceRequest/sr-implant/_history/2"))
    answer, ehr = book(body, meeting_chart(), [pump_order()])
    assert ("read", "ServiceRequest/sr-implant") in ehr.calls
    assert answer["systemActions"][0]["resource"]["id"] == "sr-implant"


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("ServiceRequest/sr?x=1", "not a valid FHIR reference"),
        ("https://other.example.org/fhir/ServiceRequest/sr-implant", "another FHIR server"),
    ],
    ids=["malformed-id", "other-server"],
)
def test_references_the_call_cannot_read_are_reported_without_reading(reference: str, reason: str) -> None:
    answer, ehr = book(book_body(appointment(reference)), meeting_chart(), [pump_order()])
    [card] = answer["cards"]
    assert reason in card["detail"]
    assert not [c for c in beyond_the_payer(ehr.calls) if c[0] == "read"]


def test_an_appointment_for_another_patient_is_not_judged_for_this_one() -> None:
    booked = appointment("ServiceRequest/sr-implant")
    booked["participant"][0]["actor"]["reference"] = "Patient/someone-else"
    answer, ehr = book(book_body(booked), meeting_chart(), [pump_order()])
    [card] = answer["cards"]
    assert card["summary"] == "Coverage not checked: the appointment is for another patient"
    assert "the appointment is for another patient" in card["detail"]
    assert "once the order is available" not in card["detail"]
    assert beyond_the_payer(ehr.calls) == []


def test_a_contained_pump_order_is_reported_and_a_contained_visit_ignored() -> None:
    pump = appointment("#order")
    pump["contained"] = [{**pump_order(), "id": "order"}]
    answer, _ = book(book_body(pump), meeting_chart(), [])
    [card] = answer["cards"]
    assert "contained in the appointment" in card["detail"]
    visit = appointment("#order")
    visit["contained"] = [{**pump_order(code="99213"), "id": "order"}]
    answer, _ = book(book_body(visit), meeting_chart(), [])
    assert answer["cards"] == []
    assert [a["resource"]["id"] for a in answer["systemActions"]] == ["apt-1"]


@pytest.mark.parametrize("count", [10, 400])
def test_an_appointments_contained_orders_are_found_in_one_pass_over_its_contained(count: int) -> None:
    """Each `#id` it is based on was found by scanning `contained` again: a body with thousands of
    both took tens of seconds (security review S-2). Now the work is proportional to the body."""
    booked = appointment(*(f"#c{n}" for n in range(count)))
    booked["contained"] = CountedItems([{**pump_order(), "id": f"c{n}"} for n in range(count)])
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": booked}]}
    _, unread = appointment_orders(bundle, PATIENT_ID, None)
    assert [(u.order, u.resource and u.resource["id"]) for u in unread] == [
        (f"#c{n}", f"c{n}") for n in range(count)
    ]
    assert booked["contained"].read == count


def test_of_contained_resources_sharing_an_id_the_first_is_the_one_referred_to() -> None:
    booked = appointment("#order", "#missing")
    booked["contained"] = [{**pump_order(), "id": "order"}, {**pump_order(code="99213"), "id": "order"}, {}]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": booked}]}
    _, [first, missing] = appointment_orders(bundle, PATIENT_ID, None)
    assert first.resource is booked["contained"][0]
    assert (missing.order, missing.resource) == ("#missing", None)


def test_rebooking_an_order_that_already_carries_the_same_assertion_sends_no_update() -> None:
    first, _ = book(book_body(appointment("ServiceRequest/sr-implant")), meeting_chart(), [pump_order()])
    [judged] = [a["resource"] for a in actions_on(first, "ServiceRequest")]
    [booked] = [a["resource"] for a in actions_on(first, "Appointment")]
    again, _ = book(book_body(booked), meeting_chart(), [judged])
    assert "systemActions" not in again
    assert [c["summary"] for c in cards_of(again["cards"])] == ["GEHA: 62362 meets all 14 coverage criteria"]


def test_max_cards_also_caps_the_could_not_check_cards() -> None:
    body = book_body(appointment("ServiceRequest/a"), appointment("ServiceRequest/b", appointment_id="apt-2"))
    body["extension"] = {"davinci-crd.configuration": {"max-cards": 1}}
    answer, _ = book(body, meeting_chart(), [])
    assert len(answer["cards"]) == 1


# --------------------------------------------------------------------------- one service, one assertion


def approved(action: dict[str, Any]) -> tuple[str, str]:
    """(assertion id, PA number) of an action's one coverage-information repetition."""
    told = assertion_of(action)
    assert told["pa-needed"] == "satisfied", told
    return told["coverage-assertion-id"], told["satisfied-pa-id"]


def test_a_booked_appointment_carries_the_assertion_and_pa_number_of_its_order() -> None:
    """CRD 2.0.1 (no requestedVersion): the Appointments are annotated too, with the order's assertion.
    Before, each Appointment got its own assertion id and its own PA number: one implant, three
    approvals a payer would hold, where the claim carries one (review H4, CRD §resp-31)."""
    body = book_body(
        appointment("ServiceRequest/sr-implant", appointment_id="apt-trial"),
        appointment("ServiceRequest/sr-implant", appointment_id="apt-implant"),
    )
    answer, _ = book(body, meeting_chart(), [pump_order()], policies=approving(catalog(), "geha"))
    [order] = actions_on(answer, "ServiceRequest")
    booked = actions_on(answer, "Appointment")
    assert len(booked) == 2
    assert {approved(a) for a in booked} == {approved(order)}
    assert approved(order)[1].startswith("IDDS-")


def first_approving_booking() -> tuple[Catalog, dict[str, Any]]:
    """(policies, the answer) of an approving payer's first booking of the pump order."""
    policies = approving(catalog(), "geha")
    first, _ = book(
        book_body(appointment("ServiceRequest/sr-implant")),
        meeting_chart(),
        [pump_order()],
        policies=policies,
    )
    return policies, first


def approved_booking() -> tuple[Catalog, dict[str, Any], dict[str, Any]]:
    """(policies, the order as signed, its Appointment as booked) of an approving payer's first booking."""
    policies, first = first_approving_booking()
    [signed] = actions_on(first, "ServiceRequest")
    [booked] = actions_on(first, "Appointment")
    return policies, signed, booked


def test_rebooking_an_approved_order_repeats_its_pa_number() -> None:
    """The order comes back carrying the number this service issued: a new Appointment for it repeats
    that number and assertion, and the order gets no update (§resp-35). Before, every rebooking
    minted another PA number."""
    policies, signed, _ = approved_booking()
    again, _ = book(
        book_body(appointment("ServiceRequest/sr-implant", appointment_id="apt-again"), signed["resource"]),
        meeting_chart(),
        [],
        policies=policies,
    )
    assert actions_on(again, "ServiceRequest") == []
    [rebooked] = actions_on(again, "Appointment")
    assert approved(rebooked) == approved(signed)
    assert rebooked["description"].endswith(f"prior authorization satisfied, number {approved(signed)[1]}")


def test_an_appointment_repeats_an_approval_its_order_carries_from_elsewhere() -> None:
    """The order keeps an approval another system issued; its Appointment says the same, not a
    request for prior authorization the order does not need."""
    first, _ = book(book_body(appointment("ServiceRequest/sr-implant")), meeting_chart(), [pump_order()])
    [judged] = actions_on(first, "ServiceRequest")
    order = copy.deepcopy(judged["resource"])
    [info] = [e for e in order["extension"] if e["url"] == COVERAGE_INFO]
    for sub in info["extension"]:
        if sub["url"] == "pa-needed":
            sub["valueCode"] = "satisfied"
    info["extension"].append({"url": "satisfied-pa-id", "valueString": "PAYER-PA-77"})
    answer, _ = book(book_body(appointment("ServiceRequest/sr-implant"), order), meeting_chart(), [])
    assert actions_on(answer, "ServiceRequest") == []
    [booked] = actions_on(answer, "Appointment")
    assert assertion_of(booked)["satisfied-pa-id"] == "PAYER-PA-77"
    assert "PAYER-PA-77 issued elsewhere" in booked["description"]


# --------------------------------------------------------------------------- technical failures (CRD 2.2)


@pytest.mark.parametrize(
    ("version", "error", "covered"),
    [
        ("2.2", FhirError("HTTP 503", 503), "indeterminate"),
        ("2.2", FhirError("the FHIR server did not answer"), "indeterminate"),
        ("2.2", None, "conditional"),  # the server does not have it: nothing failed
        (None, FhirError("HTTP 503", 503), "conditional"),  # 2.0.1 has no indeterminate
    ],
    ids=["2.2-http-503", "2.2-no-answer", "2.2-missing", "2.0-http-503"],
)
def test_an_order_the_fhir_server_failed_to_return_is_indeterminate_under_crd_2_2(
    version: str | None, error: FhirError | None, covered: str
) -> None:
    """CRD 2.2 §resp-43: a technical issue is `indeterminate` with reason `technical`. Before, an
    unreadable order was `conditional` + OTH under every version (review H5)."""
    body = book_body(appointment("ServiceRequest/sr-implant"))
    if version:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    answer, _ = book(body, meeting_chart(), [], read_error=error)
    [booked] = actions_on(answer, "Appointment")
    told = assertion_of(booked)
    assert told["covered"] == covered
    if covered == "indeterminate":
        assert told["pa-needed"] == "indeterminate" and "info-needed" not in told
        assert told["reason"]["coding"] == [
            {"system": "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp", "code": "technical"}
        ]
        assert "could not be read" in told["reason"]["text"]
    else:
        assert (told["pa-needed"], told["info-needed"]) == ("conditional", "OTH")
        assert "coding" not in told["reason"]


# --------------------------------------------------------------------------- an appointment with no order


def coded_appointment(
    element: str = "serviceType", appointment_id: str = "apt-coded", **extra: Any
) -> dict[str, Any]:
    """An Appointment based on no order, what is booked coded on it (CRD profile-appointment-no-order):
    the 62362 implant and the order's reason."""
    implant = copy.deepcopy(pump_order()["code"])
    booked = appointment(appointment_id=appointment_id)
    booked[element] = [implant] if element == "serviceType" else implant
    booked["reasonCode"] = copy.deepcopy(pump_order()["reasonCode"])
    return {**booked, **extra}


@pytest.mark.parametrize("element", ["serviceType", "appointmentType"])
@pytest.mark.parametrize("version", [None, "2.2"])
def test_an_appointment_coded_as_a_pump_service_is_judged_as_that_order(
    element: str, version: str | None
) -> None:
    """Before, an Appointment coding CPT 62362 with no `basedOn` was told "this service holds no
    coverage rules for code 62362", with no card (review H3)."""
    body = book_body(coded_appointment(element))
    if version:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    answer, _ = book(body, meeting_chart(), [])
    [decision] = cards_of(answer["cards"])
    assert decision["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    assert decision["extension"]["davinci-crd.associated-resource"] == [
        {"reference": "Appointment/apt-coded"}
    ]
    [booked] = answer["systemActions"]
    told = assertion_of(booked)
    assert (told["covered"], told["pa-needed"], told["billingCode"]["code"]) == (
        "covered",
        "auth-needed",
        "62362",
    )
    assert "no coverage rules" not in json.dumps(answer)


def test_an_appointment_whose_based_on_names_no_order_is_judged_by_its_own_code() -> None:
    """`basedOn` a CarePlan is no order behind it: what is booked is what the Appointment codes."""
    booked = coded_appointment(basedOn=[{"reference": "CarePlan/plan-1"}])
    answer, ehr = book(book_body(booked), meeting_chart(), [])
    assert [c["summary"] for c in cards_of(answer["cards"])] == ["GEHA: 62362 meets all 14 coverage criteria"]
    assert not [c for c in ehr.calls if c == ("read", "CarePlan/plan-1")]


def test_another_patients_coded_appointment_is_not_judged() -> None:
    booked = coded_appointment()
    booked["participant"][0]["actor"]["reference"] = "Patient/someone-else"
    answer, ehr = book(book_body(booked), meeting_chart(), [])
    assert answer["cards"] == [] and "systemActions" not in answer
    assert beyond_the_payer(ehr.calls) == []


def test_a_coded_appointment_is_an_order_of_the_booking_beside_the_orders_of_the_others() -> None:
    bundle, unread = appointment_orders(
        book_body(coded_appointment(), appointment("ServiceRequest/sr-implant"), pump_order())["context"][
            "appointments"
        ],
        PATIENT_ID,
        None,
    )
    assert [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]] == [
        "Appointment/apt-coded",
        "ServiceRequest/sr-implant",
    ]
    assert unread == []


def test_behind_a_payers_gateway_a_coded_appointment_is_still_judged() -> None:
    """`only_orders_with_rules`: the other Appointments are the gateway's; one coding a pump service
    is a pump order here."""
    ehr = EhrClient(meeting_chart(), [])
    settings = open_settings(only_orders_with_rules=True)
    app = create_app(settings, catalog(), client_factory=RecordingFactory(ehr))
    body = book_body(coded_appointment(), appointment(appointment_id="apt-visit"))
    answer = post_json(app.test_client(), BOOK_URL, with_fhir(body)).get_json()
    assert [a["resource"]["id"] for a in answer["systemActions"]] == ["apt-coded"]
    assert assertion_of(answer["systemActions"][0])["covered"] == "covered"


def test_the_audit_trail_holds_one_approval_for_a_booked_order() -> None:
    """The Appointment's repetition is the order's assertion: indexed once, exported once (as the
    order's determination), not as a second approval this call issued."""
    ehr = EhrClient(meeting_chart(), [pump_order()])
    settings = open_settings(store=StoreSettings(url="sqlite://"))
    app = create_app(settings, approving(catalog(), "geha"), client_factory=RecordingFactory(ehr))
    body = book_body(appointment("ServiceRequest/sr-implant"))
    answer = post_json(app.test_client(), BOOK_URL, with_fhir(body)).get_json()
    [order] = actions_on(answer, "ServiceRequest")
    assertion, number = approved(order)
    trail = app.extensions["idds_crd"].stores.audit
    [record] = trail.find(body["hookInstance"])
    assert trail.find(number) == [record]
    by_target = {a["order"]: a for a in record["assertions"]}
    assert not by_target["ServiceRequest/sr-implant"].get("carried")
    assert (
        by_target["Appointment/apt-1"]["carried"]
        and by_target["Appointment/apt-1"]["satisfied_pa_id"] == number
    )
    exported = json.dumps(list(metric_data(record)))
    assert exported.count('"satisfiedId"') == 1 and exported.count(assertion) == 1


def test_a_what_if_booking_does_not_copy_an_approval_onto_the_appointment() -> None:
    """A call that may not approve (`unsolicited-determ` false) leaves the order's approval, and does
    not state it on the Appointment either (least of all when its own cards say the order no longer
    meets): the Appointment gets what this call judges (session review s37, S37-3)."""
    policies, signed, _ = approved_booking()
    again = appointment("ServiceRequest/sr-implant", appointment_id="apt-again")
    what_if = book_body(again, signed["resource"])
    what_if["extension"] = {"davinci-crd.configuration": {"unsolicited-determ": False}}
    changed = without_codes(meeting_chart(), "62324")  # the trial gone from the chart since
    answer, _ = book(what_if, changed, [], policies=policies)
    assert actions_on(answer, "ServiceRequest") == []
    [rebooked] = actions_on(answer, "Appointment")
    told = assertion_of(rebooked)
    assert told["covered"] == "conditional" and "satisfied-pa-id" not in told
    # its own assertion, under its own id (the audit trail records it as this call's: audit review AR-1)
    [info] = [e for e in rebooked["resource"]["extension"] if e["url"] == COVERAGE_INFO]
    own = assertion_ids(
        HookCall("appointment-book", what_if["hookInstance"]), "Appointment/apt-again", info["extension"]
    )
    assert told["coverage-assertion-id"] == own.assertion_id


def test_an_appointment_repeating_its_orders_assertion_carries_only_what_its_crd_version_can() -> None:
    """The order carries a CRD 2.2 assertion (with its policy-link detail); a 2.0 booking repeats it on
    the Appointment without the detail, which 2.0.1 cannot carry (session review s37, S37-3)."""
    first_body = book_body(appointment("ServiceRequest/sr-implant"))
    first_body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    first, _ = book(first_body, meeting_chart(), [pump_order()])
    [signed] = actions_on(first, "ServiceRequest")
    assert "detail" in assertion_of(signed)
    again, _ = book(
        book_body(appointment("ServiceRequest/sr-implant", appointment_id="apt-again"), signed["resource"]),
        meeting_chart(),
        [],
    )
    assert actions_on(again, "ServiceRequest") == []  # the same judgement: nothing new for the order
    [rebooked] = actions_on(again, "Appointment")
    told = assertion_of(rebooked)
    assert (
        "detail" not in told
        and told["coverage-assertion-id"] == assertion_of(signed)["coverage-assertion-id"]
    )


def test_an_appointment_carrying_its_own_earlier_assertion_is_given_its_orders() -> None:
    """An Appointment annotated before it repeated its order's assertion (its own id and PA number, the
    same content) gets the order's when booked again: one implant, one approval (review s37, S37-7).
    Before, equal content was enough to leave it as it was, with the second approval number."""
    policies, signed, booked = approved_booking()
    legacy = copy.deepcopy(booked["resource"])
    [info] = [e for e in legacy["extension"] if e["url"] == COVERAGE_INFO]
    own = {"coverage-assertion-id": "legacy-appointment-assertion", "satisfied-pa-id": "IDDS-LEGACY0000000"}
    for sub in info["extension"]:
        if sub["url"] in own:
            sub["valueString"] = own[sub["url"]]
    again, _ = book(book_body(legacy, signed["resource"]), meeting_chart(), [], policies=policies)
    assert actions_on(again, "ServiceRequest") == []
    [rebooked] = actions_on(again, "Appointment")
    assert approved(rebooked) == approved(signed)


def test_an_appointment_already_repeating_its_orders_assertion_gets_no_update() -> None:
    policies, signed, booked = approved_booking()
    again, _ = book(book_body(booked["resource"], signed["resource"]), meeting_chart(), [], policies=policies)
    assert "systemActions" not in again


# --------------------------------------------------------------------------- a booking carrying a modifier

WHAT_IF = {
    "url": "http://ehr.example/fhir/StructureDefinition/booked-as-something-else",
    "valueBoolean": True,
}


@pytest.mark.parametrize("version", ["2.0.1", "2.2"])
@pytest.mark.parametrize("where", ["top", "participant"])
def test_a_booking_carrying_a_modifier_is_not_judged_as_a_plain_booking(version: str, where: str) -> None:
    """An Appointment carrying a modifier extension may book something other than its plain order
    (FHIR R4 forbids reading it as if the modifier were not there): the order it books is not judged
    for it, as an order carrying one is not. The order's coverage information (where CRD 2.2 puts the
    booking's) says it was not checked and why; under 2.0.1 the Appointment's says so too; and a card
    says the appointment was not checked. Before, under 2.2 nothing mentioned the modifier and the
    order was judged "covered"; under 2.0.1 only the Appointment's coverage information did (inferno
    review I-5, json review Q1)."""
    booked = appointment("ServiceRequest/sr-implant")
    holder = booked if where == "top" else booked["participant"][0]
    holder["modifierExtension"] = [WHAT_IF]
    body = book_body(booked)
    if version == "2.2":
        body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    answer, _ = book(body, meeting_chart(), [pump_order()])
    [order] = actions_on(answer, "ServiceRequest")
    told = assertion_of(order)
    assert (told["covered"], told["pa-needed"]) == ("conditional", "conditional")
    assert (
        "the appointment booking it (Appointment/apt-1) carries a modifier extension" in order["description"]
    )
    assert WHAT_IF["url"] in order["description"]
    on_appointment = actions_on(answer, "Appointment")
    if version == "2.2":
        assert on_appointment == []  # one assertion per Coverage: the booking's is on its order
    else:
        [own] = on_appointment
        assert assertion_of(own)["covered"] == "conditional" and WHAT_IF["url"] in own["description"]
    [card] = cards_of(answer["cards"])
    assert (
        card["summary"]
        == "Coverage not checked: the appointment carries an extension that changes its meaning"
    )
    assert card["detail"].startswith(
        "The appointment (Appointment/apt-1), which books ServiceRequest/sr-implant, was not checked:"
        " it carries"
    )


def test_a_booking_carrying_a_modifier_gets_one_card_naming_every_order_it_books() -> None:
    """Each order it books is held back and told so in its own coverage information, but the card is
    the booking's: one, naming them all. Before, one identical card per order, 99 orders filling
    `max-cards` with ten (review2 F-7)."""
    booked = appointment("ServiceRequest/sr-implant")
    booked["basedOn"].append({"reference": "ServiceRequest/sr-other"})
    booked["modifierExtension"] = [WHAT_IF]
    answer, _ = book(book_body(booked), meeting_chart(), [pump_order(), pump_order(order_id="sr-other")])
    told = {a["resource"]["id"]: assertion_of(a)["covered"] for a in actions_on(answer, "ServiceRequest")}
    assert told == {"sr-implant": "conditional", "sr-other": "conditional"}
    [card] = cards_of(answer["cards"])
    assert card["detail"].startswith(
        "The appointment (Appointment/apt-1), which books ServiceRequest/sr-implant and"
        " ServiceRequest/sr-other, was not checked: it carries"
    )


def test_a_plain_appointment_beside_one_carrying_a_modifier_changes_nothing_for_another_order() -> None:
    """Only the orders the modified Appointment books are held back: another booking's order is judged."""
    modified = appointment("ServiceRequest/sr-implant")
    modified["modifierExtension"] = [WHAT_IF]
    plain = appointment("ServiceRequest/sr-other", appointment_id="apt-2")
    answer, _ = book(
        book_body(modified, plain), meeting_chart(), [pump_order(), pump_order(order_id="sr-other")]
    )
    told = {a["resource"]["id"]: assertion_of(a)["covered"] for a in actions_on(answer, "ServiceRequest")}
    assert told == {"sr-implant": "conditional", "sr-other": "covered"}
