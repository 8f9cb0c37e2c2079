"""The audit row's request column takes the text the credential check wrote (perf31): the kept request was
written by orjson twice, once to find where its credentials are and once for the column. The column is
the same text whichever way it is written, and where a credential was taken out it is written again."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from service import audit_entry
from tests.support import SELECT_URL, post_json, select_body, sign_body, with_fhir


def _bodies() -> list[tuple[str, dict[str, Any], bool]]:
    """(what, body, whether the check's text is the kept body's): plain, with a plain FHIR server, with one
    carrying user information, with a token, with a server named below the top, and with a `fhirServer`
    string value below it (walked)."""
    plain = select_body()
    server = {**select_body(), "fhirServer": "https://ehr.example.org/fhir"}
    user = {**select_body(), "fhirServer": "https://someone:pass-0123456789abcdef@ehr.example.org/fhir"}
    nested = {**select_body(), "extension": {"x": {"fhirServer": "https://other.example.org/fhir"}}}
    named = {**select_body(), "extension": {"x": "fhirServer"}}
    return [
        ("plain", plain, True),
        ("sign", sign_body(), True),
        ("server", server, True),
        ("user information", user, False),
        ("token", with_fhir(select_body()), False),
        ("nested server", nested, False),
        ("a string naming the key", named, False),
    ]


@pytest.mark.parametrize(("what", "body", "taken"), _bodies(), ids=[b[0] for b in _bodies()])
def test_the_request_column_is_the_text_written_either_way(
    what: str, body: dict[str, Any], taken: bool
) -> None:
    kept = audit_entry._kept_request(body, None)
    assert (kept.written is not None) == taken, what
    secrets = [s for s in kept.carried if s]
    assert audit_entry._scrubbed(kept.value, secrets, kept.written) == audit_entry._scrubbed(
        kept.value, secrets
    )


def test_the_request_column_is_not_written_a_second_time(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []
    written_fast = audit_entry.written_fast

    def counted(value: Any, **options: Any) -> bytes | None:
        asked.append(value)
        return written_fast(value, **options)

    monkeypatch.setattr(audit_entry, "written_fast", counted)
    body = select_body()
    assert post_json(client, SELECT_URL, body).status_code == 200
    assert [v for v in asked if isinstance(v, dict) and v.get("hookInstance") == body["hookInstance"]] == []
