"""CDS Hooks feedback: override reasons and accepted suggestions come back, are checked (bounds on
every field), and are stored once with the audit record of the call that issued the card; feedback
on a card the service never issued is 404."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.settings import SettingsError, StoreSettings, settings_from_mapping
from tests.builders import cards_of, catalog
from tests.support import assert_outcome, load_sample, open_settings

FEEDBACK_URL = "/cds-services/idds-crd-order-select/feedback"
NEVER_ISSUED = "8b0c5c47-8a7a-4a3f-9a7e-1b2c3d4e5f60"
COMMENT = "Trial notes are in the paper chart from Dr Whitaker"


def issued_card(app: Flask, sample: str = "order-select-62362-demo-insufficient") -> dict[str, Any]:
    """The first decision card the app issues for a packaged sample call (prefetch only)."""
    body = load_sample(f"{sample}.json")
    response = app.test_client().post(f"/cds-services/idds-crd-{body['hook']}", json=body)
    assert response.status_code == 200
    return cards_of(response.get_json()["cards"])[0]


@pytest.fixture
def app() -> Flask:
    return create_app(open_settings(), catalog())


@pytest.fixture
def card(app: Flask) -> str:
    return str(issued_card(app)["uuid"])


def overridden(card: str, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {
            "reason": {
                "system": "http://idds-crd.org/fhir/CodeSystem/idds-override-reason",
                "code": "documented-elsewhere",
                "display": "Documentation exists outside this EHR",
            },
            "userComment": COMMENT,
        },
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
    }
    item.update(changes)
    return item


def post(app: Flask, body: Any, url: str = FEEDBACK_URL) -> Any:
    return app.test_client().post(url, json=body)


def kept(app: Flask, card: str) -> list[dict[str, Any]]:
    """The feedback stored with the audit record that issued `card`."""
    [record] = app.extensions["idds_crd"].stores.audit.find(card)
    return list(record["feedback"])


def test_an_override_is_stored_with_the_record_that_issued_the_card(
    app: Flask, card: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = post(app, {"feedback": [overridden(card)]})
    assert response.status_code == 200
    assert response.get_json() == {}
    [record] = app.extensions["idds_crd"].stores.audit.find(card)
    assert card in [c["uuid"] for c in record["response"]["cards"]]
    [item] = record["feedback"]
    assert (item["card"], item["outcome"]) == (card, "overridden")
    assert item["override_reason"]["reason"]["code"] == "documented-elsewhere"
    assert item["override_reason"]["userComment"] == COMMENT
    assert COMMENT not in caplog.text  # free text is stored, never logged
    assert "1 new" in caplog.text


def test_the_same_feedback_twice_is_kept_once(app: Flask, card: str) -> None:
    assert post(app, {"feedback": [overridden(card)]}).status_code == 200
    assert post(app, {"feedback": [overridden(card), overridden(card)]}).status_code == 200
    assert len(kept(app, card)) == 1
    assert (
        post(app, {"feedback": [overridden(card, outcomeTimestamp="2026-11-21T10:07:00Z")]}).status_code
        == 200
    )
    assert len(kept(app, card)) == 2


def test_the_same_instant_written_two_ways_is_one_item(app: Flask, card: str) -> None:
    post(app, {"feedback": [overridden(card, outcomeTimestamp="2026-11-21T10:05:31Z")]})
    post(app, {"feedback": [overridden(card, outcomeTimestamp="2026-11-21T11:05:31+01:00")]})
    assert len(kept(app, card)) == 1


def test_an_accepted_suggestion_is_kept(app: Flask, card: str) -> None:
    item = {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2026-11-21T10:05:31.120+01:00",
    }
    assert post(app, {"feedback": [item]}).status_code == 200
    assert kept(app, card)[0]["accepted_suggestions"] == ["e56e1945-20b3-4393-8503-a1a20fd73152"]


def test_an_override_reason_the_card_offered_is_kept(app: Flask) -> None:
    card = issued_card(app)
    item = overridden(card["uuid"], overrideReason={"reason": card["overrideReasons"][1]})
    assert post(app, {"feedback": [item]}).status_code == 200
    assert kept(app, card["uuid"])[0]["override_reason"]["reason"]["code"] == "will-document"


def test_feedback_on_a_card_never_issued_is_404_naming_the_item_and_keeps_nothing(
    app: Flask, card: str
) -> None:
    response = post(app, {"feedback": [overridden(card), overridden(NEVER_ISSUED)]})
    assert_outcome(response, 404, "feedback[1].card")
    assert kept(app, card) == []


def test_feedback_sent_to_another_service_than_the_one_that_issued_the_card_is_404(
    app: Flask, card: str
) -> None:
    other = "/cds-services/idds-crd-order-sign/feedback"
    assert_outcome(post(app, {"feedback": [overridden(card)]}, other), 404, "feedback[0].card")


def test_feedback_survives_a_restart_in_the_database_file(tmp_path: Path) -> None:
    settings = open_settings(store=StoreSettings(url=f"sqlite:///{tmp_path}/a.db"))
    first = create_app(settings, catalog())
    card = str(issued_card(first)["uuid"])
    assert post(first, {"feedback": [overridden(card)]}).status_code == 200
    restarted = create_app(settings, catalog())
    assert post(restarted, {"feedback": [overridden(card)]}).status_code == 200  # a repeat: kept once
    assert len(kept(restarted, card)) == 1


def test_the_feedback_file_setting_is_gone() -> None:
    with pytest.raises(SettingsError, match="feedback_file"):
        settings_from_mapping({"feedback_file": "/var/lib/idds-crd/feedback.jsonl"})


def broken(change: Any) -> dict[str, Any]:
    item = overridden(NEVER_ISSUED)
    change(item)
    return {"feedback": [item]}


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": ["x"]}, "feedback[0]"),
        (broken(lambda i: i.pop("card")), "feedback[0].card"),
        (broken(lambda i: i.update(card="card-1")), "feedback[0].card"),
        (broken(lambda i: i.update(outcome="ignored")), "feedback[0].outcome"),
        (broken(lambda i: i.update(outcomeTimestamp="yesterday")), "feedback[0].outcomeTimestamp"),
        *(  # before year 1 or after 9999 once in UTC
            (broken(lambda i, t=t: i.update(outcomeTimestamp=t)), "feedback[0].outcomeTimestamp")
            for t in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00")
        ),
        (broken(lambda i: i.update(outcome="accepted")), "feedback[0].acceptedSuggestions"),
        (broken(lambda i: i.update(acceptedSuggestions=[{}])), "feedback[0].acceptedSuggestions[0].id"),
        (broken(lambda i: i.update(overrideReason={})), "feedback[0].overrideReason"),
        (broken(lambda i: i["overrideReason"]["reason"].pop("code")), "feedback[0].overrideReason.reason"),
        (
            broken(lambda i: i["overrideReason"].update(userComment="")),
            "feedback[0].overrideReason.userComment",
        ),
    ],
)
def test_malformed_feedback_is_400_naming_the_field(
    app: Flask, card: str, body: dict[str, Any], expression: str
) -> None:
    body = copy.deepcopy(body)
    for item in body.get("feedback", []):
        if isinstance(item, dict) and item.get("card") == NEVER_ISSUED:
            item["card"] = card
    assert_outcome(post(app, body), 400, expression)
    assert kept(app, card) == []


def test_feedback_needs_a_json_body_and_a_known_service(app: Flask) -> None:
    raw = app.test_client().post(FEEDBACK_URL, data=b"{", content_type="application/json")
    assert_outcome(raw, 400, "$", mention="not valid JSON")
    assert_outcome(
        post(app, {"feedback": [overridden(NEVER_ISSUED)]}, "/cds-services/nope/feedback"), 404, None
    )


def repeated(item: dict[str, Any], times: int) -> list[dict[str, Any]]:
    return [copy.deepcopy(item) for _ in range(times)]


@pytest.mark.parametrize(
    ("change", "expression", "mention"),
    [
        (lambda i: i.update(card="8" * 200), "feedback[0].card", "longer than 128"),
        (
            lambda i: i.update(outcome="accepted", acceptedSuggestions=[{"id": "s"}] * 21),
            "feedback[0].acceptedSuggestions",
            "more than 20",
        ),
        (
            lambda i: i.update(outcome="accepted", acceptedSuggestions=[{"id": "s" * 129}]),
            "feedback[0].acceptedSuggestions[0].id",
            "longer than 128",
        ),
        (
            lambda i: i["overrideReason"].update(userComment="x" * 4001),
            "feedback[0].overrideReason.userComment",
            "longer than 4000",
        ),
        (
            lambda i: i["overrideReason"]["reason"].update(code="c" * 129),
            "feedback[0].overrideReason.reason.code",
            "longer than 128",
        ),
        (
            lambda i: i["overrideReason"]["reason"].update(system="s" * 1025),
            "feedback[0].overrideReason.reason.system",
            "longer than 1024",
        ),
        (
            lambda i: i["overrideReason"]["reason"].update(display="d" * 1025),
            "feedback[0].overrideReason.reason.display",
            "longer than 1024",
        ),
        (
            lambda i: i.update(outcomeTimestamp="2026-11-21T10:05:31." + "1" * 80 + "Z"),
            "feedback[0].outcomeTimestamp",
            "longer than 64",
        ),
    ],
)
def test_every_feedback_field_is_bounded(
    app: Flask, card: str, change: Any, expression: str, mention: str
) -> None:
    item = overridden(card)
    change(item)
    issue = assert_outcome(post(app, {"feedback": [item]}), 400, expression)
    assert mention in issue["diagnostics"]
    assert kept(app, card) == []


def test_at_most_100_items(app: Flask, card: str) -> None:
    many = repeated(overridden(card), 101)
    assert_outcome(post(app, {"feedback": many}), 400, "feedback", mention="more than 100")
    assert post(app, {"feedback": repeated(overridden(card), 100)}).status_code == 200
    assert len(kept(app, card)) == 1
