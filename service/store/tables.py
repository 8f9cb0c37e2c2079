"""Every table of the service's database, declared in one place so that `open_database` creates
them all and each store module reads and writes through the same definitions."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, String, Table

from service.store.database import metadata

seen_tokens = Table(
    "seen_tokens",
    metadata,
    Column("iss", String(1024), nullable=False),
    Column("jti", String(512), nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    PrimaryKeyConstraint("iss", "jti"),
)
