"""Many FHIR searches and reads in one request: a `batch` Bundle of GETs (FHIR R4 §3.1.0.11).

Each HTTP request costs the service far more CPU than the bytes it carries (the HTTP client's own
work is most of a small search's cost), and each costs the EHR a request too. Each round of a hook
call's queries (Patient, Coverage and the clinical searches; then the pain scores' windows; then
the referenced payer and Medications) therefore goes to the server as one batch whose answer holds
one entry per query, in order. Servers whose answer says they take no batches (a status such as
405 or 501, a redirect, anything but a `batch-response` of as many entries: see
`FhirClient.batch`) are remembered here for a while and asked one query at a time, as before;
nothing is lost either way.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.shapes import dicts

REFUSAL_MEMORY_SECONDS = 600.0
MAX_REMEMBERED_SERVERS = 256
UNREADABLE = "the FHIR server's batch answer could not be read"
STATUS_CODE = re.compile(r"[0-9]{3}")


@dataclass(frozen=True)
class EntryAnswer:
    """One entry of a batch answer: its HTTP status and its resource (a searchset Bundle for a
    search, the resource for a read, an OperationOutcome or nothing for an error)."""

    status: int
    resource: dict[str, Any] | None
    too_large: bool = False  # the resource was larger than one request's answer may be

    @property
    def needs_more_requests(self) -> bool:
        """Whether judging it may ask the server again: a `next` page, or a 400 (a search is asked
        again without `_sort`)."""
        if self.status == 400:
            return True
        links = dicts(self.resource.get("link")) if self.resource is not None else []
        return any(link.get("relation") == "next" for link in links)


def batch_body(relative_urls: Sequence[str]) -> bytes:
    """The batch Bundle: one GET entry per relative URL (`Type?params` or `Type/id`), in order."""
    entries = [{"request": {"method": "GET", "url": url}} for url in relative_urls]
    return orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})


def entry_answers(answer: dict[str, Any], expected: int) -> list[EntryAnswer] | None:
    """The entries of a `batch-response` with `expected` entries, in order; None when the answer is
    not that (the server did not take the batch as one)."""
    if answer.get("resourceType") != "Bundle" or answer.get("type") != "batch-response":
        return None
    raw = answer.get("entry")
    entries = dicts(raw)
    if not isinstance(raw, list) or len(entries) != expected or len(raw) != expected:
        return None
    answers = []
    for entry in entries:
        response = entry.get("response")
        status = _status(response.get("status")) if isinstance(response, dict) else None
        if status is None:
            return None
        resource = entry.get("resource")
        answers.append(EntryAnswer(status, resource if isinstance(resource, dict) else None))
    return answers


def _status(value: Any) -> int | None:
    """`"200 OK"` or `"404"` as 200 or 404; None when it does not start with a three-digit code."""
    if not isinstance(value, str):
        return None
    code = value.strip().split(" ", 1)[0]
    return int(code) if STATUS_CODE.fullmatch(code) else None


class BatchRefusals:
    """The FHIR servers (normalised base URLs) that did not take a batch lately: asked one query at
    a time until `seconds` have passed, then offered a batch again. Bounded: the oldest are
    forgotten. What is remembered changes only how the same queries are sent, never their answers."""

    def __init__(self, seconds: float = REFUSAL_MEMORY_SECONDS, limit: int = MAX_REMEMBERED_SERVERS) -> None:
        self.seconds = seconds
        self.limit = limit
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def refused(self, base_url: str) -> bool:
        with self._lock:
            until = self._until.get(base_url)
            if until is None:
                return False
            if until > time.monotonic():
                return True
            del self._until[base_url]
            return False

    def remember(self, base_url: str) -> None:
        with self._lock:
            self._until.pop(base_url, None)
            self._until[base_url] = time.monotonic() + self.seconds
            while len(self._until) > self.limit:
                self._until.popitem(last=False)
