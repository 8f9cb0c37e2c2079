"""A small FHIR R4 REST client for the EHR's server: reads and paged searches with a bearer token.

Sends `Authorization: Bearer` on every call (including `next` pages) but refuses to follow a link
or redirect to another origin, so the EHR's token never leaves the EHR. A search whose `self` link
shows that the server dropped the patient parameter is reported as such when it fits on one page
(the caller keeps only this patient's resources) and refused when it does not: other patients'
data is never paged through. Every failure becomes a `FhirError` with a
short, token-free reason that the engine can show as "could not be checked".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from service.shapes import dicts
from service.strict_json import loads_finite

MAX_PAGES = 10
PAGE_SIZE = 200
MAX_RETRY_AFTER_SECONDS = 1.0
PATIENT_SCOPE_PARAMS = ("patient", "subject", "beneficiary")


class FhirError(Exception):
    """A FHIR call failed; `reason` is safe to show and log (no token, no body)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the HTTP status, when the server answered with an error status


class SessionPool:
    """One `requests.Session` per worker thread, reused across hook calls (connection reuse).

    Sessions carry no credentials: the token travels in each request's headers only.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self._local.session = session
        return session


@dataclass(frozen=True)
class SearchResult:
    resources: list[dict[str, Any]]
    included: list[dict[str, Any]]
    pages: int
    scope_ignored: tuple[str, ...] = ()  # patient-scope parameters the server's self link dropped


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class FhirClient:
    """A client for one hook call; `deadline` (monotonic seconds) bounds all its calls together."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        timeout: float,
        *,
        deadline: float | None = None,
        sessions: SessionPool | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._timeout = timeout
        self._deadline = deadline
        self._sessions = sessions or SessionPool()
        self.page_size = page_size
        self.max_pages = max_pages
        self._headers = {"Accept": "application/fhir+json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r})"

    def remaining(self) -> float:
        """Seconds left for this call's FHIR work (raises once the deadline has passed)."""
        if self._deadline is None:
            return self._timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FhirError("no answer within the hook's time budget")
        return min(self._timeout, left)

    def _send(self, url: str, params: Mapping[str, Any] | None) -> requests.Response:
        if _origin(url) != self._origin:
            raise FhirError("refused a link to another server")
        try:
            return self._sessions.session().get(
                url, params=params, headers=self._headers, timeout=self.remaining(), allow_redirects=False
            )
        except requests.Timeout:
            raise FhirError("timed out") from None
        except requests.RequestException:
            raise FhirError("server unreachable") from None

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._send(url, params)
        if response.status_code == 429:
            wait = _retry_after(response)
            if wait is not None and wait <= min(MAX_RETRY_AFTER_SECONDS, self.remaining()):
                time.sleep(wait)
                response = self._send(url, params)
        if 300 <= response.status_code < 400:
            raise FhirError(f"refused to follow a redirect (HTTP {response.status_code})")
        if response.status_code != 200:
            raise FhirError(f"HTTP {response.status_code}", response.status_code)
        try:
            body = loads_finite(response.content)
        except (ValueError, RecursionError):
            raise FhirError("response is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirError("response is not a FHIR resource")
        return body

    def read(self, reference: str) -> dict[str, Any] | None:
        """GET [base]/Type/id; None when the server says the resource does not exist (404/410)."""
        try:
            return self._get(f"{self.base_url}/{reference.lstrip('/')}")
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise

    def search(self, resource_type: str, params: Mapping[str, Any]) -> SearchResult:
        """All matches of a search, following `next` links verbatim (same origin) up to `max_pages`."""
        query = {"_count": self.page_size, **params}
        page = self._get(f"{self.base_url}/{resource_type}", query)
        ignored = _ignored_scope(page, params)
        if ignored and _link(page, "next"):
            raise FhirError(
                f"the server ignored the search parameter '{ignored[0]}' and has more than one page "
                "(other patients' data is not paged through)"
            )
        return replace(self.collect(page, resource_type), scope_ignored=ignored)

    def collect(self, page: dict[str, Any], resource_type: str, include_first: bool = True) -> SearchResult:
        """The matches of a searchset Bundle already in hand and of its `next` pages (only of the
        `next` pages when `include_first` is false: the caller already has the first page's)."""
        matches: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        for pages_read in range(1, self.max_pages + 1):
            if page.get("resourceType") != "Bundle":
                raise FhirError(f"search returned {page.get('resourceType')}, not a Bundle")
            entries = dicts(page.get("entry")) if include_first or pages_read > 1 else []
            for entry in entries:
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                if resource.get("resourceType") == resource_type:
                    matches.append(resource)
                elif resource.get("resourceType") != "OperationOutcome":
                    included.append(resource)
            next_url = _link(page, "next")
            if not next_url:
                return SearchResult(matches, included, pages_read)
            if pages_read == self.max_pages:
                break
            page = self._get(next_url)
        raise FhirError(f"more than {self.max_pages} pages")


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in dicts(bundle.get("link")):
        if link.get("relation") == relation and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _ignored_scope(bundle: dict[str, Any], params: Mapping[str, Any]) -> tuple[str, ...]:
    """The patient-scope parameters a search's `self` link shows the server did not execute (CDS
    Hooks advice: check the self link). The caller must then keep only this patient's resources."""
    self_url = _link(bundle, "self")
    if not self_url:
        return ()
    try:
        executed = parse_qs(urlsplit(self_url).query)
    except ValueError:
        return ()  # a malformed self link proves nothing either way
    return tuple(name for name in PATIENT_SCOPE_PARAMS if name in params and name not in executed)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
