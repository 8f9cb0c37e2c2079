"""Reading a POST body: the media type, the size, and strict JSON within bounds, or the 4xx saying why.

Bodies must be `application/json` (CDS Hooks) or `application/fhir+json` (what a FHIR-aware client
may label the same JSON), in UTF-8, not compressed (a `Content-Encoding` other than `identity`).
Anything else is 415: the media types a browser may send cross-origin without a CORS preflight
(form posts, text/plain) are thereby refused before the body is read. The body's size is bounded
by Flask's MAX_CONTENT_LENGTH (413, set from the settings); here its JSON must be strict
(`service.strict_json`) and within the nesting and string bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Request
from werkzeug.exceptions import HTTPException

from service.strict_json import JsonLimits, JsonRejected, loads_request

JSON_MEDIA_TYPES = ("application/json", "application/fhir+json")
# Orders and prefetched resources sit at most six levels down, so at least 32 levels are left inside
# every resource.
REQUEST_LIMITS = JsonLimits(max_depth=40, max_string=1024 * 1024)


@dataclass(frozen=True)
class InputRefused(Exception):
    """The body cannot be taken: answer `status` with an OperationOutcome of `code` at `field`."""

    status: int
    code: str
    message: str
    field: str = "$"


def _check_media_type(request: Request) -> None:
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype not in JSON_MEDIA_TYPES or charset not in ("utf-8", "utf8"):
        given = request.content_type or "none"
        raise InputRefused(
            415,
            "not-supported",
            f"the request body must be application/json in UTF-8 (Content-Type was {given[:100]})",
        )
    codings = [c.strip().lower() for c in request.headers.get("Content-Encoding", "").split(",")]
    if any(c not in ("", "identity") for c in codings):
        given = request.headers["Content-Encoding"]
        raise InputRefused(
            415,
            "not-supported",
            f"the request body must not be compressed (Content-Encoding was {given[:100]}): send it as it is",
        )


def _raw_body(request: Request) -> bytes:
    """The body's bytes. A body of declared length over the limit is refused (413) by Flask before
    this; a chunked one declares none, so one byte more than the limit is read to tell. A body the
    server cannot read as sent (a malformed chunk, one cut short) is the client's error (400)."""
    limit = request.max_content_length
    try:
        if request.content_length is not None or limit is None:
            return request.get_data(cache=False)
        raw = request.input_stream.read(limit + 1)
    except HTTPException:
        raise
    except Exception:  # the WSGI server's own reader: its exception types are its own
        raise InputRefused(
            400,
            "structure",
            "the request body could not be read: its chunked framing is broken or it ends early",
        ) from None
    if len(raw) > limit:
        raise InputRefused(413, "too-costly", f"the request body is larger than {limit} bytes")
    return bytes(raw)


def read_json_body(request: Request, limits: JsonLimits = REQUEST_LIMITS) -> Any:
    """The decoded body of `request`; InputRefused (415, 413 or 400) when it cannot be taken."""
    return decode_json_body(read_body(request), limits)


def read_body(request: Request) -> bytes:
    """The bytes of a JSON body, read whole; InputRefused (415 or 413) when they cannot be taken."""
    _check_media_type(request)
    return _raw_body(request)


def decode_json_body(raw: bytes, limits: JsonLimits = REQUEST_LIMITS) -> Any:
    """The body `read_body` read, decoded; InputRefused (400) when it is not strict JSON in bounds."""
    if not raw.strip():
        raise InputRefused(400, "required", "the request body is empty")
    try:
        return loads_request(raw, limits)
    except JsonRejected as exc:
        raise InputRefused(400, "structure", exc.message, exc.path) from None
    except RecursionError:
        raise InputRefused(400, "structure", "the request body ($) is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputRefused(400, "structure", f"the request body is not valid JSON: {exc}") from None
