"""Questionnaire answers that could not be read: what they change, and what they never change.

A project assessment's form is its Observation (contract §3's last row, §5); the service also reads
the answers to its own documentation Questionnaire, whose item codes are the assessment codes (§5),
from the EHR's QuestionnaireResponses. Those only ever add a record of an assessment. So while they
cannot be read (their search failed, or a response carrying a modifier extension was left out), a
criterion not documented could not be checked, never "to document" (json review F6). A criterion a
record settles (an Observation, a Procedure: another form of the fact) stays as it is (contract §3: a
form that documents the fact decides over a form that is absent; review2 F-2), and so does an absence
rule, judged on the data the contract names (§3). An EHR that does not offer QuestionnaireResponses
at all gives none: nothing is unavailable.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.app import create_app
from service.fhir.client import FhirError, SearchResult
from service.metrics import metric_data
from tests.builders import (
    ASSESS,
    ICD,
    codes_of,
    condition,
    determine,
    finding_of,
    meeting_chart,
    statuses,
    without_codes,
)
from tests.calls import prefetch_app, sign_with_chart
from tests.demo_support import packaged_sample
from tests.support import (
    SIGN_URL,
    RecordingFactory,
    RecordingFhirClient,
    open_settings,
    post_json,
    sign_body,
    with_fhir,
)

ACCEPTANCE = "it-trial-patient-acceptance"
TO_DOCUMENT = "GEHA: 1 item to document for 62362, 62350, E0783 — D. Patient accepts the procedure"
MODIFIER = {"url": "http://ehr.example/fhir/StructureDefinition/not-asked", "valueBoolean": True}


def answered(link_id: str, modified: bool = False, **value: Any) -> dict[str, Any]:
    """A completed QuestionnaireResponse answering one item (its linkId is the assessment code)."""
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"qr-{link_id}",
        "status": "completed",
        "authored": "2025-10-02",
        "item": [{"linkId": link_id, "answer": [value]}],
    }
    if modified:
        response["modifierExtension"] = [copy.deepcopy(MODIFIER)]
    return response


def summary(answer: dict[str, Any]) -> str:
    return str(answer["cards"][0]["summary"])


def test_with_the_answers_search_failed_an_assessment_not_recorded_could_not_be_checked() -> None:
    """Patient acceptance recorded nowhere the service could read: with the answers' search failed it
    may be recorded there, so the card does not ask to document it."""
    chart = without_codes(meeting_chart(), ACCEPTANCE)
    assert summary(sign_with_chart(chart)[1]) == TO_DOCUMENT  # every kind read: not recorded
    _, unread = sign_with_chart(chart, failing=("QuestionnaireResponse",))
    decision = unread["cards"][0]
    assert (
        summary(unread) == "GEHA: 62362, 62350, E0783 could not be checked — the EHR's data was not available"
    )
    assert "questionnaire answers were not available (HTTP 503)" in decision["detail"]


def test_an_answer_left_out_for_a_modifier_makes_what_it_could_record_could_not_be_checked() -> None:
    chart = [
        *without_codes(meeting_chart(), ACCEPTANCE),
        answered(ACCEPTANCE, modified=True, valueBoolean=True),
    ]
    _, answer = sign_with_chart(chart)
    assert (
        summary(answer)
        == "GEHA: 62362, 62350, E0783 could not be checked — records in the chart could not be read"
    )
    assert (
        "questionnaire answers to “patient accepts the procedure” could not be read (1 record(s) carry a"
        " modifier" in answer["cards"][0]["detail"]
    )


def test_an_answer_no_policy_reads_left_out_for_a_modifier_changes_nothing() -> None:
    chart = [*meeting_chart(), answered("favourite-colour", modified=True, valueString="blue")]
    assert summary(sign_with_chart(chart)[1]) == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"


def test_a_response_left_out_for_a_modifier_leaves_unread_only_the_assessments_it_answers() -> None:
    """A response answers only its own items (their linkIds, the assessment codes): left out for a
    modifier, it leaves unread the criteria reading those, not every criterion the answers could
    record (fix-f's leftover, s17). The acceptance, recorded nowhere, stays to document beside a
    response left out that answers the side effects (which a policy reads, and which its Observation
    settles), and could not be checked while the response left out answers it too."""
    chart = without_codes(meeting_chart(), ACCEPTANCE)
    side_effects = {
        "linkId": "it-trial-side-effects",
        "answer": [{"valueCoding": {"system": ASSESS, "code": "none"}}],
    }
    other = answered("it-trial-side-effects", modified=True, valueCoding={"system": ASSESS, "code": "none"})
    assert summary(sign_with_chart([*chart, other])[1]) == TO_DOCUMENT
    both = answered(ACCEPTANCE, modified=True, valueBoolean=True)
    both["item"].append(side_effects)
    assert (
        summary(sign_with_chart([*chart, both])[1])
        == "GEHA: 62362, 62350, E0783 could not be checked — records in the chart could not be read"
    )


def test_an_answer_left_out_is_named_by_the_assessments_it_leaves_unread_for_the_criterion() -> None:
    """A response left out for a modifier is named by the assessments it answers that the criterion
    reads, as a card names them (contract §5's displays), so that the clinician knows which answers to
    look at: a response answering the acceptance and the side effects leaves the acceptance unread
    (the side effects' Observation settles theirs); the clearance's words name the clearance; a
    spasticity trial naming no scale names the scale the response answers, not every scale."""
    chart = without_codes(meeting_chart(), ACCEPTANCE)
    both = answered(ACCEPTANCE, modified=True, valueBoolean=True)
    both["item"].append(
        {"linkId": "it-trial-side-effects", "answer": [{"valueCoding": {"system": ASSESS, "code": "none"}}]}
    )
    detail = sign_with_chart([*chart, both])[1]["cards"][0]["detail"]
    assert (
        "some of the EHR's questionnaire answers to “patient accepts the procedure” could not be read (1"
        " record(s)" in detail
    )
    assert "side effects of the trial" not in detail
    recent = condition(ICD, "R45.851", "2026-10-01")
    clearance = answered("psych-clearance", modified=True, valueBoolean=True)
    assert finding_of(determine([recent, clearance]), "geha.ci.psych-instability") == (
        "documented; whether it was cleared could not be checked: some of the EHR's questionnaire answers to"
        " “psychological evaluation done and patient cleared” could not be read (1 record(s) carry a"
        " modifier extension this service does not understand)"
    )
    from tests.policy_charts import BACLOFEN_IT, kaiser
    from tests.policy_charts import kpwa_spasticity_chart as spasticity_chart

    chart = without_codes(spasticity_chart(), "it-trial-scale-reduction", "it-trial-response-duration-h")
    scores = answered("modified-ashworth-score", modified=True, valueCoding={"system": ASSESS, "code": "1"})
    assert finding_of(kaiser([*chart, scores], drugs=(BACLOFEN_IT,)), "kpwa.spasticity.trial-2pt-4h") == (
        "could not be checked: some of the EHR's questionnaire answers to “Modified Ashworth scale” could"
        " not be read (1 record(s) carry a modifier extension this service does not understand)"
    )


def test_answers_left_out_for_the_whole_kind_name_no_assessment() -> None:
    """A failed search leaves every answer unread: the card names the chart part alone."""
    chart = without_codes(meeting_chart(), ACCEPTANCE)
    _, unread = sign_with_chart(chart, failing=("QuestionnaireResponse",))
    assert "the EHR's questionnaire answers were not available (HTTP 503)" in unread["cards"][0]["detail"]


def test_a_clearance_is_unread_only_while_a_response_left_out_answers_it() -> None:
    """Recent suicidal ideation with no clearance is not met; whether it was cleared could not be
    checked while a response answering the clearance was left out, not while one answering another
    assessment was."""
    recent = condition(ICD, "R45.851", "2026-10-01")
    criterion = "geha.ci.psych-instability"
    clearance = answered("psych-clearance", modified=True, valueBoolean=True)
    assert statuses(determine([recent, clearance]))[criterion] == "not-documented"
    assert "whether it was cleared could not be checked" in finding_of(
        determine([recent, clearance]), criterion
    )
    other = answered("opioid-reduction-agreement", modified=True, valueBoolean=True)
    assert statuses(determine([recent, other]))[criterion] == "not-met"


def test_a_spasticity_trial_reads_the_answers_of_every_scale_its_policy_leaves_unnamed() -> None:
    """Kaiser's trial response names no scale: any scale's scores around the trial count, so a
    response left out answering one could record them; one answering another assessment could not."""
    from tests.policy_charts import BACLOFEN_IT, kaiser
    from tests.policy_charts import kpwa_spasticity_chart as spasticity_chart

    chart = without_codes(spasticity_chart(), "it-trial-scale-reduction", "it-trial-response-duration-h")
    criterion = "kpwa.spasticity.trial-2pt-4h"
    assert finding_of(kaiser(chart, drugs=(BACLOFEN_IT,)), criterion) == (
        "no spasticity scores before and after a trial"
    )
    scores = answered("modified-ashworth-score", modified=True, valueCoding={"system": ASSESS, "code": "1"})
    assert "could not be checked" in finding_of(kaiser([*chart, scores], drugs=(BACLOFEN_IT,)), criterion)
    other = answered("opioid-reduction-agreement", modified=True, valueBoolean=True)
    assert finding_of(kaiser([*chart, other], drugs=(BACLOFEN_IT,)), criterion) == (
        "no spasticity scores before and after a trial"
    )


def test_the_answers_unread_never_unsettle_a_criterion_a_record_settles() -> None:
    """Every criterion of the meeting chart is met by a record (an Observation, a Procedure, a drug
    order): with the answers unread, each stays met, those with several forms too (the psychiatric
    evaluation done, met by its procedure; the opioid trial's failure, met by its drug orders)."""
    whole = determine(meeting_chart())
    unread = determine(meeting_chart(), unavailable={"QuestionnaireResponse": "HTTP 503"})
    assert unread.outcome == whole.outcome and statuses(unread) == statuses(whole)
    assert set(statuses(whole).values()) == {"met"}


def test_an_absence_rule_is_judged_on_the_data_the_contract_names() -> None:
    """The meeting chart records no psych-clearance: "Cleared, when a result is recorded" is met by
    absence, judged on the data the contract names (§3: "no evidence of X is found in the data above";
    an assessment's form there is its Observation, unread it could not be checked). The answers to the
    service's questionnaire are not among them: unread, the absence stands."""
    chart = meeting_chart()
    assert "psych-clearance" not in {c for r in chart for c in codes_of(r)}
    answers_unread = statuses(determine(chart, unavailable={"QuestionnaireResponse": "HTTP 503"}))
    assert answers_unread["geha.doc.psych-eval.done"] == "met"  # its procedure
    assert answers_unread["geha.doc.psych-eval.cleared"] == "met"
    observations_unread = statuses(determine(chart, unavailable={"Observation": "HTTP 503"}))
    assert observations_unread["geha.doc.psych-eval.cleared"] == "not-documented"


def test_an_answer_read_records_the_assessment() -> None:
    chart = [*without_codes(meeting_chart(), ACCEPTANCE), answered(ACCEPTANCE, valueBoolean=True)]
    assert summary(sign_with_chart(chart)[1]) == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"


@pytest.mark.parametrize("status", [400, 403, 404, 405, 501])
def test_an_ehr_that_does_not_offer_the_answers_gives_none(status: int) -> None:
    """A QuestionnaireResponse search answered as not supported or not permitted: the EHR gives none,
    as the contract allows (it asks for an assessment's Observation): a criterion recorded nowhere is
    to document, and a met one stays met."""
    failing = ("QuestionnaireResponse",)
    _, met = sign_with_chart(meeting_chart(), failing=failing, failing_status=status)
    assert summary(met) == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"
    chart = without_codes(meeting_chart(), ACCEPTANCE)
    assert summary(sign_with_chart(chart, failing=failing, failing_status=status)[1]) == TO_DOCUMENT


class AnswersRefused(RecordingFhirClient):
    """A FHIR server answering the QuestionnaireResponse search with HTTP `status`, the rest with none."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def search(self, resource_type: str, params: dict[str, Any], first_page: bool = False) -> SearchResult:
        found = super().search(resource_type, params, first_page)
        if resource_type == "QuestionnaireResponse":
            raise FhirError(f"HTTP {self.status}", self.status)
        return found


@pytest.mark.parametrize(("status", "token_use"), [(403, "used"), (401, "rejected")])
def test_answers_not_offered_refuse_no_token(status: int, token_use: str) -> None:
    """A 403 on the answers' search is read as the EHR not offering them (`queries.not_offered`), not as
    data that could not be read: the token the other queries used was taken, and the audit's token
    outcome (CRD metrics' tokenUse) says `used` (review30b: every call to an EHR that keeps its
    QuestionnaireResponses out of the token's scope recorded `rejected`). A 401 there is the control."""
    server = AnswersRefused(status)
    app = create_app(open_settings(), client_factory=RecordingFactory(server))
    assert post_json(app.test_client(), SIGN_URL, with_fhir(sign_body())).status_code == 200
    assert any(args[0] == "QuestionnaireResponse" for kind, args in server.calls if kind == "search")
    [record] = list(app.extensions["idds_crd"].stores.audit.between())
    assert record["fhir_access"]["token_use"] == token_use
    assert [m["tokenUse"] for m in metric_data(record)] == [token_use]


def test_an_ehr_that_prefetches_no_answers_and_names_no_fhir_server_gives_none() -> None:
    """The demo 'meets' call without its acceptance Observation, its prefetch without
    `questionnaireResponses` and no fhirServer: acceptance is to document (review2 F-2 (a)). The
    answers' prefetch reported failed is another thing: they could not be read."""
    body = packaged_sample("order-sign-implant-demo-meets")
    observations = body["prefetch"]["observations"]["entry"]
    observations[:] = [e for e in observations if e["resource"]["id"] != f"demo-meets-obs-{ACCEPTANCE}"]
    del body["prefetch"]["questionnaireResponses"]
    client = prefetch_app().test_client()
    assert summary(client.post("/cds-services/idds-crd-order-sign", json=body).get_json()) == TO_DOCUMENT
    body["prefetch"]["questionnaireResponses"] = {"resourceType": "OperationOutcome", "issue": []}
    answer = client.post("/cds-services/idds-crd-order-sign", json=body).get_json()
    assert (
        summary(answer) == "GEHA: 62362, 62350, E0783 could not be checked — the EHR's data was not available"
    )
