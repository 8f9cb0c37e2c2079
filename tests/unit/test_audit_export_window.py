"""`idds-crd audit export` over a window: a day without an offset is the service's `timezone` day, and
an open end stops where every record is written (a call is recorded when it is answered, dated when
it arrived)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, update

from service.app import create_app
from service.catalog import Catalog
from service.cli import main
from service.settings import StoreSettings
from service.store.tables import audit_records
from tests.audit_support import secret_call, settled_at_once
from tests.support import no_client, open_settings, post_json

SAMPLES = ("order-select-62362-demo-meets", "order-select-62362-demo-insufficient")
SETTLE = 2.0  # seconds, for these tests (60 in service)


@pytest.fixture(autouse=True)
def _short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    settled_at_once(monkeypatch, SETTLE)


@pytest.fixture
def trail(compiled_catalog: Catalog, tmp_path: Path) -> tuple[Any, str, str]:
    """The app recording on a file; the file's URL; a configuration naming it, in New York time."""
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    app = create_app(open_settings(store=StoreSettings(url=url)), compiled_catalog, client_factory=no_client)
    config = tmp_path / "config.yaml"
    config.write_text(f"timezone: America/New_York\nstore:\n  url: {url}\n", encoding="utf-8")
    return app, url, str(config)


def called(app: Any, name: str) -> str:
    """Make the sample call `name`; its hookInstance."""
    path, body, _ = secret_call(name)
    assert post_json(app.test_client(), path, body).status_code == 200
    return str(body["hookInstance"])


def received(url: str, hook_instance: str, at: datetime) -> None:
    """Date the call's record as received `at` (UTC)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            update(audit_records)
            .where(audit_records.c.hook_instance == hook_instance)
            .values(received_at=at.astimezone(UTC).replace(tzinfo=None))
        )
    engine.dispose()


def export(capsys: pytest.CaptureFixture[str], config: str, *args: str) -> tuple[list[str], str]:
    """The hookInstances `audit export` writes lines for, and what it says on stderr."""
    assert main(["audit", "export", *args, "--config", config]) == 0
    out, err = capsys.readouterr()
    return [json.loads(line)["hookInstance"] for line in out.splitlines()], err


def test_a_day_without_an_offset_is_the_configured_time_zones_day(
    trail: tuple[Any, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url, config = trail
    evening_before, morning = called(app, SAMPLES[0]), called(app, SAMPLES[1])
    received(url, evening_before, datetime(2026, 11, 6, 3, 0, tzinfo=UTC))  # 5 November, 22:00 in New York
    received(url, morning, datetime(2026, 11, 6, 15, 0, tzinfo=UTC))  # 6 November, 10:00 in New York
    assert export(capsys, config, "--since", "2026-11-06", "--until", "2026-11-07") == ([morning], "")
    assert export(capsys, config, "--since", "2026-11-05", "--until", "2026-11-06") == ([evening_before], "")
    assert export(capsys, config, "--since", "2026-11-06T00:00:00Z", "--until", "2026-11-07")[0] == [
        evening_before,
        morning,
    ]
    shown = ["audit", "show", "--patient", "demo-meets", "--since", "2026-11-06", "--config", config]
    assert main(shown) == 1
    assert "no record about patient demo-meets" in capsys.readouterr().err


def test_an_export_reaching_now_ends_where_every_record_is_written_and_the_next_one_goes_on_from_there(
    trail: tuple[Any, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url, config = trail
    started = datetime.now(UTC)
    first, said = export(capsys, config)
    # the end it names, which an export run again goes on from (a scheduled export's --since; without
    # one, the moment it ran)
    named = "the window ends at " in said
    end = said.split("the window ends at ")[1].split(",")[0] if named else started.isoformat()
    # a call that had arrived when that export ran, recorded only afterwards (answered later, or on
    # PostgreSQL committed after a record with a later id)
    late = called(app, SAMPLES[0])
    received(url, late, started - timedelta(seconds=SETTLE / 10))
    time.sleep(SETTLE)
    second, _ = export(capsys, config, "--since", end)
    assert first + second == [late]


def test_an_until_in_the_past_is_kept_and_a_later_one_brought_back(
    trail: tuple[Any, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, config = trail
    assert export(capsys, config, "--until", "2026-01-01") == ([], "")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert "the window ends at " in export(capsys, config, "--until", tomorrow)[1]
