"""`idds-crd audit export` run again and again from where the last run ended (a scheduled export's
`--since`) gives every record once on a real PostgreSQL server, where records commit out of id order:
a record whose id was taken first but which committed after a later one was read is not skipped."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from service import cli
from service.store.database import open_database
from service.store.tables import audit_records
from tests.audit_support import settled_at_once

pytestmark = pytest.mark.integration
SETTLE = 2.0  # seconds, for this test (60 in service)


def record(hook_instance: str, received_at: datetime) -> dict[str, Any]:
    """A small record of a call received at `received_at`."""
    at = received_at.astimezone(UTC).replace(tzinfo=None)
    return {
        "received_at": at,
        "answered_at": at,
        "latency_ms": 1.0,
        "service_id": "idds-crd-order-sign",
        "hook": "order-sign",
        "hook_instance": hook_instance,
        "http_status": 200,
        **{c: [] for c in ("payers", "orders", "determinations", "assertions")},
        "fhir_access": {},
        "response": {"cards": []},
    }


def export(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[list[str], str]:
    assert cli.main(["audit", "export", *args, "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    return [json.loads(line)["hookInstance"] for line in out.splitlines()], err


def test_a_record_committed_after_a_later_id_was_read_is_exported_by_the_next_run(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settled_at_once(monkeypatch, SETTLE)
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  url: {postgres_url}\n")
    database = open_database(postgres_url)
    try:
        now = datetime.now(UTC)
        with database.engine.connect() as slow:
            written = slow.begin()  # a call's record, its id taken, its commit still to come
            slow.execute(insert(audit_records).values(record("committed-last", now - timedelta(seconds=0.5))))
            with database.begin() as connection:  # a later call's, committed at once
                connection.execute(
                    insert(audit_records).values(record("committed-first", now - timedelta(seconds=0.3)))
                )
            started = datetime.now(UTC)
            first, said = export(capsys, config)
            written.commit()
        named = "the window ends at " in said
        end = said.split("the window ends at ")[1].split(",")[0] if named else started.isoformat()
        time.sleep(SETTLE)
        second, _ = export(capsys, config, "--since", end)
        assert sorted(first + second) == ["committed-first", "committed-last"]
    finally:
        database.close()
