"""The audit trail: every hook call and its answer, kept in the service's database (CRD §found-37).

A record is written in the request and committed before the answer is sent (calls recorded at the
same moment share one transaction: service/store/group_commit.py), so an answer the EHR holds is
always in the trail, on every replica sharing the database. Records are found by hookInstance, by
coverage-assertion-id or PA number, and by the uuid of a card they issued, which is how feedback on
a card is stored with the call that issued it. Records older than `store.retention_days` are removed
by `purge` (`idds-crd audit purge`).

A hook call's record and feedback are written through the driver's own connection
(`Database.transaction`: on the default SQLite store, `sqlite3` alone); the readers and the purge, which
only the `idds-crd audit` commands and the tests run, query through SQLAlchemy, imported when they do.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from service.store.database import Database
from service.store.driver_insert import Parameters, driver_cursor
from service.store.errors import DuplicateKey, StoreError, kind_of
from service.store.group_commit import GroupCommit, GroupWriteFailed
from service.store.outage import DatabaseResting
from service.store.sqlite_schema import BY_NAME, ID_LENGTH, NUL_KEPT_AS, text_value

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.engine import Connection

    from service.store.driver_insert import DriverInsert
    from service.store.sqlite_schema import SqliteInsert

log = logging.getLogger(__name__)
PAGE = 200  # records read at a time by `between`
PURGE_BATCH = 200  # records removed in one transaction by `purge`
# between two of its transactions `purge` leaves the write turn free this long: a writer waiting for it
# looks every half millisecond (writer_turns.py), and would otherwise rarely find it free
PURGE_PAUSE_SECONDS = 0.01
# A record is dated when its call arrived and committed when it was answered, and on PostgreSQL records
# commit out of id order: what arrived in the last moments may not all be readable yet. An export's
# window ends this long before now at the latest (`settled`); a call takes seconds from arrival to
# record (its FHIR work stops at fhir.deadline_seconds, a write at store.timeout_seconds, SQLite's at
# its 10 s busy timeout), so only a host or database stalled for longer could still be missed.
SETTLE_SECONDS = 60.0
INDEXED = ("cards", "assertion_keys")  # what a row from `audit_row` holds beside its columns


class AuditUnavailable(RuntimeError):
    """The audit trail could not be written (the database is down or refusing writes)."""


class UnknownCard(LookupError):
    """Feedback names a card this service never issued; `index` is the item's place in the request."""

    def __init__(self, index: int) -> None:
        super().__init__(f"feedback[{index}].card")
        self.index = index


@dataclass(frozen=True)
class FeedbackEntry:
    """One feedback item to keep: its digest (the same item has the same key), card and content."""

    key: str
    card: str
    item: dict[str, Any]


class AuditTrail:
    def __init__(self, database: Database) -> None:
        self._database = database
        self.inserts = AuditInserts.for_database(database)
        self._feedback = database.insert("audit_feedback", FEEDBACK_COLUMNS)
        self._card_lookup = database.sql(
            "SELECT audit_cards.card_uuid, audit_cards.record_id, audit_records.client_iss FROM audit_cards "
            "JOIN audit_records ON audit_records.id = audit_cards.record_id "
            "WHERE audit_cards.card_uuid IN ({cards}) AND audit_cards.service_id = ?"
        )
        self._records: GroupCommit[PreparedRecord, int] = GroupCommit(database, self.inserts.write)

    @property
    def database(self) -> Database:
        return self._database

    def record(self, row: dict[str, Any]) -> int:
        """Store one call (a row from `audit_row`: the columns' values, and under `cards` and
        `assertion_keys` what is indexed beside it), committed, with the calls recorded at the same
        moment (service/store/group_commit.py); its id. AuditUnavailable on failure."""
        try:
            prepared = self.inserts.prepare(row)
        except (TypeError, ValueError) as exc:
            log.error(
                "audit trail: cannot write the %s call's record: %s", row["service_id"], type(exc).__name__
            )
            raise AuditUnavailable("audit trail unavailable") from None
        try:
            record_id = self._records.commit(prepared)
        except GroupWriteFailed as exc:
            # the rest after an outage began was logged once (outage.py), and so is why the database
            # refuses writes (write_refusals.py); the 503 is, per call
            level = logging.DEBUG if exc.cause == DatabaseResting.__name__ else logging.ERROR
            log.log(level, "audit trail: cannot record the %s call: %s", row["service_id"], exc.cause)
            if exc.refusal is not None:
                self._database.refusals.refused(exc.refusal)
            raise AuditUnavailable("audit trail unavailable") from None
        self._database.refusals.written()
        return record_id

    def find(self, key: str) -> list[dict[str, Any]]:
        """The records whose hookInstance, coverage-assertion-id, PA number or card uuid is `key`, as the
        call sent it (`_as_sent`: not one an id differing from it in a U+0000 stored as U+FFFD found, nor
        one sharing only its first ID_LENGTH characters)."""
        from sqlalchemy import or_, select

        from service.store.tables import audit_assertions, audit_cards, audit_records

        stored = _stored(key)  # as the ids were stored
        by_assertion = select(audit_assertions.c.record_id).where(
            or_(audit_assertions.c.assertion_id == stored, audit_assertions.c.satisfied_pa_id == stored)
        )
        by_card = select(audit_cards.c.record_id).where(audit_cards.c.card_uuid == stored)
        query = (
            select(audit_records)
            .where(
                or_(
                    audit_records.c.hook_instance == stored,
                    audit_records.c.id.in_(by_assertion),
                    audit_records.c.id.in_(by_card),
                )
            )
            .order_by(audit_records.c.id)
        )
        with self._database.connect() as connection:
            return _as_sent(self._read(connection, connection.execute(query).all()), key, _ids_sent)

    def between(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        patient: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The records received in [since, until) (of one `patient` id as sent, when given), in the order they
        were written, read in pages; of each, only the `columns` named (and what `_read` needs), when
        given: a reader that needs few of them is spared reading and parsing the rest."""
        from sqlalchemy import select

        from service.store.tables import audit_records

        if columns is not None and patient is not None and _ambiguous(patient):
            columns = [*columns, "request"]  # the patient as sent (`_as_sent`)
        chosen = audit_records.c if columns is None else [audit_records.c[n] for n in _with_read(columns)]
        query = select(*chosen).order_by(audit_records.c.id).limit(PAGE)
        if patient is not None:
            query = query.where(audit_records.c.patient_id == _stored(patient))
        if since is not None:
            query = query.where(audit_records.c.received_at >= utc_naive(since))
        if until is not None:
            query = query.where(audit_records.c.received_at < utc_naive(until))
        last = 0
        while True:
            with self._database.connect() as connection:
                page = connection.execute(query.where(audit_records.c.id > last)).all()
                records = self._read(connection, page)
            yield from records if patient is None else _as_sent(records, patient, _patient_sent)
            if len(page) < PAGE:
                return
            last = page[-1].id

    def count(self) -> int:
        from sqlalchemy import select

        from service.store.tables import audit_records

        with self._database.connect() as connection:
            return len(connection.execute(select(audit_records.c.id)).all())

    def add_feedback(
        self,
        service_id: str,
        entries: Sequence[FeedbackEntry],
        received_at: datetime,
        sender: tuple[str | None, str | None] = (None, None),
    ) -> int:
        """Keep the entries not seen before, each with the record of the card it answers and the
        sender's (iss, jti); the number kept. UnknownCard when a card was not issued by `service_id`
        to this sender (feedback on another client's card is as unknown as a made-up uuid); nothing is
        kept then."""
        if not entries:  # (a request's feedback is never empty: service/feedback.py)
            return 0
        cards = list({e.card for e in entries})
        lookup = self._card_lookup.format(cards=", ".join(self._database.sql("?") for _ in cards))
        try:
            with self._database.transaction() as connection, driver_cursor(connection) as cursor:
                cursor.execute(lookup, [*cards, service_id])
                rows = cursor.fetchall()
                issued = {card: record for card, record, issuer in rows if issuer == sender[0]}
                for index, entry in enumerate(entries):
                    if entry.card not in issued:
                        raise UnknownCard(index)
            kept = 0
            for key, entry in {e.key: e for e in entries}.items():
                kept += self._keep_once(key, entry, issued[entry.card], service_id, received_at, sender)
        except StoreError as exc:  # with the database's reason when it refuses the write
            why = self._database.refusal(exc) or kind_of(exc)
            log.error("audit trail: cannot record feedback for %s: %s", service_id, why)
            raise AuditUnavailable("audit trail unavailable") from None
        return kept

    def _keep_once(
        self,
        key: str,
        entry: FeedbackEntry,
        record_id: int,
        service_id: str,
        received_at: datetime,
        sender: tuple[str | None, str | None],
    ) -> int:
        values = {
            "key": key,
            "record_id": record_id,
            "card_uuid": entry.card,
            "service_id": service_id,
            "received_at": utc_naive(received_at),
            "item": entry.item,
            "client_iss": sender[0],
            "client_jti": sender[1],
        }
        try:
            with self._database.transaction() as connection, driver_cursor(connection) as cursor:
                self._feedback.run(cursor, self._feedback.parameters(values))
        except DuplicateKey:  # sent before (perhaps to another replica at the same moment)
            return 0
        return 1

    def purge(self, older_than: datetime, operator: str) -> int:
        """Remove the records received before `older_than` with everything kept beside them, the
        oldest first, `PURGE_BATCH` records to a transaction, pausing between two for the writers
        waiting to take their turn: the calls being recorded meanwhile wait for one batch at most,
        not for the whole purge (on SQLite, past the busy timeout: answered 503). The purge is kept
        in `audit_purges` under `operator`, each batch counted in its own transaction."""
        from sqlalchemy import delete, insert, select, update

        from service.store.tables import (
            audit_assertions,
            audit_cards,
            audit_feedback,
            audit_purges,
            audit_records,
        )

        cutoff = utc_naive(older_than)
        oldest = (
            select(audit_records.c.id)
            .where(audit_records.c.received_at < cutoff)
            .order_by(audit_records.c.id)
            .limit(PURGE_BATCH)
        )
        started = {"started_at": utc_naive(datetime.now(UTC)), "older_than": cutoff, "removed": 0}
        with self._database.begin() as connection:
            purge_id = connection.execute(
                insert(audit_purges).values(**started, operator=operator)
            ).inserted_primary_key[0]
        this_purge = audit_purges.c.id == purge_id
        removed = 0
        while True:
            if removed:
                time.sleep(PURGE_PAUSE_SECONDS)
            with self._database.begin() as connection:
                ids = [row.id for row in connection.execute(oldest)]
                if not ids:
                    return removed
                for table in (audit_feedback, audit_cards, audit_assertions):
                    connection.execute(delete(table).where(table.c.record_id.in_(ids)))
                # the ids this purge removed: another purge at the same moment may have taken some of them
                gone = delete(audit_records).where(audit_records.c.id.in_(ids)).returning(audit_records.c.id)
                gone_ids = [row.id for row in connection.execute(gone)]
                if gone_ids:
                    removed += len(gone_ids)
                    last = max(gone_ids)
                    connection.execute(
                        update(audit_purges).where(this_purge).values(removed=removed, last_record_id=last)
                    )

    def purges(self) -> list[dict[str, Any]]:
        """Every purge kept in `audit_purges`, the oldest first, its times in UTC."""
        from sqlalchemy import select

        from service.store.tables import audit_purges

        with self._database.connect() as connection:
            rows = connection.execute(select(audit_purges).order_by(audit_purges.c.id))
            return [{str(key): _jsonable(value) for key, value in row._mapping.items()} for row in rows]

    @staticmethod
    def _read(connection: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
        """The records of `rows` as `find` and `between` give them: each with its feedback (one query
        for all), and each assertion an earlier record already issued marked (`_retries_marked`)."""
        from sqlalchemy import select

        from service.store.tables import audit_feedback

        # str(key): a column's name is a `quoted_name`, a str subclass no fast JSON writer takes as a key
        records = [{str(key): _jsonable(value) for key, value in row._mapping.items()} for row in rows]
        feedback: dict[int, list[dict[str, Any]]] = {record["id"]: [] for record in records}
        if records:
            items = connection.execute(
                select(
                    audit_feedback.c.record_id,
                    audit_feedback.c.card_uuid,
                    audit_feedback.c.received_at,
                    audit_feedback.c.client_iss,
                    audit_feedback.c.item,
                )
                .where(audit_feedback.c.record_id.in_(list(feedback)))
                .order_by(audit_feedback.c.record_id, audit_feedback.c.received_at, audit_feedback.c.key)
            )
            for record_id, card, received, iss, item in items:
                feedback[record_id].append(
                    {"card": card, "received_at": _jsonable(received), "client_iss": iss, **item}
                )
        for record in records:
            record["feedback"] = feedback[record["id"]]
        return _retries_marked(connection, records)


# What `_read` reads of every record, whatever else a reader of `between` asks for.
READ = ("id", "hook_instance", "assertions")


def _stored(key: str) -> str:
    """`key` as the ids it looks for were stored: cut to their column's length (audit_entry's `_key`), a
    U+0000 as U+FFFD (sqlite_schema.text_value)."""
    return text_value(key[:ID_LENGTH])


def _ambiguous(key: str) -> bool:
    """Whether ids other than `key` are stored as `key` is (`_stored`): a U+0000 is kept as U+FFFD, so a
    key holding either finds the ids holding the other there too; and an id is cut to its column's
    length, so a key as long finds every id sharing its first ID_LENGTH characters, and a longer one is
    looked up by them (review28e: two PA numbers so alike, perhaps two patients', were found together)."""
    return len(key) >= ID_LENGTH or NUL_KEPT_AS in text_value(key)


def _as_sent(
    records: list[dict[str, Any]], key: str, sent: Callable[[dict[str, Any]], set[str]]
) -> list[dict[str, Any]]:
    """`records`, found by `key` as it is stored (`_stored`), those whose id as the call sent it (one of
    `sent`'s, whole: the JSON columns keep it) is `key`: an id differing from it only in a U+0000 where
    `key` holds a U+FFFD, or back, or past its column's length, is another call's, perhaps another
    patient's."""
    if not _ambiguous(key):
        return records
    return [record for record in records if key in sent(record)]


def _ids_sent(record: Mapping[str, Any]) -> set[str]:
    """The ids a record is found by that a call sends (`find`), as it sent them: its hookInstance, and
    the ids of each assertion its `assertions` column keeps or names among those it left out and the
    index holds (`left_out_ids`: audit_entry's `_carried_capped`, review31h); its cards' uuids, this
    service's, never hold a U+0000 or U+FFFD, nor reach the column's length."""
    request = record.get("request")
    ids = [request.get("hookInstance")] if isinstance(request, dict) else []
    for assertion in record.get("assertions") or []:
        if isinstance(assertion, dict):
            named = assertion.get("left_out_ids")
            for entry in (assertion, *(named if isinstance(named, list) else ())):
                if isinstance(entry, dict):
                    ids += [entry.get("assertion_id"), entry.get("satisfied_pa_id")]
    return {i for i in ids if isinstance(i, str)}


def _patient_sent(record: Mapping[str, Any]) -> set[str]:
    """The patient id a record's call sent (its context's patientId), as it sent it."""
    request = record.get("request")
    context = request.get("context") if isinstance(request, dict) else None
    patient = context.get("patientId") if isinstance(context, dict) else None
    return {patient} if isinstance(patient, str) else set()


def _with_read(columns: Sequence[str]) -> list[str]:
    return list(dict.fromkeys((*READ, *columns)))


@dataclass(frozen=True)
class PreparedRecord:
    """An audit row made ready for the driver before the turn to write is taken: the record's
    parameters, and what is indexed beside it once the record has its id."""

    record: Parameters
    service_id: str
    cards: tuple[str, ...]
    assertion_keys: tuple[tuple[str | None, str | None], ...]


FEEDBACK_COLUMNS = tuple(c.name for c in BY_NAME["audit_feedback"].columns)


@dataclass(frozen=True)
class AuditInserts:
    """The audit trail's inserts, for one database (`Database.insert`)."""

    record: SqliteInsert | DriverInsert
    assertions: SqliteInsert | DriverInsert
    cards: SqliteInsert | DriverInsert

    @classmethod
    def for_database(cls, database: Database) -> AuditInserts:
        columns = [c.name for c in BY_NAME["audit_records"].columns if c.name != "id"]
        return cls(
            database.insert("audit_records", columns, keyed=True),
            database.insert("audit_assertions", ["record_id", "assertion_id", "satisfied_pa_id"]),
            database.insert("audit_cards", ["card_uuid", "record_id", "service_id"]),
        )

    def prepare(self, row: Mapping[str, Any]) -> PreparedRecord:
        """A row from `audit_row` (its columns, `cards` and `assertion_keys`) as the driver takes it."""
        columns = {k: v for k, v in row.items() if k not in INDEXED}
        return PreparedRecord(
            self.record.parameters(columns),
            row["service_id"],
            tuple(row["cards"]),
            tuple((assertion_id, pa_number) for assertion_id, pa_number in row["assertion_keys"]),
        )

    def write(self, connection: Any, rows: Sequence[PreparedRecord]) -> list[int]:
        """Insert the records, then everything indexed beside them, with `connection` (the driver's:
        `Database.transaction`); the records' ids, in order."""
        ids, assertions, cards = [], [], []
        with driver_cursor(connection) as cursor:
            for row in rows:
                record_id = int(self.record.run(cursor, row.record))
                ids.append(record_id)
                assertions += [
                    self.assertions.parameters(
                        {"record_id": record_id, "assertion_id": assertion_id, "satisfied_pa_id": pa_number}
                    )
                    for assertion_id, pa_number in row.assertion_keys
                ]
                cards += [
                    self.cards.parameters(
                        {"card_uuid": uuid, "record_id": record_id, "service_id": row.service_id}
                    )
                    for uuid in row.cards
                ]
            self.assertions.run_many(cursor, assertions)
            self.cards.run_many(cursor, cards)
        return ids


def _retries_marked(connection: Connection, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`records`, each assertion an earlier record issued first marked `retry_of` (that record's id).

    An EHR that lost an answer sends the same call again (the same hookInstance and body): both calls
    are recorded, and the second answer issues the same assertions, under the same ids (`assertion_ids`
    in cards/coverage_information.py: hook, hookInstance, resource and what it asserts). The export
    issues each assertion once, from the first record that issued it (service/metrics.py), whether or
    not that record is in its window; the retry is still exported as a call. An assertion is that
    repeat only when it also says what the earlier one said (`_issued`: a second call of the
    hookInstance judged otherwise issued its own determination, which is exported; its ids differ too,
    but a record written before they named the content has them the same). Only a record of the same
    hookInstance issues the same ids, so those are the ones read (one query for all `records`; the
    column, cut and scrubbed, may find more, and the ids decide). Done when the trail is read, not
    when a call is recorded: the call reads nothing more."""
    from sqlalchemy import select

    from service.store.tables import audit_records

    held = {record["id"] for record in records}
    instances = {record["hook_instance"] for record in records} - {None}
    earlier: list[tuple[int, Any]] = []
    if instances:
        others = select(audit_records.c.id, audit_records.c.assertions).where(
            audit_records.c.hook_instance.in_(instances),
            audit_records.c.id < max(held),
            audit_records.c.id.not_in(held),
        )
        earlier = [(row.id, row.assertions) for row in connection.execute(others)]
    first: dict[str, int] = {}
    read = [*earlier, *((record["id"], record["assertions"]) for record in records)]
    for record_id, assertions in sorted(read, key=lambda pair: pair[0]):
        for assertion in assertions if isinstance(assertions, list) else []:
            if (issued := _issued(assertion)) is not None:
                first.setdefault(issued, record_id)
    for record in records:
        record["assertions"] = [
            {**a, "retry_of": first[issued]}
            if (issued := _issued(a)) is not None and first[issued] < record["id"]
            else a
            for a in record["assertions"] or []
        ]
    return records


# What an assertion says: the same under one id makes a retry's repeat (an id names what it asserts, but
# one recorded before it did names only the hookInstance, order and Coverage).
ASSERTED = ("covered", "pa_needed", "doc_needed", "info_needed", "satisfied_pa_id", "questionnaires")


def _issued(assertion: Any) -> str | None:
    """An assertion (of a record's `assertions` column) its call issued, as its id and what it says
    (equal for a retry's repeat only); None for one it carried (kept from the order as it arrived:
    service/audit_entry.py)."""
    if isinstance(assertion, dict) and not assertion.get("carried"):
        issued = assertion.get("assertion_id")
        said = [assertion.get(key) for key in ASSERTED]
        return json.dumps([issued, said], default=str) if isinstance(issued, str) else None
    return None


def settled(until: datetime | None, now: datetime) -> datetime:
    """The end of an export window that is to end at `until` (None: now), brought back to
    `SETTLE_SECONDS` before `now` when later: every record received before it is committed, so that
    an export run again from that end (`--since`) gives each record once and misses none."""
    latest = now - timedelta(seconds=SETTLE_SECONDS)
    return latest if until is None or until > latest else until


def card_uuids(response: dict[str, Any]) -> list[str]:
    cards = response.get("cards")
    if not isinstance(cards, list):
        return []
    return [c["uuid"] for c in cards if isinstance(c, dict) and isinstance(c.get("uuid"), str)]


def utc_naive(moment: datetime) -> datetime:
    """UTC without tzinfo: SQLite and PostgreSQL `timestamp` columns then compare alike."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return value
