"""When a request has arrived whole (service/request_framing.py): `idds-crd serve` hands a connection
to a thread only then, so every way HTTP/1.1 frames a body must be told right, and anything that
cannot be framed must go to gunicorn's parser at once rather than be waited for."""

from __future__ import annotations

import pytest

from service.request_framing import frame

HEADERS = 8 * 1024
BODY = 1024


def framed(data: bytes, max_body: int = BODY):
    return frame(bytearray(data), HEADERS, max_body)


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
    assert framed(post(b"", length=BODY + 1)).ready
    assert not framed(post(b"", length=BODY)).ready
    over = chunked(b"x" * (BODY + 1))
    assert framed(over[: len(over) // 2]).ready


def test_a_100_continue_expectation_is_told_once_the_headers_are_here() -> None:
    request = post(b"abc", "Expect: 100-continue")
    head = request[: request.index(b"\r\n\r\n") + 4]
    assert not framed(head[:-1]).expects_continue
    assert framed(head).expects_continue and not framed(head).ready
    assert framed(request).ready
    http10 = head.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert not framed(http10).expects_continue  # RFC 9110 section 10.1.1: ignored in HTTP/1.0
