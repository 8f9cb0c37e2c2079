"""Requests made with a Host (or none) as a client sent it, for the tests of the Host check
(service/host_header.py): the WSGI call Flask's test client makes, without the client's own reading
of the request's URL, which raises on a Host such as `[1::2::3]` before the app sees it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.support import SELECT_URL, select_body

LINK = re.compile(r'"(url|valueUrl)":"([^"]*/policies/[^"]*)"')  # a card's link, a 2.2 policy-link detail


@dataclass(frozen=True)
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def sent(
    app: Flask,
    host: str | None,
    path: str = SELECT_URL,
    method: str = "POST",
    body: dict[str, Any] | None = None,
    **environ: str,
) -> Answer:
    """`app`'s answer to a request with `host` as its Host (None: no Host) and `environ` (a header as
    `HTTP_X_FORWARDED_PROTO`, the peer as `REMOTE_ADDR`) set as given."""
    data = json.dumps(body or select_body()) if method == "POST" else None
    built = EnvironBuilder(path=path, method=method, data=data, content_type="application/json")
    wsgi = {**built.get_environ(), **environ}
    if host is None:
        del wsgi["HTTP_HOST"]
    else:
        wsgi["HTTP_HOST"] = host
    app_iter, status, _ = run_wsgi_app(app, wsgi, buffered=True)
    return Answer(int(status.split()[0]), b"".join(app_iter).decode())


def linked(answer: Answer) -> set[tuple[str, str]]:
    """Each policy link of the answer, as (`url` of a card's link, or `valueUrl` of a detail, the URL)."""
    return set(LINK.findall(answer.text))


def links(answer: Answer) -> set[str]:
    return {url for _, url in linked(answer)}


def refused_naming(answer: Answer, code: str, field: str = "http.Host") -> bool:
    """Whether the answer is a 400 whose one issue is `code` naming `field` (FHIR names an HTTP header
    "http." + its name)."""
    issues = answer.json() or {}
    return (
        answer.status == 400
        and issues.get("resourceType") == "OperationOutcome"
        and [(i.get("code"), i.get("expression")) for i in issues.get("issue", [])] == [(code, [field])]
    )
