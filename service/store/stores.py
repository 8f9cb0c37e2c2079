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


def open_stores(settings: StoreSettings) -> Stores:
    """Open `settings.url` once and build every store on it (DatabaseError when it cannot be opened)."""
    database = open_database(settings.url, settings.timeout_seconds)
    return Stores(database, AuditTrail(database), ReplayStore(database))
