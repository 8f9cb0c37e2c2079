"""The store's own exceptions, raised for a failure of either driver the service runs on.

The service writes an SQLite file through the standard library's `sqlite3` and a PostgreSQL server
through SQLAlchemy and psycopg; what calls the store (the audit trail, the replay store, `/readyz`, the
JWT guard, the CLI) catches these alone, and imports neither driver's exceptions. A failure is mapped
by the PEP 249 class it is (SQLAlchemy names its wrappers of them alike): an `IntegrityError` is a
`DuplicateKey` (the service's inserts can break no other constraint), an `OperationalError` or
`InterfaceError` (or SQLAlchemy's `DisconnectionError`: a connection lost) a `StoreUnavailable`, any
other database error a `StoreError`. Each keeps the driver's own exception as `orig` (its SQLSTATE or
SQLite error name: service/store/write_refusals.py, outage.py) and, as `kind`, the class name the log
and a `GroupWriteFailed` give (`OperationalError`, `IntegrityError`, ...), as it was before the mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

UNAVAILABLE_KINDS = frozenset({"OperationalError", "InterfaceError", "DisconnectionError"})
DUPLICATE_KINDS = frozenset({"IntegrityError"})
# PEP 249's classes (and SQLAlchemy's of the same names), most specific first: a driver's own subclass
# (psycopg's UniqueViolation) is named by the first of these its class derives from
PEP_249 = (
    "IntegrityError",
    "OperationalError",
    "InterfaceError",
    "DisconnectionError",
    "ProgrammingError",
    "DataError",
    "NotSupportedError",
    "InternalError",
    "TimeoutError",
    "DatabaseError",
    "DBAPIError",
)


class StoreError(Exception):
    """The database failed a use of it. `orig`: the driver's exception (None when the failure is the
    store's own); `kind`: the failure's class name as the driver (or SQLAlchemy) named it."""

    def __init__(self, message: str, orig: BaseException | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.orig = orig
        self.kind = kind or type(self).__name__


class DuplicateKey(StoreError):
    """An insert found its key taken (a replayed token, feedback sent before)."""


class StoreUnavailable(StoreError):
    """The database did not answer, lost the connection, or could not be used at all (a server
    that cannot serve, an SQLite file locked past the busy timeout, read-only or gone)."""


class SchemaOutOfDate(StoreError):
    """A table made by an earlier release lacks a column that cannot be added to its rows."""


def kind_of(failure: BaseException) -> str:
    """The class name a failure is logged by: a store error's `kind`, else its PEP 249 class."""
    if isinstance(failure, StoreError):
        return failure.kind
    names = [klass.__name__ for klass in type(failure).__mro__]
    return next((name for name in PEP_249 if name in names), type(failure).__name__)


def mapped(failure: BaseException) -> StoreError:
    """`failure` (a driver's exception, or SQLAlchemy's wrapping one) as a store error, its message
    the driver's class and words (never the statement or its parameters, which may hold a patient's
    data)."""
    if isinstance(failure, StoreError):
        return failure
    kind = kind_of(failure)
    orig = getattr(failure, "orig", None) or failure
    cls: type[StoreError] = StoreError
    if kind in DUPLICATE_KINDS:
        cls = DuplicateKey
    elif kind in UNAVAILABLE_KINDS:
        cls = StoreUnavailable
    said = str(orig).strip().splitlines()
    message = f"({type(orig).__module__}.{type(orig).__name__}) {said[0] if said else ''}".strip()
    return cls(message, orig, kind)


@contextmanager
def translated(*failures: type[BaseException]) -> Iterator[None]:
    """Raise any of `failures` (a driver's or SQLAlchemy's exception classes) from the block as a
    store error, chained to it."""
    try:
        yield
    except failures as exc:
        raise mapped(exc) from exc
