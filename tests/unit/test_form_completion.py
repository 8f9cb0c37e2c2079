"""Request Form Completion: payers without DTR get the form as a Task the clinician can add to the
chart; payers with DTR never do (CRD §resp-59)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

import pytest

from cards.form_completion import CRD_TEMP
from service.catalog import Catalog
from tests.builders import cards_of, catalog, meeting_chart, without_codes
from tests.calls import sign_with_chart
from tests.conformance import COVERAGE_INFO, check_response
from tests.support import sign_body

GAPS = ("it-trial-side-effects", "it-trial-patient-acceptance")
NEEDS_ANSWERS = without_codes(meeting_chart(), *GAPS)


@cache
def without_dtr() -> Catalog:
    """The shipped catalog with GEHA taking documentation on its own forms, not through DTR."""
    base = catalog()
    return replace(
        base, payers=tuple(replace(p, uses_dtr=False) if p.key == "geha" else p for p in base.payers)
    )


def form_cards(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for c in cards_of(response["cards"], "clinical-reminder")
        if any(
            a["resource"]["resourceType"] == "Task" for s in c.get("suggestions", []) for a in s["actions"]
        )
    ]


def actions_of(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [suggestion] = card["suggestions"]
    return {a["resource"]["resourceType"]: a for a in suggestion["actions"]}


def test_a_payer_without_dtr_gets_the_form_as_a_task() -> None:
    request, response = sign_with_chart(NEEDS_ANSWERS, without_dtr())
    [card] = form_cards(response)
    assert card["summary"] == "GEHA: complete the documentation form for 62362, 62350, E0783 (2 question(s))"
    assert card["selectionBehavior"] == "at-most-one" and "links" not in card
    assert "side effects" in card["detail"].lower()
    actions = actions_of(card)
    task, form = actions["Task"]["resource"], actions["Questionnaire"]["resource"]
    assert [item["linkId"] for item in form["item"]] == list(GAPS)
    assert actions["Questionnaire"]["extension"] == {
        "davinci-crd.if-none-exist": f"url={form['url']}&version={form['version']}"
    }
    assert (task["status"], task["intent"]) == ("ready", "order")
    assert task["code"]["coding"][0]["code"] == "complete-questionnaire"
    [asked] = [i for i in task["input"] if i["type"].get("text") == "questionnaire"]
    assert asked["valueCanonical"] == f"{form['url']}|{form['version']}"
    assert {"system": CRD_TEMP, "code": "prior-auth-include"} in [
        c for i in task["input"] for c in i.get("valueCodeableConcept", {}).get("coding", [])
    ]
    assert task["for"] == {"reference": f"Patient/{request['context']['patientId']}"}
    assert task["requester"]["reference"] == "Organization/demo-meets-org-geha"
    assert sorted(r["reference"] for r in task["basedOn"]) == sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in request["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] != "MedicationRequest"
    )
    assert "encounter" not in task


def test_without_dtr_the_coverage_information_does_not_send_the_ehr_to_dtr() -> None:
    _, response = sign_with_chart(NEEDS_ANSWERS, without_dtr())
    for action in response["systemActions"]:
        info = next(e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFO)
        urls = {s["url"] for s in info["extension"]}
        assert not {"doc-needed", "doc-purpose", "questionnaire"} & urls
        assert {"info-needed", "reason"} <= urls


def test_the_task_names_the_encounter_of_the_call() -> None:
    body = sign_body()
    body["context"]["encounterId"] = "enc-7"
    _, response = sign_with_chart(NEEDS_ANSWERS, without_dtr(), body=body)
    task = actions_of(form_cards(response)[0])["Task"]["resource"]
    assert task["encounter"] == {"reference": "Encounter/enc-7"}


@pytest.mark.parametrize(
    ("chart", "payers", "options"),
    [
        (NEEDS_ANSWERS, catalog(), {}),  # DTR applies: SHALL NOT
        (meeting_chart(), without_dtr(), {}),  # nothing to document
        ([r for r in meeting_chart() if r["resourceType"] != "Condition"], without_dtr(), {}),  # no form item
        (NEEDS_ANSWERS, without_dtr(), {"clinical-reminder": False}),
    ],
    ids=["payer-uses-dtr", "meets", "nothing-a-form-can-answer", "switched-off"],
)
def test_no_form_completion(chart: list[dict[str, Any]], payers: Catalog, options: dict[str, Any]) -> None:
    _, response = sign_with_chart(chart, payers, **options)
    assert form_cards(response) == []


# --------------------------------------------------------------------------- the checker's Task rules


def break_task(change: Callable[[dict[str, Any]], None]) -> list[str]:
    request, response = sign_with_chart(NEEDS_ANSWERS, without_dtr())
    broken = copy.deepcopy(response)
    change(actions_of(form_cards(broken)[0])["Task"]["resource"])
    return check_response(broken, request)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["code"]["coding"][0].update(code="fulfill"), "complete-questionnaire"),
        (lambda t: t["input"][0]["type"].pop("text"), "questionnaire input"),
        (lambda t: t["input"][0].update(valueCanonical="urn:x"), "questionnaire input"),
        (lambda t: t["input"].pop(1), "after-completion-action"),
        (lambda t: t.update(status="requested"), "status ready"),
        (lambda t: t.pop("requester"), "requester"),
        (lambda t: t.update(requester={"display": "GEHA"}), "the payer Organization"),
        (lambda t: t.update({"for": {"reference": "Group/g1"}}), "a Patient reference"),
    ],
    ids=[
        "code",
        "input-text",
        "input-canonical",
        "after-completion",
        "status",
        "requester",
        "display-only",
        "for",
    ],
)
def test_the_checker_catches_broken_tasks(change: Callable[[dict[str, Any]], None], message: str) -> None:
    errors = break_task(change)
    assert any(message in e for e in errors), errors
