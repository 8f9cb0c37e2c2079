"""Between the HTTP routes and the audit trail: every parsed hook call is recorded before it is
answered, and feedback is stored with the call whose card it answers.

Decisions (docs/api.md "Audit trail"): a hook call whose body is JSON is recorded whatever its
answer (200, 400 naming the invalid field, 412); bodies that are not JSON, unknown services and
oversized bodies are not hook calls and are only logged. When the record cannot be written, a
200 answer is replaced by 503 "audit trail unavailable" (a payer must not issue coverage
assertions it cannot retain), while a refusal (4xx), which issues nothing, is still sent and the
failure logged as an ERROR.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.audit_entry import AuditedCall, audit_row
from service.caller import current_caller
from service.errors import operation_outcome
from service.feedback import Feedback
from service.hooks.models import HookRequest
from service.pipeline import HookOutcome
from service.registry import ServiceDefinition
from service.store.audit import AuditUnavailable, UnknownCard

if TYPE_CHECKING:
    from service.app import AppState

log = logging.getLogger(__name__)
Answer = tuple[dict[str, Any], int]


class CallClock:
    """When a call arrived (UTC, for the record) and how long it has taken (monotonic)."""

    def __init__(self) -> None:
        self.received_at = datetime.now(UTC)
        self._started = time.monotonic()

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000


def _unavailable() -> dict[str, Any]:
    return operation_outcome(
        "transient", "audit trail unavailable: the call could not be recorded, so it is not answered; retry"
    )


def audited(
    state: AppState,
    clock: CallClock,
    service: ServiceDefinition,
    body: Any,
    request: HookRequest | None,
    outcome: HookOutcome,
) -> Answer:
    """Record the call, committed, and return the answer to send (503 when a 200 cannot be kept)."""
    call = AuditedCall(
        service,
        body,
        request,
        outcome,
        current_caller(state.settings.auth),
        clock.received_at,
        datetime.now(UTC),
        clock.elapsed_ms(),
    )
    try:
        state.stores.audit.record(_row(call, state))
    except AuditUnavailable:
        if outcome.status == 200:
            log.error("answering 503: the %s call could not be recorded in the audit trail", service.id)
            return _unavailable(), 503
    return outcome.response, outcome.status


def _row(call: AuditedCall, state: AppState) -> dict[str, Any]:
    """The call's audit row; AuditUnavailable when it cannot be written (logged with its cause)."""
    try:
        return audit_row(call, state.environment.catalog)
    except (TypeError, ValueError) as exc:
        log.error("audit trail: cannot write the %s call's record: %s", call.service.id, type(exc).__name__)
        raise AuditUnavailable("audit trail unavailable") from None


def store_feedback(state: AppState, service_id: str, items: list[Feedback]) -> Answer:
    """Keep the feedback with the records of its cards and its sender: 404 naming the item whose card
    this service never issued to this caller, 503 when the trail cannot be written."""
    caller = current_caller(state.settings.auth)
    try:
        entries = [item.entry(service_id) for item in items]
        sender = (caller.iss, caller.jti)
        kept = state.stores.audit.add_feedback(service_id, entries, datetime.now(UTC), sender)
    except UnknownCard as exc:
        where = f"feedback[{exc.index}].card"
        diagnostics = f"{where}: {service_id} never issued a card with this uuid"
        return operation_outcome("not-found", diagnostics, where), 404
    except AuditUnavailable:
        return _unavailable(), 503
    outcomes = ", ".join(sorted({f.outcome for f in items}))
    log.info("feedback for %s: %d item(s) (%s), %d new", service_id, len(items), outcomes, kept)
    return {}, 200
