"""A small FHIR R4 REST client for the EHR's server: reads and paged searches with a bearer token.

Sends `Authorization: Bearer` on every call (including `next` pages) but refuses to follow a link
or redirect to another origin, so the EHR's token never leaves the EHR. A search whose `self` link
shows that the server dropped the patient parameter is reported as such when it fits on one page
(the caller keeps only this patient's resources) and refused when it does not: other patients'
data is never paged through. Every failure becomes a `FhirError` with a
short, token-free reason that the engine can show as "could not be checked".

Each request is bounded in time and size: it ends at the call's deadline however slowly the server
answers (the transport's `Cutoff` cuts the connection), its body is streamed and given up once it
passes `max_response_bytes`, and whatever happens on the way (no route, closed port, timeout) reads
the same: "the FHIR server did not answer". A read (`GET Type/id`) must answer with that very
resource; anything else (a Bundle, another type, another id) counts as a failed read.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import requests
import urllib3
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from service.fhir.outbound import NO_ANSWER, origin
from service.fhir.transport import Cutoff, Watch, guarded_session
from service.shapes import dicts

MAX_PAGES = 10
PAGE_SIZE = 200
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_CALL_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
MAX_RETRY_AFTER_SECONDS = 1.0
USER_AGENT = "idds-crd"
PATIENT_SCOPE_PARAMS = ("patient", "subject", "beneficiary")
READ_REFERENCE = re.compile(r"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")
OUT_OF_TIME = "no answer within the hook's time budget"
TOO_LARGE = "the FHIR server's answer was too large"
TOO_MUCH = "the FHIR server's answers to this call were too large together"
WRONG_RESOURCE = "the FHIR server answered with another resource than the one asked for"


class FhirError(Exception):
    """A FHIR call failed; `reason` is safe to show and log (no token, no body)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the HTTP status, when the server answered with an error status


class SessionPool:
    """One guarded `requests.Session` per worker thread, reused across hook calls (connection
    reuse), and the one `Cutoff` that ends their requests at their deadlines.

    Sessions carry no credentials: the token travels in each request's headers only, and no cookie
    is ever kept (one call's cookie must not reach the next call's requests). The client sends
    through the session's guarded adapter itself (`adapter`): a session's own request path (merging
    settings, cookies, redirects) costs more CPU than the request, and none of it is wanted here.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self.cutoff = Cutoff()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = guarded_session()
            self._local.session = session
        return session

    def adapter(self) -> BaseAdapter:
        """The thread's guarded adapter (its connection pool), which follows no redirect."""
        adapter = getattr(self._local, "adapter", None)
        if adapter is None:
            adapter = self.session().get_adapter("https://")
            self._local.adapter = adapter
        return adapter


@dataclass(frozen=True)
class SearchResult:
    resources: list[dict[str, Any]]
    included: list[dict[str, Any]]
    pages: int
    scope_ignored: tuple[str, ...] = ()  # patient-scope parameters the server's self link dropped


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
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_call_bytes: int = MAX_CALL_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self._timeout = timeout
        self._deadline = deadline
        self._sessions = sessions or SessionPool()
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_response_bytes = max_response_bytes
        self.max_call_bytes = max_call_bytes
        self._received = 0  # bytes of every answer of this call so far (pages and parallel queries)
        self._received_lock = threading.Lock()
        self._headers = {"Accept": "application/fhir+json", "User-Agent": USER_AGENT}
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
            raise FhirError(OUT_OF_TIME)
        return min(self._timeout, left)

    def _exchange(self, url: str, params: Mapping[str, Any] | None) -> tuple[int, bytes, float | None]:
        """One GET within the time left: (status, the body of a 200, the Retry-After of a 429)."""
        url_origin = origin(url)
        if url_origin is None or url_origin != self.origin:
            raise FhirError("refused a link to another server")
        seconds = self.remaining()
        with self._sessions.cutoff.until(time.monotonic() + seconds) as watch:
            try:
                response = self._sessions.adapter().send(
                    self._prepared(url, params), stream=True, timeout=seconds, verify=True, proxies={}
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                raise FhirError(NO_ANSWER) from None
            with response:
                if response.status_code != 200:
                    return response.status_code, b"", _retry_after(response)
                return 200, self._body(response, watch), None

    def _prepared(self, url: str, params: Mapping[str, Any] | None) -> requests.PreparedRequest:
        """A GET as `requests` would send it, built directly: the URL with its query (a list value
        repeats its parameter), this client's headers, no body, no cookies."""
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = requote_uri(f"{url}?{urlencode(params, doseq=True)}" if params else url)
        prepared.headers = CaseInsensitiveDict(self._headers)
        prepared.body = None
        prepared.hooks = {"response": []}
        return prepared

    def _body(self, response: requests.Response, watch: Watch) -> bytes:
        """The body, streamed: given up past `max_response_bytes` or once the watch has fired."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise FhirError(TOO_LARGE)
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise FhirError(TOO_LARGE)
                self._count(len(chunk))
                if watch.fired or time.monotonic() > watch.deadline:
                    break
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            raise FhirError(NO_ANSWER) from None
        if watch.fired or time.monotonic() > watch.deadline:
            raise FhirError(NO_ANSWER)
        return bytes(body)

    def _count(self, received: int) -> None:
        """Add to the bytes this call has received; FhirError once they pass `max_call_bytes` (a
        server answering many pages, each under the per-answer cap, cannot hold more than that)."""
        with self._received_lock:
            self._received += received
            if self._received > self.max_call_bytes:
                raise FhirError(TOO_MUCH)

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        status, raw, wait = self._exchange(url, params)
        if status == 429 and wait is not None and wait <= min(MAX_RETRY_AFTER_SECONDS, self.remaining()):
            time.sleep(wait)
            status, raw, wait = self._exchange(url, params)
        if 300 <= status < 400:
            raise FhirError(f"refused to follow a redirect (HTTP {status})")
        if status != 200:
            raise FhirError(f"HTTP {status}", status)
        try:
            body = orjson.loads(raw)  # refuses NaN, Infinity and numbers beyond a double, like loads_finite
        except (ValueError, RecursionError):
            raise FhirError("response is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FhirError("response is not a FHIR resource")
        return body

    def read(self, reference: str) -> dict[str, Any] | None:
        """GET [base]/Type/id: that very resource; None when the server says it does not exist
        (404/410). An answer that is another resource (a Bundle, another type or id) is a failure."""
        wanted = READ_REFERENCE.fullmatch(reference.lstrip("/"))
        if wanted is None or wanted[2] in (".", ".."):
            raise FhirError("not a reference to a resource (Type/id)")
        try:
            resource = self._get(f"{self.base_url}/{wanted[0]}")
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise
        if resource.get("resourceType") != wanted[1] or resource.get("id") != wanted[2]:
            raise FhirError(WRONG_RESOURCE)
        return resource

    def search(self, resource_type: str, params: Mapping[str, Any], first_page: bool = False) -> SearchResult:
        """All matches of a search, following `next` links verbatim (same origin) up to `max_pages`.
        `first_page`: a search with `_sort` whose first page is all that is wanted (the newest
        ones); honoured only when the server's `self` link does not show that it left `_sort` out."""
        query = {"_count": self.page_size, **params}
        page = self._get(f"{self.base_url}/{resource_type}", query)
        ignored = _ignored_scope(page, params)
        if ignored and _link(page, "next"):
            raise FhirError(
                f"the server ignored the search parameter '{ignored[0]}' and has more than one page "
                "(other patients' data is not paged through)"
            )
        executed = _executed(page)
        if first_page and "_sort" in params and (executed is None or "_sort" in executed):
            return replace(self.collect(page, resource_type, max_pages=1), scope_ignored=ignored)
        return replace(self.collect(page, resource_type), scope_ignored=ignored)

    def collect(
        self,
        page: dict[str, Any],
        resource_type: str,
        include_first: bool = True,
        max_pages: int | None = None,
    ) -> SearchResult:
        """The matches of a searchset Bundle already in hand and of its `next` pages (only of the
        `next` pages when `include_first` is false: the caller already has the first page's);
        with `max_pages`, no more pages than that (the rest are left, not an error)."""
        matches: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        for pages_read in range(1, (max_pages or self.max_pages) + 1):
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
            if not next_url or pages_read == max_pages:
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


def _executed(bundle: dict[str, Any]) -> dict[str, list[str]] | None:
    """The parameters the search's `self` link shows the server executed (None: no readable self
    link, which proves nothing either way)."""
    self_url = _link(bundle, "self")
    if not self_url:
        return None
    try:
        return parse_qs(urlsplit(self_url).query)
    except ValueError:
        return None


def _ignored_scope(bundle: dict[str, Any], params: Mapping[str, Any]) -> tuple[str, ...]:
    """The patient-scope parameters a search's `self` link shows the server did not execute (CDS
    Hooks advice: check the self link). The caller must then keep only this patient's resources."""
    executed = _executed(bundle)
    if executed is None:
        return ()
    return tuple(name for name in PATIENT_SCOPE_PARAMS if name in params and name not in executed)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
