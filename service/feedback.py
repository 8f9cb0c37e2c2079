"""CDS Hooks feedback (`POST /cds-services/{id}/feedback`): what the clinician did with a card.

The override reasons a decision card offers come back here, as do accepted suggestions (the trial
order, the form Task). Each item is checked against the CDS Hooks 2.0 Feedback model (cds-fb-1..3),
and kept once however often the EHR repeats it (the spec asks for idempotence): in memory, and
appended to a JSON-lines file when `feedback_file` is configured, so a restart loses nothing and
re-reads what it already holds. Free-text comments are stored, never logged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from service.hooks.models import CANONICAL_UUID, RequestInvalid
from service.settings import SettingsError

log = logging.getLogger(__name__)

OUTCOMES = ("accepted", "overridden")
MAX_ITEMS = 100  # per request
MAX_COMMENT = 4000  # characters
RECENT_KEPT = 10_000  # items held in memory (the file keeps them all)
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
        if len(comment) > MAX_COMMENT:
            raise RequestInvalid(
                f"{where}.userComment", f"{where}.userComment is longer than {MAX_COMMENT} characters"
            )
    return kept


def _instant(item: dict[str, Any], path: str) -> str:
    """outcomeTimestamp in UTC (`Z` and `+00:00` are the same instant, so the same item)."""
    text = _string(item, "outcomeTimestamp", path)
    if RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()
        except ValueError:
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
        card = _string(item, "card", path)
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


class FeedbackStore:
    """Every distinct feedback item received, kept once.

    With a `path`, items are appended to a JSON-lines file (created readable by the service's user
    only: comments may hold patient details) under an exclusive lock, after reading what other
    worker processes appended, so repeats are kept once across processes and restarts. A damaged
    line (say, a write cut short by a crash) is skipped with a warning, never fatal.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)
        self._offset = 0
        if path is not None:
            if not path.parent.is_dir():
                raise SettingsError(f"feedback_file: the directory {path.parent} does not exist")
            with self._locked_file() as handle:
                self._read_new(handle, at_start=True)

    @property
    def items(self) -> list[dict[str, Any]]:
        """The most recent items (all of them in a file, when one is configured)."""
        return list(self._recent)

    @contextmanager
    def _locked_file(self) -> Iterator[IO[bytes]]:
        assert self._path is not None
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_new(self, handle: IO[bytes], at_start: bool = False) -> None:
        """Take in the lines appended since the last read (by this or another process)."""
        handle.seek(self._offset)
        lines = handle.read().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
            except (ValueError, KeyError, TypeError):
                log.warning("feedback_file: skipping line %d, which is not a feedback record", number)
                continue
            if key not in self._keys:
                self._keys.add(key)
                self._recent.append(record)
        self._offset = handle.tell()
        if at_start and lines[-1].strip():  # a write that never finished: end its line
            handle.write(b"\n")
            self._offset = handle.tell()

    def record(self, service_id: str, feedback: list[Feedback]) -> int:
        """Keep the items not seen before; the number kept."""
        received = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            if self._path is None:
                new = self._fresh(service_id, feedback, received)
            else:
                with self._locked_file() as handle:
                    self._read_new(handle)
                    new = self._fresh(service_id, feedback, received)
                    if new:
                        handle.write(b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in new))
                        handle.flush()
                        os.fsync(handle.fileno())
                    self._offset = handle.tell()
            for record in new:
                self._keys.add(record["key"])
                self._recent.append(record)
        outcomes = ", ".join(sorted({f.outcome for f in feedback}))
        log.info("feedback for %s: %d item(s) (%s), %d new", service_id, len(feedback), outcomes, len(new))
        return len(new)

    def _fresh(self, service_id: str, feedback: list[Feedback], received: str) -> list[dict[str, Any]]:
        fresh: dict[str, Feedback] = {}
        for item in feedback:
            key = item.key(service_id)
            if key not in self._keys:
                fresh.setdefault(key, item)
        return [  # as JSON holds them, so items read back from the file look the same
            json.loads(json.dumps({"key": key, "service": service_id, "received": received, **asdict(item)}))
            for key, item in fresh.items()
        ]
