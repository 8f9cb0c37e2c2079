"""`idds-crd audit purge` removes old records a batch to a transaction: the write turn calls being
recorded wait for is held for one batch, not for the whole purge (on SQLite a hook call waits at most
the busy timeout, 10 s, for it, then is answered 503; a purge of 8,000 Synthea-sized records held it
9 s: audit20 M3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from service.app import create_app
from service.catalog import Catalog
from service.settings import StoreSettings
from service.store import audit
from service.store.tables import audit_cards, audit_records
from tests.audit_support import secret_call
from tests.support import no_client, open_settings, post_json


def test_purge_commits_a_batch_at_a_time_and_removes_exactly_the_old_records(
    compiled_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        open_settings(store=StoreSettings(url="sqlite://")), compiled_catalog, client_factory=no_client
    )
    for _ in range(7):
        path, body, _ = secret_call("order-select-62362-demo-meets")
        assert post_json(app.test_client(), path, body).status_code == 200
    stores = app.extensions["idds_crd"].stores
    engine = stores.database.engine
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:  # five records 40 days old, two 20 days old
        for record_id in range(1, 8):
            age = timedelta(days=40 if record_id <= 5 else 20)
            connection.execute(
                update(audit_records).where(audit_records.c.id == record_id).values(received_at=now - age)
            )
    commits: list[Any] = []
    event.listen(engine, "commit", commits.append)
    monkeypatch.setattr(audit, "PURGE_BATCH", 2, raising=False)
    assert stores.audit.purge(datetime.now(UTC) - timedelta(days=30)) == 5
    assert len(commits) >= 3  # 2 + 2 + 1 records
    with engine.connect() as connection:
        assert [r.id for r in connection.execute(select(audit_records.c.id))] == [6, 7]
        kept_cards = connection.execute(select(func.count()).select_from(audit_cards)).scalar_one()
        assert (
            kept_cards
            == connection.execute(
                select(func.count()).select_from(audit_cards).where(audit_cards.c.record_id.in_([6, 7]))
            ).scalar_one()
        )
