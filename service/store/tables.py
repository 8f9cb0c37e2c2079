"""Every table of the service's database, declared in one place so that `open_database` creates
them all and each store module reads and writes through the same definitions. The default SQLite
store has them as SQL text too (service/store/sqlite_schema.py: tests hold the two together); these
serve PostgreSQL, and the `idds-crd audit` commands' queries on either."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

metadata = MetaData()
seen_tokens = Table(
    "seen_tokens",
    metadata,
    Column("iss", String(1024), nullable=False),
    Column("jti", String(512), nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    PrimaryKeyConstraint("iss", "jti"),
)

# The audit trail (CRD §found-37): one row per hook call, with the coverage assertions and the
# cards it issued indexed beside it, and the feedback on those cards (service/store/audit.py).
audit_records = Table(
    "audit_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime, nullable=False, index=True),  # UTC
    Column("answered_at", DateTime, nullable=False),  # UTC
    Column("latency_ms", Float, nullable=False),
    Column("service_id", String(128), nullable=False),
    Column("hook", String(64), nullable=True),
    Column("hook_instance", String(128), nullable=True, index=True),
    Column("client_iss", String(1024), nullable=True),
    Column("client_jti", String(512), nullable=True),
    Column("patient_id", String(128), nullable=True),
    Column("http_status", Integer, nullable=False),
    Column("payers", JSON, nullable=False),
    Column("orders", JSON, nullable=False),
    Column("determinations", JSON, nullable=False),
    Column("assertions", JSON, nullable=False),
    Column("fhir_access", JSON, nullable=False),
    Column("request", JSON, nullable=True),
    Column("response", JSON, nullable=False),
)
# `audit show --patient` and `audit export --patient`: one patient's records in id order, found without
# reading the trail (a trail made before this index gets it from `idds-crd audit migrate`: indexes.py)
Index("ix_audit_records_patient", audit_records.c.patient_id, audit_records.c.id)

audit_assertions = Table(
    "audit_assertions",
    metadata,
    Column("record_id", Integer, ForeignKey("audit_records.id"), nullable=False, index=True),
    Column("assertion_id", String(128), nullable=False, index=True),
    Column("satisfied_pa_id", String(128), nullable=True, index=True),
)

audit_cards = Table(
    "audit_cards",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("record_id", Integer, ForeignKey("audit_records.id"), nullable=False, index=True),
    Column("service_id", String(128), nullable=False),
)

audit_feedback = Table(
    "audit_feedback",
    metadata,
    Column("key", String(64), primary_key=True),  # the item's digest: a repeat is kept once
    Column("record_id", Integer, ForeignKey("audit_records.id"), nullable=False, index=True),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("service_id", String(128), nullable=False),
    Column("received_at", DateTime, nullable=False),  # UTC
    Column("item", JSON, nullable=False),
    Column("client_iss", String(1024), nullable=True),  # who sent it (None: an unauthenticated deployment)
    Column("client_jti", String(512), nullable=True),
)

# `idds-crd audit purge`: one row per purge, kept after the records it removed are gone, so that a
# reviewer can tell the trail's gaps made by retention (each batch's count is written in the batch's own
# transaction: an interrupted purge still says what it removed) from any other
audit_purges = Table(
    "audit_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("older_than", DateTime, nullable=False),  # UTC: records received before it were removed
    Column("removed", Integer, nullable=False),
    Column("last_record_id", Integer, nullable=True),  # the highest record id it removed
    Column("operator", String(512), nullable=False),  # user@host that ran it
)
