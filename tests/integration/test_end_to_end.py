"""End to end over HTTP: the service reads a real FHIR server and answers with GEHA cards."""

from __future__ import annotations

import re
import time

import pytest
import requests

from service.demo.fhir_server import LocalFhirServer
from tests.builders import cards_of
from tests.integration.conftest import FHIR_TOKEN, LiveService, pointed_at
from tests.support import missing_on_card, numbered_steps

pytestmark = pytest.mark.integration


def test_order_select_62362_for_a_patient_who_meets_geha(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    response = live_service.call(pointed_at("order-select-62362-demo-meets", fhir_server.base_url))
    assert response.status_code == 200
    cards = response.json()["cards"]
    decisions = cards_of(cards)
    assert len(decisions) == 1
    card = decisions[0]
    assert card["summary"] == "GEHA: 62362 meets all 14 coverage criteria"
    assert len(card["summary"]) < 140
    assert card["source"]["label"] == "GEHA"
    assert card["indicator"] == "info"
    detail = card["detail"]
    assert "❌" not in detail and "❔" not in detail
    assert detail.startswith("**Meets the criteria** (GEHA) for 62362 programmable pump")
    [met] = [line for line in detail.splitlines() if line.startswith("✅")]
    # contract §3, Absence: the card says "none documented"
    assert met.startswith("✅ All 14 criteria met, 6 with none documented against them: ")
    assert "F. No current infection" in met
    assert card["extension"]["davinci-crd.associated-resource"] == [
        {"reference": "ServiceRequest/demo-meets-select-sr-62362"}
    ]


def test_a_met_order_links_to_the_policy_page_and_says_to_request_authorization(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    cards = live_service.call(pointed_at("order-select-62362-demo-meets", fhir_server.base_url)).json()[
        "cards"
    ]
    assert [c["source"]["topic"]["code"] for c in cards] == [
        "coverage-info",
        "clinical-reminder",
        "guideline",
    ]
    [next_step] = cards_of(cards, "clinical-reminder")
    assert next_step["summary"] == "GEHA: request prior authorization for 62362"
    assert numbered_steps(next_step["detail"])[0].startswith("1. Request prior authorization from GEHA")
    links = cards_of(cards, "guideline")[0]["links"]
    assert links[0]["type"] == "absolute"
    assert links[0]["url"] == f"{live_service.base_url}/policies/geha-idds-chronic-pain"
    page = requests.get(links[0]["url"], timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "geha.trial.relief-ge50" in page.text
    assert all(link["url"].startswith("http") for link in links)


def test_insufficient_patient_gets_numbered_documentation_steps(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    cards = live_service.call(
        pointed_at("order-select-62362-demo-insufficient", fhir_server.base_url)
    ).json()["cards"]
    topics = [c["source"]["topic"]["code"] for c in cards]
    # no trial on the chart: first a proposal to order it, then the list of what to document
    assert topics == ["coverage-info", "clinical-reminder", "clinical-reminder", "guideline"]
    proposal, reminder = cards_of(cards, "clinical-reminder")
    trials = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in proposal["suggestions"]]
    assert trials == ["62322", "62326"]
    assert reminder["summary"].startswith("GEHA: ")
    assert "how to document" in reminder["summary"] and "for 62362" in reminder["summary"]
    steps = numbered_steps(reminder["detail"])
    assert steps[0].startswith("1. ")
    assert "Trial relief" in reminder["detail"]
    decision = cards_of(cards)[0]["detail"]
    # one step per item, the trial's results one step with a sub-item each (said once: stop note 43)
    assert sum(max(1, step.count("\n   - ")) for step in steps) == missing_on_card(decision)
    assert "links" not in reminder and "suggestions" not in reminder
    assert (
        reminder["extension"]["davinci-crd.associated-resource"]
        == (cards_of(cards)[0]["extension"]["davinci-crd.associated-resource"])
    )


def test_insufficient_patient_lists_what_to_document(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    card = live_service.call(pointed_at("order-select-62362-demo-insufficient", fhir_server.base_url)).json()[
        "cards"
    ][0]
    assert re.match(r"GEHA: \d+ items to document for 62362 — ", card["summary"])
    trial = next(line for line in card["detail"].splitlines() if "**D. Trial relief >= 50 %**" in line)
    # no trial anywhere: it is to be ordered first, as the answer's proposal card offers
    assert (
        trial.startswith("- ❔ ")
        and " — Order the trial first (CPT 62322 or 62326): once done, document" in trial
    )
    assert "❌" not in card["detail"]


def test_excluded_patient_does_not_meet_with_both_reasons(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    card = live_service.call(
        pointed_at("order-select-62362-demo-does-not-meet", fhir_server.base_url)
    ).json()["cards"][0]
    assert card["summary"] == "GEHA: not covered — D. Trial relief >= 50 %: 29 % relief (needs at least 50 %)"
    assert card["indicator"] == "warning"
    failing = [line for line in card["detail"].splitlines() if line.startswith("- ❌")]
    assert failing[0].startswith("- ❌ **D. Trial relief >= 50 %**: 29 % relief")
    assert any(line.startswith("- ❌ **No other implanted programmable device**") for line in failing)


def test_spasticity_is_not_addressed_by_geha(fhir_server: LocalFhirServer, live_service: LiveService) -> None:
    card = live_service.call(pointed_at("order-select-62362-demo-spasticity", fhir_server.base_url)).json()[
        "cards"
    ][0]
    assert "manual review" in card["summary"]
    assert "spasticity" in card["detail"]


def test_order_sign_answers_for_every_pump_line(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    [card] = cards_of(
        live_service.call(pointed_at("order-sign-implant-demo-meets", fhir_server.base_url)).json()["cards"]
    )
    refs = sorted(r["reference"] for r in card["extension"]["davinci-crd.associated-resource"])
    assert refs == [
        "DeviceRequest/demo-meets-sign-dr-e0783",
        "MedicationRequest/demo-meets-sign-mr-infusate",  # the pump's drug, judged as the pump order
        "ServiceRequest/demo-meets-sign-sr-62350",
        "ServiceRequest/demo-meets-sign-sr-62362",
    ]
    assert card["summary"] == "GEHA: 62362, 62350, E0783 meet all 14 coverage criteria"


def test_non_pump_order_gets_no_cards(fhir_server: LocalFhirServer, live_service: LiveService) -> None:
    response = live_service.call(pointed_at("order-select-non-pump", fhir_server.base_url))
    assert response.status_code == 200
    body = response.json()
    assert body["cards"] == []
    [action] = body["systemActions"]
    assert "no coverage rules for code 99213" in action["description"]


def test_wrong_token_degrades_to_could_not_check(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url, token="not-the-token")
    response = live_service.call(body)
    assert response.status_code == 200
    card = response.json()["cards"][0]
    assert "criteria could not be checked**: the EHR's" in card["detail"]
    assert "HTTP 401" in card["detail"]
    assert "not-the-token" not in card["detail"]
    assert "meets all" not in card["summary"]


def test_unreachable_fhir_server_degrades_within_the_timeout(
    live_service: LiveService, closed_port_url: str
) -> None:
    started = time.monotonic()
    response = live_service.call(pointed_at("order-select-62362-demo-meets", closed_port_url))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert "the FHIR server did not answer" in response.json()["cards"][0]["detail"]
    assert elapsed < 10  # generous: the point is "answers", not a speed target


def test_token_is_really_required_by_the_test_server(fhir_server: LocalFhirServer) -> None:
    assert requests.get(f"{fhir_server.base_url}/Patient/demo-meets", timeout=10).status_code == 401
    ok = requests.get(
        f"{fhir_server.base_url}/Patient/demo-meets",
        timeout=10,
        headers={"Authorization": f"Bearer {FHIR_TOKEN}"},
    )
    assert ok.status_code == 200


def test_without_prefetch_the_service_reads_patient_and_coverage(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url)
    del body["prefetch"]
    response = live_service.call(body)
    assert response.status_code == 200
    assert response.json()["cards"][0]["summary"] == "GEHA: 62362 meets all 14 coverage criteria"


def test_unreadable_coverage_without_prefetch_is_412(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url, token="wrong-token")
    del body["prefetch"]["coverage"]
    response = live_service.call(body)
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["issue"][0]["expression"] == ["prefetch.coverage"]
    assert "HTTP 401" in outcome["issue"][0]["diagnostics"]
    assert "wrong-token" not in response.text


def test_null_coverage_prefetch_is_not_requeried(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url, token="wrong-token")
    body["prefetch"]["coverage"] = None
    response = live_service.call(body)
    assert response.status_code == 200  # known empty: no query, so the bad token cannot cause a 412


def test_an_unknown_payer_gets_a_notice_not_a_determination(
    fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url)
    coverage = body["prefetch"]["coverage"]["entry"][0]["resource"]
    coverage["payor"] = [{"display": "Acme Health Plan"}]
    cards = live_service.call(body).json()["cards"]
    assert len(cards) == 1
    assert cards[0]["summary"].startswith("Acme Health Plan: no intrathecal pump coverage rules here")
    assert cards[0]["source"]["label"] == "Acme Health Plan"


def test_no_active_coverage_gets_a_notice(fhir_server: LocalFhirServer, live_service: LiveService) -> None:
    body = pointed_at("order-select-62362-demo-meets", fhir_server.base_url)
    body["prefetch"]["coverage"] = None
    cards = live_service.call(body).json()["cards"]
    assert [c["summary"] for c in cards] == [
        "No active coverage found: coverage rules for 62362 were not checked"
    ]


@pytest.mark.parametrize(
    ("request_name", "payer", "outcome_words"),
    [
        ("order-select-62362-demo-kaiser-medicare", "Kaiser Permanente Washington", "meets all"),
        ("order-select-62362-demo-cohere-cancer", "Cohere Health", "meets all"),
        ("order-select-62362-demo-cmm210-spasticity", "eviCore CMM-210", "meets all"),
        ("order-select-62362-demo-cbc-insufficient", "Capital Blue Cross", "to document"),
    ],
)
def test_each_payer_is_routed_to_its_policy(
    request_name: str, payer: str, outcome_words: str, fhir_server: LocalFhirServer, live_service: LiveService
) -> None:
    cards = cards_of(live_service.call(pointed_at(request_name, fhir_server.base_url)).json()["cards"])
    assert len(cards) == 1
    assert cards[0]["source"]["label"] == payer
    assert outcome_words in cards[0]["summary"]
