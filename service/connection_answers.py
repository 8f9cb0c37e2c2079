"""What `idds-crd serve` answers on a connection without the application: a request gunicorn's parser
refuses (400, 414, 431, 501...), one not whole within the read timeout (408), a chunked body whose
framing runs past the limit (413), one past the worker's memory budget (503). Written as the
application writes its own refusals, an OperationOutcome in JSON, so an EHR reads every error of the
service the same way (gunicorn's own are HTML pages).
"""

from __future__ import annotations

from service.errors import RETRY_AFTER, operation_outcome, retry_after
from service.strict_json import dumps

ISSUE_CODES = {  # FHIR issue type of each status; "exception" for the rest
    400: "structure",
    403: "forbidden",
    408: "timeout",
    414: "too-long",
    413: "too-costly",
    417: "not-supported",
    431: "too-long",
    501: "not-supported",
    503: "transient",
}


def answer(status: int, reason: str, diagnostics: str) -> bytes:
    """The whole HTTP answer: status line, `Connection: close`, (a 503) `Retry-After: 1`, and the
    OperationOutcome."""
    body = dumps(operation_outcome(ISSUE_CODES.get(status, "exception"), diagnostics)).encode()
    head = f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
    if status == 503:
        head += f"{RETRY_AFTER}: {retry_after(1)}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


TIMED_OUT = answer(408, "Request Timeout", "the request did not arrive whole within the read timeout")
TOO_LONG = answer(
    413,
    "Content Too Large",
    "the request body's chunks, with their framing, are larger than the service reads",
)
OVER_BUDGET = answer(
    503, "Service Unavailable", "the service holds as many unanswered requests as it can: try again shortly"
)


class StatusLine:
    """A stand-in socket that keeps the status line of what gunicorn writes to it (its error page)."""

    def __init__(self) -> None:
        self.written = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.written += data

    def status(self) -> tuple[int, str]:
        """The status code and reason written, (500, "Internal Server Error") if nothing was."""
        parts = self.written.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if len(parts) == 3 and parts[1].isdigit():
            return int(parts[1]), parts[2]
        return 500, "Internal Server Error"
