"""CDS Hooks feedback: override reasons and accepted suggestions come back, are checked, and kept once."""

from __future__ import annotations

import copy
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.feedback import FeedbackStore, parse_feedback
from service.settings import SettingsError, settings_from_mapping
from tests.builders import cards_of, catalog
from tests.calls import answer
from tests.support import assert_outcome, open_settings

FEEDBACK_URL = "/cds-services/idds-crd-order-select/feedback"
CARD = "8b0c5c47-8a7a-4a3f-9a7e-1b2c3d4e5f60"
COMMENT = "Trial notes are in the paper chart from Dr Whitaker"


def overridden(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": CARD,
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


def test_an_override_with_its_reason_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(open_settings(), catalog())
    with caplog.at_level(logging.INFO):
        response = post(app, {"feedback": [overridden()]})
    assert response.status_code == 200
    assert response.get_json() == {}
    [kept] = app.extensions["idds_crd"].feedback.items
    assert (kept["card"], kept["outcome"], kept["service"]) == (CARD, "overridden", "idds-crd-order-select")
    assert kept["override_reason"]["reason"]["code"] == "documented-elsewhere"
    assert kept["override_reason"]["userComment"] == COMMENT
    assert COMMENT not in caplog.text  # free text is stored, never logged
    assert "1 new" in caplog.text


def test_the_same_feedback_twice_is_kept_once() -> None:
    app = create_app(open_settings(), catalog())
    assert post(app, {"feedback": [overridden()]}).status_code == 200
    assert post(app, {"feedback": [overridden(), overridden()]}).status_code == 200
    assert len(app.extensions["idds_crd"].feedback.items) == 1
    assert post(app, {"feedback": [overridden(outcomeTimestamp="2026-11-21T10:07:00Z")]}).status_code == 200
    assert len(app.extensions["idds_crd"].feedback.items) == 2


def test_an_accepted_suggestion_is_kept() -> None:
    app = create_app(open_settings(), catalog())
    item = {
        "card": CARD,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2026-11-21T10:05:31.120+01:00",
    }
    assert post(app, {"feedback": [item]}).status_code == 200
    [kept] = app.extensions["idds_crd"].feedback.items
    assert kept["accepted_suggestions"] == ["e56e1945-20b3-4393-8503-a1a20fd73152"]


def test_feedback_on_a_real_decision_card() -> None:
    body, _ = answer("order-select-62362-demo-insufficient")
    card = cards_of(body["cards"])[0]
    item = overridden(card=card["uuid"], overrideReason={"reason": card["overrideReasons"][1]})
    app = create_app(open_settings(), catalog())
    assert post(app, {"feedback": [item]}).status_code == 200
    assert (
        app.extensions["idds_crd"].feedback.items[0]["override_reason"]["reason"]["code"] == "will-document"
    )


def test_feedback_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    settings = open_settings(feedback_file=str(path))
    assert post(create_app(settings, catalog()), {"feedback": [overridden()]}).status_code == 200
    restarted = create_app(settings, catalog())
    assert len(restarted.extensions["idds_crd"].feedback.items) == 1
    assert post(restarted, {"feedback": [overridden()]}).status_code == 200
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["card"] == CARD


def test_feedback_file_must_be_a_string() -> None:
    with pytest.raises(SettingsError, match="feedback_file"):
        settings_from_mapping({"feedback_file": 3})


def broken(change: Any) -> dict[str, Any]:
    item = overridden()
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
def test_malformed_feedback_is_400_naming_the_field(body: dict[str, Any], expression: str) -> None:
    app = create_app(open_settings(), catalog())
    assert_outcome(post(app, copy.deepcopy(body)), 400, expression)
    assert app.extensions["idds_crd"].feedback.items == []


def test_feedback_needs_a_json_body_and_a_known_service() -> None:
    app = create_app(open_settings(), catalog())
    raw = app.test_client().post(FEEDBACK_URL, data=b"{", content_type="application/json")
    assert_outcome(raw, 400, "$", mention="not valid JSON")
    assert_outcome(post(app, {"feedback": [overridden()]}, "/cds-services/nope/feedback"), 404, None)


def test_a_missing_feedback_directory_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    missing_dir = open_settings(feedback_file=str(tmp_path / "nope" / "feedback.jsonl"))
    with pytest.raises(SettingsError, match="does not exist"):
        create_app(missing_dir, catalog())


def test_a_damaged_or_unfinished_line_is_skipped_and_the_file_stays_usable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feedback.jsonl"
    settings = open_settings(feedback_file=str(path))
    assert post(create_app(settings, catalog()), {"feedback": [overridden()]}).status_code == 200
    with path.open("a", encoding="utf-8") as out:
        out.write('not json\n{"key": "k2", "card": "8b0c')  # a damaged line, then a write cut short
    with caplog.at_level(logging.WARNING):
        restarted = create_app(settings, catalog())
    assert "skipping line 2" in caplog.text and "skipping line 3" in caplog.text
    assert len(restarted.extensions["idds_crd"].feedback.items) == 1
    later = overridden(outcomeTimestamp="2026-11-21T11:00:00Z")
    assert post(restarted, {"feedback": [later]}).status_code == 200
    again = create_app(settings, catalog()).extensions["idds_crd"].feedback.items
    assert [i["outcome_timestamp"] for i in again] == [
        "2026-11-21T10:05:31+00:00",
        "2026-11-21T11:00:00+00:00",
    ]


def test_two_worker_processes_keep_a_repeat_once(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    first, second = FeedbackStore(path), FeedbackStore(path)
    [item] = parse_feedback({"feedback": [overridden()]})
    assert first.record("idds-crd-order-sign", [item]) == 1
    assert second.record("idds-crd-order-sign", [item]) == 0  # it reads what the other appended
    assert second.record("idds-crd-order-select", [item]) == 1  # another service: another item
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # comments may name the patient


def test_the_same_instant_written_two_ways_is_one_item() -> None:
    app = create_app(open_settings(), catalog())
    post(app, {"feedback": [overridden(outcomeTimestamp="2026-11-21T10:05:31Z")]})
    post(app, {"feedback": [overridden(outcomeTimestamp="2026-11-21T11:05:31+01:00")]})
    assert len(app.extensions["idds_crd"].feedback.items) == 1


def test_oversized_feedback_is_refused() -> None:
    app = create_app(open_settings(), catalog())
    assert_outcome(post(app, {"feedback": [overridden()] * 101}), 400, "feedback", mention="more than 100")
    long = overridden(overrideReason={"userComment": "x" * 4001})
    assert_outcome(post(app, {"feedback": [long]}), 400, "feedback[0].overrideReason.userComment")
