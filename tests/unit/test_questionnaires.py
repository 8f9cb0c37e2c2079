"""Documentation Questionnaires: served per policy, named by coverage information, and read back."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from service.app import create_app
from service.codes import ASSESSMENT_SYSTEM
from service.questionnaires import QUESTIONNAIRE_BASE, questionnaire, questionnaire_id
from service.settings import Settings
from service.version import service_version
from tests.builders import catalog, determine, meeting_chart, statuses, without_codes
from tests.conformance import COVERAGE_INFO, check_response
from tests.unit.test_conformance_checker import answer

POLICY_IDS = sorted(catalog().policies)


def served(resource_id: str) -> Any:
    return create_app(Settings()).test_client().get(f"/fhir/Questionnaire/{resource_id}")


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


def test_order_sign_needing_documentation_names_the_questionnaire() -> None:
    body, request = answer("order-sign-implant-demo-meets")  # prefetch only: documentation needed
    assert check_response(body, request) == []
    infos = coverage_information(body)
    assert len(infos) == 3
    expected = f"{QUESTIONNAIRE_BASE}/geha-idds-chronic-pain-documentation|{service_version()}"
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
