"""`idds-crd audit purge` removes old records a batch to a transaction and pauses between two: the
write turn calls being recorded wait for is held for one batch, not for the whole purge (on SQLite a
hook call waits at most the busy timeout, 10 s, for it, then is answered 503; a purge of 8,000
Synthea-sized records held it 9 s: audit20 M3)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from service.app import create_app
from service.catalog import Catalog
from service.settings import StoreSettings
from service.store import audit
from service.store.tables import audit_cards, audit_purges, audit_records
from tests.audit_support import secret_call
from tests.support import no_client, open_settings, post_json


def stores_with_calls(catalog: Catalog, calls: int) -> Any:
    """The stores of an app on an in-memory trail that has recorded `calls` order-select calls."""
    app = create_app(open_settings(store=StoreSettings(url="sqlite://")), catalog, client_factory=no_client)
    for _ in range(calls):
        path, body, _ = secret_call("order-select-62362-demo-meets")
        assert post_json(app.test_client(), path, body).status_code == 200
    return app.extensions["idds_crd"].stores


def test_purge_commits_a_batch_at_a_time_and_removes_exactly_the_old_records(
    compiled_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = stores_with_calls(compiled_catalog, 7)
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
    monkeypatch.setattr(audit, "PURGE_BATCH", 2)
    assert stores.audit.purge(datetime.now(UTC) - timedelta(days=30), "test") == 5
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


def test_an_interrupted_purge_is_kept_with_what_it_removed(
    compiled_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch counts itself in the purge's row in its own transaction: a purge stopped between two
    (killed, the database gone) leaves a record of exactly what it removed."""
    stores = stores_with_calls(compiled_catalog, 5)
    with stores.database.engine.begin() as connection:
        connection.execute(update(audit_records).values(received_at=datetime(2020, 1, 1)))
    pauses = itertools.count(1)

    def stopped_at_the_second_pause(_: float) -> None:
        if next(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(audit, "PURGE_BATCH", 2)
    monkeypatch.setattr(audit.time, "sleep", stopped_at_the_second_pause)
    with pytest.raises(KeyboardInterrupt):
        stores.audit.purge(datetime(2021, 1, 1, tzinfo=UTC), "reviewer@host")
    with stores.database.engine.connect() as connection:
        left = [r.id for r in connection.execute(select(audit_records.c.id))]
        [kept] = connection.execute(select(audit_purges)).all()
    assert left == [5]
    assert (kept.removed, kept.last_record_id, kept.operator) == (4, 4, "reviewer@host")
    assert kept.older_than == datetime(2021, 1, 1)


WAITING_WRITER = """
import os, sys, time
from service.store.writer_turns import WriterTurns
turns, taken = WriterTurns(sys.argv[1], 60.0), []
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2]):
    with turns.turn():
        taken.append(time.monotonic())
    time.sleep(0.001)
print(" ".join(map(str, taken)))
"""


def test_a_writer_of_another_process_gets_its_turn_between_the_batches_of_a_purge(
    compiled_catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writers' turn on an SQLite file is taken across processes by polling `flock` (every half
    millisecond: store/writer_turns.py): a purge that took it again the moment it let it go kept
    another worker's hook calls waiting for the whole purge (6.6 s for 8,000 records)."""
    database = tmp_path / "audit.sqlite3"
    app = create_app(
        open_settings(store=StoreSettings(url=f"sqlite:///{database}")),
        compiled_catalog,
        client_factory=no_client,
    )
    for _ in range(120):
        path, body, _ = secret_call("order-select-62362-demo-meets")
        assert post_json(app.test_client(), path, body).status_code == 200
    stores = app.extensions["idds_crd"].stores
    with stores.database.engine.begin() as connection:
        connection.execute(update(audit_records).values(received_at=datetime(2015, 1, 1)))
    monkeypatch.setattr(audit, "PURGE_BATCH", 1)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WAITING_WRITER, f"{database}.writers", str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    while not Path(f"{stop}.ready").exists():
        time.sleep(0.01)
    commits: list[float] = []
    event.listen(stores.database.engine, "commit", lambda _: commits.append(time.monotonic()))
    assert stores.audit.purge(datetime(2016, 1, 1, tzinfo=UTC), "test") == 120
    stop.touch()
    taken = [float(when) for when in writer.communicate(timeout=60)[0].split()]
    # Counted, not timed (a loaded machine may pause either process): between how many two of the
    # purge's commits did the writer get its turn? A purge that took the turn back at once let it in
    # between few of them (or, in one transaction, there were none).
    gaps = list(itertools.pairwise(commits))
    let_in = sum(any(start < when < end for when in taken) for start, end in gaps)
    assert len(gaps) >= 100 and let_in >= len(gaps) // 4, (let_in, len(gaps))
