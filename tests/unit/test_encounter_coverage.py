"""encounter-start/-discharge: the hook's Encounter carries coverage information of its own (the Inferno
CRD kit's encounter groups look for it there), an honest "the payer's own requirements apply" beside
the open pump orders' judgement, which is unchanged. Through the app, against a fake FHIR server."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest

from cards.coverage_information import HookCall, assertion_ids
from service.app import create_app
from service.fhir.client import FhirError, SearchResult
from service.metrics import metric_data
from service.settings import FhirSettings, SettingsError, settings_from_mapping
from tests.audit_support import kept_as_carried
from tests.builders import catalog, meeting_chart, service_request
from tests.calls import configured, sample, sign_with_chart
from tests.conformance import COVERAGE_INFO, reference_of
from tests.scaling_support import observations_answer
from tests.support import (
    FHIR_SERVER,
    RecordingFactory,
    RecordingFhirClient,
    assertion_of,
    open_settings,
    post_json,
    with_fhir,
)

HOOKS = ("encounter-start", "encounter-discharge")
ENCOUNTER = "Encounter/demo-meets-encounter"  # the encounter samples' Encounter, prefetched
GEHA = "Coverage/demo-meets-coverage-geha"
NO_RULES = "GEHA: this service holds no coverage rules for the encounter itself"
OWN_REQUIREMENTS = "; the payer's own requirements apply"
ENCOUNTER_TEMPLATE = "Encounter/{{context.encounterId}}"  # CRD 2.2.1's (CRDServices.json)


def open_pump_order() -> dict[str, Any]:
    order = service_request("62362")
    order["status"] = "active"
    return order


def on(answer: dict[str, Any], reference: str) -> list[dict[str, Any]]:
    """The answer's system actions updating `reference`."""
    return [
        a
        for a in answer.get("systemActions", [])
        if f"{a['resource']['resourceType']}/{a['resource']['id']}" == reference
    ]


def encounter_call(hook: str = "encounter-start", **changes: Any) -> dict[str, Any]:
    """The hook's sample (Patient, Coverage and Encounter prefetched), its Encounter changed by `changes`
    (an element set to None is removed)."""
    body = sample(f"{hook}-demo-meets")
    encounter = body["prefetch"]["encounter"]
    for key, value in changes.items():
        if value is None:
            encounter.pop(key, None)
        else:
            encounter[key] = value
    return body


@pytest.mark.parametrize("hook", HOOKS)
def test_the_encounter_gets_the_payers_own_requirements_beside_the_pump_orders_judgement(hook: str) -> None:
    """One update of the complete Encounter as the EHR gave it, the extension added (§resp-37: the
    conformance checker holds every other element to the one sent), saying what the non-pump order's
    says: conditional, the payer's own requirements; never documentation on a secondary hook
    (§hook-19). The pump order's coverage information is as it was."""
    order = open_pump_order()
    request, answer = sign_with_chart([*meeting_chart(), order], body=encounter_call(hook))
    [action] = on(answer, ENCOUNTER)
    given = request["prefetch"]["encounter"]
    assert {k: v for k, v in action["resource"].items() if k != "extension"} == given
    subs = assertion_of(action)
    assert subs["coverage"] == {"reference": GEHA}
    assert (subs["covered"], subs["pa-needed"], subs["info-needed"]) == ("conditional", "conditional", "OTH")
    reason = subs["reason"]["text"]
    assert reason.startswith(NO_RULES) and reason.endswith(OWN_REQUIREMENTS)
    assert "judges only intrathecal pump orders" in reason
    assert not {"doc-needed", "doc-purpose", "questionnaire", "billingCode", "satisfied-pa-id"} & set(subs)
    assert action["description"] == f"Coverage information for {ENCOUNTER}: {reason}"
    [pump] = on(answer, reference_of(order))
    assert (assertion_of(pump)["covered"], assertion_of(pump)["pa-needed"]) == ("covered", "auth-needed")


def test_a_2_2_call_gets_the_same_assertion_on_the_encounter() -> None:
    """Nothing 2.2-only: no indeterminate (nothing failed) and no policy-link detail (no policy)."""
    body = encounter_call()
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [action] = on(answer, ENCOUNTER)
    subs = assertion_of(action)
    assert (subs["covered"], subs["pa-needed"], subs["info-needed"]) == ("conditional", "conditional", "OTH")
    assert "detail" not in subs


def test_the_encounters_own_extensions_are_kept_before_the_coverage_information() -> None:
    own = {"url": "http://example.org/fhir/StructureDefinition/visit-note", "valueString": "walk-in"}
    _, answer = sign_with_chart(meeting_chart(), body=encounter_call(extension=[own]))
    [action] = on(answer, ENCOUNTER)
    extensions = action["resource"]["extension"]
    assert extensions[0] == own and [e["url"] for e in extensions[1:]] == [COVERAGE_INFO]


def test_each_coverage_gets_its_own_repetition_and_assertion_id() -> None:
    """Two active Coverages: one repetition each on the Encounter, with distinct ids (the conformance
    checker: same coverage, one id; different coverages, different ids)."""
    two = sample("order-select-62362-demo-two-coverages")
    body = encounter_call(subject={"reference": "Patient/demo-two-coverages"})
    body["context"]["patientId"] = "demo-two-coverages"
    for key in ("patient", "coverage"):
        body["prefetch"][key] = two["prefetch"][key]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [action] = on(answer, ENCOUNTER)
    repetitions = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO]
    subs = [{s["url"]: s for s in e["extension"]} for e in repetitions]
    coverages = [s["coverage"]["valueReference"]["reference"] for s in subs]
    ids = {s["coverage-assertion-id"]["valueString"] for s in subs}
    assert len(repetitions) == 2 and len(set(coverages)) == 2 and len(ids) == 2


def applied(answer: dict[str, Any]) -> dict[str, Any]:
    """The Encounter as the EHR holds it once it applied the answer's update."""
    [action] = on(answer, ENCOUNTER)
    return copy.deepcopy(action["resource"])


def test_a_retry_gets_the_same_assertion_id_and_a_later_hook_sends_nothing_new() -> None:
    """The same hook and hookInstance name the same assertion; once the EHR applied it, neither
    encounter-discharge nor another encounter-start sends it again (§resp-35), while the pump order's
    coverage information is answered as before."""
    chart = [*meeting_chart(), open_pump_order()]
    first_body = encounter_call()
    _, first = sign_with_chart(chart, body=copy.deepcopy(first_body))
    _, retried = sign_with_chart(chart, body=copy.deepcopy(first_body))
    ids = [assertion_of(on(a, ENCOUNTER)[0])["coverage-assertion-id"] for a in (first, retried)]
    assert ids[0] == ids[1]
    for hook in HOOKS:
        later = encounter_call(hook)
        later["prefetch"]["encounter"] = applied(first)
        later["hookInstance"] = "5e0c9a7e-3d2b-4c1a-9f8e-7d6c5b4a3f21"
        _, answer = sign_with_chart(chart, body=later)
        assert on(answer, ENCOUNTER) == [], hook
        assert [reference_of(a["resource"]) for a in answer["systemActions"]] == [reference_of(chart[-1])]


def test_the_encounter_is_read_from_the_ehr_when_not_prefetched() -> None:
    body = encounter_call()
    encounter = body["prefetch"].pop("encounter")
    _, answer = sign_with_chart([*meeting_chart(), encounter], body=body)
    [action] = on(answer, ENCOUNTER)
    assert {k: v for k, v in action["resource"].items() if k != "extension"} == encounter


@pytest.mark.parametrize("failing", [(), ("Encounter",)], ids=["not-held", "read-fails"])
def test_an_encounter_that_cannot_be_read_gets_nothing_and_the_rest_is_answered_as_before(
    failing: tuple[str, ...],
) -> None:
    """Neither prefetched nor read (the EHR has none, or its read fails): no update for it, no card
    about it (the clinician has nothing to do about the encounter's coverage here), and the pump order
    judged as with it."""
    chart = [*meeting_chart(), open_pump_order()]
    _, with_it = sign_with_chart(chart, body=encounter_call())
    body = encounter_call()
    del body["prefetch"]["encounter"]
    _, without = sign_with_chart(chart, body=body, failing=failing)
    assert on(without, ENCOUNTER) == []
    assert [c["summary"] for c in without["cards"]] == [c["summary"] for c in with_it["cards"]]
    assert [a["resource"] for a in without["systemActions"]] == [
        a["resource"] for a in with_it["systemActions"] if reference_of(a["resource"]) != ENCOUNTER
    ]


def calls_of(body: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """(answer, the FHIR calls it made) of `body` against a server that holds nothing."""
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(), catalog(), client_factory=factory)
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), factory.client.calls


def test_the_encounter_is_not_read_when_the_ehr_said_it_has_none_or_no_coverage_information_is_wanted() -> (
    None
):
    """A prefetch of `null` is "known empty" (CDS Hooks: not queried again); `coverage-info` false asks
    for no coverage information, so the Encounter is not wanted. A key left out is read (the control)."""
    read = ("read", ENCOUNTER)
    left_out = encounter_call()
    del left_out["prefetch"]["encounter"]
    assert read in calls_of(copy.deepcopy(left_out))[1]
    null = encounter_call()
    null["prefetch"]["encounter"] = None
    answer, calls = calls_of(null)
    assert read not in calls and on(answer, ENCOUNTER) == []
    answer, calls = calls_of(configured(left_out, **{"coverage-info": False}))
    assert read not in calls and "systemActions" not in answer


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": {"reference": "Patient/someone-else"}},
        {"subject": None},
        {"status": "entered-in-error"},
        {"status": "cancelled"},
        {"modifierExtension": [{"url": "http://example.org/fhir/StructureDefinition/hypothetical"}]},
        {"period": {}},
        {"extension": {"url": "http://example.org/not-an-array"}},
        {"status": "bogus"},
        {"status": ""},
        {"status": None},
        {"status": ["in-progress"]},
    ],
    ids=[
        "another-patient",
        "no-subject",
        "entered-in-error",
        "cancelled",
        "modifier",
        "empty",
        "extension",
        "status-bogus",
        "status-empty",
        "status-absent",
        "status-no-code",
    ],
)
def test_an_encounter_that_may_not_be_annotated_gets_nothing_and_the_call_is_answered(
    changes: dict[str, Any],
) -> None:
    """Another patient's, whose none can be told, one that never was or will not be (entered in error,
    cancelled), one a modifier may change the meaning of, or one that cannot be sent back valid
    (§resp-47: R4's Encounter.status is 1..1 from a required value set, so a status not one of its codes,
    empty or absent, review29a L1): no update for it, the pump order answered as ever."""
    order = open_pump_order()
    _, answer = sign_with_chart([*meeting_chart(), order], body=encounter_call(**changes))
    assert on(answer, ENCOUNTER) == []
    assert [reference_of(a["resource"]) for a in answer["systemActions"]] == [reference_of(order)]


@pytest.mark.parametrize("version", [None, "2.2"])
def test_an_encounter_with_no_coverage_known_is_answered_with_nothing(version: str | None) -> None:
    """No pump order and no Coverage: the Encounter cannot be annotated (a repetition names its
    Coverage), and it alone does not make the call one that needs a Coverage: 200 with nothing, as
    before, also under CRD 2.2 (whose one-Coverage rule, §hook-13, refuses a call about orders)."""
    body = encounter_call()
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    if version is not None:
        body["extension"] = {"davinci-crd.requestedVersion": version}
    answer, _ = calls_of(body)
    assert answer == {"cards": []}


def test_only_the_encounter_hooks_annotate_the_encounter() -> None:
    """The registry says so (`on_encounter`): an order-select naming an encounter leaves it alone."""
    body = sample("order-select-62362-demo-meets")
    body["context"]["encounterId"] = "demo-meets-encounter"
    body["prefetch"]["encounter"] = encounter_call()["prefetch"]["encounter"]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    assert answer["systemActions"] and on(answer, ENCOUNTER) == []


@pytest.mark.parametrize("pump_open", [False, True], ids=["no-open-pump-order", "open-pump-order"])
@pytest.mark.parametrize("prefetched", [True, False], ids=["prefetched", "not-prefetched"])
def test_behind_a_payers_gateway_the_encounter_is_the_gateways_to_answer(
    pump_open: bool, prefetched: bool
) -> None:
    """`only_orders_with_rules`: the payer's own CRD gateway answers what this service holds no rules
    for, the encounter itself among them (this service's "no rules here" beside the gateway's would be a
    second assertion for the Coverage, under another id). The Encounter is neither annotated nor read:
    a call about no pump order reads nothing beyond its open orders, as before; a pump order is answered."""
    body = encounter_call()
    if not prefetched:
        del body["prefetch"]["encounter"]  # else read from the EHR
    order = {**open_pump_order(), "subject": {"reference": "Patient/demo-meets"}}
    if pump_open:
        found = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]}
        body["prefetch"]["openServiceRequests"] = found
    factory = RecordingFactory(RecordingFhirClient())
    app = create_app(open_settings(only_orders_with_rules=True), catalog(), client_factory=factory)
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body))
    answer = response.get_json()
    assert response.status_code == 200 and ("read", ENCOUNTER) not in factory.client.calls
    if pump_open:
        assert [reference_of(a["resource"]) for a in answer["systemActions"]] == [reference_of(order)]
    else:
        assert answer == {"cards": []}
        assert sorted(c[1][0] for c in factory.client.calls) == ["DeviceRequest", "ServiceRequest"]


@pytest.mark.parametrize("gateway", [False, True], ids=["own-answers", "behind-a-gateway"])
def test_discovery_declares_the_encounter_only_where_it_is_annotated(gateway: bool) -> None:
    """Discovery is generated from what decides whether the Encounter is annotated
    (`HookBehaviour.annotates_encounter`): behind a payer's gateway, where it is neither read nor
    annotated, an EHR is not asked to prefetch it, nor told it gets coverage information (review29a M1
    follow-up); otherwise the encounter hooks declare CRD's `encounter` template and no other service does."""
    app = create_app(open_settings(only_orders_with_rules=gateway), catalog())
    services = {s["hook"]: s for s in app.test_client().get("/cds-services").get_json()["services"]}
    for hook, service in services.items():
        annotated = hook in HOOKS and not gateway
        assert ("encounter" in service["prefetch"]) is annotated, hook
        assert service["prefetch"].get("encounter", ENCOUNTER_TEMPLATE) == ENCOUNTER_TEMPLATE
        assert ("The encounter itself gets coverage information" in service["description"]) is annotated, hook
    assert all("openServiceRequests" in services[hook]["prefetch"] for hook in HOOKS)


class HangingEncounterServer(RecordingFhirClient):
    """A chart's FHIR server (each resource the call's patient's) whose Encounter read does not answer
    until `released`: an EHR whose Encounter endpoint hangs."""

    def __init__(self, chart: list[dict[str, Any]]) -> None:
        super().__init__()
        self.released = threading.Event()
        self.by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in chart:
            resource = {**resource, "subject": {"reference": "Patient/demo-meets"}}
            self.by_type.setdefault(resource["resourceType"], []).append(resource)

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        super().search(resource_type, params)
        found = self.by_type.get(resource_type, [])
        if resource_type == "Observation":
            found = observations_answer(found, params, first_page)
        return SearchResult(found, [], 1)

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        if reference.startswith("Encounter/"):
            self.released.wait(10)
            raise FhirError("the FHIR server did not answer")
        return None


def test_an_encounter_read_that_hangs_never_takes_the_time_the_pump_orders_data_needs() -> None:
    """The Encounter is not data the call needs: read once the pump order's data is at hand, a read
    that does not answer within the call's deadline costs the Encounter its coverage information and
    nothing else. Read before it (7d2c590), it held the call until its deadline, and every clinical
    query then found no time left: the pump order 'could not be checked'."""
    server = HangingEncounterServer([*meeting_chart(), open_pump_order()])
    settings = open_settings(fhir=FhirSettings(deadline_seconds=1.0, timeout_seconds=1.0))
    app = create_app(settings, catalog(), client_factory=RecordingFactory(server))
    body = encounter_call()
    del body["prefetch"]["encounter"]  # read from the EHR, which does not answer
    try:
        answer = post_json(
            app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body)
        ).get_json()
    finally:
        server.released.set()
    assert answer["cards"][0]["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    assert on(answer, ENCOUNTER) == [] and ("read", ENCOUNTER) in server.calls


@pytest.mark.parametrize(
    "status", ["planned", "arrived", "triaged", "in-progress", "onleave", "finished", "unknown"]
)
def test_an_encounter_of_every_r4_status_but_cancelled_or_entered_in_error_is_annotated(status: str) -> None:
    """The control of the statuses refused: each other code of R4's encounter-status gets its update."""
    _, answer = sign_with_chart(meeting_chart(), body=encounter_call(status=status))
    assert len(on(answer, ENCOUNTER)) == 1


def timed(server: RecordingFhirClient, body: dict[str, Any], **fhir: float) -> tuple[dict[str, Any], float]:
    """(answer, seconds taken) of an encounter-start against `server`, with these FhirSettings."""
    app = create_app(
        open_settings(fhir=FhirSettings(**fhir)), catalog(), client_factory=RecordingFactory(server)
    )
    started = time.monotonic()
    answer = post_json(
        app.test_client(), "/cds-services/idds-crd-encounter-start", with_fhir(body)
    ).get_json()
    return answer, time.monotonic() - started


@pytest.mark.parametrize("pump_open", [True, False], ids=["open-pump-order", "no-open-pump-order"])
def test_an_encounter_read_that_hangs_costs_the_answer_at_most_its_own_budget(pump_open: bool) -> None:
    """The Encounter is never needed data: its read is waited for `fhir.encounter_read_seconds` at most,
    not the call's deadline (review29a: an Encounter endpoint that hung delayed every encounter answer
    to the deadline, 2.85 s, for every patient). The pump order's data keeps the call's deadline: it is
    judged whole."""
    chart = [*meeting_chart(), *([open_pump_order()] if pump_open else [])]
    server = HangingEncounterServer(chart)
    body = encounter_call()
    del body["prefetch"]["encounter"]  # read from the EHR, which does not answer
    try:
        answer, seconds = timed(
            server, body, deadline_seconds=3.0, timeout_seconds=2.5, encounter_read_seconds=0.2
        )
    finally:
        server.released.set()
    assert ("read", ENCOUNTER) in server.calls and on(answer, ENCOUNTER) == []
    assert seconds < 2.0, seconds  # the deadline is 3.0 s: waited for, the answer takes more than it
    if pump_open:
        assert answer["cards"][0]["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    else:
        assert answer == {"cards": []}


def test_the_encounter_read_budget_is_a_setting_of_more_than_nothing() -> None:
    assert FhirSettings().encounter_read_seconds == 0.5
    assert (
        settings_from_mapping({"fhir": {"encounter_read_seconds": 0.25}}).fhir.encounter_read_seconds == 0.25
    )
    for wrong in (0, -1):
        with pytest.raises(SettingsError, match=r"fhir\.encounter_read_seconds"):
            settings_from_mapping({"fhir": {"encounter_read_seconds": wrong}})


def assertion_by_another(coverage: str, covered: str, pa_needed: str | None) -> dict[str, Any]:
    """A coverage-information repetition another CRD service put on the Encounter for `coverage`."""
    subs = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": covered},
        *([{"url": "pa-needed", "valueCode": pa_needed}] if pa_needed else []),
        {"url": "date", "valueDate": "2026-01-05"},
        {"url": "coverage-assertion-id", "valueString": "another-service-6"},
    ]
    return {"url": COVERAGE_INFO, "extension": subs}


@pytest.mark.parametrize(
    ("covered", "pa_needed"), [("covered", "no-auth"), ("not-covered", None)], ids=["covered", "not-covered"]
)
@pytest.mark.parametrize("pump_open", [True, False], ids=["open-pump-order", "no-open-pump-order"])
def test_another_sources_assertion_on_the_encounter_stands_and_none_is_sent_for_its_coverage(
    covered: str, pa_needed: str | None, pump_open: bool
) -> None:
    """§resp-37: no element but our own coverage information changes; another source's answer for the
    Coverage is the one that says something about the encounter, where this service holds no rules.
    Beside it, ours would be a second assertion for one Coverage under another id (CRD 2.0.1: one id
    per Coverage). So the Encounter gets no update for that Coverage (review29a L2: it was replaced)."""
    theirs = assertion_by_another(GEHA, covered, pa_needed)
    chart = [*meeting_chart(), *([open_pump_order()] if pump_open else [])]
    _, answer = sign_with_chart(chart, body=encounter_call(extension=[theirs]))
    assert on(answer, ENCOUNTER) == []
    assert len(answer.get("systemActions", [])) == (1 if pump_open else 0)  # the pump order's, as ever


def test_beside_another_sources_assertion_the_other_coverage_gets_ours_theirs_sent_back_unchanged() -> None:
    """Two Coverages, another source's assertion for one: the update carries it as it came, and ours for
    the other Coverage only."""
    two = sample("order-select-62362-demo-two-coverages")
    coverages = [e["resource"] for e in two["prefetch"]["coverage"]["entry"]]
    kept_for, ours_for = (f"Coverage/{c['id']}" for c in coverages)
    theirs = assertion_by_another(kept_for, "covered", "no-auth")
    body = encounter_call(subject={"reference": "Patient/demo-two-coverages"}, extension=[theirs])
    body["context"]["patientId"] = "demo-two-coverages"
    for key in ("patient", "coverage"):
        body["prefetch"][key] = two["prefetch"][key]
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [action] = on(answer, ENCOUNTER)
    extensions = action["resource"]["extension"]
    assert extensions[0] == theirs and len(extensions) == 2
    assert assertion_of({"resource": {"extension": extensions[1:]}})["coverage"] == {"reference": ours_for}


def test_another_sources_assertion_for_a_coverage_not_active_is_replaced_by_not_covered() -> None:
    """The control: an assertion under a plan that no longer covers the patient never stands, whoever
    issued it, on every resource (session review s18 R-1): the Encounter's says `not-covered`."""
    body = encounter_call(extension=[assertion_by_another(GEHA, "covered", "no-auth")])
    body["prefetch"]["coverage"]["entry"][0]["resource"]["status"] = "cancelled"
    _, answer = sign_with_chart(meeting_chart(), body=body)
    [action] = on(answer, ENCOUNTER)
    assert [e["url"] for e in action["resource"]["extension"]] == [COVERAGE_INFO]
    assert assertion_of(action)["covered"] == "not-covered"


def audited(body: dict[str, Any], server: RecordingFhirClient) -> dict[str, Any]:
    """The audit record of `body` answered against `server`."""
    app = create_app(open_settings(), catalog(), client_factory=RecordingFactory(server))
    response = post_json(app.test_client(), f"/cds-services/idds-crd-{body['hook']}", with_fhir(body))
    assert response.status_code == 200, response.get_data(as_text=True)
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    return record


def test_the_metrics_order_detail_of_the_encounter_is_its_service_type() -> None:
    """CRDMetricData's orderDetail for the Encounter is Encounter.serviceType, in R4 one CodeableConcept
    (an Appointment's is a list): it was data-absent (review29a L3)."""
    service_type = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124"}]
    }
    record = audited(encounter_call(serviceType=service_type), RecordingFhirClient())
    [metric] = metric_data(record)
    [order] = [r for r in metric["request"] if r["type"] == "Encounter"]
    assert order["orderDetail"] == service_type


class EncounterRefused(RecordingFhirClient):
    """A FHIR server that answers every search with nothing and refuses the Encounter read (`status`)."""

    def __init__(self, status: int = 401) -> None:
        super().__init__()
        self.status = status

    def read(self, reference: str) -> dict[str, Any] | None:
        super().read(reference)
        raise FhirError(f"HTTP {self.status}", self.status)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_encounter_read_counts_the_token_rejected(status: int) -> None:
    """The audit's token outcome (CRDMetricData tokenUse) counts the Encounter read as every other: one
    refused 401 is `rejected`, as a Coverage search refused so is (review29a L4: `not-used`). A 403 too:
    unlike the QuestionnaireResponse search's (`queries.not_offered`, read as the EHR's answer that it
    offers none), the read of the Encounter the call names is a failure, logged, not an answer (token30)."""
    body = encounter_call()
    del body["prefetch"]["encounter"]
    record = audited(body, EncounterRefused(status))
    assert record["fhir_access"]["token_use"] == "rejected"
    sent_back = [a["resource"]["resourceType"] for a in record["response"].get("systemActions", [])]
    assert "Encounter" not in sent_back  # (no Encounter read: none annotated)


@pytest.mark.parametrize(
    ("subject", "with_server", "sent_back"),
    [
        ("https://other.example/fhir/Patient/demo-meets", False, False),
        (f"{FHIR_SERVER}/Patient/demo-meets", False, False),
        ("Patient/demo-meets", False, True),
        (f"{FHIR_SERVER}/Patient/demo-meets", True, True),
        ("https://other.example/fhir/Patient/demo-meets", True, False),
    ],
    ids=[
        "no-server-other-url",
        "no-server-some-url",
        "no-server-relative",
        "server-own-url",
        "server-other-url",
    ],
)
def test_with_no_fhir_server_an_encounter_naming_its_patient_by_a_url_gets_nothing(
    subject: str, with_server: bool, sent_back: bool
) -> None:
    """A call naming no `fhirServer` says nothing of whose server a URL is: an Encounter whose subject is
    a server's URL of the patient's id cannot be told to be this patient's (on another server the id is
    another person, `references.belongs_to_patient`), so it is not sent back (review29a L6); written
    `Patient/id` it is. With a FHIR server named, its own URL is the patient's and another's is not."""
    body = encounter_call(subject={"reference": subject})
    if with_server:
        with_fhir(body)
    app = create_app(open_settings(), catalog())
    response = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert bool(on(response.get_json(), ENCOUNTER)) is sent_back


def test_the_audit_row_keeps_the_encounter_sent_back_as_its_reference_and_the_assertion_it_got() -> None:
    """The audit row's response keeps the Encounter as it keeps a chart resource, its versioned reference
    (its `meta.lastUpdated` too, and the digest of what was sent: test_audit_encounter_kept.py), with the
    coverage information sent on it: not its diagnoses, participants or the patient's name (review29a L5:
    the whole Encounter, seven years of it), nor the EHR's own extensions; another Coverage's assertion it
    came with is kept marked carried (review30b L5). Every assertion issued is still shown: in the row's
    assertions, and in its response, under the id the call gives it (`assertion_ids`)."""
    theirs = assertion_by_another("Coverage/other-plan", "covered", "no-auth")
    own = {"url": "http://ehr.example.org/fhir/StructureDefinition/ward", "valueString": "4B"}
    body = encounter_call(
        meta={"versionId": "3", "lastUpdated": "2026-11-20T09:00:00Z"},
        subject={"reference": "Patient/demo-meets", "display": "Avery Quinn"},
        diagnosis=[{"condition": {"display": "hospitalized for stroke"}}],
        extension=[own, theirs],
    )
    record = audited(body, RecordingFhirClient())
    [action] = on(record["response"], ENCOUNTER)
    [ours] = [
        e
        for e in action["resource"]["extension"]
        if e.get("url") == COVERAGE_INFO
        and {"url": "coverage", "valueReference": {"reference": GEHA}} in e["extension"]
    ]
    assert {k: v for k, v in action["resource"].items() if k != "sent_sha256"} == {
        "resourceType": "Encounter",
        "id": "demo-meets-encounter",
        "meta": {"versionId": "3", "lastUpdated": "2026-11-20T09:00:00Z"},
        "extension": [kept_as_carried(theirs), ours],
    }
    assert "Avery" not in str(record["response"]) and "stroke" not in str(record["response"])
    [kept] = [a for a in record["assertions"] if a["order"] == ENCOUNTER]
    assert (
        "carried" not in kept
        and kept["assertion_id"] == assertion_of(ours_only(action))["coverage-assertion-id"]
    )
    own = assertion_ids(HookCall(body["hook"], body["hookInstance"]), ENCOUNTER, ours["extension"])
    assert kept["assertion_id"] == own.assertion_id  # under the id the call gives it


def ours_only(action: dict[str, Any]) -> dict[str, Any]:
    """The row's system action with its resource's repetitions marked carried left out."""
    extensions = [e for e in action["resource"]["extension"] if not e.get("carried")]
    return {**action, "resource": {**action["resource"], "extension": extensions}}


def malformed_by_another(coverage: Any, identifier: Any) -> dict[str, Any]:
    """A coverage-information repetition the Encounter came with, holding `coverage` where the reference
    goes and `identifier` where the assertion id goes (an EHR's extension may hold anything)."""
    subs = [
        {"url": "coverage", "valueReference": {"reference": coverage}},
        {"url": "covered", "valueCode": "covered"},
        {"url": "coverage-assertion-id", "valueString": identifier},
    ]
    return {"url": COVERAGE_INFO, "extension": subs}


def with_second_coverage(body: dict[str, Any]) -> dict[str, Any]:
    """The call with a second active Coverage of the same payer (`GEHA` and `GEHA`-2) prefetched."""
    bundle = body["prefetch"]["coverage"]
    second = copy.deepcopy(bundle["entry"][0])
    second["resource"]["id"] += "-2"
    second["fullUrl"] += "-2"
    bundle["entry"].append(second)
    bundle["total"] = 2
    return body


@pytest.mark.parametrize(
    ("coverage", "identifier", "coverages"),
    [
        (["Coverage/elsewhere"], "theirs-1", 1),
        ({"reference": "Coverage/elsewhere"}, "theirs-1", 1),
        ("Coverage/elsewhere", ["theirs-1"], 1),
        ("Coverage/elsewhere", {"id": "theirs-1"}, 1),
        (GEHA, ["theirs-1"], 2),
        ("Coverage/elsewhere", "theirs-1", 1),
    ],
    ids=[
        "coverage-a-list",
        "coverage-an-object",
        "id-a-list",
        "id-an-object",
        "own-coverage-id-a-list",
        "plain",
    ],
)
def test_an_encounter_that_came_with_a_malformed_assertion_is_answered_and_recorded(
    coverage: Any, identifier: Any, coverages: int
) -> None:
    """The record looks up each repetition of the Encounter sent back among those the call issued
    (`audit_entry._issue_key`): one it came with may hold a list or an object where the coverage or the
    assertion id goes, which was hashed, so the row could not be written and the call was answered 503,
    unrecorded (review30b H1: the Encounter kept as its reference, any Coverage's; with two Coverages the
    other's, `_marked_carried`, already so). Answered 200, the row's Encounter keeps the one it came with
    marked carried (review30b L5), as its coverage and assertion id where each is a string (review30i b), and
    the row's assertions are this call's; a plain one is the control."""
    body = encounter_call(extension=[malformed_by_another(coverage, identifier)])
    if coverages == 2:
        body = with_second_coverage(body)
    record = audited(body, RecordingFhirClient())
    [action] = on(record["response"], ENCOUNTER)
    kept = action["resource"]["extension"]
    assert len(kept) == 2 and [e.get("carried") for e in kept] == [True, None]
    assert ("theirs-1" in str(kept[0])) is isinstance(identifier, str) and "theirs-1" not in str(kept[1])
    assert record["assertions"] and all(a.get("assertion_id") != "theirs-1" for a in record["assertions"])


class OpenOrdersRefused(RecordingFhirClient):
    """A FHIR server that refuses the open-order searches (`status`: 401 or 403) and answers the rest."""

    def __init__(self, status: int | None) -> None:
        super().__init__()
        self.status = status

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        found = super().search(resource_type, params, first_page)
        if self.status is not None and resource_type in ("ServiceRequest", "DeviceRequest"):
            raise FhirError(f"HTTP {self.status}", self.status)
        return found


@pytest.mark.parametrize(("status", "token_use"), [(401, "rejected"), (403, "rejected"), (None, "used")])
def test_the_open_order_searches_count_toward_the_token_outcome(status: int | None, token_use: str) -> None:
    """Every query the call makes counts toward the token outcome (CRD metrics' tokenUse) in one place
    (`FhirUse`), the open-order searches too: with Patient, Coverage and Encounter prefetched they are all
    the call asks the server, and a 401 or 403 there was recorded `not-used` (review29a L4, encounter29b);
    answered, the token was `used`."""
    record = audited(encounter_call(), OpenOrdersRefused(status))
    assert record["fhir_access"]["token_use"] == token_use
    [metric] = metric_data(record)
    assert metric["tokenUse"] == token_use


def test_a_call_refused_412_for_a_refused_token_records_it_rejected() -> None:
    """The token outcome is every answer's: an order-sign whose Patient and Coverage the server refuses
    (401) is answered 412, and its record says the token was `rejected` (it said `not-used`: a 412 kept
    no count of the queries that made it)."""
    body = sample("order-sign-implant-demo-meets")
    body["prefetch"] = {}
    factory = RecordingFactory(RecordingFhirClient(FhirError("HTTP 401", 401)))
    app = create_app(open_settings(), catalog(), client_factory=factory)
    response = post_json(app.test_client(), "/cds-services/idds-crd-order-sign", with_fhir(body))
    assert response.status_code == 412, response.get_data(as_text=True)
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == "rejected"
