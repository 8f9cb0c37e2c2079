"""`idds-crd audit purge` keeps a record of itself on PostgreSQL too: shown with UTC times, made on a trail
an earlier release created, and two purges at once (two replicas' CronJobs) each keep only what they
removed (review22a)."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select

from service import cli
from service.settings import StoreSettings
from service.store import audit
from service.store.database import metadata, open_database
from service.store.stores import open_stores
from service.store.tables import audit_purges, audit_records
from tests.audit_support import insert_bare_records


def _records(url: str, count: int, when: datetime = datetime(2015, 1, 1)) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            insert_bare_records(connection, count, when)
    finally:
        engine.dispose()


def _config(tmp_path: Path, url: str) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"store": {"url": url}}))
    return str(config)


def test_a_purge_on_postgresql_is_kept_and_shown(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    open_database(postgres_url).close()
    _records(postgres_url, 5)
    _records(postgres_url, 1, datetime.now(UTC).replace(tzinfo=None))
    monkeypatch.setattr(audit, "PURGE_BATCH", 2)
    monkeypatch.setattr(audit, "PURGE_PAUSE_SECONDS", 0)
    config = _config(tmp_path, postgres_url)
    assert cli.main(["audit", "purge", "--days", "30", "--below-retention", "--config", config]) == 0
    capsys.readouterr()
    assert cli.main(["audit", "show", "--purges", "--config", config]) == 0
    [kept] = json.loads(capsys.readouterr().out)
    assert (kept["removed"], kept["last_record_id"]) == (5, 5)
    assert kept["operator"].endswith("@" + socket.gethostname())
    assert kept["started_at"].endswith("Z") and kept["older_than"].endswith("Z")


def test_a_trail_made_before_audit_purges_gets_the_table_and_its_purges_are_kept(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:  # an earlier release's tables: all but audit_purges
            metadata.create_all(
                connection, tables=[t for t in metadata.sorted_tables if t is not audit_purges]
            )
    finally:
        engine.dispose()
    _records(postgres_url, 3)
    config = _config(tmp_path, postgres_url)
    assert cli.main(["audit", "show", "--purges", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["audit", "purge", "--days", "30", "--below-retention", "--config", config]) == 0
    capsys.readouterr()
    assert cli.main(["audit", "show", "--purges", "--config", config]) == 0
    assert [p["removed"] for p in json.loads(capsys.readouterr().out)] == [3]


def test_two_purges_at_once_each_keep_only_what_they_removed(postgres_url: str) -> None:
    """Two `audit purge` runs at once (two replicas' CronJobs): the second reads the same oldest ids as
    the first, waits on its row locks, and deletes none of them. Its row says removed 0, but names the
    highest of those ids as `last_record_id`, "the highest record id it removed" (tables.py)."""
    open_database(postgres_url).close()
    _records(postgres_url, 2)
    engine = create_engine(postgres_url)
    stores = open_stores(StoreSettings(url=postgres_url), bounded=False)
    result: list[int] = []
    try:
        first = engine.connect()
        first_tx = first.begin()
        first.execute(delete(audit_records))  # the first purge's batch, not yet committed
        second = threading.Thread(
            target=lambda: result.append(stores.audit.purge(datetime(2016, 1, 1, tzinfo=UTC), "second@host"))
        )
        second.start()
        time.sleep(1.0)  # the second purge has read ids 1 and 2 and waits on their locks
        first_tx.commit()
        first.close()
        second.join(30)
        with engine.connect() as connection:
            [kept] = connection.execute(select(audit_purges)).all()
            left = connection.execute(select(func.count()).select_from(audit_records)).scalar_one()
    finally:
        stores.database.close()
        engine.dispose()
    assert result == [0] and left == 0
    assert (kept.removed, kept.last_record_id) == (0, None), f"last_record_id {kept.last_record_id}"
