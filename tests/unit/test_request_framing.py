"""When a request has arrived whole (service/request_framing.py): `idds-crd serve` hands a connection
to a thread only then, so every way HTTP/1.1 frames a body must be told right, anything that
cannot be framed must go to gunicorn's parser at once rather than be waited for, a body over the
limit must not be waited for beyond what shows it, and a request arriving a byte at a time must
cost work in proportion to its length."""

from __future__ import annotations

from typing import Any

import pytest

from service.request_framing import READ_STEP, Framing, RequestFramer

HEADERS = 8 * 1024
BODY = 1024


def framed(data: bytes, max_body: int = BODY) -> Framing:
    return RequestFramer(HEADERS, max_body).frame(bytearray(data))


def post(body: bytes, *headers: str, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    lines = ["POST /cds-services/x HTTP/1.1", "Host: h", f"Content-Length: {declared}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*pieces: bytes, trailers: bytes = b"") -> bytes:
    head = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
    return head + body + b"0\r\n" + trailers + b"\r\n"


def test_a_request_without_a_body_is_complete_at_the_blank_line() -> None:
    request = b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n"
    assert framed(request).ready and not framed(request).malformed
    for cut in range(1, len(request)):
        assert not framed(request[:cut]).ready, cut


def test_a_body_is_waited_for_to_its_declared_length() -> None:
    request = post(b'{"hook":"order-sign"}')
    for cut in range(1, len(request)):
        assert not framed(request[:cut]).ready, cut
    assert framed(request).ready
    assert framed(request + b"GET / HTTP/1.1\r\n").ready  # a pipelined request behind it


def test_header_names_are_matched_without_regard_to_case() -> None:
    request = b"POST /x HTTP/1.1\r\ncontent-LENGTH: 3\r\n\r\nab"
    assert not framed(request).ready
    assert framed(request + b"c").ready


def test_a_chunked_body_is_complete_after_its_last_chunk() -> None:
    request = chunked(b'{"hook":', b'"order-sign"}')
    for cut in range(1, len(request)):
        assert not framed(request[:cut]).ready, cut
    assert framed(request).ready and not framed(request).malformed


def test_a_chunked_body_with_trailers_is_complete_after_them() -> None:
    request = chunked(b"abc", trailers=b"X-Checksum: 1\r\n")
    for cut in range(1, len(request)):
        assert not framed(request[:cut]).ready, cut
    assert framed(request).ready


def test_chunk_extensions_are_allowed() -> None:
    request = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n"
    assert framed(request).ready and not framed(request).malformed


@pytest.mark.parametrize(
    "request_bytes",
    [
        post(b"ab", "Content-Length: 3"),  # two lengths that differ
        post(b"ab", length=-2),
        post(b"", "Transfer-Encoding: chunked"),  # a length and chunked: a smuggling attempt
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",  # a body with no end
        b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",  # HTTP/1.0 has no chunks
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a chunk size
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",  # no CRLF after the data
        b"GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost : h\r\n\r\n",  # whitespace before the colon (RFC 9112 section 5.1)
    ],
)
def test_what_cannot_be_framed_goes_to_the_parser_at_once(request_bytes: bytes) -> None:
    framing = framed(request_bytes)
    assert framing.ready and framing.malformed


def test_headers_longer_than_gunicorn_takes_are_not_waited_for() -> None:
    endless = b"GET /x HTTP/1.1\r\nX-Padding: " + b"x" * HEADERS
    assert framed(endless).ready and framed(endless).malformed
    assert not framed(endless[: HEADERS // 2]).ready


def test_a_body_over_the_limit_is_not_waited_for() -> None:
    """The application answers 413 on seeing the length; waiting for megabytes would hold memory."""
    assert framed(post(b"", length=BODY + 1)) == Framing(ready=True, oversized=True)
    assert not framed(post(b"", length=BODY)).ready
    assert framed(post(b"x" * BODY)) == Framing(ready=True)


def test_a_chunked_body_over_the_limit_is_handed_over_once_the_application_can_tell() -> None:
    """The application reads one byte more than the limit to tell (413), through gunicorn's reader
    that asks for READ_STEP bytes more: that much is waited for, no more. A chunk declared huge is
    not a reason to hand over a request whose data is still to come."""
    huge = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFF\r\n"
    enough = BODY + READ_STEP + 1
    assert not framed(huge).ready
    assert not framed(huge + b"x" * (enough - 1)).ready
    assert framed(huge + b"x" * enough) == Framing(ready=True, oversized=True)
    many = chunked(*[b"x" * 100] * (enough // 100 + 1))
    assert framed(many[: many.index(b"0\r\n\r\n")]) == Framing(ready=True, oversized=True)
    slightly_over = chunked(b"x" * (BODY // 2), b"y" * (BODY // 2), b"z")
    for cut in range(len(slightly_over) - 40, len(slightly_over)):
        assert not framed(slightly_over[:cut]).ready, cut
    assert framed(slightly_over) == Framing(ready=True, oversized=True)  # whole: answered 413, closed


def test_lengths_and_chunk_sizes_are_read_as_gunicorn_reads_them() -> None:
    """Leading zeros and long chunk size lines are valid; a Content-Length of thousands of digits is
    over the limit, not a number to convert (Python refuses to, and the loop must not fail)."""
    assert framed(post(b"ab", length=2).replace(b"Length: 2", b"Length: 0002")) == Framing(ready=True)
    endless_length = post(b"", length=0).replace(b"Length: 0", b"Length: " + b"9" * 5000)
    assert framed(endless_length) == Framing(ready=True, oversized=True)
    zeros = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 40 + b"3\r\nabc\r\n0\r\n\r\n"
    assert framed(zeros) == Framing(ready=True)
    extended = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;n=" + b"v" * 4000
    roomy = 64 * 1024  # a body limit the line's length is well within
    assert not framed(extended, roomy).ready
    assert framed(extended + b"\r\nabc\r\n0\r\n\r\n", roomy) == Framing(ready=True)
    assert framed(extended + b"v" * 5000, roomy).malformed  # past gunicorn's limit for the line


def test_a_100_continue_expectation_is_told_once_the_headers_are_here() -> None:
    request = post(b"abc", "Expect: 100-continue")
    head = request[: request.index(b"\r\n\r\n") + 4]
    assert not framed(head[:-1]).expects_continue
    assert framed(head).expects_continue and not framed(head).ready
    assert framed(request).ready
    http10 = head.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert not framed(http10).expects_continue  # RFC 9110 section 10.1.1: ignored in HTTP/1.0


def test_one_empty_line_before_the_request_line_is_allowed() -> None:
    """RFC 9112 section 2.2, as gunicorn's parser does; a second one is for the parser to refuse."""
    request = b"\r\n" + post(b"abc")
    for cut in range(1, len(request)):
        assert not framed(request[:cut]).ready, cut
    assert framed(request) == Framing(ready=True)
    assert framed(b"\r\n\r\n" + post(b"abc")).malformed


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /x HTTP/1.1\nHost: h\n\n",
        b"GET /x HTTP/1.1\r\nHost: h\n",  # the headers not yet ended
        b"\nGET /x HTTP/1.1\r\n",
        chunked(b"abc", trailers=b"X-Checksum: 1\n")[:-2],
    ],
)
def test_a_line_ended_by_a_bare_line_feed_goes_to_the_parser_at_once(request_bytes: bytes) -> None:
    assert framed(request_bytes) == Framing(ready=True, malformed=True)


SAMPLES = [
    b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\n" + post(b'{"hook":"order-sign"}', "Expect: 100-continue"),
    post(b"x" * (BODY + 1)),
    chunked(b'{"hook":', b'"order-sign"}', trailers=b"X-Checksum: 1\r\nX-Other: 2\r\n"),
    chunked(*[b"x"] * (BODY + 1)),
    b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    b"GET /x HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", SAMPLES)
def test_bytes_arriving_one_at_a_time_are_framed_as_if_they_came_together(request_bytes: bytes) -> None:
    """One framer fed a growing buffer, as a connection's is, tells each cut as a fresh framer would."""
    framer = RequestFramer(HEADERS, BODY)
    received = bytearray()
    for byte in request_bytes:
        received.append(byte)
        told = framer.frame(received)
        assert told == framed(bytes(received)), len(received)
        if told.ready:
            break


class CountingBytes(bytearray):
    """A receive buffer that counts the bytes the framer searches or copies."""

    examined = 0

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        first = 0 if start is None else max(0, start)
        last = len(self) if end is None else min(len(self), end)
        CountingBytes.examined += max(0, last - first)
        return super().find(sub, start, end)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            CountingBytes.examined += len(range(*index.indices(len(self))))
        return super().__getitem__(index)


@pytest.mark.parametrize(
    "request_bytes",
    [
        chunked(*[b"x"] * 3000),  # the dripped body of many one-byte chunks that cost 23 s of a loop
        b"GET /x HTTP/1.1\r\n" + b"X-Padding: y\r\n" * 400 + b"\r\n",
        chunked(b"abc", trailers=b"X-Padding: y\r\n" * 400),
    ],
)
def test_a_request_arriving_a_byte_at_a_time_is_examined_in_linear_work(request_bytes: bytes) -> None:
    framer = RequestFramer(HEADERS * 4, len(request_bytes))
    received = CountingBytes()
    CountingBytes.examined = 0
    for byte in request_bytes:
        received.append(byte)
        framer.frame(received)
    assert framer.frame(received) == Framing(ready=True)
    assert CountingBytes.examined < 40 * len(request_bytes), CountingBytes.examined


def test_a_chunked_body_framed_past_a_quarter_over_the_limit_is_not_read() -> None:
    """One-byte chunks cost six bytes each on the wire and a turn of gunicorn's chunk reader each: past
    the limit plus a quarter of it (and the read step) in all, the loop refuses the request itself
    (413) rather than have a thread parse a million chunks."""
    limit_in_wire = BODY + READ_STEP + BODY // 4
    tiny = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * (limit_in_wire // 6)
    assert not framed(tiny).ready and not framed(tiny).too_long
    assert framed(tiny + b"1\r\nx\r\n") == Framing(ready=False, too_long=True)
    few = chunked(b"x" * (BODY // 2))  # under the limit whatever its framing
    assert framed(few) == Framing(ready=True)
