"""A small FHIR R4 REST client for the EHR's server: reads and paged searches with a bearer token.

Sends `Authorization: Bearer` on every call (including `next` pages) but refuses to follow a link
to another origin, so the EHR's token never leaves the EHR. Every failure becomes a `FhirError`
with a short, token-free reason that the engine can show as "could not be checked".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

MAX_PAGES = 20
PAGE_SIZE = 100


class FhirError(Exception):
    """A FHIR call failed; `reason` is safe to show and log (no token, no body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class FhirClient:
    """One client per hook call; `deadline` (monotonic seconds) bounds all its calls together."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        timeout: float,
        session: requests.Session | None = None,
        deadline: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._timeout = timeout
        self._deadline = deadline
        self._session = session or requests.Session()
        self._headers = {"Accept": "application/fhir+json"}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r})"

    def _remaining(self) -> float:
        if self._deadline is None:
            return self._timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FhirError("the hook's time budget ran out")
        return min(self._timeout, left)

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if _origin(url) != self._origin:
            raise FhirError("refused a link to another server")
        try:
            response = self._session.get(
                url, params=params, headers=self._headers, timeout=self._remaining(), allow_redirects=False
            )
        except requests.Timeout:
            raise FhirError("timed out") from None
        except requests.RequestException:
            raise FhirError("server unreachable") from None
        if 300 <= response.status_code < 400:
            raise FhirError(f"refused to follow a redirect (HTTP {response.status_code})")
        if response.status_code != 200:
            raise FhirError(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise FhirError("response is not JSON") from None
        if not isinstance(body, dict) or "resourceType" not in body:
            raise FhirError("response is not a FHIR resource")
        return body

    def read(self, reference: str) -> dict[str, Any]:
        """GET [base]/Type/id."""
        body = self._get(f"{self.base_url}/{reference.lstrip('/')}")
        return body

    def search(self, resource_type: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All resources of a search, following `next` links (same origin only) up to MAX_PAGES."""
        query = {"_count": PAGE_SIZE, **params}
        page = self._get(f"{self.base_url}/{resource_type}", query)
        resources: list[dict[str, Any]] = []
        for pages_read in range(1, MAX_PAGES + 1):
            if page.get("resourceType") != "Bundle":
                raise FhirError(f"search returned {page.get('resourceType')}, not a Bundle")
            for entry in page.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
                    resources.append(resource)
            next_url = next(
                (
                    link.get("url")
                    for link in page.get("link") or []
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
            if not next_url:
                return resources
            if pages_read == MAX_PAGES:
                break
            page = self._get(next_url)
        raise FhirError(f"more than {MAX_PAGES} pages")
