"""The audit record tells the assertions a call issued by asking, of each of the answer's, whether its
id is the one the call gives what it asserts (`issued_in`). It asks the call that answered
(`HookOutcome.issuer`), which made those ids and keeps them (`HookCall.made`), rather than deriving
each again (sorted sub-extensions, a SHA-256 and two UUID5s an assertion); the answer is the one a
HookCall of its own gives, and another call's ids are never taken for this one's."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

import cards.coverage_information as coverage_information
import service.audit_call as audit_call
from cards.coverage_information import HookCall, issued_in
from service.audit_entry import AuditedCall, _answer_repetitions, _issued, audit_row, coverage_assertions
from tests.support import SIGN_URL, post_json, sign_body


def _audited(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[AuditedCall, Any]:
    """The demo-meets order-sign's AuditedCall and catalog, as the route gave them to `audit_row`."""
    seen: list[tuple[AuditedCall, Any]] = []

    def kept(call: AuditedCall, catalog: Any) -> dict[str, Any]:
        seen.append((call, catalog))
        return audit_row(call, catalog)

    monkeypatch.setattr(audit_call, "audit_row", kept)
    assert post_json(app.test_client(), SIGN_URL, sign_body()).status_code == 200
    [found] = seen
    return found


def _issued_of(call: AuditedCall) -> set[tuple[str, Any, Any]]:
    response = call.outcome.response
    return _issued(call, _answer_repetitions(response), coverage_assertions(response))


def test_the_record_derives_no_id_the_answer_made(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    call, catalog = _audited(app, monkeypatch)
    derived = []
    uuid5_hex = coverage_information._uuid5_hex
    monkeypatch.setattr(
        coverage_information, "_uuid5_hex", lambda name: derived.append(name) or uuid5_hex(name)
    )
    row = audit_row(call, catalog)
    assert derived == []
    issued = _issued_of(call)
    assert len(issued) == 4 and all(not a.get("carried") for a in json.loads(row["assertions"]))
    assert issued == _issued_of(replace(call, outcome=replace(call.outcome, issuer=None)))
    assert derived, "a HookCall of the record's own derives them again"


def test_another_calls_ids_are_not_taken_for_this_ones(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A HookCall of another hookInstance holding ids for the same content is not asked."""
    call, _ = _audited(app, monkeypatch)
    assert call.request is not None
    other = HookCall(call.request.hook, "another-hook-instance")
    for target, extension in _answer_repetitions(call.outcome.response):
        assert not issued_in(other, target, extension)  # it makes its own ids for the same content
    elsewhere = replace(call, outcome=replace(call.outcome, issuer=other))
    assert len(_issued_of(elsewhere)) == 4
    assert _issued_of(elsewhere) == _issued_of(call)
