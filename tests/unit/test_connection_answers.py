"""The answers `idds-crd serve` gives without the application (service/connection_answers.py): whole
HTTP answers whose body is an OperationOutcome, and the status read back from gunicorn's own page."""

from __future__ import annotations

import json

from gunicorn import util

from service.connection_answers import OVER_BUDGET, TIMED_OUT, StatusLine, answer


def parts(written: bytes) -> tuple[str, dict[str, str], object]:
    head, _, body = written.partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    assert int(headers["content-length"]) == len(body)
    return status, headers, json.loads(body)


def test_an_answer_is_an_operation_outcome_and_closes_the_connection() -> None:
    status, headers, outcome = parts(answer(431, "Request Header Fields Too Large", "too many headers"))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "too-long", "diagnostics": "too many headers"}],
    }


def test_the_loop_s_own_answers() -> None:
    assert parts(TIMED_OUT)[0] == "HTTP/1.1 408 Request Timeout"
    assert parts(TIMED_OUT)[2]["issue"][0]["code"] == "timeout"  # type: ignore[index]
    assert parts(OVER_BUDGET)[0] == "HTTP/1.1 503 Service Unavailable"


def test_a_503_says_when_to_try_again_and_no_other_answer_does() -> None:
    assert parts(OVER_BUDGET)[1]["retry-after"] == "1"
    assert "retry-after" not in parts(TIMED_OUT)[1]


def test_the_status_of_gunicorn_s_error_page_is_read_back() -> None:
    page = StatusLine()
    util.write_error(page, 431, "Request Header Fields Too Large", "Error parsing headers")
    assert page.status() == (431, "Request Header Fields Too Large")
    assert StatusLine().status() == (500, "Internal Server Error")  # nothing written
