"""Documentation Questionnaires: served per policy, named by coverage information, and read back."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from service.app import create_app
from service.codes import ASSESSMENT_SYSTEM
from service.engine.checks import TEST_TYPES
from service.engine.model import Status
from service.questionnaires import QUESTIONNAIRE_BASE, questionnaire, questionnaire_id
from service.version import service_version
from tests.builders import ICD, catalog, condition, context, determine, meeting_chart, statuses, without_codes
from tests.calls import answer, sign_with_chart
from tests.conformance import COVERAGE_INFO, check_response
from tests.support import open_settings

POLICY_IDS = sorted(catalog().policies)


def served(resource_id: str) -> Any:
    return create_app(open_settings(), catalog()).test_client().get(f"/fhir/Questionnaire/{resource_id}")


@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_each_policy_questionnaire_is_served_as_valid_fhir(policy_id: str) -> None:
    policy = catalog().policies[policy_id]
    response = served(questionnaire_id(policy))
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    Questionnaire.model_validate(body)
    assert body["url"] == f"{QUESTIONNAIRE_BASE}/{questionnaire_id(policy)}"
    link_ids = [item["linkId"] for item in body["item"]]
    assert link_ids and len(link_ids) == len(set(link_ids))
    codes = catalog().assessments
    for item in body["item"]:
        assert item["code"] == [
            {
                "system": ASSESSMENT_SYSTEM,
                "code": item["linkId"],
                "display": codes.concept(item["linkId"]).display,
            }
        ]
        concept = codes.concept(item["linkId"])
        assert item["type"] == concept.answer_type
        if concept.options:
            assert [o["valueCoding"]["code"] for o in item["answerOption"]] == list(concept.options)


def test_geha_asks_what_its_criteria_read() -> None:
    body = served("geha-idds-chronic-pain-documentation").get_json()
    assert [item["linkId"] for item in body["item"]] == [
        "opioid-trial-outcome",
        "it-trial-pain-relief-pct",
        "it-trial-relief-duration-h",
        "it-trial-side-effects",
        "it-trial-patient-acceptance",
        "psych-clearance",
    ]
    relief = body["item"][1]
    assert relief["type"] == "quantity"
    assert relief["extension"][0]["valueCoding"]["code"] == "%"


def test_an_unknown_questionnaire_is_404() -> None:
    response = served("geha-idds-chronic-pain")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def coverage_information(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for action in body.get("systemActions", [])
        for e in action["resource"].get("extension", [])
        if e["url"] == COVERAGE_INFO
    ]


def test_a_chart_that_could_not_be_read_does_not_send_the_clinician_to_the_form() -> None:
    """The chart holds what the criteria read, but could not be read this time: the answer says so and
    asks for no documentation, which would launch DTR to retype it (CRD §resp-39; UM review UM-6)."""
    body, request = answer("order-sign-implant-demo-meets")  # prefetch only, no FHIR server
    assert check_response(body, request) == []
    for info in coverage_information(body):
        subs = {s["url"]: s for s in info["extension"]}
        assert "could not be read" in str(subs["reason"])
        assert "doc-needed" not in subs and "questionnaire" not in subs


def test_order_sign_needing_documentation_names_the_questionnaire() -> None:
    request, body = sign_with_chart([])  # a chart read, and nothing the form asks is in it
    assert check_response(body, request) == []
    infos = coverage_information(body)
    assert len(infos) == 4  # three pump lines and their drug
    version = served("geha-idds-chronic-pain-documentation").get_json()["version"]
    assert version.startswith(f"{service_version()}+")
    expected = f"{QUESTIONNAIRE_BASE}/geha-idds-chronic-pain-documentation|{version}"
    for info in infos:
        subs = {s["url"]: s for s in info["extension"]}
        assert subs["doc-needed"]["valueCode"] == "clinical"
        assert subs["questionnaire"] == {"url": "questionnaire", "valueCanonical": expected}
    url, version = expected.split("|")
    served_body = served(url.rsplit("/", 1)[1]).get_json()
    assert (served_body["url"], served_body["version"]) == (url, version)


def test_order_select_never_names_a_questionnaire() -> None:
    body, _ = answer("order-select-62362-demo-insufficient")
    infos = coverage_information(body)
    assert infos
    assert not any(s["url"] == "questionnaire" for info in infos for s in info["extension"])


def run_test(test_type: str, params: dict[str, Any], chart: list[dict[str, Any]]) -> Any:
    return TEST_TYPES[test_type].function(params, context(chart))


def response_to(form: dict[str, Any], answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A completed QuestionnaireResponse answering `answers` (linkId → FHIR answer) of `form`."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-1",
        "questionnaire": f"{form['url']}|{form['version']}",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": "2025-10-03T10:00:00Z",
        "item": [
            {"linkId": item["linkId"], "answer": [answers[item["linkId"]]]}
            for item in form["item"]
            if item["linkId"] in answers
        ],
    }


def test_answers_to_the_questionnaire_are_read_as_evidence() -> None:
    policy = catalog().policies["geha-idds-chronic-pain"]
    form = questionnaire(policy, catalog().assessments, service_version())
    chart = without_codes(meeting_chart(), "it-trial-side-effects", "it-trial-patient-acceptance")
    before = statuses(determine(chart))
    assert before["geha.trial.no-side-effects"] == "not-documented"
    assert before["geha.trial.patient-acceptance"] == "not-documented"
    side_effects = next(i for i in form["item"] if i["linkId"] == "it-trial-side-effects")
    none = next(o for o in side_effects["answerOption"] if o["valueCoding"]["code"] == "none")
    completed = response_to(
        form,
        {"it-trial-side-effects": none, "it-trial-patient-acceptance": {"valueBoolean": True}},
    )
    after = statuses(determine([*chart, completed]))
    assert after["geha.trial.no-side-effects"] == "met"
    assert after["geha.trial.patient-acceptance"] == "met"


def test_the_form_asks_which_scale_a_spasticity_response_is_on_and_the_answer_counts() -> None:
    """Contract §5: it-trial-scale-reduction's `scale` component. The service's own form asks it as a
    sub-question, and Cohere's Ashworth criterion reads the answer like the Observation."""
    form = questionnaire(catalog().policies["cohere-intrathecal-pain-pumps"], catalog().assessments, "1")
    Questionnaire.model_validate(form)
    reduction = next(i for i in form["item"] if i["linkId"] == "it-trial-scale-reduction")
    (scale,) = reduction["item"]
    assert scale["linkId"] == "it-trial-scale-reduction.scale"
    assert [o["valueCoding"]["code"] for o in scale["answerOption"]] == [
        "ashworth",
        "modified-ashworth",
        "spasm-frequency",
    ]
    ashworth = next(o for o in scale["answerOption"] if o["valueCoding"]["code"] == "ashworth")
    two_points = {"valueQuantity": {"value": 2, "unit": "points"}}
    answered = response_to(form, {"it-trial-scale-reduction": two_points})
    unnamed = run_test("scale-trial-response", {"points": 1, "scales": ["ashworth-score"]}, [answered])
    assert unnamed.status == Status.NOT_DOCUMENTED
    answered["item"][0]["answer"][0]["item"] = [{"linkId": scale["linkId"], "answer": [ashworth]}]
    on_ashworth = run_test("scale-trial-response", {"points": 1, "scales": ["ashworth-score"]}, [answered])
    assert on_ashworth.status == Status.MET, on_ashworth.finding


# --------------------------------------------------------------------------- the form a call names


def named_form(chart: list[dict[str, Any]]) -> str | None:
    """The questionnaire canonical the order-sign coverage information names for `chart`."""
    _, response = sign_with_chart(chart)
    names = {
        s["valueCanonical"]
        for info in coverage_information(response)
        for s in info["extension"]
        if s["url"] == "questionnaire"
    }
    assert len(names) <= 1
    return next(iter(names), None)


GAPS = ("it-trial-side-effects", "it-trial-patient-acceptance")


def test_the_named_form_asks_only_what_the_chart_did_not_show() -> None:
    chart = without_codes(meeting_chart(), *GAPS)
    name = named_form(chart)
    assert name is not None
    url, version = name.split("|")
    assert version.startswith(f"{service_version()}+")
    assert url.startswith(f"{QUESTIONNAIRE_BASE}/geha-idds-chronic-pain-documentation-")
    response = served(url.rsplit("/", 1)[1])
    assert response.status_code == 200
    form = response.get_json()
    Questionnaire.model_validate(form)
    assert (form["url"], form["version"]) == (url, version)
    assert [item["linkId"] for item in form["item"]] == list(GAPS)
    whole = served("geha-idds-chronic-pain-documentation").get_json()
    assert form["derivedFrom"] == [f"{whole['url']}|{whole['version']}"]
    assert form["item"] == [i for i in whole["item"] if i["linkId"] in GAPS]
    other_chart = [
        *without_codes(meeting_chart(), *GAPS),
        condition(ICD, "G89.4", "2022-01-01", "Chronic pain"),
    ]
    assert named_form(other_chart) == name  # another chart with the same gaps: the same form


def test_answering_the_named_form_completes_the_chart() -> None:
    chart = without_codes(meeting_chart(), *GAPS)
    name = named_form(chart)
    assert name is not None
    form = served(name.split("|")[0].rsplit("/", 1)[1]).get_json()
    side_effects = next(i for i in form["item"] if i["linkId"] == "it-trial-side-effects")
    none = next(o for o in side_effects["answerOption"] if o["valueCoding"]["code"] == "none")
    completed = response_to(
        form, {"it-trial-side-effects": none, "it-trial-patient-acceptance": {"valueBoolean": True}}
    )
    assert determine([*chart, completed]).outcome.value == "meets"
    assert named_form([*chart, completed]) is None


def test_no_form_and_no_dtr_when_nothing_missing_can_be_answered_on_one() -> None:
    """What is missing is the chart's own (the diagnoses, on the problem list): DTR is launched by
    doc-needed, and with no form it would pick its own to ask what the EHR computes (CRD §resp-38,
    §resp-39). Before, doc-needed went out with no questionnaire (UM review 36)."""
    chart = [r for r in meeting_chart() if r["resourceType"] != "Condition"]
    d = determine(chart)
    assert d.outcome.value == "insufficient"
    _, response = sign_with_chart(chart)
    for info in coverage_information(response):
        subs = {s["url"]: s for s in info["extension"]}
        assert "doc-needed" not in subs and "questionnaire" not in subs
        assert subs["covered"]["valueCode"] == "conditional" and "info-needed" in subs


@pytest.mark.parametrize(
    "resource_id",
    [
        "geha-idds-chronic-pain-documentation-0",
        "geha-idds-chronic-pain-documentation-03",
        "geha-idds-chronic-pain-documentation-3F",
        "geha-idds-chronic-pain-documentation-fffffff",
        "geha-idds-chronic-pain-documentation-zz",
        "no-such-policy-documentation-3",
        "geha-idds-chronic-pain-3",
    ],
)
def test_ids_that_name_no_part_of_a_form_are_404(resource_id: str) -> None:
    assert served(resource_id).status_code == 404


def test_the_whole_form_has_one_id_only() -> None:
    whole = served("geha-idds-chronic-pain-documentation").get_json()
    every_item = (1 << len(whole["item"])) - 1
    digest = whole["version"].rpartition("+")[2]
    assert served(f"geha-idds-chronic-pain-documentation-{digest}-{every_item:x}").status_code == 404
    assert served(f"geha-idds-chronic-pain-documentation-{digest}-{every_item - 1:x}").status_code == 200


def test_a_part_of_an_earlier_version_of_the_form_is_not_served_as_other_items() -> None:
    """A part's mask counts the whole form's items of its version: once a policy's form gains an item
    the same bits name other items (Synthea A/B 36, F5), so a part made before is a 404 saying so,
    never a form asking other questions."""
    whole = served("geha-idds-chronic-pain-documentation").get_json()
    digest = whole["version"].rpartition("+")[2]
    assert served(f"geha-idds-chronic-pain-documentation-{digest}-3").status_code == 200
    earlier = "0" * 8 if digest != "0" * 8 else "1" * 8
    refused = served(f"geha-idds-chronic-pain-documentation-{earlier}-3")
    assert refused.status_code == 404
    said = refused.get_json()["issue"][0]["diagnostics"]
    assert f"an earlier version of {whole['url']}|{whole['version']}" in said
    unversioned = served("geha-idds-chronic-pain-documentation-3")  # named before parts had versions
    assert unversioned.status_code == 404
    assert "an earlier version of" in unversioned.get_json()["issue"][0]["diagnostics"]


def test_every_part_id_is_a_fhir_id() -> None:
    """At most 64 characters: the longest is a form's id, its digest and the mask of all its items but
    one (FHIR R4 id)."""
    for policy_id in POLICY_IDS:
        whole = served(f"{policy_id}-documentation").get_json()
        digest = whole["version"].rpartition("+")[2]
        assert len(f"{whole['id']}-{digest}-{(1 << len(whole['item'])) - 2:x}") <= 64


def test_a_form_with_other_questions_gets_another_version() -> None:
    policy = catalog().policies["geha-idds-chronic-pain"]
    form = questionnaire(policy, catalog().assessments, "9.9.9")
    fewer = replace(policy, criteria=policy.criteria[:3])
    other = questionnaire(fewer, catalog().assessments, "9.9.9")
    assert [i["linkId"] for i in other["item"]] != [i["linkId"] for i in form["item"]]
    assert form["version"].startswith("9.9.9+") and other["version"].startswith("9.9.9+")
    assert other["version"] != form["version"]
