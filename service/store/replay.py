"""JWT replay protection shared by every replica: a token id (`jti`) is claimed at most once per
issuer within the token's lifetime, by an INSERT that the database's primary key makes atomic."""

from __future__ import annotations

from service.store.database import Database
from service.store.driver_insert import driver_cursor
from service.store.errors import DuplicateKey, StoreError


class ReplayStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._claim = database.insert("seen_tokens", ("iss", "jti", "expires_at"))
        self._expire = database.sql("DELETE FROM seen_tokens WHERE expires_at < ?")

    def claim(self, iss: str, jti: str, expires_at: int, now: int) -> bool:
        """True the first time (iss, jti) is seen among unexpired tokens; False on a replay. An
        StoreError when the database cannot tell (a refusal to write is noted: write_refusals.py)."""
        try:
            fresh = self._claimed(iss, jti, expires_at, now)
        except StoreError as exc:
            if (refusal := self._database.refusal(exc)) is not None:
                self._database.refusals.refused(refusal)
            raise
        self._database.refusals.written()
        return fresh

    def _claimed(self, iss: str, jti: str, expires_at: int, now: int) -> bool:
        with self._database.transaction() as connection, driver_cursor(connection) as cursor:
            cursor.execute(self._expire, (now,))
        claim = self._claim.parameters({"iss": iss, "jti": jti, "expires_at": expires_at})
        try:
            with self._database.transaction() as connection, driver_cursor(connection) as cursor:
                self._claim.run(cursor, claim)
        except DuplicateKey:
            return False
        return True
