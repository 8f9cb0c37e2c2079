"""Where an HTTP/1.1 request received so far ends, told from its bytes alone (RFC 9112 §6).

`idds-crd serve` reads each request whole before a thread takes it (service/whole_requests.py), so
that a client sending slowly holds no thread. That reader must know when a request is complete:
after the blank line ending its headers, plus `Content-Length` bytes, or through the last chunk
of a chunked body and its trailers. Anything it cannot frame with certainty (a malformed or
contradictory header, a body over the limit, headers longer than gunicorn accepts) is handed to
gunicorn's parser as it stands, which refuses it with the proper status; so this module never
judges a request, it only says when to stop waiting for more of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADERS_END = b"\r\n\r\n"
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass(frozen=True)
class Framing:
    """What the bytes received so far say about the first request among them.

    `ready`: hand the connection to a thread now, either because the whole request is here or
    because gunicorn's parser must see it as it is (`malformed`: to refuse it). `expects_continue`:
    the headers are complete and ask for `100 Continue` before the body is sent."""

    ready: bool
    malformed: bool = False
    expects_continue: bool = False


WAITING = Framing(ready=False)
COMPLETE = Framing(ready=True)
REFUSED = Framing(ready=True, malformed=True)


def frame(received: bytes | bytearray, max_header_bytes: int, max_body_bytes: int) -> Framing:
    """How far the first request in `received` has arrived. A body declared larger than
    `max_body_bytes` is not waited for (the application answers 413 on seeing its length)."""
    end = received.find(HEADERS_END)
    if end < 0:
        return REFUSED if len(received) > max_header_bytes else WAITING
    if end + len(HEADERS_END) > max_header_bytes:
        return REFUSED
    body_start = end + len(HEADERS_END)
    head = bytes(received[:end]).split(b"\r\n")
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    expects = False
    for line in head[1:]:
        name, colon, value = line.partition(b":")
        if not colon or name != name.strip():
            return REFUSED
        field = name.lower()
        if field == b"content-length":
            lengths.add(value.strip())
        elif field == b"transfer-encoding":
            codings += [c.strip().lower() for c in value.split(b",")]
        elif field == b"expect":
            expects = value.strip().lower() == b"100-continue"
    if codings:
        if lengths or codings[-1] != b"chunked":
            return REFUSED
        return _chunked(received, body_start, max_body_bytes, expects)
    if len(lengths) > 1:
        return REFUSED
    declared = lengths.pop() if lengths else b"0"
    if not declared.isdigit():
        return REFUSED
    length = int(declared)
    if length > max_body_bytes:
        return COMPLETE
    if len(received) - body_start >= length:
        return COMPLETE
    return Framing(ready=False, expects_continue=expects and _http11(head[0]))


def _http11(request_line: bytes) -> bool:
    """A 100-continue expectation counts in HTTP/1.1 only (RFC 9110 §10.1.1)."""
    return request_line.endswith(b" HTTP/1.1")


def _chunked(received: bytes | bytearray, position: int, max_body_bytes: int, expects: bool) -> Framing:
    """Follows the chunk sizes from `position`: complete after the last chunk and its trailers."""
    body = 0
    waiting = Framing(ready=False, expects_continue=expects)
    while True:
        line_end = received.find(b"\r\n", position)
        if line_end < 0:
            return REFUSED if len(received) - position > 1024 else waiting
        size_text = bytes(received[position:line_end]).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            return REFUSED
        size = int(size_text, 16)
        position = line_end + 2
        if size == 0:
            if received[position : position + 2] == b"\r\n":
                return COMPLETE
            trailers_end = received.find(HEADERS_END, position - 2)
            return COMPLETE if trailers_end >= 0 else waiting
        body += size
        if body > max_body_bytes:
            return COMPLETE  # the application reads up to its limit and answers 413
        position += size + 2
        if len(received) < position:
            return waiting
        if received[position - 2 : position] != b"\r\n":
            return REFUSED
