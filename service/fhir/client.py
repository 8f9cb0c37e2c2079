"""A small FHIR R4 REST client for the EHR's server: reads and paged searches with a bearer token.

Sends `Authorization: Bearer` on every call (including `next` pages) but refuses to follow a
redirect, or a link outside the FHIR base URL the call names (another origin, or another path on
the same one: one host may serve several tenants), so the EHR's token never leaves that server. A
search whose `self` link shows that the server dropped the patient parameter is reported as such
when it fits on one page (the caller keeps only this patient's resources) and refused when it does
not: other patients' data is never paged through. Every failure becomes a `FhirError` with a
short, token-free reason that the engine can show as "could not be checked"; where it repeats what
the server wrote, only a short marked excerpt (`server_words`).

Each request is bounded in time and size: it ends at the call's deadline however slowly the server
answers (the transport's `Cutoff` cuts the connection), its body is streamed and given up once it
passes `max_response_bytes`, and whatever happens on the way (no route, closed port, timeout) reads
the same: "the FHIR server did not answer". A read (`GET Type/id`) must answer with that very
resource; anything else (a Bundle, another type, another id) counts as a failed read.

Answers are read by `strict_json.loads_exact`, numbers kept as written: an order read here (a
dispatched one, the order an Appointment is based on, an open order searched at encounter-start)
goes back to the EHR in an `update` action, which may not change its decimals. Their depth is told
by writing the decoded answer with orjson (`strict_json.document_within`, the bound the strict
reading of a hook's body uses), at about half the cost of a pass over its brackets.

With `batch`, several searches and reads go out as one FHIR batch (service/fhir/batch.py); each
entry of its answer is then judged exactly as the answer of its own request would be.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit

import orjson
import requests
import urllib3
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri

from service.cutoff import Cutoff, Watch
from service.fhir.batch import UNREADABLE, BatchRefusals, EntryAnswer, batch_body, entry_answers
from service.fhir.outbound import NO_ANSWER, normalise_base, origin, under_normalised_base
from service.fhir.transport import guarded_session
from service.references import URL_SAFE_ID
from service.settings import FhirSettings
from service.shapes import dicts
from service.strict_json import as_written, document_within, dumps, loads_exact

MAX_PAGES = FhirSettings.max_pages
PAGE_SIZE = FhirSettings.page_size
MAX_RESPONSE_BYTES = FhirSettings.max_response_bytes
MAX_CALL_BYTES = FhirSettings.max_call_bytes
CHUNK_BYTES = 64 * 1024
MAX_RETRY_AFTER_SECONDS = 1.0
USER_AGENT = "idds-crd"
PATIENT_SCOPE_PARAMS = ("patient", "subject", "beneficiary")
READ_REFERENCE = re.compile(rf"([A-Za-z]+)/({URL_SAFE_ID})")
OUT_OF_TIME = "no answer within the hook's time budget"
TOO_LARGE = "the FHIR server's answer was too large"
TOO_MUCH = "the FHIR server's answers to this call were too large together"
WRONG_RESOURCE = "the FHIR server answered with another resource than the one asked for"
NOT_A_REFERENCE = "not a reference to a resource (Type/id)"
NOT_JSON = "response is not JSON"
NOT_FHIR = "response is not a FHIR resource"
TOO_DEEP = "the FHIR server's answer was nested too deeply"
# FHIR resources nest a few dozen levels at most (a Bundle's entry, a QuestionnaireResponse's items);
# deeper ones could not be copied into cards or written back out (orjson writes 255 levels).
MAX_ANSWER_DEPTH = 100
MIN_PAGE_SIZE = 20
BATCH_LEVELS = 3  # a batch-response wraps each entry's resource in Bundle.entry[].resource
# A batch answered so says the server does not take batches (remembered): it does not exist there
# (404, 405, 501), is not understood (400, 406, 415, 422), redirected, or answered with no batch.
REFUSING_STATUSES = frozenset({400, 404, 405, 406, 415, 422, 501})
REFUSING_REASONS = frozenset({NOT_JSON, NOT_FHIR})
# A FHIR name (a resource type) a reason repeats as the server wrote it; other text only in part.
FHIR_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
MAX_SERVER_WORDS = 40
QUOTATION_MARKS = frozenset("“”")
JSON_KINDS = {dict: "an object", list: "an array", bool: "true or false", type(None): "nothing"}


def server_words(value: Any) -> str:
    """What a FHIR server wrote where the service expected something else, as a reason (shown in a
    card, logged, audited) may repeat it: a FHIR name as it is; any other text as its first
    `MAX_SERVER_WORDS` characters in quotation marks, cut with an ellipsis, control and format
    characters (and quotation marks) escaped; anything else by its JSON kind. So the server's words
    can neither flood a card or a log line nor read as the service's own, or the payer's (security
    review S-3)."""
    if not isinstance(value, str):
        return JSON_KINDS.get(type(value), "a number")
    if FHIR_NAME.fullmatch(value):
        return value
    shown = "".join(
        c if c.isprintable() and c not in QUOTATION_MARKS else c.encode("unicode_escape").decode("ascii")
        for c in value[:MAX_SERVER_WORDS]
    )
    return f"“{shown}{'…' if len(value) > MAX_SERVER_WORDS else ''}”"


class FhirError(Exception):
    """A FHIR call failed; `reason` is safe to show and log (no token, no body, and of the server's own
    words no more than `server_words` lets through)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the HTTP status, when the server answered with an error status


class NotAsked(FhirError):
    """A request not sent: the call was held back from its server (service/fhir/server_share.py), which
    was not asked at all; what it holds may well be had by calling again in a moment. Told apart from a
    failure by its class (`QueryOutcome.not_asked`), never by its reason's words."""


class NotSent(FhirError):
    """A query none of whose requests was sent: the call's time was up before its first (OUT_OF_TIME), or
    the client refused that first request itself (NOT_A_REFERENCE, a link to another server), so its bearer
    token went nowhere and it is no latency sample (`QueryOutcome.never_started`; review30g L2: a read of
    `Device/..` counted `used`). A request past the first that finds the time up fails as a plain
    FhirError: the query's first had gone with the token."""


class CutAtDeadline(FhirError):
    """A request still going when the call's deadline came, cut there (NO_ANSWER, by the cutoff or its
    timeout): its query's time until the cut is a latency sample of its own (`QueryOutcome.cut`, the FHIR
    query metric's outcome `cut`), the slow tail the histogram never showed (review30g L3). Told apart from
    a server that hung up by its class, never by its reason's words."""


class BatchRefused(FhirError):
    """The server answered a batch, but not with a usable `batch-response`: ask it query by query."""


class SessionPool:
    """One guarded `requests.Session` per worker thread, reused across hook calls (connection
    reuse), and the one `Cutoff` that ends their requests at their deadlines.

    Sessions carry no credentials: the token travels in each request's headers only, and no cookie
    is ever kept (one call's cookie must not reach the next call's requests). The client sends
    through the session's guarded adapter itself (`adapter`): a session's own request path (merging
    settings, cookies, redirects) costs more CPU than the request, and none of it is wanted here.
    `batch_refusals` remembers the servers that did not take a batch lately.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self.cutoff = Cutoff()
        self.batch_refusals = BatchRefusals()

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
    more: bool = False  # read to the `max_pages` asked, the server has a next page still


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
        batch: bool = False,
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
        self._batch = batch
        self._home = normalise_base(self.base_url)
        self._batch_key = self._home or self.base_url
        self._received = 0  # bytes of every answer of this call so far (pages and parallel queries)
        self._received_lock = threading.Lock()
        self._headers = {"Accept": "application/fhir+json", "User-Agent": USER_AGENT}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"
        # set just before a request carrying the token is sent (`_exchange`): the call's FhirUse's, which
        # reads the token `used` from it (`FhirUse.watch`); shared by the `bounded` copies
        self.token_went: threading.Event | None = None
        self._held_back: str | None = None
        self._admission: Callable[[float | None], str | None] | None = None
        self.refused = 0  # requests not sent because the client was held back

    def bounded(self, deadline: float) -> FhirClient:
        """This client with its requests ending by `deadline` too (the call's deadline still holding): each
        request's timeout is cut to it, so that a request the caller stops waiting for at `deadline` ends
        then, its pool worker, server slot and connection freed, not held to the per-request timeout
        (the encounter hooks' Encounter read, `fhir.encounter_read_seconds`). It shares the sessions, the
        admission and the lock; its answers are counted against what this call had received when it was
        made; the requests it holds back are its own to count (`refused`, from 0: the caller adds them)."""
        bounded = copy.copy(self)
        bounded._deadline = deadline if self._deadline is None else min(self._deadline, deadline)
        bounded.refused = 0
        return bounded

    def ask_through(self, admission: Callable[[float | None], str | None]) -> None:
        """Before its first request, let `admission` (given the deadline) say whether the server may
        be asked: a reason it gives holds the client back (service/fhir/server_share.py)."""
        self._admission = admission

    def refusal(self) -> str | None:
        """None when the server may be asked, else why not; settles the admission if it was not yet."""
        if self._held_back is None and self._admission is not None:
            self._held_back = self._admission(self._deadline)
        return self._held_back

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r})"

    def remaining(self) -> float:
        """Seconds left for this call's FHIR work (raises once the deadline has passed, or when held
        back); the first request settles the client's admission."""
        if (refusal := self.refusal()) is not None:
            self.refused += 1
            raise NotAsked(refusal)
        if self._deadline is None:
            return self._timeout
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FhirError(OUT_OF_TIME)
        return min(self._timeout, left)

    @property
    def batches(self) -> bool:
        """Whether several queries go to this server as one batch (asked for, and not refused lately)."""
        return self._batch and not self._sessions.batch_refusals.refused(self._batch_key)

    def _exchange(
        self, url: str, body: bytes | None, limit: int | None, first: bool = False
    ) -> tuple[int, bytes, float | None]:
        """One GET (a POST of `body`) within the time left: (status, the body of a 200, the
        Retry-After of a 429). A GET's answer is bounded by `max_response_bytes` and counted toward
        `max_call_bytes` as it streams; a POST's by `limit`, counted by the caller once it is read.
        `first`: the query's first request, which fails NotSent when the time is up before it."""
        if not under_normalised_base(url, self._home):
            raise (NotSent if first else FhirError)("refused a link to another server")
        try:
            seconds = self.remaining()
        except NotAsked:
            raise
        except FhirError as exc:
            raise (NotSent if first else FhirError)(exc.reason) from None
        with self._sessions.cutoff.until(time.monotonic() + seconds) as watch:
            if self.token_went is not None and "Authorization" in self._headers:
                self.token_went.set()  # the token goes now, whatever happens to the request next
            try:
                response = self._sessions.adapter().send(
                    self._prepared(url, body), stream=True, timeout=seconds, verify=True, proxies={}
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                raise self._no_answer() from None
            with response:
                if response.status_code != 200:
                    return response.status_code, b"", _retry_after(response)
                if body is None:
                    return 200, self._body(response, watch, self.max_response_bytes, counted=True), None
                cap = self.max_response_bytes if limit is None else limit
                return 200, self._body(response, watch, cap, counted=False), None

    def _prepared(self, url: str, body: bytes | None = None) -> requests.PreparedRequest:
        """A GET (a POST of a FHIR JSON `body`) as `requests` would send it, built directly: the
        URL, this client's headers, no cookies."""
        prepared = requests.PreparedRequest()
        prepared.url = requote_uri(url)
        prepared.headers = CaseInsensitiveDict(self._headers)
        prepared.hooks = {"response": []}
        prepared.method = "GET" if body is None else "POST"
        prepared.body = body
        if body is not None:
            prepared.headers["Content-Type"] = "application/fhir+json"
            prepared.headers["Content-Length"] = str(len(body))
        return prepared

    def _body(self, response: requests.Response, watch: Watch, limit: int, counted: bool) -> bytes:
        """The body, streamed: given up past `limit` bytes or once the watch has fired (`counted`:
        each chunk counted toward `max_call_bytes` as it comes)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FhirError(TOO_LARGE)
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                body += chunk
                if len(body) > limit:
                    raise FhirError(TOO_LARGE)
                if counted:
                    self._count(len(chunk))
                if watch.fired or time.monotonic() > watch.deadline:
                    break
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            raise self._no_answer() from None
        if watch.fired or time.monotonic() > watch.deadline:
            raise self._no_answer()
        return bytes(body)

    def _no_answer(self) -> FhirError:
        """The failure of a request that got no (whole) answer: cut at the call's deadline when that has
        come (`CutAtDeadline`), else the server's or the network's doing."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return CutAtDeadline(NO_ANSWER)
        return FhirError(NO_ANSWER)

    def _count(self, received: int) -> None:
        """Add to the bytes this call has received; FhirError once they pass `max_call_bytes` (a
        server answering many pages, each under the per-answer cap, cannot hold more than that)."""
        with self._received_lock:
            self._received += received
            if self._received > self.max_call_bytes:
                raise FhirError(TOO_MUCH)

    def _get(self, url: str, first: bool = False) -> dict[str, Any]:
        return self._answer(url, first=first)[0]

    def _answer(
        self, url: str, body: bytes | None = None, limit: int | None = None, first: bool = False
    ) -> tuple[dict[str, Any], int]:
        """The FHIR resource a GET (a POST of `body`) answered with, and its size in bytes (`first`: the
        query's first request, `_exchange`; a retry after a 429 is not)."""
        status, raw, wait = self._exchange(url, body, limit, first)
        if status == 429 and wait is not None and wait <= min(MAX_RETRY_AFTER_SECONDS, self.remaining()):
            time.sleep(wait)
            status, raw, wait = self._exchange(url, body, limit)
        if 300 <= status < 400:
            raise FhirError(f"refused to follow a redirect (HTTP {status})", status)
        if status != 200:
            raise FhirError(f"HTTP {status}", status)
        try:
            answer = loads_exact(raw)  # refuses NaN, Infinity and numbers beyond a double
        except (ValueError, RecursionError):
            raise FhirError(NOT_JSON) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("resourceType"), str):
            raise FhirError(NOT_FHIR)
        if not document_within(answer, raw, MAX_ANSWER_DEPTH + (0 if body is None else BATCH_LEVELS)):
            raise FhirError(TOO_DEEP)
        return answer, len(raw)

    def read(self, reference: str) -> dict[str, Any] | None:
        """GET [base]/Type/id: that very resource; None when the server says it does not exist
        (404/410). An answer that is another resource (a Bundle, another type or id) is a failure."""
        path = self.read_path(reference)
        if path is None:
            raise NotSent(NOT_A_REFERENCE)  # refused here, before any request: nothing went
        try:
            resource = self._get(f"{self.base_url}/{path}", first=True)
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return _the_one(path, resource)

    @staticmethod
    def read_path(reference: str) -> str | None:
        """`Type/id` of a reference that names one resource on this server; None otherwise."""
        wanted = READ_REFERENCE.fullmatch(reference.lstrip("/"))
        return None if wanted is None else wanted[0]

    def search_path(self, resource_type: str, params: Mapping[str, Any]) -> str:
        """The search as a URL relative to the base, as `search` sends it (`_count` first): what
        `urlencode(..., doseq=True)` writes, which needs no requoting."""
        parts = [
            _query_part(str(name), str(value))
            for name, given in {"_count": self.page_size, **params}.items()
            for value in (given if isinstance(given, list | tuple) else [given])
        ]
        return f"{resource_type}?{'&'.join(parts)}"

    def batch(self, relative_urls: list[str]) -> list[EntryAnswer]:
        """One batch of GETs (`Type?params` from `search_path`, `Type/id` from `read_path`): the
        answer's entries, in order. `BatchRefused` (and the server remembered as refusing) when it
        answered so that it does not take batches (`REFUSING_STATUSES`, a redirect, no batch-response
        of as many entries); `BatchRefused` alone (nothing remembered) when the answer grew past
        what its queries could answer one by one (`max_response_bytes` each) or what is left of
        `max_call_bytes`, counting nothing toward it, or nested deeper than their own answers may
        be. Any other failure (no answer, out of time, 401, 403, 429, 5xx) is a FhirError that
        stands for every query of the batch."""
        with self._received_lock:
            left = self.max_call_bytes - self._received
        limit = max(min(left, len(relative_urls) * self.max_response_bytes), 0)
        try:
            answer, size = self._answer(self.base_url, batch_body(relative_urls), limit, first=True)
        except FhirError as exc:
            if exc.reason in (TOO_LARGE, TOO_DEEP):  # an entry's own answer would be: asked alone
                raise BatchRefused(exc.reason) from None
            if exc.reason in REFUSING_REASONS or exc.status in REFUSING_STATUSES or _redirect(exc.status):
                self._sessions.batch_refusals.remember(self._batch_key)
                raise BatchRefused(exc.reason, exc.status) from None
            raise
        self._count(size)
        entries = entry_answers(answer, len(relative_urls))
        if entries is None:
            self._sessions.batch_refusals.remember(self._batch_key)
            raise BatchRefused(UNREADABLE)
        if size > self.max_response_bytes:
            return [_within(entry, self.max_response_bytes) for entry in entries]
        return entries

    def read_answered(self, reference: str, answer: EntryAnswer) -> dict[str, Any] | None:
        """A read's batch entry, judged as `read` judges its own answer."""
        path = self.read_path(reference)
        if path is None:
            raise FhirError(NOT_A_REFERENCE)
        if answer.status in (404, 410):
            return None
        return _the_one(path, _answered(answer))

    def search_answered(
        self, resource_type: str, params: Mapping[str, Any], answer: EntryAnswer, first_page: bool = False
    ) -> SearchResult:
        """A search's batch entry (its first page), then its `next` pages, as `search` does."""
        return self._from_first_page(lambda: _answered(answer), resource_type, params, first_page)

    def search(self, resource_type: str, params: Mapping[str, Any], first_page: bool = False) -> SearchResult:
        """All matches of a search, following `next` links verbatim (under the base) up to `max_pages`.
        `first_page`: a search with `_sort` whose first page is all that is wanted (the newest
        ones, as many as its `_count`: more pages where the server answers fewer a page,
        `_pages_asked`, or where that page was too large, `_smaller_pages`); honoured only when the
        server's `self` link shows it sorted (FHIR search: a server returns the parameters it used
        there, and may ignore `_sort`): with no `self` link every page is read."""
        return self._search(resource_type, params, first_page, None, first=True)

    def _search(
        self,
        resource_type: str,
        params: Mapping[str, Any],
        first_page: bool,
        asked: int | None,
        first: bool = False,
    ) -> SearchResult:
        """`search`; `asked`: the newest a first-page search wants, where its `_count` is smaller (its
        pages asked smaller than the first, too large); `first`: its page one is the query's first request
        (not when asked again in smaller pages)."""
        url = f"{self.base_url}/{self.search_path(resource_type, params)}"
        return self._from_first_page(
            lambda: self._get(url, first=first), resource_type, params, first_page, asked
        )

    def _from_first_page(
        self,
        first: Callable[[], dict[str, Any]],
        resource_type: str,
        params: Mapping[str, Any],
        first_page: bool,
        asked: int | None = None,
    ) -> SearchResult:
        """The search from its first page (`first`), searched again in smaller pages when that page
        was too large."""
        try:
            page = first()
        except FhirError as exc:
            smaller = self._smaller_pages(exc, params, first_page)
            if smaller is None:
                raise
            wanted = asked if asked is not None else count_of(params)
            return self._search(resource_type, smaller, first_page, wanted)
        return self._searched(page, resource_type, params, first_page, asked)

    def _smaller_pages(
        self, failure: FhirError, params: Mapping[str, Any], first_page: bool = False
    ) -> dict[str, Any] | None:
        """The search asking for pages a fifth of `page_size` (of its own `_count`, for a sorted
        first-page search: the newest it wants are then read on in such pages, review27f C), at
        least `MIN_PAGE_SIZE`, when its first page was too large (large resources); None when it
        asked its own `_count` otherwise, pages no smaller, or was refused else."""
        if failure.reason != TOO_LARGE:
            return None
        if "_count" not in params:
            size = max(self.page_size // 5, MIN_PAGE_SIZE)
            return {**params, "_count": size} if size < self.page_size else None
        count = count_of(params)
        size = max(count // 5, MIN_PAGE_SIZE)
        if not (first_page and "_sort" in params) or size >= count:
            return None
        return {**params, "_count": str(size)}

    def _searched(
        self,
        page: dict[str, Any],
        resource_type: str,
        params: Mapping[str, Any],
        first_page: bool,
        asked: int | None = None,
    ) -> SearchResult:
        executed = _executed(page)
        ignored = _ignored_scope(executed, params)
        if ignored and _link(page, "next"):
            raise FhirError(
                f"the server ignored the search parameter '{ignored[0]}' and has more than one page "
                "(other patients' data is not paged through)"
            )
        if first_page and "_sort" in params and executed is not None and "_sort" in executed:
            wanted = asked if asked is not None else count_of(params)
            pages = _pages_asked(page, wanted)
            result = self.collect(page, resource_type, max_pages=pages, newest=wanted or None)
            if pages > 1 and result.more and len(result.resources) < wanted:
                raise FhirError(
                    f"the server's pages held only {len(result.resources)} of the newest {wanted} "
                    f"asked after {pages} pages"
                )
            return replace(result, scope_ignored=ignored)
        return replace(self.collect(page, resource_type), scope_ignored=ignored)

    def collect(
        self,
        page: dict[str, Any],
        resource_type: str,
        max_pages: int | None = None,
        newest: int | None = None,
    ) -> SearchResult:
        """The matches of a searchset Bundle already in hand (a search's first page) and of its `next`
        pages; with `max_pages`, no more pages than that (the rest are left, not an error). `newest`: a
        sorted first-page search, which wants its first `newest` matches: it is read to that many where
        they are more than the cap below (the pain scores' newest page, 5,000 past the recent ones at its
        longest: score_window.newest_first), and what its pages hold past the cap is left, not a failure
        (its last page holding more than it wants, a server answering more a page than asked: review28c).
        A search is read to `max_pages` pages of `page_size` at most, however the server pages it: one that
        gives more on fewer pages (ignoring `_count`) fails as one with more pages does, before its
        resources cost the call any more time. A search the server answered in pages smaller than
        `page_size` asked (it clamps `_count`; no `max_pages`) has pages the size it chose: as many of
        them are read as hold what `max_pages` pages of `page_size` do (a page of fewer than
        `MIN_PAGE_SIZE` entries counted as that many). Else a server paging at 10 gave a search of more
        than 100 results "more than 10 pages" (review21b M1; an EHR's prefetch paged at 10 is read by the
        key's own search, service/fhir/gather.py, so a chart of 200 Conditions failed where following
        the EHR's pages, which were read so, had read it whole)."""
        matches: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        most = max(self.page_size * self.max_pages, newest or 0)
        limit = max_pages or self.max_pages
        entries_one = len(dicts(page.get("entry")))
        if max_pages is None and entries_one < self.page_size:
            limit = max(limit, -(-most // max(entries_one, MIN_PAGE_SIZE)))
        for pages_read in range(1, limit + 1):
            if page.get("resourceType") != "Bundle":
                raise FhirError(f"search returned {server_words(page.get('resourceType'))}, not a Bundle")
            for entry in dicts(page.get("entry")):
                resource = entry.get("resource")
                if not isinstance(resource, dict):
                    continue
                if resource.get("resourceType") == resource_type:
                    matches.append(resource)
                elif resource.get("resourceType") != "OperationOutcome":
                    included.append(resource)
            if newest is not None:
                del matches[most:]  # the oldest of a sorted search past its cap: not the newest it wants
            if len(matches) > most or len(included) > most:  # matches and what they _include, each
                raise FhirError(f"more than {most} results")
            next_url = _link(page, "next")
            if not next_url or pages_read == max_pages:
                return SearchResult(matches, included, pages_read, more=bool(next_url))
            if pages_read == limit:
                break
            page = self._get(next_url)
        raise FhirError(f"more than {limit} pages")


def _query_part(name: str, value: str) -> str:
    return f"{_quoted(name)}={_quoted(value)}"


UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quoted(text: str) -> str:
    """`quote_plus(text)`; an ASCII text (a search's codes, dates, ids) by replacing each of the few
    distinct characters it must escape, `%` first and the space (as `+`) last, instead of quoting
    it byte by byte."""
    if not text.isascii():
        return quote_plus(text)
    escaped = set(text) - UNRESERVED
    if not escaped:
        return text
    if "%" in escaped:
        text = text.replace("%", "%25")
    for character in escaped - {"%", " "}:
        text = text.replace(character, f"%{ord(character):02X}")
    return text.replace(" ", "+") if " " in escaped else text


def _the_one(path: str, resource: dict[str, Any]) -> dict[str, Any]:
    """The resource a read of `Type/id` answered, when it is that very resource."""
    resource_type, _, resource_id = path.partition("/")
    if resource.get("resourceType") != resource_type or resource.get("id") != resource_id:
        raise FhirError(WRONG_RESOURCE)
    return resource


def _answered(answer: EntryAnswer) -> dict[str, Any]:
    """The resource of a successful batch entry, or the FhirError its own request would have given."""
    if answer.status != 200:
        raise FhirError(f"HTTP {answer.status}", answer.status)
    if answer.too_large:
        raise FhirError(TOO_LARGE)
    if answer.resource is None or not isinstance(answer.resource.get("resourceType"), str):
        raise FhirError(NOT_FHIR)
    return answer.resource


def _within(answer: EntryAnswer, limit: int) -> EntryAnswer:
    """The entry, or the entry marked too large when its resource would not have been taken as the
    answer to its own request (more than `limit` bytes; or deeper than can be measured). Measured as
    orjson writes it, or as `json` does where orjson cannot (an integer past 64 bits, which is no
    reason to drop the entry: its own answer is read exactly)."""
    if answer.resource is None:
        return answer
    try:
        size = len(orjson.dumps(answer.resource, default=as_written))
    except orjson.JSONEncodeError:
        try:
            size = len(dumps(answer.resource).encode())
        except RecursionError:
            size = limit + 1
    return answer if size <= limit else replace(answer, resource=None, too_large=True)


def _redirect(status: int | None) -> bool:
    return status is not None and 300 <= status < 400


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in dicts(bundle.get("link")):
        if link.get("relation") == relation and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def count_of(params: Mapping[str, Any]) -> int:
    """A search's `_count`, 0 when it has none it reads as a number (the one reading: the client's, and
    the gather's of the newest page it asked for, service/fhir/gather.py `_read_on`)."""
    try:
        return int(params.get("_count", 0))
    except (TypeError, ValueError):
        return 0


def _pages_asked(page: dict[str, Any], asked: int) -> int:
    """How many pages of a sorted search hold the first `asked` matches it wants, its first page
    `page` in hand: one, unless the server answered fewer entries a page than asked (FHIR lets it:
    sekmet-fhir pages at most 1000, HAPI's starter 200; or the client asked smaller pages,
    `_smaller_pages`) and has a next page; then as many pages of that size (at least `MIN_PAGE_SIZE`)
    as hold `asked`. Otherwise a first page asked to hold the recent pain scores and 50 older ones
    past them held only recent ones (score_window.newest_first)."""
    given = len(dicts(page.get("entry")))
    if given >= asked or not _link(page, "next"):
        return 1
    return -(-asked // max(given, MIN_PAGE_SIZE))


def _executed(bundle: dict[str, Any]) -> frozenset[str] | None:
    """The names of the parameters the search's `self` link shows the server executed, those with
    a value as `parse_qs` reads them (their values, long code lists, are not decoded); None: no
    readable self link, which proves nothing either way."""
    self_url = _link(bundle, "self")
    if not self_url:
        return None
    try:
        query = urlsplit(self_url).query
    except ValueError:
        return None
    return frozenset(
        unquote_plus(name) for name, _, value in (p.partition("=") for p in query.split("&")) if value
    )


def _ignored_scope(executed: frozenset[str] | None, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The patient-scope parameters a search's `self` link shows the server did not execute (CDS
    Hooks advice: check the self link). The caller must then keep only this patient's resources."""
    if executed is None:
        return ()
    return tuple(name for name in PATIENT_SCOPE_PARAMS if name in params and name not in executed)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
