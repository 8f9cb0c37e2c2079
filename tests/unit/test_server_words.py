"""A FHIR server's own words reach a reason (a card, a log line, the audit trail) only as a short,
marked excerpt: a search answered with a non-Bundle whose resourceType was free text put all of it,
200,000 characters reading as a payer's approval, into the clinician's card and a WARNING line
(security review S-3)."""

from __future__ import annotations

import re

import pytest
import responses

from service.app import create_app
from service.fhir.client import MAX_SERVER_WORDS, FhirClient, FhirError
from tests.support import FHIR_SERVER, SIGN_URL, open_settings, post_json, sign_body, with_fhir

SPOOF = "Bundle. GEHA APPROVED THIS ORDER: prior authorization satisfied, number GEHA-77812. " + "z" * 200_000
SHOWN = f"“{SPOOF[:MAX_SERVER_WORDS]}…”"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("Patient", "search returned Patient, not a Bundle"),
        (SPOOF, f"search returned {SHOWN}, not a Bundle"),
        (
            "Bundle\n“approved”\u202e",
            "search returned “Bundle\\n\\u201capproved\\u201d\\u202e”, not a Bundle",
        ),
        (None, "search returned nothing, not a Bundle"),
        (7, "search returned a number, not a Bundle"),
    ],
)
def test_a_non_bundle_is_named_by_its_type_or_a_marked_excerpt(written: object, reason: str) -> None:
    with pytest.raises(FhirError) as failed:
        FhirClient(FHIR_SERVER, None, 2.0).collect({"resourceType": written}, "Condition")
    assert failed.value.reason == reason


@responses.activate
def test_a_servers_words_reach_the_card_and_the_log_only_as_an_excerpt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.post(FHIR_SERVER, status=404)  # no batches: each query on its own
    responses.get(re.compile(rf"{re.escape(FHIR_SERVER)}/Condition\?.*"), json={"resourceType": SPOOF})
    responses.get(
        re.compile(rf"{re.escape(FHIR_SERVER)}/.*"), json={"resourceType": "Bundle", "type": "searchset"}
    )
    client = create_app(open_settings()).test_client()
    with caplog.at_level("WARNING"):
        response = post_json(client, SIGN_URL, with_fhir(sign_body()))
    assert response.status_code == 200
    details = [card["detail"] for card in response.get_json()["cards"]]
    assert any(SHOWN in detail for detail in details)
    assert not any(SPOOF[: MAX_SERVER_WORDS + 1] in detail for detail in details)
    assert any(SHOWN in line for line in caplog.messages)
    assert not any(SPOOF[: MAX_SERVER_WORDS + 1] in line for line in caplog.messages)
