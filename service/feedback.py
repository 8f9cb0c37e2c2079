"""CDS Hooks feedback (`POST /cds-services/{id}/feedback`): what the clinician did with a card.

The override reasons a decision card offers come back here, as do accepted suggestions (the trial
order, the form Task). Each item is checked against the CDS Hooks 2.0 Feedback model (cds-fb-1..3),
and kept once however often the EHR repeats it (the spec asks for idempotence): in memory, and
appended to a JSON-lines file when `feedback_file` is configured, so a restart loses nothing and
re-reads what it already holds. Free-text comments are stored, never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.hooks.models import CANONICAL_UUID, RequestInvalid
from service.settings import SettingsError

log = logging.getLogger(__name__)

OUTCOMES = ("accepted", "overridden")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Feedback:
    """One feedback item as CDS Hooks defines it."""

    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The same item sent twice has the same key."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def _string(item: dict[str, Any], key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RequestInvalid(f"{path}.{key}", f"{path}.{key} is required (a non-empty string)")
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
        kept["reason"] = {
            k: reason[k] for k in ("system", "code", "display") if isinstance(reason.get(k), str)
        }
    if comment is not None:
        kept["userComment"] = _string(raw, "userComment", where)
    return kept


def parse_feedback(body: Any) -> list[Feedback]:
    """The feedback items of a request body; RequestInvalid names the first offending field."""
    if not isinstance(body, dict):
        raise RequestInvalid("$", "the request body must be a JSON object")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise RequestInvalid("feedback", "feedback must be a non-empty array")
    parsed = []
    for i, item in enumerate(items):
        path = f"feedback[{i}]"
        if not isinstance(item, dict):
            raise RequestInvalid(path, f"{path} must be a JSON object")
        card = _string(item, "card", path)
        if not CANONICAL_UUID.fullmatch(card):
            raise RequestInvalid(f"{path}.card", f"{path}.card must be the card's uuid")
        if item.get("outcome") not in OUTCOMES:
            raise RequestInvalid(
                f"{path}.outcome", f"{path}.outcome must be accepted or overridden (cds-fb-1)"
            )
        timestamp = _string(item, "outcomeTimestamp", path)
        if not RFC3339.fullmatch(timestamp):
            raise RequestInvalid(
                f"{path}.outcomeTimestamp", f"{path}.outcomeTimestamp must be an RFC 3339 instant"
            )
        parsed.append(
            Feedback(card, item["outcome"], timestamp, _accepted(item, path), _override_reason(item, path))
        )
    return parsed


class FeedbackStore:
    """Every distinct feedback item received, kept once; appended to `path` when one is given."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self.items: list[dict[str, Any]] = []
        if path is not None and not path.parent.is_dir():
            raise SettingsError(f"feedback_file: the directory {path.parent} does not exist")
        if path is not None and path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    self._keys.add(record["key"])
                except (ValueError, KeyError, TypeError):
                    raise SettingsError(
                        f"feedback_file: {path} line {number} is not a feedback record"
                    ) from None
                self.items.append(record)

    def record(self, service_id: str, feedback: list[Feedback]) -> int:
        """Keep the items not seen before; the number kept."""
        received = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            fresh = {f.key: f for f in feedback if f.key not in self._keys}
            new = [  # as JSON holds them, so items read back from the file look the same
                json.loads(json.dumps({"key": key, "service": service_id, "received": received, **asdict(f)}))
                for key, f in fresh.items()
            ]
            if new and self._path is not None:
                with self._path.open("a", encoding="utf-8") as out:
                    out.writelines(json.dumps(record, sort_keys=True) + "\n" for record in new)
            self._keys.update(record["key"] for record in new)
            self.items.extend(new)
        outcomes = ", ".join(sorted({f.outcome for f in feedback}))
        log.info("feedback for %s: %d item(s) (%s), %d new", service_id, len(feedback), outcomes, len(new))
        return len(new)
