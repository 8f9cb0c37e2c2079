"""Where an HTTP/1.1 request received so far ends, told from its bytes alone (RFC 9112 §6).

`idds-crd serve` reads each request whole before a thread takes it (service/whole_requests.py), so
that a client sending slowly holds no thread. That reader must know when a request is complete:
after the blank line ending its headers, plus `Content-Length` bytes, or through the last chunk
of a chunked body and its trailers. Anything it cannot frame with certainty (a malformed or
contradictory header, a bare LF, headers longer than gunicorn accepts) is handed to gunicorn's
parser as it stands, which refuses it with the proper status; a body over the limit is handed over
once the application can tell (413) and the connection is then closed. So this module never judges
a request, it only says when to stop waiting for more of it.

A request may arrive a byte at a time, so a `RequestFramer` remembers how far it has looked and
examines each received byte a bounded number of times, however the request is cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADERS_END = b"\r\n\r\n"
CRLF = b"\r\n"
MAX_LINE_BYTES = 8190  # a chunk size line with its extensions, as gunicorn's limit_request_field_size
READ_STEP = 1024  # gunicorn's Body.read asks its reader for at least this much more
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
_LONGEST_LENGTH = 18  # digits of a Content-Length read as a number; a longer one is over any limit


@dataclass(frozen=True)
class Framing:
    """What the bytes received so far say about the first request among them.

    `ready`: hand the connection to a thread now, either because the whole request is here or
    because gunicorn's parser must see it as it is (`malformed`: to refuse it). `oversized`: the
    body is over the limit; the application answers 413 from what is here and the connection must
    close, its body unread. `expects_continue`: the headers are complete and ask for
    `100 Continue` before the body is sent. `too_long`: a chunked body whose chunks, with their
    framing, run past `max_body_bytes` and a quarter again: no thread should read them (413)."""

    ready: bool
    malformed: bool = False
    oversized: bool = False
    expects_continue: bool = False
    too_long: bool = False


WAITING = Framing(ready=False)
WAITING_TO_CONTINUE = Framing(ready=False, expects_continue=True)
COMPLETE = Framing(ready=True)
REFUSED = Framing(ready=True, malformed=True)
OVERSIZED = Framing(ready=True, oversized=True)
TOO_LONG = Framing(ready=False, too_long=True)


class RequestFramer:
    """Follows the next request on one connection as its bytes arrive; `frame` is called with all
    bytes received so far (the same buffer, grown), `reset` before the connection's next request."""

    def __init__(
        self, max_header_bytes: int, max_body_bytes: int, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.reset()

    def reset(self) -> None:
        self._examined = 0  # how far the current line search (head, chunk size, trailers) has looked
        self._body_start = -1
        self._length = -1  # the Content-Length; -1 when the body is chunked
        self._waiting = WAITING
        self._chunk_at = 0  # where the next chunk's size line begins
        self._chunk_data = 0  # data bytes in the chunks before it
        self._trailers_at = -1  # after the last chunk, where the trailers are looked for

    def frame(self, received: bytes | bytearray) -> Framing:
        """How far the first request in `received` has arrived. A body declared larger than
        `max_body_bytes` is not waited for beyond what shows it is too large."""
        if self._body_start < 0:
            head = self._head(received)
            if head is not None:
                return head
        if self._length >= 0:
            if self._length > self.max_body_bytes:
                return OVERSIZED
            return COMPLETE if len(received) - self._body_start >= self._length else self._waiting
        return self._chunked(received)

    def _head(self, received: bytes | bytearray) -> Framing | None:
        """Looks for the end of the headers in the bytes not yet examined; None once the headers
        are read and the body's framing is known."""
        start = 2 if received[:2] == CRLF else 0  # one empty line before the request line (RFC 9112 §2.2)
        scan_from = max(start, self._examined - 3)
        end = received.find(HEADERS_END, scan_from)
        if _bare_line_feed(received, max(start, self._examined), len(received) if end < 0 else end + 4):
            return REFUSED
        if end < 0:
            self._examined = len(received)
            return REFUSED if len(received) - start > self.max_header_bytes else WAITING
        self._examined = end
        if end + len(HEADERS_END) - start > self.max_header_bytes:
            return REFUSED
        return self._read_headers(bytes(received[start:end]).split(CRLF), end + len(HEADERS_END))

    def _read_headers(self, head: list[bytes], body_start: int) -> Framing | None:
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
        http11 = head[0].endswith(b" HTTP/1.1")
        if expects and http11:  # ignored in HTTP/1.0 (RFC 9110 §10.1.1)
            self._waiting = WAITING_TO_CONTINUE
        self._body_start = body_start
        if codings:
            if lengths or codings[-1] != b"chunked" or not http11:  # HTTP/1.0 has no chunks (RFC 9112 §6.1)
                return REFUSED
            self._chunk_at = body_start
            return None
        if len(lengths) > 1:
            return REFUSED
        declared = lengths.pop() if lengths else b"0"
        if not declared.isdigit():
            return REFUSED
        digits = declared.lstrip(b"0")
        self._length = int(digits or b"0") if len(digits) <= _LONGEST_LENGTH else self.max_body_bytes + 1
        return None

    def _chunked(self, received: bytes | bytearray) -> Framing:
        """Follows the chunks from where the last call stopped: complete after the last chunk and its
        trailers. A body over the limit is handed over once the application's reading of one byte
        more than the limit (plus gunicorn's read step) would not run past what is here."""
        enough = self.max_body_bytes + READ_STEP
        if len(received) - self._body_start > enough + self.max_body_bytes // 4:
            return TOO_LONG  # a million tiny chunks cost seconds of parsing, whatever their data
        while self._trailers_at < 0:
            if self._chunk_data > enough:
                return OVERSIZED
            line_end = received.find(
                CRLF, max(self._chunk_at, self._examined - 1), self._chunk_at + self.max_line_bytes + 2
            )
            if line_end < 0:
                self._examined = len(received)
                return REFUSED if len(received) - self._chunk_at > self.max_line_bytes else self._waiting
            size_text = bytes(received[self._chunk_at : line_end]).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                return REFUSED
            size = int(size_text, 16)
            data_at = line_end + len(CRLF)
            if size == 0:
                self._trailers_at = data_at
                self._examined = data_at
                break
            data_end = data_at + size + len(CRLF)
            if len(received) < data_end:
                here = self._chunk_data + min(size, max(0, len(received) - data_at))
                return OVERSIZED if here > enough else self._waiting
            if received[data_end - 2 : data_end] != CRLF:
                return REFUSED
            self._chunk_data += size
            self._chunk_at = data_end
        framing = self._trailers(received)
        if framing == COMPLETE and self._chunk_data > self.max_body_bytes:
            return OVERSIZED
        return framing

    def _trailers(self, received: bytes | bytearray) -> Framing:
        """After the last chunk: an empty line, or trailer fields and then an empty line."""
        at = self._trailers_at
        if len(received) < at + 2:
            return self._waiting
        if received[at : at + 2] == CRLF:
            return COMPLETE
        end = received.find(HEADERS_END, max(at - 2, self._examined - 3))
        if _bare_line_feed(received, self._examined, len(received) if end < 0 else end + 4):
            return REFUSED
        if end >= 0:
            return COMPLETE
        self._examined = len(received)
        return REFUSED if len(received) - at > self.max_header_bytes else self._waiting


def _bare_line_feed(received: bytes | bytearray, start: int, end: int) -> bool:
    """Whether a LF not preceded by CR lies in received[start:end] (gunicorn refuses those lines)."""
    at = received.find(b"\n", start, end)
    while at >= 0:
        if at == 0 or received[at - 1] != 13:
            return True
        at = received.find(b"\n", at + 1, end)
    return False
