"""Logs (issue 10, point 7): JSON lines with the request id (honoured when safe, echoed), one line
per request with service, hookInstance, status, latency and outcome, refused calls included; no PHI
beyond ids at INFO, and never a secret at any level, even with a real FHIR server on loopback."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.arrival import arrived
from service.demo.fhir_server import free_port
from service.request_log import (
    ACCESS_LOGGER,
    TRACEBACK_INDENT,
    JsonLinesFormatter,
    TextLineFormatter,
    configure_logging,
    redacted,
)
from service.settings import SettingsError, settings_from_mapping
from tests.builders import catalog
from tests.logging_support import root_logging
from tests.support import (
    SIGN_URL,
    no_client,
    open_settings,
    post_json,
    running,
    sign_body,
    start_serve_process,
    with_fhir,
)

JWT = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJodHRwczovL2VociJ9.c2lnbmF0dXJlLXNlY3JldA"
FHIR_TOKEN = "fhir-access-token-4d1f9a-SECRET"


class LogLines:
    """Everything logged while the fixture is active, as the JSON lines a deployment would see."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == ACCESS_LOGGER]


@pytest.fixture
def logs() -> Iterator[LogLines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield LogLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_hook_call_logs_one_json_line_with_its_request_id(client: FlaskClient, logs: LogLines) -> None:
    body = sign_body()
    response = client.post(SIGN_URL, json=body, headers={"X-Request-Id": "ehr-trace.42:a"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "ehr-trace.42:a"
    [line] = [r for r in logs.access() if r.get("request_id") == "ehr-trace.42:a"]
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    assert line["service"] == "idds-crd-order-sign"
    assert line["hookInstance"] == body["hookInstance"]
    assert line["status"] == 200 and line["outcome"] == "answered"
    assert line["cards"] == len(response.get_json()["cards"])
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert line["message"] == f"POST {SIGN_URL} 200"


def test_the_time_a_request_waited_for_a_thread_is_logged_beside_its_latency(
    client: FlaskClient, logs: LogLines
) -> None:
    """Under `idds-crd serve` the worker notes when a request arrived whole (service/arrival.py)."""
    with arrived(time.monotonic() - 2.5):
        client.get("/healthz", headers={"X-Request-Id": "queued-one"})
    client.get("/healthz", headers={"X-Request-Id": "not-noted"})
    [queued] = [r for r in logs.access() if r.get("request_id") == "queued-one"]
    assert 2500 <= queued["queued_ms"] < 60_000 and queued["latency_ms"] < 2500
    [plain] = [r for r in logs.access() if r.get("request_id") == "not-noted"]
    assert "queued_ms" not in plain


@pytest.mark.parametrize(
    "header", ["has space", "x" * 129, "a\tb", "ünïcode", "<script>", "", "-leading-dash"]
)
def test_an_unsafe_request_id_is_replaced_by_a_fresh_one(client: FlaskClient, header: str) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": header})
    assert str(uuid.UUID(response.headers["X-Request-Id"])) == response.headers["X-Request-Id"]


def test_every_request_gets_its_own_id(client: FlaskClient) -> None:
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_refused_calls_are_logged_with_status_and_outcome(logs: LogLines) -> None:
    app = create_app(open_settings(max_request_bytes=50_000), catalog(), client_factory=no_client)
    client = app.test_client()
    bad = sign_body()
    bad["context"]["patientId"] = ".."
    calls = {
        "bad-field": lambda: post_json(client, SIGN_URL, bad),
        "not-json": lambda: client.post(SIGN_URL, data="{", content_type="application/json"),
        "no-service": lambda: post_json(client, "/cds-services/nope", sign_body()),
        "too-large": lambda: client.post(SIGN_URL, data=" " * 60_000, content_type="application/json"),
        "not-json-media": lambda: client.post(SIGN_URL, data="{}", content_type="text/plain"),
        "wrong-method": lambda: client.get(SIGN_URL),
    }
    statuses = {}
    for name, call in calls.items():
        response = call()
        [line] = [r for r in logs.access() if r["request_id"] == response.headers["X-Request-Id"]]
        statuses[name] = (line["status"], line["outcome"], line.get("field"))
        assert line["status"] == response.status_code
    assert statuses == {
        "bad-field": (400, "invalid", "context.patientId"),
        "not-json": (400, "structure", "$"),
        "no-service": (404, "not-found", None),
        "too-large": (413, "too-costly", None),
        "not-json-media": (415, "not-supported", "$"),
        "wrong-method": (405, "not-supported", None),
    }
    assert logs.access()[0]["hookInstance"] == bad["hookInstance"]  # known even though refused


def test_a_call_refused_for_its_coverage_is_logged_with_its_issue_code_and_field(logs: LogLines) -> None:
    """docs/api.md "Logs": a refusal is logged by its issue code and field. The 400s about the Coverage
    (none active, several under CRD 2.2, a payer not served) were logged "precondition-failed" (a 412's
    word) with no field (review24 L3); a 412 keeps "precondition-failed"."""
    client = create_app(open_settings(), catalog(), client_factory=no_client).test_client()
    body = sign_body()
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset"}
    unanswerable = sign_body()
    del unanswerable["prefetch"]
    seen = []
    for call in (body, unanswerable):
        response = post_json(client, SIGN_URL, call)
        [line] = [r for r in logs.access() if r["request_id"] == response.headers["X-Request-Id"]]
        seen.append((line["status"], line["outcome"], line.get("field")))
    assert seen == [(400, "invalid", "prefetch.coverage"), (412, "precondition-failed", "prefetch.patient")]


def test_info_lines_carry_ids_but_no_clinical_details(client: FlaskClient, logs: LogLines) -> None:
    body = sign_body()
    assert post_json(client, SIGN_URL, body).status_code == 200
    info = "\n".join(json.dumps(r) for r in logs.records() if r["level"] != "DEBUG")
    patient = body["prefetch"]["patient"]
    name = patient["name"][0]
    for detail in (patient["birthDate"], name["family"], name["given"][0], "M96.1"):
        assert detail not in info


class _ChartServer(BaseHTTPRequestHandler):
    """A FHIR server on loopback with an empty chart; it records the Authorization it was sent."""

    seen_authorization: list[str] = []  # noqa: RUF012 - read by the one test that starts it

    def do_GET(self) -> None:
        self.seen_authorization.append(self.headers.get("Authorization", ""))
        payload = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger("test.fhir-server").debug(format, *args)


@pytest.fixture
def fhir_server() -> Iterator[str]:
    with running(ThreadingHTTPServer(("127.0.0.1", 0), _ChartServer)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"


def _live_app(fhir_base: str) -> Flask:
    return create_app(open_settings(fhir_base), catalog())


def test_no_token_or_jwt_is_ever_logged_even_at_debug(fhir_server: str, logs: LogLines) -> None:
    client = _live_app(fhir_server).test_client()
    headers = {"Authorization": f"Bearer {JWT}", "X-Request-Id": "secret-check"}
    good = with_fhir(sign_body(), token=FHIR_TOKEN, server=fhir_server)
    refused = with_fhir(sign_body(), token=FHIR_TOKEN, server=fhir_server)
    refused["context"]["patientId"] = ".."
    for body in (good, refused):
        response = client.post(SIGN_URL, json=body, headers=headers)
        assert response.status_code in (200, 400, 401)
    assert f"Bearer {FHIR_TOKEN}" in _ChartServer.seen_authorization  # the token really was used
    assert any(r["logger"].startswith("urllib3") for r in logs.records())  # DEBUG really was captured
    assert FHIR_TOKEN not in logs.text
    assert JWT not in logs.text and JWT.split(".")[2] not in logs.text


def test_an_exception_is_one_json_line_with_its_traceback(logs: LogLines) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("service.test").exception("failed", extra={"hookInstance": "h-1"})
    [record] = [r for r in logs.records() if r["logger"] == "service.test"]
    assert record["level"] == "ERROR" and record["hookInstance"] == "h-1"
    assert "RuntimeError: boom" in record["exception"]
    assert len(logs.text.strip().splitlines()) == 1


def test_configure_logging_chooses_json_or_text() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("json", "WARNING")
        assert isinstance(root.handlers[0].formatter, JsonLinesFormatter)
        assert root.level == logging.WARNING
        configure_logging("text", "INFO")
        assert not isinstance(root.handlers[0].formatter, JsonLinesFormatter)
    finally:
        root.handlers[0].close()  # its writer thread ends
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_newline_in_a_path_writes_no_line_of_its_own_in_text_logs() -> None:
    """attack20 L4: a percent-encoded newline in the path, decoded by the server, forged a second log
    line in the text format; its control characters are now escaped."""
    with root_logging("text", "INFO") as stream:
        client = create_app(open_settings(log_format="text"), catalog()).test_client()
        client.get("/healthz%0D%0A2026-12-06 12:00:00,000 INFO idds_crd.access: POST /cds-services 200")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "/healthz\\r\\n2026-12-06" in lines[0]


def test_a_traceback_in_text_logs_is_indented_so_no_line_of_it_passes_for_a_record() -> None:
    """review20 L5: an exception's text may hold a caller's words with newlines in them; each line of
    the traceback is indented, so a forged "<time> INFO ..." line cannot start a line of the log."""
    forged = "2026-12-06 12:00:00,000 INFO idds_crd.access: POST /cds-services 200"
    lines = TextLineFormatter().format(_failed(KeyError(f"x\n{forged}"))).splitlines()
    assert lines[0].endswith("idds_crd.test: failed")
    assert len(lines) > 2 and all(line.startswith(TRACEBACK_INDENT) for line in lines[1:]), lines
    assert any(forged in line for line in lines[1:])


@pytest.mark.parametrize("formatter", [TextLineFormatter, JsonLinesFormatter])
def test_a_token_an_exception_quotes_is_removed_from_its_logged_traceback(
    formatter: type[logging.Formatter],
) -> None:
    """review31d: a failure's traceback was logged whole, so a JWT or a bearer credential its message
    quoted (from what a caller sent) reached the log. Each line of it is redacted as a request's text is;
    the rest of the traceback stays readable."""
    jwt = "eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJlaHIifQ.c2lnbmF0dXJlLWJ5dGVz"
    failure = ValueError(f"unexpected {jwt} after Authorization: Bearer opaque-secret-value-123")
    written = formatter().format(_failed(failure))
    assert jwt not in written and "opaque-secret-value-123" not in written
    assert "ValueError: unexpected [removed]" in written and "Traceback (most recent call last)" in written


def test_log_settings_are_checked() -> None:
    settings = settings_from_mapping({"log_format": "text", "log_level": "DEBUG"})
    assert (settings.log_format, settings.log_level) == ("text", "DEBUG")
    assert settings_from_mapping({}).log_format == "json"
    for bad in ({"log_format": "xml"}, {"log_level": "LOUD"}):
        with pytest.raises(SettingsError):
            settings_from_mapping(bad)


def test_serve_writes_json_lines_with_the_request_id(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("auth:\n  required: false\n")
    port = free_port()
    process = start_serve_process(config, port, tmp_path)
    try:
        probe = {"X-Request-Id": "probe-1"}
        answer = requests.get(f"http://127.0.0.1:{port}/healthz", headers=probe, timeout=5)
        assert answer.headers["X-Request-Id"] == "probe-1"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)  # gunicorn waits up to its graceful_timeout, 10 s
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([line for line in stderr.splitlines() if line.strip()])
    [access] = [r for r in lines if r["logger"] == ACCESS_LOGGER and r.get("request_id") == "probe-1"]
    assert (access["request_id"], access["path"], access["status"]) == ("probe-1", "/healthz", 200)


def test_a_call_refused_by_the_jwt_guard_is_logged_with_its_id_and_no_token(logs: LogLines) -> None:
    settings = open_settings(auth=settings_from_mapping({}).auth)  # JWT required, nobody trusted
    app = create_app(settings, catalog(), client_factory=no_client)
    response = app.test_client().post(
        SIGN_URL, json=sign_body(), headers={"Authorization": f"Bearer {JWT}", "X-Request-Id": "refused-1"}
    )
    assert response.status_code == 401
    assert response.headers["X-Request-Id"] == "refused-1"
    [line] = [r for r in logs.access() if r.get("request_id") == "refused-1"]
    assert (line["status"], line["outcome"]) == (401, "unauthorized")
    assert JWT not in logs.text and "c2lnbmF0dXJlLXNlY3JldA" not in logs.text


@pytest.mark.parametrize(
    "path",
    [
        f"{SIGN_URL};jsessionid={FHIR_TOKEN}",  # a path parameter (servlet-style session id)
        f"{SIGN_URL};access_token={FHIR_TOKEN}",
        f"{SIGN_URL}%3Faccess_token={FHIR_TOKEN}",  # a query percent-encoded into the path
        f"/cds-services/{JWT}",
    ],
    ids=["jsessionid", "access_token", "encoded-query", "jwt-segment"],
)
def test_a_credential_in_the_path_is_not_logged(client: FlaskClient, logs: LogLines, path: str) -> None:
    """The request line is logged by its path (the query left out), but a path may carry a credential
    itself: a `;jsessionid=` parameter, a `?access_token=` its client percent-encoded, a JWT as a
    segment. The line says `[removed]` where it was."""
    response = client.post(path, json=sign_body())
    assert response.status_code == 404
    [line] = logs.access()
    assert "[removed]" in line["path"] and "[removed]" in line["message"]
    assert FHIR_TOKEN not in logs.text and JWT.rsplit(".", 1)[1] not in logs.text


def test_a_published_questionnaire_s_path_is_logged_as_it_stands(client: FlaskClient, logs: LogLines) -> None:
    """review25a: the path's redaction took any 43-character run for an opaque token, so a DTR client's
    fetch of a form whose id is that long (`kpwa-implanted-infusion-pumps-documentation`) or of any part
    of it (`…-documentation-c79b9095-1`) was logged as `/fhir/Questionnaire/[removed]`."""
    published = client.application.extensions["idds_crd"].environment.published
    forms = sorted(published.questionnaires)
    long_ones = [f for f in forms if len(f) >= 43]
    assert long_ones  # the case this guards: a form's id as long as a token
    digest = {f: str(q["version"]).rpartition("+")[2] for f, q in published.questionnaires.items()}
    parts = [f"{f}-{digest[f]}-1" for f in forms]  # each form's first item, as a call links it
    for form in forms + parts:
        assert client.get(f"/fhir/Questionnaire/{form}").status_code == 200
    assert [line["path"] for line in logs.access()] == [f"/fhir/Questionnaire/{f}" for f in forms + parts]


@pytest.mark.parametrize(
    "token",
    [
        "Xk3pQ9vR2mT7wL5nB8cF1dG4hJ6kM0sA2eY9uI3oP7q",  # 43 base64url characters
        "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a",  # 64 lowercase hex
        "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4-x",  # hex, one hyphen
    ],
)
def test_an_opaque_token_as_long_as_256_bits_is_still_removed(token: str) -> None:
    assert redacted(f"/cds-services/{token}") == "/cds-services/[removed]"


@pytest.mark.parametrize(
    "line",
    ["Cookie,session=", "X-Api-Key/", "Authorization;", "Proxy-Authorization(Basic) "],
)
def test_a_header_line_named_for_a_credential_loses_its_rest_whatever_follows_the_name(line: str) -> None:
    """review25a: a header line gunicorn refuses for its missing colon is quoted whole; one whose name
    was followed by anything but a space, `:` or `=` kept its credential."""
    said = redacted(f"{line}abc123secret")
    assert "abc123secret" not in said and said.endswith("[removed]")


def test_a_json_line_is_written_as_json_dumps_writes_it_without_building_an_encoder_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The line is `json.dumps(entry, ensure_ascii=False, default=str)` to the byte, by an encoder built
    once: `json.dumps` given any option builds one per call, a third of the line's cost (perf26b)."""
    record = logging.makeLogRecord(
        {
            "name": ACCESS_LOGGER,
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "POST %s %d",
            "created": 0.5,
        }
    )
    record.args = ("/cds-services/é", 200)
    record.__dict__.update({"status": 200, "latency_ms": 1.5, "when": datetime(2026, 1, 2, tzinfo=UTC)})
    expected = {
        "time": "1970-01-01T00:00:00.500+00:00",
        "level": "INFO",
        "logger": ACCESS_LOGGER,
        "message": "POST /cds-services/é 200",
        "status": 200,
        "latency_ms": 1.5,
        "when": "2026-01-02 00:00:00+00:00",
    }
    written = json.dumps(expected, ensure_ascii=False, default=str)
    built: list[int] = []

    class Counted(json.JSONEncoder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(json, "JSONEncoder", Counted)
    assert JsonLinesFormatter().format(record) == JsonLinesFormatter().format(record) == written
    assert built == []


@pytest.fixture
def proxy_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every attribute read through a werkzeug proxy (`request`, `g`, `current_app`), as (file, function)
    of the code that read it."""
    from werkzeug import local

    seen: list[tuple[str, str]] = []
    real = local._ProxyLookup.__get__

    def counted(self: Any, instance: Any, owner: Any = None) -> Any:
        if instance is not None:
            frame = sys._getframe(1).f_code
            seen.append((Path(frame.co_filename).name, frame.co_name))
        return real(self, instance, owner)

    monkeypatch.setattr(local._ProxyLookup, "__get__", counted)
    return seen


def test_the_request_log_and_metrics_read_the_request_itself_not_through_its_proxy_each_time(
    client: FlaskClient, proxy_reads: list[tuple[str, str]]
) -> None:
    """Every attribute read through Flask's `request` or `g` proxy looks the request up again; the
    hooks that run on every call bind it once (service/flask_context.py; perf26b: about 40 lookups a
    hook call before, 19 after, each some thousands of instructions)."""
    assert client.post(SIGN_URL, json=sign_body()).status_code == 200
    ours = [function for file, function in proxy_reads if file in ("request_log.py", "observability.py")]
    assert len(ours) <= 9, ours
    assert any(file == "routes.py" for file, _ in proxy_reads), "the spy saw no proxy read at all"


def test_the_hooks_annotations_and_caller_read_g_and_the_app_themselves_never_through_their_proxies(
    client: FlaskClient, proxy_reads: list[tuple[str, str]]
) -> None:
    """An attribute read through the `g` or `current_app` proxy that the proxy itself lacks (every one
    but `_get_current_object`) raises and catches an AttributeError before it is looked up on the object,
    thousands of instructions each; the request log's `annotate` (three times a hook call), the metrics'
    hooks and `current_caller` (twice a call, on a `g` with no caller where no guard set one: a second
    AttributeError) read the objects themselves (select30: 11 such reads a hook call before)."""
    assert client.post(SIGN_URL, json=sign_body()).status_code == 200
    hooks = ("request_log.py", "observability.py", "caller.py", "flask_context.py")
    assert [read for read in proxy_reads if read[0] in hooks] == []
    assert any(file == "routes.py" for file, _ in proxy_reads), "the spy saw no proxy read at all"


def _failed(failure: Exception) -> logging.LogRecord:
    """An ERROR record "failed" holding `failure`, raised, as its traceback."""
    record = logging.LogRecord("idds_crd.test", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise failure
    except Exception:
        record.exc_info = sys.exc_info()
    return record
