"""`idds-crd audit export` reads only what the CRD metric data needs: not `determinations`, the largest
column, which `metric_data` never reads, and the feedback of a page of records in one query, not one
query per record (audit20 L3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from service.app import create_app
from service.catalog import Catalog
from service.cli import main
from service.settings import StoreSettings
from tests.audit_support import secret_call, settled_at_once
from tests.support import no_client, open_settings, post_json

SAMPLES = ("order-select-62362-demo-meets", "order-select-62362-demo-insufficient")


@pytest.fixture(autouse=True)
def _exports_read_up_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    settled_at_once(monkeypatch)


@pytest.fixture
def trail(compiled_catalog: Catalog, tmp_path: Path) -> tuple[Any, str]:
    """The app recording on a file; a configuration naming it."""
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    app = create_app(open_settings(store=StoreSettings(url=url)), compiled_catalog, client_factory=no_client)
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  url: {url}\n", encoding="utf-8")
    return app, str(config)


def called(app: Any, name: str) -> str:
    """Make the sample call `name`; its hookInstance."""
    path, body, _ = secret_call(name)
    assert post_json(app.test_client(), path, body).status_code == 200
    return str(body["hookInstance"])


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL every engine runs meanwhile."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    yield seen
    event.remove(Engine, "before_cursor_execute", note)


def test_the_export_reads_no_determination_and_the_feedback_once_a_page(
    trail: tuple[Any, str], capsys: pytest.CaptureFixture[str], statements: list[str]
) -> None:
    app, config = trail
    for name in SAMPLES * 2:
        hook_instance = called(app, name)
    assert main(["audit", "show", hook_instance, "--config", config]) == 0
    card = json.loads(capsys.readouterr().out)["response"]["cards"][0]["uuid"]
    feedback = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"userComment": "in the paper chart"},
        "outcomeTimestamp": "2026-12-06T10:05:31Z",
    }
    path = "/cds-services/idds-crd-order-select/feedback"
    assert post_json(app.test_client(), path, {"feedback": [feedback]}).status_code == 200
    statements.clear()
    assert main(["audit", "export", "--config", config]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4
    engaged = [r for line in lines for q in line["request"] for r in q.get("response", [])]
    assert [r["engagement"] for r in engaged if "engagement" in r] == ["override"]
    read = [s for s in statements if "FROM audit_records" in s]
    assert read and not any("determinations" in s for s in read)
    assert len([s for s in statements if "FROM audit_feedback" in s]) == 1
