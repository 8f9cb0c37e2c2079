"""Logs as JSON lines, and one line per HTTP request with its request id, outcome and latency.

Every log record becomes one JSON object (time, level, logger, message, the request id of the
request being handled, and any `extra` fields), so a log pipeline can follow one call across
lines. Each request gets an id: the caller's `X-Request-Id` when it is a safe token of at most 128
characters, else a fresh uuid; it is echoed in the response header. After the response, one INFO
line records method, path, status and latency, and for a hook call the service, hookInstance and
outcome the route noted with `annotate` (refused calls included). Lines carry ids, never
bodies, headers or tokens: a record's fields are what the code passed, nothing is taken from the
request wholesale, and the path's credentials (`;jsessionid=…`, a `?access_token=…` percent-encoded
into the path) are taken out of it (`redacted`, which `service.whole_requests` applies to the
request text a refusal quotes too).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response

from service.arrival import arrived_at
from service.flask_context import current_globals, current_request
from service.log_buffer import DEFAULT_BUFFER_BYTES, BufferedLogHandler

REQUEST_ID_HEADER = "X-Request-Id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
ACCESS_LOGGER = "idds_crd.request"
_FIELDS_KEY = "idds_crd_log_fields"
_STARTED_KEY = "idds_crd_started"
_QUEUED_KEY = "idds_crd_queued"
_current_request_id: ContextVar[str | None] = ContextVar("idds_crd_request_id", default=None)
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

log = logging.getLogger(ACCESS_LOGGER)

# What a request's text may carry of a credential (the part of a refused request gunicorn quotes, the
# path logged): a JWT (base64url runs joined by dots, the first `{"` encoded as `eyJ`); whatever follows
# an HTTP authentication scheme's name (Bearer, Basic, ...); the rest of a header line whose name says
# it holds one (Authorization, Cookie, X-Api-Key, ...: gunicorn quotes a line missing its colon whole);
# the value of a query or path parameter whose name says so (access_token, code, jsessionid, ...: a
# request line gunicorn refuses is quoted whole); the user information of a URL
# (`http://user:password@host/`). Possessive, and each begun only where a run may begin, so each is
# found in time linear in the text (a header line may be 8 KiB of the sender's choosing).
CREDENTIAL_WORDS = ("auth", "cookie", "token", "key", "secret", "session", "pass", "pwd", "code", "assertion")
AUTH_SCHEMES = ("bearer", "basic", "digest", "dpop", "negotiate", "token", "mac", "hoba", "ntlm")
JWT_RUN = re.compile(r"[A-Za-z0-9_.=-]++")
SCHEME_CREDENTIAL = re.compile(rf"(?i)\b({'|'.join(AUTH_SCHEMES)})[\s:=]++[^\s'\"]++")
# a header line: its name, then the rest from the first character no name holds (a colon, or in a line
# gunicorn refuses anything else: `Cookie,session=…`, `X-Api-Key/…`)
HEADER_LINE = re.compile(r"^(\s*+[!#$%&'*+.^_`|~0-9A-Za-z-]++)([^!#$%&'*+.^_`|~0-9A-Za-z-].*+)")
URL_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://)[^/\s'\"@?#]*+@")  # `http://u:p@`
QUERY_PARAMETER = re.compile(r"([?&;][^=&;\s'\"#?]++=)([^&;\s'\"#]++)")  # `?name=`, its value
CREDENTIAL_NAME = re.compile("(?i)" + "|".join(CREDENTIAL_WORDS))
SEPARATOR = re.compile(r"[\s:=]")  # what follows a scheme's name
REMOVED = "[removed]"
# an id of lowercase words and numbers of at most 16 characters joined by hyphens: no token
SLUG = re.compile(r"[a-z0-9]{1,16}+(?:-[a-z0-9]{1,16}+)*+")


def redacted(text: str) -> str:
    """`text` of a request (a line, a path) with any credential in it replaced by `[removed]`, each
    rule's name or scheme kept: never a token in a log."""
    text = HEADER_LINE.sub(lambda m: f"{m.group(1)} {REMOVED}" if _credential_name(m) else m.group(), text)
    return _credentials_within(text)


def _credentials_within(text: str) -> str:
    """`redacted`'s rules but the header line's: a URL's user information, a credential parameter's
    value, what follows an authentication scheme, a JWT or a run like one."""
    if "://" in text:  # each rule only where it can match: a path is redacted on every request
        text = URL_USERINFO.sub(lambda m: f"{m.group(1)}{REMOVED}@", text)
    if "=" in text:
        text = QUERY_PARAMETER.sub(
            lambda m: f"{m.group(1)}{REMOVED}" if _credential_name(m) else m.group(), text
        )
    if SEPARATOR.search(text):
        text = SCHEME_CREDENTIAL.sub(lambda m: f"{m.group(1)} {REMOVED}", text)
    return JWT_RUN.sub(lambda m: REMOVED if _credential_like(m.group()) else m.group(), text)


def _credential_name(match: re.Match[str]) -> bool:
    """Whether the name a header line or a query parameter begins with says it holds a credential
    (`Authorization`, `Cookie`, `X-Api-Key`, `access_token`, `code`, ...: `CREDENTIAL_WORDS`)."""
    return CREDENTIAL_NAME.search(match.group(1)) is not None


def _credential_like(run: str) -> bool:
    """Whether a base64url run may be a credential: a JWT (dotted, its first `{"` encoded as `eyJ`), the
    rest of one cut across two header lines (dotted, as long as half a signature: review24b R1), or a
    run as long as an opaque token's 256 bits, unless it is short lowercase words joined by hyphens (a
    published Questionnaire's id, `kpwa-implanted-infusion-pumps-documentation` and its parts'
    `…-c79b9095-1`, was logged and quoted as `[removed]`: review25a; 43 random base64url characters
    hold no capital letter once in 10^10)."""
    return ("." in run and ("eyJ" in run or len(run) >= 32)) or (len(run) >= 43 and not SLUG.fullmatch(run))


# What `json.dumps(entry, ensure_ascii=False, default=str)` writes, with the encoder built once: dumps
# builds one per call when given any option, a third of formatting a request's line (perf26b)
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _current_request_id.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _LINE_ENCODER.encode(entry)

    def formatException(self, ei: Any) -> str:
        return _traceback_redacted(super().formatException(ei))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class TextLineFormatter(logging.Formatter):
    """Plain text, one line per record: the message's control characters (a newline a caller
    percent-encoded into a path, say) are escaped, so no caller can write a line of their own into
    the log (attack20 L4). A traceback the service logs keeps its lines, each indented
    (`TRACEBACK_INDENT`): an exception's text may hold a caller's words, newlines and all, and an
    indented line never passes for a record of its own, which starts with its time (review20 L5)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), record.message)
        return self._style.format(_with_message(record, message))

    def formatException(self, ei: Any) -> str:
        return _indented(_traceback_redacted(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


TRACEBACK_INDENT = "    | "


def _traceback_redacted(text: str) -> str:
    """A traceback with any credential its lines hold replaced, line by line: an exception's message may
    quote what a caller sent (review31d). Not by the header line's rule, which would take "KeyError: …"
    for a header whose name says it holds a key and remove the message."""
    return "\n".join(_credentials_within(line) for line in text.splitlines())


def _indented(text: str) -> str:
    return "\n".join(TRACEBACK_INDENT + line for line in text.splitlines())


def _with_message(record: logging.LogRecord, message: str) -> logging.LogRecord:
    copied = logging.makeLogRecord(vars(record))
    copied.message = message
    return copied


def configure_logging(
    log_format: str = "json", level: str = "INFO", buffer_bytes: int = DEFAULT_BUFFER_BYTES
) -> None:
    """Send the process's logs to stderr, as JSON lines (`json`) or as plain text (`text`), by a thread
    of their own: a reader of stderr that stops reading holds no request (`service.log_buffer`; up to
    `buffer_bytes` of lines wait for it, further ones are dropped and counted)."""
    handler = BufferedLogHandler(sys.stderr, buffer_bytes)
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(TextLineFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a warning, too, is a line of the log: never written to stderr directly
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its access line repeats ours


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a safe token, else a fresh one."""
    if header is not None and SAFE_REQUEST_ID.fullmatch(header):
        return header
    return str(uuid.uuid4())


def annotate(**fields: Any) -> None:
    """Fields for the request's log line (service, hookInstance, outcome, field, cards)."""
    current_globals().setdefault(_FIELDS_KEY, {}).update(fields)


def annotations() -> dict[str, Any]:
    """The fields noted so far for the request being handled (its outcome, service, ...)."""
    return dict(current_globals().get(_FIELDS_KEY, {}))


def install_request_log(app: Flask) -> None:
    """Give every request an id and log one line for it when its response is ready."""

    @app.before_request
    def start() -> None:
        noted = current_globals()
        setattr(noted, _STARTED_KEY, time.perf_counter())
        arrived = arrived_at()  # under `idds-crd serve`: from then until now it waited for a thread
        setattr(noted, _QUEUED_KEY, None if arrived is None else max(time.monotonic() - arrived, 0.0))
        setattr(noted, _FIELDS_KEY, {})
        _current_request_id.set(request_id_from(current_request().headers.get(REQUEST_ID_HEADER)))

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = _current_request_id.get() or request_id_from(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        incoming, noted = current_request(), current_globals()
        started = getattr(noted, _STARTED_KEY, None)
        fields: dict[str, Any] = {
            "method": incoming.method,
            "path": redacted(incoming.path)[:200],
            "status": response.status_code,
            **getattr(noted, _FIELDS_KEY, {}),
        }
        if started is not None:
            fields["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        queued = getattr(noted, _QUEUED_KEY, None)
        if queued is not None:
            fields["queued_ms"] = round(queued * 1000, 1)
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        log.log(level, "%s %s %d", incoming.method, fields["path"], response.status_code, extra=fields)
        return response

    @app.teardown_request
    def forget(_: BaseException | None) -> None:
        _current_request_id.set(None)
