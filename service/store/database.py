"""Opening the service's database from its URL, with every table the store declares.

The default store is an SQLite file, opened with the standard library's `sqlite3` (no SQLAlchemy:
its import and set-up were a third of a fresh worker's start, issue 12): one connection per process,
shared by its threads one at a time, with WAL journaling so several worker processes can share the
file, and their write transactions taking turns on a lock file beside it
(service/store/writer_turns.py). Its tables are SQL text (service/store/sqlite_schema.py), created if
missing, one process at a time. `sqlite://` (in memory) is one connection too, for tests and throwaway
runs. PostgreSQL (`postgresql+psycopg://…`) is for several replicas, reached through SQLAlchemy
(service/store/engines.py, imported only then), as is an SQLite URL naming driver options. The hook
path's reads and writes go through `Database.transaction`, the driver's own connection whichever the
database; the `idds-crd audit` commands query through SQLAlchemy (`Database.begin`, `connect`,
`engine`), which an SQLite store imports when they first ask.

A process forked from one that checked the tables and said its children may trust that
(`tables_checked_for_children`: `idds-crd serve`'s master, before it forks its workers) does not check
them again: it only connects (a parent's connections are never used in a child). For an SQLite file
the file must still be the one the parent checked (its device and inode) and hold the schema the parent
left in it (`sqlite_master`, read in one query: a trail restored in place from a backup keeps the inode,
not the schema); the child of a parent that checked a database server trusts the parent's check, as its
running siblings do. Any other process
(the CLI, tests, a program forking its own children) checks the tables whenever it opens a database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.settings import StoreSettings
from service.store.errors import SchemaOutOfDate, StoreError, kind_of, translated
from service.store.indexes import warn_missing_names
from service.store.outage import Outage
from service.store.sqlite_schema import INDEX_NAMES, TABLES, SqliteInsert, quote
from service.store.sqlite_schema import JsonText as JsonText  # where the audit trail has imported it from
from service.store.write_refusals import WriteRefusals, driver_words, refusal_reason
from service.store.writer_turns import WriterTurns

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from service.cutoff import Cutoff
    from service.store.driver_insert import DriverInsert

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 10_000
DEFAULT_TIMEOUT_SECONDS = StoreSettings.timeout_seconds  # each use of a database server
IN_MEMORY = ("sqlite://", "sqlite:///:memory:")
Schema = list[tuple[str, str, str, str | None]]  # an SQLite file's `sqlite_master` rows
# url → (the process that created and checked its tables and lets its children trust that, the SQLite
# file's device and inode then, and its schema then): see `tables_checked_for_children`
_TABLES_CHECKED: dict[str, tuple[int, tuple[int, int] | None, Schema | None]] = {}


class DatabaseError(RuntimeError):
    """The configured database cannot be opened; the message names the URL without its password."""


@dataclass(frozen=True)
class Database:
    """An opened database: `connection`, an SQLite store's one `sqlite3` connection (None for one
    reached through SQLAlchemy, whose engine is then `made` at opening); the SQLite `file` (None for
    memory or a server); whether SQLAlchemy's uses of the one in-memory connection must take turns
    with the others (`serialised`: SQLite's connection object is not safe for concurrent use); the
    turns writers take on a file; for a database server, the `cutoff` that ends each use of it after
    `timeout` seconds and the `outage` that leaves it alone for a moment after it failed to answer."""

    url: str
    connection: sqlite3.Connection | None = None
    file: str | None = None
    password: str | None = field(default=None, repr=False)
    serialised: bool = False
    writers: WriterTurns | None = None
    cutoff: Cutoff | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    outage: Outage | None = None
    refusals: WriteRefusals = field(default_factory=WriteRefusals, compare=False, repr=False)
    made: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    @property
    def engine(self) -> Engine:
        """SQLAlchemy's engine on this database: a server's, made at opening; an SQLite store's, made
        (and SQLAlchemy imported) when first asked for (service/store/engines.py)."""
        with self._lock:
            if "engine" not in self.made:
                from service.store.engines import sqlite_engine

                self.made["engine"] = sqlite_engine(self.url, self.connection)
            engine: Engine = self.made["engine"]
            return engine

    @property
    def dialect(self) -> str:
        """The database's kind, as SQLAlchemy names it: `sqlite`, `postgresql`."""
        return "sqlite" if self.connection is not None else self.engine.dialect.name

    def _turn(self) -> Any:
        return self._lock if self.serialised else nullcontext()

    def _bounded(self) -> Any:
        """A server's connections used inside the block are cut after `timeout` seconds (see
        engines.py `_watched_checkout`): the use then fails as a lost connection would. Without a
        `cutoff` (an SQLite file, or a maintenance command's unbounded use) nothing is cut."""
        return self.cutoff.until(time.monotonic() + self.timeout) if self.cutoff else nullcontext()

    def _rested(self) -> Any:
        """A use of a database server, refused at once while it is left alone (outage.py)."""
        return self.outage.use() if self.outage else nullcontext()

    def refusing(self) -> bool:
        """Whether a use starting now would fail at once, the server being left alone (outage.py)."""
        return self.outage is not None and self.outage.refusing()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The driver's own connection (PEP 249) in a transaction, committed when the block ends
        without an error, a writer's turn held; a driver error is raised as the store's
        (service/store/errors.py). What the hook calls read and write through."""
        if self.connection is None:
            with self.begin() as connection, translated(connection.dialect.loaded_dbapi.Error):
                yield connection.connection
            return
        writing = self.writers.turn() if self.writers else nullcontext()
        with writing, self._lock, translated(sqlite3.Error):
            try:
                yield self.connection
                self.connection.commit()
            except BaseException:
                with suppress(sqlite3.Error):  # the failure said why; the connection is left clean
                    self.connection.rollback()
                raise

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A SQLAlchemy connection in a transaction, committed when the block ends without an error."""
        from sqlalchemy.exc import SQLAlchemyError

        writing = self.writers.turn() if self.writers else nullcontext()
        with (
            self._rested(),
            self._bounded(),
            self._turn(),
            writing,
            translated(SQLAlchemyError),
            self.engine.begin() as connection,
        ):
            yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A SQLAlchemy connection."""
        from sqlalchemy.exc import SQLAlchemyError

        with (
            self._rested(),
            self._bounded(),
            self._turn(),
            translated(SQLAlchemyError),
            self.engine.connect() as connection,
        ):
            yield connection

    def insert(self, table: str, columns: Sequence[str], keyed: bool = False) -> SqliteInsert | DriverInsert:
        """An INSERT of `table`'s `columns` for `transaction`'s connection (`keyed`: it answers the new
        row's key): SQL text for an SQLite store, else compiled by SQLAlchemy for the database."""
        if self.connection is not None:
            return SqliteInsert.of(table, columns, keyed)
        from service.store.driver_insert import DriverInsert
        from service.store.tables import metadata

        return DriverInsert.compile(metadata.tables[table], columns, self.engine.dialect, keyed)

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` for its parameters, in the driver's parameter style."""
        if self.connection is not None or self.engine.dialect.paramstyle == "qmark":
            return statement
        return statement.replace("?", "%s")

    def refusal(self, failure: BaseException) -> str | None:
        """Why the database refused a write that failed with `failure`, in words fit for the log
        (write_refusals.py); None when it is not the database refusing writes."""
        return refusal_reason(failure, self.password)

    def write_problem(self, tokens: bool = True) -> str | None:
        """What stops the service's writes that can be seen without writing, checked with one use
        (a StoreError when the database does not answer: service/store/errors.py); None when nothing
        does. `tokens`: whether calls' JWTs are claimed (AuthSettings.claims_tokens: calls are
        authenticated and some trusted client is not `token_reuse`), else the replay store is never
        written."""
        if self.connection is not None:
            with self._lock, translated(sqlite3.Error):
                self.connection.execute("SELECT 1").fetchall()
        elif self.engine.dialect.name == "postgresql":
            from service.store.engines import postgresql_write_problem

            with self.connect() as connection:
                return postgresql_write_problem(connection, WRITES if tokens else CALL_WRITES)
        else:
            with self.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        file = self.file
        if file is not None and not (os.access(file, os.W_OK) and os.access(os.path.dirname(file), os.W_OK)):
            return f"this process may not write the SQLite file {file} or its folder (store.url)"
        return None

    def close(self) -> None:
        engine = self.made.pop("engine", None)
        if engine is not None:
            engine.dispose()
        if self.connection is not None:
            self.connection.close()
        if self.writers is not None:
            self.writers.close()


# What a hook call writes (its audit record; and its JWT's claim, where calls are authenticated): the
# privileges the role needs. Not `audit_feedback`: feedback that cannot be kept is refused 503 itself,
# and is no reason to send a replica no hook calls.
CALL_WRITES = (
    ("audit_records", "INSERT"),
    ("audit_assertions", "INSERT"),
    ("audit_cards", "INSERT"),
)
WRITES = (*CALL_WRITES, ("seen_tokens", "INSERT"), ("seen_tokens", "DELETE"))


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    cursor = dbapi_connection.cursor()
    _write_ahead_log(cursor)
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _write_ahead_log(cursor: Any) -> None:
    """Put the file in WAL mode, waiting as the busy timeout would: workers opening a new file at
    once each switch it, and SQLite answers a switch that meets another's "database is locked" at
    once, without calling its busy handler (2 starts in 100 of six at once failed so, and a worker
    that cannot open its store does not boot)."""
    waited_until = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > waited_until:
                raise
            time.sleep(0.005)


def open_database(
    url: str,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    rest_seconds: float = StoreSettings.retry_after_seconds,
) -> Database:
    """Connect to `url` and create any missing table; raises DatabaseError when that fails. Each
    later use of a database server is cut after `timeout` seconds, and after one that failed to
    answer the server is left alone for `rest_seconds` (`timeout` None: neither, for the maintenance
    commands, whose one transaction may rightly take longer than a hook call's use)."""
    file = _plain_sqlite(url)
    if file is None:
        from service.store.engines import open_with_sqlalchemy

        return open_with_sqlalchemy(url, timeout, rest_seconds)
    return _open_sqlite(url, file or None)


def _plain_sqlite(url: str) -> str | None:
    """For an SQLite URL `sqlite3` opens as it is, the absolute path of its file ("" in memory);
    None for any other URL (a server, or SQLite with driver options, a `file:` URI or quoted
    characters, which SQLAlchemy reads)."""
    if url in IN_MEMORY:
        return ""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if not path or path.startswith("file:") or any(character in path for character in "?#%"):
        return None
    return os.path.abspath(path)


def _open_sqlite(url: str, file: str | None) -> Database:
    private_if_new(file)
    writers = writer_turns(file)
    connection = None
    try:
        connection = sqlite3.connect(
            file or ":memory:", timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        if file is not None:
            sqlite_pragmas(connection)
        if not checked_by_a_parent(url, file, connection):
            _create_tables(connection, writers)
    except (sqlite3.Error, StoreError) as exc:
        if connection is not None:
            connection.close()
        if writers is not None:
            writers.close()
        raise cannot_open(url, exc, os.path.dirname(file) if file else None) from None
    return Database(url, connection, file, serialised=file is None, writers=writers)


def cannot_open(
    url: str,
    failure: BaseException,
    folder: str | None = None,
    password: str | None = None,
    words: bool = True,
) -> DatabaseError:
    """Why a database cannot be opened: for an SQLite file, that its folder does not exist; else the
    failure's kind and the driver's first line ("password authentication failed for user …",
    "database … does not exist") with `password` masked (`words` False: its kind alone)."""
    why = kind_of(failure)
    if folder is not None and not os.path.isdir(folder):
        missing = "is not a folder" if os.path.exists(folder) else "does not exist"
        why = f"the folder {folder} {missing} (store.url names an SQLite file in it)"
    elif words:
        said = driver_words(failure, password)
        if said:
            why = f"{why}: {said}"
    if url.startswith("postgres:"):
        why += " (write postgresql+psycopg:// for PostgreSQL)"
    return DatabaseError(f"cannot open the database {_shown(url)}: {why}")


def _shown(url: str) -> str:
    """The URL without its password (an SQLite store's has none)."""
    if _plain_sqlite(url) is not None and url not in IN_MEMORY:
        return url
    from service.store.engines import without_password

    return without_password(url)


def private_if_new(file: str | None) -> None:
    """Make a new SQLite file empty and readable by this user alone (0600): the audit trail holds
    patients' ids, orders and requests, and SQLite would make it (and its -wal and -shm files, which
    take the file's mode) readable by every local user under the usual umask. An existing file is
    left as its owner set it; a folder that is missing is reported by the opening that follows."""
    if file is None:
        return
    with suppress(OSError):  # there already (a link too: opened as its owner made it), or no folder
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))


def writer_turns(file: str | None) -> WriterTurns | None:
    """Turns on `<file>.writers` beside an SQLite database file (none for memory or a server)."""
    return None if file is None else WriterTurns(f"{file}.writers", SQLITE_BUSY_TIMEOUT_MS / 1000)


def tables_checked_for_children(url: str, database: Database) -> None:
    """Let processes forked from this one from now on open `url` (just opened as `database`, its
    tables created and checked) without checking the tables again; never for an in-memory database."""
    if url in IN_MEMORY:
        return
    schema = None
    connection, file = database.connection, database.file
    if file is not None:  # opened through sqlite3, or through SQLAlchemy (a URL naming driver options)
        try:
            schema = _schema(connection) if connection is not None else _file_schema(file)
        except sqlite3.Error:
            return  # its children check the tables themselves
    _TABLES_CHECKED[url] = (os.getpid(), file_identity_of(file), schema)


def file_identity_of(file: str | None) -> tuple[int, int] | None:
    """The SQLite file's device and inode (None for a server); OSError when it is not there."""
    if file is None:
        return None
    status = os.stat(file)
    return status.st_dev, status.st_ino


def checked_by_a_parent(url: str, file: str | None, connection: sqlite3.Connection | None = None) -> bool:
    """Whether a process this one was forked from created and checked the tables of `url`, in the
    SQLite `file` that is there now, holding the schema it left there (read with `connection`, when
    given: see the module's docstring)."""
    checked = _TABLES_CHECKED.get(url)
    if checked is None or checked[0] == os.getpid():
        return False
    try:
        if file_identity_of(file) != checked[1]:
            return False
        if checked[2] is None:  # a database server
            return True
        found = _schema(connection) if connection is not None else _file_schema(file)
    except (OSError, sqlite3.Error):
        return False
    return found == checked[2]


def _schema(connection: sqlite3.Connection) -> Schema:
    everything = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    return connection.execute(everything).fetchall()


def _file_schema(file: str | None) -> Schema:
    """`_schema` of the SQLite `file`, read with a connection of its own (a store SQLAlchemy opened,
    its URL naming driver options, has no `sqlite3` connection to read it with)."""
    connection = sqlite3.connect(file or "")  # there: its device and inode were just read
    try:
        return _schema(connection)
    finally:
        connection.close()


def _create_tables(target: sqlite3.Connection | Engine, writers: WriterTurns | None) -> None:
    """Create the missing tables, one process at a time (the writers' turn on an SQLite file; a
    server's: engines.py `create_tables`), and bring those an earlier release made up to date."""
    if not isinstance(target, sqlite3.Connection):
        from service.store.engines import create_tables

        create_tables(target, writers)
        return
    with writers.turn() if writers else nullcontext():
        try:
            _create_sqlite_tables(target)
        except BaseException:
            target.rollback()
            raise
        target.commit()


def _create_sqlite_tables(connection: sqlite3.Connection) -> None:
    """What SQLAlchemy's `create_all` did on SQLite: each missing table created with its indexes (an
    existing table's missing indexes are left to `idds-crd audit migrate`: indexes.py); then a column
    an earlier release did not make added, and the missing indexes logged."""
    names = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    present = {
        table.name: {row[1] for row in connection.execute(f"PRAGMA main.table_info({quote(table.name)})")}
        for table in TABLES
        if table.name in names
    }
    for table in TABLES:
        if table.name not in present:
            connection.execute(table.create())
            for index in table.create_indexes():
                connection.execute(index)
    for table in TABLES:
        missing = [column for column in table.columns if column.name not in present.get(table.name, ())]
        if table.name not in present or not missing:
            continue
        required = [column.name for column in missing if not column.nullable]
        if required:
            raise out_of_date(table.name, required)
        for column in missing:
            connection.execute(table.add_column(column))
            log.warning(
                "database: added the column %s.%s, which an earlier release did not make",
                table.name,
                column.name,
            )
    found = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    warn_missing_names([name for name in INDEX_NAMES if name not in found])


def out_of_date(table: str, required: Sequence[str]) -> SchemaOutOfDate:
    return SchemaOutOfDate(
        f"the table {table} lacks the column(s) {', '.join(required)}, which an earlier "
        "release did not make and which cannot be added to its rows; see docs/configuration.md"
    )


def __getattr__(name: str) -> Any:
    """`metadata`, the tables declared for SQLAlchemy (tables.py), where it was imported from before;
    SQLAlchemy is imported then."""
    if name == "metadata":
        from service.store.tables import metadata

        return metadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
