"""CDS Hooks feedback (`POST /cds-services/{id}/feedback`): what the clinician did with a card.

The override reasons a decision card offers come back here, as do accepted suggestions (the trial
order, the form Task). Each item is checked against the CDS Hooks 2.0 Feedback model (cds-fb-1..3)
and against bounds on every field, then stored in the audit trail with the record of the call that
issued its card (`AuditTrail.add_feedback`), once however often the EHR repeats it (the spec asks
for idempotence). Free-text comments are stored, never logged.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from service.hooks.models import CANONICAL_UUID, RequestInvalid
from service.store.audit import FeedbackEntry

OUTCOMES = ("accepted", "overridden")
MAX_ITEMS = 100  # per request
MAX_SUGGESTIONS = 20  # accepted suggestions per item
MAX_COMMENT = 4000  # characters of an override comment
MAX_ID = 128  # characters of a suggestion id, a code
MAX_TEXT = 1024  # characters of a code system URI or a display
MAX_TIMESTAMP = 64  # characters of outcomeTimestamp
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Feedback:
    """One feedback item as CDS Hooks defines it."""

    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: dict[str, Any] | None = None

    def key(self, service_id: str) -> str:
        """The same item sent twice to the same service has the same key."""
        return hashlib.sha256(json.dumps([service_id, asdict(self)], sort_keys=True).encode()).hexdigest()

    def entry(self, service_id: str) -> FeedbackEntry:
        """The item as the audit trail keeps it (as JSON holds it)."""
        return FeedbackEntry(self.key(service_id), self.card, json.loads(json.dumps(asdict(self))))


def _string(item: dict[str, Any], key: str, path: str, limit: int = MAX_ID) -> str:
    value = item.get(key)
    where = f"{path}.{key}"
    if not isinstance(value, str) or not value.strip():
        raise RequestInvalid(where, f"{where} is required (a non-empty string)")
    if len(value) > limit:
        raise RequestInvalid(where, f"{where} is longer than {limit} characters")
    return value


def _accepted(item: dict[str, Any], path: str) -> tuple[str, ...]:
    raw = item.get("acceptedSuggestions")
    if raw is None:
        if item["outcome"] == "accepted":
            raise RequestInvalid(
                f"{path}.acceptedSuggestions",
                f"{path}.acceptedSuggestions is required when accepted (cds-fb-2)",
            )
        return ()
    if not isinstance(raw, list) or not raw:
        raise RequestInvalid(
            f"{path}.acceptedSuggestions", f"{path}.acceptedSuggestions must be a non-empty array"
        )
    if len(raw) > MAX_SUGGESTIONS:
        raise RequestInvalid(
            f"{path}.acceptedSuggestions",
            f"{path}.acceptedSuggestions holds more than {MAX_SUGGESTIONS} suggestions",
        )
    return tuple(
        _string(s if isinstance(s, dict) else {}, "id", f"{path}.acceptedSuggestions[{i}]")
        for i, s in enumerate(raw)
    )


def _override_reason(item: dict[str, Any], path: str) -> dict[str, Any] | None:
    raw = item.get("overrideReason")
    if raw is None:
        return None
    where = f"{path}.overrideReason"
    if not isinstance(raw, dict):
        raise RequestInvalid(where, f"{where} must be a JSON object")
    reason, comment = raw.get("reason"), raw.get("userComment")
    if reason is None and comment is None:
        raise RequestInvalid(where, f"{where} needs a reason or a userComment (cds-fb-3)")
    kept: dict[str, Any] = {}
    if reason is not None:
        if not isinstance(reason, dict) or not all(
            isinstance(reason.get(k), str) for k in ("system", "code")
        ):
            raise RequestInvalid(f"{where}.reason", f"{where}.reason must be a Coding with system and code")
        limits = {"system": MAX_TEXT, "code": MAX_ID, "display": MAX_TEXT}
        kept["reason"] = {
            k: _string(reason, k, f"{where}.reason", limit)
            for k, limit in limits.items()
            if isinstance(reason.get(k), str)
        }
    if comment is not None:
        kept["userComment"] = _string(raw, "userComment", where, MAX_COMMENT)
    return kept


def _instant(item: dict[str, Any], path: str) -> str:
    """outcomeTimestamp in UTC (`Z` and `+00:00` are the same instant, so the same item)."""
    text = _string(item, "outcomeTimestamp", path, MAX_TIMESTAMP)
    if RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()
        except (ValueError, OverflowError):  # OverflowError: in UTC it falls before year 1 or after 9999
            pass
    where = f"{path}.outcomeTimestamp"
    raise RequestInvalid(where, f"{where} must be an RFC 3339 instant")


def parse_feedback(body: Any) -> list[Feedback]:
    """The feedback items of a request body; RequestInvalid names the first offending field."""
    if not isinstance(body, dict):
        raise RequestInvalid("$", "the request body must be a JSON object")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise RequestInvalid("feedback", "feedback must be a non-empty array")
    if len(items) > MAX_ITEMS:
        raise RequestInvalid("feedback", f"feedback holds more than {MAX_ITEMS} items; send them in parts")
    parsed = []
    for i, item in enumerate(items):
        path = f"feedback[{i}]"
        if not isinstance(item, dict):
            raise RequestInvalid(path, f"{path} must be a JSON object")
        card = _string(item, "card", path, MAX_ID)
        if not CANONICAL_UUID.fullmatch(card):
            raise RequestInvalid(f"{path}.card", f"{path}.card must be the card's uuid")
        if item.get("outcome") not in OUTCOMES:
            raise RequestInvalid(
                f"{path}.outcome", f"{path}.outcome must be accepted or overridden (cds-fb-1)"
            )
        timestamp = _instant(item, path)
        parsed.append(
            Feedback(card, item["outcome"], timestamp, _accepted(item, path), _override_reason(item, path))
        )
    return parsed
