"""Replicas share one replay store, and each deletes the token ids it reads as past their keeping
time by its own clock. A token is accepted up to `clock_skew_seconds` past its `exp`; its id must
then be kept while any replica could still accept it, also by a replica whose clock is up to that
skew ahead of the accepting one's (attack22 L2: it was kept one second past, so a replica one and a
half seconds ahead forgot ids the others still accepted, and a captured token could be replayed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.auth.jwks import JwksCache
from service.auth.verify import Refused, TokenVerifier
from service.store.database import open_database
from service.store.replay import ReplayStore
from tests.auth_support import SELECT_AUD, auth_settings, ec_key, mint, trusted

SKEW = 60


@pytest.mark.parametrize("ahead", [30, SKEW - 1])
def test_a_replica_whose_clock_is_ahead_does_not_forget_a_token_another_still_accepts(
    tmp_path: Path, ahead: int
) -> None:
    key = ec_key()
    settings = auth_settings(trusted(key), clock_skew_seconds=SKEW)
    database = open_database(f"sqlite:///{tmp_path / 'replay.sqlite3'}")
    try:
        store = ReplayStore(database)
        verifier = TokenVerifier(settings.auth, store, JwksCache(300))
        now = int(time.time())
        token = mint(key, iat=now - 300, exp=now - SKEW + 20)  # expired, still within the skew
        verifier.verify(token, SELECT_AUD)
        # another replica, its clock `ahead`, claims a token of its own and deletes what it reads as past
        assert store.claim("https://other.example.org", "its-own", now + 3600, now + ahead)
        with pytest.raises(Refused, match="replay"):
            verifier.verify(token, SELECT_AUD)
    finally:
        database.close()
