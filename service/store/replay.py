"""JWT replay protection shared by every replica: a token id (`jti`) is claimed at most once per
issuer within the token's lifetime, by an INSERT that the database's primary key makes atomic."""

from __future__ import annotations

from sqlalchemy import delete, insert

from service.store.database import Database
from service.store.errors import DuplicateKey, StoreError
from service.store.tables import seen_tokens


class ReplayStore:
    def __init__(self, database: Database) -> None:
        self._database = database

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
        with self._database.begin() as connection:
            connection.execute(delete(seen_tokens).where(seen_tokens.c.expires_at < now))
        try:
            with self._database.begin() as connection:
                connection.execute(insert(seen_tokens).values(iss=iss, jti=jti, expires_at=expires_at))
        except DuplicateKey:
            return False
        return True
