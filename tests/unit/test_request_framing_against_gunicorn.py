"""The framer (service/request_framing.py) against gunicorn's own parser, on generated requests cut at
every kind of place: where the framer says a request is whole, gunicorn reads it and its whole body
from those bytes alone; where the framer waits, gunicorn could not have read it. A disagreement either
way is a thread waiting on a client or a whole request answered 408."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.http.parser import RequestParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.request_framing import RequestFramer
from service.whole_requests import ReceivedUnreader

MAX_BODY = 4096
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@st.composite
def requests_(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid HTTP/1.1 request (and the length of its body's data), perhaps with one empty line
    before it and the start of another request behind it."""
    method = draw(st.sampled_from(["GET", "POST", "PUT"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    head = [f"{method} /{draw(TOKEN)} {version}", "Host: h"]
    head += [f"X-{draw(TOKEN)}: {draw(TOKEN)}" for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        head.append("Expect: 100-continue")
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    data = b""
    body = b""
    if framing == "length":
        data = draw(st.binary(max_size=300))
        zeros = "0" * draw(st.integers(0, 3))
        head.append(f"Content-Length: {zeros}{len(data)}")
        body = data
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        for piece in draw(st.lists(st.binary(min_size=1, max_size=80), max_size=5)):
            size = format(len(piece), draw(st.sampled_from(["x", "X"])))
            extension = draw(st.sampled_from(["", ";a=b", ';q="x y"']))
            body += f"{'0' * draw(st.integers(0, 2))}{size}{extension}\r\n".encode() + piece + b"\r\n"
            data += piece
        body += b"0\r\n"
        body += "".join(f"X-T{i}: {draw(TOKEN)}\r\n" for i in range(draw(st.integers(0, 2)))).encode()
        body += b"\r\n"
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    before = b"\r\n" if draw(st.booleans()) else b""
    after = b"GET /next HTTP/1.1\r\nHo" if draw(st.booleans()) else b""
    return before + request + after, len(data)


@pytest.fixture(scope="module")
def quiet_socket() -> Iterator[socket.socket]:
    """A socket nobody writes to: gunicorn's parser is given one, and must never read it."""
    ours, theirs = socket.socketpair()
    ours.settimeout(0.2)
    yield ours
    ours.close()
    theirs.close()


def gunicorn_reads(received: bytes, sock: socket.socket, most: int | None = None) -> int | None:
    """The length of the body gunicorn's parser reads with a request from `received` alone (at most
    `most` bytes of it, as the application reads an oversized one); None when it cannot read them
    from those bytes (they end first, or it refuses what it read)."""
    parser = RequestParser(Config(), sock, ("127.0.0.1", 1))
    parser.unreader = ReceivedUnreader(received)
    try:
        return len(next(parser).body.read(most))
    except (NoMoreData, StopIteration, ParseException):  # StopIteration: ended before its first byte
        return None


@pytest.mark.parametrize("max_body", [4096, 100])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=requests_(), cut=st.floats(0, 1))
def test_the_framer_and_gunicorn_agree_on_where_a_request_ends(
    max_body: int, generated: tuple[bytes, int], cut: float, quiet_socket: socket.socket
) -> None:
    """With the limit at 100 bytes, a larger body is oversized: handed over only when the application
    can read one byte more than the limit from what is here (a declared length: not read at all)."""
    whole, data_length = generated
    if gunicorn_reads(whole, quiet_socket) is None:  # a request gunicorn refuses (chunked in HTTP/1.0)
        assert RequestFramer(8192, max_body).frame(bytearray(whole)).malformed, "waited on a refusal"
        return
    received = whole[: round(len(whole) * cut)]
    framing = RequestFramer(8192, max_body).frame(bytearray(received))
    assert not framing.malformed
    if framing.oversized:
        assert data_length > max_body
        chunked = b"Transfer-Encoding: chunked" in received
        assert gunicorn_reads(received, quiet_socket, max_body + 1 if chunked else 0) is not None
        return
    read = gunicorn_reads(received, quiet_socket)
    if framing.ready:
        assert read == data_length <= max_body, "handed over, but gunicorn would have waited for more"
    else:
        assert read != data_length, "gunicorn had the whole request, the framer waited"
