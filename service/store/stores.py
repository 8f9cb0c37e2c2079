"""Every store of the service, built from the one database its settings name: the audit trail and
the JWT replay store share it, so every replica sharing the database shares both."""

from __future__ import annotations

from dataclasses import dataclass

from service.settings import StoreSettings
from service.store.audit import AuditTrail
from service.store.database import Database, open_database
from service.store.replay import ReplayStore


@dataclass(frozen=True)
class Stores:
    database: Database
    audit: AuditTrail
    replay: ReplayStore


def open_stores(settings: StoreSettings, bounded: bool = True) -> Stores:
    """Open `settings.url` once and build every store on it (DatabaseError when it cannot be opened).
    `bounded`: each use of a database server is cut after `settings.timeout_seconds`, and the server
    left alone for `settings.retry_after_seconds` after one failed (the service); the `idds-crd audit`
    commands' uses are not (a purge of many records is one long transaction)."""
    database = open_database(
        settings.url, settings.timeout_seconds if bounded else None, settings.retry_after_seconds
    )
    return Stores(database, AuditTrail(database), ReplayStore(database))
